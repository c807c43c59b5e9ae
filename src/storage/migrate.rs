//! Embedded migrations, one folder per dialect with the same names.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{DbConn, StorageError};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

pub fn run_pending(conn: &mut DbConn) -> Result<usize, StorageError> {
    match conn {
        DbConn::Pg(c) => {
            // Several instances may start at once against one database: one migrates, the
            // others wait on the advisory lock and then find nothing pending.
            c.batch_execute("SELECT pg_advisory_lock(7297715151)")?;
            let applied = c.run_pending_migrations(POSTGRES).map(|v| v.len());
            c.batch_execute("SELECT pg_advisory_unlock(7297715151)")?;
            applied.map_err(|e| StorageError::Migration(e.to_string()))
        }
        // SQLite is one file: its own write lock serialises concurrent migrators.
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|v| v.len())
            .map_err(|e| StorageError::Migration(e.to_string())),
    }
}
