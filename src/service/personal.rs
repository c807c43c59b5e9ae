//! Personal data at rest, as the service uses it: each subscriber's data key (made on first
//! need, in the caller's write transaction), sealing and opening values, the blind index, and
//! sealing values written before encryption at rest.
//!
//! Data keys are unwrapped per use, not cached: an unwrap is one AEAD over 32 bytes, the
//! lookup one indexed read the step makes anyway, and a cache would keep a shredded key
//! usable on other instances until it expired.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{Error, Result};
use crate::config::{Mode, Settings};
use crate::crypto::index::IndexKind;
use crate::crypto::replay::ReplayKey;
use crate::crypto::{field, BlindIndex, CryptoError, DataKey, Kek, Keyring};
use crate::domain::masking::mask_name;
use crate::storage::data_keys::{self, DataKeyRow};
use crate::storage::work_orders::StoredName;
use crate::storage::{secrets, verification_results, work_orders, Backend, DbConn};

/// The `service_secrets` row holding the blind-index key, wrapped by the KEK.
pub const INDEX_KEY: &str = "blind_index_key";

/// The keyring and the blind index every action seals, opens and searches with.
#[derive(Debug)]
pub struct Crypto {
    keyring: Keyring,
    index: BlindIndex,
    /// Seals stored responses of idempotent requests and keys their request digests.
    replay: ReplayKey,
}

/// The keyring the settings name. In production mode, and on PostgreSQL whatever the mode
/// (instances sharing a database must share the KEK), `crypto.kek_file` must name a readable
/// KEK; the embedded default generates `data_dir/kek.hex` on first start.
pub fn keyring(settings: &Settings, backend: Backend) -> std::result::Result<Keyring, CryptoError> {
    let given = kek_given(settings, backend)?;
    Keyring::from_files(&settings.kek_path(), !given, &previous_keks(settings))
}

/// What [`keyring`] would refuse, making nothing (`crossprov config check`, and `serve`
/// before it opens the database): the embedded default's KEK may be absent until first start.
pub fn check_keyring(
    settings: &Settings,
    backend: Backend,
) -> std::result::Result<(), CryptoError> {
    let given = kek_given(settings, backend)?;
    let previous = previous_keks(settings);
    if !given && !settings.kek_path().exists() {
        for file in &previous {
            Kek::load(file)?;
        }
        return Ok(());
    }
    Keyring::from_files(&settings.kek_path(), false, &previous).map(drop)
}

/// Whether `crypto.kek_file` is set; an error where it must be and is not.
fn kek_given(settings: &Settings, backend: Backend) -> std::result::Result<bool, CryptoError> {
    let given = !settings.crypto.kek_file.trim().is_empty();
    let must_be_given = settings.mode == Mode::Production || backend == Backend::Postgres;
    if must_be_given && !given {
        let why = if backend == Backend::Postgres {
            "crypto.kek_file (CROSSPROV_CRYPTO__KEK_FILE) must name the KEK file every instance sharing this PostgreSQL database uses"
        } else {
            "crypto.kek_file (CROSSPROV_CRYPTO__KEK_FILE) must name the KEK file in production mode"
        };
        return Err(CryptoError::KekFile {
            file: "(unset)".into(),
            why: why.into(),
        });
    }
    Ok(given)
}

fn previous_keks(settings: &Settings) -> Vec<PathBuf> {
    settings
        .crypto
        .previous_kek_files
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| PathBuf::from(p.trim()))
        .collect()
}

impl Crypto {
    /// Agrees with the other instances on the blind-index key (the first to start makes it),
    /// in the caller's start-up transaction.
    pub fn agree(keyring: Keyring, tx: &mut DbConn) -> Result<Self> {
        let fresh = keyring.wrap_secret(INDEX_KEY, &DataKey::generate())?;
        let stored = secrets::get_or_insert(tx, INDEX_KEY, &fresh)?;
        let key = keyring.unwrap_secret(INDEX_KEY, &stored)?;
        Ok(Self {
            index: BlindIndex::new(&key),
            replay: ReplayKey::derive(&key),
            keyring,
        })
    }

    pub fn replay(&self) -> &ReplayKey {
        &self.replay
    }

    pub fn index(&self, kind: IndexKind, raw: &str) -> String {
        self.index.of(kind, raw)
    }

    /// The subscriber's live data key, made and stored wrapped if it has none.
    pub fn live_key(
        &self,
        tx: &mut DbConn,
        msisdn: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, DataKey)> {
        if let Some(row) = data_keys::live_for(tx, msisdn)? {
            return Ok((row.id.clone(), self.unwrap(&row)?.ok_or_else(shredded)?));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let key = DataKey::generate();
        let (kek_id, wrapped) = self.keyring.wrap(&id, &key)?;
        data_keys::insert_live(
            tx,
            &DataKeyRow {
                id: id.clone(),
                msisdn: msisdn.to_owned(),
                kek_id,
                wrapped: Some(wrapped),
                created_at: now.naive_utc(),
                shredded_at: None,
            },
        )?;
        // Another transaction may have made one first: use whichever is stored.
        let row = data_keys::live_for(tx, msisdn)?
            .ok_or_else(|| Error::Internal("a data key vanished as it was made".into()))?;
        if row.id == id {
            return Ok((id, key));
        }
        Ok((row.id.clone(), self.unwrap(&row)?.ok_or_else(shredded)?))
    }

    /// The key a row names; None once shredded.
    pub fn unwrap(&self, row: &DataKeyRow) -> Result<Option<DataKey>> {
        unwrap_row(&self.keyring, row)
    }

    /// The data key `id`; None when shredded (or unknown).
    pub fn key(&self, conn: &mut DbConn, id: &str) -> Result<Option<DataKey>> {
        match data_keys::get(conn, id)? {
            Some(row) => self.unwrap(&row),
            None => Ok(None),
        }
    }

    /// A stored value opened: None once its key is shredded. A plain value (written before
    /// encryption at rest, not yet sealed) is returned as it is.
    pub fn open(&self, conn: &mut DbConn, stored: &str, ad: &str) -> Result<Option<String>> {
        if !field::is_sealed(stored) {
            return Ok(Some(stored.to_owned()));
        }
        let key_id = field::sealed_key_id(stored).ok_or(CryptoError::Open("no key id"))?;
        match self.key(conn, key_id)? {
            Some(key) => Ok(Some(field::open(&key, stored, ad)?)),
            None => Ok(None),
        }
    }

    /// Opens many values of one column at once (a page of orders): one query for the keys.
    pub fn open_many(
        &self,
        conn: &mut DbConn,
        values: &[(String, String)],
        ad: impl Fn(&str) -> String,
    ) -> Result<Vec<(String, Option<String>)>> {
        let ids: Vec<String> = values
            .iter()
            .filter_map(|(_, v)| field::sealed_key_id(v).map(str::to_owned))
            .collect();
        let rows = data_keys::get_many(conn, &ids)?;
        let mut out = Vec::with_capacity(values.len());
        for (row_id, stored) in values {
            let opened = match field::sealed_key_id(stored) {
                None => Some(stored.clone()),
                Some(key_id) => match rows.iter().find(|r| r.id == key_id) {
                    Some(r) => match self.unwrap(r)? {
                        Some(key) => Some(field::open(&key, stored, &ad(row_id))?),
                        None => None,
                    },
                    None => None,
                },
            };
            out.push((row_id.clone(), opened));
        }
        Ok(out)
    }

    /// `expected_name` of order `order_id` sealed under the subscriber's key, with its index.
    pub fn seal_name(
        &self,
        key_id: &str,
        key: &DataKey,
        order_id: &str,
        name: &str,
    ) -> Result<StoredName> {
        Ok(StoredName {
            sealed: field::seal(key, key_id, &name_ad(order_id), name)?,
            index: self.index(IndexKind::Name, name),
        })
    }
}

/// A stored data key unwrapped with `keyring`; None once shredded.
pub fn unwrap_row(keyring: &Keyring, row: &DataKeyRow) -> Result<Option<DataKey>> {
    match &row.wrapped {
        None => Ok(None),
        Some(w) => Ok(Some(keyring.unwrap(&row.id, &row.kek_id, w)?)),
    }
}

fn shredded() -> Error {
    Error::Shredded
}

pub fn name_ad(order_id: &str) -> String {
    field::field_ad("work_orders", "expected_name", order_id)
}

pub fn jws_ad(result_id: &str) -> String {
    field::field_ad("verification_results", "jws", result_id)
}

/// The ID number and name a result's payload carries (read, not verified: it was verified
/// when accepted), for the blind index of a result sealed after the fact.
pub fn document_of(jws: &str) -> (Option<String>, Option<String>) {
    let payload = crate::signing::jws::CompactJws::parse(jws)
        .ok()
        .and_then(|p| p.payload_json());
    let doc = payload.as_ref().and_then(|p| p.get("document"));
    let field = |name: &str| {
        doc.and_then(|d| d.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    (field("number"), field("name"))
}

/// Values written before encryption at rest, sealed in batches at start (`serve`, `migrate`);
/// each batch its own short transaction. Returns how many values it sealed.
pub fn seal_plain_batch(
    crypto: &Crypto,
    tx: &mut DbConn,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<usize> {
    let mut sealed = 0;
    for (id, msisdn, name) in work_orders::plain_names(tx, limit)? {
        let (key_id, key) = crypto.live_key(tx, &msisdn, now)?;
        let stored = crypto.seal_name(&key_id, &key, &id, &name)?;
        work_orders::seal_name(tx, &id, &mask_name(&name), &stored)?;
        sealed += 1;
    }
    for (id, msisdn, jws) in verification_results::plain_results(tx, limit)? {
        let (key_id, key) = crypto.live_key(tx, &msisdn, now)?;
        let (number, name) = document_of(&jws);
        let stored = field::seal(&key, &key_id, &jws_ad(&id), &jws)?;
        verification_results::seal_jws(
            tx,
            &id,
            &stored,
            number.map(|n| crypto.index(IndexKind::DocumentNumber, &n)),
            name.map(|n| crypto.index(IndexKind::Name, &n)),
        )?;
        sealed += 1;
    }
    Ok(sealed)
}

/// What every entry point that touches personal data runs first (`serve`, `migrate`, the
/// retention and rotation commands): the keyring, the blind-index key agreed with the other
/// instances, and every value still plain sealed.
pub(crate) fn prepare(
    settings: &Settings,
    store: &crate::storage::Store,
    clock: &super::Clock,
) -> Result<Crypto> {
    use super::{write_blocking, ChainLock};
    use crate::audit::Recorder;
    let keyring = keyring(settings, store.backend())?;
    // Instances starting at once take turns: the first stores the index key.
    let crypto = write_blocking(
        store,
        clock,
        ChainLock::First,
        &Recorder::system(),
        |tx, _| Ok(Crypto::agree(keyring, tx)?),
    )?;
    let mut total = 0;
    loop {
        let n = write_blocking(
            store,
            clock,
            ChainLock::NotNeeded,
            &Recorder::system(),
            |tx, now| Ok(seal_plain_batch(&crypto, tx, now, 200)?),
        )?;
        if n == 0 {
            break;
        }
        total += n;
    }
    if total > 0 {
        tracing::info!(
            sealed = total,
            "sealed personal data written before encryption at rest"
        );
    }
    Ok(crypto)
}
