//! On-call schedules: rotations (daily or weekly shifts handed off at a local time, participants in
//! order from a start date) in the schedule's time zone, plus overrides. Who is on call at an
//! instant, the final schedule over a window, and its iCalendar export.
//!
//! Rotations are layers (as in PagerDuty): at any instant the last rotation that has started
//! decides, and an override covering the instant beats every rotation (the last override listed
//! wins). Shifts are counted in local calendar days, so a hand-off stays at its wall-clock time
//! across daylight-saving changes in zones that have them (Asia/Shanghai has none).
//!
//! Pure: no IO, time is an input.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset as _, TimeZone as _, Utc,
};
use chrono_tz::Tz;
use icalendar::{Calendar, Component, EventLike};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::domain::{OperatorId, Timestamp};

use super::model::ScheduleId;

pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Shanghai;
pub const MAX_ROTATIONS: usize = 10;
pub const MAX_PARTICIPANTS: usize = 50;
pub const MAX_OVERRIDES: usize = 200;
/// The longest an export may look ahead.
pub const MAX_EXPORT_WEEKS: u32 = 26;

/// Implements serde (as a string) and a string JSON Schema for a parsed newtype.
macro_rules! string_newtype {
    ($name:ident, $schema_name:literal, $pattern:literal, $description:literal) => {
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                raw.parse()
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.to_string()
            }
        }
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $schema_name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $description })
            }
        }
    };
}

/// An IANA time zone name, e.g. `Asia/Shanghai` (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(pub Tz);

impl Default for TimeZone {
    fn default() -> Self {
        TimeZone(DEFAULT_TIME_ZONE)
    }
}
impl FromStr for TimeZone {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        Tz::from_str(raw).map(TimeZone).map_err(|_| {
            format!("unknown time zone {raw:?}; use an IANA name such as Asia/Shanghai")
        })
    }
}
impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}
string_newtype!(
    TimeZone,
    "TimeZone",
    "^[A-Za-z_+-]+(/[A-Za-z0-9_+-]+)*$",
    "An IANA time zone name"
);

/// A wall-clock time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalTime(pub NaiveTime);

impl FromStr for LocalTime {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        NaiveTime::parse_from_str(raw, "%H:%M")
            .map(LocalTime)
            .map_err(|_| format!("{raw:?} is not a time of day HH:MM"))
    }
}
impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}
string_newtype!(
    LocalTime,
    "LocalTime",
    "^[0-2][0-9]:[0-5][0-9]$",
    "A time of day, HH:MM"
);

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalDate(pub NaiveDate);

impl FromStr for LocalDate {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map(LocalDate)
            .map_err(|_| format!("{raw:?} is not a date YYYY-MM-DD"))
    }
}
impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}
string_newtype!(
    LocalDate,
    "LocalDate",
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    "A date, YYYY-MM-DD"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RotationLength {
    Daily,
    Weekly,
}

impl RotationLength {
    fn days(self) -> i64 {
        match self {
            RotationLength::Daily => 1,
            RotationLength::Weekly => 7,
        }
    }
}

/// Participants take shifts in order, the first one from `start_date` at `handoff_time`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    pub length: RotationLength,
    pub handoff_time: LocalTime,
    pub start_date: LocalDate,
    pub participants: Vec<OperatorId>,
}

/// `person` is on call from `start` (inclusive) to `end` (exclusive), whatever the rotations say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub start: Timestamp,
    pub end: Timestamp,
    pub person: OperatorId,
}

/// A schedule as administrators write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDefinition {
    pub name: String,
    /// IANA name; `Asia/Shanghai` when absent.
    #[serde(default)]
    pub time_zone: TimeZone,
    pub rotations: Vec<Rotation>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Schedule {
    pub id: ScheduleId,
    #[serde(flatten)]
    pub definition: ScheduleDefinition,
    pub updated_at: Timestamp,
}

/// Where an on-call answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OnCallSource {
    Override,
    /// The rotation at this index of `rotations`.
    Rotation {
        index: usize,
    },
}

/// Who is on call at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnCall {
    pub person: OperatorId,
    pub source: OnCallSource,
}

/// A stretch of the final schedule with one person on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Segment {
    pub start: Timestamp,
    pub end: Timestamp,
    pub person: OperatorId,
}

fn to_utc(ms: Timestamp) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms.0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The instant a wall-clock time happens in `tz`: the earlier one when the clock goes back, the
/// first instant after the gap when it jumps forward.
fn local_instant(tz: Tz, local: NaiveDateTime) -> Timestamp {
    let at = tz
        .from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&local.checked_add_signed(Duration::hours(1))?)
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| local.and_utc());
    Timestamp(at.timestamp_millis())
}

impl Rotation {
    /// The shift (0 = the first one) running at `at`, or `None` before the rotation starts (or
    /// at an instant whose local time chrono cannot represent).
    fn shift_at(&self, tz: Tz, at: Timestamp) -> Option<i64> {
        let utc = to_utc(at);
        let local = utc
            .naive_utc()
            .checked_add_offset(utc.with_timezone(&tz).offset().fix())?;
        let mut day = local.date();
        if local.time() < self.handoff_time.0 {
            day = day.pred_opt()?;
        }
        let days = (day - self.start_date.0).num_days();
        (days >= 0).then(|| days.div_euclid(self.length.days()))
    }

    /// When shift `k` starts.
    fn shift_start(&self, tz: Tz, k: i64) -> Timestamp {
        let date = self
            .start_date
            .0
            .checked_add_signed(Duration::days(k.saturating_mul(self.length.days())))
            .unwrap_or(NaiveDate::MAX);
        local_instant(tz, date.and_time(self.handoff_time.0))
    }

    fn participant(&self, k: i64) -> Option<OperatorId> {
        if self.participants.is_empty() {
            return None;
        }
        let n = self.participants.len() as i64;
        Some(self.participants[k.rem_euclid(n) as usize])
    }
}

impl Schedule {
    pub fn new(id: ScheduleId, definition: ScheduleDefinition) -> Self {
        Schedule {
            id,
            definition,
            updated_at: Timestamp(0),
        }
    }

    fn tz(&self) -> Tz {
        self.definition.time_zone.0
    }

    /// Who is on call at `at`: an override covering it, else the last started rotation.
    pub fn on_call_at(&self, at: Timestamp) -> Option<OnCall> {
        if let Some(o) = self
            .definition
            .overrides
            .iter()
            .rev()
            .find(|o| o.start <= at && at < o.end)
        {
            return Some(OnCall {
                person: o.person,
                source: OnCallSource::Override,
            });
        }
        let tz = self.tz();
        self.definition
            .rotations
            .iter()
            .enumerate()
            .rev()
            .find_map(|(index, r)| {
                let person = r.participant(r.shift_at(tz, at)?)?;
                Some(OnCall {
                    person,
                    source: OnCallSource::Rotation { index },
                })
            })
    }

    /// The final schedule over `[from, to)`: who is on call, merged into stretches. Stretches with
    /// nobody on call are left out.
    pub fn segments(&self, from: Timestamp, to: Timestamp) -> Vec<Segment> {
        if to <= from {
            return Vec::new();
        }
        let tz = self.tz();
        let mut cuts = BTreeSet::from([from, to]);
        for r in &self.definition.rotations {
            let first = r.shift_at(tz, from).map_or(0, |k| k + 1);
            // Bounded: a daily rotation over the longest export has 183 hand-offs.
            for k in first..first + 400 {
                let start = r.shift_start(tz, k);
                if start >= to {
                    break;
                }
                if start > from {
                    cuts.insert(start);
                }
            }
        }
        for o in &self.definition.overrides {
            for t in [o.start, o.end] {
                if from < t && t < to {
                    cuts.insert(t);
                }
            }
        }
        let cuts: Vec<Timestamp> = cuts.into_iter().collect();
        let mut segments: Vec<Segment> = Vec::new();
        for w in cuts.windows(2) {
            let (start, end) = (w[0], w[1]);
            let Some(on_call) = self.on_call_at(start) else {
                continue;
            };
            match segments.last_mut() {
                Some(last) if last.end == start && last.person == on_call.person => last.end = end,
                _ => segments.push(Segment {
                    start,
                    end,
                    person: on_call.person,
                }),
            }
        }
        segments
    }

    /// When the person on call at `at` hands off (looking up to five weeks ahead).
    pub fn on_call_until(&self, at: Timestamp) -> Option<Timestamp> {
        let horizon = at.plus_ms(35 * 86_400_000);
        self.segments(at, horizon)
            .first()
            .filter(|s| s.start == at && s.end < horizon)
            .map(|s| s.end)
    }

    /// The final schedule from `from` for `weeks` weeks as an iCalendar document, one event per
    /// stretch, named after the person (`names`; the account id when a name is missing).
    pub fn to_ical(
        &self,
        from: Timestamp,
        weeks: u32,
        names: &HashMap<OperatorId, String>,
        now: Timestamp,
    ) -> String {
        let to = from.plus_ms(i64::from(weeks.min(MAX_EXPORT_WEEKS)) * 7 * 86_400_000);
        let mut calendar = Calendar::new();
        calendar
            .name(&format!("On call: {}", self.definition.name))
            .timezone(self.definition.time_zone.0.name());
        for s in self.segments(from, to) {
            let who = names
                .get(&s.person)
                .cloned()
                .unwrap_or_else(|| format!("account {}", s.person));
            calendar.push(
                icalendar::Event::new()
                    .uid(&format!(
                        "hotline-schedule-{}-{}-{}@hotline",
                        self.id, s.start.0, s.person
                    ))
                    .summary(&format!("On call: {who}"))
                    .description(&format!("{} ({})", self.definition.name, who))
                    .starts(to_utc(s.start))
                    .ends(to_utc(s.end))
                    .timestamp(to_utc(now))
                    .done(),
            );
        }
        calendar.done().to_string()
    }
}

impl ScheduleDefinition {
    /// Every problem, field by field; empty when the schedule is fine.
    pub fn problems(&self, known_accounts: &HashSet<OperatorId>) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 80 {
            problems.push("name: must be 1-80 characters".to_owned());
        }
        if self.rotations.is_empty() || self.rotations.len() > MAX_ROTATIONS {
            problems.push(format!("rotations: must have 1-{MAX_ROTATIONS} rotations"));
        }
        for (i, r) in self.rotations.iter().enumerate() {
            if r.participants.is_empty() || r.participants.len() > MAX_PARTICIPANTS {
                problems.push(format!(
                    "rotations[{i}].participants: must have 1-{MAX_PARTICIPANTS} people"
                ));
            }
            for (j, p) in r.participants.iter().enumerate() {
                if !known_accounts.contains(p) {
                    problems.push(format!(
                        "rotations[{i}].participants[{j}]: there is no account {p}"
                    ));
                }
            }
        }
        if self.overrides.len() > MAX_OVERRIDES {
            problems.push(format!("overrides: at most {MAX_OVERRIDES}"));
        }
        for (i, o) in self.overrides.iter().enumerate() {
            if o.end <= o.start {
                problems.push(format!("overrides[{i}].end: must be after start"));
            }
            if !known_accounts.contains(&o.person) {
                problems.push(format!(
                    "overrides[{i}].person: there is no account {}",
                    o.person
                ));
            }
        }
        problems
    }

    /// Every account the schedule names.
    pub fn people(&self) -> Vec<OperatorId> {
        let mut people: Vec<OperatorId> = self
            .rotations
            .iter()
            .flat_map(|r| r.participants.iter().copied())
            .chain(self.overrides.iter().map(|o| o.person))
            .collect();
        people.sort();
        people.dedup();
        people
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    /// Milliseconds of a Shanghai wall-clock time (UTC+8 all year).
    fn sh(date: &str, time: &str) -> Timestamp {
        let local =
            NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M").unwrap();
        Timestamp((local.and_utc().timestamp_millis()) - 8 * HOUR)
    }

    fn rotation(length: RotationLength, handoff: &str, start: &str, people: &[i64]) -> Rotation {
        Rotation {
            length,
            handoff_time: handoff.parse().unwrap(),
            start_date: start.parse().unwrap(),
            participants: people.iter().map(|&p| OperatorId(p)).collect(),
        }
    }

    /// People 1 and 2 taking turns daily, handing off at 09:00, from 2025-03-01.
    fn daily_pair() -> Rotation {
        rotation(RotationLength::Daily, "09:00", "2025-03-01", &[1, 2])
    }

    fn schedule(rotations: Vec<Rotation>, overrides: Vec<Override>) -> Schedule {
        Schedule::new(
            ScheduleId(1),
            ScheduleDefinition {
                name: "crisis leads".into(),
                time_zone: TimeZone::default(),
                rotations,
                overrides,
            },
        )
    }

    fn who(s: &Schedule, at: Timestamp) -> Option<i64> {
        s.on_call_at(at).map(|o| o.person.0)
    }

    #[test]
    fn daily_handoffs_at_local_time_in_shanghai() {
        let s = schedule(
            vec![rotation(
                RotationLength::Daily,
                "09:00",
                "2025-03-01",
                &[1, 2, 3],
            )],
            vec![],
        );
        assert_eq!(
            who(&s, sh("2025-03-01", "08:59")),
            None,
            "before the first hand-off"
        );
        assert_eq!(who(&s, sh("2025-03-01", "09:00")), Some(1));
        assert_eq!(
            who(&s, sh("2025-03-02", "08:59")),
            Some(1),
            "until the next morning"
        );
        assert_eq!(who(&s, sh("2025-03-02", "09:00")), Some(2));
        assert_eq!(who(&s, sh("2025-03-03", "23:00")), Some(3));
        assert_eq!(who(&s, sh("2025-03-04", "09:00")), Some(1), "wraps around");
        // A year later, still at 09:00 Shanghai time (no daylight saving there).
        assert_eq!(
            who(&s, sh("2026-03-01", "09:00")),
            Some(((365 % 3) + 1) as i64)
        );
        assert_eq!(
            who(&s, sh("2026-03-01", "08:59")),
            Some(((364 % 3) + 1) as i64)
        );
    }

    #[test]
    fn weekly_rotation_and_layers() {
        let base = rotation(RotationLength::Weekly, "18:30", "2025-01-06", &[1, 2]);
        let s = schedule(vec![base.clone()], vec![]);
        assert_eq!(who(&s, sh("2025-01-06", "18:30")), Some(1));
        assert_eq!(who(&s, sh("2025-01-13", "18:29")), Some(1));
        assert_eq!(who(&s, sh("2025-01-13", "18:30")), Some(2));
        assert_eq!(who(&s, sh("2025-01-20", "18:30")), Some(1));
        // A later layer takes over from its own start date.
        let layered = schedule(
            vec![
                base,
                rotation(RotationLength::Daily, "08:00", "2025-02-01", &[7]),
            ],
            vec![],
        );
        assert_eq!(who(&layered, sh("2025-01-31", "12:00")), Some(2));
        assert_eq!(who(&layered, sh("2025-02-01", "08:00")), Some(7));
        assert_eq!(
            layered
                .on_call_at(sh("2025-02-01", "08:00"))
                .unwrap()
                .source,
            OnCallSource::Rotation { index: 1 }
        );
    }

    #[test]
    fn overrides_win_and_the_last_listed_wins() {
        let s = schedule(
            vec![daily_pair()],
            vec![
                Override {
                    start: sh("2025-03-01", "12:00"),
                    end: sh("2025-03-01", "14:00"),
                    person: OperatorId(8),
                },
                Override {
                    start: sh("2025-03-01", "13:00"),
                    end: sh("2025-03-01", "13:30"),
                    person: OperatorId(9),
                },
            ],
        );
        assert_eq!(who(&s, sh("2025-03-01", "11:59")), Some(1));
        assert_eq!(who(&s, sh("2025-03-01", "12:00")), Some(8));
        assert_eq!(who(&s, sh("2025-03-01", "13:10")), Some(9));
        assert_eq!(who(&s, sh("2025-03-01", "13:30")), Some(8));
        assert_eq!(
            who(&s, sh("2025-03-01", "14:00")),
            Some(1),
            "end is exclusive"
        );
        assert_eq!(
            s.on_call_at(sh("2025-03-01", "12:00")).unwrap().source,
            OnCallSource::Override
        );
    }

    #[test]
    fn final_schedule_merges_and_splits_at_overrides() {
        let s = schedule(
            vec![daily_pair()],
            vec![Override {
                start: sh("2025-03-02", "00:00"),
                end: sh("2025-03-02", "02:00"),
                person: OperatorId(5),
            }],
        );
        let from = sh("2025-03-01", "00:00");
        let segments = s.segments(from, from.plus_ms(3 * DAY));
        let got: Vec<(Timestamp, Timestamp, i64)> = segments
            .iter()
            .map(|s| (s.start, s.end, s.person.0))
            .collect();
        assert_eq!(
            got,
            vec![
                (sh("2025-03-01", "09:00"), sh("2025-03-02", "00:00"), 1),
                (sh("2025-03-02", "00:00"), sh("2025-03-02", "02:00"), 5),
                (sh("2025-03-02", "02:00"), sh("2025-03-02", "09:00"), 1),
                (sh("2025-03-02", "09:00"), sh("2025-03-03", "09:00"), 2),
                (sh("2025-03-03", "09:00"), sh("2025-03-04", "00:00"), 1),
            ]
        );
        assert_eq!(
            s.on_call_until(sh("2025-03-02", "10:00")),
            Some(sh("2025-03-03", "09:00"))
        );
        // One person in the rotation: one long stretch, not one per day.
        let single = schedule(
            vec![rotation(RotationLength::Daily, "09:00", "2025-03-01", &[4])],
            vec![],
        );
        assert_eq!(single.segments(from, from.plus_ms(10 * DAY)).len(), 1);
    }

    #[test]
    fn handoffs_follow_the_wall_clock_across_daylight_saving() {
        // New York springs forward on 2025-03-09: a 09:00 hand-off stays at 09:00 local.
        let mut s = schedule(
            vec![rotation(
                RotationLength::Daily,
                "09:00",
                "2025-03-08",
                &[1, 2],
            )],
            vec![],
        );
        s.definition.time_zone = "America/New_York".parse().unwrap();
        let from = Timestamp(1_741_392_000_000); // 2025-03-08 00:00 UTC
        let segments = s.segments(from, from.plus_ms(3 * DAY));
        // 09:00 EST = 14:00 UTC; 09:00 EDT = 13:00 UTC.
        assert_eq!(segments[0].start, Timestamp(1_741_392_000_000 + 14 * HOUR));
        assert_eq!(
            segments[1].start,
            Timestamp(1_741_392_000_000 + DAY + 13 * HOUR)
        );
    }

    #[test]
    fn ical_export_parses_back() {
        let s = schedule(vec![daily_pair()], vec![]);
        let names = HashMap::from([(OperatorId(1), "Li Na".to_owned())]);
        let text = s.to_ical(sh("2025-03-01", "00:00"), 1, &names, Timestamp(0));
        let parsed: Calendar = text.parse().unwrap();
        let events: Vec<&icalendar::Event> = parsed
            .components
            .iter()
            .filter_map(|c| c.as_event())
            .collect();
        assert_eq!(events.len(), 7);
        assert_eq!(events[0].get_summary(), Some("On call: Li Na"));
        assert_eq!(events[1].get_summary(), Some("On call: account 2"));
    }

    #[test]
    fn unknown_people_are_named_field_by_field() {
        let def = ScheduleDefinition {
            name: "x".into(),
            time_zone: TimeZone::default(),
            rotations: vec![rotation(
                RotationLength::Daily,
                "09:00",
                "2025-03-01",
                &[1, 42],
            )],
            overrides: vec![Override {
                start: Timestamp(10),
                end: Timestamp(5),
                person: OperatorId(43),
            }],
        };
        let known = HashSet::from([OperatorId(1)]);
        assert_eq!(
            def.problems(&known),
            vec![
                "rotations[0].participants[1]: there is no account 42",
                "overrides[0].end: must be after start",
                "overrides[0].person: there is no account 43",
            ]
        );
        assert_eq!(
            def.people(),
            vec![OperatorId(1), OperatorId(42), OperatorId(43)]
        );
    }

    #[test]
    fn bad_times_and_zones_are_refused_when_parsed() {
        assert!("25:00".parse::<LocalTime>().is_err());
        assert!("2025-02-30".parse::<LocalDate>().is_err());
        assert!("Mars/Olympus".parse::<TimeZone>().is_err());
        let def: ScheduleDefinition = serde_json::from_str(
            r#"{"name":"a","rotations":[{"length":"weekly","handoff_time":"09:30",
                "start_date":"2025-01-06","participants":[1]}]}"#,
        )
        .unwrap();
        assert_eq!(def.time_zone.0, chrono_tz::Asia::Shanghai);
        assert_eq!(
            serde_json::to_value(&def).unwrap()["time_zone"],
            "Asia/Shanghai"
        );
    }

    #[test]
    fn instants_at_the_ends_of_time_do_not_panic() {
        let s = schedule(vec![daily_pair()], vec![]);
        let max_ms = DateTime::<Utc>::MAX_UTC.timestamp_millis();
        for at in [max_ms, max_ms - DAY, i64::MAX, i64::MIN] {
            let _ = s.on_call_at(Timestamp(at));
            let _ = s.on_call_until(Timestamp(at));
        }
    }
}
