//! What `crossprov backup` and `restore` ask of an embedded database: a consistent copy taken
//! while the service runs, and the counts a restore reports.

use std::path::Path;

use diesel::prelude::*;

use super::OfflineDb;
use crate::audit::checkpoint::{self, CheckpointClaims};
use crate::audit::VerifyReport;
use crate::storage::data_keys::DataKeyRow;
use crate::storage::schema::{data_keys, work_orders};
use crate::storage::{DbConn, StorageError};

impl OfflineDb {
    /// SQLite: writes a consistent copy of the database to `path` (`VACUUM INTO`: one read
    /// transaction, so writers go on meanwhile and the copy holds whole transactions only).
    pub fn snapshot_into(&self, path: &Path) -> Result<(), StorageError> {
        let target = path
            .to_str()
            .ok_or_else(|| StorageError::Connect(format!("{} is not UTF-8", path.display())))?;
        let mut conn = self.store.connection()?;
        match &mut **conn {
            DbConn::Sqlite(c) => {
                use diesel::connection::SimpleConnection;
                // Readers are query-only; this one writes the copy's file, never the database.
                c.batch_execute("PRAGMA query_only = OFF")?;
                let copied = diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(target)
                    .execute(c);
                c.batch_execute("PRAGMA query_only = ON")?;
                copied?;
                Ok(())
            }
            DbConn::Pg(_) => Err(StorageError::Connect(
                "a PostgreSQL database is backed up with pg_dump (docs/operations.md)".into(),
            )),
        }
    }

    /// Re-hashes the whole chain and checks a checkpoint (a compact JWS) against it, in one
    /// read snapshot.
    pub fn verify_audit_against(
        &self,
        jws: &str,
    ) -> Result<(VerifyReport, Result<CheckpointClaims, String>), StorageError> {
        let mut conn = self.store.connection()?;
        let mut beside = self.store.reader_beside();
        conn.transaction(|c| {
            let report = crate::audit::verify_all(c, beside.as_mut(), crate::audit::Leaves::Keep)?;
            let kept = checkpoint::check(c, jws, &report).map_err(|e| e.to_string());
            Ok((report, kept))
        })
    }

    /// Whether the service key `kid` is published in the database (a checkpoint it signs
    /// can then be checked against this database alone).
    pub fn publishes_key(&self, kid: &str) -> Result<bool, StorageError> {
        let mut conn = self.store.connection()?;
        Ok(crate::storage::secrets::published_key(&mut conn, kid)?.is_some())
    }

    /// One data key that was not shredded: a restore opens it to prove the KEK at hand is the
    /// one the backed-up service used.
    pub fn a_live_data_key(&self) -> Result<Option<DataKeyRow>, StorageError> {
        let mut conn = self.store.connection()?;
        Ok(data_keys::table
            .filter(data_keys::wrapped.is_not_null())
            .select(DataKeyRow::as_select())
            .first(&mut **conn)
            .optional()?)
    }

    pub fn count_work_orders(&self) -> Result<i64, StorageError> {
        let mut conn = self.store.connection()?;
        Ok(work_orders::table.count().get_result(&mut **conn)?)
    }
}
