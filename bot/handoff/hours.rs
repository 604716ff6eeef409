//! Business hours of a team, in its own time zone, with holidays: whether it is open at
//! an instant, and when it next opens.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Opening hours per weekday (`"09:00-17:00"`, several ranges separated by commas; a day
/// not listed is closed), a time zone and closed dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// IANA time zone name, e.g. `Europe/Warsaw`.
    pub time_zone: String,
    /// Weekday (`mon` … `sun`) to ranges.
    #[serde(default)]
    pub days: std::collections::BTreeMap<String, String>,
    /// Dates (`YYYY-MM-DD`, local) when the team is closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// Why business hours are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    /// Not an IANA zone.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// Not `mon` … `sun`.
    #[error("unknown weekday {0:?} (use mon, tue, wed, thu, fri, sat, sun)")]
    Weekday(String),
    /// Not `HH:MM-HH:MM`.
    #[error("invalid range {0:?} (use HH:MM-HH:MM, end after start)")]
    Range(String),
    /// Not `YYYY-MM-DD`.
    #[error("invalid holiday {0:?} (use YYYY-MM-DD)")]
    Holiday(String),
}

/// Parsed, ready to answer questions.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: Tz,
    zone: String,
    /// Index 0 = Monday.
    ranges: [Vec<(NaiveTime, NaiveTime)>; 7],
    holidays: Vec<NaiveDate>,
}

fn weekday_index(name: &str) -> Option<usize> {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].iter().position(|d| name.eq_ignore_ascii_case(d))
}

impl BusinessHours {
    /// Validates and parses.
    ///
    /// # Errors
    /// The first problem found.
    pub fn schedule(&self) -> Result<Schedule, HoursError> {
        let tz: Tz = self.time_zone.parse().map_err(|_| HoursError::TimeZone(self.time_zone.clone()))?;
        let mut ranges: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        for (day, spec) in &self.days {
            let i = weekday_index(day).ok_or_else(|| HoursError::Weekday(day.clone()))?;
            for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let bad = || HoursError::Range(part.to_owned());
                let (a, b) = part.split_once('-').ok_or_else(bad)?;
                let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").map_err(|_| bad())?;
                let end = if b.trim() == "24:00" {
                    NaiveTime::from_hms_milli_opt(23, 59, 59, 999).ok_or_else(bad)?
                } else {
                    NaiveTime::parse_from_str(b.trim(), "%H:%M").map_err(|_| bad())?
                };
                if end <= start {
                    return Err(bad());
                }
                ranges[i].push((start, end));
            }
        }
        let holidays = self
            .holidays
            .iter()
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| HoursError::Holiday(d.clone())))
            .collect::<Result<_, _>>()?;
        Ok(Schedule { tz, zone: self.time_zone.clone(), ranges, holidays })
    }
}

impl Schedule {
    /// The time zone's name.
    #[must_use]
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// True when the team is open at `at`.
    #[must_use]
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let date = local.date_naive();
        if self.holidays.contains(&date) {
            return false;
        }
        let time = local.time();
        self.ranges[local.weekday().num_days_from_monday() as usize].iter().any(|(s, e)| *s <= time && time < *e)
    }

    /// The next opening at or after `at` within two weeks (`at` itself when open).
    #[must_use]
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return Some(at);
        }
        let local = at.with_timezone(&self.tz);
        for offset in 0..15 {
            let date = local.date_naive() + Duration::days(offset);
            if self.holidays.contains(&date) {
                continue;
            }
            let day = date.weekday().num_days_from_monday() as usize;
            let mut starts: Vec<NaiveTime> = self.ranges[day].iter().map(|(s, _)| *s).collect();
            starts.sort();
            for start in starts {
                // A start skipped by a DST jump is taken as the next valid instant.
                let Some(when) = self.tz.from_local_datetime(&date.and_time(start)).earliest() else { continue };
                let when = when.with_timezone(&Utc);
                if when > at {
                    return Some(when);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warsaw() -> Schedule {
        BusinessHours {
            time_zone: "Europe/Warsaw".into(),
            days: [("mon", "09:00-17:00"), ("tue", "09:00-12:00, 13:00-17:00"), ("sat", "10:00-14:00")]
                .into_iter()
                .map(|(d, r)| (d.to_owned(), r.to_owned()))
                .collect(),
            holidays: vec!["2026-12-28".into()],
        }
        .schedule()
        .expect("valid")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn open_inside_local_hours_only() {
        let s = warsaw();
        // Monday 7 Dec 2026, 08:30 UTC = 09:30 in Warsaw (UTC+1).
        assert!(s.is_open(utc("2026-12-07T08:30:00Z")));
        assert!(!s.is_open(utc("2026-12-07T07:30:00Z")), "08:30 local is before opening");
        assert!(!s.is_open(utc("2026-12-08T11:30:00Z")), "Tuesday lunch break");
        assert!(!s.is_open(utc("2026-12-09T10:00:00Z")), "Wednesday is not listed");
    }

    #[test]
    fn next_open_skips_closed_days_and_holidays() {
        let s = warsaw();
        // Sunday 27 Dec evening; Monday 28 is a holiday; Tuesday 29 opens 09:00 local.
        assert_eq!(s.next_open(utc("2026-12-27T20:00:00Z")), Some(utc("2026-12-29T08:00:00Z")));
        // Wednesday → Saturday 10:00 local.
        assert_eq!(s.next_open(utc("2026-12-09T10:00:00Z")), Some(utc("2026-12-12T09:00:00Z")));
    }

    #[test]
    fn bad_hours_are_refused_with_the_reason() {
        let mut h = BusinessHours { time_zone: "Mars/Base".into(), days: Default::default(), holidays: vec![] };
        assert_eq!(h.schedule().err(), Some(HoursError::TimeZone("Mars/Base".into())));
        h.time_zone = "UTC".into();
        h.days.insert("mon".into(), "17:00-09:00".into());
        assert!(matches!(h.schedule(), Err(HoursError::Range(_))));
    }
}
