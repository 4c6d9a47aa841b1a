//! Trends for reporting upward (定时分析汇总来电咨询的信息): daily counts of contacts by queue,
//! risk level, note category and call type, each day compared with the same weekday a week
//! before, and the last 7 days with the 7 before them, so that a sudden rise stands out.
//!
//! Pure: contacts and submitted notes in, figures out. A contact counts on the local day it
//! arrived; its risk is the contact's risk level (which only ever rises); its categories and
//! call type come from its submitted notes as amended (a category named by two notes of one
//! contact counts once).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::period::local_day;
use crate::domain::ContactId;
use crate::store::ContactRecord;
use crate::store::notes::Note;

/// One day of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendPoint {
    pub day: String,
    pub count: u64,
    /// The same weekday a week before.
    pub week_before: u64,
    pub change: i64,
    /// `(count − week_before) / week_before`; absent when the week before had none.
    pub change_ratio: Option<f64>,
}

/// The last 7 days of the period against the 7 days before them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeekOverWeek {
    pub last_7_days: u64,
    pub previous_7_days: u64,
    pub change_ratio: Option<f64>,
    /// A rise to report: at least the alert ratio (or from nothing), and enough contacts.
    pub alert: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendSeries {
    /// `total`, `queue`, `risk`, `category` or `call_type`.
    pub dimension: String,
    pub key: String,
    pub points: Vec<TrendPoint>,
    pub week_over_week: WeekOverWeek,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TrendReport {
    /// First and last local day covered (inclusive).
    pub first_day: String,
    pub last_day: String,
    pub time_zone: String,
    /// Every series, alerts first, then by dimension and key.
    pub series: Vec<TrendSeries>,
}

/// Where categories and the call type are in a note (the note form's field ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteFields {
    pub categories: Vec<String>,
    pub call_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertRule {
    pub ratio: f64,
    pub min: u64,
}

/// The first day whose contacts [`compute`] reads for the days `first..=last`: each day is
/// compared with the same weekday a week before, and the last 7 days (which reach back before
/// `first` when the period is shorter) with the 7 days before them. A period too close to the
/// first day chrono knows starts there.
pub fn first_day_read(first: NaiveDate, last: NaiveDate) -> NaiveDate {
    let week = chrono::Duration::days(7);
    let last_7_from = last
        .checked_sub_signed(chrono::Duration::days(6))
        .unwrap_or(NaiveDate::MIN);
    first
        .min(last_7_from)
        .checked_sub_signed(week)
        .unwrap_or(NaiveDate::MIN)
}

/// Days `first..=last`, with the contacts of [`first_day_read`]`..= last` already fetched.
pub fn compute(
    tz: Tz,
    first: NaiveDate,
    last: NaiveDate,
    contacts: &[ContactRecord],
    notes: &[Note],
    fields: &NoteFields,
    alert: AlertRule,
) -> TrendReport {
    // What each contact's notes say.
    let mut categories: BTreeMap<ContactId, BTreeSet<String>> = BTreeMap::new();
    let mut call_types: BTreeMap<ContactId, String> = BTreeMap::new();
    for note in notes {
        let effective = note.effective();
        for field in &fields.categories {
            if let Some(map) = effective.get(field).and_then(|v| v.as_object()) {
                categories
                    .entry(note.contact)
                    .or_default()
                    .extend(map.keys().cloned());
            }
        }
        if let Some(call_type) = fields
            .call_type
            .as_ref()
            .and_then(|f| effective.get(f))
            .and_then(|v| v.as_str())
        {
            call_types
                .entry(note.contact)
                .or_insert_with(|| call_type.to_owned());
        }
    }
    // (dimension, key) → day → count.
    let mut counts: BTreeMap<(String, String), BTreeMap<NaiveDate, u64>> = BTreeMap::new();
    let mut add = |dimension: &str, key: &str, day: NaiveDate| {
        *counts
            .entry((dimension.to_owned(), key.to_owned()))
            .or_default()
            .entry(day)
            .or_default() += 1;
    };
    for c in contacts {
        let day = local_day(tz, c.entered_at);
        add("total", "all", day);
        add("queue", c.queue.as_str(), day);
        add("risk", c.risk.as_str(), day);
        for category in categories.get(&c.id).into_iter().flatten() {
            add("category", category, day);
        }
        if let Some(call_type) = call_types.get(&c.id) {
            add("call_type", call_type, day);
        }
    }
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let count = |by_day: &BTreeMap<NaiveDate, u64>, day: NaiveDate| -> u64 {
        by_day.get(&day).copied().unwrap_or(0)
    };
    let mut series: Vec<TrendSeries> = counts
        .into_iter()
        .map(|((dimension, key), by_day)| {
            let points = days
                .iter()
                .map(|&day| {
                    let now = count(&by_day, day);
                    let before = count(&by_day, day - chrono::Duration::days(7));
                    TrendPoint {
                        day: day.to_string(),
                        count: now,
                        week_before: before,
                        change: now as i64 - before as i64,
                        change_ratio: change_ratio(now, before),
                    }
                })
                .collect();
            let window = |end: NaiveDate| -> u64 {
                (0..7)
                    .map(|i| count(&by_day, end - chrono::Duration::days(i)))
                    .sum()
            };
            let last_7 = window(last);
            let previous_7 = window(last - chrono::Duration::days(7));
            let ratio = change_ratio(last_7, previous_7);
            TrendSeries {
                dimension,
                key,
                points,
                week_over_week: WeekOverWeek {
                    last_7_days: last_7,
                    previous_7_days: previous_7,
                    change_ratio: ratio,
                    alert: last_7 >= alert.min
                        && last_7 > previous_7
                        && ratio.is_none_or(|r| r >= alert.ratio),
                },
            }
        })
        // A series with nothing on the days shown may still have risen over the last 7 days
        // (a period shorter than a week): it is kept, so its alert is seen.
        .filter(|s| {
            s.points.iter().any(|p| p.count > 0 || p.week_before > 0)
                || s.week_over_week.last_7_days > 0
                || s.week_over_week.previous_7_days > 0
        })
        .collect();
    series.sort_by(|a, b| {
        b.week_over_week
            .alert
            .cmp(&a.week_over_week.alert)
            .then_with(|| dimension_rank(&a.dimension).cmp(&dimension_rank(&b.dimension)))
            .then_with(|| a.key.cmp(&b.key))
    });
    TrendReport {
        first_day: first.to_string(),
        last_day: last.to_string(),
        time_zone: tz.name().to_owned(),
        series,
    }
}

fn dimension_rank(dimension: &str) -> usize {
    ["total", "queue", "risk", "category", "call_type"]
        .iter()
        .position(|d| *d == dimension)
        .unwrap_or(usize::MAX)
}

fn change_ratio(now: u64, before: u64) -> Option<f64> {
    (before > 0).then(|| (now as f64 - before as f64) / before as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Language, OperatorId, QueueId, RiskLevel, Timestamp};
    use crate::quality::period::{day_start, parse_day};
    use crate::routing::ContactState;
    use crate::store::notes::{Amendment, NoteStatus};
    use serde_json::json;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    /// The report's series for `dimension`/`key`.
    fn series<'a>(report: &'a TrendReport, dimension: &str, key: &str) -> &'a TrendSeries {
        report
            .series
            .iter()
            .find(|s| s.dimension == dimension && s.key == key)
            .unwrap_or_else(|| panic!("no series {dimension}/{key}"))
    }

    fn contact(id: i64, day: &str, hour: i64, queue: &str, risk: RiskLevel) -> ContactRecord {
        ContactRecord {
            id: ContactId(id),
            queue: QueueId::parse(queue).unwrap(),
            channel: Channel::Chat,
            language: Language::parse("zh").unwrap(),
            topic: None,
            age_group: None,
            risk,
            state: ContactState::Completed,
            operator: None,
            caller_key_hash: None,
            resume_token_hash: format!("t{id}"),
            entered_at: day_start(TZ, parse_day(day).unwrap()).plus_ms(hour * 3_600_000),
            connected_at: None,
            ended_at: None,
        }
    }

    fn note(contact: i64, fields: serde_json::Value, amendments: Vec<serde_json::Value>) -> Note {
        Note {
            id: contact,
            contact: ContactId(contact),
            author: OperatorId(1),
            form_version: 1,
            fields: serde_json::from_value(fields).unwrap(),
            status: NoteStatus::Submitted,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            submitted_at: Some(Timestamp(0)),
            amendments: amendments
                .into_iter()
                .enumerate()
                .map(|(i, changes)| Amendment {
                    id: i as i64,
                    author: OperatorId(2),
                    reason: "fix".into(),
                    changes: serde_json::from_value(changes).unwrap(),
                    at: Timestamp(0),
                })
                .collect(),
        }
    }

    #[test]
    fn daily_counts_with_week_over_week_change() {
        use RiskLevel::{High, Low};
        let mut contacts = vec![
            // The week before: 2026-03-01 has one contact (general, low).
            contact(1, "2026-03-01", 10, "general", Low),
            // 2026-03-08 (a week later): three contacts, two of them high risk; one arrived at
            // 23:00 local, still the 8th.
            contact(2, "2026-03-08", 9, "general", High),
            contact(3, "2026-03-08", 23, "youth", High),
            contact(4, "2026-03-08", 12, "general", Low),
        ];
        // Six self-harm contacts on 2026-03-09 against none a week before: an alert.
        for id in 10..16 {
            contacts.push(contact(id, "2026-03-09", 14, "general", Low));
        }
        let mut notes = vec![
            note(
                2,
                json!({"call_type": "counselling", "categories": {"family": ["conflict"]}}),
                vec![],
            ),
            // Amended: the category changes from study to suicide_self_harm.
            note(
                3,
                json!({"call_type": "counselling", "categories": {"study": ["exam_stress"]}}),
                vec![json!({"categories": {"suicide_self_harm": ["self_harm"]}})],
            ),
        ];
        for id in 10..16 {
            notes.push(note(id, json!({"call_type": "counselling", "categories": {"suicide_self_harm": ["self_harm"]}}), vec![]));
        }
        let fields = NoteFields {
            categories: vec!["categories".into()],
            call_type: Some("call_type".into()),
        };
        let report = compute(
            TZ,
            parse_day("2026-03-08").unwrap(),
            parse_day("2026-03-09").unwrap(),
            &contacts,
            &notes,
            &fields,
            AlertRule { ratio: 0.5, min: 5 },
        );
        let find = |d: &str, k: &str| series(&report, d, k);
        // Total on the 8th: 3 against 1 on the 1st → +2, +200 %.
        let total = find("total", "all");
        assert_eq!(total.points[0].count, 3);
        assert_eq!(total.points[0].week_before, 1);
        assert_eq!(total.points[0].change, 2);
        assert_eq!(total.points[0].change_ratio, Some(2.0));
        // The 9th: 6 against none → no ratio.
        assert_eq!(
            (total.points[1].count, total.points[1].change_ratio),
            (6, None)
        );
        // Last 7 days (2nd–9th… i.e. 3rd–9th): 9; the 7 before (2026-02-24 – 03-02): 1.
        assert_eq!(total.week_over_week.last_7_days, 9);
        assert_eq!(total.week_over_week.previous_7_days, 1);
        assert_eq!(total.week_over_week.change_ratio, Some(8.0));
        assert!(total.week_over_week.alert);
        assert_eq!(find("risk", "high").points[0].count, 2);
        assert_eq!(find("queue", "youth").points[0].count, 1);
        // Categories as amended: study is gone, suicide_self_harm has 1 + 6.
        assert!(report.series.iter().all(|s| s.key != "study"));
        let self_harm = find("category", "suicide_self_harm");
        assert_eq!(
            (self_harm.points[0].count, self_harm.points[1].count),
            (1, 6)
        );
        assert!(self_harm.week_over_week.alert);
        // Family: one contact, below the alert minimum.
        assert!(!find("category", "family").week_over_week.alert);
        assert_eq!(
            find("call_type", "counselling").week_over_week.last_7_days,
            8
        );
        // Alerts come first.
        assert!(report.series[0].week_over_week.alert);
    }

    #[test]
    fn a_short_period_reads_and_compares_two_whole_weeks() {
        let day = |d: &str| parse_day(d).unwrap();
        // One day: its last 7 days reach back to 03-03, the 7 before them to 02-24.
        assert_eq!(
            first_day_read(day("2026-03-09"), day("2026-03-09")),
            day("2026-02-24")
        );
        // Three days: the same (the last 7 days still start before the period).
        assert_eq!(
            first_day_read(day("2026-03-07"), day("2026-03-09")),
            day("2026-02-24")
        );
        // A month: the week before its first day.
        assert_eq!(
            first_day_read(day("2026-02-01"), day("2026-02-28")),
            day("2026-01-25")
        );
        assert_eq!(
            first_day_read(NaiveDate::MIN, NaiveDate::MIN),
            NaiveDate::MIN
        );
        // A steady flow (one contact a day from 02-24 to 03-09), and five on 03-05 in
        // `youth`, a queue with none on the day shown or a week before it.
        let mut contacts: Vec<ContactRecord> = day("2026-02-24")
            .iter_days()
            .take_while(|d| *d <= day("2026-03-09"))
            .enumerate()
            .map(|(i, d)| contact(i as i64, &d.to_string(), 10, "general", RiskLevel::Low))
            .collect();
        for id in 100..105 {
            contacts.push(contact(id, "2026-03-05", 10, "youth", RiskLevel::Low));
        }
        let report = compute(
            TZ,
            day("2026-03-09"),
            day("2026-03-09"),
            &contacts,
            &[],
            &NoteFields::default(),
            AlertRule { ratio: 0.5, min: 5 },
        );
        let find = |d: &str, k: &str| series(&report, d, k);
        let general = &find("queue", "general").week_over_week;
        assert_eq!((general.last_7_days, general.previous_7_days), (7, 7));
        assert!(!general.alert, "a steady flow is no rise");
        let youth = find("queue", "youth");
        assert_eq!(
            (youth.points[0].count, youth.week_over_week.last_7_days),
            (0, 5)
        );
        assert!(
            youth.week_over_week.alert,
            "the rise within the week is kept"
        );
    }
}
