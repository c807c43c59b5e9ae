//! Witness-cosigned checkpoints: two `crossprov witness serve` processes cosign the log's
//! signed notes, refuse a fork and a rollback, and `audit verify --quorum` holds the service
//! to them; single-event proofs checked with no database. The notes are read here by a
//! verifier written from the C2SP texts (signed-note, tlog-checkpoint, tlog-cosignature),
//! not by the code under test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crossprov::audit::chain;
use crossprov::config::{Settings, WitnessSettings};

use crate::audit::{audit_verify, sql};
use crate::helpers::ErrorCode::*;
use crate::helpers::{free_port, spawn_app_with, Backend, TestApp, World};

// ---- An independent reading of the C2SP specifications ----

/// signed-note: key ID = SHA-256(name || 0x0A || type || public key)[:4].
fn spec_key_id(name: &str, sig_type: u8, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, sig_type]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A vkey: `<name>+<hex key ID>+<base64(type || public key)>`.
fn spec_vkey(name: &str, sig_type: u8, public: &[u8]) -> String {
    let mut material = vec![sig_type];
    material.extend_from_slice(public);
    format!(
        "{name}+{}+{}",
        hex::encode(spec_key_id(name, sig_type, public)),
        STANDARD.encode(material)
    )
}

/// signed-note: the text (up to the last blank line, its final newline included) and the
/// signature lines `— <name> <base64(key ID || signature)>`.
fn spec_split(note: &str) -> (String, Vec<(String, Vec<u8>)>) {
    let at = note
        .rfind("\n\n")
        .expect("a blank line before the signatures");
    let text = note[..=at].to_owned();
    let sigs = note[at + 2..]
        .lines()
        .map(|l| {
            let rest = l.strip_prefix("\u{2014} ").expect("an em dash and a space");
            let (name, b64) = rest.split_once(' ').expect("name and signature");
            (name.to_owned(), STANDARD.decode(b64).expect("base64"))
        })
        .collect();
    (text, sigs)
}

/// The log's Ed25519 note signature (type 0x01) over the text verifies.
fn spec_signed_by_log(note: &str, origin: &str, public: &[u8]) -> bool {
    let (text, sigs) = spec_split(note);
    let id = spec_key_id(origin, 0x01, public);
    sigs.iter().any(|(name, raw)| {
        name == origin
            && raw[..4] == id
            && UnparsedPublicKey::new(&ED25519, public)
                .verify(text.as_bytes(), &raw[4..])
                .is_ok()
    })
}

/// tlog-cosignature: type 0x04, `key ID || u64 timestamp || Ed25519 signature` over
/// `cosignature/v1\ntime <t>\n` followed by the note text. The witnesses that cosigned.
fn spec_cosigners(note: &str, witnesses: &[(String, Vec<u8>)]) -> usize {
    let (text, sigs) = spec_split(note);
    witnesses
        .iter()
        .filter(|(wname, public)| {
            let id = spec_key_id(wname, 0x04, public);
            sigs.iter().any(|(name, raw)| {
                if name != wname || raw.len() != 4 + 8 + 64 || raw[..4] != id {
                    return false;
                }
                let t = u64::from_be_bytes(raw[4..12].try_into().unwrap());
                let message = format!("cosignature/v1\ntime {t}\n{text}");
                UnparsedPublicKey::new(&ED25519, public)
                    .verify(message.as_bytes(), &raw[12..])
                    .is_ok()
            })
        })
        .count()
}

/// tlog-checkpoint: origin, decimal size, base64 root hash.
fn spec_checkpoint(note: &str) -> (String, u64, [u8; 32]) {
    let (text, _) = spec_split(note);
    let lines: Vec<&str> = text.lines().collect();
    let root = STANDARD.decode(lines[2]).expect("base64 root");
    (
        lines[0].to_owned(),
        lines[1].parse().expect("decimal size"),
        root.try_into().expect("32 bytes"),
    )
}

/// Signs a note text as the log would (type 0x01), for the requests made by hand.
fn spec_sign(text: &str, origin: &str, pair: &Ed25519KeyPair) -> String {
    let mut raw = spec_key_id(origin, 0x01, pair.public_key().as_ref()).to_vec();
    raw.extend_from_slice(pair.sign(text.as_bytes()).as_ref());
    format!("{text}\n\u{2014} {origin} {}\n", STANDARD.encode(raw))
}

// ---- Keys and witness processes ----

/// A fresh Ed25519 key written as PKCS#8 PEM; the pair to sign with by hand.
fn ed25519_key(path: &Path) -> Ed25519KeyPair {
    let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let doc = pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec());
    std::fs::write(path, pem::encode(&doc)).unwrap();
    Ed25519KeyPair::from_pkcs8(der.as_ref()).unwrap()
}

/// A `crossprov witness serve` process, killed when dropped.
struct WitnessProcess {
    child: Child,
    url: String,
    name: String,
    public: Vec<u8>,
    log: PathBuf,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WitnessProcess {
    async fn start(dir: &Path, name: &str, log_vkey: &str) -> Self {
        let key = dir.join(format!("{}.pem", name.replace('/', "_")));
        let public = ed25519_key(&key).public_key().as_ref().to_vec();
        let port = free_port();
        let log = dir.join(format!("{}.log", name.replace('/', "_")));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_crossprov"))
            .args(["witness", "serve", "--name", name])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--key")
            .arg(&key)
            .arg("--state")
            .arg(dir.join(format!("{}.state", name.replace('/', "_"))))
            .args(["--log-key", log_vkey])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("crossprov witness serve starts");
        let w = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            name: name.to_owned(),
            public,
            log,
        };
        let client = awc::Client::default();
        let start = Instant::now();
        loop {
            if let Ok(res) = client.get(format!("{}/healthz", w.url)).send().await {
                if res.status().is_success() {
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "witness {name} not ready: {}",
                std::fs::read_to_string(&w.log).unwrap_or_default()
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        // It prints the vkey logs configure; the one computed here from its key must agree.
        let printed = std::fs::read_to_string(&w.log).unwrap();
        assert!(printed.contains(&w.vkey()), "{printed}");
        w
    }

    fn vkey(&self) -> String {
        spec_vkey(&self.name, 0x04, &self.public)
    }

    fn settings(&self) -> WitnessSettings {
        WitnessSettings {
            url: self.url.clone(),
            key: self.vkey(),
        }
    }

    /// `add-checkpoint` sent by hand: status, content type, body.
    async fn add_checkpoint(&self, body: String) -> (u16, String, String) {
        let mut res = awc::Client::default()
            .post(format!("{}/add-checkpoint", self.url))
            .send_body(body)
            .await
            .unwrap();
        let media = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
        (res.status().as_u16(), media, text)
    }
}

const ORIGIN: &str = "audit.crossprov.test/yunnan";

/// An app whose service key the test made (so the witnesses can be told the log's vkey
/// first), with `witnesses` configured.
async fn app_with_witnesses(
    backend: Backend,
    service: &Path,
    witnesses: Vec<WitnessSettings>,
    quorum: usize,
    every: u64,
) -> Option<TestApp> {
    let key = service.to_path_buf();
    spawn_app_with(
        backend,
        Arc::new(move |s: &mut Settings| {
            s.signing.key_file = key.display().to_string();
            s.audit.origin = ORIGIN.to_owned();
            s.audit.witnesses = witnesses.clone();
            s.audit.quorum = quorum;
            s.audit.checkpoint_seconds = every;
        }),
    )
    .await
}

/// `crossprov audit prove …` on the app's database, its one JSON object.
fn prove(app: &TestApp, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["audit", "prove", "--database-url", &app.database_url])
        .args(args)
        .env("CROSSPROV_DATA_DIR", app.dir.path())
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

fn text(reply: &crate::helpers::Reply) -> String {
    String::from_utf8(reply.raw.clone()).unwrap()
}

/// The `add-checkpoint` body: `old N`, proof lines, a blank line, the note.
fn submission(old: u64, proof: &[chain::Hash], note: &str) -> String {
    let mut out = format!("old {old}\n");
    for h in proof {
        out.push_str(&STANDARD.encode(h));
        out.push('\n');
    }
    format!("{out}\n{note}")
}

async fn two_witnesses_cosign_and_refuse_a_fork_and_a_rollback(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let service_key = dir.path().join("service-key.pem");
    let log_pair = ed25519_key(&service_key);
    let log_public = log_pair.public_key().as_ref().to_vec();
    let log_vkey = spec_vkey(ORIGIN, 0x01, &log_public);
    let w1 = WitnessProcess::start(dir.path(), "witness.regulator.test/w1", &log_vkey).await;
    let w2 = WitnessProcess::start(dir.path(), "witness.shandong.test/w2", &log_vkey).await;
    let witnesses = vec![
        (w1.name.clone(), w1.public.clone()),
        (w2.name.clone(), w2.public.clone()),
    ];
    let Some(app) = app_with_witnesses(
        backend,
        &service_key,
        vec![w1.settings(), w2.settings()],
        2,
        0,
    )
    .await
    else {
        return;
    };
    let w = World::new(app).await;
    w.open_order().await;

    // Nothing cosigned yet: the quorum note is not there; only auditors may ask.
    w.app
        .get("/api/v1/audit/checkpoint/note", &w.auditor)
        .await
        .problem(NotFound);
    w.app
        .get("/api/v1/audit/checkpoint/note", &w.clerk)
        .await
        .problem(Forbidden);
    w.app
        .post("/api/v1/audit/checkpoint/note", &w.clerk, &json!({}))
        .await
        .problem(Forbidden);

    // A checkpoint on demand: signed by the log, cosigned by both witnesses.
    let first = w
        .app
        .post("/api/v1/audit/checkpoint/note", &w.auditor, &json!({}))
        .await;
    assert_eq!(first.status, 200, "{}", text(&first));
    assert!(first
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let first = text(&first);
    assert!(spec_signed_by_log(&first, ORIGIN, &log_public), "{first}");
    assert_eq!(spec_cosigners(&first, &witnesses), 2, "{first}");
    let (origin, size_a, root_a) = spec_checkpoint(&first);
    assert_eq!(origin, ORIGIN);
    let verify = w.app.get("/api/v1/audit/verify", &w.auditor).await;
    assert_eq!(verify.body["checked"], size_a);
    assert_eq!(verify.body["head"], chain::to_hex(&root_a).as_str());
    // The JWS checkpoint is kept alongside, at the same size.
    let jws = w.app.get("/api/v1/audit/checkpoint", &w.auditor).await;
    let claims = crate::lifecycle::verify_with_jwks(
        jws.body["checkpoint"].as_str().unwrap(),
        &w.app.get_anon("/.well-known/jwks.json").await.body,
    );
    assert_eq!(claims["size"], size_a);

    // The log grows; the next checkpoint goes with a consistency proof from size_a.
    w.open_order().await;
    w.open_order().await;
    let second = text(
        &w.app
            .post("/api/v1/audit/checkpoint/note", &w.auditor, &json!({}))
            .await,
    );
    let (_, size_n, root_n) = spec_checkpoint(&second);
    assert!(size_n > size_a);
    assert_eq!(spec_cosigners(&second, &witnesses), 2, "{second}");
    let served = text(&w.app.get("/api/v1/audit/checkpoint/note", &w.auditor).await);
    assert_eq!(
        spec_checkpoint(&served),
        (ORIGIN.to_owned(), size_n, root_n)
    );
    assert_eq!(spec_cosigners(&served, &witnesses), 2);

    // Offline: the database agrees with the cosigned note, with a quorum of two.
    let keys = ["--witness-key", &w1.vkey(), "--witness-key", &w2.vkey()];
    let note_file = dir.path().join("cosigned.note");
    std::fs::write(&note_file, &served).unwrap();
    let with_file = [
        &keys[..],
        &["--quorum", "2", "--checkpoint", note_file.to_str().unwrap()],
    ]
    .concat();
    let (code, report) = audit_verify(&w.app, &with_file);
    assert_eq!((code, &report["checkpoint"]), (0, &json!("ok")), "{report}");
    let (code, report) = audit_verify(&w.app, &[&keys[..], &["--quorum", "2"]].concat());
    assert_eq!(code, 0, "{report}");
    // A note carrying one witness's cosignature does not make a quorum of two.
    let (t, sigs) = spec_split(&served);
    let one = format!(
        "{t}\n{}",
        sigs.iter()
            .filter(|(n, _)| *n != w2.name)
            .map(|(n, raw)| format!("\u{2014} {n} {}\n", STANDARD.encode(raw)))
            .collect::<String>()
    );
    let one_file = dir.path().join("one.note");
    std::fs::write(&one_file, &one).unwrap();
    let (code, report) = audit_verify(
        &w.app,
        &[
            &keys[..],
            &["--quorum", "2", "--checkpoint", one_file.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(code, 1, "{report}");
    assert!(
        report["checkpoint"].as_str().unwrap().contains("quorum"),
        "{report}"
    );

    // A single event's proof, handed over and checked with no database.
    let (code, proof) = prove(
        &w.app,
        &["--seq", "2", "--checkpoint", note_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{proof}");
    assert_eq!(
        (proof["seq"].as_i64(), proof["size"].as_u64()),
        (Some(2), Some(size_n))
    );
    assert_eq!(proof["checkpoint"], served.as_str());
    let leaf = chain::from_hex(proof["leaf_hash"].as_str().unwrap()).unwrap();
    let path: Vec<chain::Hash> = proof["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| chain::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    assert!(chain::verify_inclusion(&leaf, 1, size_n, &path, &root_n));
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    let nowhere = tempfile::tempdir().unwrap();
    let check = |file: &Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
            .args(["audit", "check-proof"])
            .arg(file)
            .args(["--log-key", &log_vkey])
            .args(extra)
            .current_dir(nowhere.path())
            .env("CROSSPROV_DATA_DIR", nowhere.path())
            .env_remove("CROSSPROV_DATABASE__URL")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap_or(-1), v)
    };
    let (code, verdict) = check(&proof_file, &[&keys[..], &["--quorum", "2"]].concat());
    assert_eq!((code, &verdict["ok"]), (0, &json!(true)), "{verdict}");
    assert!(
        !nowhere.path().join("crossprov.db").exists(),
        "no database is made"
    );
    // An altered event, a wrong path, an unknown log key: refused.
    let mut altered = proof.clone();
    altered["event"]["actor"] = json!("mallory");
    let mut wrong_path = proof.clone();
    wrong_path["path"][0] = json!(chain::to_hex(&[7; 32]));
    for bad in [altered, wrong_path] {
        std::fs::write(&proof_file, bad.to_string()).unwrap();
        let (code, verdict) = check(&proof_file, &[]);
        assert_eq!((code, &verdict["ok"]), (1, &json!(false)), "{verdict}");
    }
    std::fs::write(&proof_file, proof.to_string()).unwrap();
    let stranger = spec_vkey(ORIGIN, 0x01, &[9; 32]);
    let out = Command::new(env!("CARGO_BIN_EXE_crossprov"))
        .args(["audit", "check-proof"])
        .arg(&proof_file)
        .args(["--log-key", &stranger])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // Rollback: the first (smaller) checkpoint again, however the old size is put.
    for wp in [&w1, &w2] {
        let (status, _, why) = wp.add_checkpoint(submission(size_n, &[], &first)).await;
        assert_eq!(status, 400, "{why}");
        let (status, media, body) = wp.add_checkpoint(submission(size_a, &[], &first)).await;
        assert_eq!(
            (status, media.as_str(), body),
            (409, "text/x.tlog.size", format!("{size_n}\n"))
        );
    }
    // Another origin: 404; the right origin signed by another key: 403.
    let stranger_pair = Ed25519KeyPair::from_seed_unchecked(&[3; 32]).unwrap();
    let (t, _) = spec_split(&second);
    let (status, _, _) = w1
        .add_checkpoint(submission(
            size_n,
            &[],
            &spec_sign(
                &t.replace(ORIGIN, "other.test/log"),
                "other.test/log",
                &stranger_pair,
            ),
        ))
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = w1
        .add_checkpoint(submission(
            size_n,
            &[],
            &spec_sign(&t, ORIGIN, &stranger_pair),
        ))
        .await;
    assert_eq!(status, 403);

    // An insider cuts the last event, rebuilds the tree so nothing looks wrong without a
    // checkpoint, and lets the log grow again: a forked history.
    let n = size_n as i64;
    let leaves: Vec<chain::Hash> = w
        .audit_events(&format!("limit={}", n - 1))
        .await
        .iter()
        .map(|e| chain::from_hex(e["hash"].as_str().unwrap()).unwrap())
        .collect();
    let prev = chain::to_hex(leaves.last().unwrap());
    let mut frontier = crossprov::audit::tree::Frontier::default();
    for leaf in &leaves {
        frontier.push(*leaf);
    }
    let unguard = match backend {
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_tree_nodes DISABLE TRIGGER USER;",
        Backend::Sqlite => "DROP TRIGGER audit_events_no_delete; DROP TRIGGER audit_tree_nodes_no_delete;",
    };
    sql(&w.app, &format!("{unguard} DELETE FROM audit_msisdn WHERE seq = {n}; DELETE FROM audit_events WHERE seq = {n}; DELETE FROM audit_tree_nodes WHERE ((idx + 1) << level) = {n}; UPDATE audit_head SET size = {}, hash = '{prev}', frontier = '{}';", n - 1, frontier.encode())).unwrap();
    let (code, plain) = audit_verify(&w.app, &[]);
    assert_eq!(
        code, 0,
        "the cut is invisible without a checkpoint: {plain}"
    );
    w.open_order().await;
    w.open_order().await;
    // The service key signs the forked history; both witnesses refuse to cosign it.
    let forked = w
        .app
        .post("/api/v1/audit/checkpoint/note", &w.auditor, &json!({}))
        .await;
    let forked = text(&forked);
    let (_, size_f, _) = spec_checkpoint(&forked);
    assert!(size_f > size_n);
    assert!(spec_signed_by_log(&forked, ORIGIN, &log_public));
    assert_eq!(spec_cosigners(&forked, &witnesses), 0, "{forked}");
    // Handed to them directly, with the proof the forked log gives, or at the same size.
    let forked_leaves: Vec<chain::Hash> = w
        .audit_events(&format!("limit={size_f}"))
        .await
        .iter()
        .map(|e| chain::from_hex(e["hash"].as_str().unwrap()).unwrap())
        .collect();
    let proof = chain::consistency_proof(&forked_leaves, size_n as usize).unwrap();
    let at_n = spec_sign(
        &format!(
            "{ORIGIN}\n{size_n}\n{}\n",
            STANDARD.encode(chain::tree_head(&forked_leaves[..n as usize]))
        ),
        ORIGIN,
        &log_pair,
    );
    for wp in [&w1, &w2] {
        let (status, _, why) = wp.add_checkpoint(submission(size_n, &proof, &forked)).await;
        assert_eq!(status, 422, "{why}");
        let (status, _, why) = wp.add_checkpoint(submission(size_n, &[], &at_n)).await;
        assert_eq!(status, 409, "{why}");
    }
    // The quorum note served is still the one before the fork, which the log no longer
    // matches; the latest note the database keeps has no quorum.
    let served = text(&w.app.get("/api/v1/audit/checkpoint/note", &w.auditor).await);
    assert_eq!(spec_checkpoint(&served).1, size_n);
    let (code, report) = audit_verify(&w.app, &with_file);
    assert_eq!(code, 1, "{report}");
    let (code, report) = audit_verify(&w.app, &[&keys[..], &["--quorum", "2"]].concat());
    assert_eq!(code, 1, "{report}");
    assert!(
        report["checkpoint"].as_str().unwrap().contains("quorum"),
        "{report}"
    );
    // And the witnesses said why in their logs.
    assert!(std::fs::read_to_string(&w1.log)
        .unwrap()
        .contains("consistency proof"));
}

async fn checkpoints_are_taken_and_cosigned_every_checkpoint_seconds(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let service_key = dir.path().join("service-key.pem");
    let log_public = ed25519_key(&service_key).public_key().as_ref().to_vec();
    let log_vkey = spec_vkey(ORIGIN, 0x01, &log_public);
    let w1 = WitnessProcess::start(dir.path(), "witness.regulator.test/w1", &log_vkey).await;
    let witnesses = vec![(w1.name.clone(), w1.public.clone())];
    let Some(app) = app_with_witnesses(backend, &service_key, vec![w1.settings()], 1, 1).await
    else {
        return;
    };
    let w = World::new(app).await;
    for _ in 0..2 {
        w.open_order().await;
        let size = w.app.get("/api/v1/audit/verify", &w.auditor).await.body["checked"]
            .as_u64()
            .unwrap();
        let note = crate::helpers::eventually(
            Duration::from_secs(30),
            "a cosigned checkpoint",
            || async {
                let r = w.app.get("/api/v1/audit/checkpoint/note", &w.auditor).await;
                let t = String::from_utf8(r.raw.clone()).unwrap();
                if r.status == 200 && spec_checkpoint(&t).1 >= size {
                    Ok(t)
                } else {
                    Err(format!("{} {t}", r.status))
                }
            },
        )
        .await;
        assert!(spec_signed_by_log(&note, ORIGIN, &log_public));
        assert_eq!(spec_cosigners(&note, &witnesses), 1);
    }
}

mod two_witnesses_cosign_and_refuse_a_fork_and_a_rollback {
    use crate::helpers::Backend;
    #[actix_web::test]
    async fn sqlite() {
        super::two_witnesses_cosign_and_refuse_a_fork_and_a_rollback(Backend::Sqlite).await;
    }
    #[actix_web::test]
    async fn postgres() {
        super::two_witnesses_cosign_and_refuse_a_fork_and_a_rollback(Backend::Postgres).await;
    }
}

mod checkpoints_are_taken_and_cosigned_every_checkpoint_seconds {
    use crate::helpers::Backend;
    #[actix_web::test]
    async fn sqlite() {
        super::checkpoints_are_taken_and_cosigned_every_checkpoint_seconds(Backend::Sqlite).await;
    }
    #[actix_web::test]
    async fn postgres() {
        super::checkpoints_are_taken_and_cosigned_every_checkpoint_seconds(Backend::Postgres).await;
    }
}
