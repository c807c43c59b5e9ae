//! The operations overview's rules: how many days of completions it covers, which instants
//! those Beijing days span, and the zero-filled series it shows.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::calendar::BEIJING;

/// How many calendar days of completions an overview covers (`days`): 1 to 90, 30 unless
/// asked. Built only by [`OverviewDays::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewDays(u32);

impl OverviewDays {
    pub const DEFAULT: u32 = 30;
    pub const MAX: u32 = 90;

    /// `None` asks for the default; anything outside 1..=90 is refused.
    pub fn parse(days: Option<u32>) -> Option<Self> {
        let days = days.unwrap_or(Self::DEFAULT);
        (1..=Self::MAX).contains(&days).then_some(Self(days))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The Beijing dates covered at `now`, oldest first: the `days` dates ending today.
    pub fn dates(self, now: DateTime<Utc>) -> Vec<NaiveDate> {
        let today = beijing_date(now);
        (0..self.0)
            .rev()
            .filter_map(|back| today.checked_sub_signed(Duration::days(i64::from(back))))
            .collect()
    }

    /// The first instant of the window: Beijing midnight of its oldest date, in UTC.
    pub fn since(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let first = self
            .dates(now)
            .into_iter()
            .next()
            .unwrap_or(beijing_date(now));
        first
            .and_hms_opt(0, 0, 0)
            .and_then(|midnight| midnight.and_local_timezone(BEIJING).single())
            .map_or(now, |t| t.with_timezone(&Utc))
    }
}

/// The date people in China see at `at` (Asia/Shanghai).
pub fn beijing_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&BEIJING).date_naive()
}

/// One count per date of the window, oldest first, zero where `counted` has none; counts of
/// dates outside the window are left out.
pub fn per_day(dates: &[NaiveDate], counted: &[(NaiveDate, u64)]) -> Vec<(NaiveDate, u64)> {
    dates
        .iter()
        .map(|d| {
            let n = counted.iter().filter(|(c, _)| c == d).map(|(_, n)| n).sum();
            (*d, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn days_default_to_thirty_and_stay_within_one_to_ninety() {
        assert_eq!(OverviewDays::parse(None).map(OverviewDays::get), Some(30));
        assert_eq!(OverviewDays::parse(Some(1)).map(OverviewDays::get), Some(1));
        assert_eq!(
            OverviewDays::parse(Some(90)).map(OverviewDays::get),
            Some(90)
        );
        assert_eq!(OverviewDays::parse(Some(0)), None);
        assert_eq!(OverviewDays::parse(Some(91)), None);
    }

    #[test]
    fn the_window_is_beijing_days_ending_today() {
        // 17:30 UTC is already the next day in Beijing.
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 17, 30, 0).unwrap();
        let days = OverviewDays::parse(Some(3)).unwrap();
        assert_eq!(
            days.dates(now),
            [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 5)]
        );
        // Beijing midnight of 3 December is 16:00 UTC on the 2nd.
        assert_eq!(
            days.since(now),
            Utc.with_ymd_and_hms(2026, 12, 2, 16, 0, 0).unwrap()
        );
        let one = OverviewDays::parse(Some(1)).unwrap();
        assert_eq!(one.dates(now), [date(2026, 12, 5)]);
    }

    #[test]
    fn every_day_is_present_and_counts_outside_the_window_are_left_out() {
        let dates = [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 5)];
        let counted = [(date(2026, 12, 1), 9), (date(2026, 12, 4), 2)];
        assert_eq!(
            per_day(&dates, &counted),
            [
                (date(2026, 12, 3), 0),
                (date(2026, 12, 4), 2),
                (date(2026, 12, 5), 0)
            ]
        );
    }
}
