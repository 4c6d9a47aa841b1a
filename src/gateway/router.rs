//! The one task that owns the routing engine.
//!
//! Connection tasks send it commands over a bounded channel and get the decided events back on a
//! oneshot. It drains what is queued into a batch, lets the engine decide, **makes the batch's
//! events durable in one transaction, and only then** replies, tells the people concerned and
//! updates membership. If the store fails it retries (the engine has already moved on, so telling
//! anyone before the log has it would break "durable before acknowledged"). Batches are numbered,
//! so a retry never writes a batch twice, and one that committed although the write was reported
//! failed (the connection lost after the commit) is found in the log's head; meanwhile requests
//! queue up and `/readyz` reports the store as unreachable. At the shutdown deadline it stops
//! retrying: the batch, never acknowledged, is given up with everything still queued, and the
//! task ends (the engine holds state the log lacks; a restart restores from the log).
//!
//! A caller's join is a request of its own: the contact's row is created **in the same transaction**
//! as its first events (one commit, one fsync on the way to the first offer), with an id reserved
//! ahead from the store, and the reply carries the caller's place in the queue.
//!
//! It also sleeps until the engine's next deadline (offer timeouts, grace periods…), and once a
//! second pushes queue positions to waiting callers and the floor to supervisors when it changed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::{ContactId, OperatorId, RiskLevel, Role, Timestamp};
use crate::metrics::Metrics;
use crate::paging::{FlagSource, Pager};
use crate::queues::QueueDefinition;
use crate::routing::{
    Command, ContactState, ContactView, Engine, EngineError, Event, NewContact, OperatorView,
    QueuePlace,
};
use crate::store::{DynStore, Log, LogHead, NewContactRecord};

use super::hub::{CallerNotice, Hub, Members, Person, StaffNotice};
use super::protocol::{CallerEvent, ContactSummary, FloorOperator, StaffEvent};

/// A read of the engine's state, run by the router task between batches.
type Read = Box<dyn FnOnce(&Engine, Timestamp) + Send>;

/// Requests the router task serves.
enum Request {
    Command {
        command: Command,
        reply: oneshot::Sender<Result<Vec<Event>, RouterError>>,
    },
    /// A queue's definition, stored and put in force as one step (see
    /// [`RouterHandle::define_queue`]).
    DefineQueue {
        queue: QueueDefinition,
        reply: oneshot::Sender<Result<(), RouterError>>,
    },
    Join {
        join: Join,
        reply: oneshot::Sender<Result<Joined, RouterError>>,
    },
    Read(Read),
}

/// A caller entering a queue: what the store keeps, what the engine routes on, and the caller
/// connection's inbox (registered before anyone can be told about the contact).
pub struct Join {
    pub record: NewContactRecord,
    /// Its `id` is ignored: the router assigns one.
    pub routing: NewContact,
    pub inbox: mpsc::Sender<CallerNotice>,
}

/// A durable join: the contact, the connection's registration in the hub, and the caller's place.
#[derive(Debug, Clone, Copy)]
pub struct Joined {
    pub contact: ContactId,
    pub conn: u64,
    /// 1-based; `None` when the contact was offered at once.
    pub place: Option<(u32, i64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the router is stopped")]
    Stopped,
    #[error("the store cannot be written")]
    Store,
}

/// A cheap, cloneable handle to the router task.
#[derive(Clone)]
pub struct RouterHandle {
    tx: mpsc::Sender<Request>,
}

impl RouterHandle {
    /// Applies a command; returns once its events are durable.
    pub async fn send(&self, command: Command) -> Result<Vec<Event>, RouterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Command { command, reply })
            .await
            .map_err(|_| RouterError::Stopped)?;
        rx.await.map_err(|_| RouterError::Stopped)?
    }

    /// Saves a queue's definition and puts it in force as one step, between the commands before
    /// and after it: the definition is written to the store first, and one the store refuses
    /// changes nothing (`Err(Store)`); one it keeps is applied to routing at once. `Ok` means
    /// both changed, any error that neither did.
    pub async fn define_queue(&self, queue: QueueDefinition) -> Result<(), RouterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::DefineQueue { queue, reply })
            .await
            .map_err(|_| RouterError::Stopped)?;
        rx.await.map_err(|_| RouterError::Stopped)?
    }

    /// Creates and enqueues a contact; returns once it is durable, with its place in the queue.
    pub async fn join(&self, join: Join) -> Result<Joined, RouterError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Join { join, reply })
            .await
            .map_err(|_| RouterError::Stopped)?;
        rx.await.map_err(|_| RouterError::Stopped)?
    }

    /// Reads the engine's state (after every earlier command is durable).
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine, Timestamp) -> R + Send + 'static,
    ) -> Result<R, RouterError> {
        let (reply, rx) = oneshot::channel();
        let read = Box::new(move |engine: &Engine, now: Timestamp| {
            let _ = reply.send(f(engine, now));
        });
        self.tx
            .send(Request::Read(read))
            .await
            .map_err(|_| RouterError::Stopped)?;
        rx.await.map_err(|_| RouterError::Stopped)
    }
}

/// Shared flag: false while the router cannot write to the store.
#[derive(Default)]
pub struct StoreHealth(AtomicBool);

impl StoreHealth {
    pub fn healthy() -> Arc<Self> {
        Arc::new(StoreHealth(AtomicBool::new(true)))
    }
    pub fn is_ok(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, ok: bool) {
        self.0.store(ok, Ordering::Relaxed)
    }
}

const BATCH: usize = 64;

/// A batch that could not be made durable by the shutdown deadline. The engine has applied it, so
/// nobody may be told anything from it and the router must not go on from that state: it stops.
struct GaveUp;

/// A commit slower than this is logged: every routing decision waits for it.
const SLOW_COMMIT: Duration = Duration::from_millis(10);

/// Contact ids reserved from the store at a time, in the background once fewer than
/// `IDS_LOW_WATER` are left, so that a join rarely waits for a reservation.
const RESERVED_IDS: u32 = 256;
const IDS_LOW_WATER: usize = 64;

/// What one commit makes durable, and the caller connections it registers first.
#[derive(Default)]
struct Batch {
    contacts: Vec<(ContactId, NewContactRecord)>,
    inboxes: Vec<(ContactId, mpsc::Sender<CallerNotice>)>,
    events: Vec<Event>,
}

pub struct RouterTask {
    engine: Engine,
    store: DynStore,
    hub: Arc<Hub>,
    /// Opens incidents for contacts routing sees at imminent risk, and records crisis leads joining.
    pager: Pager,
    /// Paging calls run beside the router (they write to the store) and are waited for at shutdown.
    tasks: TaskTracker,
    metrics: Metrics,
    health: Arc<StoreHealth>,
    rx: mpsc::Receiver<Request>,
    /// Last place sent to each waiting caller, so only changes are pushed.
    places_sent: HashMap<ContactId, (u32, i64)>,
    floor_dirty: bool,
    /// Contact ids reserved from the store, not yet used.
    ids: VecDeque<ContactId>,
    /// A reservation under way in the background.
    refill: Option<tokio::task::JoinHandle<crate::store::StoreResult<Vec<ContactId>>>>,
    /// The event log's head, to number batches (see [`RouterTask::write`]).
    log_head: LogHead,
}

impl RouterTask {
    pub fn new(
        engine: Engine,
        store: DynStore,
        hub: Arc<Hub>,
        pager: Pager,
        tasks: TaskTracker,
        metrics: Metrics,
        health: Arc<StoreHealth>,
    ) -> (RouterTask, RouterHandle) {
        let (tx, rx) = mpsc::channel(1024);
        // Contacts restored at start are held and joined before anyone connects.
        for view in engine.contacts() {
            hub.set_members(view.id, members_of(&view));
        }
        let task = RouterTask {
            engine,
            store,
            hub,
            pager,
            tasks,
            metrics,
            health,
            rx,
            places_sent: HashMap::new(),
            floor_dirty: true,
            ids: VecDeque::new(),
            refill: None,
            log_head: LogHead::new(Log::Events),
        };
        (task, RouterHandle { tx })
    }

    /// Runs until `shutdown`; pending requests are answered before it returns. `overdue` is the
    /// shutdown deadline: a batch that still cannot be written then is given up (see
    /// [`commit`](Self::commit)), and so is everything queued after it.
    pub async fn run(mut self, shutdown: CancellationToken, overdue: CancellationToken) {
        let mut pulse = tokio::time::interval(Duration::from_secs(1));
        pulse.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut gave_up = false;
        while !gave_up {
            let deadline = self.engine.next_deadline().map(instant_of);
            gave_up = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                request = self.rx.recv() => match request {
                    Some(first) => self.serve_batch(first, &overdue).await.is_err(),
                    None => break,
                },
                _ = sleep_until(deadline) => {
                    let now = Timestamp::now();
                    let started = Instant::now();
                    let events = self.engine.tick(now);
                    self.metrics.routing_seconds.with_label_values(&["tick"]).observe(started.elapsed().as_secs_f64());
                    self.commit(now, Batch { events, ..Batch::default() }, &overdue).await.is_err()
                }
                _ = pulse.tick() => {
                    self.pulse();
                    false
                }
            };
        }
        // Answer whatever is still queued so no caller waits on a dropped reply.
        self.rx.close();
        while let Ok(request) = self.rx.try_recv() {
            if gave_up {
                refuse(request);
            } else {
                gave_up = self.serve_batch(request, &overdue).await.is_err();
            }
        }
    }

    async fn serve_batch(
        &mut self,
        first: Request,
        overdue: &CancellationToken,
    ) -> Result<(), GaveUp> {
        let mut requests = vec![first];
        while requests.len() < BATCH {
            match self.rx.try_recv() {
                Ok(r) => requests.push(r),
                Err(_) => break,
            }
        }
        let joining = requests
            .iter()
            .filter(|r| matches!(r, Request::Join { .. }))
            .count();
        let ids_ok = self.reserve_ids(joining).await;
        let now = Timestamp::now();
        let started = Instant::now();
        // Deadlines that are due fire first: a command must meet the state the clock says it is in
        // (an offer that has expired is no longer there to accept).
        let mut batch = Batch::default();
        if self.engine.next_deadline().is_some_and(|d| d <= now) {
            batch.events = self.engine.tick(now);
        }
        let mut replies = Vec::new();
        let mut joins = Vec::new();
        let mut reads = Vec::new();
        for request in requests {
            match request {
                Request::Command { command, reply } => {
                    let outcome = self.engine.handle(now, command);
                    if let Ok(events) = &outcome {
                        batch.events.extend_from_slice(events);
                    }
                    replies.push((reply, outcome));
                }
                Request::DefineQueue { queue, reply } => {
                    let outcome = self.define_queue(now, queue, &mut batch).await;
                    // What is answered, the definition, is durable already; the decisions it
                    // leads to are told to nobody before the batch is committed.
                    let _ = reply.send(outcome);
                }
                Request::Join { join, reply } => {
                    let Some(id) = ids_ok.then(|| self.ids.pop_front()).flatten() else {
                        joins.push((reply, Err(RouterError::Store)));
                        continue;
                    };
                    let routing = NewContact { id, ..join.routing };
                    match self.engine.handle(now, Command::Enqueue(routing)) {
                        Ok(events) => {
                            batch.events.extend(events);
                            batch.contacts.push((id, join.record));
                            batch.inboxes.push((id, join.inbox));
                            joins.push((reply, Ok(id)));
                        }
                        // The id is not reused: a gap in contact ids is harmless.
                        Err(e) => joins.push((reply, Err(e.into()))),
                    }
                }
                Request::Read(read) => reads.push(read),
            }
        }
        self.metrics
            .routing_seconds
            .with_label_values(&["command"])
            .observe(started.elapsed().as_secs_f64());
        let conns = match self.commit(now, batch, overdue).await {
            Ok(conns) => conns,
            Err(GaveUp) => {
                // Nothing of this batch was acknowledged, and nothing may be now. Reads are
                // dropped (their callers see the router stopped): the engine is past the log.
                for (reply, _) in replies {
                    let _ = reply.send(Err(RouterError::Store));
                }
                for (reply, _) in joins {
                    let _ = reply.send(Err(RouterError::Store));
                }
                return Err(GaveUp);
            }
        };
        for (reply, outcome) in replies {
            let _ = reply.send(outcome.map_err(RouterError::from));
        }
        if !joins.is_empty() {
            let places = self.places_of(now, joins.iter().filter_map(|(_, j)| j.as_ref().ok()));
            for (reply, outcome) in joins {
                let _ = reply.send(outcome.map(|contact| Joined {
                    contact,
                    conn: conns.get(&contact).copied().unwrap_or_default(),
                    place: places.get(&contact).copied(),
                }));
            }
        }
        for read in reads {
            read(&self.engine, now);
        }
        Ok(())
    }

    /// Stores a queue's definition, then applies it: one the store refuses is not applied, so
    /// routing and the store never disagree about a queue, and the router's order is the order
    /// of both.
    async fn define_queue(
        &mut self,
        now: Timestamp,
        queue: QueueDefinition,
        batch: &mut Batch,
    ) -> Result<(), RouterError> {
        if let Err(e) = self.store.put_queue(&queue).await {
            tracing::error!(queue = %queue.id, error = %e, "a queue definition was not stored; routing unchanged");
            return Err(RouterError::Store);
        }
        // Routing takes any queue configuration (`UpsertQueue` never fails): stored is in force.
        let events = self
            .engine
            .handle(now, Command::UpsertQueue(queue.routing()))?;
        batch.events.extend(events);
        Ok(())
    }

    /// Makes sure `needed` contact ids are at hand (waiting for the store only if they have run
    /// out) and starts a reservation in the background when few are left; false if the store
    /// cannot give them.
    async fn reserve_ids(&mut self, needed: usize) -> bool {
        let finished = self.refill.as_ref().is_some_and(|r| r.is_finished());
        if (finished || self.ids.len() < needed)
            && let Some(refill) = self.refill.take()
        {
            match refill.await {
                Ok(Ok(ids)) => self.ids.extend(ids),
                Ok(Err(e)) => tracing::error!(error = %e, "could not reserve contact ids"),
                Err(e) => tracing::error!(error = %e, "contact id reservation failed"),
            }
        }
        if self.ids.len() < needed {
            let n = RESERVED_IDS.max(u32::try_from(needed).unwrap_or(u32::MAX));
            match self.store.reserve_contact_ids(n).await {
                Ok(ids) => self.ids.extend(ids),
                Err(e) => {
                    tracing::error!(error = %e, "could not reserve contact ids");
                    return false;
                }
            }
        }
        if self.ids.len() - needed < IDS_LOW_WATER && self.refill.is_none() {
            let store = self.store.clone();
            self.refill = Some(
                self.tasks
                    .spawn(async move { store.reserve_contact_ids(RESERVED_IDS).await }),
            );
        }
        true
    }

    /// Place and estimated wait of each of `contacts` still waiting: one pass per queue.
    fn places_of<'a>(
        &self,
        now: Timestamp,
        contacts: impl Iterator<Item = &'a ContactId>,
    ) -> HashMap<ContactId, (u32, i64)> {
        let mut queues = Vec::new();
        for id in contacts {
            if let Some(view) = self.engine.contact(*id)
                && view.state == ContactState::Waiting
                && !queues.contains(&view.queue)
            {
                queues.push(view.queue);
            }
        }
        queues
            .iter()
            .flat_map(|queue| self.engine.queue_places(now, queue))
            .map(|p| (p.contact, (p.position, p.estimated_wait_ms)))
            .collect()
    }

    /// Makes a batch durable (retrying until it succeeds), registers its callers' connections,
    /// then tells the people concerned. Returns each new caller's registration number.
    ///
    /// Past `overdue` (the shutdown deadline) a failed write is not retried: the batch is given up
    /// and nobody is told of it. Until then it is retried even while stopping, since the store may
    /// come back within the grace period and the batch holds people's last actions. A write in
    /// flight is never abandoned (it might commit after its waiters were told it failed).
    async fn commit(
        &mut self,
        now: Timestamp,
        batch: Batch,
        overdue: &CancellationToken,
    ) -> Result<HashMap<ContactId, u64>, GaveUp> {
        let Batch {
            contacts,
            inboxes,
            events,
        } = batch;
        if events.is_empty() && contacts.is_empty() {
            return Ok(HashMap::new());
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            let started = Instant::now();
            match self.write(now, &contacts, &events).await {
                Ok(()) => {
                    let took = started.elapsed();
                    if took >= SLOW_COMMIT {
                        tracing::warn!(
                            ms = took.as_millis() as u64,
                            events = events.len(),
                            "slow event-log commit"
                        );
                    }
                    self.metrics
                        .store_write_seconds
                        .with_label_values(&["events"])
                        .observe(took.as_secs_f64());
                    self.health.set(true);
                    break;
                }
                Err(e) => {
                    self.health.set(false);
                    self.metrics
                        .store_failures
                        .with_label_values(&["events"])
                        .inc();
                    if overdue.is_cancelled() {
                        tracing::error!(
                            error = %e,
                            events = events.len(),
                            contacts = contacts.len(),
                            "event log write failed at the shutdown deadline; batch given up, router stopped"
                        );
                        return Err(GaveUp);
                    }
                    tracing::error!(error = %e, "event log write failed; retrying");
                    // The deadline cuts the wait short: one last try, then give up.
                    let _ = overdue
                        .run_until_cancelled(tokio::time::sleep(backoff))
                        .await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        let conns = inboxes
            .into_iter()
            .map(|(contact, inbox)| (contact, self.hub.register_new_caller(contact, inbox)))
            .collect();
        self.floor_dirty = true;
        // Notices go to who was in each contact before the batch (those it releases included);
        // then the list is brought up to date.
        for event in &events {
            self.metrics.observe(event);
            self.notify(now, event);
            self.page(event);
        }
        for contact in touched_contacts(&events) {
            let members = self.engine.contact(contact).and_then(|v| members_of(&v));
            self.hub.set_members(contact, members);
        }
        Ok(conns)
    }

    /// One attempt at writing a batch as the log's next one (see [`crate::store::Log`]).
    async fn write(
        &mut self,
        now: Timestamp,
        contacts: &[(ContactId, NewContactRecord)],
        events: &[Event],
    ) -> crate::store::StoreResult<()> {
        let batch = self.log_head.next(&*self.store).await?;
        match self
            .store
            .record_batch(now, Some(batch), contacts, events)
            .await
        {
            Ok(()) => self.log_head.written(batch),
            Err(e) if self.log_head.committed_anyway(&*self.store, batch).await => {
                tracing::warn!(error = %e, batch, "an event log write reported as failed had committed");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Tells the people concerned about one durable event.
    fn notify(&self, now: Timestamp, event: &Event) {
        let hub = &self.hub;
        let summary = |id: ContactId| self.engine.contact(id).map(|v| summarize(&v));
        // A contact as a console shows it, with who has joined it.
        let live = |id: ContactId| {
            self.engine
                .contact(id)
                .map(|v| (summarize(&v), v.participants))
        };
        let staff = |id: OperatorId, frame: StaffEvent| {
            hub.to_staff(id, StaffNotice::Frame(frame));
        };
        let caller =
            |id: ContactId, frame: CallerEvent| hub.to_caller(id, CallerNotice::Frame(frame));
        // Who is in a live contact besides `someone`: its holder and the others who joined it
        // (each shows who else is there).
        let others_in = |id: ContactId, someone: OperatorId| -> Vec<OperatorId> {
            self.engine
                .contact(id)
                .map(|v| {
                    v.operator
                        .into_iter()
                        .chain(v.participants.into_iter().map(|(p, _)| p))
                        .filter(|p| *p != someone)
                        .collect()
                })
                .unwrap_or_default()
        };
        match event {
            Event::Offer {
                contact,
                operator,
                expires_at,
            } => {
                if let Some(contact) = summary(*contact) {
                    hub.to_staff(
                        *operator,
                        StaffNotice::Offer {
                            contact,
                            expires_at: *expires_at,
                        },
                    );
                }
            }
            Event::Connect {
                contact, operator, ..
            } => {
                if let Some((summary, participants)) = live(*contact) {
                    hub.to_staff(
                        *operator,
                        StaffNotice::Assigned {
                            contact: summary,
                            participants,
                        },
                    );
                }
                let operator_name = hub
                    .staff_name(*operator)
                    .unwrap_or_else(|| "Counsellor".into());
                caller(*contact, CallerEvent::Connected { operator_name });
            }
            Event::Reject { contact, operator } => {
                staff(*operator, withdrawn(*contact, "rejected"))
            }
            Event::OfferTimeout { contact, operator } => {
                staff(*operator, withdrawn(*contact, "timed_out"))
            }
            Event::OfferRescinded { contact, operator } => {
                staff(*operator, withdrawn(*contact, "rescinded"))
            }
            Event::RiskChange { contact, to, .. } => {
                // Those in the contact, and the operator its offer rings for (from the queue or
                // a transfer to them by name): a rise does not stop the ringing, so the offer
                // they are about to answer must show it.
                let mut told: Vec<OperatorId> = hub
                    .members(*contact)
                    .map(|members| staff_of(&members).collect())
                    .unwrap_or_default();
                if let Some(view) = self.engine.contact(*contact)
                    && view.state == ContactState::Offered
                    && let Some(operator) = view.operator
                    && !told.contains(&operator)
                {
                    told.push(operator);
                }
                for id in told {
                    staff(
                        id,
                        StaffEvent::RiskChanged {
                            contact: *contact,
                            risk: *to,
                            colour: to.colour(),
                        },
                    );
                }
            }
            Event::Transfer { contact, from, .. } => {
                staff(*from, released(*contact, "transferred"));
                caller(*contact, CallerEvent::Transferring);
            }
            Event::Requeue { contact, .. } => {
                if let Some(members) = hub.members(*contact) {
                    for id in staff_of(&members) {
                        staff(id, released(*contact, "requeued"));
                    }
                }
                caller(*contact, CallerEvent::Transferring);
            }
            Event::CallerAway { contact } | Event::CallerBack { contact } => {
                let away = matches!(event, Event::CallerAway { .. });
                if let Some(members) = hub.members(*contact) {
                    for id in staff_of(&members) {
                        let frame = if away {
                            StaffEvent::CallerAway { contact: *contact }
                        } else {
                            StaffEvent::CallerBack { contact: *contact }
                        };
                        staff(id, frame);
                    }
                }
            }
            Event::Abandon { contact, .. } => {
                if let Some(members) = hub.members(*contact) {
                    for id in staff_of(&members) {
                        staff(id, released(*contact, "abandoned"));
                    }
                }
                caller(
                    *contact,
                    CallerEvent::Ended {
                        by: crate::routing::EndedBy::Caller,
                    },
                );
            }
            Event::WrapUp {
                contact,
                operator,
                by,
            } => {
                let deadline = now.plus_ms(self.engine.config().wrap_up_max_ms);
                staff(
                    *operator,
                    StaffEvent::WrapUp {
                        contact: *contact,
                        by: *by,
                        deadline,
                    },
                );
                if let Some(members) = hub.members(*contact) {
                    for (id, _) in &members.participants {
                        staff(*id, released(*contact, "ended"));
                    }
                }
                caller(*contact, CallerEvent::Ended { by: *by });
            }
            Event::Complete {
                contact, operator, ..
            } => staff(*operator, StaffEvent::Completed { contact: *contact }),
            Event::Join {
                contact,
                participant,
                mode,
            } => {
                if let Some((summary, participants)) = live(*contact) {
                    hub.to_staff(
                        *participant,
                        StaffNotice::Joined {
                            contact: summary,
                            mode: *mode,
                            participants,
                        },
                    );
                }
                let frame = StaffEvent::Participant {
                    contact: *contact,
                    participant: *participant,
                    mode: Some(*mode),
                };
                for person in others_in(*contact, *participant) {
                    staff(person, frame.clone());
                }
            }
            Event::Leave {
                contact,
                participant,
            } => {
                let frame = StaffEvent::Participant {
                    contact: *contact,
                    participant: *participant,
                    mode: None,
                };
                for person in others_in(*contact, *participant) {
                    staff(person, frame.clone());
                }
                staff(*participant, released(*contact, "left"));
            }
            Event::OperatorState { operator, state } => {
                staff(*operator, StaffEvent::State { state: *state })
            }
            Event::EnterQueue { .. }
            | Event::Accept { .. }
            | Event::Relax { .. }
            | Event::Overflow { .. }
            | Event::Resume { .. } => {}
        }
    }

    /// Imminent risk seen by routing pages the crisis team; a crisis lead or supervisor joining a
    /// contact goes on its incident's timeline. Both run beside the router: it never waits on them.
    fn page(&self, event: &Event) {
        let pager = self.pager.clone();
        match *event {
            Event::EnterQueue {
                contact,
                risk: RiskLevel::Imminent,
                ..
            }
            | Event::RiskChange {
                contact,
                to: RiskLevel::Imminent,
                ..
            } => {
                // Tried three times here; after that the paging auditor finds the contact at
                // imminent risk without an incident and raises the flag itself.
                self.tasks.spawn(async move {
                    for wait_ms in [0, 500, 2_000] {
                        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                        match pager.crisis_flag(contact, FlagSource::Routing, None).await {
                            Ok(_) => return,
                            Err(e) => tracing::error!(contact = %contact, error = %e, "could not open a crisis incident"),
                        }
                    }
                });
            }
            Event::Join {
                contact,
                participant,
                ..
            } => {
                self.tasks
                    .spawn(async move { pager.contact_joined(contact, participant).await });
            }
            _ => {}
        }
    }

    /// Once a second: queue positions to waiting callers, and the floor to watchers if it changed.
    fn pulse(&mut self) {
        let now = Timestamp::now();
        let mut seen = HashMap::with_capacity(self.places_sent.len());
        for queue in self.engine.queue_ids() {
            for place in self.engine.queue_places(now, &queue) {
                let QueuePlace {
                    contact,
                    position,
                    estimated_wait_ms,
                } = place;
                let estimate = shown_wait(estimated_wait_ms);
                if self.places_sent.get(&contact) != Some(&(position, estimate)) {
                    self.hub.to_caller(
                        contact,
                        CallerNotice::Frame(CallerEvent::QueueUpdate {
                            position,
                            estimated_wait_ms: estimate,
                        }),
                    );
                }
                seen.insert(contact, (position, estimate));
            }
        }
        self.places_sent = seen;
        if std::mem::take(&mut self.floor_dirty) {
            let frame = floor(&self.engine, |id| self.hub.person(id));
            self.hub.to_floor_watchers(&frame);
        }
    }
}

/// A waiting caller's estimate as pushed once a second: rounded up to 10 s, so that callers are
/// not sent a new number every second, and never below what is expected (a 9 s wait is not 0).
fn shown_wait(estimated_wait_ms: i64) -> i64 {
    const STEP: i64 = 10_000;
    estimated_wait_ms.max(0).saturating_add(STEP - 1) / STEP * STEP
}

/// Answers a request the router will not serve because it gave up at the shutdown deadline.
fn refuse(request: Request) {
    match request {
        Request::Command { reply, .. } => {
            let _ = reply.send(Err(RouterError::Store));
        }
        Request::DefineQueue { reply, .. } => {
            let _ = reply.send(Err(RouterError::Store));
        }
        Request::Join { reply, .. } => {
            let _ = reply.send(Err(RouterError::Store));
        }
        // Dropping the read tells its caller the router is stopped.
        Request::Read(_) => {}
    }
}

fn withdrawn(contact: ContactId, reason: &str) -> StaffEvent {
    StaffEvent::OfferWithdrawn {
        contact,
        reason: reason.into(),
    }
}

fn released(contact: ContactId, reason: &str) -> StaffEvent {
    StaffEvent::Released {
        contact,
        reason: reason.into(),
    }
}

fn staff_of(members: &Members) -> impl Iterator<Item = OperatorId> + '_ {
    members
        .operator
        .into_iter()
        .chain(members.participants.iter().map(|(id, _)| *id))
}

fn touched_contacts(events: &[Event]) -> Vec<ContactId> {
    let mut ids: Vec<ContactId> = events.iter().filter_map(Event::contact).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Who receives a contact's chat lines: its operator once assigned, and any participants.
pub fn members_of(view: &ContactView) -> Option<Members> {
    match view.state {
        ContactState::Assigned | ContactState::Wrapping => Some(Members {
            operator: view.operator,
            participants: view.participants.clone(),
            ended: view.state == ContactState::Wrapping,
        }),
        _ => None,
    }
}

pub fn summarize(view: &ContactView) -> ContactSummary {
    ContactSummary {
        id: view.id,
        queue: view.queue.clone(),
        channel: view.channel,
        language: view.language.clone(),
        topic: view.topic.clone(),
        risk: view.risk,
        colour: view.risk.colour(),
        state: view.state,
        entered_at: view.entered_at,
        operator: view.operator,
        caller_away: view.caller_away,
    }
}

/// The wallboard's picture of the floor.
pub fn floor(engine: &Engine, person_of: impl Fn(OperatorId) -> Option<Person>) -> StaffEvent {
    let contacts = engine.contacts().iter().map(summarize).collect();
    let operators = engine
        .operators()
        .into_iter()
        .filter_map(
            |OperatorView {
                 id,
                 state,
                 contacts,
                 ..
             }| {
                let person = person_of(id)?;
                // Admins take no contacts; they are not on the floor.
                (person.role != Role::Admin).then_some(FloorOperator {
                    id,
                    name: person.name,
                    role: person.role,
                    state,
                    contacts,
                })
            },
        )
        .collect();
    StaffEvent::Floor {
        contacts,
        operators,
    }
}

fn instant_of(at: Timestamp) -> tokio::time::Instant {
    let wait = at.since(Timestamp::now());
    tokio::time::Instant::now() + Duration::from_millis(wait as u64)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_wait_is_rounded_up_to_ten_seconds() {
        assert_eq!(shown_wait(0), 0);
        assert_eq!(shown_wait(1), 10_000);
        assert_eq!(shown_wait(9_000), 10_000);
        assert_eq!(shown_wait(10_000), 10_000);
        assert_eq!(shown_wait(59_001), 60_000);
        assert_eq!(shown_wait(-5), 0);
        assert_eq!(shown_wait(i64::MAX), i64::MAX / 10_000 * 10_000);
    }
}
