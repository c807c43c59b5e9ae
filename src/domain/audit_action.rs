//! What an audit event records. The strings are the contract's `action` values.

use strum::{EnumIter, EnumString, IntoStaticStr};

/// Every action the audit trail records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumIter, EnumString)]
pub enum AuditAction {
    #[strum(serialize = "work_order.opened")]
    WorkOrderOpened,
    #[strum(serialize = "work_order.claimed")]
    WorkOrderClaimed,
    #[strum(serialize = "work_order.released")]
    WorkOrderReleased,
    #[strum(serialize = "work_order.result_submitted")]
    ResultSubmitted,
    /// A refused verification result; `detail.code` says why.
    #[strum(serialize = "work_order.result_rejected")]
    ResultRejected,
    /// The quality checks flagged an accepted result; `detail.codes` names the rules.
    #[strum(serialize = "work_order.flagged")]
    WorkOrderFlagged,
    /// A clerk's first approval of a flagged result; a second clerk completes it.
    #[strum(serialize = "work_order.approved")]
    WorkOrderApproved,
    #[strum(serialize = "work_order.returned")]
    WorkOrderReturned,
    #[strum(serialize = "work_order.completed")]
    WorkOrderCompleted,
    #[strum(serialize = "work_order.failed")]
    WorkOrderFailed,
    #[strum(serialize = "work_order.cancelled")]
    WorkOrderCancelled,
    #[strum(serialize = "work_order.rerouted")]
    WorkOrderRerouted,
    #[strum(serialize = "work_order.expired")]
    WorkOrderExpired,
    /// The reminder before `due_at` went out (actor `system`).
    #[strum(serialize = "work_order.reminded")]
    WorkOrderReminded,
    /// `due_at` passed with the order still open or claimed (actor `system`).
    #[strum(serialize = "work_order.escalated")]
    WorkOrderEscalated,
    /// The clerk set or moved the number's suspension date.
    #[strum(serialize = "work_order.suspension_set")]
    WorkOrderSuspensionSet,
    /// An admin sent an outbox row again.
    #[strum(serialize = "outbox.retried")]
    OutboxRetried,
    /// The clock moved forward (`testing.movable_clock` only).
    #[strum(serialize = "clock.advanced")]
    ClockAdvanced,
    #[strum(serialize = "evidence.uploaded")]
    EvidenceUploaded,
    #[strum(serialize = "evidence.viewed")]
    EvidenceViewed,
    /// A stored file found not to match its digest when asked for.
    #[strum(serialize = "evidence.integrity_failed")]
    EvidenceIntegrityFailed,
    #[strum(serialize = "hall.created")]
    HallCreated,
    /// An admin changed a hall's name, address or email.
    #[strum(serialize = "hall.updated")]
    HallUpdated,
    /// An admin deactivated a hall: it takes no new orders.
    #[strum(serialize = "hall.deactivated")]
    HallDeactivated,
    #[strum(serialize = "hall.reactivated")]
    HallReactivated,
    #[strum(serialize = "hall_key.registered")]
    HallKeyRegistered,
    #[strum(serialize = "hall_key.revoked")]
    HallKeyRevoked,
    /// A staff member asked for their browser's key to become one of their hall's keys.
    #[strum(serialize = "device_key.requested")]
    DeviceKeyRequested,
    /// An admin approved a device key: it is registered as a hall key in the same step.
    #[strum(serialize = "device_key.approved")]
    DeviceKeyApproved,
    #[strum(serialize = "device_key.rejected")]
    DeviceKeyRejected,
    #[strum(serialize = "user.created")]
    UserCreated,
    /// An admin disabled a user (no login; every token refused at once).
    #[strum(serialize = "user.disabled")]
    UserDisabled,
    #[strum(serialize = "user.enabled")]
    UserEnabled,
    /// An admin set a user's password (their tokens end).
    #[strum(serialize = "user.password_reset")]
    UserPasswordReset,
    /// A user changed their own password (their tokens end).
    #[strum(serialize = "user.password_changed")]
    UserPasswordChanged,
    /// An admin cleared a user's login throttling.
    #[strum(serialize = "user.unlocked")]
    UserUnlocked,
    /// A new login-token signing key became current (`crossprov keys rotate-token-key`).
    #[strum(serialize = "token_key.rotated")]
    TokenKeyRotated,
    #[strum(serialize = "subscriber.viewed")]
    SubscriberViewed,
    #[strum(serialize = "audit.exported")]
    AuditExported,
    /// The verbatim signed result was read (unsealed) for an independent check.
    #[strum(serialize = "verification.result_exported")]
    ResultExported,
    /// A subscriber's data key was destroyed after the retention period (crypto-shredding).
    #[strum(serialize = "subscriber.shredded")]
    SubscriberShredded,
    /// Every data key re-wrapped under a new key-encryption key.
    #[strum(serialize = "crypto.kek_rotated")]
    KekRotated,
    /// A refused attempt on an order (role or scope).
    #[strum(serialize = "access.denied")]
    AccessDenied,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn every_action_reads_back_from_its_string() {
        for a in AuditAction::iter() {
            assert_eq!(AuditAction::from_str(a.as_str()), Ok(a));
        }
    }
}
