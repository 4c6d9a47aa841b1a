//! Contact-centre KPIs computed from the event log: a pure function of stored events (plus the
//! crisis incidents, when the paging module has them) and parameters. No IO, no clock: the same
//! rows give the same figures on SQLite and PostgreSQL, and fixture logs test it.
//!
//! **Who is counted.** The report's contacts are the *cohort* of the period: the contacts whose
//! `enter_queue` is in `[from, to)`. Everything that happens to them is counted, even after `to`
//! (a contact that arrived at 23:59 and was answered at 00:01 is an answered contact of the day
//! it arrived). A contact belongs to the queue and channel it entered; overflows and transfers
//! are counted but do not move it to another row.
//!
//! **Definitions** (T = a service-level threshold, S = the short-abandon threshold):
//! - arrived: contacts of the cohort.
//! - answered: contacts connected to an operator at least once. Its wait is the first
//!   `connect.waited_ms` (a transfer's second connect is not a new answer).
//! - answer rate (接通率) = answered / arrived.
//! - ASA = Σ wait of answered / answered. Longest wait: the largest of those waits.
//! - abandoned: contacts never answered whose last `abandon` was not followed by a `resume`;
//!   short abandoned: those with `abandon.waited_ms` < S (included in abandoned). A contact is
//!   answered or abandoned, never both ([`Fate`], which the live metrics fold through too).
//! - SL(T) = answered with wait ≤ T / (answered + abandoned − short abandoned).
//! - abandon rate = (abandoned − short abandoned) / (arrived − short abandoned).
//! - still open: arrived − answered − abandoned (waiting or offered when the log was read).
//! - AHT = Σ `complete.handled_ms` / completes (talk + wrap-up of the operator who completed).
//! - occupancy = handling / (handling + available idle), over `[from, min(to, now))`. Handling:
//!   wall time an operator held at least one contact (from `connect` to `complete`, `transfer`
//!   or a `requeue` after losing them). Available idle: wall time in `operator_state`
//!   `available` holding none. Times are summed over operators. Not attributable to a queue or
//!   channel: `null` with those filters.
//! - transfers: `transfer` events of the cohort; overflowed: cohort contacts that overflowed.
//! - risk: a contact's *waiting risk* is the highest risk it had before it was answered (or
//!   abandoned); `high_risk` and `imminent_risk` report the contacts whose waiting risk is
//!   exactly that level — their own answer times.
//! - crisis: incidents of the cohort and the time from trigger to the first acknowledgement
//!   (from the paging tables); `imminent_risk_contacts`: contacts whose risk reached imminent
//!   (from the event log's `enter_queue`/`risk_change`).
//!
//! With an `operator` filter: answered, ASA and SL count the contacts that operator answered
//! first; completes, transfers and offers are theirs; occupancy is theirs; arrived, abandoned,
//! answer rate and abandon rate are `null` (not attributable to one operator) and SL's
//! denominator is their answered contacts only.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Channel, ContactId, OperatorId, QueueId, RiskLevel, Timestamp};
use crate::routing::{Event, OperatorState, RequeueReason};
use crate::store::StoredEvent;
use crate::store::quality::IncidentFact;

/// What the computation needs besides the events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KpiParams {
    pub from: Timestamp,
    pub to: Timestamp,
    /// Time-based measures (occupancy) stop here when the period is not over yet.
    pub now: Timestamp,
    /// Abandons after a shorter wait are counted apart.
    pub short_abandon_ms: i64,
    /// Service-level thresholds, e.g. 20 000 and 60 000.
    pub service_level_ms: Vec<i64>,
}

/// Which contacts and operators a figure covers; `None` is all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KpiFilter {
    pub queue: Option<QueueId>,
    pub operator: Option<OperatorId>,
    pub channel: Option<Channel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceLevel {
    pub threshold_seconds: f64,
    pub answered_within: u64,
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Occupancy {
    pub handling_seconds: f64,
    pub available_idle_seconds: f64,
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Offers {
    pub offered: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub timed_out: u64,
    pub rescinded: u64,
}

/// Answer times of the contacts whose waiting risk was one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RiskKpis {
    pub arrived: Option<u64>,
    pub answered: u64,
    pub asa_seconds: Option<f64>,
    pub longest_wait_seconds: Option<f64>,
    pub abandoned: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CrisisKpis {
    /// `paging` when incidents come from the paging module; `event_log` when only the event
    /// log was available (then the incident figures are `null`).
    pub source: String,
    pub incidents: Option<u64>,
    pub acknowledged: Option<u64>,
    pub mean_time_to_acknowledge_seconds: Option<f64>,
    pub longest_time_to_acknowledge_seconds: Option<f64>,
    /// Contacts whose risk reached imminent.
    pub imminent_risk_contacts: u64,
}

/// The KPIs of one slice of the cohort. See the module documentation for every definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Kpis {
    pub arrived: Option<u64>,
    pub answered: u64,
    pub answer_rate: Option<f64>,
    pub asa_seconds: Option<f64>,
    pub longest_wait_seconds: Option<f64>,
    pub service_levels: Vec<ServiceLevel>,
    pub abandoned: Option<u64>,
    pub short_abandoned: Option<u64>,
    pub abandon_rate: Option<f64>,
    pub still_open: Option<u64>,
    pub completed: u64,
    pub aht_seconds: Option<f64>,
    pub occupancy: Option<Occupancy>,
    pub transfers: u64,
    pub overflowed: u64,
    pub offers: Offers,
    pub high_risk: RiskKpis,
    pub imminent_risk: RiskKpis,
    pub crisis: CrisisKpis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OfferOutcome {
    Pending,
    Accepted,
    Rejected,
    TimedOut,
    Rescinded,
}

/// A contact's answer: its first `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub operator: OperatorId,
    pub waited_ms: i64,
}

/// How one contact counts, as its events tell it: answered (its first `connect`; a transfer's
/// second connect is not a new answer) or abandoned (never answered, and its last `abandon`
/// not followed by a `resume`), and its waiting risk (the highest risk it had while waiting,
/// before it was answered or abandoned). The one definition of these that reports and the live
/// metrics ([`super::live`]) both fold a contact's events through, so that they count a contact
/// the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    waiting_risk: RiskLevel,
    answer: Option<Answer>,
    abandoned_after_ms: Option<i64>,
}

impl Fate {
    /// A contact that entered a queue at `risk`.
    pub fn entered(risk: RiskLevel) -> Fate {
        Fate {
            waiting_risk: risk,
            answer: None,
            abandoned_after_ms: None,
        }
    }

    /// Folds one later event of the contact, in log order (its `enter_queue` excepted).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Connect {
                operator,
                waited_ms,
                ..
            } if self.answer.is_none() => {
                self.answer = Some(Answer {
                    operator: *operator,
                    waited_ms: *waited_ms,
                });
                self.abandoned_after_ms = None;
            }
            Event::RiskChange { to, .. }
                if self.answer.is_none() && self.abandoned_after_ms.is_none() =>
            {
                self.waiting_risk = self.waiting_risk.max(*to);
            }
            // The abandon of an answered contact (it lost its operator, then its caller) is none.
            Event::Abandon { waited_ms, .. } if self.answer.is_none() => {
                self.abandoned_after_ms = Some(*waited_ms);
            }
            Event::Resume { .. } => self.abandoned_after_ms = None,
            _ => {}
        }
    }

    pub fn answer(&self) -> Option<Answer> {
        self.answer
    }

    /// The queue wait before the caller left, if the contact counts as abandoned.
    pub fn abandoned_after_ms(&self) -> Option<i64> {
        self.abandoned_after_ms
    }

    pub fn waiting_risk(&self) -> RiskLevel {
        self.waiting_risk
    }
}

/// What the log says about one contact of the cohort.
#[derive(Debug, Clone)]
pub struct ContactFacts {
    pub id: ContactId,
    pub queue: QueueId,
    pub channel: Channel,
    pub entered_at: Timestamp,
    /// Answered or abandoned, and its waiting risk.
    pub fate: Fate,
    pub peak_risk: RiskLevel,
    /// Every operator it was connected to.
    pub operators: BTreeSet<OperatorId>,
    transfers_by: Vec<OperatorId>,
    overflowed: bool,
    completes: Vec<(OperatorId, i64)>,
    offers: Vec<(OperatorId, OfferOutcome)>,
}

impl ContactFacts {
    pub fn answered_by(&self) -> Option<OperatorId> {
        self.fate.answer.map(|a| a.operator)
    }
    pub fn completed(&self) -> bool {
        !self.completes.is_empty()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorTime {
    pub handling_ms: i64,
    pub idle_ms: i64,
}

#[derive(Debug, Default)]
struct OperatorTrack {
    state: Option<OperatorState>,
    holding: BTreeSet<ContactId>,
    since: Option<Timestamp>,
    time: OperatorTime,
}

/// The cohort's contacts and the operators' time, read once from the log; every slice of the
/// report is then an aggregation over it.
#[derive(Debug, Default)]
pub struct Digest {
    pub contacts: BTreeMap<ContactId, ContactFacts>,
    pub operators: BTreeMap<OperatorId, OperatorTime>,
    /// Stored events whose data did not parse (a newer server's event kinds): skipped.
    pub unreadable: u64,
}

/// Reads `events` (any order; sorted by `seq` here, duplicates dropped).
pub fn digest(events: &[StoredEvent], params: &KpiParams) -> Digest {
    let mut sorted: Vec<&StoredEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.seq);
    sorted.dedup_by_key(|e| e.seq);
    let until = params.to.min(params.now);
    let mut digest = Digest::default();
    let mut tracks: BTreeMap<OperatorId, OperatorTrack> = BTreeMap::new();
    let mut holder: BTreeMap<ContactId, OperatorId> = BTreeMap::new();
    let mut last_at = Timestamp(i64::MIN);
    for stored in sorted {
        let Ok(event) = serde_json::from_value::<Event>(stored.data.clone()) else {
            digest.unreadable += 1;
            continue;
        };
        // The log's times never go back; a clock step back is flattened.
        let at = stored.at.max(last_at);
        last_at = at;
        operator_time(&event, at, params.from, until, &mut tracks, &mut holder);
        contact_facts(&event, at, params, &mut digest.contacts);
    }
    for (id, mut track) in tracks {
        advance(&mut track, until, params.from, until);
        digest.operators.insert(id, track.time);
    }
    digest
}

/// Adds the time since the last change to the bucket the operator was in, clipped to
/// `[from, until)`.
fn advance(track: &mut OperatorTrack, at: Timestamp, from: Timestamp, until: Timestamp) {
    if let Some(since) = track.since {
        let start = since.max(from);
        let end = at.min(until);
        if end > start {
            let span = end.0 - start.0;
            if !track.holding.is_empty() {
                track.time.handling_ms += span;
            } else if track.state == Some(OperatorState::Available) {
                track.time.idle_ms += span;
            }
        }
    }
    track.since = Some(at.max(track.since.unwrap_or(at)));
}

fn operator_time(
    event: &Event,
    at: Timestamp,
    from: Timestamp,
    until: Timestamp,
    tracks: &mut BTreeMap<OperatorId, OperatorTrack>,
    holder: &mut BTreeMap<ContactId, OperatorId>,
) {
    let mut touch = |op: OperatorId, change: &mut dyn FnMut(&mut OperatorTrack)| {
        let track = tracks.entry(op).or_default();
        advance(track, at, from, until);
        change(track);
    };
    match event {
        Event::OperatorState { operator, state } => {
            touch(*operator, &mut |t| t.state = Some(*state))
        }
        Event::Connect {
            contact, operator, ..
        } => {
            if let Some(previous) = holder.insert(*contact, *operator) {
                touch(previous, &mut |t| {
                    t.holding.remove(contact);
                });
            }
            touch(*operator, &mut |t| {
                t.holding.insert(*contact);
            });
        }
        Event::Transfer { contact, .. } | Event::Complete { contact, .. } => {
            if let Some(op) = holder.remove(contact) {
                touch(op, &mut |t| {
                    t.holding.remove(contact);
                });
            }
        }
        Event::Requeue {
            contact,
            reason: RequeueReason::OperatorLost,
            ..
        } => {
            if let Some(op) = holder.remove(contact) {
                touch(op, &mut |t| {
                    t.holding.remove(contact);
                });
            }
        }
        _ => {}
    }
}

fn contact_facts(
    event: &Event,
    at: Timestamp,
    params: &KpiParams,
    contacts: &mut BTreeMap<ContactId, ContactFacts>,
) {
    if let Event::EnterQueue {
        contact,
        queue,
        channel,
        risk,
    } = event
    {
        if at >= params.from && at < params.to {
            contacts.entry(*contact).or_insert(ContactFacts {
                id: *contact,
                queue: queue.clone(),
                channel: *channel,
                entered_at: at,
                fate: Fate::entered(*risk),
                peak_risk: *risk,
                operators: BTreeSet::new(),
                transfers_by: Vec::new(),
                overflowed: false,
                completes: Vec::new(),
                offers: Vec::new(),
            });
        }
        return;
    }
    let Some(c) = event.contact().and_then(|id| contacts.get_mut(&id)) else {
        return;
    };
    c.fate.apply(event);
    let settle = |c: &mut ContactFacts, op: OperatorId, outcome: OfferOutcome| {
        if let Some(offer) = c
            .offers
            .iter_mut()
            .rev()
            .find(|(o, s)| *o == op && *s == OfferOutcome::Pending)
        {
            offer.1 = outcome;
        }
    };
    match event {
        Event::Offer { operator, .. } => c.offers.push((*operator, OfferOutcome::Pending)),
        Event::Accept { operator, .. } => settle(c, *operator, OfferOutcome::Accepted),
        Event::Reject { operator, .. } => settle(c, *operator, OfferOutcome::Rejected),
        Event::OfferTimeout { operator, .. } => settle(c, *operator, OfferOutcome::TimedOut),
        Event::OfferRescinded { operator, .. } => settle(c, *operator, OfferOutcome::Rescinded),
        Event::Connect { operator, .. } => {
            c.operators.insert(*operator);
        }
        Event::RiskChange { to, .. } => c.peak_risk = c.peak_risk.max(*to),
        Event::Overflow { .. } => c.overflowed = true,
        Event::Transfer { from, .. } => c.transfers_by.push(*from),
        Event::Complete {
            operator,
            handled_ms,
            ..
        } => c.completes.push((*operator, *handled_ms)),
        _ => {}
    }
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn mean_seconds(total_ms: i64, n: u64) -> Option<f64> {
    (n > 0).then(|| total_ms as f64 / n as f64 / 1000.0)
}

/// The KPIs of the slice of `digest` that `filter` selects. `incidents` is `None` when the
/// paging module's data is not available.
pub fn kpis(
    digest: &Digest,
    incidents: Option<&[IncidentFact]>,
    params: &KpiParams,
    filter: &KpiFilter,
) -> Kpis {
    let in_slice = |c: &ContactFacts| {
        filter.queue.as_ref().is_none_or(|q| &c.queue == q)
            && filter.channel.is_none_or(|ch| c.channel == ch)
    };
    let slice: Vec<&ContactFacts> = digest.contacts.values().filter(|c| in_slice(c)).collect();
    let by_operator = filter.operator;
    let mine = |op: OperatorId| by_operator.is_none_or(|me| me == op);
    // Contacts whose answer counts here: all answered, or those this operator answered first.
    let answered: Vec<(&ContactFacts, Answer)> = slice
        .iter()
        .filter_map(|c| c.fate.answer.filter(|a| mine(a.operator)).map(|a| (*c, a)))
        .collect();
    let answered_n = answered.len() as u64;
    let wait_total: i64 = answered.iter().map(|(_, a)| a.waited_ms).sum();
    let longest = answered.iter().map(|(_, a)| a.waited_ms).max();

    let contact_side = by_operator.is_none();
    let arrived = slice.len() as u64;
    let abandoned_waits: Vec<i64> = slice
        .iter()
        .filter_map(|c| c.fate.abandoned_after_ms)
        .collect();
    let abandoned = abandoned_waits.len() as u64;
    let short = abandoned_waits
        .iter()
        .filter(|w| **w < params.short_abandon_ms)
        .count() as u64;
    let sl_denominator = if contact_side {
        answered_n + abandoned - short
    } else {
        answered_n
    };
    let service_levels = params
        .service_level_ms
        .iter()
        .map(|&t| {
            let within = answered.iter().filter(|(_, a)| a.waited_ms <= t).count() as u64;
            ServiceLevel {
                threshold_seconds: seconds(t),
                answered_within: within,
                ratio: ratio(within, sl_denominator),
            }
        })
        .collect();

    let completes: Vec<i64> = slice
        .iter()
        .flat_map(|c| c.completes.iter())
        .filter(|(op, _)| mine(*op))
        .map(|(_, ms)| *ms)
        .collect();
    let mut offers = Offers::default();
    for (op, outcome) in slice.iter().flat_map(|c| c.offers.iter()) {
        if !mine(*op) {
            continue;
        }
        offers.offered += 1;
        match outcome {
            OfferOutcome::Accepted => offers.accepted += 1,
            OfferOutcome::Rejected => offers.rejected += 1,
            OfferOutcome::TimedOut => offers.timed_out += 1,
            OfferOutcome::Rescinded => offers.rescinded += 1,
            OfferOutcome::Pending => {}
        }
    }
    let transfers = slice
        .iter()
        .flat_map(|c| c.transfers_by.iter())
        .filter(|op| mine(**op))
        .count() as u64;
    let overflowed = slice
        .iter()
        .filter(|c| c.overflowed && (contact_side || c.operators.iter().any(|o| mine(*o))))
        .count() as u64;

    let occupancy = (filter.queue.is_none() && filter.channel.is_none()).then(|| {
        let mut handling = 0;
        let mut idle = 0;
        for (op, t) in &digest.operators {
            if mine(*op) {
                handling += t.handling_ms;
                idle += t.idle_ms;
            }
        }
        Occupancy {
            handling_seconds: seconds(handling),
            available_idle_seconds: seconds(idle),
            ratio: (handling + idle > 0).then(|| handling as f64 / (handling + idle) as f64),
        }
    });

    let risk = |level: RiskLevel| {
        let arrived = slice
            .iter()
            .filter(|c| c.fate.waiting_risk == level)
            .count() as u64;
        let waits: Vec<i64> = answered
            .iter()
            .filter(|(c, _)| c.fate.waiting_risk == level)
            .map(|(_, a)| a.waited_ms)
            .collect();
        let abandoned = slice
            .iter()
            .filter(|c| c.fate.waiting_risk == level && c.fate.abandoned_after_ms.is_some())
            .count() as u64;
        RiskKpis {
            arrived: contact_side.then_some(arrived),
            answered: waits.len() as u64,
            asa_seconds: mean_seconds(waits.iter().sum(), waits.len() as u64),
            longest_wait_seconds: waits.iter().max().map(|w| seconds(*w)),
            abandoned: contact_side.then_some(abandoned),
        }
    };

    // Crisis figures cover the slice's contacts (with an operator filter: those they took).
    let crisis_contacts: BTreeSet<ContactId> = slice
        .iter()
        .filter(|c| contact_side || c.operators.iter().any(|o| mine(*o)))
        .map(|c| c.id)
        .collect();
    let imminent = slice
        .iter()
        .filter(|c| crisis_contacts.contains(&c.id) && c.peak_risk == RiskLevel::Imminent)
        .count() as u64;
    let crisis = match incidents {
        Some(incidents) => {
            let mine: Vec<&IncidentFact> = incidents
                .iter()
                .filter(|i| crisis_contacts.contains(&i.contact))
                .collect();
            let acks: Vec<i64> = mine
                .iter()
                .filter_map(|i| i.acknowledged_at.map(|a| a.since(i.triggered_at)))
                .collect();
            CrisisKpis {
                source: "paging".into(),
                incidents: Some(mine.len() as u64),
                acknowledged: Some(acks.len() as u64),
                mean_time_to_acknowledge_seconds: mean_seconds(
                    acks.iter().sum(),
                    acks.len() as u64,
                ),
                longest_time_to_acknowledge_seconds: acks.iter().max().map(|a| seconds(*a)),
                imminent_risk_contacts: imminent,
            }
        }
        None => CrisisKpis {
            source: "event_log".into(),
            incidents: None,
            acknowledged: None,
            mean_time_to_acknowledge_seconds: None,
            longest_time_to_acknowledge_seconds: None,
            imminent_risk_contacts: imminent,
        },
    };

    Kpis {
        arrived: contact_side.then_some(arrived),
        answered: answered_n,
        answer_rate: if contact_side {
            ratio(answered_n, arrived)
        } else {
            None
        },
        asa_seconds: mean_seconds(wait_total, answered_n),
        longest_wait_seconds: longest.map(seconds),
        service_levels,
        abandoned: contact_side.then_some(abandoned),
        short_abandoned: contact_side.then_some(short),
        abandon_rate: if contact_side {
            ratio(abandoned - short, arrived - short)
        } else {
            None
        },
        still_open: contact_side.then(|| {
            slice
                .iter()
                .filter(|c| c.fate.answer.is_none() && c.fate.abandoned_after_ms.is_none())
                .count() as u64
        }),
        completed: completes.len() as u64,
        aht_seconds: mean_seconds(completes.iter().sum(), completes.len() as u64),
        occupancy,
        transfers,
        overflowed,
        offers,
        high_risk: risk(RiskLevel::High),
        imminent_risk: risk(RiskLevel::Imminent),
        crisis,
    }
}

/// Digest and aggregate in one call.
pub fn compute(
    events: &[StoredEvent],
    incidents: Option<&[IncidentFact]>,
    params: &KpiParams,
    filter: &KpiFilter,
) -> Kpis {
    kpis(&digest(events, params), incidents, params, filter)
}

/// The queues and operators that appear in a digest, for per-queue and per-operator rows.
pub fn dimensions(digest: &Digest) -> (Vec<QueueId>, Vec<OperatorId>) {
    let queues: BTreeSet<QueueId> = digest.contacts.values().map(|c| c.queue.clone()).collect();
    let mut operators: BTreeSet<OperatorId> = digest
        .contacts
        .values()
        .flat_map(|c| {
            c.operators
                .iter()
                .copied()
                .chain(c.offers.iter().map(|(o, _)| *o))
                .chain(c.completes.iter().map(|(o, _)| *o))
        })
        .collect();
    operators.extend(
        digest
            .operators
            .iter()
            .filter(|(_, t)| t.handling_ms > 0 || t.idle_ms > 0)
            .map(|(o, _)| *o),
    );
    (
        queues.into_iter().collect(),
        operators.into_iter().collect(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::BreakReason;
    use crate::routing::{EndedBy, OverflowReason, TransferTarget};

    /// Builds a stored log: each entry is (seconds after T0, event); seq follows the order.
    pub(crate) fn log(entries: Vec<(i64, Event)>) -> Vec<StoredEvent> {
        entries
            .into_iter()
            .enumerate()
            .map(|(i, (secs, event))| StoredEvent {
                seq: i as i64 + 1,
                at: Timestamp(T0 + secs * 1000),
                kind: event.kind().into(),
                contact: event.contact(),
                operator: event.operator(),
                data: serde_json::to_value(&event).unwrap(),
            })
            .collect()
    }

    pub(crate) const T0: i64 = 1_772_294_400_000;

    pub(crate) fn q(id: &str) -> QueueId {
        QueueId::parse(id).unwrap()
    }
    pub(crate) fn enter(c: i64, queue: &str, channel: Channel, risk: RiskLevel) -> Event {
        Event::EnterQueue {
            contact: ContactId(c),
            queue: q(queue),
            channel,
            risk,
        }
    }
    pub(crate) fn connect(c: i64, op: i64, queue: &str, waited_s: i64) -> Event {
        Event::Connect {
            contact: ContactId(c),
            operator: OperatorId(op),
            queue: q(queue),
            waited_ms: waited_s * 1000,
        }
    }
    pub(crate) fn complete(c: i64, op: i64, handled_s: i64) -> Event {
        Event::Complete {
            contact: ContactId(c),
            operator: OperatorId(op),
            handled_ms: handled_s * 1000,
        }
    }
    pub(crate) fn abandon(c: i64, queue: &str, waited_s: i64) -> Event {
        Event::Abandon {
            contact: ContactId(c),
            queue: q(queue),
            waited_ms: waited_s * 1000,
        }
    }
    fn state(op: i64, state: OperatorState) -> Event {
        Event::OperatorState {
            operator: OperatorId(op),
            state,
        }
    }
    fn offer(c: i64, op: i64) -> Event {
        Event::Offer {
            contact: ContactId(c),
            operator: OperatorId(op),
            expires_at: Timestamp(0),
        }
    }

    pub(crate) fn params(from_s: i64, to_s: i64) -> KpiParams {
        KpiParams {
            from: Timestamp(T0 + from_s * 1000),
            to: Timestamp(T0 + to_s * 1000),
            now: Timestamp(T0 + to_s * 1000),
            short_abandon_ms: 6_000,
            service_level_ms: vec![20_000, 60_000],
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    /// The reference fixture: one queue, two operators, period [T0, T0 + 120 s).
    fn queue_day() -> Vec<StoredEvent> {
        use Channel::Chat;
        use RiskLevel::{High, None as No};
        log(vec![
            // Before the period: both operators become available; c100 (not in the cohort)
            // is answered by op 2 and completes 20 s into the period.
            (-500, state(1, OperatorState::Available)),
            (-500, state(2, OperatorState::Available)),
            (-150, enter(100, "general", Chat, No)),
            (-100, connect(100, 2, "general", 50)),
            // c1: answered by op 1 after 10 s, completes at 100 s (talk + wrap-up 90 s).
            (0, enter(1, "general", Chat, No)),
            (5, enter(2, "general", Chat, No)),
            (10, offer(1, 1)),
            (
                10,
                Event::Accept {
                    contact: ContactId(1),
                    operator: OperatorId(1),
                },
            ),
            (10, connect(1, 1, "general", 10)),
            // c3: gives up after 3 s — a short abandon.
            (10, enter(3, "general", Chat, No)),
            (13, abandon(3, "general", 3)),
            (20, enter(4, "general", Chat, No)),
            (20, complete(100, 2, 120)),
            // c5: high risk, answered by op 1 after exactly 60 s.
            (30, enter(5, "general", Chat, High)),
            // c2: op 2 misses one offer, then answers after 30 s; completes at 95 s.
            (30, offer(2, 2)),
            (
                34,
                Event::OfferTimeout {
                    contact: ContactId(2),
                    operator: OperatorId(2),
                },
            ),
            (35, offer(2, 2)),
            (
                35,
                Event::Accept {
                    contact: ContactId(2),
                    operator: OperatorId(2),
                },
            ),
            (35, connect(2, 2, "general", 30)),
            // c6 arrives and is still waiting at the end.
            (40, enter(6, "general", Chat, No)),
            // c4 gives up after 30 s.
            (50, abandon(4, "general", 30)),
            (
                70,
                Event::WrapUp {
                    contact: ContactId(1),
                    operator: OperatorId(1),
                    by: EndedBy::Caller,
                },
            ),
            (90, connect(5, 1, "general", 60)),
            (95, complete(2, 2, 60)),
            (100, complete(1, 1, 90)),
            (
                100,
                state(
                    2,
                    OperatorState::Break {
                        reason: BreakReason::Meal,
                    },
                ),
            ),
        ])
    }

    #[test]
    fn queue_kpis_from_a_fixture_log() {
        let p = params(0, 120);
        let k = compute(&queue_day(), None, &p, &KpiFilter::default());
        // Cohort: c1..c6 (c100 entered before the period).
        assert_eq!(k.arrived, Some(6));
        // Answered: c1 (10 s), c2 (30 s), c5 (60 s).
        assert_eq!(k.answered, 3);
        assert!(close(k.answer_rate, 0.5)); // 3 / 6
        assert!(close(k.asa_seconds, 100.0 / 3.0)); // (10 + 30 + 60) / 3
        assert!(close(k.longest_wait_seconds, 60.0));
        // Abandoned: c3 (3 s, short) and c4 (30 s).
        assert_eq!((k.abandoned, k.short_abandoned), (Some(2), Some(1)));
        // SL denominator: answered 3 + abandoned 2 − short 1 = 4.
        // SL(20 s): c1 only → 1/4; SL(60 s): c1, c2, c5 (60 ≤ 60) → 3/4.
        assert_eq!(k.service_levels[0].answered_within, 1);
        assert!(close(k.service_levels[0].ratio, 0.25));
        assert_eq!(k.service_levels[1].answered_within, 3);
        assert!(close(k.service_levels[1].ratio, 0.75));
        // Abandon rate: (2 − 1) / (6 − 1) = 0.2.
        assert!(close(k.abandon_rate, 0.2));
        assert_eq!(k.still_open, Some(1)); // c6
        // Completes of the cohort: c1 (90 s), c2 (60 s) → AHT 75 s. (c100 is not in the cohort.)
        assert_eq!(k.completed, 2);
        assert!(close(k.aht_seconds, 75.0));
        // Occupancy over [0, 120 s):
        //   op 1: idle (available) 0–10 = 10 s; holds c1 10–100 and c5 90–120 → handling 110 s.
        //   op 2: holds c100 0–20 and c2 35–95 → handling 80 s; idle 20–35 and 95–100
        //   (then on break) → 20 s.
        //   handling 190 s, idle 30 s → 190 / 220.
        let occ = k.occupancy.clone().unwrap();
        assert_eq!(
            (occ.handling_seconds, occ.available_idle_seconds),
            (190.0, 30.0)
        );
        assert!(close(occ.ratio, 190.0 / 220.0));
        // Offers: c1→op1 accepted, c2→op2 timed out, c2→op2 accepted.
        assert_eq!(
            k.offers,
            Offers {
                offered: 3,
                accepted: 2,
                rejected: 0,
                timed_out: 1,
                rescinded: 0
            }
        );
        // High risk: c5 only, answered after 60 s.
        assert_eq!((k.high_risk.arrived, k.high_risk.answered), (Some(1), 1));
        assert!(close(k.high_risk.asa_seconds, 60.0));
        assert_eq!(k.imminent_risk.answered, 0);
        assert_eq!(k.imminent_risk.asa_seconds, None);
        assert_eq!(k.crisis.source, "event_log");
        assert_eq!(k.crisis.incidents, None);
    }

    #[test]
    fn operator_slice() {
        let p = params(0, 120);
        let filter = KpiFilter {
            operator: Some(OperatorId(1)),
            ..KpiFilter::default()
        };
        let k = compute(&queue_day(), None, &p, &filter);
        // op 1 answered c1 (10 s) and c5 (60 s): ASA 35 s; SL over their answers only.
        assert_eq!(k.answered, 2);
        assert!(close(k.asa_seconds, 35.0));
        assert!(close(k.service_levels[0].ratio, 0.5)); // c1 within 20 s, of 2
        assert_eq!((k.arrived, k.abandoned, k.answer_rate), (None, None, None));
        // One complete (c1, 90 s); occupancy 110 / (110 + 10).
        assert_eq!(k.completed, 1);
        assert!(close(k.aht_seconds, 90.0));
        assert!(close(k.occupancy.unwrap().ratio, 110.0 / 120.0));
        assert_eq!(k.offers.offered, 1);
    }

    #[test]
    fn a_period_that_is_not_over_stops_at_now() {
        let mut p = params(0, 3600);
        p.now = Timestamp(T0 + 120_000);
        let k = compute(&queue_day(), None, &p, &KpiFilter::default());
        let occ = k.occupancy.unwrap();
        // The same as the 120 s period: nothing is counted after now.
        assert_eq!(
            (occ.handling_seconds, occ.available_idle_seconds),
            (190.0, 30.0)
        );
    }

    #[test]
    fn risk_transfers_resumes_overflows_and_incidents() {
        use Channel::{Chat, Voice};
        use RiskLevel::{High, Imminent, Low, Medium};
        let events = log(vec![
            // c7: imminent, answered by op 1 after 5 s, transferred at 30 s to a queue and
            // connected to op 2 at 40 s (a second connect: not a new answer).
            (0, enter(7, "crisis", Chat, Imminent)),
            (5, connect(7, 1, "crisis", 5)),
            (
                30,
                Event::Transfer {
                    contact: ContactId(7),
                    from: OperatorId(1),
                    target: TransferTarget::Queue { queue: q("crisis") },
                },
            ),
            (40, connect(7, 2, "crisis", 40)),
            (100, complete(7, 2, 60)),
            // c8: low, rises to high at 10 s, abandons at 20 s, resumes at 25 s and is
            // answered at 50 s: answered, not abandoned; its waiting risk is high.
            (0, enter(8, "general", Voice, Low)),
            (
                10,
                Event::RiskChange {
                    contact: ContactId(8),
                    from: Low,
                    to: High,
                },
            ),
            (20, abandon(8, "general", 20)),
            (
                25,
                Event::Resume {
                    contact: ContactId(8),
                },
            ),
            (50, connect(8, 1, "general", 50)),
            // c9: medium, overflows to the backup queue and is answered there after 30 s;
            // it still belongs to `general`, the queue it entered.
            (0, enter(9, "general", Chat, Medium)),
            (
                20,
                Event::Overflow {
                    contact: ContactId(9),
                    from: q("general"),
                    to: q("backup"),
                    reason: OverflowReason::MaxWait,
                },
            ),
            (30, connect(9, 2, "backup", 30)),
            // c10: raised to imminent only after it was answered: waiting risk stays medium.
            (0, enter(10, "general", Chat, Medium)),
            (2, connect(10, 2, "general", 2)),
            (
                3,
                Event::RiskChange {
                    contact: ContactId(10),
                    from: Medium,
                    to: Imminent,
                },
            ),
        ]);
        let incidents = vec![
            // c7: triggered at 1 s, first acknowledged at 31 s → 30 s.
            IncidentFact {
                incident: 1,
                contact: ContactId(7),
                triggered_at: Timestamp(T0 + 1_000),
                acknowledged_at: Some(Timestamp(T0 + 31_000)),
            },
            // c10: triggered at 3 s, not acknowledged yet.
            IncidentFact {
                incident: 2,
                contact: ContactId(10),
                triggered_at: Timestamp(T0 + 3_000),
                acknowledged_at: None,
            },
            // An incident of a contact outside the cohort is not counted.
            IncidentFact {
                incident: 3,
                contact: ContactId(999),
                triggered_at: Timestamp(T0),
                acknowledged_at: Some(Timestamp(T0 + 1_000)),
            },
        ];
        let p = params(0, 120);
        let k = compute(&events, Some(&incidents), &p, &KpiFilter::default());
        assert_eq!((k.arrived, k.answered, k.abandoned), (Some(4), 4, Some(0)));
        // First answers: c7 5 s, c8 50 s, c9 30 s, c10 2 s → ASA 87 / 4.
        assert!(close(k.asa_seconds, 87.0 / 4.0));
        assert_eq!((k.transfers, k.overflowed), (1, 1));
        // Imminent while waiting: c7 only (5 s). High while waiting: c8 (50 s).
        assert_eq!(
            (k.imminent_risk.arrived, k.imminent_risk.answered),
            (Some(1), 1)
        );
        assert!(close(k.imminent_risk.asa_seconds, 5.0));
        assert_eq!((k.high_risk.arrived, k.high_risk.answered), (Some(1), 1));
        assert!(close(k.high_risk.longest_wait_seconds, 50.0));
        // Crisis: incidents of c7 and c10; one acknowledged after 30 s. Reached imminent:
        // c7 and c10.
        assert_eq!(k.crisis.source, "paging");
        assert_eq!(
            (k.crisis.incidents, k.crisis.acknowledged),
            (Some(2), Some(1))
        );
        assert!(close(k.crisis.mean_time_to_acknowledge_seconds, 30.0));
        assert_eq!(k.crisis.imminent_risk_contacts, 2);

        // Slices: the voice channel is c8 alone; the general queue is c8, c9, c10.
        let voice = compute(
            &events,
            Some(&incidents),
            &p,
            &KpiFilter {
                channel: Some(Voice),
                ..KpiFilter::default()
            },
        );
        assert_eq!(
            (voice.arrived, voice.answered, voice.occupancy),
            (Some(1), 1, None)
        );
        let general = compute(
            &events,
            Some(&incidents),
            &p,
            &KpiFilter {
                queue: Some(q("general")),
                ..KpiFilter::default()
            },
        );
        assert_eq!(
            (general.arrived, general.overflowed, general.transfers),
            (Some(3), 1, 0)
        );
        assert_eq!(general.crisis.incidents, Some(1)); // c10's
        // op 1 answered c7 and c8 and made the transfer.
        let op1 = compute(
            &events,
            Some(&incidents),
            &p,
            &KpiFilter {
                operator: Some(OperatorId(1)),
                ..KpiFilter::default()
            },
        );
        assert_eq!((op1.answered, op1.transfers, op1.completed), (2, 1, 0));
    }

    #[test]
    fn unreadable_events_are_skipped() {
        let mut events = queue_day();
        events.push(StoredEvent {
            seq: 999,
            at: Timestamp(T0),
            kind: "from_the_future".into(),
            contact: None,
            operator: None,
            data: serde_json::json!({"kind": "from_the_future"}),
        });
        let d = digest(&events, &params(0, 120));
        assert_eq!(d.unreadable, 1);
        assert_eq!(d.contacts.len(), 6);
        let (queues, operators) = dimensions(&d);
        assert_eq!(queues, vec![q("general")]);
        assert_eq!(operators, vec![OperatorId(1), OperatorId(2)]);
    }
}
