//! Idempotent retries: a key is reserved (in flight) in a write of its own before the
//! request's work, and completed with the response after; a repeat is answered from the
//! stored response. `domain::idempotency::decide` says what a stored key means for a repeat.

use std::time::Duration as StdDuration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{ChainLock, Error, Result, Services};
use crate::audit::Recorder;
use crate::crypto::field::field_ad;
use crate::crypto::replay::BodyDigest;
use crate::domain::idempotency::{decide, Decision, IdempotencyKey, KeyState, Target};
use crate::domain::Username;
use crate::storage::idempotency::{self as keys, Completion, KeyRow};

/// A key held by this request: complete it with the response, or release it.
#[derive(Debug)]
pub struct Ticket {
    caller: String,
    key: IdempotencyKey,
    attempt: String,
}

/// A response as it is kept with its key and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The headers a client relies on (`Content-Type`, `Location`, `ETag`, …), lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How a response is written inside its seal.
#[derive(Serialize, Deserialize)]
struct Sealed {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// The first request's answer and what it was asked with.
#[derive(Debug)]
pub struct Replay {
    pub request_digest: String,
    pub request_bytes: u64,
    pub response: StoredResponse,
}

/// What a request carrying a key is to do.
#[derive(Debug)]
pub enum Begin {
    /// The key is this request's: do the work, then complete or release the ticket.
    Proceed(Ticket),
    /// Answer the stored response if the body is the same as the first request's.
    Replay(Replay),
    /// The first request is still running.
    InFlight,
    /// The key was used for another method or path.
    Reused,
}

fn response_ad(caller: &str, key: &IdempotencyKey, attempt: &str) -> String {
    let row = format!("{caller}|{}|{attempt}", key.as_str());
    field_ad("idempotency_keys", "response", &row)
}

impl Services {
    /// A digest of a request body, fed as the body streams in.
    pub fn request_digest(&self) -> BodyDigest {
        self.crypto.replay().digest()
    }

    /// Looks the caller's key up and, when it is free (or its request died), reserves it for
    /// this request in a write of its own, committed before the work starts.
    pub async fn begin_idempotent(
        &self,
        caller: &Username,
        key: IdempotencyKey,
        target: Target,
    ) -> Result<Begin> {
        let caller = caller.as_str().to_owned();
        let (ttl, lease) = (
            Duration::seconds(self.settings.idempotency.ttl_seconds),
            Duration::seconds(self.settings.idempotency.lease_seconds),
        );
        let crypto = self.crypto.clone();
        let by = Recorder::new(&caller, "idempotency");
        self.write_bookkeeping(by, move |tx, now| {
            let wall = Utc::now();
            let row = keys::get_for_update(tx, &caller, key.as_str())?;
            let state = row.as_ref().map(|r| KeyState {
                target: Target {
                    method: r.method.clone(),
                    path: r.path.clone(),
                },
                completed: r.response.is_some(),
                lease_until: r.lease_until.map(|t| t.and_utc()),
                expires_at: r.expires_at.and_utc(),
            });
            let fresh = KeyRow {
                caller: caller.clone(),
                idem_key: key.as_str().to_owned(),
                method: target.method.clone(),
                path: target.path.clone(),
                attempt: uuid::Uuid::new_v4().to_string(),
                lease_until: Some((wall + lease).naive_utc()),
                request_digest: None,
                request_bytes: None,
                status: None,
                response: None,
                created_at: now.naive_utc(),
                expires_at: (now + ttl).naive_utc(),
            };
            let reserved = match (decide(state.as_ref(), &target, now, wall), row) {
                (Decision::InFlight, _) => return Ok(Begin::InFlight),
                (Decision::Reused, _) => return Ok(Begin::Reused),
                (Decision::Replay, Some(row)) => {
                    let sealed = row.response.as_deref().unwrap_or_default();
                    let ad = response_ad(&caller, &key, &row.attempt);
                    let plain = crypto.replay().open(&ad, sealed)?;
                    let stored: Sealed = serde_json::from_slice(&plain)
                        .map_err(|e| Error::Internal(format!("a stored response: {e}")))?;
                    return Ok(Begin::Replay(Replay {
                        request_digest: row.request_digest.unwrap_or_default(),
                        request_bytes: row
                            .request_bytes
                            .and_then(|n| u64::try_from(n).ok())
                            .unwrap_or_default(),
                        response: StoredResponse {
                            status: stored.status,
                            headers: stored.headers,
                            body: B64
                                .decode(stored.body)
                                .map_err(|e| Error::Internal(format!("a stored response: {e}")))?,
                        },
                    }));
                }
                (_, Some(row)) => keys::replace(tx, &fresh, &row.attempt)?,
                (_, None) => keys::insert_new(tx, &fresh)?,
            };
            // Another request reserved it between our read and our write: it is in flight.
            Ok(if reserved {
                Begin::Proceed(Ticket {
                    caller,
                    key,
                    attempt: fresh.attempt,
                })
            } else {
                Begin::InFlight
            })
        })
        .await
    }

    /// Stores the response with the key, sealed. False when the key is no longer this
    /// request's (its lease ran out and a repeat took it over).
    pub async fn complete_idempotent(
        &self,
        ticket: Ticket,
        request_digest: String,
        request_bytes: u64,
        response: &StoredResponse,
    ) -> Result<bool> {
        let plain = serde_json::to_vec(&Sealed {
            status: response.status,
            headers: response.headers.clone(),
            body: B64.encode(&response.body),
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let ad = response_ad(&ticket.caller, &ticket.key, &ticket.attempt);
        let sealed = self.crypto.replay().seal(&ad, &plain)?;
        let status = i32::from(response.status);
        let bytes = i64::try_from(request_bytes).unwrap_or(i64::MAX);
        let by = Recorder::new(&ticket.caller, "idempotency");
        self.write_bookkeeping(by, move |tx, _| {
            let done = Completion {
                request_digest: &request_digest,
                request_bytes: bytes,
                status,
                response: &sealed,
            };
            Ok(keys::complete(
                tx,
                &ticket.caller,
                ticket.key.as_str(),
                &ticket.attempt,
                &done,
            )?)
        })
        .await
    }

    /// Frees the key for a retry: the request met a server error (nothing to keep).
    pub async fn release_idempotent(&self, ticket: Ticket) -> Result<()> {
        let by = Recorder::new(&ticket.caller, "idempotency");
        self.write_bookkeeping(by, move |tx, _| {
            Ok(keys::release(
                tx,
                &ticket.caller,
                ticket.key.as_str(),
                &ticket.attempt,
            )?)
        })
        .await
    }

    /// Deletes the keys past `idempotency.ttl_seconds`; returns how many.
    pub async fn prune_idempotency_keys(&self) -> Result<usize> {
        self.write(ChainLock::NotNeeded, Recorder::system(), |tx, now| {
            Ok(keys::prune(tx, now.naive_utc())?)
        })
        .await
    }
}

/// The pass every `serve` instance runs: expired keys deleted every
/// `idempotency.prune_interval_seconds`. Safe on many instances (a plain DELETE by time).
pub async fn run(services: Services) {
    let every = StdDuration::from_secs(services.settings().idempotency.prune_interval_seconds);
    super::prune_periodically(every, "expired idempotency keys", || {
        services.prune_idempotency_keys()
    })
    .await
}
