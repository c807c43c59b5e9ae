//! Users: made by an admin over HTTP, or by the CLI (how the first admin comes to be).

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::halls::optional_email;
use super::{auth, recorder, write_blocking, ChainLock, Clock, Refusal, Result, Services};
use crate::audit::{self, AuditAction, Recorder};
use crate::domain::access::{Actor, Permission, Role};
use crate::domain::{region, DomainError, Invalid, Username};
use crate::storage::{halls, users, DbConn, Store};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: String,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub hall_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: String,
    pub province: Option<String>,
    pub hall_id: Option<String>,
    pub email: Option<String>,
}

pub const MIN_PASSWORD_CHARS: usize = 8;

fn invalid(field: &str, detail: &str) -> Refusal {
    DomainError::invalid(Invalid::Field, field, detail).into()
}

/// Validates and stores a user; the password hash is computed before the transaction.
fn insert_user(
    conn: &mut DbConn,
    req: &NewUser,
    password_hash: String,
    now: DateTime<Utc>,
) -> Result<UserView, Refusal> {
    let username = req.username.trim();
    if users::username_exists(conn, username)? {
        return Err(DomainError::AlreadyExists {
            what: "a user with this username".into(),
            field: Some("username".into()),
        }
        .into());
    }
    let username = Username::parse(username)?;
    if req.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            "password",
            "the password must have at least 8 characters",
        ));
    }
    let role = Role::parse(&req.role)
        .ok_or_else(|| invalid("role", "role must be clerk, hall_staff, auditor or admin"))?;
    let mut province = req.province.clone();
    if let Some(p) = &province {
        if region::province(p).is_none() {
            return Err(DomainError::invalid(
                Invalid::Province,
                "province",
                "unknown province code",
            )
            .into());
        }
    }
    match role {
        Role::Clerk if province.is_none() => {
            return Err(invalid("province", "a clerk needs a home province"))
        }
        Role::HallStaff => {
            let hall_id = req
                .hall_id
                .as_deref()
                .ok_or_else(|| invalid("hall_id", "hall staff need a hall"))?;
            let hall = halls::get(conn, &hall_id.into())?.ok_or_else(|| {
                Refusal::from(DomainError::invalid(
                    Invalid::UnknownHall,
                    "hall_id",
                    "no such hall",
                ))
            })?;
            // A staff member's province is their hall's.
            province = Some(hall.province);
        }
        _ => {}
    }
    if role != Role::HallStaff && req.hall_id.is_some() {
        return Err(invalid("hall_id", "only hall staff belong to a hall"));
    }
    if role == Role::Admin && province.is_some() {
        return Err(invalid("province", "admins are national"));
    }
    let email = optional_email(req.email.as_deref())?.map(|e| e.into_string());
    let user = users::User {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.into_string(),
        password_hash,
        role: role.as_str().to_owned(),
        province,
        hall_id: req.hall_id.clone(),
        email,
        created_at: now.naive_utc(),
    };
    match users::insert(conn, &user) {
        Err(e) if e.is_unique_violation() => {
            return Err(DomainError::AlreadyExists {
                what: "a user with this username".into(),
                field: Some("username".into()),
            }
            .into())
        }
        other => other?,
    }
    Ok(UserView {
        username: user.username,
        role: user.role,
        province: user.province,
        hall_id: user.hall_id,
        email: user.email,
    })
}

/// Creates a user from the command line (how the first admin is made), on the calling
/// thread; audited with actor `cli`.
pub(crate) fn add_cli_user(store: &Store, clock: &Clock, req: &NewUser) -> Result<UserView> {
    let hash = auth::hash_password(&req.password)?;
    write_blocking(
        store,
        clock,
        ChainLock::First,
        &Recorder::cli(),
        |tx, now| create(tx, &Recorder::cli(), req, hash, now),
    )
}

/// The user and its `user.created` event.
fn create(
    tx: &mut DbConn,
    by: &Recorder,
    req: &NewUser,
    hash: String,
    now: DateTime<Utc>,
) -> Result<UserView, Refusal> {
    let user = insert_user(tx, req, hash, now)?;
    let detail = json!({ "username": user.username, "role": user.role, "province": user.province, "hall_id": user.hall_id });
    audit::append(tx, by, AuditAction::UserCreated, None, &detail, now)?;
    Ok(user)
}

impl Services {
    pub async fn create_user(&self, actor: Actor, req: NewUser) -> Result<UserView> {
        actor.require(Permission::Administer)?;
        // Hashed before the transaction: argon2 takes a while, the chain lock must not wait.
        let password = req.password.clone();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(|e| super::Error::Internal(e.to_string()))??;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            create(tx, &by, &req, hash, now)
        })
        .await
    }

    /// `add_cli_user` on this service's database (tests seed their first admin so).
    pub fn add_cli_user(&self, req: &NewUser) -> Result<UserView> {
        add_cli_user(&self.store, &self.clock, req)
    }

    pub async fn me(&self, actor: Actor) -> Result<serde_json::Value> {
        Ok(json!({
            "username": actor.username,
            "role": actor.role.as_str(),
            "province": actor.province,
            "hall_id": actor.hall_id(),
        }))
    }
}
