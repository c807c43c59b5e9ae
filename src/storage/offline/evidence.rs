//! What `evidence verify` asks of the database: the files on record, a page at a time, and
//! the (wrapped) data keys their objects are sealed under.

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::OfflineDb;
use crate::storage::data_keys::{self, DataKeyRow};
use crate::storage::evidence::EvidenceRow;
use crate::storage::objects::ObjectName;
use crate::storage::schema::evidence_files;
use crate::storage::StorageError;

impl OfflineDb {
    /// Files on record after the id `after` whose objects should be there (not shredded), in
    /// id order, at most `limit`.
    pub fn evidence_files_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<EvidenceRow>, StorageError> {
        let mut conn = self.store.connection()?;
        Ok(evidence_files::table
            .filter(evidence_files::id.gt(after))
            .filter(evidence_files::shredded_at.is_null())
            .order(evidence_files::id.asc())
            .limit(limit)
            .select(EvidenceRow::as_select())
            .load(&mut **conn)?)
    }

    /// Every object the files on record name (not shredded), read a page at a time.
    pub fn named_evidence_objects(&self) -> Result<BTreeSet<ObjectName>, StorageError> {
        const PAGE: i64 = 500;
        let mut names = BTreeSet::new();
        let mut after = String::new();
        loop {
            let page = self.evidence_files_after(&after, PAGE)?;
            let Some(last) = page.last().map(|r| r.id.clone()) else {
                return Ok(names);
            };
            names.extend(page.iter().map(EvidenceRow::object));
            after = last;
        }
    }

    /// A data key's row (wrapped; `wrapped` NULL once shredded).
    pub fn data_key(&self, id: &str) -> Result<Option<DataKeyRow>, StorageError> {
        let mut conn = self.store.connection()?;
        data_keys::get(&mut conn, id)
    }
}
