//! A subscriber's real-name record; every read is itself audited.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::views::MaskedDocumentView;
use super::work_orders::parse_msisdn;
use super::{recorder, ChainLock, Result, Services};
use crate::audit::{self, AuditAction};
use crate::domain::access::{Actor, Permission};
use crate::domain::{Detail, DomainError};
use crate::storage::{subscribers, work_orders};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderRef {
    pub id: String,
    pub reference: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriberView {
    pub msisdn: String,
    pub home_province: String,
    pub real_name_status: String,
    pub document: Option<MaskedDocumentView>,
    pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
    pub work_order: Option<OrderRef>,
}

impl Services {
    pub(crate) async fn view_subscriber(
        &self,
        actor: Actor,
        raw_msisdn: String,
    ) -> Result<SubscriberView> {
        actor.require(Permission::ReadSubscriber)?;
        let msisdn = parse_msisdn(&raw_msisdn, "msisdn")?.into_string();
        self.write(ChainLock::First, recorder(&actor), move |tx, now| {
            let s = subscribers::get(tx, &msisdn)?
                .filter(|s| actor.sees_subscriber(&s.home_province))
                .ok_or_else(|| DomainError::NotFound(Detail::new("用户信息", "subscriber")))?;
            let work_order = match &s.work_order_id {
                Some(id) => work_orders::get(tx, &id.as_str().into())?.map(|o| OrderRef {
                    id: o.id.into_string(),
                    reference: o.reference,
                }),
                None => None,
            };
            let document = MaskedDocumentView::from_columns(
                &s.document_type,
                &s.document_number_masked,
                &s.document_name_masked,
            );
            audit::append(
                tx,
                &recorder(&actor),
                AuditAction::SubscriberViewed,
                None,
                &json!({ "msisdn": msisdn }),
                now,
            )?;
            Ok(SubscriberView {
                msisdn: s.msisdn,
                home_province: s.home_province,
                real_name_status: s.real_name_status,
                document,
                verified_at: s.verified_at.map(|t| t.and_utc()),
                work_order,
            })
        })
        .await
    }
}
