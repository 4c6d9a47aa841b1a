//! Live KPI metrics, read from the event log as it grows (reports and metrics are both computed
//! from the log). Every `quality.live_interval_ms` the task reads the events after the last one
//! it saw and:
//! - counts arrivals, answers and abandons (short apart) per queue;
//! - observes the wait of every answered high- and imminent-risk contact;
//! - keeps today's (local day) service level per queue and threshold:
//!   SL(T) = answered today within T / (answered + abandoned − short abandoned today).
//!
//! A contact counts as answered or abandoned as the reports count it: its events are folded
//! through the same [`Fate`] as in [`super::kpi`], so it counts once, as one or the other. It
//! is answered on the day of its first `connect` (a transfer's second connect is not a new
//! answer). It is abandoned on the day its caller left, unless it had been answered (one that
//! lost its operator and then its caller is answered); that abandon is taken back if the caller
//! resumes, or the contact is answered, later. Where a report counts the contacts that *entered*
//! in its period, "today" here is the day of the answer or of the abandon. Counters cannot take
//! anything back: `hotline_abandoned_total` counts every abandon of a contact not answered
//! (one that resumes and leaves again counts twice), `hotline_answered_total` first answers.
//!
//! A contact is counted under the queue it entered. The task remembers a contact from its
//! `enter_queue` until it completes, or until its caller left and can no longer resume (the
//! routing resume window). One it does not know (entered before the task started, or
//! forgotten) is rebuilt from its own earlier events when it is next connected, abandoned or
//! resumed. At start the task reads today's events to rebuild today's service level, but counts
//! only what happens after it started (counters are per process, as Prometheus expects). Events
//! are only read, never written.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::kpi::{Answer, Fate};
use super::period::{day_start, local_day};
use crate::app::AppState;
use crate::domain::{ContactId, QueueId, RiskLevel, Timestamp};
use crate::metrics::Metrics;
use crate::routing::Event;
use crate::store::{DynStore, StoreResult, StoredEvent};

/// What the task remembers of a contact.
#[derive(Debug, Clone)]
struct Open {
    /// The queue it entered: the one it is counted under.
    queue: QueueId,
    fate: Fate,
    /// The abandon it added to a day's counts: that day, and whether it was short. Taken back if
    /// the caller resumes or the contact is answered.
    counted_abandon: Option<(NaiveDate, bool)>,
    /// When its caller left, while they may still resume.
    left_at: Option<Timestamp>,
}

/// What one event changed in how a contact counts.
#[derive(Debug, Default, PartialEq)]
struct Change {
    /// It was answered: its first connect.
    answered: Option<Answer>,
    /// An abandon counted before is taken back: (its day, short).
    retracted: Option<(NaiveDate, bool)>,
    /// It counts as abandoned from now on: short or not.
    abandoned: Option<bool>,
}

impl Open {
    fn entered(queue: QueueId, risk: RiskLevel) -> Open {
        Open {
            queue,
            fate: Fate::entered(risk),
            counted_abandon: None,
            left_at: None,
        }
    }

    /// Folds one later event of the contact, which happened at `at`, on the local day `day`.
    fn fold(&mut self, event: &Event, at: Timestamp, day: NaiveDate, short_ms: i64) -> Change {
        let before = self.fate;
        self.fate.apply(event);
        let mut change = Change::default();
        if before.answer().is_none() {
            change.answered = self.fate.answer();
        }
        let left = matches!(event, Event::Abandon { .. });
        let abandoned = self.fate.abandoned_after_ms().filter(|_| left);
        // Answered or resumed, or a new abandon in place of the last one.
        if abandoned.is_some() || self.fate.abandoned_after_ms().is_none() {
            change.retracted = self.counted_abandon.take();
        }
        if let Some(waited_ms) = abandoned {
            let short = waited_ms < short_ms;
            self.counted_abandon = Some((day, short));
            change.abandoned = Some(short);
        }
        match event {
            Event::Abandon { .. } => self.left_at = Some(at),
            Event::Resume { .. } | Event::Connect { .. } => self.left_at = None,
            _ => {}
        }
        change
    }
}

#[derive(Debug, Default, PartialEq)]
struct DayCounts {
    answered_within: Vec<u64>,
    answered: u64,
    abandoned: u64,
    short: u64,
}

struct Live {
    tz: Tz,
    thresholds: Vec<i64>,
    short_ms: i64,
    resume_window_ms: i64,
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

    /// Today becomes `day` if that is later: its counts start from zero.
    fn roll_to(&mut self, day: NaiveDate) {
        if day > self.day {
            self.day = day;
            self.today.clear();
        }
    }

    /// Forgets the contacts whose caller left before `cutoff`: they can no longer resume.
    fn forget_left_before(&mut self, cutoff: Timestamp) {
        self.open
            .retain(|_, open| open.left_at.is_none_or(|left| left >= cutoff));
    }

    /// Applies one stored event (see [`Live::count`]); a contact the task does not know is first
    /// rebuilt from its events before this one. Nothing is counted if reading them fails.
    async fn apply(
        &mut self,
        store: &DynStore,
        stored: &StoredEvent,
        event: &Event,
        metrics: Option<&Metrics>,
    ) -> StoreResult<()> {
        if let Event::Connect { contact, .. }
        | Event::Abandon { contact, .. }
        | Event::Resume { contact } = event
            && !self.open.contains_key(contact)
        {
            let history = store.events_of_contact(*contact).await?;
            let open = match (self.rebuilt(&history, stored.seq), event) {
                (Some(open), _) => Some(open),
                // No `enter_queue` in the log: counted under the queue the event names.
                (None, Event::Connect { queue, .. } | Event::Abandon { queue, .. }) => {
                    Some(Open::entered(queue.clone(), RiskLevel::None))
                }
                (None, _) => None,
            };
            if let Some(open) = open {
                self.open.insert(*contact, open);
            }
        }
        self.count(event, stored.at, metrics);
        Ok(())
    }

    /// A contact as its events with `seq` before `before` leave it (`None` without its
    /// `enter_queue`), with the abandon it added to a day's counts then.
    fn rebuilt(&self, history: &[StoredEvent], before: i64) -> Option<Open> {
        let mut open: Option<Open> = None;
        for stored in history.iter().filter(|e| e.seq < before) {
            let Ok(event) = serde_json::from_value::<Event>(stored.data.clone()) else {
                continue;
            };
            match (&event, open.as_mut()) {
                (Event::EnterQueue { queue, risk, .. }, None) => {
                    open = Some(Open::entered(queue.clone(), *risk));
                }
                (_, Some(o)) => {
                    o.fold(
                        &event,
                        stored.at,
                        local_day(self.tz, stored.at),
                        self.short_ms,
                    );
                }
                (_, None) => {}
            }
        }
        open
    }

    /// Counts one event that happened at `at`: in today's counts if it happened today, and in
    /// the counters of `metrics` if given.
    fn count(&mut self, event: &Event, at: Timestamp, metrics: Option<&Metrics>) {
        let day = local_day(self.tz, at);
        let today = day == self.day;
        match event {
            Event::EnterQueue {
                contact,
                queue,
                risk,
                ..
            } => {
                self.open
                    .entry(*contact)
                    .or_insert_with(|| Open::entered(queue.clone(), *risk));
                if let Some(m) = metrics {
                    m.arrived.with_label_values(&[queue.as_str()]).inc();
                }
            }
            Event::Connect { contact, .. }
            | Event::Abandon { contact, .. }
            | Event::Resume { contact }
            | Event::RiskChange { contact, .. } => {
                let Some(open) = self.open.get_mut(contact) else {
                    return;
                };
                let change = open.fold(event, at, day, self.short_ms);
                let (queue, risk) = (open.queue.clone(), open.fate.waiting_risk());
                if let Some(answer) = change.answered {
                    if today {
                        let thresholds = self.thresholds.clone();
                        let counts = self.count_day(&queue);
                        counts.answered += 1;
                        for (i, t) in thresholds.iter().enumerate() {
                            if answer.waited_ms <= *t {
                                counts.answered_within[i] += 1;
                            }
                        }
                    }
                    if let Some(m) = metrics {
                        m.answered.with_label_values(&[queue.as_str()]).inc();
                        m.operator_answered
                            .with_label_values(&[&answer.operator.to_string()])
                            .inc();
                        if risk >= RiskLevel::High {
                            m.high_risk_wait_seconds
                                .with_label_values(&[risk.as_str()])
                                .observe(answer.waited_ms as f64 / 1000.0);
                        }
                    }
                }
                if let Some((counted_on, short)) = change.retracted
                    && counted_on == self.day
                {
                    let counts = self.count_day(&queue);
                    counts.abandoned = counts.abandoned.saturating_sub(1);
                    counts.short = counts.short.saturating_sub(u64::from(short));
                }
                if let Some(short) = change.abandoned {
                    if today {
                        let counts = self.count_day(&queue);
                        counts.abandoned += 1;
                        counts.short += u64::from(short);
                    }
                    if let Some(m) = metrics {
                        m.abandoned
                            .with_label_values(&[
                                queue.as_str(),
                                if short { "true" } else { "false" },
                            ])
                            .inc();
                    }
                }
            }
            Event::Complete {
                contact,
                operator,
                handled_ms,
            } => {
                self.open.remove(contact);
                if let Some(m) = metrics {
                    let id = operator.to_string();
                    m.operator_completed.with_label_values(&[&id]).inc();
                    m.operator_handle_seconds
                        .with_label_values(&[&id])
                        .inc_by(*handled_ms as f64 / 1000.0);
                }
            }
            _ => {}
        }
    }

    fn publish(&self, metrics: &Metrics) {
        metrics.service_level_ratio.reset();
        for (queue, day) in &self.today {
            let denominator = (day.answered + day.abandoned).saturating_sub(day.short);
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

/// Reads new events until there are none, then publishes today's service level. An event is
/// read again next time if counting it failed.
async fn tick(live: &mut Live, state: &AppState) -> StoreResult<()> {
    let now = Timestamp::now();
    live.roll_to(local_day(live.tz, now));
    loop {
        let events = state.store.events_after(live.cursor, PAGE).await?;
        let done = (events.len() as i64) < PAGE;
        for stored in events {
            if let Ok(event) = serde_json::from_value::<Event>(stored.data.clone()) {
                live.roll_to(local_day(live.tz, stored.at));
                live.apply(&state.store, &stored, &event, Some(&state.metrics))
                    .await?;
            }
            live.cursor = stored.seq;
        }
        if done {
            break;
        }
    }
    live.forget_left_before(now.plus_ms(-live.resume_window_ms));
    live.publish(&state.metrics);
    Ok(())
}

/// Rebuilds today's counts from the log (without counting them), and starts after its head.
async fn start(state: &AppState, tz: Tz) -> StoreResult<Live> {
    let q = &state.settings.quality;
    let now = Timestamp::now();
    let day = local_day(tz, now);
    let mut live = Live {
        tz,
        thresholds: q.service_level_thresholds_ms.clone(),
        short_ms: q.short_abandon_ms,
        resume_window_ms: state.settings.routing.resume_window_ms,
        day,
        today: BTreeMap::new(),
        open: HashMap::new(),
        cursor: state.store.event_head().await?,
    };
    let head = live.cursor;
    let events = state
        .store
        .events_between(day_start(tz, day), Timestamp(i64::MAX))
        .await?;
    for stored in events.into_iter().filter(|e| e.seq <= head) {
        if let Ok(event) = serde_json::from_value::<Event>(stored.data.clone()) {
            live.apply(&state.store, &stored, &event, None).await?;
        }
    }
    live.forget_left_before(now.plus_ms(-live.resume_window_ms));
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
        if let Err(e) = tick(&mut live, &state).await {
            tracing::warn!(error = %e, "live KPI metrics: reading the event log failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, OperatorId};
    use crate::quality::kpi::tests::{T0, abandon, connect, enter, log, params, q};
    use crate::quality::kpi::{self, KpiFilter};
    use crate::routing::RequeueReason;

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    /// A task whose today is the local day of T0 (T0 is midnight in Shanghai).
    fn live() -> Live {
        Live {
            tz: TZ,
            thresholds: vec![20_000, 60_000],
            short_ms: 6_000,
            resume_window_ms: 300_000,
            day: local_day(TZ, Timestamp(T0)),
            today: BTreeMap::new(),
            open: HashMap::new(),
            cursor: 0,
        }
    }

    fn resume(c: i64) -> Event {
        Event::Resume {
            contact: ContactId(c),
        }
    }

    fn requeue(c: i64, queue: &str) -> Event {
        Event::Requeue {
            contact: ContactId(c),
            queue: q(queue),
            reason: RequeueReason::OperatorLost,
        }
    }

    /// Counts `events` as the running task does, every contact known from its `enter_queue`.
    fn counted(live: &mut Live, events: &[StoredEvent]) {
        for stored in events {
            let event: Event = serde_json::from_value(stored.data.clone()).unwrap();
            live.roll_to(local_day(TZ, stored.at));
            live.count(&event, stored.at, None);
        }
    }

    fn day(live: &Live, queue: &str) -> (u64, Vec<u64>, u64, u64) {
        let d = &live.today[&q(queue)];
        (d.answered, d.answered_within.clone(), d.abandoned, d.short)
    }

    #[test]
    fn a_contact_counts_once_as_the_report_counts_it() {
        use Channel::Chat;
        use RiskLevel::None as No;
        let events = log(vec![
            // c1: leaves after 8 s, resumes, answered after 15 s: answered.
            (0, enter(1, "general", Chat, No)),
            (8, abandon(1, "general", 8)),
            (9, resume(1)),
            (15, connect(1, 1, "general", 15)),
            // c2: answered after 5 s, loses its operator, then its caller: answered.
            (0, enter(2, "general", Chat, No)),
            (5, connect(2, 1, "general", 5)),
            (10, requeue(2, "general")),
            (70, abandon(2, "general", 70)),
            // c3: leaves after 30 s, resumes, leaves again after 3 s in all: one short abandon.
            (0, enter(3, "general", Chat, No)),
            (30, abandon(3, "general", 30)),
            (31, resume(3)),
            (33, abandon(3, "general", 3)),
            // c4: leaves after 40 s, resumes, leaves again after 50 s: one abandon.
            (0, enter(4, "general", Chat, No)),
            (40, abandon(4, "general", 40)),
            (41, resume(4)),
            (50, abandon(4, "general", 50)),
            // c5: answered after 30 s, transferred and connected again: one answer.
            (0, enter(5, "general", Chat, No)),
            (30, connect(5, 1, "general", 30)),
            (60, connect(5, 2, "general", 60)),
            // c6: leaves after 10 s and is connected without a resume event: answered.
            (0, enter(6, "general", Chat, No)),
            (10, abandon(6, "general", 10)),
            (20, connect(6, 2, "general", 20)),
        ]);
        let mut live = live();
        counted(&mut live, &events);
        // Answered c1 (15 s), c2 (5 s), c5 (30 s), c6 (20 s); abandoned c3 (short), c4.
        assert_eq!(day(&live, "general"), (4, vec![3, 4], 2, 1));
        // The report of the same log says the same.
        let p = params(0, 3600);
        let k = kpi::compute(&events, None, &p, &KpiFilter::default());
        assert_eq!(
            (
                k.answered,
                k.service_levels
                    .iter()
                    .map(|s| s.answered_within)
                    .collect::<Vec<_>>(),
                k.abandoned.unwrap(),
                k.short_abandoned.unwrap()
            ),
            day(&live, "general")
        );
    }

    #[test]
    fn answers_and_abandons_count_on_the_day_they_happen() {
        use Channel::Chat;
        use RiskLevel::None as No;
        let events = log(vec![
            // c1 leaves 10 s before midnight, resumes and is answered today.
            (-100, enter(1, "general", Chat, No)),
            (-10, abandon(1, "general", 90)),
            (5, resume(1)),
            (30, connect(1, 1, "general", 130)),
            // c2 leaves before midnight and does not come back: yesterday's.
            (-50, enter(2, "general", Chat, No)),
            (-20, abandon(2, "general", 30)),
        ]);
        let mut live = live();
        live.day = local_day(TZ, Timestamp(T0 - 1));
        counted(&mut live, &events);
        assert_eq!(live.day, local_day(TZ, Timestamp(T0)));
        assert_eq!(day(&live, "general"), (1, vec![0, 0], 0, 0));
    }

    #[test]
    fn a_contact_it_does_not_know_is_rebuilt_from_its_events() {
        use Channel::Chat;
        use RiskLevel::{High, None as No};
        let events = log(vec![
            // c1 entered before midnight, answered today (after a restart).
            (-10, enter(1, "general", Chat, High)),
            (25, connect(1, 1, "general", 35)),
            // c2 answered before midnight, transferred: its second connect today is no answer.
            (-60, enter(2, "general", Chat, No)),
            (-50, connect(2, 1, "general", 10)),
            (10, connect(2, 2, "general", 70)),
            // c3 left today (counted), then forgotten; it resumes and is answered.
            (0, enter(3, "general", Chat, No)),
            (20, abandon(3, "general", 20)),
            (400, resume(3)),
            (410, connect(3, 1, "general", 30)),
        ]);
        let mut live = live();
        // c3's enter and abandon were counted; then the task forgot c3.
        counted(&mut live, &events[5..7]);
        assert_eq!(day(&live, "general"), (0, vec![0, 0], 1, 0));
        live.open.clear();
        for i in [1, 4, 7, 8] {
            let stored = &events[i];
            let contact = stored.contact.unwrap();
            let event: Event = serde_json::from_value(stored.data.clone()).unwrap();
            if !live.open.contains_key(&contact) {
                let history: Vec<StoredEvent> = events
                    .iter()
                    .filter(|e| e.contact == Some(contact))
                    .cloned()
                    .collect();
                let open = live.rebuilt(&history, stored.seq).unwrap();
                live.open.insert(contact, open);
            }
            live.count(&event, stored.at, None);
        }
        // Answered today: c1 (35 s) and c3 (30 s); c3's abandon is taken back.
        assert_eq!(day(&live, "general"), (2, vec![0, 2], 0, 0));
        assert_eq!(
            live.open[&ContactId(1)].fate.waiting_risk(),
            RiskLevel::High
        );
        assert_eq!(
            live.open[&ContactId(2)].fate.answer().unwrap().operator,
            OperatorId(1)
        );
    }

    #[test]
    fn a_caller_who_can_no_longer_resume_is_forgotten() {
        use Channel::Chat;
        use RiskLevel::None as No;
        let events = log(vec![
            (0, enter(1, "general", Chat, No)),
            (20, abandon(1, "general", 20)),
            (0, enter(2, "general", Chat, No)),
            (5, connect(2, 1, "general", 5)),
        ]);
        let mut live = live();
        counted(&mut live, &events);
        live.forget_left_before(Timestamp(T0 + 20_001));
        assert!(!live.open.contains_key(&ContactId(1)));
        assert!(live.open.contains_key(&ContactId(2)));
    }
}
