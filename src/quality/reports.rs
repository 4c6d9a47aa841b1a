//! Reports built from the store: reads the rows a period needs, hands them to the pure
//! computations ([`kpi`](super::kpi), [`trends`](super::trends)) and shapes the result for JSON
//! and CSV.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::csv::Writer;
use super::kpi::{self, Digest, KpiFilter, KpiParams, Kpis};
use super::period::{Period, day_start, local_day, local_time};
use super::trends::{self, AlertRule, NoteFields, TrendReport};
use crate::config::QualitySettings;
use crate::domain::{OperatorId, QueueId, Timestamp};
use crate::notes::form::{FieldKind, NoteForm};
use crate::store::quality::IncidentFact;
use crate::store::{DynStore, StoreResult, StoredEvent};

/// What a KPI computation over a period reads.
pub struct KpiInputs {
    pub digest: Digest,
    pub incidents: Vec<IncidentFact>,
    pub params: KpiParams,
}

pub fn params(settings: &QualitySettings, period: Period, now: Timestamp) -> KpiParams {
    KpiParams {
        from: period.from,
        to: period.to,
        now,
        short_abandon_ms: settings.short_abandon_ms,
        service_level_ms: settings.service_level_thresholds_ms.clone(),
    }
}

/// Reads the events a period needs: every event of its cohort (at any time), every event from
/// `report_lookback_hours` before the period to its end (who held what when it started), and
/// each operator's last state before that; plus the cohort's incidents.
pub async fn load(
    store: &DynStore,
    settings: &QualitySettings,
    period: Period,
    now: Timestamp,
) -> StoreResult<KpiInputs> {
    let lookback_start = period
        .from
        .plus_ms(-settings.report_lookback_hours.max(0) * 3_600_000);
    let mut events: BTreeMap<i64, StoredEvent> = BTreeMap::new();
    for batch in [
        store.last_operator_states(lookback_start).await?,
        store.events_between(lookback_start, period.to).await?,
        store
            .events_of_contacts_entered(period.from, period.to)
            .await?,
    ] {
        for e in batch {
            events.insert(e.seq, e);
        }
    }
    let events: Vec<StoredEvent> = events.into_values().collect();
    let params = params(settings, period, now);
    let digest = kpi::digest(&events, &params);
    let incidents = store.incident_facts(period.from, period.to).await?;
    Ok(KpiInputs {
        digest,
        incidents,
        params,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueKpis {
    pub queue: QueueId,
    pub kpis: Kpis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorKpis {
    /// Operators are named by id in reports (names are in the staff directory).
    pub operator: OperatorId,
    pub kpis: Kpis,
}

/// `GET /api/reports/kpi`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KpiReport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub from_local: String,
    pub to_local: String,
    pub time_zone: String,
    pub filter: KpiFilter,
    pub short_abandon_seconds: f64,
    pub service_level_thresholds_seconds: Vec<f64>,
    pub total: Kpis,
    /// One row per queue (absent when the report is for one queue).
    pub by_queue: Vec<QueueKpis>,
    /// One row per operator (absent when the report is for one operator).
    pub by_operator: Vec<OperatorKpis>,
    /// Stored events this server could not read (kinds from a newer version), skipped.
    pub unreadable_events: u64,
}

pub fn kpi_report(tz: Tz, inputs: &KpiInputs, filter: &KpiFilter) -> KpiReport {
    let KpiInputs {
        digest,
        incidents,
        params,
    } = inputs;
    let total = kpi::kpis(digest, Some(incidents), params, filter);
    let (queues, operators) = kpi::dimensions(digest);
    let by_queue = if filter.queue.is_some() {
        Vec::new()
    } else {
        queues
            .into_iter()
            .map(|queue| {
                let slice = KpiFilter {
                    queue: Some(queue.clone()),
                    ..filter.clone()
                };
                QueueKpis {
                    kpis: kpi::kpis(digest, Some(incidents), params, &slice),
                    queue,
                }
            })
            .collect()
    };
    let by_operator = if filter.operator.is_some() {
        Vec::new()
    } else {
        operators
            .into_iter()
            .map(|operator| OperatorKpis {
                operator,
                kpis: kpi::kpis(
                    digest,
                    Some(incidents),
                    params,
                    &KpiFilter {
                        operator: Some(operator),
                        ..filter.clone()
                    },
                ),
            })
            .filter(|row| {
                row.kpis.answered > 0
                    || row.kpis.completed > 0
                    || row.kpis.offers.offered > 0
                    || row
                        .kpis
                        .occupancy
                        .as_ref()
                        .is_some_and(|o| o.handling_seconds + o.available_idle_seconds > 0.0)
            })
            .collect()
    };
    KpiReport {
        from: params.from,
        to: params.to,
        from_local: local_time(tz, params.from),
        to_local: local_time(tz, params.to),
        time_zone: tz.name().to_owned(),
        filter: filter.clone(),
        short_abandon_seconds: params.short_abandon_ms as f64 / 1000.0,
        service_level_thresholds_seconds: params
            .service_level_ms
            .iter()
            .map(|t| *t as f64 / 1000.0)
            .collect(),
        total,
        by_queue,
        by_operator,
        unreadable_events: digest.unreadable,
    }
}

fn n(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}
fn f(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}")).unwrap_or_default()
}

/// The KPI report as CSV: the total, then one row per queue and per operator.
pub fn kpi_csv(report: &KpiReport) -> String {
    let mut header: Vec<String> = [
        "scope",
        "queue",
        "operator",
        "from",
        "to",
        "arrived",
        "answered",
        "answer_rate",
        "asa_seconds",
        "longest_wait_seconds",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for t in &report.service_level_thresholds_seconds {
        header.push(format!("service_level_{t}s"));
    }
    header.extend(
        [
            "abandoned",
            "short_abandoned",
            "abandon_rate",
            "still_open",
            "completed",
            "aht_seconds",
            "occupancy",
            "handling_seconds",
            "available_idle_seconds",
            "transfers",
            "overflowed",
            "offered",
            "offers_timed_out",
            "offers_rejected",
            "high_risk_answered",
            "high_risk_asa_seconds",
            "high_risk_longest_wait_seconds",
            "imminent_risk_answered",
            "imminent_risk_asa_seconds",
            "imminent_risk_longest_wait_seconds",
            "incidents",
            "incidents_acknowledged",
            "mean_time_to_acknowledge_seconds",
            "imminent_risk_contacts",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = Writer::new(&header_refs);
    let mut row = |scope: &str, queue: String, operator: String, k: &Kpis| {
        let mut r = vec![
            scope.to_owned(),
            queue,
            operator,
            report.from_local.clone(),
            report.to_local.clone(),
            n(k.arrived),
            k.answered.to_string(),
            f(k.answer_rate, 4),
            f(k.asa_seconds, 3),
            f(k.longest_wait_seconds, 3),
        ];
        for sl in &k.service_levels {
            r.push(f(sl.ratio, 4));
        }
        let occ = k.occupancy.as_ref();
        r.extend([
            n(k.abandoned),
            n(k.short_abandoned),
            f(k.abandon_rate, 4),
            n(k.still_open),
            k.completed.to_string(),
            f(k.aht_seconds, 3),
            f(occ.and_then(|o| o.ratio), 4),
            f(occ.map(|o| o.handling_seconds), 3),
            f(occ.map(|o| o.available_idle_seconds), 3),
            k.transfers.to_string(),
            k.overflowed.to_string(),
            k.offers.offered.to_string(),
            k.offers.timed_out.to_string(),
            k.offers.rejected.to_string(),
            k.high_risk.answered.to_string(),
            f(k.high_risk.asa_seconds, 3),
            f(k.high_risk.longest_wait_seconds, 3),
            k.imminent_risk.answered.to_string(),
            f(k.imminent_risk.asa_seconds, 3),
            f(k.imminent_risk.longest_wait_seconds, 3),
            n(k.crisis.incidents),
            n(k.crisis.acknowledged),
            f(k.crisis.mean_time_to_acknowledge_seconds, 3),
            k.crisis.imminent_risk_contacts.to_string(),
        ]);
        out.row(&r);
    };
    let filter = &report.filter;
    row(
        "total",
        filter
            .queue
            .as_ref()
            .map(|q| q.to_string())
            .unwrap_or_default(),
        filter.operator.map(|o| o.to_string()).unwrap_or_default(),
        &report.total,
    );
    for q in &report.by_queue {
        row("queue", q.queue.to_string(), String::new(), &q.kpis);
    }
    for o in &report.by_operator {
        row("operator", String::new(), o.operator.to_string(), &o.kpis);
    }
    out.finish()
}

/// Where categories and the call type are in the note form in force.
pub fn note_fields(form: &NoteForm) -> NoteFields {
    let mut fields = NoteFields::default();
    for field in form.sections.iter().flat_map(|s| s.fields.iter()) {
        match field.kind {
            FieldKind::Categories { .. } => fields.categories.push(field.id.clone()),
            FieldKind::CallType { .. } => fields.call_type = Some(field.id.clone()),
            _ => {}
        }
    }
    fields
}

/// Trends over the local days of `period` (with the days before it that the comparisons read).
pub async fn trends(
    store: &DynStore,
    settings: &QualitySettings,
    form: &NoteForm,
    period: Period,
) -> StoreResult<TrendReport> {
    let tz = settings.time_zone.0;
    let first = local_day(tz, period.from);
    let last = local_day(tz, period.to.plus_ms(-1)).max(first);
    // The period's bounds fall within the years a client may name, so these days exist.
    let from = day_start(tz, trends::first_day_read(first, last));
    let to = day_start(tz, last.succ_opt().unwrap_or(last));
    let contacts = store.contacts_entered(from, to).await?;
    let notes = store.submitted_notes_of_contacts_entered(from, to).await?;
    Ok(trends::compute(
        tz,
        first,
        last,
        &contacts,
        &notes,
        &note_fields(form),
        AlertRule {
            ratio: settings.trend_alert_ratio,
            min: settings.trend_alert_min,
        },
    ))
}

pub fn trends_csv(report: &TrendReport) -> String {
    let mut out = Writer::new(&[
        "day",
        "dimension",
        "key",
        "count",
        "week_before",
        "change",
        "change_ratio",
        "last_7_days",
        "previous_7_days",
        "alert",
    ]);
    for s in &report.series {
        for p in &s.points {
            out.row(&[
                p.day.clone(),
                s.dimension.clone(),
                s.key.clone(),
                p.count.to_string(),
                p.week_before.to_string(),
                p.change.to_string(),
                f(p.change_ratio, 4),
                s.week_over_week.last_7_days.to_string(),
                s.week_over_week.previous_7_days.to_string(),
                s.week_over_week.alert.to_string(),
            ]);
        }
    }
    out.finish()
}
