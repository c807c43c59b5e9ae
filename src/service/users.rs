//! Users: made by an admin over HTTP, or by the CLI (how the first admin comes to be).

use crate::domain::text::ceiling::{Code, Id, Name, Prose, Secret};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::halls::optional_email;
use super::{auth, recorder, write_blocking, ChainLock, Clock, Refusal, Result, Services};
use crate::audit::{self, AuditAction, Recorder};
use crate::domain::access::{Actor, Permission, Role};
use crate::domain::{region, Detail, DomainError, Invalid, Username};
use crate::storage::{halls, login_throttle, users, DbConn, Store};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: Name,
    pub password: Secret,
    pub role: Code,
    #[serde(default)]
    pub province: Option<Code>,
    #[serde(default)]
    pub hall_id: Option<Id>,
    #[serde(default)]
    pub email: Option<Prose>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub role: String,
    pub province: Option<String>,
    pub hall_id: Option<String>,
    pub email: Option<String>,
    /// When an admin disabled the user (who can then neither log in nor use a token), or null.
    pub disabled_at: Option<DateTime<Utc>>,
    /// True after an admin's password reset, until the user changes it themselves.
    pub password_change_required: bool,
}

impl From<users::User> for UserView {
    fn from(u: users::User) -> Self {
        Self {
            username: u.username,
            role: u.role,
            province: u.province,
            hall_id: u.hall_id,
            email: u.email,
            disabled_at: u.disabled_at.map(|t| t.and_utc()),
            password_change_required: u.password_change_required,
        }
    }
}

pub const MIN_PASSWORD_CHARS: usize = 8;
/// ASVS 2.1.2: at least 64 characters are allowed, more than 128 are refused.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The password rule, the one place every new password is judged (user add, admin reset,
/// a user's own change); `field` names the body member at fault.
pub fn check_password(field: &str, password: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            Invalid::Field,
            field,
            Detail::new(
                format!("{field} 至少需要 {MIN_PASSWORD_CHARS} 个字符"),
                format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
            ),
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            Invalid::Field,
            field,
            Detail::new(
                format!("{field} 最多 {MAX_PASSWORD_CHARS} 个字符"),
                format!("the password must have at most {MAX_PASSWORD_CHARS} characters"),
            ),
        ));
    }
    Ok(())
}

fn invalid(field: &str, detail: Detail) -> Refusal {
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
            what: Detail::new("该用户名的用户", "a user with this username"),
            field: Some("username".into()),
        }
        .into());
    }
    let username = Username::parse(username)?;
    check_password("password", &req.password)?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        invalid(
            "role",
            Detail::new(
                "role 须为 clerk、hall_staff、auditor 或 admin",
                "role must be clerk, hall_staff, auditor or admin",
            ),
        )
    })?;
    let mut province = req.province.clone().map(String::from);
    if let Some(p) = &province {
        if region::province(p).is_none() {
            return Err(DomainError::invalid(
                Invalid::Province,
                "province",
                Detail::new("未知的省份代码 province", "unknown province code"),
            )
            .into());
        }
    }
    match role {
        Role::Clerk if province.is_none() => {
            return Err(invalid(
                "province",
                Detail::new(
                    "受理员（clerk）需要归属省份 province",
                    "a clerk needs a home province",
                ),
            ))
        }
        Role::HallStaff => {
            let hall_id = req.hall_id.as_deref().ok_or_else(|| {
                invalid(
                    "hall_id",
                    Detail::new(
                        "营业厅人员（hall_staff）需要所属营业厅 hall_id",
                        "hall staff need a hall",
                    ),
                )
            })?;
            let hall = halls::get(conn, &hall_id.into())?.ok_or_else(|| {
                Refusal::from(DomainError::invalid(
                    Invalid::UnknownHall,
                    "hall_id",
                    Detail::new("hall_id 指定的营业厅不存在", "no such hall"),
                ))
            })?;
            // A staff member's province is their hall's.
            province = Some(hall.province);
        }
        _ => {}
    }
    if role != Role::HallStaff && req.hall_id.is_some() {
        return Err(invalid(
            "hall_id",
            Detail::new(
                "只有营业厅人员（hall_staff）才属于营业厅",
                "only hall staff belong to a hall",
            ),
        ));
    }
    if role == Role::Admin && province.is_some() {
        return Err(invalid(
            "province",
            Detail::new("管理员（admin）面向全国，不设省份", "admins are national"),
        ));
    }
    let email = optional_email(req.email.as_deref())?.map(|e| e.into_string());
    let user = users::User {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.into_string(),
        password_hash,
        role: role.as_str().to_owned(),
        province,
        hall_id: req.hall_id.clone().map(String::from),
        email,
        created_at: now.naive_utc(),
        disabled_at: None,
        token_generation: 0,
        password_change_required: false,
    };
    match users::insert(conn, &user) {
        Err(e) if e.is_unique_violation() => {
            return Err(DomainError::AlreadyExists {
                what: Detail::new("该用户名的用户", "a user with this username"),
                field: Some("username".into()),
            }
            .into())
        }
        other => other?,
    }
    Ok(UserView::from(user))
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

/// An admin's new password for a user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: Secret,
}

/// A user's change of their own password.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: Secret,
    pub new_password: Secret,
}

/// The user a step acts on, or `not_found`.
fn existing(tx: &mut DbConn, username: &str) -> Result<users::User, Refusal> {
    users::by_username(tx, username)?
        .ok_or_else(|| DomainError::NotFound(Detail::new("用户", "user")).into())
}

/// Hashes `password` off the async threads (argon2 takes a while; the chain lock must not wait).
async fn hash_off_thread(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| super::Error::Internal(e.to_string()))?
}

impl Services {
    /// Disables a user: no login, and every token they hold is refused at once everywhere.
    pub async fn disable_user(&self, actor: Actor, username: String) -> Result<UserView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let mut user = existing(tx, &username)?;
            if user.disabled_at.is_some() {
                return Err(DomainError::InvalidState {
                    from: Detail::new("该用户已停用（disabled）", "disabled"),
                    action: Detail::new("停用该用户", "disable"),
                }
                .into());
            }
            // The last admin locking themselves out would leave only the command line.
            if user.username == actor.username.as_str() {
                return Err(DomainError::InvalidState {
                    from: Detail::new("这是您自己的账号", "your own account"),
                    action: Detail::new("停用该用户", "disable"),
                }
                .into());
            }
            users::set_disabled(tx, &user.username, Some(now.naive_utc()))?;
            let detail = json!({ "username": user.username });
            audit::append(tx, &by, AuditAction::UserDisabled, None, &detail, now)?;
            user.disabled_at = Some(now.naive_utc());
            Ok(UserView::from(user))
        })
        .await
    }

    pub async fn enable_user(&self, actor: Actor, username: String) -> Result<UserView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let mut user = existing(tx, &username)?;
            if user.disabled_at.is_none() {
                return Err(DomainError::InvalidState {
                    from: Detail::new("该用户已启用（enabled）", "enabled"),
                    action: Detail::new("启用该用户", "enable"),
                }
                .into());
            }
            users::set_disabled(tx, &user.username, None)?;
            let detail = json!({ "username": user.username });
            audit::append(tx, &by, AuditAction::UserEnabled, None, &detail, now)?;
            user.disabled_at = None;
            Ok(UserView::from(user))
        })
        .await
    }

    /// An admin sets a user's password; the user's existing tokens end.
    pub async fn reset_password(
        &self,
        actor: Actor,
        username: String,
        req: PasswordReset,
    ) -> Result<UserView> {
        actor.require(Permission::Administer)?;
        // Judged now, answered after the 404 (the contract's order); hashed only when good.
        let policy = check_password("password", &req.password);
        let hash = match policy {
            Ok(()) => Some(hash_off_thread(req.password.into()).await?),
            Err(_) => None,
        };
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let mut user = existing(tx, &username)?;
            policy?;
            let hash = hash.ok_or_else(|| super::Error::Internal("no hash".into()))?;
            // A password someone else knows: the user must choose their own first.
            users::set_password(tx, &user.username, &hash, true)?;
            let detail = json!({ "username": user.username });
            audit::append(tx, &by, AuditAction::UserPasswordReset, None, &detail, now)?;
            user.password_change_required = true;
            Ok(UserView::from(user))
        })
        .await
    }

    /// A user changes their own password, proving the current one (a wrong one counts as a
    /// failed login from `address`); every token they hold ends, this one included.
    pub async fn change_own_password(
        &self,
        actor: Actor,
        req: PasswordChange,
        address: String,
    ) -> Result<UserView> {
        let name = actor.username.as_str().to_owned();
        self.check_login_throttle(Some(name.clone()), &address)
            .await?;
        let lookup = name.clone();
        let user = self
            .store
            .read(move |c| -> Result<_> { Ok(users::by_username(c, &lookup)?) })
            .await?
            .ok_or_else(|| {
                super::Error::unauthenticated("令牌已被吊销", "the token has been revoked")
            })?;
        if !auth::password_matches(req.current_password.into(), Some(user.password_hash)).await? {
            self.record_login_failure(Some(name), address).await?;
            return Err(DomainError::invalid(
                Invalid::Field,
                "current_password",
                Detail::new(
                    "当前密码 current_password 不正确",
                    "the current password is wrong",
                ),
            )
            .into());
        }
        check_password("new_password", &req.new_password)?;
        let hash = hash_off_thread(req.new_password.into()).await?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let mut user = existing(tx, &name)?;
            users::set_password(tx, &user.username, &hash, false)?;
            user.password_change_required = false;
            let detail = json!({ "username": user.username });
            audit::append(
                tx,
                &by,
                AuditAction::UserPasswordChanged,
                None,
                &detail,
                now,
            )?;
            Ok(UserView::from(user))
        })
        .await
    }

    /// Clears login throttling for every address's attempts at this username.
    pub async fn unlock_user(&self, actor: Actor, username: String) -> Result<UserView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let user = existing(tx, &username)?;
            let cleared = login_throttle::clear_user(tx, &user.username)?;
            let detail = json!({ "username": user.username, "cleared": cleared });
            audit::append(tx, &by, AuditAction::UserUnlocked, None, &detail, now)?;
            Ok(UserView::from(user))
        })
        .await
    }
}

/// `GET /api/v1/users`: narrowed by role, hall or province, a page at a time.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// `clerk`, `hall_staff`, `auditor` or `admin`.
    pub role: Option<String>,
    /// Staff of this hall.
    pub hall_id: Option<String>,
    /// Users of this province (clerks, province auditors, hall staff of its halls).
    pub province: Option<String>,
    /// At most 200; 50 when absent.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Where the next page starts, or null on the last page.
    pub next_cursor: Option<String>,
}

impl Services {
    /// Users in username order (admin). Bad parameters are judged before the role, as for
    /// every list.
    pub async fn list_users(&self, actor: Actor, q: UserQuery) -> Result<UserPage> {
        let limit = q.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(super::Error::bad_request(
                Some("limit"),
                Detail::new(
                    "limit 须在 1 到 200 之间",
                    "limit must be between 1 and 200",
                ),
            ));
        }
        if let Some(role) = q.role.as_deref() {
            if Role::parse(role).is_none() {
                return Err(super::Error::bad_request(
                    Some("role"),
                    Detail::new("未知的角色 role", "unknown role"),
                ));
            }
        }
        if let Some(p) = q.province.as_deref() {
            if region::province(p).is_none() {
                return Err(super::Error::bad_request(
                    Some("province"),
                    Detail::new("未知的省份代码 province", "unknown province code"),
                ));
            }
        }
        actor.require(Permission::Administer)?;
        let filter = users::UserFilter {
            role: q.role,
            hall_id: q.hall_id,
            province: q.province,
            after: q.cursor,
            limit: limit + 1,
        };
        self.store
            .read(move |c| -> Result<UserPage> {
                let mut rows = users::list(c, &filter)?;
                let more = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                let next_cursor = rows.last().filter(|_| more).map(|u| u.username.clone());
                Ok(UserPage {
                    items: rows.into_iter().map(UserView::from).collect(),
                    next_cursor,
                })
            })
            .await
    }

    /// One user (admin); 404 when there is none.
    pub async fn get_user(&self, actor: Actor, username: String) -> Result<UserView> {
        actor.require(Permission::Administer)?;
        self.store
            .read(move |c| -> Result<UserView> {
                Ok(users::by_username(c, &username)?
                    .map(UserView::from)
                    .ok_or_else(|| DomainError::NotFound(Detail::new("用户", "user")))?)
            })
            .await
    }
}
