//! When an order is reminded, due and past its deadline: working hours on the business calendar
//! from the moment it was opened, pulled earlier by the number's suspension date.

use chrono::{DateTime, Utc};

use super::calendar::{BusinessCalendar, OpeningHours};

/// The service level an order is held to, in working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaRule {
    /// From opening to `due_at` (soft: reminder before, escalation after).
    pub due_hours: i64,
    /// From opening to `deadline_at` (hard: the order expires).
    pub deadline_hours: i64,
    /// How long before `due_at` the reminder goes.
    pub reminder_lead_hours: i64,
    /// How long before the number's suspension the order is due.
    pub suspension_margin_hours: i64,
}

/// The three moments an order's timers fire at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaTimes {
    pub remind_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
}

/// The order's timers. With a suspension date the deadline is never after it and the order is
/// due `suspension_margin_hours` before it. None of the three is ever before `opened_at` (a
/// suspension already past makes the order due and expired at once), and `due_at` is never
/// after `deadline_at`.
pub fn sla_times(
    cal: &BusinessCalendar,
    rule: &SlaRule,
    opening: &OpeningHours,
    opened_at: DateTime<Utc>,
    suspend_at: Option<DateTime<Utc>>,
) -> SlaTimes {
    let mut deadline_at = cal.add_working_hours(opened_at, rule.deadline_hours, opening);
    let mut due_at = cal.add_working_hours(opened_at, rule.due_hours, opening);
    if let Some(suspend_at) = suspend_at {
        deadline_at = deadline_at.min(suspend_at);
        due_at =
            due_at.min(cal.sub_working_hours(suspend_at, rule.suspension_margin_hours, opening));
    }
    let deadline_at = deadline_at.max(opened_at);
    let due_at = due_at.max(opened_at).min(deadline_at);
    let remind_at = cal
        .sub_working_hours(due_at, rule.reminder_lead_hours, opening)
        .max(opened_at);
    SlaTimes {
        remind_at,
        due_at,
        deadline_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::calendar::BEIJING;
    use chrono::{NaiveDate, TimeZone};

    fn bj(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        BEIJING
            .from_local_datetime(&day.and_hms_opt(h, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rule() -> SlaRule {
        SlaRule {
            due_hours: 24,
            deadline_hours: 72,
            reminder_lead_hours: 4,
            suspension_margin_hours: 8,
        }
    }

    fn times_by(
        rule: SlaRule,
        opened_at: DateTime<Utc>,
        suspend_at: Option<DateTime<Utc>>,
    ) -> SlaTimes {
        let cal = BusinessCalendar::built_in().unwrap();
        let opening = OpeningHours::parse("09:00-17:00").unwrap();
        sla_times(&cal, &rule, &opening, opened_at, suspend_at)
    }

    fn times(opened_at: DateTime<Utc>, suspend_at: Option<DateTime<Utc>>) -> SlaTimes {
        times_by(rule(), opened_at, suspend_at)
    }

    #[test]
    fn without_suspension_each_time_counts_working_hours_from_opening() {
        // Monday 2026-03-09 09:00: due after three working days, deadline after nine.
        let t = times(bj(2026, 3, 9, 9), None);
        assert_eq!(t.due_at, bj(2026, 3, 11, 17));
        assert_eq!(t.remind_at, bj(2026, 3, 11, 13));
        assert_eq!(t.deadline_at, bj(2026, 3, 19, 17));
    }

    #[test]
    fn the_reminder_skips_back_over_closed_hours() {
        // Due Oct 10 15:00 (the 调休 Saturday): 6 hours that day, 2 more on Friday Oct 9.
        let lead_8 = SlaRule {
            reminder_lead_hours: 8,
            ..rule()
        };
        let t = times_by(lead_8, bj(2026, 9, 30, 15), None);
        assert_eq!(t.due_at, bj(2026, 10, 10, 15));
        assert_eq!(t.remind_at, bj(2026, 10, 9, 15));
    }

    #[test]
    fn a_suspension_before_the_deadline_pulls_deadline_and_due_earlier() {
        // Suspension Friday Mar 13 12:00: deadline then; due 8 working hours earlier.
        let t = times(bj(2026, 3, 9, 9), Some(bj(2026, 3, 13, 12)));
        assert_eq!(t.deadline_at, bj(2026, 3, 13, 12));
        assert_eq!(t.due_at, bj(2026, 3, 11, 17));
        let t = times(bj(2026, 3, 9, 9), Some(bj(2026, 3, 12, 12)));
        assert_eq!(t.deadline_at, bj(2026, 3, 12, 12));
        assert_eq!(t.due_at, bj(2026, 3, 11, 12));
        assert_eq!(t.remind_at, bj(2026, 3, 10, 16));
    }

    #[test]
    fn a_suspension_after_the_deadline_changes_nothing() {
        let opened = bj(2026, 3, 9, 9);
        assert_eq!(times(opened, Some(bj(2026, 6, 1, 9))), times(opened, None));
    }

    #[test]
    fn a_suspension_within_the_margin_makes_the_order_due_at_opening() {
        // Suspension 4 working hours after opening: due would be before opening.
        let opened = bj(2026, 3, 9, 9);
        let t = times(opened, Some(bj(2026, 3, 9, 13)));
        assert_eq!(t.deadline_at, bj(2026, 3, 9, 13));
        assert_eq!((t.due_at, t.remind_at), (opened, opened));
    }

    #[test]
    fn a_suspension_already_past_is_never_before_opening() {
        let opened = bj(2026, 3, 9, 9);
        let t = times(opened, Some(bj(2026, 3, 1, 9)));
        assert_eq!(
            (t.remind_at, t.due_at, t.deadline_at),
            (opened, opened, opened)
        );
    }

    #[test]
    fn due_is_never_after_the_deadline() {
        let upside_down = SlaRule {
            due_hours: 80,
            deadline_hours: 8,
            ..rule()
        };
        let t = times_by(upside_down, bj(2026, 3, 9, 9), None);
        assert_eq!(t.deadline_at, bj(2026, 3, 9, 17));
        assert_eq!(t.due_at, t.deadline_at);
    }
}
