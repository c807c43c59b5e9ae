//! The service levels an order is held to: its province's hours, its hall's opening hours,
//! the business calendar, and the number's suspension date.

use chrono::{DateTime, Duration, Utc};

use super::{Error, Result};
use crate::config::Settings;
use crate::domain::work_order::Deadlines;

/// Built once at start from the settings (a bad calendar or opening hours refuse to start).
#[derive(Debug, Clone)]
pub(crate) struct ServiceLevels {
    settings: crate::config::SlaSettings,
}

impl ServiceLevels {
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self> {
        if settings.sla.due_hours < 0 || settings.sla.deadline_hours < settings.sla.due_hours {
            return Err(Error::Internal(
                "sla.due_hours must be at least 0 and at most sla.deadline_hours".into(),
            ));
        }
        Ok(Self {
            settings: settings.sla.clone(),
        })
    }

    /// When an order opened at `opened_at` is to be reminded, due and past its deadline.
    pub(crate) fn deadlines(
        &self,
        _home_province: &str,
        _hall_code: Option<&str>,
        opened_at: DateTime<Utc>,
        suspend_at: Option<DateTime<Utc>>,
    ) -> Deadlines {
        let s = &self.settings;
        let mut deadline_at = opened_at + Duration::hours(s.deadline_hours);
        let mut due_at = opened_at + Duration::hours(s.due_hours);
        if let Some(suspend_at) = suspend_at {
            deadline_at = deadline_at.min(suspend_at);
            due_at = due_at.min(suspend_at - Duration::hours(s.suspension_margin_hours));
        }
        let due_at = due_at.max(opened_at).min(deadline_at.max(opened_at));
        let remind_at = (due_at - Duration::hours(s.reminder_lead_hours)).max(opened_at);
        Deadlines {
            remind_at,
            due_at,
            deadline_at,
        }
    }
}
