//! Halls, their signing keys, and the province list.

use crate::domain::text::ceiling::{Code, Id, Name, Pem, Prose};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{recorder, ChainLock, Refusal, Result, Services};
use crate::audit::{self, AuditAction, Recorder};
use crate::domain::access::{Actor, Permission};
use crate::domain::text::{required_text as require_text, Email};
use crate::domain::{region, Detail, DomainError, HallId, Invalid};
use crate::signing::{Alg, HallPublicKey};
use crate::storage::halls::{self, Hall, HallChanges, HallKey};
use crate::storage::DbConn;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHall {
    pub code: Id,
    pub name: Prose,
    pub province: Code,
    pub city: Code,
    pub address: Prose,
    pub email: Prose,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HallView {
    pub id: String,
    pub code: String,
    pub name: String,
    pub province: String,
    pub city: String,
    pub address: String,
    pub email: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Bumped by every change; the `ETag`, and what `If-Match` compares.
    pub version: i64,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When an admin deactivated the hall (it then takes no new orders), or null.
    pub deactivated_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Hall> for HallView {
    fn from(h: Hall) -> Self {
        Self {
            id: h.id,
            code: h.code,
            name: h.name,
            province: h.province,
            city: h.city,
            address: h.address,
            email: h.email,
            created_at: h.created_at.and_utc(),
            version: h.version,
            updated_at: h.updated_at.map(|t| t.and_utc()),
            deactivated_at: h.deactivated_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HallList {
    pub items: Vec<HallView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHallKey {
    pub kid: Name,
    pub alg: Code,
    pub public_key_pem: Pem,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HallKeyView {
    pub kid: String,
    pub hall_id: String,
    pub alg: String,
    pub public_key_pem: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<HallKey> for HallKeyView {
    fn from(k: HallKey) -> Self {
        Self {
            kid: k.kid,
            hall_id: k.hall_id,
            alg: k.alg,
            public_key_pem: k.public_key_pem,
            created_at: k.created_at.and_utc(),
            revoked_at: k.revoked_at.map(|t| t.and_utc()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProvinceView {
    pub code: String,
    pub name: String,
    pub name_en: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProvinceList {
    pub items: Vec<ProvinceView>,
}

/// An optional email: absent stays absent, present must be an address.
pub(super) fn optional_email(raw: Option<&str>) -> Result<Option<Email>, DomainError> {
    raw.map(|e| Email::parse(e, "email")).transpose()
}

fn secs(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

/// The hall-key rule, written once: `alg` is `ES256` or `EdDSA` and the PEM is a public key
/// of exactly that algorithm (`invalid_key`, naming the field at fault). Checked when a key is
/// registered and when a device asks to enrol one.
pub(super) fn parse_public_key(
    alg: &str,
    public_key_pem: &str,
) -> Result<HallPublicKey, DomainError> {
    let alg = Alg::parse(alg).ok_or_else(|| {
        DomainError::invalid(
            Invalid::Key,
            "alg",
            Detail::new("alg 须为 ES256 或 EdDSA", "alg must be ES256 or EdDSA"),
        )
    })?;
    HallPublicKey::from_pem(alg, public_key_pem)
        .map_err(|e| DomainError::invalid(Invalid::Key, "public_key_pem", e.detail()))
}

/// Whether a registered key (of any hall: kids are unique) already has this `kid`.
pub(super) fn kid_registered(tx: &mut DbConn, kid: &str) -> Result<bool, Refusal> {
    Ok(halls::get_key(tx, kid)?.is_some())
}

pub(super) fn kid_taken() -> DomainError {
    DomainError::AlreadyExists {
        what: Detail::new("该 kid 的密钥", "a key with this kid"),
        field: Some("kid".into()),
    }
}

/// Registers a key for the hall, with its `hall_key.registered` event, in the caller's
/// transaction: an admin's `POST /api/v1/halls/{id}/keys` and an approved device key alike.
/// Checked in the contract's order: the hall (404), the kid (409), then the key (422).
pub(super) fn register_key(
    tx: &mut DbConn,
    by: &Recorder,
    hall_id: &HallId,
    kid: &str,
    alg: &str,
    public_key_pem: &str,
    now: DateTime<Utc>,
) -> Result<HallKey, Refusal> {
    if halls::get(tx, hall_id)?.is_none() {
        return Err(DomainError::NotFound(Detail::new("营业厅", "hall")).into());
    }
    let kid = require_text(kid, "kid")?;
    if kid_registered(tx, &kid)? {
        return Err(kid_taken().into());
    }
    let public = parse_public_key(alg, public_key_pem)?;
    let key = HallKey {
        kid,
        hall_id: hall_id.to_string(),
        alg: public.alg.as_str().to_owned(),
        public_key_pem: public.to_pem(),
        created_at: now.naive_utc(),
        revoked_at: None,
    };
    halls::insert_key(tx, &key)?;
    let detail = json!({ "hall_id": hall_id, "kid": key.kid, "alg": key.alg });
    audit::append(tx, by, AuditAction::HallKeyRegistered, None, &detail, now)?;
    Ok(key)
}

impl Services {
    /// The GB/T 2260 list every role may read (compiled in; the seeded table mirrors it).
    pub fn provinces(&self) -> ProvinceList {
        let items = region::PROVINCES
            .iter()
            .map(|p| ProvinceView {
                code: p.code.to_owned(),
                name: p.name_zh.to_owned(),
                name_en: p.name_en.to_owned(),
            })
            .collect();
        ProvinceList { items }
    }

    pub(crate) async fn list_halls(
        &self,
        province: Option<String>,
        city: Option<String>,
        active: Option<bool>,
    ) -> Result<HallList> {
        self.store
            .read(move |c| {
                let mut rows = halls::list(c, province.as_deref(), city.as_deref())?;
                if let Some(active) = active {
                    rows.retain(|h| h.deactivated_at.is_none() == active);
                }
                Ok(HallList {
                    items: rows.into_iter().map(HallView::from).collect(),
                })
            })
            .await
    }

    pub(crate) async fn create_hall(&self, actor: Actor, req: NewHall) -> Result<HallView> {
        actor.require(Permission::Administer)?;
        self.write(ChainLock::First, recorder(&actor), move |tx, now| {
            let code = require_text(&req.code, "code")?;
            if halls::code_exists(tx, &code)? {
                return Err(DomainError::AlreadyExists { what: Detail::new("该代码的营业厅", "a hall with this code"), field: Some("code".into()) }.into());
            }
            let name = require_text(&req.name, "name")?;
            if region::province(&req.province).is_none() {
                return Err(DomainError::invalid(Invalid::Province, "province", Detail::new("未知的省份代码 province", "unknown province code")).into());
            }
            if !region::city_in_province(&req.city, &req.province) {
                return Err(DomainError::invalid(Invalid::City, "city", Detail::new("city 不是该省份下的城市代码", "not a city code of the province")).into());
            }
            let address = require_text(&req.address, "address")?;
            let email = Some(Email::parse(&req.email, "email")?.into_string());
            let hall = Hall {
                id: uuid::Uuid::now_v7().to_string(),
                code,
                name,
                province: req.province.to_string(),
                city: req.city.to_string(),
                address,
                email,
                created_at: now.naive_utc(),
                version: 1,
                updated_at: None,
                deactivated_at: None,
            };
            halls::insert(tx, &hall)?;
            let detail = json!({ "hall_id": hall.id, "code": hall.code, "province": hall.province, "city": hall.city });
            audit::append(tx, &recorder(&actor), AuditAction::HallCreated, None, &detail, now)?;
            Ok(HallView::from(hall))
        })
        .await
    }

    pub(crate) async fn register_hall_key(
        &self,
        actor: Actor,
        hall_id: HallId,
        req: NewHallKey,
    ) -> Result<HallKeyView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let key = register_key(
                tx,
                &by,
                &hall_id,
                &req.kid,
                &req.alg,
                &req.public_key_pem,
                now,
            )?;
            Ok(HallKeyView::from(key))
        })
        .await
    }

    pub(crate) async fn revoke_hall_key(
        &self,
        actor: Actor,
        hall_id: HallId,
        kid: String,
    ) -> Result<HallKeyView> {
        actor.require(Permission::Administer)?;
        self.write(ChainLock::First, recorder(&actor), move |tx, now| {
            let key = halls::get_key(tx, &kid)?
                .filter(|k| hall_id == *k.hall_id.as_str())
                .ok_or_else(|| {
                    Refusal::from(DomainError::NotFound(Detail::new("营业厅密钥", "hall key")))
                })?;
            if key.revoked_at.is_some() {
                return Err(DomainError::InvalidState {
                    from: Detail::new("该密钥已吊销（revoked）", "revoked"),
                    action: Detail::new("吊销该密钥", "revoke"),
                }
                .into());
            }
            // Whole seconds: results with iat < T still verify, as the contract says.
            let at = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
            halls::revoke_key(tx, &kid, at)?;
            // The hall's staff tokens end with the key: a stolen terminal loses both at once.
            halls::bump_token_generation(tx, &hall_id)?;
            let detail =
                json!({ "hall_id": hall_id, "kid": kid, "revoked_at": secs(at.naive_utc()) });
            audit::append(
                tx,
                &recorder(&actor),
                AuditAction::HallKeyRevoked,
                None,
                &detail,
                now,
            )?;
            let revoked = halls::get_key(tx, &kid)?.ok_or_else(|| {
                Refusal::from(DomainError::NotFound(Detail::new("营业厅密钥", "hall key")))
            })?;
            Ok(HallKeyView::from(revoked))
        })
        .await
    }
}

/// `PATCH /api/v1/halls/{id}`: the members to change; absent ones stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HallUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// Deactivating or reactivating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    Deactivate,
    Reactivate,
}

/// The hall an admin step acts on, checked in the contract's order: 404, then `If-Match`
/// (412).
fn hall_for_change(tx: &mut DbConn, id: &HallId, if_match: Option<i64>) -> Result<Hall, Refusal> {
    let hall =
        halls::get(tx, id)?.ok_or_else(|| DomainError::NotFound(Detail::new("营业厅", "hall")))?;
    match if_match {
        Some(given) if given != hall.version => Err(DomainError::VersionConflict {
            given,
            current: hall.version,
        }
        .into()),
        _ => Ok(hall),
    }
}

/// Another admin's change committed between the read and the write.
fn changed_meanwhile(tx: &mut DbConn, hall: &Hall) -> Refusal {
    match halls::get(tx, &HallId::from(hall.id.as_str())) {
        Ok(Some(fresh)) => DomainError::VersionConflict {
            given: hall.version,
            current: fresh.version,
        }
        .into(),
        Ok(None) => DomainError::NotFound(Detail::new("营业厅", "hall")).into(),
        Err(e) => e.into(),
    }
}

impl Services {
    /// One hall (any role, as the list is).
    pub(crate) async fn get_hall(&self, id: HallId) -> Result<HallView> {
        self.store
            .read(move |c| -> Result<HallView> {
                Ok(halls::get(c, &id)?
                    .map(HallView::from)
                    .ok_or_else(|| DomainError::NotFound(Detail::new("营业厅", "hall")))?)
            })
            .await
    }

    /// Changes a hall's name, address or email (admin), under `If-Match`.
    pub(crate) async fn update_hall(
        &self,
        actor: Actor,
        id: HallId,
        if_match: Option<i64>,
        req: HallUpdate,
    ) -> Result<HallView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let hall = hall_for_change(tx, &id, if_match)?;
            // Judged in the body's order.
            let name = req
                .name
                .as_deref()
                .map(|n| require_text(n, "name"))
                .transpose()?;
            let address = req
                .address
                .as_deref()
                .map(|a| require_text(a, "address"))
                .transpose()?;
            let email = optional_email(req.email.as_deref())?.map(Email::into_string);
            let changes = HallChanges {
                name: name.unwrap_or_else(|| hall.name.clone()),
                address: address.unwrap_or_else(|| hall.address.clone()),
                email: email.or_else(|| hall.email.clone()),
            };
            let changed: Vec<&str> = [
                ("name", changes.name != hall.name),
                ("address", changes.address != hall.address),
                ("email", changes.email != hall.email),
            ]
            .into_iter()
            .filter_map(|(field, differs)| differs.then_some(field))
            .collect();
            // Nothing to change: no new version, no event.
            if changed.is_empty() {
                return Ok(HallView::from(hall));
            }
            if !halls::update(tx, &id, hall.version, &changes, now.naive_utc())? {
                return Err(changed_meanwhile(tx, &hall));
            }
            // Which fields changed, not their values: an address may name a person's street.
            let detail = json!({ "hall_id": id, "code": hall.code, "changed": changed });
            audit::append(tx, &by, AuditAction::HallUpdated, None, &detail, now)?;
            let updated = halls::get(tx, &id)?
                .ok_or_else(|| DomainError::NotFound(Detail::new("营业厅", "hall")))?;
            Ok(HallView::from(updated))
        })
        .await
    }

    /// A deactivated hall takes no new orders; what it holds stays its own.
    pub(crate) async fn deactivate_hall(
        &self,
        actor: Actor,
        id: HallId,
        if_match: Option<i64>,
    ) -> Result<HallView> {
        self.set_hall_activation(actor, id, if_match, Activation::Deactivate)
            .await
    }

    pub(crate) async fn reactivate_hall(
        &self,
        actor: Actor,
        id: HallId,
        if_match: Option<i64>,
    ) -> Result<HallView> {
        self.set_hall_activation(actor, id, if_match, Activation::Reactivate)
            .await
    }

    async fn set_hall_activation(
        &self,
        actor: Actor,
        id: HallId,
        if_match: Option<i64>,
        to: Activation,
    ) -> Result<HallView> {
        actor.require(Permission::Administer)?;
        let by = recorder(&actor);
        self.write(ChainLock::First, by.clone(), move |tx, now| {
            let hall = hall_for_change(tx, &id, if_match)?;
            let (at, action) = match (to, hall.deactivated_at) {
                (Activation::Deactivate, None) => {
                    (Some(now.naive_utc()), AuditAction::HallDeactivated)
                }
                (Activation::Reactivate, Some(_)) => (None, AuditAction::HallReactivated),
                (Activation::Deactivate, Some(_)) => {
                    return Err(DomainError::InvalidState {
                        from: Detail::new("该营业厅已停用（deactivated）", "deactivated"),
                        action: Detail::new("停用该营业厅", "deactivate"),
                    }
                    .into())
                }
                (Activation::Reactivate, None) => {
                    return Err(DomainError::InvalidState {
                        from: Detail::new("该营业厅正在使用中（active）", "active"),
                        action: Detail::new("重新启用该营业厅", "reactivate"),
                    }
                    .into())
                }
            };
            if !halls::set_deactivated(tx, &id, hall.version, at, now.naive_utc())? {
                return Err(changed_meanwhile(tx, &hall));
            }
            let detail = json!({ "hall_id": id, "code": hall.code });
            audit::append(tx, &by, action, None, &detail, now)?;
            let changed = halls::get(tx, &id)?
                .ok_or_else(|| DomainError::NotFound(Detail::new("营业厅", "hall")))?;
            Ok(HallView::from(changed))
        })
        .await
    }
}
