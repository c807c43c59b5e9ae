//! The HTTP side: one reqwest client (connection pool) and per-endpoint statistics.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Method;
use serde_json::{json, Value};

use crate::env::PASSWORD;
use crate::Res;

/// How many times a POST is sent before a network error counts.
const ATTEMPTS: u32 = 4;

/// How many error messages are kept verbatim.
const KEEP_ERRORS: usize = 8;

/// Latencies (successful requests) and error counts of one endpoint (a route template).
#[derive(Debug, Clone)]
pub struct EpStats {
    pub label: &'static str,
    /// A state-changing request (a "step" of the life cycle).
    pub write: bool,
    pub lat_us: Vec<u32>,
    pub bytes: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub eps: Vec<EpStats>,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Complete life cycles (lifecycle mode).
    pub cycles: u64,
}

impl Stats {
    fn ep(&mut self, label: &'static str, write: bool) -> &mut EpStats {
        let i = match self.eps.iter().position(|e| e.label == label) {
            Some(i) => i,
            None => {
                self.eps.push(EpStats {
                    label,
                    write,
                    lat_us: Vec::new(),
                    bytes: 0,
                    errors: 0,
                });
                self.eps.len() - 1
            }
        };
        &mut self.eps[i]
    }

    pub fn ok(&mut self, label: &'static str, write: bool, took: Duration, bytes: u64) {
        let ep = self.ep(label, write);
        ep.lat_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        ep.bytes += bytes;
    }

    pub fn err(&mut self, label: &'static str, write: bool, message: String) {
        self.ep(label, write).errors += 1;
        self.errors += 1;
        if self.first_errors.len() < KEEP_ERRORS {
            self.first_errors.push(message);
        }
    }

    /// Folds another client's numbers in (endpoints keep first-seen order).
    pub fn merge(&mut self, other: Stats) {
        for e in other.eps {
            let mine = self.ep(e.label, e.write);
            mine.lat_us.extend(e.lat_us);
            mine.bytes += e.bytes;
            mine.errors += e.errors;
        }
        self.errors += other.errors;
        self.cycles += other.cycles;
        for m in other.first_errors {
            if self.first_errors.len() < KEEP_ERRORS {
                self.first_errors.push(m);
            }
        }
    }
}

/// A request body: content type and bytes.
pub type Body = Option<(&'static str, Bytes)>;

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    /// Whether a POST carries an `Idempotency-Key` (`--idempotency-keys`).
    pub keys: bool,
}

fn snippet(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(300).collect()
}

/// An error with its whole source chain (reqwest's top level says little).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl Api {
    pub fn new(base: &str, keys: bool) -> Res<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self {
            client,
            base: base.to_owned(),
            keys,
        })
    }

    /// One request, whole body read: (status, body). No statistics. A POST carries an
    /// `Idempotency-Key` and is sent again with it after a network error (or while the
    /// service still runs an earlier attempt), as a hall terminal on a flaky link would.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        timeout: Option<Duration>,
    ) -> Res<(u16, Bytes)> {
        let key = (self.keys && method == Method::POST).then(|| uuid::Uuid::new_v4().to_string());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .request(method.clone(), format!("{}{}", self.base, path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(key) = &key {
                req = req.header("Idempotency-Key", key);
            }
            if let Some((ct, bytes)) = &body {
                req = req.header("Content-Type", *ct).body(bytes.clone());
            }
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let wait = match req.send().await {
                Err(_) if key.is_some() && attempt < ATTEMPTS => {
                    Duration::from_millis(200 << (attempt - 1))
                }
                Err(e) => return Err(chain(&e)),
                // 409 with Retry-After: idempotency_key_in_flight, an earlier attempt runs.
                Ok(res)
                    if res.status() == reqwest::StatusCode::CONFLICT
                        && res.headers().contains_key("retry-after")
                        && attempt < ATTEMPTS =>
                {
                    Duration::from_secs(1)
                }
                Ok(res) => {
                    let status = res.status().as_u16();
                    let bytes = res.bytes().await.map_err(|e| chain(&e))?;
                    return Ok((status, bytes));
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// A timed request: latency recorded on 2xx, an error recorded otherwise (any non-2xx
    /// or transport error). The body on success.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        st: &mut Stats,
        label: &'static str,
        write: bool,
        method: Method,
        path: &str,
        token: &str,
        body: Body,
    ) -> Option<Bytes> {
        let started = Instant::now();
        let result = self.send(method, path, Some(token), body, None).await;
        let took = started.elapsed();
        match result {
            Ok((status, bytes)) if (200..300).contains(&status) => {
                st.ok(label, write, took, bytes.len() as u64);
                Some(bytes)
            }
            Ok((status, bytes)) => {
                st.err(
                    label,
                    write,
                    format!("{path}: {status} {}", snippet(&bytes)),
                );
                None
            }
            Err(e) => {
                st.err(label, write, format!("{path}: transport: {e}"));
                None
            }
        }
    }

    /// A timed JSON request; the reply parsed (an unparsable 2xx body counts as an error).
    #[allow(clippy::too_many_arguments)]
    pub async fn json(
        &self,
        st: &mut Stats,
        label: &'static str,
        write: bool,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Option<Value> {
        let body = body.map(|b| ("application/json", Bytes::from(b.to_string())));
        let bytes = self
            .call(st, label, write, method, path, token, body)
            .await?;
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => {
                st.err(label, write, format!("{path}: reply is not JSON: {e}"));
                None
            }
        }
    }

    /// An untimed setup request that must answer `want`.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        want: u16,
    ) -> Res<Value> {
        let b = body.map(|b| ("application/json", Bytes::from(b.to_string())));
        let (status, bytes) = self.send(method.clone(), path, token, b, None).await?;
        if status != want {
            return Err(format!(
                "{method} {path}: expected {want}, got {status}: {}",
                snippet(&bytes)
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{method} {path}: {e}"))
    }

    pub async fn login(&self, username: &str) -> Res<String> {
        let v = self
            .expect(
                Method::POST,
                "/api/v1/auth/token",
                None,
                Some(&json!({ "username": username, "password": PASSWORD })),
                200,
            )
            .await?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("login {username}: no access_token in {v}"))
    }

    /// `POST /api/v1/halls` → the hall's id.
    pub async fn create_hall(
        &self,
        admin: &str,
        code: &str,
        province: &str,
        city: &str,
    ) -> Res<String> {
        let body = json!({
            "code": code, "name": format!("{code} 营业厅"), "province": province, "city": city,
            "address": "人民路 1 号", "email": format!("{}@halls.example.cn", code.to_lowercase()),
        });
        let v = self
            .expect(Method::POST, "/api/v1/halls", Some(admin), Some(&body), 201)
            .await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("hall {code}: no id in {v}"))
    }

    pub async fn create_user(
        &self,
        admin: &str,
        username: &str,
        role: &str,
        province: Option<&str>,
        hall: Option<&str>,
        email: Option<&str>,
    ) -> Res<()> {
        let body = json!({
            "username": username, "password": PASSWORD, "role": role,
            "province": province, "hall_id": hall, "email": email,
        });
        self.expect(Method::POST, "/api/v1/users", Some(admin), Some(&body), 201)
            .await
            .map(|_| ())
    }

    /// Creates the user, then logs in once.
    pub async fn user_with_token(
        &self,
        admin: &str,
        username: &str,
        role: &str,
        province: Option<&str>,
        hall: Option<&str>,
        email: Option<&str>,
    ) -> Res<String> {
        self.create_user(admin, username, role, province, hall, email)
            .await?;
        self.login(username).await
    }
}

/// The people of a one-hall run, each logged in once.
pub struct OneHall {
    pub admin: String,
    /// The hall's id.
    pub hall: String,
    /// A Yunnan clerk (`clerk.<tag>`) whose orders go to the hall.
    pub clerk: String,
    /// The hall's staff member (`staff.<tag>`).
    pub staff: String,
    /// An auditor (`auditor.<tag>`).
    pub auditor: String,
}

impl Api {
    /// A hall in Jinan (`BENCH-<TAG>`), a Yunnan clerk, the hall's staff member and an auditor.
    pub async fn one_hall(&self, tag: &str) -> Res<OneHall> {
        let admin = self.login("admin").await?;
        let code = format!("BENCH-{}", tag.to_uppercase());
        let hall = self.create_hall(&admin, &code, "37", "370100").await?;
        let clerk = self
            .user_with_token(
                &admin,
                &format!("clerk.{tag}"),
                "clerk",
                Some("53"),
                None,
                None,
            )
            .await?;
        let staff = self
            .user_with_token(
                &admin,
                &format!("staff.{tag}"),
                "hall_staff",
                None,
                Some(&hall),
                None,
            )
            .await?;
        let auditor = self
            .user_with_token(
                &admin,
                &format!("auditor.{tag}"),
                "auditor",
                None,
                None,
                None,
            )
            .await?;
        Ok(OneHall {
            admin,
            hall,
            clerk,
            staff,
            auditor,
        })
    }
}

/// A small JPEG-typed file: magic bytes, then a tag, then filler up to `size`.
pub fn jpeg(tag: &str, size: usize) -> Vec<u8> {
    let mut b = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    b.extend_from_slice(tag.as_bytes());
    fill(&mut b, size, tag.len() as u64);
    b
}

/// Pads with xorshift bytes (not compressible, cheap) up to `size`.
pub fn fill(b: &mut Vec<u8>, size: usize, seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while b.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (size - b.len()).min(8);
        b.extend_from_slice(&x.to_le_bytes()[..take]);
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
