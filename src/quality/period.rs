//! Periods of reports and assessment cycles, in the service's local time zone
//! (`quality.time_zone`): a report "day" is a local calendar day, a cycle a run of local months.

use chrono::{DateTime, Datelike, NaiveDate, Offset as _, TimeZone as _, Utc};
use chrono_tz::Tz;

use crate::domain::{CLIENT_YEARS, Timestamp, date_within_client_years};

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The instant a local day starts (the first instant after a gap when midnight is skipped).
pub fn day_start(tz: Tz, day: NaiveDate) -> Timestamp {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    let at = tz
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            let after_gap = midnight.checked_add_signed(chrono::Duration::hours(1))?;
            tz.from_local_datetime(&after_gap).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| midnight.and_utc());
    Timestamp(at.timestamp_millis())
}

/// An instant in the service's zone; the epoch for an instant chrono cannot represent there (a
/// local time past the end of chrono's range would panic at the first use).
fn in_zone(tz: Tz, at: Timestamp) -> DateTime<Tz> {
    let utc = DateTime::<Utc>::from_timestamp_millis(at.0).unwrap_or_default();
    let local = utc.with_timezone(&tz);
    match utc.naive_utc().checked_add_offset(local.offset().fix()) {
        Some(_) => local,
        None => DateTime::<Utc>::default().with_timezone(&tz),
    }
}

/// The local calendar day of an instant.
pub fn local_day(tz: Tz, at: Timestamp) -> NaiveDate {
    in_zone(tz, at).date_naive()
}

/// An instant as local RFC 3339 text (for reports people read).
pub fn local_time(tz: Tz, at: Timestamp) -> String {
    in_zone(tz, at).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A local date `YYYY-MM-DD` within [`CLIENT_YEARS`].
pub fn parse_day(raw: &str) -> Result<NaiveDate, String> {
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("{raw:?} is not a date YYYY-MM-DD"))?;
    Ok(date_within_client_years(day)?)
}

/// A bound of a period: a local date `YYYY-MM-DD` (its start; for an end bound the whole day is
/// included, so the bound is the next day's start), an RFC 3339 instant, or unix milliseconds;
/// within [`CLIENT_YEARS`].
pub fn parse_bound(tz: Tz, raw: &str, end: bool) -> Result<Timestamp, String> {
    let raw = raw.trim();
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let day = date_within_client_years(day)?;
        let day = if end {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        return Ok(day_start(tz, day));
    }
    let at = match DateTime::parse_from_rfc3339(raw) {
        Ok(at) => Timestamp(at.timestamp_millis()),
        Err(_) => raw.parse::<i64>().map(Timestamp).map_err(|_| {
            format!("{raw:?} is not a date (YYYY-MM-DD), an RFC 3339 time or unix milliseconds")
        })?,
    };
    Ok(at.within_client_years()?)
}

/// The period of a report query: `from` and `to` as [`parse_bound`] reads them; without `from`,
/// today (local) so far; without `to`, up to now.
pub fn query_period(
    tz: Tz,
    from: Option<&str>,
    to: Option<&str>,
    now: Timestamp,
) -> Result<Period, String> {
    let from = match from.filter(|s| !s.trim().is_empty()) {
        Some(raw) => parse_bound(tz, raw, false).map_err(|e| format!("from: {e}"))?,
        None => day_start(tz, local_day(tz, now)),
    };
    let to = match to.filter(|s| !s.trim().is_empty()) {
        Some(raw) => parse_bound(tz, raw, true).map_err(|e| format!("to: {e}"))?,
        None => now.max(from),
    };
    if to < from {
        return Err("to: must not be before from".into());
    }
    if to.since(from) > 400 * 86_400_000 {
        return Err("to: a report covers at most 400 days".into());
    }
    Ok(Period { from, to })
}

/// An assessment cycle: `months` local months starting at month `(index − 1) × months + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cycle {
    pub year: i32,
    /// 1-based.
    pub index: u32,
    pub months: u32,
}

/// Cycle lengths that divide a year.
pub const CYCLE_MONTHS: [u32; 6] = [1, 2, 3, 4, 6, 12];

impl Cycle {
    /// The cycle containing a local day.
    pub fn containing(day: NaiveDate, months: u32) -> Cycle {
        let months = if CYCLE_MONTHS.contains(&months) {
            months
        } else {
            3
        };
        Cycle {
            year: day.year(),
            index: (day.month() - 1) / months + 1,
            months,
        }
    }

    /// `2026-Q1` (quarters), `2026-M01` (months), `2026-H1` (halves), `2026` (years),
    /// `2026-P1` (two- or four-month cycles).
    pub fn id(&self) -> String {
        match self.months {
            12 => format!("{}", self.year),
            6 => format!("{}-H{}", self.year, self.index),
            3 => format!("{}-Q{}", self.year, self.index),
            1 => format!("{}-M{:02}", self.year, self.index),
            _ => format!("{}-P{}", self.year, self.index),
        }
    }

    /// Parses an id made by [`Cycle::id`] for cycles of `months` months.
    pub fn parse(raw: &str, months: u32) -> Result<Cycle, String> {
        let bad = || {
            format!(
                "{raw:?} is not a cycle of {months} month(s), e.g. {}",
                Cycle::containing(
                    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
                    months
                )
                .id()
            )
        };
        let (year, rest) = match raw.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (raw, None),
        };
        let year: i32 = year.parse().map_err(|_| bad())?;
        if !CLIENT_YEARS.contains(&year) {
            return Err(bad());
        }
        let cycle = match rest {
            None => Cycle {
                year,
                index: 1,
                months: 12,
            },
            Some(rest) => {
                let mut chars = rest.chars();
                let tag = chars.next();
                let number = chars.as_str();
                let index: u32 = number.parse().map_err(|_| bad())?;
                Cycle {
                    year,
                    index,
                    months: match tag {
                        Some('H') => 6,
                        Some('Q') => 3,
                        Some('M') => 1,
                        Some('P') => months,
                        _ => return Err(bad()),
                    },
                }
            }
        };
        if cycle.months != months || cycle.index == 0 || cycle.index > 12 / months {
            return Err(bad());
        }
        Ok(cycle)
    }

    /// The first local day of the cycle.
    pub fn first_day(&self) -> NaiveDate {
        let month = (self.index - 1) * self.months + 1;
        NaiveDate::from_ymd_opt(self.year, month, 1).unwrap_or_default()
    }

    /// The first local day after the cycle.
    pub fn end_day(&self) -> NaiveDate {
        let month = self.index * self.months + 1;
        if month > 12 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1).unwrap_or_default()
        } else {
            NaiveDate::from_ymd_opt(self.year, month, 1).unwrap_or_default()
        }
    }

    pub fn period(&self, tz: Tz) -> Period {
        Period {
            from: day_start(tz, self.first_day()),
            to: day_start(tz, self.end_day()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn days_are_local() {
        // 2026-03-01 00:00 in Shanghai (UTC+8) is 2026-02-28 16:00 UTC.
        let start = day_start(SHANGHAI, parse_day("2026-03-01").unwrap());
        assert_eq!(start, Timestamp(1_772_294_400_000));
        assert_eq!(local_day(SHANGHAI, start).to_string(), "2026-03-01");
        assert_eq!(
            local_day(SHANGHAI, start.plus_ms(-1)).to_string(),
            "2026-02-28"
        );
    }

    #[test]
    fn query_periods() {
        let now = Timestamp(1_772_294_400_000 + 3_600_000); // 01:00 local on 2026-03-01
        let today = query_period(SHANGHAI, None, None, now).unwrap();
        assert_eq!(today.from, Timestamp(1_772_294_400_000));
        assert_eq!(today.to, now);
        // A date `to` includes that whole day.
        let march = query_period(SHANGHAI, Some("2026-03-01"), Some("2026-03-31"), now).unwrap();
        assert_eq!(march.to.0 - march.from.0, 31 * 86_400_000);
        let exact = query_period(
            SHANGHAI,
            Some("2026-03-01T00:00:00Z"),
            Some("1772323200000"),
            now,
        )
        .unwrap();
        assert_eq!(
            (exact.from.0, exact.to.0),
            (1_772_323_200_000, 1_772_323_200_000)
        );
        assert!(query_period(SHANGHAI, Some("yesterday"), None, now).is_err());
        assert!(query_period(SHANGHAI, Some("2026-03-03"), Some("2026-03-01"), now).is_err());
    }

    #[test]
    fn cycles() {
        let day = parse_day("2026-05-17").unwrap();
        let q = Cycle::containing(day, 3);
        assert_eq!(q.id(), "2026-Q2");
        assert_eq!(
            (q.first_day().to_string(), q.end_day().to_string()),
            ("2026-04-01".into(), "2026-07-01".into())
        );
        assert_eq!(Cycle::parse("2026-Q2", 3), Ok(q));
        assert_eq!(
            Cycle::parse("2026-Q4", 3).unwrap().end_day().to_string(),
            "2027-01-01"
        );
        assert!(Cycle::parse("2026-Q5", 3).is_err());
        assert!(Cycle::parse("2026-M05", 3).is_err());
        assert_eq!(Cycle::containing(day, 1).id(), "2026-M05");
        assert_eq!(
            Cycle::parse("2026-M05", 1).unwrap(),
            Cycle::containing(day, 1)
        );
        assert_eq!(Cycle::containing(day, 6).id(), "2026-H1");
        assert_eq!(Cycle::containing(day, 12).id(), "2026");
        assert_eq!(Cycle::parse("2026", 12).unwrap().index, 1);
        let p = Cycle::parse("2026-Q1", 3).unwrap().period(SHANGHAI);
        assert_eq!(p.to.0 - p.from.0, 90 * 86_400_000);
    }

    #[test]
    fn bounds_outside_the_client_years_are_refused() {
        let max_ms = DateTime::<Utc>::MAX_UTC.timestamp_millis();
        for raw in [
            "1999-12-31",
            "+262142-12-31",
            "2201-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "-9000000000000000000",
            "9000000000000000000",
            &max_ms.to_string(),
        ] {
            for end in [false, true] {
                let e = parse_bound(SHANGHAI, raw, end).unwrap_err();
                assert!(e.contains("2000 to 2200"), "{raw}: {e}");
            }
        }
        assert!(parse_bound(SHANGHAI, "2200-12-31", true).is_ok());
        assert!(parse_bound(SHANGHAI, "2000-01-01", false).is_ok());
        assert!(parse_day("+262142-12-31").is_err());
        assert!(parse_day("2200-12-31").is_ok());
        let now = Timestamp(1_772_294_400_000);
        let e = query_period(
            SHANGHAI,
            Some("-9000000000000000000"),
            Some("9000000000000000000"),
            now,
        )
        .unwrap_err();
        assert!(e.starts_with("from: "), "{e}");
    }

    #[test]
    fn local_days_at_the_ends_of_time_do_not_panic() {
        let max_ms = DateTime::<Utc>::MAX_UTC.timestamp_millis();
        let min_ms = DateTime::<Utc>::MIN_UTC.timestamp_millis();
        for at in [max_ms, min_ms, i64::MAX, i64::MIN] {
            let _ = local_day(SHANGHAI, Timestamp(at));
            let _ = local_time(chrono_tz::America::Los_Angeles, Timestamp(at));
            let _ = day_start(SHANGHAI, NaiveDate::MAX);
        }
    }

    #[test]
    fn cycle_ids_with_wide_characters_are_refused() {
        for raw in [
            "2026-\u{e9}1",
            "2026-\u{5b63}1",
            "2026-",
            "2026-Q",
            "2026-Q\u{e9}",
        ] {
            assert!(Cycle::parse(raw, 3).is_err(), "{raw}");
        }
        assert_eq!(
            Cycle::parse("2026-Q2", 3).unwrap(),
            Cycle {
                year: 2026,
                index: 2,
                months: 3
            }
        );
    }
}
