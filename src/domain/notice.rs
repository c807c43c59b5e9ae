//! Who is told what when an order changes or a timer fires. Decided here with the
//! transition; the service resolves each audience to addresses and writes one outbox row per
//! recipient in the same transaction, and the mail is rendered from the stored facts when it
//! is delivered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumIter, EnumString, IntoStaticStr};

use super::ids::{HallId, Username, WorkOrderId};
use super::quality::Flag;
use super::work_order::WorkOrder;

/// The mails the contract names: the value of `X-Crossprov-Event`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    IntoStaticStr,
    EnumString,
    EnumIter,
    Serialize,
    Deserialize,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MailEvent {
    Opened,
    Claimed,
    Submitted,
    Returned,
    Completed,
    Failed,
    Cancelled,
    Rerouted,
    Reminder,
    Escalation,
    Expired,
}

impl MailEvent {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where an outbox row is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString, EnumIter)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting to be sent (or to be sent again).
    Pending,
    Sent,
    /// Refused `mail.max_attempts` times; an admin may retry it.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// How long to wait after the `attempts`-th refusal: `base` doubled per earlier refusal, at
/// most `max`, spread by `jitter` (a fraction in -0.25..=0.25) so retries do not bunch up.
pub fn retry_delay_seconds(attempts: i32, base: i64, max: i64, jitter: f64) -> i64 {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let plain = base
        .max(1)
        .saturating_mul(1i64 << doublings)
        .min(max.max(1));
    let spread = (plain as f64 * jitter.clamp(-0.25, 0.25)).round() as i64;
    (plain + spread).max(1)
}

/// Who a notice is for; the service turns each into the addresses it has on file (a hall's
/// `email`, a user's `email`, a province's supervisor from settings). Anyone without an
/// address gets none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Hall(HallId),
    /// Every hall of a city: an order routed to a city with no hall named.
    HallsOfCity {
        province: String,
        city: String,
    },
    User(Username),
    /// The home province's supervisor, who hears of an order past its due time.
    Supervisor {
        province: String,
    },
}

/// What a mail says, personal data already masked (the number keeps its first 3 and last 4
/// digits, the expected name its first character). Stored with each outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailFacts {
    pub event: MailEvent,
    pub work_order_id: WorkOrderId,
    pub reference: String,
    pub msisdn_masked: String,
    pub home_province: String,
    pub target_province: String,
    pub target_city: String,
    /// The order's state after the event.
    pub state: String,
    pub expected_name_masked: Option<String>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    /// The date the number's service will be suspended (停机日期), when the order has one.
    pub suspend_at: Option<DateTime<Utc>>,
    /// The reason a person gave for the step (return, fail, cancel, reroute).
    pub reason: Option<String>,
    /// The outcome of the result a submission or completion rests on.
    pub outcome: Option<String>,
    /// The quality flags of a submitted result: codes, severities and reasons, which hold
    /// no personal data. Absent from rows written before the checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
    /// When the event happened.
    pub at: DateTime<Utc>,
}

/// One mail to decide recipients for: its facts and who should get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub facts: MailFacts,
    pub audience: Vec<Audience>,
}

impl Notice {
    /// A notice about `order` as it stands after the event.
    pub fn about(
        event: MailEvent,
        order: &WorkOrder,
        at: DateTime<Utc>,
        audience: Vec<Audience>,
    ) -> Self {
        Self {
            facts: MailFacts {
                event,
                work_order_id: order.id.clone(),
                reference: order.reference.clone(),
                msisdn_masked: mask_msisdn(&order.msisdn),
                home_province: order.home_province.clone(),
                target_province: order.target_province.clone(),
                target_city: order.target_city.clone(),
                state: order.state.as_str().to_owned(),
                expected_name_masked: order.expected_name_masked.clone(),
                due_at: order.due_at,
                deadline_at: order.deadline_at,
                suspend_at: order.suspend_at,
                reason: None,
                outcome: None,
                flags: Vec::new(),
                at,
            },
            audience,
        }
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        self.facts.reason = Some(reason.to_owned());
        self
    }

    pub fn with_outcome(mut self, outcome: &str) -> Self {
        self.facts.outcome = Some(outcome.to_owned());
        self
    }

    pub fn with_flags(mut self, flags: &[Flag]) -> Self {
        self.facts.flags = flags.to_vec();
        self
    }
}

/// A mobile number as mail shows it: `189****5678`. Anything not 11 characters is all `*`.
pub fn mask_msisdn(msisdn: &str) -> String {
    let chars: Vec<char> = msisdn.chars().collect();
    if chars.len() != 11 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if (3..7).contains(&i) { '*' } else { *c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn event_names_are_the_contracts_header_values() {
        let names: Vec<&str> = MailEvent::iter().map(MailEvent::as_str).collect();
        assert_eq!(
            names,
            [
                "opened",
                "claimed",
                "submitted",
                "returned",
                "completed",
                "failed",
                "cancelled",
                "rerouted",
                "reminder",
                "escalation",
                "expired"
            ]
        );
    }

    #[test]
    fn retries_back_off_doubling_up_to_the_cap() {
        let delays: Vec<i64> = (1..=8)
            .map(|n| retry_delay_seconds(n, 30, 3600, 0.0))
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600]);
        assert_eq!(retry_delay_seconds(1, 30, 3600, 0.25), 38);
        assert_eq!(retry_delay_seconds(1, 30, 3600, -0.25), 22);
        assert_eq!(retry_delay_seconds(1000, 30, 3600, 0.0), 3600);
        assert_eq!(retry_delay_seconds(0, 0, 0, -0.25), 1, "never zero");
    }

    #[test]
    fn a_number_keeps_its_first_three_and_last_four_digits() {
        assert_eq!(mask_msisdn("18912345678"), "189****5678");
        assert_eq!(mask_msisdn("1891234"), "*******");
    }
}
