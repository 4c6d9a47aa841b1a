//! Paging storage: escalation policies, on-call schedules, paging addresses, incidents with their
//! append-only timeline, the durable timers and the notification outbox. One SQL body for both
//! dialects ([`impl_paging_store!`]).
//!
//! Every change to an incident is one transaction that compare-and-sets the incident's `version`
//! (and, when a timer fired it, the timer's `generation`), then appends the timeline steps, arms
//! or disarms timers and queues the deliveries the change calls for. So a page exists in the
//! outbox exactly when the escalation that asked for it committed, and a timer that two workers
//! (or a worker before and after a restart) both see fires once: only the row-count-1 claim acts.
//!
//! What it must never do: decide whom to page (that is `paging`), log addresses or reasons.

use async_trait::async_trait;

use super::{StoreError, StoreResult};
use crate::domain::{ContactId, OperatorId, Timestamp};
use crate::paging::model::{
    FlagSource, Incident, IncidentId, IncidentState, PageChannel, PolicyId, ScheduleId, Step,
    TimelineEntry, TimerKind, Urgency,
};
use crate::paging::policy::{EscalationPolicy, PolicyDefinition};
use crate::paging::schedule::{Schedule, ScheduleDefinition};

/// Where a person is paged besides the console (one address per channel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagingAddress {
    pub channel: PageChannel,
    pub address: String,
}

/// A new incident, `triggered` at level 0 of pass 0.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    pub contact: ContactId,
    pub urgency: Urgency,
    pub source: FlagSource,
    pub reason: Option<String>,
    pub policy_id: Option<PolicyId>,
    pub policy: PolicyDefinition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    pub actor: Option<OperatorId>,
    pub step: Step,
}

/// A page to send: queued `pending`, due at once.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub channel: PageChannel,
    /// `None` for the global webhook.
    pub target: Option<OperatorId>,
    /// Webhook URL or e-mail address, as it was when the level was paged.
    pub address: Option<String>,
    pub level: u32,
    pub cycle: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerChange {
    /// (Re-)arm with a new generation, due at this time.
    Arm { kind: TimerKind, due_at: Timestamp },
    /// Bump the generation and clear the due time: any worker holding the old one loses.
    Disarm(TimerKind),
}

/// What a change writes besides the incident row, in the same transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub steps: Vec<NewStep>,
    pub deliveries: Vec<NewDelivery>,
    pub timers: Vec<TimerChange>,
    /// Cancel the incident's pending deliveries (acknowledged or resolved: stop ringing). Done
    /// before this change's own deliveries are queued.
    pub cancel_pending_deliveries: bool,
}

impl Effects {
    pub fn step(mut self, actor: Option<OperatorId>, step: Step) -> Self {
        self.steps.push(NewStep { actor, step });
        self
    }
}

/// The claim of a due timer: `generation` as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerClaim {
    pub timer: i64,
    pub generation: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChange {
    pub incident: IncidentId,
    /// The incident's new state, written only if its `version` is still the one read; `None`
    /// changes no field (steps only, or a claim that finds nothing to do).
    pub update: Option<Incident>,
    pub claim: Option<TimerClaim>,
    pub effects: Effects,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    Applied(Box<Incident>),
    /// Someone changed the incident since it was read: nothing was written; read and retry.
    Stale,
    /// The timer was fired, re-armed or disarmed by someone else: nothing was written.
    TimerLost,
}

/// A timer that is armed and due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueTimer {
    pub id: i64,
    pub incident: IncidentId,
    pub kind: TimerKind,
    pub due_at: Timestamp,
    pub generation: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Out of attempts, or refused for good.
    Dead,
    /// The incident was acknowledged or resolved before it went out.
    Cancelled,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        use DeliveryState::*;
        [Pending, Delivered, Dead, Cancelled]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One page in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub incident: IncidentId,
    pub channel: PageChannel,
    pub target: Option<OperatorId>,
    pub address: Option<String>,
    pub level: u32,
    pub cycle: u32,
    pub state: DeliveryState,
    /// Attempts started so far (a claim counts one).
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub generation: i64,
    pub created_at: Timestamp,
}

/// How an attempt ended: the delivery's next state and the timeline step that tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryResult {
    pub state: DeliveryState,
    pub next_attempt_at: Option<Timestamp>,
    pub step: Option<Step>,
}

/// A crisis flag recorded as due (see [`PagingStore::put_flag_due`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DueFlag {
    pub id: i64,
    pub contact: ContactId,
    pub source: FlagSource,
    pub at: Timestamp,
}

#[async_trait]
pub trait PagingStore {
    // paging addresses
    async fn paging_addresses(&self, account: OperatorId) -> StoreResult<Vec<PagingAddress>>;
    async fn all_paging_addresses(&self) -> StoreResult<Vec<(OperatorId, PagingAddress)>>;
    /// Replaces an account's addresses. `NotFound` for an unknown account.
    async fn set_paging_addresses(
        &self,
        account: OperatorId,
        addresses: &[PagingAddress],
    ) -> StoreResult<()>;

    /// Gives the account a new calendar feed token (by its hash), replacing any it had.
    /// `NotFound` for an unknown account.
    async fn set_calendar_feed(
        &self,
        account: OperatorId,
        token_hash: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    async fn delete_calendar_feed(&self, account: OperatorId) -> StoreResult<()>;
    /// The account a calendar feed token (by its hash) belongs to.
    async fn calendar_feed_account(&self, token_hash: &str) -> StoreResult<Option<OperatorId>>;

    // escalation policies. Saving a default policy clears the flag on the others; a policy naming
    // an unknown account or schedule is `NotFound`; a taken name is `Conflict`.
    async fn create_policy(
        &self,
        definition: &PolicyDefinition,
        at: Timestamp,
    ) -> StoreResult<EscalationPolicy>;
    async fn update_policy(
        &self,
        id: PolicyId,
        definition: &PolicyDefinition,
        at: Timestamp,
    ) -> StoreResult<EscalationPolicy>;
    async fn policy(&self, id: PolicyId) -> StoreResult<EscalationPolicy>;
    async fn policies(&self) -> StoreResult<Vec<EscalationPolicy>>;
    async fn default_policy(&self) -> StoreResult<Option<EscalationPolicy>>;
    async fn delete_policy(&self, id: PolicyId) -> StoreResult<()>;

    // schedules. An unknown account is `NotFound`; deleting a schedule a policy pages is `Conflict`.
    async fn create_schedule(
        &self,
        definition: &ScheduleDefinition,
        at: Timestamp,
    ) -> StoreResult<Schedule>;
    async fn update_schedule(
        &self,
        id: ScheduleId,
        definition: &ScheduleDefinition,
        at: Timestamp,
    ) -> StoreResult<Schedule>;
    async fn schedule(&self, id: ScheduleId) -> StoreResult<Schedule>;
    async fn schedules(&self) -> StoreResult<Vec<Schedule>>;
    async fn delete_schedule(&self, id: ScheduleId) -> StoreResult<()>;

    // incidents
    /// Opens an incident with its first effects, in one transaction. `Conflict` when the contact
    /// already has an open incident, `NotFound` for an unknown contact.
    async fn open_incident(
        &self,
        incident: &NewIncident,
        effects: &Effects,
        at: Timestamp,
    ) -> StoreResult<Incident>;
    async fn open_incident_of(&self, contact: ContactId) -> StoreResult<Option<Incident>>;
    /// Records a crisis flag as due before the fact that raises it is stored; returns its id.
    async fn put_flag_due(
        &self,
        contact: ContactId,
        source: FlagSource,
        at: Timestamp,
    ) -> StoreResult<i64>;
    /// Flags recorded before `before` and not cleared, oldest first.
    async fn flags_due(&self, before: Timestamp, limit: i64) -> StoreResult<Vec<DueFlag>>;
    /// The flag is raised (or will never be): forget it.
    async fn clear_flag_due(&self, id: i64) -> StoreResult<()>;
    /// Open contacts at imminent risk that have never had an incident, oldest first.
    async fn imminent_without_incident(&self, limit: i64) -> StoreResult<Vec<ContactId>>;
    /// The contact's newest incident in any state.
    async fn latest_incident_of(&self, contact: ContactId) -> StoreResult<Option<Incident>>;
    async fn incident(&self, id: IncidentId) -> StoreResult<Incident>;
    /// Newest first, in any of `states`.
    async fn incidents(&self, states: &[IncidentState], limit: i64) -> StoreResult<Vec<Incident>>;
    async fn timeline(&self, id: IncidentId) -> StoreResult<Vec<TimelineEntry>>;
    async fn change_incident(&self, change: &IncidentChange) -> StoreResult<ChangeOutcome>;
    async fn count_incidents(&self) -> StoreResult<Vec<(IncidentState, i64)>>;

    // durable timers and the outbox
    /// Armed, unfired timers due at or before `due_by`, oldest first.
    async fn due_timers(&self, due_by: Timestamp, limit: i64) -> StoreResult<Vec<DueTimer>>;
    /// The earliest armed timer or pending delivery.
    async fn next_paging_due(&self) -> StoreResult<Option<Timestamp>>;
    async fn due_deliveries(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<Delivery>>;
    /// Claims a pending delivery read at `generation` for one attempt: its next attempt moves
    /// to `lease_until` (so that it is retried if this worker dies). `None` if someone else won.
    async fn claim_delivery(
        &self,
        id: i64,
        generation: i64,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Delivery>>;
    /// Records an attempt's outcome (if the claim still holds) and its timeline step (always:
    /// the attempt happened). True if the state was written.
    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        result: &DeliveryResult,
        at: Timestamp,
    ) -> StoreResult<bool>;
    async fn deliveries_of(&self, incident: IncidentId) -> StoreResult<Vec<Delivery>>;
}

// ---- row parsing, shared by both dialects ----

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn unsigned(what: &str, v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|e| corrupt(what, e))
}

pub(crate) fn urgency_str(u: Urgency) -> &'static str {
    match u {
        Urgency::High => "high",
        Urgency::Low => "low",
    }
}

/// A foreign-key violation when deleting is a reference that still exists: `Conflict`.
pub(crate) fn delete_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation
    {
        return StoreError::Conflict;
    }
    super::sql::error(e)
}

macro_rules! incident_columns {
    () => {
        "id, contact_id, state, urgency, source, reason, policy_id, policy, level, cycle, \
         created_at, triggered_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, \
         resolution, version"
    };
}
macro_rules! delivery_columns {
    () => {
        "id, incident_id, channel, target_id, address, level, cycle, state, attempts, \
         next_attempt_at, generation, created_at"
    };
}
pub(crate) use {delivery_columns, incident_columns};

#[derive(sqlx::FromRow)]
pub(crate) struct IncidentRow {
    id: i64,
    contact_id: i64,
    state: String,
    urgency: String,
    source: String,
    reason: Option<String>,
    policy_id: Option<i64>,
    policy: String,
    level: i64,
    cycle: i64,
    created_at: i64,
    triggered_at: i64,
    acknowledged_at: Option<i64>,
    acknowledged_by: Option<i64>,
    resolved_at: Option<i64>,
    resolved_by: Option<i64>,
    resolution: Option<String>,
    version: i64,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = StoreError;
    fn try_from(r: IncidentRow) -> StoreResult<Incident> {
        Ok(Incident {
            id: IncidentId(r.id),
            contact: ContactId(r.contact_id),
            state: IncidentState::parse(&r.state)
                .ok_or_else(|| corrupt("incidents.state", &r.state))?,
            urgency: match r.urgency.as_str() {
                "high" => Urgency::High,
                "low" => Urgency::Low,
                other => return Err(corrupt("incidents.urgency", other)),
            },
            source: from_json("incidents.source", &r.source)?,
            reason: r.reason,
            policy_id: r.policy_id.map(PolicyId),
            policy: from_json("incidents.policy", &r.policy)?,
            level: unsigned("incidents.level", r.level)?,
            cycle: unsigned("incidents.cycle", r.cycle)?,
            created_at: Timestamp(r.created_at),
            triggered_at: Timestamp(r.triggered_at),
            acknowledged_at: r.acknowledged_at.map(Timestamp),
            acknowledged_by: r.acknowledged_by.map(OperatorId),
            resolved_at: r.resolved_at.map(Timestamp),
            resolved_by: r.resolved_by.map(OperatorId),
            resolution: r.resolution,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    id: i64,
    incident_id: i64,
    channel: String,
    target_id: Option<i64>,
    address: Option<String>,
    level: i64,
    cycle: i64,
    state: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    generation: i64,
    created_at: i64,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> StoreResult<Delivery> {
        Ok(Delivery {
            id: r.id,
            incident: IncidentId(r.incident_id),
            channel: PageChannel::parse(&r.channel)
                .ok_or_else(|| corrupt("page_deliveries.channel", &r.channel))?,
            target: r.target_id.map(OperatorId),
            address: r.address,
            level: unsigned("page_deliveries.level", r.level)?,
            cycle: unsigned("page_deliveries.cycle", r.cycle)?,
            state: DeliveryState::parse(&r.state)
                .ok_or_else(|| corrupt("page_deliveries.state", &r.state))?,
            attempts: unsigned("page_deliveries.attempts", r.attempts)?,
            next_attempt_at: r.next_attempt_at.map(Timestamp),
            generation: r.generation,
            created_at: Timestamp(r.created_at),
        })
    }
}

pub(crate) fn timeline_entry(
    (id, at, actor, data): (i64, i64, Option<i64>, String),
) -> StoreResult<TimelineEntry> {
    Ok(TimelineEntry {
        id,
        at: Timestamp(at),
        actor: actor.map(OperatorId),
        step: from_json("incident_steps.data", &data)?,
    })
}

pub(crate) fn due_timer(
    (id, incident, kind, due_at, generation): (i64, i64, String, i64, i64),
) -> StoreResult<DueTimer> {
    Ok(DueTimer {
        id,
        incident: IncidentId(incident),
        kind: TimerKind::parse(&kind).ok_or_else(|| corrupt("paging_timers.kind", &kind))?,
        due_at: Timestamp(due_at),
        generation,
    })
}

pub(crate) fn paging_address(channel: &str, address: String) -> StoreResult<PagingAddress> {
    Ok(PagingAddress {
        channel: PageChannel::parse(channel)
            .ok_or_else(|| corrupt("paging_addresses.channel", channel))?,
        address,
    })
}

/// The three states of a state filter, padded by repeating one (the query binds exactly three).
pub(crate) fn three_states(states: &[IncidentState]) -> [&'static str; 3] {
    let mut out = [""; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = states.get(i).or(states.last()).map_or("", |s| s.as_str());
    }
    out
}

/// Writes a change's effects inside the open transaction `$tx`, for incident `$incident` at `$at`.
macro_rules! apply_effects {
    ($tx:ident, $incident:expr, $effects:expr, $at:expr) => {{
        let incident: i64 = $incident;
        let effects: &$crate::store::paging::Effects = $effects;
        let at: i64 = $at;
        if effects.cancel_pending_deliveries {
            sqlx::query(
                "UPDATE page_deliveries SET state = 'cancelled', next_attempt_at = NULL, \
                 generation = generation + 1 WHERE incident_id = $1 AND state = 'pending'",
            )
            .bind(incident)
            .execute(&mut *$tx)
            .await
            .map_err(sql::error)?;
        }
        for timer in &effects.timers {
            match *timer {
                TimerChange::Arm { kind, due_at } => {
                    sqlx::query(
                        "INSERT INTO paging_timers (incident_id, kind, due_at, generation) \
                         VALUES ($1, $2, $3, 1) \
                         ON CONFLICT (incident_id, kind) DO UPDATE SET \
                         due_at = excluded.due_at, \
                         generation = paging_timers.generation + 1, fired_at = NULL",
                    )
                    .bind(incident)
                    .bind(kind.as_str())
                    .bind(due_at.0)
                    .execute(&mut *$tx)
                    .await
                    .map_err(sql::error)?;
                }
                TimerChange::Disarm(kind) => {
                    sqlx::query(
                        "UPDATE paging_timers SET due_at = NULL, generation = generation + 1 \
                         WHERE incident_id = $1 AND kind = $2",
                    )
                    .bind(incident)
                    .bind(kind.as_str())
                    .execute(&mut *$tx)
                    .await
                    .map_err(sql::error)?;
                }
            }
        }
        for step in &effects.steps {
            sqlx::query(
                "INSERT INTO incident_steps (incident_id, at, kind, actor_id, data) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(incident)
            .bind(at)
            .bind(step.step.kind())
            .bind(step.actor.map(|a| a.0))
            .bind(sql::to_json("incident_steps.data", &step.step)?)
            .execute(&mut *$tx)
            .await
            .map_err(sql::error)?;
        }
        for d in &effects.deliveries {
            sqlx::query(
                "INSERT INTO page_deliveries (incident_id, channel, target_id, address, level, \
                 cycle, state, attempts, next_attempt_at, generation, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, 0, $7)",
            )
            .bind(incident)
            .bind(d.channel.as_str())
            .bind(d.target.map(|t| t.0))
            .bind(d.address.as_deref())
            .bind(i64::from(d.level))
            .bind(i64::from(d.cycle))
            .bind(at)
            .execute(&mut *$tx)
            .await
            .map_err(sql::error)?;
        }
    }};
}
pub(crate) use apply_effects;

/// Writes the foreign-key rows of a policy (`escalation_policy_refs`) inside `$tx`.
macro_rules! insert_policy_refs {
    ($tx:ident, $policy:expr, $definition:expr) => {{
        let (people, schedules) = $definition.references();
        for person in people {
            sqlx::query(
                "INSERT INTO escalation_policy_refs (policy_id, account_id) VALUES ($1, $2)",
            )
            .bind($policy)
            .bind(person.0)
            .execute(&mut *$tx)
            .await
            .map_err(sql::error)?;
        }
        for schedule in schedules {
            sqlx::query(
                "INSERT INTO escalation_policy_refs (policy_id, schedule_id) VALUES ($1, $2)",
            )
            .bind($policy)
            .bind(schedule.0)
            .execute(&mut *$tx)
            .await
            .map_err(sql::error)?;
        }
    }};
}
pub(crate) use insert_policy_refs;

/// `impl PagingStore for $store` over its `pool` field, from the one body of SQL below.
macro_rules! impl_paging_store {
    ($store:ty, dialect = $dialect:literal) => {
        const _: () = {
            use $crate::domain::{ContactId, OperatorId, Timestamp};
            use $crate::paging::model::{
                FlagSource, Incident, IncidentId, IncidentState, PolicyId, ScheduleId,
                TimelineEntry,
            };
            use $crate::paging::policy::{EscalationPolicy, PolicyDefinition};
            use $crate::paging::schedule::{Schedule, ScheduleDefinition};
            use $crate::store::paging::{
                self as paging, ChangeOutcome, Delivery, DeliveryResult, DueTimer, Effects,
                IncidentChange, NewIncident, PagingAddress, PagingStore, TimerChange,
            };
            use $crate::store::{StoreError, StoreResult, sql};

            #[async_trait::async_trait]
            impl PagingStore for $store {
                // ---- paging addresses ----

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn paging_addresses(
                    &self,
                    account: OperatorId,
                ) -> StoreResult<Vec<PagingAddress>> {
                    let rows: Vec<(String, String)> = sqlx::query_as(
                        "SELECT channel, address FROM paging_addresses WHERE account_id = $1 \
                         ORDER BY channel",
                    )
                    .bind(account.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(c, a)| paging::paging_address(&c, a))
                        .collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn all_paging_addresses(
                    &self,
                ) -> StoreResult<Vec<(OperatorId, PagingAddress)>> {
                    let rows: Vec<(i64, String, String)> = sqlx::query_as(
                        "SELECT account_id, channel, address FROM paging_addresses \
                         ORDER BY account_id, channel",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(id, c, a)| Ok((OperatorId(id), paging::paging_address(&c, a)?)))
                        .collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn set_calendar_feed(
                    &self,
                    account: OperatorId,
                    token_hash: &str,
                    at: Timestamp,
                ) -> StoreResult<()> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    sql::clear_account_rows!(tx, "calendar_feeds", account);
                    sqlx::query(
                        "INSERT INTO calendar_feeds (token_hash, account_id, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(token_hash)
                    .bind(account.0)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    tx.commit().await.map_err(sql::error)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn delete_calendar_feed(&self, account: OperatorId) -> StoreResult<()> {
                    sqlx::query("DELETE FROM calendar_feeds WHERE account_id = $1")
                        .bind(account.0)
                        .execute(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn calendar_feed_account(
                    &self,
                    token_hash: &str,
                ) -> StoreResult<Option<OperatorId>> {
                    let id: Option<i64> = sqlx::query_scalar(
                        "SELECT account_id FROM calendar_feeds WHERE token_hash = $1",
                    )
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(id.map(OperatorId))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn set_paging_addresses(
                    &self,
                    account: OperatorId,
                    addresses: &[PagingAddress],
                ) -> StoreResult<()> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    sql::clear_account_rows!(tx, "paging_addresses", account);
                    for a in addresses {
                        sqlx::query(
                            "INSERT INTO paging_addresses (account_id, channel, address) \
                             VALUES ($1, $2, $3)",
                        )
                        .bind(account.0)
                        .bind(a.channel.as_str())
                        .bind(&a.address)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    tx.commit().await.map_err(sql::error)
                }

                // ---- escalation policies ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn create_policy(
                    &self,
                    definition: &PolicyDefinition,
                    at: Timestamp,
                ) -> StoreResult<EscalationPolicy> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    if definition.default_for_crisis {
                        sqlx::query(
                            "UPDATE escalation_policies SET is_default = $1 WHERE is_default = $2",
                        )
                        .bind(false)
                        .bind(true)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO escalation_policies (name, definition, is_default, \
                         updated_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(&definition.name)
                    .bind(sql::to_json("escalation_policies.definition", definition)?)
                    .bind(definition.default_for_crisis)
                    .bind(at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    paging::insert_policy_refs!(tx, id, definition);
                    tx.commit().await.map_err(sql::error)?;
                    Ok(EscalationPolicy {
                        id: PolicyId(id),
                        definition: definition.clone(),
                        updated_at: at,
                    })
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, policy = %id))]
                async fn update_policy(
                    &self,
                    id: PolicyId,
                    definition: &PolicyDefinition,
                    at: Timestamp,
                ) -> StoreResult<EscalationPolicy> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let done = sqlx::query(
                        "UPDATE escalation_policies SET name = $2, definition = $3, \
                         is_default = $4, updated_at = $5 WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(&definition.name)
                    .bind(sql::to_json("escalation_policies.definition", definition)?)
                    .bind(false)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    sql::touched(done.rows_affected())?;
                    if definition.default_for_crisis {
                        // This row was cleared above; clear the others, then set this one: the
                        // unique index on the flag never sees two.
                        sqlx::query(
                            "UPDATE escalation_policies SET is_default = $1 WHERE is_default = $2",
                        )
                        .bind(false)
                        .bind(true)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        sqlx::query("UPDATE escalation_policies SET is_default = $2 WHERE id = $1")
                            .bind(id.0)
                            .bind(true)
                            .execute(&mut *tx)
                            .await
                            .map_err(sql::error)?;
                    }
                    sqlx::query("DELETE FROM escalation_policy_refs WHERE policy_id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    paging::insert_policy_refs!(tx, id.0, definition);
                    tx.commit().await.map_err(sql::error)?;
                    Ok(EscalationPolicy {
                        id,
                        definition: definition.clone(),
                        updated_at: at,
                    })
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, policy = %id))]
                async fn policy(&self, id: PolicyId) -> StoreResult<EscalationPolicy> {
                    let (id, definition, is_default, updated_at): (i64, String, bool, i64) =
                        sqlx::query_as(
                            "SELECT id, definition, is_default, updated_at \
                             FROM escalation_policies WHERE id = $1",
                        )
                        .bind(id.0)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    let mut definition: PolicyDefinition =
                        paging::from_json("escalation_policies.definition", &definition)?;
                    definition.default_for_crisis = is_default;
                    Ok(EscalationPolicy {
                        id: PolicyId(id),
                        definition,
                        updated_at: Timestamp(updated_at),
                    })
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn policies(&self) -> StoreResult<Vec<EscalationPolicy>> {
                    let rows: Vec<(i64, String, bool, i64)> = sqlx::query_as(
                        "SELECT id, definition, is_default, updated_at FROM escalation_policies \
                         ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(id, definition, is_default, updated_at)| {
                            let mut definition: PolicyDefinition = paging::from_json(
                                "escalation_policies.definition",
                                &definition,
                            )?;
                            definition.default_for_crisis = is_default;
                            Ok(EscalationPolicy {
                                id: PolicyId(id),
                                definition,
                                updated_at: Timestamp(updated_at),
                            })
                        })
                        .collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn default_policy(&self) -> StoreResult<Option<EscalationPolicy>> {
                    let id: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM escalation_policies WHERE is_default = $1",
                    )
                    .bind(true)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    match id {
                        Some(id) => self.policy(PolicyId(id)).await.map(Some),
                        None => Ok(None),
                    }
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, policy = %id))]
                async fn delete_policy(&self, id: PolicyId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM escalation_policies WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(paging::delete_error)?;
                    sql::touched(done.rows_affected())
                }

                // ---- schedules ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn create_schedule(
                    &self,
                    definition: &ScheduleDefinition,
                    at: Timestamp,
                ) -> StoreResult<Schedule> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO schedules (name, definition, updated_at) \
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(&definition.name)
                    .bind(sql::to_json("schedules.definition", definition)?)
                    .bind(at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    for person in definition.people() {
                        sqlx::query(
                            "INSERT INTO schedule_people (schedule_id, account_id) VALUES ($1, $2)",
                        )
                        .bind(id)
                        .bind(person.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    tx.commit().await.map_err(sql::error)?;
                    Ok(Schedule {
                        id: ScheduleId(id),
                        definition: definition.clone(),
                        updated_at: at,
                    })
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, schedule = %id))]
                async fn update_schedule(
                    &self,
                    id: ScheduleId,
                    definition: &ScheduleDefinition,
                    at: Timestamp,
                ) -> StoreResult<Schedule> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let done = sqlx::query(
                        "UPDATE schedules SET name = $2, definition = $3, updated_at = $4 \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(&definition.name)
                    .bind(sql::to_json("schedules.definition", definition)?)
                    .bind(at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    sql::touched(done.rows_affected())?;
                    sqlx::query("DELETE FROM schedule_people WHERE schedule_id = $1")
                        .bind(id.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    for person in definition.people() {
                        sqlx::query(
                            "INSERT INTO schedule_people (schedule_id, account_id) VALUES ($1, $2)",
                        )
                        .bind(id.0)
                        .bind(person.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    tx.commit().await.map_err(sql::error)?;
                    Ok(Schedule {
                        id,
                        definition: definition.clone(),
                        updated_at: at,
                    })
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, schedule = %id))]
                async fn schedule(&self, id: ScheduleId) -> StoreResult<Schedule> {
                    let (id, definition, updated_at): (i64, String, i64) = sqlx::query_as(
                        "SELECT id, definition, updated_at FROM schedules WHERE id = $1",
                    )
                    .bind(id.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(Schedule {
                        id: ScheduleId(id),
                        definition: paging::from_json("schedules.definition", &definition)?,
                        updated_at: Timestamp(updated_at),
                    })
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn schedules(&self) -> StoreResult<Vec<Schedule>> {
                    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                        "SELECT id, definition, updated_at FROM schedules ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(id, definition, updated_at)| {
                            Ok(Schedule {
                                id: ScheduleId(id),
                                definition: paging::from_json(
                                    "schedules.definition",
                                    &definition,
                                )?,
                                updated_at: Timestamp(updated_at),
                            })
                        })
                        .collect()
                }

                /// A policy that pages the schedule holds a foreign key to it: `Conflict`.
                #[tracing::instrument(skip_all, fields(db = $dialect, schedule = %id))]
                async fn delete_schedule(&self, id: ScheduleId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM schedules WHERE id = $1")
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(paging::delete_error)?;
                    sql::touched(done.rows_affected())
                }

                // ---- incidents ----

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %incident.contact))]
                async fn open_incident(
                    &self,
                    incident: &NewIncident,
                    effects: &Effects,
                    at: Timestamp,
                ) -> StoreResult<Incident> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    // The partial unique index `incidents_open_by_contact` refuses a second
                    // open incident for the contact: `Conflict`.
                    let row: paging::IncidentRow = sqlx::query_as(concat!(
                        "INSERT INTO incidents (contact_id, state, urgency, source, reason, \
                         policy_id, policy, level, cycle, created_at, triggered_at, version) \
                         VALUES ($1, 'triggered', $2, $3, $4, $5, $6, 0, 0, $7, $7, 0) \
                         RETURNING ",
                        paging::incident_columns!()
                    ))
                    .bind(incident.contact.0)
                    .bind(paging::urgency_str(incident.urgency))
                    .bind(sql::to_json("incidents.source", &incident.source)?)
                    .bind(incident.reason.as_deref())
                    .bind(incident.policy_id.map(|p| p.0))
                    .bind(sql::to_json("incidents.policy", &incident.policy)?)
                    .bind(at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    let opened: Incident = row.try_into()?;
                    paging::apply_effects!(tx, opened.id.0, effects, at.0);
                    tx.commit().await.map_err(sql::error)?;
                    Ok(opened)
                }

                /// The `IN` list is the partial index's, word for word.
                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn open_incident_of(
                    &self,
                    contact: ContactId,
                ) -> StoreResult<Option<Incident>> {
                    let row: Option<paging::IncidentRow> = sqlx::query_as(concat!(
                        "SELECT ", paging::incident_columns!(), " FROM incidents \
                         WHERE contact_id = $1 AND state IN ('triggered', 'acknowledged')"
                    ))
                    .bind(contact.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.map(Incident::try_from).transpose()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn put_flag_due(
                    &self,
                    contact: ContactId,
                    source: FlagSource,
                    at: Timestamp,
                ) -> StoreResult<i64> {
                    sqlx::query_scalar(
                        "INSERT INTO crisis_flags_due (contact_id, source, created_at) \
                         VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(contact.0)
                    .bind(sql::to_json("crisis_flags_due.source", &source)?)
                    .bind(at.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn flags_due(
                    &self,
                    before: Timestamp,
                    limit: i64,
                ) -> StoreResult<Vec<paging::DueFlag>> {
                    let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
                        "SELECT id, contact_id, source, created_at FROM crisis_flags_due \
                         WHERE created_at < $1 ORDER BY id LIMIT $2",
                    )
                    .bind(before.0)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(id, contact, source, at)| {
                            Ok(paging::DueFlag {
                                id,
                                contact: ContactId(contact),
                                source: sql::from_json("crisis_flags_due.source", &source)?,
                                at: Timestamp(at),
                            })
                        })
                        .collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn clear_flag_due(&self, id: i64) -> StoreResult<()> {
                    sqlx::query("DELETE FROM crisis_flags_due WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(())
                }

                /// The `IN` list is the `contacts_open` index's states that hold a live contact.
                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn imminent_without_incident(&self, limit: i64) -> StoreResult<Vec<ContactId>> {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "SELECT c.id FROM contacts c \
                         WHERE c.state IN ('waiting', 'offered', 'assigned') AND c.risk = 'imminent' \
                         AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.contact_id = c.id) \
                         ORDER BY c.id LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(ids.into_iter().map(ContactId).collect())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn latest_incident_of(
                    &self,
                    contact: ContactId,
                ) -> StoreResult<Option<Incident>> {
                    let row: Option<paging::IncidentRow> = sqlx::query_as(concat!(
                        "SELECT ", paging::incident_columns!(), " FROM incidents \
                         WHERE contact_id = $1 ORDER BY id DESC LIMIT 1"
                    ))
                    .bind(contact.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.map(Incident::try_from).transpose()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, incident = %id))]
                async fn incident(&self, id: IncidentId) -> StoreResult<Incident> {
                    let row: paging::IncidentRow = sqlx::query_as(concat!(
                        "SELECT ", paging::incident_columns!(), " FROM incidents WHERE id = $1"
                    ))
                    .bind(id.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn incidents(
                    &self,
                    states: &[IncidentState],
                    limit: i64,
                ) -> StoreResult<Vec<Incident>> {
                    let [a, b, c] = paging::three_states(states);
                    let rows: Vec<paging::IncidentRow> = sqlx::query_as(concat!(
                        "SELECT ", paging::incident_columns!(), " FROM incidents \
                         WHERE state IN ($1, $2, $3) ORDER BY id DESC LIMIT $4"
                    ))
                    .bind(a)
                    .bind(b)
                    .bind(c)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, incident = %id))]
                async fn timeline(&self, id: IncidentId) -> StoreResult<Vec<TimelineEntry>> {
                    let rows: Vec<(i64, i64, Option<i64>, String)> = sqlx::query_as(
                        "SELECT id, at, actor_id, data FROM incident_steps \
                         WHERE incident_id = $1 ORDER BY id",
                    )
                    .bind(id.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter().map(paging::timeline_entry).collect()
                }

                /// The incident row is written first (the compare-and-set on `version`, which
                /// also takes its row lock on PostgreSQL and the write lock on SQLite), then the
                /// timer's claim, then the effects.
                #[tracing::instrument(skip_all, fields(db = $dialect, incident = %change.incident))]
                async fn change_incident(
                    &self,
                    change: &IncidentChange,
                ) -> StoreResult<ChangeOutcome> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let mut written: Option<Incident> = None;
                    if let Some(i) = &change.update {
                        let row: Option<paging::IncidentRow> = sqlx::query_as(concat!(
                            "UPDATE incidents SET state = $3, level = $4, cycle = $5, \
                             triggered_at = $6, acknowledged_at = $7, acknowledged_by = $8, \
                             resolved_at = $9, resolved_by = $10, resolution = $11, \
                             version = version + 1 \
                             WHERE id = $1 AND version = $2 RETURNING ",
                            paging::incident_columns!()
                        ))
                        .bind(change.incident.0)
                        .bind(i.version)
                        .bind(i.state.as_str())
                        .bind(i64::from(i.level))
                        .bind(i64::from(i.cycle))
                        .bind(i.triggered_at.0)
                        .bind(i.acknowledged_at.map(|t| t.0))
                        .bind(i.acknowledged_by.map(|o| o.0))
                        .bind(i.resolved_at.map(|t| t.0))
                        .bind(i.resolved_by.map(|o| o.0))
                        .bind(i.resolution.as_deref())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        match row {
                            Some(row) => written = Some(row.try_into()?),
                            None => return Ok(ChangeOutcome::Stale),
                        }
                    }
                    if let Some(claim) = change.claim {
                        let done = sqlx::query(
                            "UPDATE paging_timers SET fired_at = $3 \
                             WHERE id = $1 AND generation = $2 AND fired_at IS NULL \
                             AND due_at IS NOT NULL",
                        )
                        .bind(claim.timer)
                        .bind(claim.generation)
                        .bind(change.at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        if done.rows_affected() != 1 {
                            return Ok(ChangeOutcome::TimerLost);
                        }
                    }
                    paging::apply_effects!(tx, change.incident.0, &change.effects, change.at.0);
                    let incident = match written {
                        Some(i) => i,
                        None => {
                            let row: paging::IncidentRow = sqlx::query_as(concat!(
                                "SELECT ", paging::incident_columns!(),
                                " FROM incidents WHERE id = $1"
                            ))
                            .bind(change.incident.0)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(sql::error)?;
                            row.try_into()?
                        }
                    };
                    tx.commit().await.map_err(sql::error)?;
                    Ok(ChangeOutcome::Applied(Box::new(incident)))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn count_incidents(&self) -> StoreResult<Vec<(IncidentState, i64)>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT state, COUNT(*) FROM incidents GROUP BY state",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(s, n)| {
                            IncidentState::parse(&s)
                                .map(|s| (s, n))
                                .ok_or_else(|| StoreError::Corrupt(format!("incidents.state: {s}")))
                        })
                        .collect()
                }

                // ---- timers and the outbox ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn due_timers(
                    &self,
                    due_by: Timestamp,
                    limit: i64,
                ) -> StoreResult<Vec<DueTimer>> {
                    let rows: Vec<(i64, i64, String, i64, i64)> = sqlx::query_as(
                        "SELECT id, incident_id, kind, due_at, generation FROM paging_timers \
                         WHERE due_at IS NOT NULL AND fired_at IS NULL AND due_at <= $1 \
                         ORDER BY due_at, id LIMIT $2",
                    )
                    .bind(due_by.0)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter().map(paging::due_timer).collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn next_paging_due(&self) -> StoreResult<Option<Timestamp>> {
                    let (timer, delivery): (Option<i64>, Option<i64>) = sqlx::query_as(
                        "SELECT \
                         (SELECT MIN(due_at) FROM paging_timers \
                          WHERE due_at IS NOT NULL AND fired_at IS NULL), \
                         (SELECT MIN(next_attempt_at) FROM page_deliveries \
                          WHERE state = 'pending')",
                    )
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(timer.into_iter().chain(delivery).min().map(Timestamp))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn due_deliveries(
                    &self,
                    now: Timestamp,
                    limit: i64,
                ) -> StoreResult<Vec<Delivery>> {
                    let rows: Vec<paging::DeliveryRow> = sqlx::query_as(concat!(
                        "SELECT ", paging::delivery_columns!(), " FROM page_deliveries \
                         WHERE state = 'pending' AND next_attempt_at <= $1 \
                         ORDER BY next_attempt_at, id LIMIT $2"
                    ))
                    .bind(now.0)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, delivery = id))]
                async fn claim_delivery(
                    &self,
                    id: i64,
                    generation: i64,
                    lease_until: Timestamp,
                ) -> StoreResult<Option<Delivery>> {
                    let row: Option<paging::DeliveryRow> = sqlx::query_as(concat!(
                        "UPDATE page_deliveries SET next_attempt_at = $3, \
                         attempts = attempts + 1, generation = generation + 1 \
                         WHERE id = $1 AND generation = $2 AND state = 'pending' RETURNING ",
                        paging::delivery_columns!()
                    ))
                    .bind(id)
                    .bind(generation)
                    .bind(lease_until.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.map(Delivery::try_from).transpose()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, delivery = delivery.id))]
                async fn finish_delivery(
                    &self,
                    delivery: &Delivery,
                    result: &DeliveryResult,
                    at: Timestamp,
                ) -> StoreResult<bool> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let done = sqlx::query(
                        "UPDATE page_deliveries SET state = $3, next_attempt_at = $4, \
                         generation = generation + 1 WHERE id = $1 AND generation = $2",
                    )
                    .bind(delivery.id)
                    .bind(delivery.generation)
                    .bind(result.state.as_str())
                    .bind(result.next_attempt_at.map(|t| t.0))
                    .execute(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    if let Some(step) = &result.step {
                        let effects = Effects::default().step(None, step.clone());
                        paging::apply_effects!(tx, delivery.incident.0, &effects, at.0);
                    }
                    tx.commit().await.map_err(sql::error)?;
                    Ok(done.rows_affected() == 1)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, incident = %incident))]
                async fn deliveries_of(&self, incident: IncidentId) -> StoreResult<Vec<Delivery>> {
                    let rows: Vec<paging::DeliveryRow> = sqlx::query_as(concat!(
                        "SELECT ", paging::delivery_columns!(), " FROM page_deliveries \
                         WHERE incident_id = $1 ORDER BY id"
                    ))
                    .bind(incident.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }
            }
        };
    };
}
pub(crate) use impl_paging_store;
