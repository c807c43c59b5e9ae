//! Device-key enrolment requests (`device_key_requests`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::device_key_requests;
use super::{DbConn, MultiBackend, StorageError};
use crate::domain::device_key::{Enrolment, EnrolmentScope, EnrolmentState};
use crate::domain::{EnrolmentId, HallId};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_key_requests)]
struct EnrolmentRow {
    id: String,
    kid: String,
    alg: String,
    hall_id: String,
    username: String,
    state: String,
    public_key_pem: String,
    requested_at: NaiveDateTime,
    decided_by: Option<String>,
    decided_at: Option<NaiveDateTime>,
    reason: Option<String>,
}

impl From<&Enrolment> for EnrolmentRow {
    fn from(e: &Enrolment) -> Self {
        Self {
            id: e.id.to_string(),
            kid: e.kid.clone(),
            alg: e.alg.clone(),
            hall_id: e.hall_id.to_string(),
            username: e.username.to_string(),
            state: e.state.as_str().to_owned(),
            public_key_pem: e.public_key_pem.clone(),
            requested_at: e.requested_at.naive_utc(),
            decided_by: e.decided_by.as_ref().map(ToString::to_string),
            decided_at: e.decided_at.map(|t| t.naive_utc()),
            reason: e.reason.clone(),
        }
    }
}

impl TryFrom<EnrolmentRow> for Enrolment {
    type Error = StorageError;

    fn try_from(r: EnrolmentRow) -> Result<Self, StorageError> {
        let state = EnrolmentState::parse(&r.state).ok_or_else(|| {
            StorageError::Corrupt(format!(
                "device key request {} has state {:?}",
                r.id, r.state
            ))
        })?;
        Ok(Self {
            id: r.id.into(),
            kid: r.kid,
            alg: r.alg,
            hall_id: r.hall_id.into(),
            username: r.username.into(),
            state,
            public_key_pem: r.public_key_pem,
            requested_at: r.requested_at.and_utc(),
            decided_by: r.decided_by.map(Into::into),
            decided_at: r.decided_at.map(|t| t.and_utc()),
            reason: r.reason,
        })
    }
}

/// What a list asks for, within the caller's scope.
#[derive(Debug, Clone)]
pub struct EnrolmentFilter {
    pub scope: EnrolmentScope,
    pub state: Option<EnrolmentState>,
    pub hall_id: Option<HallId>,
}

pub fn insert(conn: &mut DbConn, request: &Enrolment) -> Result<(), StorageError> {
    diesel::insert_into(device_key_requests::table)
        .values(EnrolmentRow::from(request))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &EnrolmentId) -> Result<Option<Enrolment>, StorageError> {
    device_key_requests::table
        .find(id.as_str())
        .select(EnrolmentRow::as_select())
        .first(conn)
        .optional()?
        .map(Enrolment::try_from)
        .transpose()
}

/// Whether a request that holds its kid (pending or approved) asks for `kid`.
pub fn kid_held(conn: &mut DbConn, kid: &str) -> Result<bool, StorageError> {
    let holding = EnrolmentState::HOLDING_KID.map(EnrolmentState::as_str);
    let n: i64 = device_key_requests::table
        .filter(device_key_requests::kid.eq(kid))
        .filter(device_key_requests::state.eq_any(holding))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The requests in the filter's scope, newest first.
pub fn list(conn: &mut DbConn, filter: &EnrolmentFilter) -> Result<Vec<Enrolment>, StorageError> {
    let mut q = device_key_requests::table.into_boxed::<MultiBackend>();
    match &filter.scope {
        EnrolmentScope::All => {}
        EnrolmentScope::Requester(name) => {
            q = q.filter(device_key_requests::username.eq(name.to_string()));
        }
        EnrolmentScope::Nothing => return Ok(Vec::new()),
    }
    if let Some(state) = filter.state {
        q = q.filter(device_key_requests::state.eq(state.as_str()));
    }
    if let Some(hall) = &filter.hall_id {
        q = q.filter(device_key_requests::hall_id.eq(hall.to_string()));
    }
    q.order((
        device_key_requests::requested_at.desc(),
        device_key_requests::id.desc(),
    ))
    .select(EnrolmentRow::as_select())
    .load(conn)?
    .into_iter()
    .map(Enrolment::try_from)
    .collect()
}

/// Writes a decision if the request is still pending; false when another came first.
pub fn decide(conn: &mut DbConn, decided: &Enrolment) -> Result<bool, StorageError> {
    let n = diesel::update(
        device_key_requests::table
            .find(decided.id.as_str())
            .filter(device_key_requests::state.eq(EnrolmentState::Pending.as_str())),
    )
    .set((
        device_key_requests::state.eq(decided.state.as_str()),
        device_key_requests::decided_by.eq(decided.decided_by.as_ref().map(ToString::to_string)),
        device_key_requests::decided_at.eq(decided.decided_at.map(|t| t.naive_utc())),
        device_key_requests::reason.eq(decided.reason.clone()),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::domain::access::{Actor, HallPost, Role};
    use crate::domain::device_key::Decision;
    use crate::domain::Username;
    use crate::storage::scratch::on_both_databases;
    use crate::storage::{halls, users, Store};

    const STAFF: [(&str, &str); 3] = [
        ("staff.a", "hall-a"),
        ("staff.a2", "hall-a"),
        ("staff.b", "hall-b"),
    ];

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 14, 8, minute, 0).unwrap()
    }

    fn staff(name: &str, hall: &str) -> Actor {
        Actor {
            username: name.into(),
            role: Role::HallStaff,
            province: Some("37".into()),
            hall: Some(HallPost {
                id: hall.into(),
                code: hall.into(),
                province: "37".into(),
                city: "370100".into(),
            }),
        }
    }

    fn seed(conn: &mut DbConn) {
        for hall in ["hall-a", "hall-b"] {
            halls::insert(
                conn,
                &halls::Hall {
                    id: hall.into(),
                    code: hall.into(),
                    name: hall.into(),
                    province: "37".into(),
                    city: "370100".into(),
                    address: "x".into(),
                    email: None,
                    created_at: at(0).naive_utc(),
                    version: 1,
                    updated_at: None,
                    deactivated_at: None,
                },
            )
            .unwrap();
        }
        for (name, hall) in STAFF {
            users::insert(
                conn,
                &users::User {
                    id: name.into(),
                    username: name.into(),
                    password_hash: "x".into(),
                    role: "hall_staff".into(),
                    province: Some("37".into()),
                    hall_id: Some(hall.into()),
                    email: None,
                    created_at: at(0).naive_utc(),
                    disabled_at: None,
                    token_generation: 0,
                    password_change_required: false,
                },
            )
            .unwrap();
        }
    }

    on_both_databases!(requests_keep_their_rules, "device_keys");

    /// The list and `EnrolmentScope::admits` agree for every caller, newest first; a kid is
    /// held by one live request at a time; a decision is written once.
    fn requests_keep_their_rules(url: &str) {
        let store = Store::open(url, 1, 10_000).unwrap();
        let mut conn = store.connection().unwrap();
        seed(&mut conn);
        let mut all = Vec::new();
        for (minute, (name, hall)) in STAFF.iter().cycle().take(6).enumerate() {
            let by = staff(name, hall);
            let kid = format!("kid-{minute}");
            let r =
                Enrolment::request(&by, kid, "ES256", "PEM".into(), at(minute as u32 + 1)).unwrap();
            insert(&mut conn, &r).unwrap();
            all.push(r);
        }
        let admin = Actor {
            username: "admin".into(),
            role: Role::Admin,
            province: None,
            hall: None,
        };
        let clerk = Actor {
            role: Role::Clerk,
            ..admin.clone()
        };
        let callers = STAFF
            .iter()
            .map(|(n, h)| staff(n, h))
            .chain([admin.clone(), clerk]);
        for caller in callers {
            let scope = EnrolmentScope::of(&caller);
            let filter = EnrolmentFilter {
                scope: scope.clone(),
                state: None,
                hall_id: None,
            };
            let listed: Vec<EnrolmentId> = list(&mut conn, &filter)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            let mut seen: Vec<EnrolmentId> = all
                .iter()
                .filter(|r| scope.admits(r))
                .map(|r| r.id.clone())
                .collect();
            seen.reverse();
            assert_eq!(
                listed, seen,
                "{scope:?}: newest first, exactly the admitted"
            );
        }

        // A live kid is held; a second live request for it is refused by the index.
        assert!(kid_held(&mut conn, "kid-0").unwrap());
        assert!(!kid_held(&mut conn, "kid-9").unwrap());
        let again = Enrolment::request(
            &staff("staff.b", "hall-b"),
            "kid-0".into(),
            "ES256",
            "PEM".into(),
            at(30),
        )
        .unwrap();
        assert!(insert(&mut conn, &again).unwrap_err().is_unique_violation());

        // Decided once: the guarded update refuses a second decision.
        let admin_name = Username::from("admin");
        let rejected = all[0]
            .decide(
                Decision::Reject {
                    reason: "旧设备"
                },
                &admin_name,
                at(40),
            )
            .unwrap();
        assert!(decide(&mut conn, &rejected).unwrap());
        let approved = all[0]
            .decide(Decision::Approve, &admin_name, at(41))
            .unwrap();
        assert!(!decide(&mut conn, &approved).unwrap());
        assert_eq!(get(&mut conn, &all[0].id).unwrap(), Some(rejected));
        // A rejected request no longer holds its kid.
        assert!(!kid_held(&mut conn, "kid-0").unwrap());
        insert(&mut conn, &again).unwrap();

        let filter = EnrolmentFilter {
            scope: EnrolmentScope::All,
            state: Some(EnrolmentState::Rejected),
            hall_id: None,
        };
        let rejected: BTreeSet<EnrolmentId> = list(&mut conn, &filter)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(rejected, BTreeSet::from([all[0].id.clone()]));
        let filter = EnrolmentFilter {
            scope: EnrolmentScope::of(&admin),
            state: Some(EnrolmentState::Pending),
            hall_id: Some("hall-b".into()),
        };
        let of_b: Vec<String> = list(&mut conn, &filter)
            .unwrap()
            .into_iter()
            .map(|r| r.kid)
            .collect();
        assert_eq!(of_b, ["kid-0", "kid-5", "kid-2"]);
    }
}
