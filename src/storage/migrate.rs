//! Embedded migrations, one folder per dialect with the same names.

use diesel::connection::SimpleConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{DbConn, StorageError};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies pending migrations, then builds the audit tree of a log written before it was
/// kept (`audit::build_missing_tree`: one read when there is nothing to do).
pub fn run_pending(conn: &mut DbConn) -> Result<usize, StorageError> {
    match conn {
        DbConn::Pg(c) => {
            // Several instances may start at once against one database: one migrates, the
            // others wait on the advisory lock and then find nothing pending.
            c.batch_execute("SELECT pg_advisory_lock(7297715151)")?;
            let applied = c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.len())
                .map_err(|e| StorageError::Migration(e.to_string()))
                .and_then(|n| Ok((n, super::audit::build_missing_tree(conn)?)));
            if let DbConn::Pg(c) = conn {
                c.batch_execute("SELECT pg_advisory_unlock(7297715151)")?;
            }
            built(applied)
        }
        // SQLite is one file: its own write lock serialises concurrent migrators.
        DbConn::Sqlite(c) => {
            let applied = c
                .run_pending_migrations(SQLITE)
                .map(|v| v.len())
                .map_err(|e| StorageError::Migration(e.to_string()))?;
            built(Ok((applied, super::audit::build_missing_tree(conn)?)))
        }
    }
}

fn built(r: Result<(usize, Option<i64>), StorageError>) -> Result<usize, StorageError> {
    let (applied, built) = r?;
    if let Some(size) = built {
        tracing::info!(events = size, "built the audit log's Merkle tree");
    }
    Ok(applied)
}
