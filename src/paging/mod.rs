//! Paging the crisis-intervention team: a crisis flag opens an incident, pages the first level of
//! the default escalation policy at once, and keeps escalating until a human acknowledges; an
//! acknowledged incident that is not resolved in time re-triggers. Every step is on the
//! incident's timeline.
//!
//! What it owns: incidents and their timelines, escalation policies, on-call schedules, paging
//! addresses, the durable timers and the page outbox (all in the store), the notifiers, and the
//! timer worker and auditor tasks ([`timers`]).
//!
//! How a page is made safe:
//! - **Durable before anyone hears of it.** A flag, an escalation, an acknowledgement is one
//!   transaction: incident row (compare-and-set on its version), timeline steps, timers armed or
//!   disarmed, pages queued in the outbox. Notifiers only send what that transaction committed.
//! - **Exactly once per escalation.** A timer fires through a compare-and-set on its generation
//!   in the same transaction as the escalation it causes, so a restart, a second worker or the
//!   auditor can never page a level twice; and a timer that was due while the server was down
//!   fires when it comes back.
//! - **One slow channel never silences another.** Each delivery is sent on its own task, with a
//!   timeout, retries with backoff and a dead letter; the console rings whatever a webhook does.
//!
//! What it must never do: page without a durable record; send what the caller said (or the
//! flag's reason) to an external channel; log addresses or reasons; stop paging because a
//! policy, schedule or address is wrong (a level with nobody to page says so on the timeline
//! and escalates at once; with no default policy every crisis lead and supervisor is paged).

pub mod http;
pub mod model;
pub mod notify;
pub mod policy;
pub mod schedule;
pub mod timers;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use crate::config::PagingSettings;
use crate::domain::{ContactId, OperatorId, Timestamp};
use crate::gateway::Hub;
use crate::gateway::hub::StaffNotice;
use crate::gateway::protocol::StaffEvent;
use crate::metrics::Metrics;
use crate::store::paging::{
    ChangeOutcome, Effects, IncidentChange, NewDelivery, NewIncident, PagingAddress, TimerChange,
};
use crate::store::{DynStore, StoreError};

pub use model::{
    FlagSource, Incident, IncidentDetail, IncidentId, IncidentState, IncidentView, PageCause,
    PageChannel, Step, TimerKind, Urgency,
};
use notify::Notifiers;
use policy::{Directory, Person, PolicyDefinition, resolve_level};

/// How often a change is re-read and retried when someone else changed the incident first.
const CHANGE_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    #[error("unknown contact")]
    UnknownContact,
    #[error("not found")]
    NotFound,
    /// The incident is not in a state that allows this (e.g. already resolved).
    #[error("{0}")]
    WrongState(String),
    #[error("{0}")]
    Invalid(String),
    /// The incident kept changing under us; the caller may retry.
    #[error("the incident is changing; try again")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PagingError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => PagingError::NotFound,
            other => PagingError::Store(other),
        }
    }
}

impl From<PagingError> for crate::error::ApiError {
    fn from(e: PagingError) -> Self {
        use crate::error::ApiError;
        match e {
            PagingError::UnknownContact | PagingError::NotFound => ApiError::NotFound,
            PagingError::WrongState(m) => ApiError::Conflict(m),
            PagingError::Invalid(m) => ApiError::Invalid(m),
            PagingError::Busy => ApiError::Conflict("the incident is changing; try again".into()),
            PagingError::Store(e) => e.into(),
        }
    }
}

/// The handle the rest of the server pages through. Cheap to clone.
#[derive(Clone)]
pub struct Pager {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    hub: Arc<Hub>,
    metrics: Metrics,
    settings: PagingSettings,
    notifiers: Notifiers,
    /// Wakes the timer worker when this node arms a timer or queues a page.
    wake: Notify,
    /// Contacts the auditor last found at imminent risk with no incident: raised if it finds
    /// them again a round later (routing's own flag has had its time).
    unflagged: Mutex<HashSet<ContactId>>,
}

impl Pager {
    /// A pager with the notifiers the settings call for (console, webhook, e-mail if SMTP is set).
    pub fn new(
        store: DynStore,
        hub: Arc<Hub>,
        metrics: Metrics,
        settings: PagingSettings,
    ) -> anyhow::Result<Pager> {
        let notifiers = Notifiers::from_settings(&settings, hub.clone())?;
        Ok(Pager::with_notifiers(
            store, hub, metrics, settings, notifiers,
        ))
    }

    pub fn with_notifiers(
        store: DynStore,
        hub: Arc<Hub>,
        metrics: Metrics,
        settings: PagingSettings,
        notifiers: Notifiers,
    ) -> Pager {
        Pager {
            inner: Arc::new(Inner {
                store,
                hub,
                metrics,
                settings,
                notifiers,
                wake: Notify::new(),
                unflagged: Mutex::default(),
            }),
        }
    }

    pub fn settings(&self) -> &PagingSettings {
        &self.inner.settings
    }

    fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// Raises a crisis flag on a contact: opens an incident and pages the first level of the
    /// default policy, or, when the contact already has an open incident, adds a person's flag to
    /// its timeline (routing's own flag on an open incident changes nothing). The incident, its first pages and its escalation timer are durable when this
    /// returns.
    #[tracing::instrument(skip_all, fields(contact = %contact))]
    pub async fn crisis_flag(
        &self,
        contact: ContactId,
        source: FlagSource,
        reason: Option<String>,
    ) -> Result<IncidentId, PagingError> {
        let reason = reason.filter(|r| !r.trim().is_empty());
        if let Some(r) = &reason {
            model::check_text("reason", r, model::MAX_TEXT, false).map_err(PagingError::Invalid)?;
        }
        for _ in 0..CHANGE_RETRIES {
            let now = Timestamp::now();
            if let Some(open) = self.store().open_incident_of(contact).await? {
                // Routing raises its flag whenever a contact reaches imminent risk — often
                // because a person just flagged it. A person's flag is news for the timeline;
                // routing's, on an incident already open, is not.
                if source == FlagSource::Routing {
                    return Ok(open.id);
                }
                let effects = Effects::default().step(
                    source.operator(),
                    Step::Flagged {
                        source,
                        reason: reason.clone(),
                    },
                );
                if let Some(incident) = self.change(&open, None, effects, now).await? {
                    return Ok(incident.id);
                }
                continue;
            }
            // A note written after the contact's crisis was handled records the assessment; it
            // does not page the team again for a contact that is over. (A person can still press
            // the crisis button to open a new incident.)
            if let FlagSource::Note(_) = source
                && let Some(handled) = self.store().latest_incident_of(contact).await?
            {
                return Ok(handled.id);
            }
            let directory = self.directory().await?;
            let (policy_id, policy) = match self.store().default_policy().await? {
                Some(p) => (Some(p.id), p.definition),
                None => (None, PolicyDefinition::fallback(&directory.directory)),
            };
            let mut effects = Effects::default().step(
                source.operator(),
                Step::Triggered {
                    source,
                    reason: reason.clone(),
                },
            );
            if policy_id.is_none() {
                tracing::warn!("no default escalation policy: paging every crisis lead");
                effects = effects.step(None, Step::FallbackPolicy);
            }
            self.page_level(
                &mut effects,
                contact,
                &policy,
                0,
                0,
                PageCause::Triggered,
                now,
                &directory,
            );
            let new = NewIncident {
                contact,
                urgency: Urgency::High,
                source,
                reason: reason.clone(),
                policy_id,
                policy,
            };
            match self.store().open_incident(&new, &effects, now).await {
                Ok(incident) => {
                    tracing::info!(incident = %incident.id, "crisis incident triggered");
                    self.inner
                        .metrics
                        .escalations
                        .with_label_values(&["1"])
                        .inc();
                    self.after_change(&incident).await;
                    return Ok(incident.id);
                }
                // Someone opened one a moment ago: add this flag to it.
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(PagingError::UnknownContact),
                Err(e) => return Err(e.into()),
            }
        }
        Err(PagingError::Busy)
    }

    /// Records a crisis flag as due, durably, before the fact that raises it is stored; then
    /// [`Pager::raise_due`] raises it, or, should that fail or the server stop first, the
    /// auditor does.
    pub async fn flag_due(
        &self,
        contact: ContactId,
        source: FlagSource,
    ) -> Result<i64, PagingError> {
        Ok(self
            .store()
            .put_flag_due(contact, source, Timestamp::now())
            .await?)
    }

    /// Raises a flag recorded with [`Pager::flag_due`] and forgets it. On failure it stays due,
    /// and the auditor raises it.
    pub async fn raise_due(
        &self,
        due: i64,
        contact: ContactId,
        source: FlagSource,
    ) -> Result<IncidentId, PagingError> {
        let incident = self.crisis_flag(contact, source, None).await?;
        self.store().clear_flag_due(due).await?;
        Ok(incident)
    }

    /// Forgets a flag recorded with [`Pager::flag_due`] whose fact was refused.
    pub async fn forget_due(&self, due: i64) {
        if let Err(e) = self.store().clear_flag_due(due).await {
            tracing::warn!(error = %e, "a refused note's crisis flag stays due");
        }
    }

    /// The auditor's second duty: raises crisis flags that were due before `before` and never
    /// raised (their paging failed, or a crash cut it short), and routing's flag for contacts at
    /// imminent risk that have no incident two rounds in a row. Returns how many it raised.
    pub async fn raise_missed_flags(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut raised = 0;
        for due in self.store().flags_due(before, 100).await? {
            match self.raise_due(due.id, due.contact, due.source).await {
                Ok(incident) => {
                    tracing::warn!(incident = %incident, contact = %due.contact, "the auditor raised a crisis flag that had not been");
                    raised += 1;
                }
                Err(PagingError::UnknownContact) => self.store().clear_flag_due(due.id).await?,
                Err(e) => {
                    tracing::error!(contact = %due.contact, error = %e, "a crisis flag is still due")
                }
            }
        }
        let found: HashSet<ContactId> = self
            .store()
            .imminent_without_incident(100)
            .await?
            .into_iter()
            .collect();
        let again: Vec<ContactId> = {
            let mut last = self
                .inner
                .unflagged
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let again = found.intersection(&last).copied().collect();
            *last = found;
            again
        };
        for contact in again {
            match self.crisis_flag(contact, FlagSource::Routing, None).await {
                Ok(incident) => {
                    tracing::warn!(incident = %incident, contact = %contact, "the auditor raised routing's crisis flag, which had not been");
                    raised += 1;
                }
                Err(e) => {
                    tracing::error!(contact = %contact, error = %e, "routing's crisis flag is still not raised")
                }
            }
        }
        if raised > 0 {
            self.inner
                .metrics
                .escalations_overdue_fixed
                .with_label_values(&["crisis_flag"])
                .inc_by(raised as u64);
        }
        Ok(raised)
    }

    /// Adds "joined the contact" to the contact's open incident, if it has one. Never fails the
    /// caller: a join must not be refused because paging's bookkeeping failed (it is logged).
    #[tracing::instrument(skip_all, fields(contact = %contact, who = %who))]
    pub async fn contact_joined(&self, contact: ContactId, who: OperatorId) {
        let result = async {
            let Some(open) = self.store().open_incident_of(contact).await? else {
                return Ok::<_, PagingError>(());
            };
            let effects = Effects::default().step(Some(who), Step::JoinedContact { who });
            self.change(&open, None, effects, Timestamp::now()).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "recording a join on the incident failed");
        }
    }

    /// Acknowledges: paging stops (pending pages are cancelled, the escalation timer disarmed)
    /// and the acknowledgement timer starts. Acknowledging again restarts that timer.
    #[tracing::instrument(skip_all, fields(incident = %id, who = %who))]
    pub async fn acknowledge(
        &self,
        id: IncidentId,
        who: OperatorId,
    ) -> Result<Incident, PagingError> {
        for _ in 0..CHANGE_RETRIES {
            let now = Timestamp::now();
            let incident = self.store().incident(id).await?;
            if incident.state == IncidentState::Resolved {
                return Err(PagingError::WrongState("the incident is resolved".into()));
            }
            let first = incident.state == IncidentState::Triggered;
            let mut updated = incident.clone();
            updated.state = IncidentState::Acknowledged;
            updated.acknowledged_at = Some(now);
            updated.acknowledged_by = Some(who);
            let mut effects = Effects::default().step(Some(who), Step::Acknowledged { by: who });
            effects.cancel_pending_deliveries = true;
            effects.timers = vec![
                TimerChange::Disarm(TimerKind::Escalate),
                TimerChange::Arm {
                    kind: TimerKind::AckTimeout,
                    due_at: now.plus_ms(self.ack_timeout_ms()),
                },
            ];
            if let Some(done) = self.change(&incident, Some(updated), effects, now).await? {
                if first {
                    self.inner
                        .metrics
                        .time_to_acknowledge_seconds
                        .with_label_values(&["high"])
                        .observe(now.since(incident.triggered_at) as f64 / 1000.0);
                }
                return Ok(done);
            }
        }
        Err(PagingError::Busy)
    }

    /// Resolves. If emergency services were contacted, help must have been confirmed to reach
    /// the person first (988's rule), or `unconfirmed_reason` must say why it cannot be.
    #[tracing::instrument(skip_all, fields(incident = %id, who = %who))]
    pub async fn resolve(
        &self,
        id: IncidentId,
        who: OperatorId,
        resolution: String,
        unconfirmed_reason: Option<String>,
    ) -> Result<Incident, PagingError> {
        model::check_text("resolution", &resolution, model::MAX_TEXT, true)
            .map_err(PagingError::Invalid)?;
        let unconfirmed_reason = unconfirmed_reason.filter(|r| !r.trim().is_empty());
        if let Some(r) = &unconfirmed_reason {
            model::check_text("unconfirmed_reason", r, model::MAX_TEXT, true)
                .map_err(PagingError::Invalid)?;
        }
        for _ in 0..CHANGE_RETRIES {
            let now = Timestamp::now();
            let incident = self.store().incident(id).await?;
            if incident.state == IncidentState::Resolved {
                return Err(PagingError::WrongState(
                    "the incident is already resolved".into(),
                ));
            }
            let timeline = self.store().timeline(id).await?;
            if help_unconfirmed(timeline.iter().map(|e| &e.step)) && unconfirmed_reason.is_none() {
                return Err(PagingError::Invalid(
                    "help_confirmed: emergency services were contacted; record that help reached \
                     the person (a help_confirmed step) before resolving, or give \
                     unconfirmed_reason"
                        .into(),
                ));
            }
            let mut updated = incident.clone();
            updated.state = IncidentState::Resolved;
            updated.resolved_at = Some(now);
            updated.resolved_by = Some(who);
            updated.resolution = Some(resolution.clone());
            let mut effects = Effects::default().step(
                Some(who),
                Step::Resolved {
                    by: who,
                    resolution: resolution.clone(),
                    unconfirmed_reason: unconfirmed_reason.clone(),
                },
            );
            effects.cancel_pending_deliveries = true;
            effects.timers = vec![
                TimerChange::Disarm(TimerKind::Escalate),
                TimerChange::Disarm(TimerKind::AckTimeout),
            ];
            if let Some(done) = self.change(&incident, Some(updated), effects, now).await? {
                return Ok(done);
            }
        }
        Err(PagingError::Busy)
    }

    /// Appends a step the crisis lead records (emergency services, help confirmed, referral…).
    #[tracing::instrument(skip_all, fields(incident = %id, who = %who, kind = step.kind()))]
    pub async fn add_step(
        &self,
        id: IncidentId,
        who: OperatorId,
        step: Step,
    ) -> Result<Incident, PagingError> {
        let incident = self.store().incident(id).await?;
        let effects = Effects::default().step(Some(who), step);
        self.change(&incident, None, effects, Timestamp::now())
            .await?
            .ok_or(PagingError::Busy)
    }

    pub async fn detail(&self, id: IncidentId) -> Result<IncidentDetail, PagingError> {
        let incident = self.store().incident(id).await?;
        let timeline = self.store().timeline(id).await?;
        Ok(IncidentDetail {
            incident: IncidentView::from(&incident),
            timeline,
        })
    }

    fn ack_timeout_ms(&self) -> i64 {
        i64::try_from(self.inner.settings.ack_timeout_ms).unwrap_or(i64::MAX)
    }

    /// Writes a change read from `read` (its version is the compare-and-set). `None` when
    /// someone changed the incident first (read again and retry).
    async fn change(
        &self,
        read: &Incident,
        update: Option<Incident>,
        effects: Effects,
        at: Timestamp,
    ) -> Result<Option<Incident>, PagingError> {
        let change = IncidentChange {
            incident: read.id,
            update,
            claim: None,
            effects,
            at,
        };
        match self.store().change_incident(&change).await? {
            ChangeOutcome::Applied(incident) => {
                self.after_change(&incident).await;
                Ok(Some(*incident))
            }
            ChangeOutcome::Stale | ChangeOutcome::TimerLost => Ok(None),
        }
    }

    /// After a committed change: wake the worker (timers or pages may be due), tell supervisors,
    /// crisis leads and the operator holding the contact, refresh the gauge.
    async fn after_change(&self, incident: &Incident) {
        self.inner.wake.notify_one();
        self.announce(incident);
        self.refresh_gauge().await;
    }

    fn announce(&self, incident: &Incident) {
        let frame = StaffEvent::IncidentChanged {
            incident: IncidentView::from(incident),
        };
        let hub = &self.inner.hub;
        hub.to_floor_watchers(&frame);
        if let Some(operator) = hub.members(incident.contact).and_then(|m| m.operator) {
            hub.to_staff(operator, StaffNotice::Frame(frame));
        }
    }

    async fn refresh_gauge(&self) {
        match self.store().count_incidents().await {
            Ok(counts) => {
                let gauge = &self.inner.metrics.incidents;
                for state in IncidentState::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| *s == state)
                        .map_or(0, |(_, n)| *n);
                    gauge.with_label_values(&[state.as_str()]).set(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "counting incidents failed"),
        }
    }

    /// Accounts, schedules and paging addresses, as resolving a level needs them.
    async fn directory(&self) -> Result<PageDirectory, StoreError> {
        let store = self.store();
        let accounts = store
            .accounts()
            .await?
            .into_iter()
            .map(|a| {
                (
                    a.id,
                    Person {
                        name: a.display_name,
                        role: a.role,
                        disabled: a.disabled,
                    },
                )
            })
            .collect();
        let schedules = store
            .schedules()
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut addresses: HashMap<OperatorId, Vec<PagingAddress>> = HashMap::new();
        for (id, address) in store.all_paging_addresses().await? {
            addresses.entry(id).or_default().push(address);
        }
        Ok(PageDirectory {
            directory: Directory {
                accounts,
                schedules,
            },
            addresses,
        })
    }

    /// Adds to `effects` what paging `level` of `cycle` takes: the steps, a console page and a
    /// page per personal address for each person, the global webhook, and the escalation timer
    /// (due at once when the level has nobody to page).
    #[allow(clippy::too_many_arguments)]
    fn page_level(
        &self,
        effects: &mut Effects,
        contact: ContactId,
        policy: &PolicyDefinition,
        level: u32,
        cycle: u32,
        cause: PageCause,
        at: Timestamp,
        directory: &PageDirectory,
    ) {
        let page = resolve_level(policy, level, cycle, contact.0, at, &directory.directory);
        for detail in page.problems {
            tracing::warn!(level = level + 1, %detail, "a paging target pages nobody");
            effects.steps.push(crate::store::paging::NewStep {
                actor: None,
                step: Step::NobodyToPage {
                    level: level + 1,
                    detail,
                },
            });
        }
        effects.steps.push(crate::store::paging::NewStep {
            actor: None,
            step: Step::Escalated {
                level: level + 1,
                cycle: cycle + 1,
                targets: page.targets.clone(),
                cause,
            },
        });
        let delivery = |channel, target, address| NewDelivery {
            channel,
            target,
            address,
            level,
            cycle,
        };
        for &target in &page.targets {
            effects
                .deliveries
                .push(delivery(PageChannel::Console, Some(target), None));
            for a in directory.addresses.get(&target).into_iter().flatten() {
                if self.inner.notifiers.has(a.channel) {
                    effects.deliveries.push(delivery(
                        a.channel,
                        Some(target),
                        Some(a.address.clone()),
                    ));
                }
            }
        }
        if let Some(url) = &self.inner.settings.webhook_url {
            effects
                .deliveries
                .push(delivery(PageChannel::Webhook, None, Some(url.clone())));
        }
        let wait = if page.targets.is_empty() {
            0
        } else {
            i64::try_from(policy.delay_ms(level)).unwrap_or(i64::MAX)
        };
        effects.timers.push(TimerChange::Arm {
            kind: TimerKind::Escalate,
            due_at: at.plus_ms(wait),
        });
    }
}

/// What resolving and addressing a page needs.
struct PageDirectory {
    directory: Directory,
    addresses: HashMap<OperatorId, Vec<PagingAddress>>,
}

/// True when the last emergency-services contact on the timeline has no confirmation after it.
fn help_unconfirmed<'a>(steps: impl Iterator<Item = &'a Step>) -> bool {
    let mut waiting = false;
    for step in steps {
        match step {
            Step::EmergencyServicesContacted { .. } => waiting = true,
            Step::HelpConfirmed { .. } => waiting = false,
            _ => {}
        }
    }
    waiting
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::EmergencyService;

    #[test]
    fn help_must_be_confirmed_after_the_last_call_for_help() {
        let called = Step::EmergencyServicesContacted {
            service: EmergencyService::Ambulance120,
            reference: None,
            detail: None,
        };
        let confirmed = Step::HelpConfirmed {
            how: "crew on scene".into(),
        };
        let outcome = Step::Outcome { text: "x".into() };
        assert!(!help_unconfirmed([&outcome].into_iter()));
        assert!(help_unconfirmed([&called].into_iter()));
        assert!(!help_unconfirmed([&called, &confirmed].into_iter()));
        assert!(help_unconfirmed([&called, &confirmed, &called].into_iter()));
    }
}
