//! The business calendar: which days are working days in mainland China (statutory holidays
//! and 调休 working weekends, one file per year, replaced by the operator each year) and how far
//! a number of working hours reaches inside a hall's opening hours.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday,
};
use serde::Deserialize;

/// Asia/Shanghai: UTC+8 all year, since China keeps no daylight saving time.
pub const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The calendars compiled in, used when `sla.calendar_dir` is empty: (file name, text).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("2026.toml", include_str!("../../config/calendar/2026.toml")),
    ("2027.toml", include_str!("../../config/calendar/2027.toml")),
];

/// The longest stretch a walk covers: ten years of hours. Anything longer is cut to it, so
/// every walk ends, and stays far inside chrono's range.
const MAX_HOURS: i64 = 10 * 366 * 24;

/// The hours of a day a hall works, Beijing time, from `"HH:MM-HH:MM"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpeningHours {
    open: NaiveTime,
    close: NaiveTime,
}

/// An opening-hours value that is not `"HH:MM-HH:MM"` with the opening before the closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("opening hours {0:?} are not \"HH:MM-HH:MM\" (Beijing time) with the opening before the closing")]
pub struct InvalidOpeningHours(pub String);

impl OpeningHours {
    pub fn parse(raw: &str) -> Result<Self, InvalidOpeningHours> {
        let invalid = || InvalidOpeningHours(raw.to_owned());
        let (open, close) = raw.trim().split_once('-').ok_or_else(invalid)?;
        let open = clock_time(open.trim()).ok_or_else(invalid)?;
        let close = clock_time(close.trim()).ok_or_else(invalid)?;
        if open < close {
            Ok(Self { open, close })
        } else {
            Err(invalid())
        }
    }

    pub fn open(&self) -> NaiveTime {
        self.open
    }

    pub fn close(&self) -> NaiveTime {
        self.close
    }
}

impl fmt::Display for OpeningHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.open.format("%H:%M"),
            self.close.format("%H:%M")
        )
    }
}

/// Exactly `HH:MM`: chrono alone would also take `9:5`.
fn clock_time(text: &str) -> Option<NaiveTime> {
    let b = text.as_bytes();
    let shaped =
        b.len() == 5 && b[2] == b':' && [0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit());
    shaped
        .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
}

/// Why a calendar file was refused; each names the file's year and the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("not a business calendar file: {0}")]
    Syntax(String),
    #[error("calendar {year}: {entry}: {value} is not a date (YYYY-MM-DD)")]
    NotADate {
        year: i32,
        entry: String,
        value: String,
    },
    #[error("calendar {year}: {entry}: {date} is not in {year}")]
    OutsideYear {
        year: i32,
        entry: String,
        date: NaiveDate,
    },
    #[error("calendar {year}: {entry}: the first day {first} is after the last day {last}")]
    Reversed {
        year: i32,
        entry: String,
        first: NaiveDate,
        last: NaiveDate,
    },
    #[error("calendar {year}: {entry}: {date} is a {weekday}, but a 调休 working day must be a Saturday or Sunday")]
    WorkdayNotWeekend {
        year: i32,
        entry: String,
        date: NaiveDate,
        weekday: Weekday,
    },
    #[error(
        "calendar {year}: {date} is both a day off ({holiday}) and a working day (for {workday})"
    )]
    HolidayAndWorkday {
        year: i32,
        date: NaiveDate,
        holiday: String,
        workday: String,
    },
    #[error("calendar {0} is given twice")]
    DuplicateYear(i32),
}

/// The file as written; turned into a [`YearCalendar`] only once every entry checks out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    year: i32,
    source: String,
    #[serde(default)]
    provisional: bool,
    #[serde(default, rename = "holiday")]
    holidays: Vec<HolidayEntry>,
    #[serde(default, rename = "workday")]
    workdays: Vec<WorkdayEntry>,
}

/// Dates are kept as raw values so both a TOML date (`2026-10-01`) and a string
/// (`"2026-10-01"`) are accepted, and a bad one is named with its entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayEntry {
    name: String,
    first: toml::Value,
    /// Left out: a single day off.
    last: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkdayEntry {
    date: toml::Value,
    #[serde(rename = "for")]
    for_holiday: String,
}

/// One year's statutory days off and 调休 working days, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearCalendar {
    year: i32,
    source: String,
    provisional: bool,
    /// Day off → the holiday's name.
    holidays: BTreeMap<NaiveDate, String>,
    /// Weekend day worked → the holiday it makes up for.
    workdays: BTreeMap<NaiveDate, String>,
}

impl YearCalendar {
    /// Parses and checks the text of a `<year>.toml` calendar file.
    pub fn parse(text: &str) -> Result<Self, CalendarError> {
        let file: CalendarFile =
            toml::from_str(text).map_err(|e| CalendarError::Syntax(e.to_string()))?;
        let year = file.year;
        let mut holidays = BTreeMap::new();
        for entry in &file.holidays {
            let label = format!("holiday {:?}", entry.name);
            let first = date_in_year(year, &label, &entry.first)?;
            let last = match &entry.last {
                Some(last) => date_in_year(year, &label, last)?,
                None => first,
            };
            if first > last {
                return Err(CalendarError::Reversed {
                    year,
                    entry: label,
                    first,
                    last,
                });
            }
            for day in first.iter_days().take_while(|day| *day <= last) {
                holidays.insert(day, entry.name.clone());
            }
        }
        let mut workdays = BTreeMap::new();
        for entry in &file.workdays {
            let label = format!("workday for {:?}", entry.for_holiday);
            let date = date_in_year(year, &label, &entry.date)?;
            if !is_weekend(date) {
                return Err(CalendarError::WorkdayNotWeekend {
                    year,
                    entry: label,
                    date,
                    weekday: date.weekday(),
                });
            }
            if let Some(holiday) = holidays.get(&date) {
                return Err(CalendarError::HolidayAndWorkday {
                    year,
                    date,
                    holiday: holiday.clone(),
                    workday: entry.for_holiday.clone(),
                });
            }
            workdays.insert(date, entry.for_holiday.clone());
        }
        Ok(Self {
            year,
            source: file.source,
            provisional: file.provisional,
            holidays,
            workdays,
        })
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    /// Where the dates come from, as the file says.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Derived dates, not yet from a published notice: to be checked and replaced.
    pub fn is_provisional(&self) -> bool {
        self.provisional
    }

    /// The holiday a day off belongs to.
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        self.holidays.get(&date).map(String::as_str)
    }
}

fn date_in_year(year: i32, entry: &str, value: &toml::Value) -> Result<NaiveDate, CalendarError> {
    let not_a_date = || CalendarError::NotADate {
        year,
        entry: entry.to_owned(),
        value: match value {
            toml::Value::String(s) => format!("{s:?}"),
            toml::Value::Datetime(dt) => dt.to_string(),
            other => format!("a TOML {}", other.type_str()),
        },
    };
    let text = match value {
        // Only a plain date: a time or an offset would say something the calendar cannot mean.
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        toml::Value::String(s) => s.trim().to_owned(),
        _ => return Err(not_a_date()),
    };
    let date = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| not_a_date())?;
    if date.year() != year {
        return Err(CalendarError::OutsideYear {
            year,
            entry: entry.to_owned(),
            date,
        });
    }
    Ok(date)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Working days over several years. A year without a calendar has no working hours to go by,
/// so every hour of it counts (calendar hours), rather than guessing its holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessCalendar {
    years: BTreeMap<i32, YearCalendar>,
}

impl BusinessCalendar {
    /// One calendar per year; the same year twice is refused.
    pub fn new(years: impl IntoIterator<Item = YearCalendar>) -> Result<Self, CalendarError> {
        let mut by_year = BTreeMap::new();
        for calendar in years {
            let year = calendar.year;
            if by_year.insert(year, calendar).is_some() {
                return Err(CalendarError::DuplicateYear(year));
            }
        }
        Ok(Self { years: by_year })
    }

    /// The calendars compiled in from `config/calendar/`.
    pub fn built_in() -> Result<Self, CalendarError> {
        let years = BUILT_IN
            .iter()
            .map(|(_, text)| YearCalendar::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(years)
    }

    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    pub fn year(&self, year: i32) -> Option<&YearCalendar> {
        self.years.get(&year)
    }

    /// The calendars held, earliest year first.
    pub fn years(&self) -> impl Iterator<Item = &YearCalendar> {
        self.years.values()
    }

    /// Not a day off, and Monday to Friday or a 调休 working weekend day. In a year without a
    /// calendar that is Monday to Friday (though its hours all count, see the type).
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.years.get(&date.year()) {
            Some(year) => {
                year.workdays.contains_key(&date)
                    || (!year.holidays.contains_key(&date) && !is_weekend(date))
            }
            None => !is_weekend(date),
        }
    }

    /// The moment `hours` working hours after `start`: only time inside `opening` on working
    /// days counts, so a start outside it counts from the next opening, and the last hour
    /// ending at closing time ends there (not at the next opening). Negative hours go back.
    /// Hours beyond ten years are cut to ten years.
    pub fn add_working_hours(
        &self,
        start: DateTime<Utc>,
        hours: i64,
        opening: &OpeningHours,
    ) -> DateTime<Utc> {
        match hours.clamp(-MAX_HOURS, MAX_HOURS) {
            0 => start,
            h if h > 0 => self
                .forward(start, TimeDelta::hours(h), opening)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            h => self
                .backward(start, TimeDelta::hours(-h), opening)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }

    /// The moment `hours` working hours before `end`, the mirror of [`Self::add_working_hours`]:
    /// an end outside opening hours counts back from the last closing.
    pub fn sub_working_hours(
        &self,
        end: DateTime<Utc>,
        hours: i64,
        opening: &OpeningHours,
    ) -> DateTime<Utc> {
        self.add_working_hours(end, hours.saturating_neg(), opening)
    }

    /// Walks day by day through calendar years and a year at a time through the others;
    /// `None` only past the end of chrono's range.
    fn forward(
        &self,
        start: DateTime<Utc>,
        mut remaining: TimeDelta,
        opening: &OpeningHours,
    ) -> Option<DateTime<Utc>> {
        let mut cursor = local(start)?;
        loop {
            let day = cursor.date();
            let (window, next) = if self.covers(day.year()) {
                let window = self
                    .is_working_day(day)
                    .then(|| (day.and_time(opening.open), day.and_time(opening.close)));
                (window, day.succ_opt()?.and_time(NaiveTime::MIN))
            } else {
                let next_year = NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)?;
                let next = next_year.and_time(NaiveTime::MIN);
                (Some((cursor, next)), next)
            };
            if let Some((from, to)) = window {
                let from = from.max(cursor);
                if from < to {
                    let available = to - from;
                    if remaining <= available {
                        return utc(from.checked_add_signed(remaining)?);
                    }
                    remaining -= available;
                }
            }
            // Strictly later than the cursor: the walk always moves on.
            cursor = next;
        }
    }

    fn backward(
        &self,
        end: DateTime<Utc>,
        mut remaining: TimeDelta,
        opening: &OpeningHours,
    ) -> Option<DateTime<Utc>> {
        let mut cursor = local(end)?;
        loop {
            // The day whose time ends at the cursor: at midnight, the one before.
            let day = if cursor.time() == NaiveTime::MIN {
                cursor.date().pred_opt()?
            } else {
                cursor.date()
            };
            let (window, previous) = if self.covers(day.year()) {
                let window = self
                    .is_working_day(day)
                    .then(|| (day.and_time(opening.open), day.and_time(opening.close)));
                (window, day.and_time(NaiveTime::MIN))
            } else {
                let year_start = NaiveDate::from_ymd_opt(day.year(), 1, 1)?;
                let previous = year_start.and_time(NaiveTime::MIN);
                (Some((previous, cursor)), previous)
            };
            if let Some((from, to)) = window {
                let to = to.min(cursor);
                if from < to {
                    let available = to - from;
                    if remaining <= available {
                        return utc(to.checked_sub_signed(remaining)?);
                    }
                    remaining -= available;
                }
            }
            // Strictly earlier than the cursor: the walk always moves on.
            cursor = previous;
        }
    }
}

/// Beijing wall-clock time; `None` only at the very end of chrono's range.
fn local(instant: DateTime<Utc>) -> Option<NaiveDateTime> {
    instant.naive_utc().checked_add_offset(BEIJING)
}

fn utc(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    local.checked_sub_offset(BEIJING).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beijing wall-clock time as a UTC instant.
    fn bj(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        let local = NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap();
        utc(local).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn nine_to_five() -> OpeningHours {
        OpeningHours::parse("09:00-17:00").unwrap()
    }

    fn built_in() -> BusinessCalendar {
        BusinessCalendar::built_in().unwrap()
    }

    fn refusal(text: &str) -> String {
        YearCalendar::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn opening_hours_parse_and_print_back() {
        let hours = OpeningHours::parse(" 08:30 - 18:00 ").unwrap();
        assert_eq!(hours.open(), NaiveTime::from_hms_opt(8, 30, 0).unwrap());
        assert_eq!(hours.close(), NaiveTime::from_hms_opt(18, 0, 0).unwrap());
        assert_eq!(hours.to_string(), "08:30-18:00");
    }

    #[test]
    fn opening_hours_refuse_bad_shapes_naming_the_value() {
        for raw in [
            "",
            "9:00-17:00",
            "09:00",
            "09:00-",
            "17:00-09:00",
            "09:00-09:00",
            "24:00-25:00",
            "09:00-17:60",
            "09h00-17h00",
            "09:00:00-17:00:00",
        ] {
            let err = OpeningHours::parse(raw).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{raw:?}")),
                "{raw:?}: {err}"
            );
        }
    }

    #[test]
    fn the_built_in_files_parse_and_cover_2026_and_2027() {
        let cal = built_in();
        assert!(cal.covers(2026) && cal.covers(2027));
        assert!(!cal.covers(2025) && !cal.covers(2028));
        assert!(!cal.year(2026).unwrap().is_provisional());
        assert!(
            cal.year(2027).unwrap().is_provisional(),
            "2027 is derived until the State Council publishes its notice"
        );
    }

    #[test]
    fn the_2026_file_holds_the_notice_s_days_off_and_workdays() {
        let year = built_in().year(2026).unwrap().clone();
        let days_off: usize = year.holidays.len();
        // 3 + 9 + 3 + 5 + 3 + 3 + 7 days off; 6 working weekend days.
        assert_eq!(days_off, 33);
        let workdays: Vec<_> = year.workdays.keys().map(|d| d.to_string()).collect();
        assert_eq!(
            workdays,
            [
                "2026-01-04",
                "2026-02-14",
                "2026-02-28",
                "2026-05-09",
                "2026-09-20",
                "2026-10-10"
            ]
        );
    }

    #[test]
    fn a_holiday_weekday_is_not_a_working_day_and_a_tiaoxiu_weekend_is() {
        let cal = built_in();
        assert!(
            !cal.is_working_day(date(2026, 10, 1)),
            "National Day, Thursday"
        );
        assert!(cal.is_working_day(date(2026, 9, 20)), "调休 Sunday");
        assert!(cal.is_working_day(date(2026, 10, 10)), "调休 Saturday");
        assert!(!cal.is_working_day(date(2026, 10, 11)), "ordinary Sunday");
        assert!(cal.is_working_day(date(2026, 10, 9)), "ordinary Friday");
    }

    #[test]
    fn a_year_without_a_calendar_works_monday_to_friday() {
        let cal = built_in();
        assert!(cal.is_working_day(date(2028, 1, 3)), "Monday");
        assert!(!cal.is_working_day(date(2028, 1, 1)), "Saturday");
    }

    #[test]
    fn an_order_opened_on_the_eve_of_national_day_lands_after_the_tiaoxiu_saturday() {
        // 2 hours on Sep 30, then Oct 1-7 off, Oct 8 and 9 (8 h each), and Oct 10, the 调休
        // Saturday, counts: 2 + 8 + 8 = 18, the last 6 hours run 09:00-15:00 on Oct 10.
        let due = built_in().add_working_hours(bj(2026, 9, 30, 15, 0), 24, &nine_to_five());
        assert_eq!(due, bj(2026, 10, 10, 15, 0));
    }

    #[test]
    fn opened_at_night_counts_from_the_next_morning() {
        let due = built_in().add_working_hours(bj(2026, 3, 10, 22, 30), 3, &nine_to_five());
        assert_eq!(due, bj(2026, 3, 11, 12, 0));
    }

    #[test]
    fn opened_before_opening_counts_from_the_opening() {
        let due = built_in().add_working_hours(bj(2026, 3, 10, 6, 0), 3, &nine_to_five());
        assert_eq!(due, bj(2026, 3, 10, 12, 0));
    }

    #[test]
    fn opened_on_a_weekend_counts_from_monday() {
        // Saturday 2026-03-14.
        let due = built_in().add_working_hours(bj(2026, 3, 14, 10, 0), 2, &nine_to_five());
        assert_eq!(due, bj(2026, 3, 16, 11, 0));
    }

    #[test]
    fn hours_ending_at_closing_time_end_that_day() {
        let due = built_in().add_working_hours(bj(2026, 3, 10, 9, 0), 8, &nine_to_five());
        assert_eq!(due, bj(2026, 3, 10, 17, 0));
        let due = built_in().add_working_hours(bj(2026, 3, 10, 13, 0), 12, &nine_to_five());
        assert_eq!(due, bj(2026, 3, 11, 17, 0));
    }

    #[test]
    fn opened_at_closing_time_counts_from_the_next_opening() {
        let due = built_in().add_working_hours(bj(2026, 3, 10, 17, 0), 1, &nine_to_five());
        assert_eq!(due, bj(2026, 3, 11, 10, 0));
    }

    #[test]
    fn a_tiaoxiu_sunday_counts() {
        // New Year 2026: Jan 1-3 off, Sunday Jan 4 worked.
        let due = built_in().add_working_hours(bj(2025, 12, 31, 23, 0), 0, &nine_to_five());
        assert_eq!(
            due,
            bj(2025, 12, 31, 23, 0),
            "zero hours is the start itself"
        );
        let due = built_in().add_working_hours(bj(2026, 1, 1, 10, 0), 4, &nine_to_five());
        assert_eq!(due, bj(2026, 1, 4, 13, 0));
    }

    #[test]
    fn spring_festival_2026_is_skipped_whole() {
        // Friday Feb 13 13:00: 4 h that day, Saturday Feb 14 (调休) 8 h, then Feb 15-23 off.
        let due = built_in().add_working_hours(bj(2026, 2, 13, 13, 0), 14, &nine_to_five());
        assert_eq!(due, bj(2026, 2, 24, 11, 0));
    }

    #[test]
    fn sub_working_hours_mirrors_add() {
        let cal = built_in();
        let hours = nine_to_five();
        for (start, h) in [
            (bj(2026, 9, 30, 15, 0), 24),
            (bj(2026, 2, 13, 13, 0), 14),
            (bj(2026, 12, 30, 10, 0), 40),
            (bj(2027, 2, 4, 16, 30), 9),
        ] {
            let end = cal.add_working_hours(start, h, &hours);
            assert_eq!(
                cal.sub_working_hours(end, h, &hours),
                start,
                "{start} + {h} h"
            );
        }
    }

    #[test]
    fn sub_from_outside_opening_hours_counts_back_from_the_last_closing() {
        let cal = built_in();
        // Sunday Oct 11 noon: back to Saturday Oct 10 (调休) 17:00, then 3 hours.
        let at = cal.sub_working_hours(bj(2026, 10, 11, 12, 0), 3, &nine_to_five());
        assert_eq!(at, bj(2026, 10, 10, 14, 0));
        // Exactly the opening: the whole day before.
        let at = cal.sub_working_hours(bj(2026, 3, 11, 9, 0), 8, &nine_to_five());
        assert_eq!(at, bj(2026, 3, 10, 9, 0));
    }

    #[test]
    fn a_year_without_a_calendar_counts_every_hour() {
        let at = built_in().add_working_hours(bj(2028, 3, 4, 22, 0), 30, &nine_to_five());
        assert_eq!(at, bj(2028, 3, 6, 4, 0));
        let empty = BusinessCalendar::default();
        let at = empty.sub_working_hours(bj(2026, 10, 1, 12, 0), 48, &nine_to_five());
        assert_eq!(at, bj(2026, 9, 29, 12, 0));
    }

    #[test]
    fn crossing_into_a_covered_year_switches_to_working_hours() {
        // 2025 has no calendar: Dec 31 20:00 to midnight counts 4 h; then Jan 1-3 2026 off and
        // the 调休 Sunday Jan 4 from 09:00.
        let at = built_in().add_working_hours(bj(2025, 12, 31, 20, 0), 10, &nine_to_five());
        assert_eq!(at, bj(2026, 1, 4, 15, 0));
        assert_eq!(
            built_in().sub_working_hours(at, 10, &nine_to_five()),
            bj(2025, 12, 31, 20, 0)
        );
    }

    #[test]
    fn crossing_out_of_a_covered_year_switches_to_calendar_hours() {
        // Friday Dec 31 2027 16:00: 1 h that day, then every hour of 2028.
        let at = built_in().add_working_hours(bj(2027, 12, 31, 16, 0), 3, &nine_to_five());
        assert_eq!(at, bj(2028, 1, 1, 2, 0));
        assert_eq!(
            built_in().sub_working_hours(at, 3, &nine_to_five()),
            bj(2027, 12, 31, 16, 0)
        );
    }

    #[test]
    fn any_number_of_hours_ends() {
        let cal = built_in();
        let start = bj(2026, 5, 6, 10, 0);
        let far = cal.add_working_hours(start, i64::MAX, &nine_to_five());
        assert!(far > start && far < bj(2040, 1, 1, 0, 0), "{far}");
        let early = cal.sub_working_hours(start, i64::MAX, &nine_to_five());
        assert!(early < start && early > bj(2010, 1, 1, 0, 0), "{early}");
        assert_eq!(
            cal.add_working_hours(start, i64::MIN, &nine_to_five()),
            early
        );
        let edge = cal.add_working_hours(DateTime::<Utc>::MAX_UTC, 5, &nine_to_five());
        assert_eq!(edge, DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn negative_hours_go_back() {
        let cal = built_in();
        let at = bj(2026, 10, 10, 15, 0);
        assert_eq!(
            cal.add_working_hours(at, -24, &nine_to_five()),
            cal.sub_working_hours(at, 24, &nine_to_five())
        );
    }

    const MINIMAL: &str = "year = 2026\nsource = \"test\"\n";

    #[test]
    fn a_one_day_holiday_may_leave_out_its_last_day_and_quote_its_date() {
        let cal = YearCalendar::parse(&format!(
            "{MINIMAL}[[holiday]]\nname = \"x\"\nfirst = \"2026-03-11\"\n"
        ))
        .unwrap();
        assert_eq!(cal.holiday(date(2026, 3, 11)), Some("x"));
        assert_eq!(cal.holiday(date(2026, 3, 12)), None);
    }

    #[test]
    fn a_file_that_is_not_a_calendar_is_refused() {
        assert!(refusal("year = ").starts_with("not a business calendar file"));
        assert!(refusal("source = \"x\"\n").contains("year"), "missing key");
        let err = refusal(&format!("{MINIMAL}[[holidy]]\nname = \"x\"\n"));
        assert!(err.contains("holidy"), "{err}");
    }

    #[test]
    fn a_date_outside_the_year_is_refused_naming_year_and_entry() {
        let err = refusal(&format!(
            "{MINIMAL}[[holiday]]\nname = \"元旦\"\nfirst = 2027-01-01\n"
        ));
        assert_eq!(
            err,
            "calendar 2026: holiday \"元旦\": 2027-01-01 is not in 2026"
        );
    }

    #[test]
    fn a_reversed_holiday_is_refused() {
        let err = refusal(&format!(
            "{MINIMAL}[[holiday]]\nname = \"国庆节\"\nfirst = 2026-10-07\nlast = 2026-10-01\n"
        ));
        assert!(
            err.contains("calendar 2026") && err.contains("国庆节"),
            "{err}"
        );
        assert!(err.contains("after"), "{err}");
    }

    #[test]
    fn a_weekday_workday_is_refused() {
        let err = refusal(&format!(
            "{MINIMAL}[[workday]]\ndate = 2026-09-21\nfor = \"国庆节\"\n"
        ));
        assert!(
            err.contains("calendar 2026") && err.contains("2026-09-21"),
            "{err}"
        );
        assert!(err.contains("Mon"), "{err}");
    }

    #[test]
    fn a_day_both_off_and_worked_is_refused() {
        let err = refusal(&format!(
            "{MINIMAL}[[holiday]]\nname = \"国庆节\"\nfirst = 2026-10-01\nlast = 2026-10-11\n\
             [[workday]]\ndate = 2026-10-10\nfor = \"国庆节\"\n"
        ));
        assert!(err.contains("calendar 2026: 2026-10-10"), "{err}");
    }

    #[test]
    fn a_value_that_is_not_a_date_is_refused() {
        for value in [
            "\"2026-13-01\"",
            "2026-10-01T09:00:00",
            "20261001",
            "\"tomorrow\"",
        ] {
            let err = refusal(&format!(
                "{MINIMAL}[[workday]]\ndate = {value}\nfor = \"国庆节\"\n"
            ));
            assert!(err.contains("is not a date"), "{value}: {err}");
        }
    }

    #[test]
    fn the_same_year_twice_is_refused() {
        let year = YearCalendar::parse(MINIMAL).unwrap();
        assert_eq!(
            BusinessCalendar::new([year.clone(), year]),
            Err(CalendarError::DuplicateYear(2026))
        );
    }
}
