//! Logins, login tokens and the lockout after repeated failures.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Error, Result, Services};
use crate::config::AuthSettings;
use crate::domain::access::{Actor, ClientCertificate, HallPost, Role};
use crate::domain::{HallId, Username};
use crate::storage::users;

/// What a login token carries: enough to authorise without a database read.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenClaims {
    sub: Username,
    role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hall_id: Option<HallId>,
    /// The hall's code, which its TLS client certificate names (mutual TLS). A token issued
    /// before the claim existed has none and so passes no certificate check: its holder logs
    /// in again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hall_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hall_province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hall_city: Option<String>,
    iat: i64,
    exp: i64,
}

/// HMAC key shared by every instance through the database, so tokens survive restarts and
/// work on any instance.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: i64,
}

pub fn fresh_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl_seconds: i64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_seconds,
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    fn issue(&self, actor: &Actor, now: DateTime<Utc>) -> Result<String> {
        let claims = TokenClaims {
            sub: actor.username.clone(),
            role: actor.role.as_str().to_owned(),
            province: actor.province.clone(),
            hall_id: actor.hall.as_ref().map(|h| h.id.clone()),
            hall_code: actor.hall.as_ref().map(|h| h.code.clone()),
            hall_province: actor.hall.as_ref().map(|h| h.province.clone()),
            hall_city: actor.hall.as_ref().map(|h| h.city.clone()),
            iat: now.timestamp(),
            exp: now.timestamp() + self.ttl_seconds,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("token: {e}")))
    }

    /// The caller a bearer token names, or `unauthenticated`.
    pub fn authenticate(&self, token: &str, now: DateTime<Utc>) -> Result<Actor> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = false; // checked below against the service clock
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.decoding, &validation)
            .map_err(|_| Error::Unauthenticated("the token is not valid"))?;
        let c = data.claims;
        if c.exp <= now.timestamp() {
            return Err(Error::Unauthenticated("the token has expired"));
        }
        let role = Role::parse(&c.role).ok_or(Error::Unauthenticated("the token is not valid"))?;
        let hall = match (c.hall_id, c.hall_province, c.hall_city) {
            (Some(id), Some(province), Some(city)) => Some(HallPost {
                id,
                code: c.hall_code.unwrap_or_default(),
                province,
                city,
            }),
            _ => None,
        };
        Ok(Actor {
            username: c.sub,
            role,
            province: c.province,
            hall,
        })
    }
}

/// Counts failed logins per username and per client address in a sliding window. Kept in
/// memory per instance: a lockout is a brake on guessing, not a record.
const MAX_TRACKED_KEYS: usize = 100_000;

pub struct LoginGuard {
    max_per_user: u32,
    max_per_address: u32,
    window_seconds: i64,
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

impl LoginGuard {
    pub fn new(s: &AuthSettings) -> Self {
        Self {
            max_per_user: s.max_failed_logins.max(1),
            max_per_address: s.max_failed_logins.max(1).saturating_mul(4),
            window_seconds: s.lockout_seconds.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, address: &str) -> [String; 2] {
        [format!("user:{username}"), format!("addr:{address}")]
    }

    /// Refuses while either the user or the address has too many recent failures.
    pub fn check(&self, username: &str, address: &str, now: i64) -> Result<()> {
        let mut map = self
            .failures
            .lock()
            .map_err(|_| Error::Internal("login guard poisoned".into()))?;
        let [user_key, addr_key] = Self::keys(username, address);
        let mut retry_after = 0;
        for (key, max) in [
            (user_key, self.max_per_user),
            (addr_key, self.max_per_address),
        ] {
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| now - t < self.window_seconds);
                if times.len() as u32 >= max {
                    let oldest = times.first().copied().unwrap_or(now);
                    retry_after = retry_after.max(self.window_seconds - (now - oldest));
                }
            }
        }
        if retry_after > 0 {
            return Err(Error::RateLimited {
                retry_after_seconds: retry_after.max(1) as u64,
            });
        }
        Ok(())
    }

    pub fn record_failure(&self, username: &str, address: &str, now: i64) {
        if let Ok(mut map) = self.failures.lock() {
            // Guessing with ever new names must not grow memory without bound: past a size,
            // forget every failure older than the window.
            if map.len() >= MAX_TRACKED_KEYS {
                map.retain(|_, times| times.last().is_some_and(|t| now - t < self.window_seconds));
            }
            for key in Self::keys(username, address) {
                map.entry(key).or_default().push(now);
            }
        }
    }

    pub fn record_success(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&format!("user:{username}"));
        }
    }
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A stand-in hash so an unknown username costs as much as a wrong password.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("not a real password").unwrap_or_default())
        .clone()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl Services {
    /// `certificate`: the names of the TLS client certificate the login came with, if any.
    pub(crate) async fn login(
        &self,
        username: String,
        password: String,
        address: String,
        certificate: Option<ClientCertificate>,
    ) -> Result<IssuedToken> {
        let now = self.now();
        self.login_guard
            .check(&username, &address, now.timestamp())?;
        let lookup = username.clone();
        let user = self
            .store
            .read(move |c| -> Result<_> { Ok(users::by_username(c, &lookup)?) })
            .await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = tokio::task::spawn_blocking(move || {
            verify_password(&password, &hash.unwrap_or_else(dummy_hash))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let actor = match (user, matches) {
            (Some(user), matches) => {
                let actor = self.actor_of(user).await?;
                // Before the password's verdict is told: without the hall's certificate nobody
                // learns whether a hall staff member's password is right.
                self.admit(&actor, certificate.as_ref())?;
                if !matches {
                    return Err(self.failed_login(&username, &address, now));
                }
                actor
            }
            (None, _) => return Err(self.failed_login(&username, &address, now)),
        };
        self.login_guard.record_success(&username);
        Ok(IssuedToken {
            access_token: self.tokens.issue(&actor, self.token_clock())?,
            token_type: "Bearer",
            expires_in: self.tokens.ttl_seconds(),
        })
    }

    fn failed_login(&self, username: &str, address: &str, now: DateTime<Utc>) -> Error {
        self.login_guard
            .record_failure(username, address, now.timestamp());
        tracing::info!(address = %address, "failed login");
        Error::Unauthenticated("wrong username or password")
    }

    /// Admits an authenticated caller over the connection it came on: with mutual TLS on
    /// (`tls.client_ca_pem`), hall staff only with their own hall's client certificate.
    pub fn admit(&self, actor: &Actor, certificate: Option<&ClientCertificate>) -> Result<()> {
        if self.settings.tls.mutual() {
            actor.require_hall_certificate(certificate)?;
        }
        Ok(())
    }

    async fn actor_of(&self, user: users::User) -> Result<Actor> {
        let role = Role::parse(&user.role)
            .ok_or_else(|| Error::Internal(format!("user has unknown role {:?}", user.role)))?;
        let hall = match user.hall_id.clone() {
            Some(id) => {
                let hall = self
                    .store
                    .read(move |c| -> Result<_> { Ok(crate::storage::halls::get(c, &id.into())?) })
                    .await?
                    .ok_or_else(|| Error::Internal("user's hall is missing".into()))?;
                Some(HallPost {
                    id: hall.id.into(),
                    code: hall.code,
                    province: hall.province,
                    city: hall.city,
                })
            }
            None => None,
        };
        Ok(Actor {
            username: user.username.into(),
            role,
            province: user.province,
            hall,
        })
    }

    pub fn authenticate(&self, token: &str) -> Result<Actor> {
        self.tokens.authenticate(token, self.token_clock())
    }

    /// What token lifetimes are judged against: the service clock, except when tests from
    /// outside move it (`testing.movable_clock`), where moving time must not log everyone out.
    fn token_clock(&self) -> DateTime<Utc> {
        if self.clock.is_shared() {
            Utc::now()
        } else {
            self.now()
        }
    }
}
