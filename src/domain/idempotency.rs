//! Idempotent retries (`Idempotency-Key`): the key a client sends, and what a stored key says
//! about a new request carrying it. Pure: times come in as arguments.

use chrono::{DateTime, Utc};

/// The longest key accepted (Stripe's bound; the IETF draft sets none).
pub const MAX_KEY_LEN: usize = 255;

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters (no spaces), so it can be
/// stored, logged by length and compared byte for byte without normalising.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let ok = (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic);
        ok.then(|| Self(String::from_utf8_lossy(raw).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key is the client's own: it is never printed, only its length.
impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdempotencyKey(len {})", self.0.len())
    }
}

/// What identifies a request besides its body (whose digest is known only once it has
/// streamed in): the method and the path with its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub method: String,
    pub path: String,
}

/// A stored key as the decision needs it.
#[derive(Debug, Clone)]
pub struct KeyState {
    pub target: Target,
    /// Set once the first request's response is stored.
    pub completed: bool,
    /// While in flight: until when the request holding it counts as alive (wall clock).
    pub lease_until: Option<DateTime<Utc>>,
    /// When the key is forgotten (the service's clock).
    pub expires_at: DateTime<Utc>,
}

/// What to do with a request carrying a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The key is free (never used, or expired): reserve it and do the work.
    Reserve,
    /// The request holding it died (its lease ran out): take the key over and do the work.
    TakeOver,
    /// The first request finished: answer its stored response, if the body is the same.
    Replay,
    /// The first request is still running.
    InFlight,
    /// The key was used for another method or path.
    Reused,
}

/// Decides by the stored state of the key (None: no row). `now` is the service's clock
/// (expiry), `wall` the wall clock (leases: moving the service's clock in tests must not
/// take over a request that is running).
pub fn decide(
    stored: Option<&KeyState>,
    target: &Target,
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
) -> Decision {
    let Some(state) = stored else {
        return Decision::Reserve;
    };
    if state.expires_at <= now {
        return Decision::Reserve;
    }
    if state.target != *target {
        return Decision::Reused;
    }
    if state.completed {
        return Decision::Replay;
    }
    match state.lease_until {
        Some(until) if until > wall => Decision::InFlight,
        _ => Decision::TakeOver,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse(b"8e03978e-40d5-43e8-bc93-6894a57f9324").is_some());
        assert!(IdempotencyKey::parse(b"\"quoted\"").is_some());
        assert!(IdempotencyKey::parse(&[b'k'; MAX_KEY_LEN]).is_some());
        for bad in [
            &b""[..],
            &[b'k'; MAX_KEY_LEN + 1],
            b"with space",
            b"tab\there",
            "键".as_bytes(),
        ] {
            assert!(IdempotencyKey::parse(bad).is_none(), "{bad:?}");
        }
        let key = IdempotencyKey::parse(b"secret-ish").expect("key");
        assert!(!format!("{key:?}").contains("secret"));
    }

    fn target(path: &str) -> Target {
        Target {
            method: "POST".into(),
            path: path.into(),
        }
    }

    #[test]
    fn every_state_of_a_key_decides_one_way() {
        let now = DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000);
        let wall = now + Duration::hours(1);
        let t = target("/api/v1/work-orders");
        let state = |completed, lease: Option<i64>, expires_in: i64| KeyState {
            target: t.clone(),
            completed,
            lease_until: lease.map(|s| wall + Duration::seconds(s)),
            expires_at: now + Duration::seconds(expires_in),
        };
        assert_eq!(decide(None, &t, now, wall), Decision::Reserve);
        let done = state(true, None, 60);
        assert_eq!(decide(Some(&done), &t, now, wall), Decision::Replay);
        let other = target("/api/v1/halls");
        assert_eq!(decide(Some(&done), &other, now, wall), Decision::Reused);
        let expired = state(true, None, 0);
        assert_eq!(decide(Some(&expired), &other, now, wall), Decision::Reserve);
        let running = state(false, Some(30), 60);
        assert_eq!(decide(Some(&running), &t, now, wall), Decision::InFlight);
        assert_eq!(decide(Some(&running), &other, now, wall), Decision::Reused);
        let died = state(false, Some(-1), 60);
        assert_eq!(decide(Some(&died), &t, now, wall), Decision::TakeOver);
    }
}
