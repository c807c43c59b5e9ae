//! Witness-cosigned checkpoints: every `audit.checkpoint_seconds` (and on demand) the log's
//! head is signed as a C2SP checkpoint note beside the JWS checkpoint, pushed with a
//! consistency proof to each configured witness (`tlog-witness` `add-checkpoint`), and the
//! cosignatures they answer are kept; the latest note with a quorum of them is served.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::{ChainLock, Error, Result, Services};
use crate::audit::note::{self, CheckpointBody, SignedNote, VerifierKey};
use crate::audit::Recorder;
use crate::config::Settings;
use crate::domain::access::{Actor, Permission};
use crate::domain::{Detail, DomainError};
use crate::storage::notes::{self, CosignatureRow, NoteRow};
use crate::storage::{audit as store, DbConn};

/// How long one witness may take to answer.
const WITNESS_TIMEOUT: Duration = Duration::from_secs(10);

/// How many cosignature rows are looked through for the latest size with a quorum.
const QUORUM_LOOKBACK: i64 = 10_000;

/// A witness from `audit.witnesses`, its key parsed.
#[derive(Debug, Clone)]
pub struct ConfiguredWitness {
    pub url: String,
    pub key: VerifierKey,
}

/// The configured witnesses; the first key that does not parse (or is no cosignature key)
/// is named.
pub fn witnesses(settings: &Settings) -> std::result::Result<Vec<ConfiguredWitness>, String> {
    settings
        .audit
        .witnesses
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let key =
                VerifierKey::parse(&w.key).map_err(|e| format!("audit.witnesses[{i}].key: {e}"))?;
            if key.sig_type != note::TYPE_COSIGNATURE {
                return Err(format!(
                    "audit.witnesses[{i}].key: not a witness cosignature key (type 0x04)"
                ));
            }
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(format!("audit.witnesses[{i}].url: not an http(s) URL"));
            }
            Ok(ConfiguredWitness {
                url: w.url.trim_end_matches('/').to_owned(),
                key,
            })
        })
        .collect()
}

/// The refusals `serve` and `config check` report for the `[audit]` settings.
pub fn check_settings(settings: &Settings) -> Vec<String> {
    let mut refused = Vec::new();
    let origin = &settings.audit.origin;
    if VerifierKey::new(origin, note::TYPE_ED25519, [0; 32]).is_err() {
        refused.push(format!(
            "audit.origin {origin:?}: a note key name is non-empty, without spaces or +"
        ));
    }
    match witnesses(settings) {
        Err(e) => refused.push(e),
        Ok(w) if settings.audit.quorum > w.len() => refused.push(format!(
            "audit.quorum = {} but only {} witnesses are configured",
            settings.audit.quorum,
            w.len()
        )),
        Ok(_) => {}
    }
    if settings.audit.sequencing_delay_ms < 10 {
        refused.push(format!(
            "audit.sequencing_delay_ms = {}: at least 10",
            settings.audit.sequencing_delay_ms
        ));
    }
    if !settings.audit.witnesses.is_empty() {
        let path = settings.service_key_path();
        if let Ok(key) = crate::signing::keys::PrivateKey::from_file(&path) {
            if key.ed25519_public().is_none() {
                refused.push(format!(
                    "audit.witnesses: the service key {} is not Ed25519; signed notes need one",
                    path.display()
                ));
            }
        }
    }
    refused
}

impl Services {
    /// The service key as the log's note key (name = `audit.origin`, type 0x01).
    pub(crate) fn log_vkey(&self) -> Result<VerifierKey> {
        let public =
            self.service_key.key.ed25519_public().ok_or_else(|| {
                Error::Internal("signed notes need an Ed25519 service key".into())
            })?;
        VerifierKey::new(&self.settings.audit.origin, note::TYPE_ED25519, public)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// The note at the current size: the latest one if the log has not grown since,
    /// otherwise a new one, signed outside any transaction and kept (first kept wins).
    async fn keep_current_note(&self) -> Result<SignedNote> {
        let (size, root, latest) = self
            .store
            .read(|c| -> Result<_> {
                let head = store::head(c)?;
                let latest = notes::latest_note(c)?.filter(|n| n.size == head.size);
                Ok((head.size, head.frontier()?.root(), latest))
            })
            .await?;
        if let Some(latest) = latest {
            return parse_kept(&latest.note);
        }
        let vkey = self.log_vkey()?;
        let body = CheckpointBody::new(
            &vkey.name,
            u64::try_from(size).map_err(|_| Error::Internal("negative log size".into()))?,
            root,
        );
        let text = body.text();
        let sig = note::sign(&text, &vkey, |m| self.service_key.key.sign_ed25519(m))?;
        let signed = SignedNote {
            text,
            signatures: vec![sig],
        };
        let row = NoteRow {
            size,
            note: signed.encode(),
            at: self.now().naive_utc(),
        };
        let kept = self
            .write(ChainLock::NotNeeded, Recorder::system(), move |c, _| {
                Ok(notes::keep_note(c, &row)?)
            })
            .await?;
        parse_kept(&kept.note)
    }

    /// One round: the JWS and the note at the current size, pushed to every witness that
    /// has not cosigned it yet; answers the note with the cosignatures kept for it. A witness
    /// that refuses or cannot be reached is logged and left for the next round.
    pub(crate) async fn cosigning_round(&self) -> Result<String> {
        self.keep_current_checkpoint().await?;
        let signed = self.keep_current_note().await?;
        let size = CheckpointBody::parse(&signed.text)
            .map_err(|e| Error::Internal(e.to_string()))?
            .size;
        let configured = witnesses(&self.settings).map_err(Error::Internal)?;
        if !configured.is_empty() {
            let client = reqwest::Client::builder()
                .timeout(WITNESS_TIMEOUT)
                .build()
                .map_err(|e| Error::Internal(e.to_string()))?;
            for w in &configured {
                if let Err(why) = self.push(&client, w, &signed, size).await {
                    tracing::warn!(witness = %w.key.name, url = %w.url, size, error = %why, "the witness did not cosign the checkpoint");
                }
            }
        }
        let size = i64::try_from(size).map_err(|_| Error::Internal("log size".into()))?;
        self.store
            .read(move |c| assemble(c, size, &configured))
            .await
    }

    /// Sends the note to one witness, from the size it last cosigned (re-learnt from its
    /// 409 answer when this database does not know it), and keeps its cosignature.
    async fn push(
        &self,
        client: &reqwest::Client,
        w: &ConfiguredWitness,
        signed: &SignedNote,
        size: u64,
    ) -> std::result::Result<(), String> {
        let vkey = w.key.encode();
        let who = vkey.clone();
        let known = self
            .store
            .read(move |c| -> Result<_> { Ok(notes::last_cosigned(c, &who)?) })
            .await
            .map_err(|e| e.to_string())?;
        let mut old = known.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        if old == size {
            return Ok(());
        }
        for _ in 0..3 {
            if old > size {
                return Err(format!(
                    "the witness cosigned size {old}, beyond the log's {size}: the log was cut"
                ));
            }
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                self.store
                    .read(move |c| super::audit::consistency_path(c, old, size))
                    .await
                    .map_err(|e| e.to_string())?
            };
            let body = crate::witness::submission(old, &proof, signed);
            let res = client
                .post(format!("{}/add-checkpoint", w.url))
                .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let media = res
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let text = res.text().await.map_err(|e| e.to_string())?;
            match status {
                200 => return self.keep_cosignature(w, vkey, signed, size, &text).await,
                409 if media.starts_with("text/x.tlog.size") => {
                    old = text
                        .trim()
                        .parse()
                        .map_err(|_| format!("409 with a size that is no number: {text:?}"))?;
                }
                _ => return Err(format!("{status}: {}", text.trim())),
            }
        }
        Err("the witness's size kept changing".into())
    }

    /// Keeps the first line of the answer that is the witness's valid cosignature.
    async fn keep_cosignature(
        &self,
        w: &ConfiguredWitness,
        vkey: String,
        signed: &SignedNote,
        size: u64,
        answer: &str,
    ) -> std::result::Result<(), String> {
        let lines = note::parse_signature_lines(answer).map_err(|e| e.to_string())?;
        let valid = lines.into_iter().find(|s| {
            let alone = SignedNote {
                text: signed.text.clone(),
                signatures: vec![s.clone()],
            };
            alone.cosigned_by(&w.key).is_some()
        });
        let line = valid.ok_or("the answer holds no valid cosignature by the witness's key")?;
        let row = CosignatureRow {
            witness: vkey,
            size: i64::try_from(size).map_err(|e| e.to_string())?,
            line: line.line(),
            at: self.now().naive_utc(),
        };
        self.write(ChainLock::NotNeeded, Recorder::system(), move |c, _| {
            Ok(notes::keep_cosignature(c, &row)?)
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// `POST /api/v1/audit/checkpoint/note`: a round now.
    pub(crate) async fn checkpoint_note_now(&self, actor: Actor) -> Result<String> {
        actor.require(Permission::ReadAudit)?;
        self.cosigning_round().await
    }

    /// `GET /api/v1/audit/checkpoint/note`: the latest note cosigned by `audit.quorum` of
    /// the configured witnesses, with their cosignatures.
    pub(crate) async fn cosigned_note(&self, actor: Actor) -> Result<String> {
        actor.require(Permission::ReadAudit)?;
        let configured = witnesses(&self.settings).map_err(Error::Internal)?;
        let quorum = self.settings.audit.quorum;
        self.store
            .read(move |c| {
                let size = if quorum == 0 {
                    notes::latest_note(c)?.map(|n| n.size)
                } else {
                    let keys: Vec<String> = configured.iter().map(|w| w.key.encode()).collect();
                    let sizes = notes::cosigned_sizes(c, &keys, QUORUM_LOOKBACK)?;
                    // Largest first, one row per witness and size: the first size seen
                    // `quorum` times is the latest with a quorum.
                    sizes
                        .iter()
                        .find(|s| sizes.iter().filter(|t| t == s).count() >= quorum)
                        .copied()
                };
                let size = size.ok_or_else(|| {
                    DomainError::NotFound(Detail::new(
                        format!("尚无经 {quorum} 个见证方联署的检查点"),
                        format!("no checkpoint note has been cosigned by {quorum} witnesses yet"),
                    ))
                })?;
                assemble(c, size, &configured)
            })
            .await
    }
}

fn parse_kept(text: &str) -> Result<SignedNote> {
    SignedNote::parse(text).map_err(|e| Error::Internal(format!("a kept note: {e}")))
}

/// The note of `size` with the kept cosignatures of the configured witnesses that verify.
fn assemble(c: &mut DbConn, size: i64, configured: &[ConfiguredWitness]) -> Result<String> {
    let row = notes::note_at(c, size)?
        .ok_or_else(|| Error::Internal(format!("no note kept at size {size}")))?;
    let mut signed = parse_kept(&row.note)?;
    for kept in notes::cosignatures_at(c, size)? {
        let Some(w) = configured.iter().find(|w| w.key.encode() == kept.witness) else {
            continue;
        };
        let Ok(lines) = note::parse_signature_lines(&kept.line) else {
            continue;
        };
        for line in lines {
            let alone = SignedNote {
                text: signed.text.clone(),
                signatures: vec![line.clone()],
            };
            if alone.cosigned_by(&w.key).is_some() {
                signed.add([line]);
            }
        }
    }
    Ok(signed.encode())
}

/// Runs inside `serve`: every `audit.checkpoint_seconds`, the instance holding the lease
/// runs a round (another takes over when its holder stops renewing, after three periods).
pub async fn run(services: Services) {
    let every = services.settings().audit.checkpoint_seconds;
    if every == 0 {
        return std::future::pending().await;
    }
    if let Err(e) = services.log_vkey() {
        tracing::warn!(error = %e, "no periodic checkpoint notes: signed notes need an Ed25519 service key");
        return std::future::pending().await;
    }
    let me = uuid::Uuid::new_v4().to_string();
    let lease = chrono::Duration::seconds(i64::try_from(every.saturating_mul(3)).unwrap_or(3600));
    loop {
        tokio::time::sleep(Duration::from_secs(every)).await;
        let owner = me.clone();
        let taken = services
            .write(ChainLock::NotNeeded, Recorder::system(), move |c, _| {
                let wall = chrono::Utc::now().naive_utc();
                Ok(notes::take_lease(c, &owner, wall, wall + lease)?)
            })
            .await;
        match taken {
            Ok(true) => {
                if let Err(e) = services.cosigning_round().await {
                    tracing::warn!(error = %e, "the checkpoint round failed; trying again");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "the checkpoint lease could not be read"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::WitnessSettings;

    #[test]
    fn witness_settings_that_could_never_work_are_refused() {
        let good = VerifierKey::new("w.test/1", note::TYPE_COSIGNATURE, [7; 32])
            .unwrap()
            .encode();
        let log_key = VerifierKey::new("w.test/1", note::TYPE_ED25519, [7; 32])
            .unwrap()
            .encode();
        let mut s = Settings::defaults().unwrap();
        s.data_dir = std::env::temp_dir().join("crossprov-no-such-folder");
        assert!(check_settings(&s).is_empty(), "{:?}", check_settings(&s));
        let cases: [(&str, &str, usize, &str); 4] = [
            ("http://w.test", "nonsense", 0, "audit.witnesses[0].key"),
            ("http://w.test", log_key.as_str(), 0, "type 0x04"),
            ("ftp://w.test", good.as_str(), 0, "audit.witnesses[0].url"),
            ("http://w.test", good.as_str(), 2, "audit.quorum = 2"),
        ];
        for (url, key, quorum, says) in cases {
            s.audit.witnesses = vec![WitnessSettings {
                url: url.into(),
                key: key.into(),
            }];
            s.audit.quorum = quorum;
            let refused = check_settings(&s);
            assert_eq!(refused.len(), 1, "{refused:?}");
            assert!(refused[0].contains(says), "{refused:?}");
        }
        s.audit.quorum = 1;
        s.audit.witnesses[0].url = "https://w.test/prefix/".into();
        assert!(check_settings(&s).is_empty());
        assert_eq!(witnesses(&s).unwrap()[0].url, "https://w.test/prefix");
    }
}
