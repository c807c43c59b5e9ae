//! The narrow door for what runs beside the service rather than through it: the offline
//! commands (`audit verify`, `evidence verify`) and the benchmark's seeding. They get named
//! questions on a database opened as it is, never a raw connection, so the only way to
//! write a step of the service stays `Services`.

pub mod audit;

use super::{StorageError, Store};

mod backup;
mod evidence;

/// A database opened for offline work.
pub struct OfflineDb {
    store: Store,
}

impl OfflineDb {
    /// Opens an existing database as it is: no migrations, nothing changed.
    pub fn open_existing(url: &str) -> Result<Self, StorageError> {
        Ok(Self {
            store: Store::open_existing(url)?,
        })
    }

    /// Opens the database, applying pending migrations first (seeding a fresh one).
    pub fn open_migrated(url: &str) -> Result<Self, StorageError> {
        Ok(Self {
            store: Store::open(url, 1, 10_000)?,
        })
    }
}
