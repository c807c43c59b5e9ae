//! Turning a transition's notices into outbox rows, in the transaction of the change: each
//! audience resolved to the addresses on file, one row per address and mail.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Wake;
use crate::domain::notice::{Audience, Notice};
use crate::storage::{halls, outbox, users, DbConn, StorageError};

/// Where mail goes besides the people and halls in the database: the supervisor address of
/// each home province (`sla.supervisors`).
#[derive(Debug, Clone)]
pub(crate) struct Addressing {
    supervisors: BTreeMap<String, String>,
    wake: Arc<Wake>,
}

impl Addressing {
    pub(crate) fn new(supervisors: &BTreeMap<String, String>, wake: Arc<Wake>) -> Self {
        Self {
            wake,
            supervisors: supervisors
                .iter()
                .filter(|(_, address)| !address.trim().is_empty())
                .map(|(province, address)| (province.clone(), address.trim().to_owned()))
                .collect(),
        }
    }

    /// The addresses an audience reaches; a hall or user without an email reaches none.
    fn addresses(&self, conn: &mut DbConn, who: &Audience) -> Result<Vec<String>, StorageError> {
        Ok(match who {
            Audience::Hall(id) => halls::get(conn, id)?
                .and_then(|h| h.email)
                .into_iter()
                .collect(),
            Audience::HallsOfCity { province, city } => {
                halls::list(conn, Some(province), Some(city))?
                    .into_iter()
                    // A deactivated hall takes no new orders, so it hears of none.
                    .filter(|h| h.deactivated_at.is_none())
                    .filter_map(|h| h.email)
                    .collect()
            }
            Audience::User(name) => users::by_username(conn, name.as_str())?
                .and_then(|u| u.email)
                .into_iter()
                .collect(),
            Audience::Supervisor { province } => self
                .supervisors
                .get(province)
                .cloned()
                .into_iter()
                .collect(),
        })
    }

    /// Writes one outbox row per recipient of each notice (an address once per notice).
    /// Returns how many rows were written.
    pub(crate) fn enqueue(
        &self,
        conn: &mut DbConn,
        notices: &[Notice],
        now: DateTime<Utc>,
    ) -> Result<usize, StorageError> {
        let mut rows = Vec::new();
        for notice in notices {
            let mut recipients: Vec<String> = Vec::new();
            for who in &notice.audience {
                for address in self.addresses(conn, who)? {
                    let address = address.trim().to_owned();
                    if !address.is_empty()
                        && !recipients.iter().any(|r| r.eq_ignore_ascii_case(&address))
                    {
                        recipients.push(address);
                    }
                }
            }
            if recipients.is_empty() {
                continue;
            }
            let facts = serde_json::to_string(&notice.facts)
                .map_err(|e| StorageError::Corrupt(format!("mail facts: {e}")))?;
            for recipient in recipients {
                rows.push(outbox::new_row(
                    Some(notice.facts.work_order_id.as_str()),
                    notice.facts.event.as_str(),
                    &recipient,
                    facts.clone(),
                    now,
                ));
            }
        }
        outbox::insert(conn, &rows)?;
        if !rows.is_empty() {
            self.wake.mail_written();
        }
        Ok(rows.len())
    }
}
