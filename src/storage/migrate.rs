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
                .and_then(|n| {
                    refuse_newer::<diesel::pg::Pg, _>(c, &POSTGRES)?;
                    Ok(n)
                })
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
            refuse_newer::<diesel::sqlite::Sqlite, _>(c, &SQLITE)?;
            built(Ok((applied, super::audit::build_missing_tree(conn)?)))
        }
    }
}

/// A database a newer crossprov migrated holds a schema this binary does not know: running on
/// it could misread or damage data, so it is refused, naming what to do (rolling back is
/// restoring the backup taken before the upgrade; docs/operations.md, Upgrades).
fn refuse_newer<DB, C>(conn: &mut C, known: &EmbeddedMigrations) -> Result<(), StorageError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
{
    use diesel::migration::MigrationSource;
    let migration =
        |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Migration(e.to_string());
    let known: Vec<String> = MigrationSource::<DB>::migrations(known)
        .map_err(migration)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn.applied_migrations().map_err(migration)?;
    let unknown: Vec<String> = applied
        .iter()
        .map(|v| v.to_string())
        .filter(|v| !known.contains(v))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StorageError::Migration(format!(
        "the database was migrated by a newer crossprov (migrations {} are unknown to version {}): \
         run that version, or restore the backup taken before the upgrade",
        unknown.join(", "),
        env!("CARGO_PKG_VERSION")
    )))
}

fn built(r: Result<(usize, Option<i64>), StorageError>) -> Result<usize, StorageError> {
    let (applied, built) = r?;
    if let Some(size) = built {
        tracing::info!(events = size, "built the audit log's Merkle tree");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use diesel::connection::SimpleConnection;
    use diesel::migration::MigrationSource;
    use diesel::prelude::*;

    use super::super::{Connector, DbConn};
    use super::*;
    use crate::storage::scratch::on_both_databases;

    /// Undoes the tokens migration, stores the one HMAC secret of earlier versions, and
    /// migrates again: the secret must come back as the key `tk-legacy`.
    fn the_old_token_secret_becomes_the_first_key(url: &str) {
        let mut conn = Connector::new(url, 10_000).connect().unwrap();
        run_pending(&mut conn).unwrap();
        let tokens = |name: String| name.ends_with("_tokens");
        match &mut conn {
            DbConn::Pg(c) => {
                let all = MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES).unwrap();
                let m = all.iter().find(|m| tokens(m.name().to_string())).unwrap();
                c.revert_migration(&**m).unwrap();
            }
            DbConn::Sqlite(c) => {
                let all = MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE).unwrap();
                let m = all.iter().find(|m| tokens(m.name().to_string())).unwrap();
                c.revert_migration(&**m).unwrap();
            }
        }
        conn.batch_execute(
            "DELETE FROM service_secrets; \
             INSERT INTO service_secrets (name, value) VALUES ('token_hmac_key', 'the-old-secret');",
        )
        .unwrap();
        run_pending(&mut conn).unwrap();
        use crate::storage::schema::{service_secrets, token_keys};
        let keys: Vec<(String, String, Option<chrono::NaiveDateTime>)> = token_keys::table
            .select((token_keys::kid, token_keys::secret, token_keys::retired_at))
            .load(&mut conn)
            .unwrap();
        assert_eq!(keys, [("tk-legacy".into(), "the-old-secret".into(), None)]);
        let left: i64 = service_secrets::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(left, 0, "the secret lives in one place");
    }

    on_both_databases!(the_old_token_secret_becomes_the_first_key, "legacy_token");
}
