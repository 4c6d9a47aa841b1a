//! The timer worker and the auditor.
//!
//! The worker sleeps until the next armed timer or pending page (or until this node arms one, or
//! `poll_ms` for other nodes'), fires due timers, and sends due pages, each on its own task.
//!
//! A timer fires by compare-and-set in the same transaction as what it causes: the claim
//! `UPDATE paging_timers SET fired_at = now WHERE id = ? AND generation = ? AND fired_at IS NULL`
//! commits together with the escalation, its steps, its pages and the next timer, or not at all.
//! Only the worker whose claim touched one row acts, so a restart or a second worker never pages
//! a level twice, and a crash between deciding and committing loses nothing: the timer is still
//! armed when the server comes back.
//!
//! A page is claimed for one attempt with a lease (its next attempt moves to the end of the
//! lease), sent, and its outcome recorded on the timeline; transient failures are retried with
//! exponential backoff and dead-lettered after `max_attempts`.
//!
//! The auditor runs every `audit_interval_ms`: any timer overdue by more than `audit_slack_ms` is
//! fired through the same compare-and-set, counted in `hotline_escalations_overdue_fixed_total`
//! and noted on the timeline. With a healthy worker it finds nothing.
//!
//! The same round raises crisis flags the live path missed: flags recorded as due (a note that
//! pages records its flag before the note itself) and still due after the slack, and routing's
//! flag for an open contact at imminent risk with no incident in two rounds in a row.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::Timestamp;
use crate::store::StoreError;
use crate::store::paging::{
    ChangeOutcome, Delivery, DeliveryResult, DeliveryState, DueTimer, Effects, IncidentChange,
    TimerClaim,
};

use super::model::{IncidentState, IncidentView, PageCause, PageOutcome, Step, TimerKind};
use super::notify::{NotifyError, Page};
use super::policy::Next;
use super::{CHANGE_RETRIES, Pager};

/// Timers or pages handled per round.
const BATCH: i64 = 100;
/// Pages being sent at once; more wait for a permit (their claim is taken only then).
const MAX_IN_FLIGHT: usize = 32;
/// How long a failing database pauses the worker.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// How long shutdown waits for pages in flight (their lease makes them retried after a restart).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long the worker waits for a send to finish when every permit is taken.
const SATURATED_PAUSE: Duration = Duration::from_millis(100);

impl Pager {
    /// Runs the timer worker and the auditor until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.refresh_gauge().await;
        tokio::join!(self.work(shutdown.clone()), self.audit_loop(shutdown));
    }

    async fn work(&self, shutdown: CancellationToken) {
        let sends = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let poll = Duration::from_millis(self.inner.settings.poll_ms.max(10));
        loop {
            let now = Timestamp::now();
            let mut pause = Duration::ZERO;
            if let Err(e) = self.fire_due(now).await {
                tracing::error!(error = %e, "firing paging timers failed");
                pause = ERROR_PAUSE;
            }
            match self.dispatch_due(now, &sends, &permits).await {
                Ok(Dispatched::All) => {}
                // Pages still due but every sender busy: look again when one may have finished.
                Ok(Dispatched::Saturated) => pause = pause.max(SATURATED_PAUSE),
                Err(e) => {
                    tracing::error!(error = %e, "dispatching pages failed");
                    pause = ERROR_PAUSE;
                }
            }
            let sleep = match self.store().next_paging_due().await {
                Ok(Some(next)) => {
                    let ms = u64::try_from(next.since(Timestamp::now())).unwrap_or(0);
                    Duration::from_millis(ms).min(poll)
                }
                Ok(None) => poll,
                Err(e) => {
                    tracing::error!(error = %e, "reading the next paging timer failed");
                    ERROR_PAUSE
                }
            };
            // Never spin: something due that could not be done now is looked at again shortly.
            let sleep = sleep.max(pause).max(Duration::from_millis(5));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        sends.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, sends.wait())
            .await
            .is_err()
        {
            tracing::warn!("pages still in flight at shutdown; their leases will retry them");
        }
    }

    async fn audit_loop(&self, shutdown: CancellationToken) {
        let every = Duration::from_millis(self.inner.settings.audit_interval_ms.max(100));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.audit(Timestamp::now()).await {
                tracing::error!(error = %e, "the paging auditor failed");
            }
        }
    }

    /// Fires every timer due at `now`. Returns how many this call fired. A timer that cannot
    /// fire does not hold back those due after it; the first such failure is returned.
    pub async fn fire_due(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut fired = 0;
        let mut failed = None;
        for timer in self.store().due_timers(now, BATCH).await? {
            match self.fire(timer, now, false).await {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(incident = %timer.incident, error = %e, "a paging timer could not fire");
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(fired), Err)
    }

    /// The auditor's round: fires every timer overdue at `now` by more than the slack, and
    /// raises crisis flags that were never raised. Returns how many it fired and raised (each
    /// one something the live path had missed).
    pub async fn audit(&self, now: Timestamp) -> Result<usize, StoreError> {
        let slack = i64::try_from(self.inner.settings.audit_slack_ms).unwrap_or(i64::MAX);
        let mut fixed = 0;
        for timer in self.store().due_timers(now.plus_ms(-slack), BATCH).await? {
            let fired = match self.fire(timer, now, true).await {
                Ok(fired) => fired,
                Err(e) => {
                    tracing::error!(incident = %timer.incident, error = %e, "the auditor could not fire a paging timer");
                    false
                }
            };
            if fired {
                tracing::warn!(
                    incident = %timer.incident,
                    kind = timer.kind.as_str(),
                    overdue_ms = now.since(timer.due_at),
                    "the auditor fired an overdue paging timer"
                );
                self.inner
                    .metrics
                    .escalations_overdue_fixed
                    .with_label_values(&[timer.kind.as_str()])
                    .inc();
                fixed += 1;
            }
        }
        Ok(fixed + self.raise_missed_flags(now.plus_ms(-slack)).await?)
    }

    /// Fires one timer: decides from the incident as read, then commits the decision together
    /// with the timer's claim. False if another worker (or a change) got there first.
    async fn fire(
        &self,
        timer: DueTimer,
        now: Timestamp,
        audited: bool,
    ) -> Result<bool, StoreError> {
        for _ in 0..CHANGE_RETRIES {
            let incident = self.store().incident(timer.incident).await?;
            let mut effects = Effects::default();
            if audited {
                effects = effects.step(
                    None,
                    Step::OverdueTimerFired {
                        timer: timer.kind,
                        overdue_ms: now.since(timer.due_at),
                    },
                );
            }
            let mut update = None;
            let mut paged_level = None;
            match (timer.kind, incident.state) {
                (TimerKind::Escalate, IncidentState::Triggered) => {
                    match incident.policy.next_after(incident.level, incident.cycle) {
                        Next::Page { level, cycle } => {
                            let directory = self.directory().await?;
                            self.page_level(
                                &mut effects,
                                incident.contact,
                                &incident.policy,
                                level,
                                cycle,
                                PageCause::NotAcknowledged,
                                now,
                                &directory,
                            );
                            let mut next = incident.clone();
                            next.level = level;
                            next.cycle = cycle;
                            update = Some(next);
                            paged_level = Some(level);
                        }
                        Next::Exhausted => {
                            tracing::error!(
                                incident = %incident.id,
                                "escalation policy exhausted: nobody acknowledged"
                            );
                            effects = effects.step(
                                None,
                                Step::PolicyExhausted {
                                    cycles: incident.cycle + 1,
                                },
                            );
                        }
                    }
                }
                (TimerKind::AckTimeout, IncidentState::Acknowledged) => {
                    effects = effects.step(
                        None,
                        Step::Retriggered {
                            ack_timeout_ms: self.inner.settings.ack_timeout_ms,
                        },
                    );
                    let directory = self.directory().await?;
                    self.page_level(
                        &mut effects,
                        incident.contact,
                        &incident.policy,
                        0,
                        0,
                        PageCause::AckTimeout,
                        now,
                        &directory,
                    );
                    let mut next = incident.clone();
                    next.state = IncidentState::Triggered;
                    next.level = 0;
                    next.cycle = 0;
                    next.triggered_at = now;
                    next.acknowledged_at = None;
                    next.acknowledged_by = None;
                    update = Some(next);
                    paged_level = Some(0);
                }
                // A timer left over from a state that has moved on: claim it so it is done.
                _ => {}
            }
            let change = IncidentChange {
                incident: incident.id,
                update,
                claim: Some(TimerClaim {
                    timer: timer.id,
                    generation: timer.generation,
                }),
                effects,
                at: now,
            };
            match self.store().change_incident(&change).await? {
                ChangeOutcome::Applied(done) => {
                    if let Some(level) = paged_level {
                        tracing::info!(incident = %done.id, level = level + 1, "paged");
                        self.inner
                            .metrics
                            .escalations
                            .with_label_values(&[&(level + 1).to_string()])
                            .inc();
                    }
                    self.after_change(&done).await;
                    return Ok(true);
                }
                ChangeOutcome::TimerLost => return Ok(false),
                ChangeOutcome::Stale => continue,
            }
        }
        tracing::warn!(incident = %timer.incident, "a paging timer kept losing to changes; later");
        Ok(false)
    }

    /// Claims every page due at `now` and sends each on its own task.
    async fn dispatch_due(
        &self,
        now: Timestamp,
        sends: &TaskTracker,
        permits: &Arc<Semaphore>,
    ) -> Result<Dispatched, StoreError> {
        let lease = i64::try_from(self.inner.settings.send_timeout_ms)
            .unwrap_or(i64::MAX / 4)
            .saturating_mul(2)
            .saturating_add(10_000);
        for due in self.store().due_deliveries(now, BATCH).await? {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                return Ok(Dispatched::Saturated); // the rest wait for a free sender
            };
            let Some(claimed) = self
                .store()
                .claim_delivery(due.id, due.generation, now.plus_ms(lease))
                .await?
            else {
                continue;
            };
            let pager = self.clone();
            sends.spawn(async move {
                pager.deliver(claimed).await;
                drop(permit);
            });
        }
        Ok(Dispatched::All)
    }

    /// One attempt at one claimed page, and its outcome on the timeline.
    async fn deliver(&self, delivery: Delivery) {
        let incident = match self.store().incident(delivery.incident).await {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "reading the incident of a page failed; retried later");
                return;
            }
        };
        let now = Timestamp::now();
        let result = if incident.state != IncidentState::Triggered {
            // Acknowledged or resolved between the claim and now: nothing to ring for.
            DeliveryResult {
                state: DeliveryState::Cancelled,
                next_attempt_at: None,
                step: None,
            }
        } else {
            let page = Page {
                delivery: delivery.id,
                attempt: delivery.attempts,
                incident: IncidentView::from(&incident),
                target: delivery.target,
                address: delivery.address.clone(),
                idempotency_key: Page::idempotency_key(incident.id, delivery.id),
            };
            let sent = match self.inner.notifiers.get(delivery.channel) {
                Some(notifier) => notifier.notify(&page).await,
                None => Err(NotifyError::Permanent(format!(
                    "the {} channel is not configured",
                    delivery.channel.as_str()
                ))),
            };
            self.outcome(&delivery, sent, Timestamp::now())
        };
        if let Some(Step::Paged { outcome, .. }) = &result.step {
            self.inner
                .metrics
                .notifications
                .with_label_values(&[delivery.channel.as_str(), outcome.as_str()])
                .inc();
            if *outcome == PageOutcome::DeadLettered {
                tracing::error!(
                    incident = %incident.id,
                    channel = delivery.channel.as_str(),
                    "a page was dead-lettered"
                );
            }
        }
        match self.store().finish_delivery(&delivery, &result, now).await {
            Ok(_) => {
                if result.state == DeliveryState::Pending {
                    self.inner.wake.notify_one();
                }
                if result.step.is_some() {
                    self.announce(&incident);
                }
            }
            Err(e) => tracing::error!(error = %e, "recording a page's outcome failed"),
        }
    }

    /// The next state of a delivery after an attempt, and the step that records it.
    fn outcome(
        &self,
        delivery: &Delivery,
        sent: Result<super::notify::Delivered, NotifyError>,
        now: Timestamp,
    ) -> DeliveryResult {
        let settings = &self.inner.settings;
        let (state, next_attempt_at, outcome, detail) = match sent {
            Ok(done) => (DeliveryState::Delivered, None, done.outcome, done.detail),
            Err(NotifyError::Transient(why)) if delivery.attempts < settings.max_attempts => {
                let wait = backoff_ms(
                    delivery.attempts,
                    settings.retry_base_ms,
                    settings.retry_max_ms,
                );
                (
                    DeliveryState::Pending,
                    Some(now.plus_ms(wait)),
                    PageOutcome::Retrying,
                    Some(why),
                )
            }
            Err(e) => (
                DeliveryState::Dead,
                None,
                PageOutcome::DeadLettered,
                Some(e.to_string()),
            ),
        };
        DeliveryResult {
            state,
            next_attempt_at,
            step: Some(Step::Paged {
                delivery: delivery.id,
                target: delivery.target,
                channel: delivery.channel,
                attempt: delivery.attempts,
                outcome,
                detail,
            }),
        }
    }
}

/// Whether a dispatch round sent everything that was due.
enum Dispatched {
    All,
    Saturated,
}

/// Wait after failed attempt `attempt` (1-based): `base`, `2·base`, `4·base`…, at most `max`.
pub fn backoff_ms(attempt: u32, base: u64, max: u64) -> i64 {
    let factor = 1u64 << attempt.saturating_sub(1).min(20);
    let ms = base.saturating_mul(factor).min(max);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let waits: Vec<i64> = (1..=6).map(|a| backoff_ms(a, 500, 5_000)).collect();
        assert_eq!(waits, vec![500, 1_000, 2_000, 4_000, 5_000, 5_000]);
        assert_eq!(backoff_ms(200, 1, u64::MAX), 1 << 20);
    }
}
