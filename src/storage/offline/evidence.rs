//! What `evidence verify` asks of the database: the digests on record, a page at a time, and
//! which order a digest belongs to.

use diesel::prelude::*;

use super::OfflineDb;
use crate::storage::schema::evidence_files;
use crate::storage::StorageError;

impl OfflineDb {
    /// Every distinct evidence digest on record after `after`, in order, at most `limit`.
    pub fn evidence_digests_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut conn = self.store.connection()?;
        Ok(evidence_files::table
            .filter(evidence_files::sha256.gt(after))
            .select(evidence_files::sha256)
            .distinct()
            .order(evidence_files::sha256.asc())
            .limit(limit)
            .load(&mut *conn)?)
    }

    /// The order whose upload first stored these bytes, to say where a bad file belongs.
    pub fn evidence_order_of(&self, sha256: &str) -> Result<Option<String>, StorageError> {
        let mut conn = self.store.connection()?;
        Ok(evidence_files::table
            .filter(evidence_files::sha256.eq(sha256))
            .order((evidence_files::uploaded_at.asc(), evidence_files::id.asc()))
            .select(evidence_files::work_order_id)
            .first(&mut *conn)
            .optional()?)
    }
}
