//! Live KPI metrics, read from the event log as it grows (reports and metrics are both computed
//! from the log). Every `quality.live_interval_ms` the task reads the events after the last one
//! it saw and:
//! - counts arrivals, answers (first connect only) and abandons (short apart) per queue;
//! - observes the wait of every answered high- and imminent-risk contact;
//! - keeps today's (local day) service level per queue and threshold:
//!   SL(T) = answered today within T / (answered + abandoned − short abandoned today).
//!
//! A contact is counted under the queue it entered. At start the task reads today's events to
//! rebuild today's service level, but counts only what happens after it started (counters are
//! per process, as Prometheus expects). Events are only read, never written.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::period::{day_start, local_day};
use crate::app::AppState;
use crate::domain::{ContactId, QueueId, RiskLevel, Timestamp};
use crate::metrics::Metrics;
use crate::routing::Event;
use crate::store::StoreResult;

/// What the task remembers of a contact until it completes or is abandoned.
struct Open {
    queue: QueueId,
    risk: RiskLevel,
    answered: bool,
}

#[derive(Default)]
struct DayCounts {
    answered_within: Vec<u64>,
    answered: u64,
    abandoned: u64,
    short: u64,
}

struct Live {
    thresholds: Vec<i64>,
    short_ms: i64,
    day: NaiveDate,
    today: BTreeMap<QueueId, DayCounts>,
    open: HashMap<ContactId, Open>,
    cursor: i64,
}

const PAGE: i64 = 1_000;

impl Live {
    fn count_day(&mut self, queue: &QueueId) -> &mut DayCounts {
        let n = self.thresholds.len();
        self.today
            .entry(queue.clone())
            .or_insert_with(|| DayCounts {
                answered_within: vec![0; n],
                ..DayCounts::default()
            })
    }

    /// Applies one event: to today's counts if it happened today, to the counters if `live`.
    async fn apply(
        &mut self,
        state: &AppState,
        event: &Event,
        today: bool,
        live: bool,
    ) -> StoreResult<()> {
        let m = &state.metrics;
        match event {
            Event::EnterQueue {
                contact,
                queue,
                risk,
                ..
            } => {
                self.open.insert(
                    *contact,
                    Open {
                        queue: queue.clone(),
                        risk: *risk,
                        answered: false,
                    },
                );
                if live {
                    m.arrived.with_label_values(&[queue.as_str()]).inc();
                }
            }
            Event::RiskChange { contact, to, .. } => {
                if let Some(open) = self.open.get_mut(contact) {
                    open.risk = open.risk.max(*to);
                }
            }
            Event::Connect {
                contact,
                waited_ms,
                queue,
                operator,
            } => {
                if !self.open.contains_key(contact) {
                    // Entered before this task started (or resumed after an abandon).
                    let (queue, risk, answered) = match state.store.contact(*contact).await {
                        Ok(c) => (c.queue, c.risk, false),
                        Err(_) => (queue.clone(), RiskLevel::None, false),
                    };
                    self.open.insert(
                        *contact,
                        Open {
                            queue,
                            risk,
                            answered,
                        },
                    );
                }
                let Some(open) = self.open.get_mut(contact) else {
                    return Ok(());
                };
                if open.answered {
                    return Ok(()); // a transfer's second connect is not a new answer
                }
                open.answered = true;
                let (queue, risk) = (open.queue.clone(), open.risk);
                if today {
                    let thresholds = self.thresholds.clone();
                    let day = self.count_day(&queue);
                    day.answered += 1;
                    for (i, t) in thresholds.iter().enumerate() {
                        if waited_ms <= t {
                            day.answered_within[i] += 1;
                        }
                    }
                }
                if live {
                    m.answered.with_label_values(&[queue.as_str()]).inc();
                    m.operator_answered
                        .with_label_values(&[&operator.to_string()])
                        .inc();
                    if risk >= RiskLevel::High {
                        m.high_risk_wait_seconds
                            .with_label_values(&[risk.as_str()])
                            .observe(*waited_ms as f64 / 1000.0);
                    }
                }
            }
            Event::Abandon {
                contact,
                queue,
                waited_ms,
            } => {
                let queue = self
                    .open
                    .remove(contact)
                    .map(|o| o.queue)
                    .unwrap_or_else(|| queue.clone());
                let short = *waited_ms < self.short_ms;
                if today {
                    let day = self.count_day(&queue);
                    day.abandoned += 1;
                    day.short += u64::from(short);
                }
                if live {
                    m.abandoned
                        .with_label_values(&[queue.as_str(), if short { "true" } else { "false" }])
                        .inc();
                }
            }
            Event::Complete {
                contact,
                operator,
                handled_ms,
            } => {
                self.open.remove(contact);
                if live {
                    let id = operator.to_string();
                    m.operator_completed.with_label_values(&[&id]).inc();
                    m.operator_handle_seconds
                        .with_label_values(&[&id])
                        .inc_by(*handled_ms as f64 / 1000.0);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn publish(&self, metrics: &Metrics) {
        metrics.service_level_ratio.reset();
        for (queue, day) in &self.today {
            let denominator = day.answered + day.abandoned - day.short;
            if denominator == 0 {
                continue;
            }
            for (i, t) in self.thresholds.iter().enumerate() {
                metrics
                    .service_level_ratio
                    .with_label_values(&[queue.as_str(), &(t / 1000).to_string()])
                    .set(day.answered_within[i] as f64 / denominator as f64);
            }
        }
    }
}

/// Reads new events until there are none, then publishes today's service level.
async fn tick(live: &mut Live, state: &AppState, tz: chrono_tz::Tz) -> StoreResult<()> {
    let today = local_day(tz, Timestamp::now());
    if today != live.day {
        live.day = today;
        live.today.clear();
    }
    loop {
        let events = state.store.events_after(live.cursor, PAGE).await?;
        let done = (events.len() as i64) < PAGE;
        for stored in events {
            live.cursor = stored.seq;
            if let Ok(event) = serde_json::from_value::<Event>(stored.data) {
                let is_today = local_day(tz, stored.at) == live.day;
                live.apply(state, &event, is_today, true).await?;
            }
        }
        if done {
            break;
        }
    }
    live.publish(&state.metrics);
    Ok(())
}

/// Rebuilds today's counts from the log (without counting them), and starts after its head.
async fn start(state: &AppState, tz: chrono_tz::Tz) -> StoreResult<Live> {
    let q = &state.settings.quality;
    let now = Timestamp::now();
    let day = local_day(tz, now);
    let mut live = Live {
        thresholds: q.service_level_thresholds_ms.clone(),
        short_ms: q.short_abandon_ms,
        day,
        today: BTreeMap::new(),
        open: HashMap::new(),
        cursor: state.store.event_head().await?,
    };
    for c in state.store.open_contacts().await? {
        live.open.insert(
            c.id,
            Open {
                queue: c.queue,
                risk: c.risk,
                answered: c.connected_at.is_some(),
            },
        );
    }
    let head = live.cursor;
    let events = state
        .store
        .events_between(day_start(tz, day), Timestamp(i64::MAX))
        .await?;
    for stored in events.into_iter().filter(|e| e.seq <= head) {
        if let Ok(event) = serde_json::from_value::<Event>(stored.data) {
            live.apply(state, &event, true, false).await?;
        }
    }
    // Export every queue's counters from the start, so that rates work before the first event.
    for queue in state.queues_snapshot() {
        let id = queue.id.as_str();
        state.metrics.arrived.with_label_values(&[id]);
        state.metrics.answered.with_label_values(&[id]);
        state.metrics.abandoned.with_label_values(&[id, "true"]);
        state.metrics.abandoned.with_label_values(&[id, "false"]);
    }
    live.publish(&state.metrics);
    Ok(live)
}

/// The live-metrics task: runs until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let tz = state.settings.quality.time_zone.0;
    let interval = Duration::from_millis(state.settings.quality.live_interval_ms.max(100));
    let mut live = loop {
        match start(&state, tz).await {
            Ok(live) => break live,
            Err(e) => {
                tracing::warn!(error = %e, "live KPI metrics: cannot read the event log; retrying")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = tick(&mut live, &state, tz).await {
            tracing::warn!(error = %e, "live KPI metrics: reading the event log failed");
        }
    }
}
