//! Logins, login tokens (signed with keys every instance reads from the database, and
//! refused at once when their user or hall is revoked), and login throttling.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration as StdDuration, Instant};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{ChainLock, Error, Result, Services};
use crate::audit::Recorder;
use crate::domain::access::{Actor, ClientCertificate, HallPost, Role};
use crate::domain::login_throttle::{retry_after, Backoff, MEMORY_SECONDS};
use crate::domain::{HallId, Username};
use crate::storage::login_throttle::{self as throttle, ANY_NAME};
use crate::storage::token_keys::{self, TokenKey};
use crate::storage::users;

/// What a login token carries: enough to authorise, plus the generations the one read per
/// request compares (a bump revokes every token issued before it).
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
    /// The user's token generation at issue (tokens from before the upgrade: 0).
    #[serde(default)]
    gen: i64,
    /// The hall's token generation at issue (hall staff only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hgen: Option<i64>,
}

/// The kid of the one HMAC secret earlier versions kept; tokens without a `kid` header were
/// signed with it (the migration to `token_keys` gave it this name).
const LEGACY_KID: &str = "tk-legacy";

/// How long this instance trusts its copy of the keys before reading them again (a key
/// retired elsewhere stops verifying here within this time; an unknown kid reads at once).
const KEYS_FRESH_FOR: StdDuration = StdDuration::from_secs(30);

/// How long an older key keeps verifying after a rotation beyond the token lifetime: covers
/// a login that read the old key just before the rotation committed.
pub const RETIRE_MARGIN_SECONDS: i64 = 60;

/// This instance's copy of the token keys that still verify.
pub struct TokenKeys {
    ttl_seconds: i64,
    ring: RwLock<Ring>,
}

#[derive(Default)]
struct Ring {
    keys: HashMap<String, (DecodingKey, Option<DateTime<Utc>>)>,
    loaded_at: Option<Instant>,
}

pub fn fresh_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new key's id: `tk-` and 12 random hex digits.
pub fn fresh_kid() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("tk-{}", hex::encode(bytes))
}

/// A new signing key, made current at `now`.
pub fn fresh_key(now: DateTime<Utc>) -> TokenKey {
    TokenKey {
        kid: fresh_kid(),
        secret: fresh_secret(),
        created_at: now.naive_utc(),
        retired_at: None,
    }
}

impl TokenKeys {
    pub fn new(ttl_seconds: i64) -> Self {
        Self {
            ttl_seconds,
            ring: RwLock::new(Ring::default()),
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    pub(crate) fn install(&self, keys: &[TokenKey]) {
        let keys = keys
            .iter()
            .map(|k| {
                let retired = k.retired_at.map(|t| t.and_utc());
                let decoding = DecodingKey::from_secret(k.secret.as_bytes());
                (k.kid.clone(), (decoding, retired))
            })
            .collect();
        if let Ok(mut ring) = self.ring.write() {
            *ring = Ring {
                keys,
                loaded_at: Some(Instant::now()),
            };
        }
    }

    /// The key `kid` names if this copy is fresh and holds it, still unretired at `now`.
    fn decoding(&self, kid: &str, now: DateTime<Utc>) -> Option<DecodingKey> {
        let ring = self.ring.read().ok()?;
        let fresh = ring.loaded_at.is_some_and(|t| t.elapsed() < KEYS_FRESH_FOR);
        let (key, retired) = ring.keys.get(kid).filter(|_| fresh)?;
        retired.is_none_or(|t| t > now).then(|| key.clone())
    }

    fn issue(&self, key: &TokenKey, claims: &TokenClaims) -> Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let encoding = EncodingKey::from_secret(key.secret.as_bytes());
        jsonwebtoken::encode(&header, claims, &encoding)
            .map_err(|e| Error::Internal(format!("token: {e}")))
    }
}

/// The token's claims, checked against `key` and `now`.
fn verify(token: &str, key: &DecodingKey, now: DateTime<Utc>) -> Result<TokenClaims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_exp = false; // checked below against the service clock
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<TokenClaims>(token, key, &validation)
        .map_err(|_| Error::unauthenticated("令牌无效", "the token is not valid"))?;
    if data.claims.exp <= now.timestamp() {
        return Err(Error::unauthenticated(
            "令牌已过期",
            "the token has expired",
        ));
    }
    Ok(data.claims)
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

/// Checks `password` against `hash` (or the stand-in) off the async threads.
pub(crate) async fn password_matches(password: String, hash: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        verify_password(&password, &hash.unwrap_or_else(dummy_hash))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// True after an admin's password reset: the token serves only `POST /api/v1/me/password`
    /// until the user has chosen their own.
    pub password_change_required: bool,
}

/// A caller whose token holds.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub actor: Actor,
    /// An admin reset the password: every call but changing it answers 403
    /// `password_change_required` (see [`Services::admit`]).
    pub password_change_required: bool,
    /// When the token stops being accepted (the console shows it before it bites).
    pub expires_at: DateTime<Utc>,
}

/// What a call admits a caller to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Any call: refused while the caller must change their password.
    Any,
    /// Changing one's own password: the one call open to such a caller.
    OwnPasswordChange,
}

/// The name a login throttles by: the one sent, when it could name a user at all. Any other
/// string counts only against the address.
fn throttled_name(username: &str) -> Option<String> {
    Username::parse(username)
        .ok()
        .filter(|u| u.as_str() == username)
        .map(Username::into_string)
}

/// What `crossprov keys rotate-token-key` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    pub kid: String,
    pub created_at: DateTime<Utc>,
    /// The keys that stopped signing; each still verifies until `verifies_until`.
    pub retired: Vec<String>,
    pub verifies_until: DateTime<Utc>,
    /// Keys past that point, deleted with their secrets.
    pub deleted: usize,
}

/// Adds a new current token key (on the calling thread, for the CLI; audited as `cli`).
/// Older keys stop signing and keep verifying until every token they signed has expired
/// (`ttl_seconds` plus a margin), then are deleted by a later rotation. Every instance signs
/// with the new key from its next login and reads it on the first token naming it.
pub(crate) fn rotate_token_key(
    store: &crate::storage::Store,
    clock: &super::Clock,
    ttl_seconds: i64,
) -> Result<Rotation> {
    let by = Recorder::cli();
    super::write_blocking(store, clock, ChainLock::First, &by, |tx, now| {
        let deleted = token_keys::delete_retired(tx, now.naive_utc())?;
        let key = fresh_key(now);
        token_keys::insert(tx, &key)?;
        let until = now + Duration::seconds(ttl_seconds.max(0) + RETIRE_MARGIN_SECONDS);
        let retired = token_keys::retire_all_but(tx, &key.kid, until.naive_utc())?;
        let detail = serde_json::json!({
            "kid": key.kid, "retired": retired, "verifies_until": until.timestamp(), "deleted": deleted,
        });
        crate::audit::append(
            tx,
            &by,
            crate::audit::AuditAction::TokenKeyRotated,
            None,
            &detail,
            now,
        )?;
        Ok(Rotation {
            kid: key.kid,
            created_at: now,
            retired,
            verifies_until: until,
            deleted,
        })
    })
}

impl Services {
    /// `rotate_token_key` on this service's database (tests rotate so).
    pub fn rotate_token_key(&self) -> Result<Rotation> {
        rotate_token_key(&self.store, &self.clock, self.tokens.ttl_seconds())
    }

    /// `certificate`: the names of the TLS client certificate the login came with, if any.
    pub(crate) async fn login(
        &self,
        username: String,
        password: String,
        address: String,
        certificate: Option<ClientCertificate>,
    ) -> Result<IssuedToken> {
        let name = throttled_name(&username);
        let pair_throttled = self.check_login_throttle(name.clone(), &address).await?;
        let lookup = username.clone();
        let found = self
            .store
            .read(move |c| -> Result<_> { Ok(users::for_login(c, &lookup)?) })
            .await?;
        let hash = found.as_ref().map(|(u, _)| u.password_hash.clone());
        let matches = password_matches(password, hash).await?;
        let (user, hall_generation) = match found {
            // A disabled user is refused like a wrong password: the reply reveals nothing.
            Some((user, hall_gen)) if user.disabled_at.is_none() => (user, hall_gen),
            _ => return Err(self.failed_login(name, &address).await?),
        };
        let generation = user.token_generation;
        let password_change_required = user.password_change_required;
        let username_found = user.username.clone();
        let actor = self.actor_of(user).await?;
        // Before the password's verdict is told: without the hall's certificate nobody learns
        // whether a hall staff member's password is right.
        self.admit_connection(&actor, certificate.as_ref())?;
        if !matches {
            return Err(self.failed_login(name, &address).await?);
        }
        if pair_throttled {
            let address = address.clone();
            self.write(ChainLock::NotNeeded, Recorder::system(), move |tx, _| {
                Ok(throttle::clear_pair(tx, &username_found, &address)?)
            })
            .await?;
        }
        // The current key, read at every login: a rotation on any instance applies at once.
        let key = self
            .store
            .read_one(|c| -> Result<_> { Ok(token_keys::current(c)?) })
            .await?
            .ok_or_else(|| Error::Internal("no token key".into()))?;
        let now = self.token_clock();
        let claims = TokenClaims {
            sub: actor.username.clone(),
            role: actor.role.as_str().to_owned(),
            province: actor.province.clone(),
            hall_id: actor.hall.as_ref().map(|h| h.id.clone()),
            hall_code: actor.hall.as_ref().map(|h| h.code.clone()),
            hall_province: actor.hall.as_ref().map(|h| h.province.clone()),
            hall_city: actor.hall.as_ref().map(|h| h.city.clone()),
            iat: now.timestamp(),
            exp: now.timestamp() + self.tokens.ttl_seconds(),
            gen: generation,
            hgen: actor.hall.as_ref().and(hall_generation),
        };
        Ok(IssuedToken {
            access_token: self.tokens.issue(&key, &claims)?,
            token_type: "Bearer",
            expires_in: self.tokens.ttl_seconds(),
            password_change_required,
        })
    }

    /// Counts a failed login and gives the refusal, which reveals nothing.
    async fn failed_login(&self, name: Option<String>, address: &str) -> Result<Error> {
        self.record_login_failure(name, address.to_owned()).await?;
        tracing::info!(address = %address, "failed login");
        Ok(Error::unauthenticated(
            "用户名或密码错误",
            "wrong username or password",
        ))
    }

    /// Admits an authenticated caller to a call: over the connection it came on first (with
    /// mutual TLS on, hall staff only with their own hall's client certificate), then, after
    /// an admin's password reset, to changing the password only.
    pub fn admit(
        &self,
        holder: &TokenHolder,
        certificate: Option<&ClientCertificate>,
        admission: Admission,
    ) -> Result<()> {
        self.admit_connection(&holder.actor, certificate)?;
        if holder.password_change_required && admission != Admission::OwnPasswordChange {
            return Err(crate::domain::DomainError::PasswordChangeRequired.into());
        }
        Ok(())
    }

    /// With mutual TLS on (`tls.client_ca_pem`), hall staff only with their own hall's
    /// client certificate.
    fn admit_connection(
        &self,
        actor: &Actor,
        certificate: Option<&ClientCertificate>,
    ) -> Result<()> {
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

    /// The caller a bearer token names, or `unauthenticated`: signature, expiry, then one
    /// read of the user's row (with their hall's) so a revocation holds on every instance.
    pub async fn authenticate(&self, token: &str) -> Result<TokenHolder> {
        let now = self.token_clock();
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Error::unauthenticated("令牌无效", "the token is not valid"))?;
        let kid = header.kid.unwrap_or_else(|| LEGACY_KID.to_owned());
        let key = match self.tokens.decoding(&kid, now) {
            Some(key) => key,
            // A key made by a rotation elsewhere, or a stale copy: read the keys once.
            None => {
                self.reload_token_keys().await?;
                self.tokens
                    .decoding(&kid, now)
                    .ok_or_else(|| Error::unauthenticated("令牌无效", "the token is not valid"))?
            }
        };
        let c = verify(token, &key, now)?;
        let role = Role::parse(&c.role)
            .ok_or_else(|| Error::unauthenticated("令牌无效", "the token is not valid"))?;
        let name = c.sub.as_str().to_owned();
        let state = self
            .store
            .read_one(move |conn| -> Result<_> { Ok(users::token_state(conn, &name)?) })
            .await?
            .ok_or_else(|| Error::unauthenticated("令牌已被吊销", "the token has been revoked"))?;
        if state.disabled {
            return Err(Error::unauthenticated(
                "账号已停用",
                "the account is disabled",
            ));
        }
        // Tokens from before the upgrade carry no generations: 0, what the migration set.
        let hall_revoked = state
            .hall_generation
            .is_some_and(|g| c.hgen.unwrap_or(0) != g);
        if state.generation != c.gen || hall_revoked {
            return Err(Error::unauthenticated(
                "令牌已被吊销",
                "the token has been revoked",
            ));
        }
        let hall = match (c.hall_id, c.hall_province, c.hall_city) {
            (Some(id), Some(province), Some(city)) => Some(HallPost {
                id,
                code: c.hall_code.unwrap_or_default(),
                province,
                city,
            }),
            _ => None,
        };
        Ok(TokenHolder {
            actor: Actor {
                username: c.sub,
                role,
                province: c.province,
                hall,
            },
            password_change_required: state.password_change_required,
            expires_at: DateTime::from_timestamp(c.exp, 0).unwrap_or(now),
        })
    }

    async fn reload_token_keys(&self) -> Result<()> {
        let now = self.token_clock().naive_utc();
        let keys = self
            .store
            .read_one(move |c| -> Result<_> { Ok(token_keys::usable(c, now)?) })
            .await?;
        self.tokens.install(&keys);
        Ok(())
    }

    /// What token lifetimes are judged against: the service clock, except when tests from
    /// outside move it (`testing.movable_clock`), where moving time must not log everyone out.
    pub(crate) fn token_clock(&self) -> DateTime<Utc> {
        if self.clock.is_shared() {
            Utc::now()
        } else {
            self.now()
        }
    }

    fn backoff(&self) -> Backoff {
        let a = &self.settings.auth;
        Backoff::new(
            a.max_failed_logins,
            a.backoff_base_seconds,
            a.lockout_seconds,
        )
    }

    /// Refuses with `rate_limited` while the pair or the address waits out a backoff.
    /// Returns whether the pair has failures on record (a success then clears them).
    pub(crate) async fn check_login_throttle(
        &self,
        username: Option<String>,
        address: &str,
    ) -> Result<bool> {
        let now = self.now();
        let addr = address.to_owned();
        let rows = self
            .store
            .read_one(move |c| -> Result<_> { Ok(throttle::of(c, username.as_deref(), &addr)?) })
            .await?;
        let wait = rows
            .iter()
            .filter_map(|r| r.blocked_until)
            .filter_map(|until| retry_after(until.and_utc(), now))
            .max();
        if let Some(retry_after_seconds) = wait {
            return Err(Error::RateLimited {
                retry_after_seconds,
            });
        }
        Ok(rows.iter().any(|r| r.username != ANY_NAME))
    }

    /// Counts a failure for the pair (when the name could be a user's) and for the address,
    /// and starts the backoff each has earned. Forgets failures older than a day first.
    pub(crate) async fn record_login_failure(
        &self,
        username: Option<String>,
        address: String,
    ) -> Result<()> {
        let backoff = self.backoff();
        self.write(ChainLock::NotNeeded, Recorder::system(), move |tx, now| {
            throttle::prune(tx, (now - Duration::seconds(MEMORY_SECONDS)).naive_utc())?;
            let rows = username
                .iter()
                .map(|u| (u.as_str(), backoff.free_per_pair))
                .chain([(ANY_NAME, backoff.free_per_address)]);
            for (name, free) in rows {
                let failures = throttle::count_failure(tx, name, &address, now.naive_utc())?;
                if let Some(until) = backoff.blocked_until(failures, free, now) {
                    throttle::block_until(tx, name, &address, Some(until.naive_utc()))?;
                }
            }
            Ok(())
        })
        .await
    }
}
