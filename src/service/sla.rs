//! The service levels an order is held to: its province's hours, its hall's opening hours,
//! the business calendar, and the number's suspension date.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Error, Result};
use crate::config::Settings;
use crate::domain::calendar::{BusinessCalendar, OpeningHours};
use crate::domain::sla::{sla_times, SlaTimes};

/// Built once at start from the settings (a bad calendar or opening hours refuse to start).
#[derive(Debug, Clone)]
pub(crate) struct ServiceLevels {
    calendar: BusinessCalendar,
    /// `sla.opening_hours`, and each hall's own by lowercase hall code: parsed once here.
    default_hours: OpeningHours,
    hall_hours: BTreeMap<String, OpeningHours>,
    settings: Settings,
}

impl ServiceLevels {
    /// Loads the business calendar, warning (in the log) of each year it does not cover.
    pub(crate) fn from_settings(settings: &Settings, now: DateTime<Utc>) -> Result<Self> {
        let today = now
            .with_timezone(&crate::domain::calendar::BEIJING)
            .date_naive();
        let (calendar, warnings) = settings
            .business_calendar(today)
            .map_err(|e| Error::Internal(e.to_string()))?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        let hours = |code: Option<&str>| {
            settings
                .opening_hours_for(code)
                .map_err(|e| Error::Internal(e.to_string()))
        };
        let mut hall_hours = BTreeMap::new();
        for code in settings.sla.hall_opening_hours.keys() {
            hall_hours.insert(code.to_lowercase(), hours(Some(code))?);
        }
        Ok(Self {
            calendar,
            default_hours: hours(None)?,
            hall_hours,
            settings: settings.clone(),
        })
    }

    /// When an order opened at `opened_at` is to be reminded, due and past its deadline.
    pub(crate) fn deadlines(
        &self,
        home_province: &str,
        hall_code: Option<&str>,
        opened_at: DateTime<Utc>,
        suspend_at: Option<DateTime<Utc>>,
    ) -> SlaTimes {
        let opening = hall_code
            .and_then(|code| self.hall_hours.get(&code.to_lowercase()))
            .unwrap_or(&self.default_hours);
        let rule = self.settings.sla_rule_for(home_province);
        sla_times(&self.calendar, &rule, opening, opened_at, suspend_at)
    }
}
