//! Builds the application: opens the store, prepares the engine (queues, accounts, contacts restored
//! after a restart), starts the router task, serves HTTP and WebSockets, and shuts down in order.
//!
//! Shutdown order: stop accepting → tell every WebSocket peer → let connection tasks finish → stop
//! the router after it has made every queued command durable → record that the server was alive
//! until then (see [`keep_alive`]). One deadline, `shutdown_grace_ms` after the stop signal, bounds
//! it all: what is unfinished then is cut short (the router gives up a batch it still cannot
//! write, which nobody was told of), and the router, the transcript writer and that last record
//! get [`FLUSH_MARGIN`] more to end a write in flight.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{self, AddressLimiter, LoginLimiter};
use crate::config::Settings;
use crate::domain::{ContactId, JoinMode, OperatorId, QueueId, Timestamp};
use crate::error::ApiError;
use crate::gateway::{self, Hub, RouterHandle, RouterTask, StoreHealth};
use crate::metrics::{Metrics, state_label};
use crate::queues::QueueDefinition;
use crate::routing::lexicon::RiskLexicon;
use crate::routing::{
    Command, ContactState, Engine, EngineConfig, Event, NewContact, OperatorState, RestoredContact,
};
use crate::store::{self, DynStore, NewAccount};
use crate::{admin, domain::Role};

/// After the shutdown deadline, how long the router and the transcript writer still get to finish
/// a write in flight (the default grace, 8 s, plus this stays under 10 s).
const FLUSH_MARGIN: Duration = Duration::from_secs(1);

/// Cheap handles shared by every handler and connection task.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    pub router: RouterHandle,
    pub transcripts: gateway::TranscriptWriter,
    pub hub: Arc<Hub>,
    /// Pages the crisis team (crisis flags, joins, incidents).
    pub pager: crate::paging::Pager,
    pub metrics: Metrics,
    pub health: Arc<StoreHealth>,
    pub lexicon: Arc<RiskLexicon>,
    pub note_form: Arc<crate::notes::form::NoteForm>,
    /// Quality, training and assessment (scorecard, task wake-up).
    pub quality: crate::quality::Quality,
    pub login_limiter: LoginLimiter,
    pub join_limiter: AddressLimiter,
    queues: Arc<RwLock<BTreeMap<QueueId, QueueDefinition>>>,
    /// Held by whoever saves or deletes a queue, from its checks to its last write, so that the
    /// store, routing and `queues` all see queue edits in the same order.
    pub queue_edits: Arc<tokio::sync::Mutex<()>>,
    /// Held while an account's profile is read and pushed to routing
    /// ([`admin::sync_account`]), so that pushes go one at a time, each reading the account
    /// after the one before it: the last one pushed is never older than the last change.
    pub profile_sync: Arc<tokio::sync::Mutex<()>>,
    /// Where tests hold a connection to force an order of events (none in production).
    pub hooks: Hooks,
    /// A valid hash checked against when a login names no account, so timing reveals nothing.
    pub dummy_hash: Arc<str>,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl AppState {
    pub fn queues_snapshot(&self) -> Vec<QueueDefinition> {
        self.queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn queue(&self, id: &QueueId) -> Option<QueueDefinition> {
        self.queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn set_queue(&self, queue: QueueDefinition) {
        self.queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(queue.id.clone(), queue);
    }

    /// A submitted note says high or imminent risk (or carries the crisis flag): page the crisis
    /// team, and raise the contact's risk if it is still live so routing and wallboards show it.
    /// A note at crisis level: the flag recorded as due before the note (see
    /// [`Pager::flag_due`](crate::paging::Pager::flag_due)) is raised, and the contact's risk
    /// rises. Never fails the note, which is stored: a flag that cannot be raised now stays due
    /// and the paging auditor raises it.
    pub async fn raise_crisis_from_note(
        &self,
        due: i64,
        contact: crate::domain::ContactId,
        author: crate::domain::OperatorId,
        risk: crate::domain::RiskLevel,
    ) {
        let source = crate::paging::FlagSource::Note(author);
        if let Err(e) = self.pager.raise_due(due, contact, source).await {
            tracing::error!(contact = %contact, error = %e, "a note's crisis flag stays due for the auditor");
        }
        // A contact that is over (the usual case for a note) has no risk left to raise.
        match self.router.send(Command::RaiseRisk { contact, risk }).await {
            Ok(_) | Err(gateway::RouterError::Engine(_)) => {}
            Err(e) => {
                tracing::warn!(contact = %contact, error = %e, "a note's risk was not raised")
            }
        }
    }

    pub fn remove_queue(&self, id: &QueueId) {
        self.queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// Where a staff console's connection stands when it passes a [`Hooks::staff`] point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffStage {
    /// Upgraded, with the account as read when the request was signed in; not yet registered.
    Upgraded,
    /// Registered, the account read again and its profile in force; routing not yet told the
    /// person is connected.
    Admitted,
}

/// A test's hold on a staff connection at a [`StaffStage`]: it resumes when the future ends.
pub type StaffHook = Arc<
    dyn Fn(OperatorId, StaffStage) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync,
>;

/// Points where tests hold a connection to force an order of events that timing alone makes
/// rare (an account changed while its console is connecting). Empty in production, where each
/// point costs a check of an `Option`.
#[derive(Clone, Default)]
pub struct Hooks {
    pub staff: Option<StaffHook>,
}

impl Hooks {
    pub async fn staff(&self, who: OperatorId, stage: StaffStage) {
        if let Some(hook) = &self.staff {
            hook(who, stage).await;
        }
    }
}

/// The rate limiters forget the addresses they have not seen for a while, once a minute.
async fn forget_idle_limits(state: AppState, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => {
                state.login_limiter.forget_idle();
                state.join_limiter.forget_idle();
            }
        }
    }
}

/// Records in the store that the server is alive (`Store::mark_alive`), at once, then every
/// `every` until `stop`, then once more: a restart takes the last record (or a later event or
/// transcript line) as when the server stopped, and leaves the time since out of handle time.
/// A task of its own, off every hot path: a write that fails is logged and made again at the next
/// tick, and never stops the server.
async fn keep_alive(store: DynStore, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    // After a slow write (a database that is struggling), one record, not a burst of them.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = ticks.tick() => mark_alive(&store).await,
        }
    }
    mark_alive(&store).await;
}

async fn mark_alive(store: &DynStore) {
    if let Err(e) = store.mark_alive(Timestamp::now()).await {
        tracing::warn!(error = %e, "recording that the server is alive failed; again at the next tick");
    }
}

/// The administrator [`bootstrap_admin`] created, with its one-time password.
#[derive(Debug)]
pub struct FirstAdmin {
    pub name: String,
    pub password: String,
}

/// Creates an administrator with a one-time password when no enabled administrator exists: on
/// the first start, and whenever nobody can administer any more (the accounts were all added as
/// staff with `hotline user add`, the last administrator was disabled or given another role).
///
/// Existing accounts are never changed: one named `admin` that is not an enabled administrator
/// belongs to someone (an operator, or an administrator disabled on purpose), so the new account
/// takes the first free name of `admin`, `admin2`, `admin3`… Two nodes starting at once create
/// one administrator: the second one's insert meets the first one's name, and it finds it.
pub async fn bootstrap_admin(store: &DynStore) -> anyhow::Result<Option<FirstAdmin>> {
    for _ in 0..10 {
        let accounts = store.accounts().await?;
        if accounts
            .iter()
            .any(|a| a.role == Role::Admin && !a.disabled)
        {
            return Ok(None);
        }
        let taken: std::collections::HashSet<&str> =
            accounts.iter().map(|a| a.name.as_str()).collect();
        let name = std::iter::once("admin".to_owned())
            .chain((2..).map(|n| format!("admin{n}")))
            .find(|name| !taken.contains(name.as_str()))
            .expect("an unbounded list of names has a free one");
        let password = auth::random_token(15);
        let password_hash = auth::hash_password(password.clone()).await?;
        let created = store
            .create_account(
                NewAccount {
                    name: name.clone(),
                    display_name: "Administrator".into(),
                    role: Role::Admin,
                    password_hash,
                    languages: Vec::new(),
                    chat_capacity: 0,
                    voice_capacity: 0,
                    voice_excludes_chat: true,
                    must_change_password: true,
                },
                Timestamp::now(),
            )
            .await;
        match created {
            Ok(_) => return Ok(Some(FirstAdmin { name, password })),
            // Taken since it was read (another node starting): look again.
            Err(store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not create an administrator: every name tried was taken meanwhile")
}

/// Loads the risk lexicon named in the settings, or the built-in one.
fn load_lexicon(settings: &Settings) -> anyhow::Result<RiskLexicon> {
    match &settings.caller.lexicon_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading lexicon {}", path.display()))?;
            RiskLexicon::from_toml(&text).context("parsing the risk lexicon")
        }
        None => Ok(RiskLexicon::default_terms()),
    }
}

/// Puts queues, accounts and open contacts into a fresh engine.
async fn prepare_engine(
    settings: &Settings,
    store: &DynStore,
    hub: &Hub,
) -> anyhow::Result<(Engine, Vec<QueueDefinition>)> {
    let mut engine = Engine::new(EngineConfig {
        crisis_skill: settings.caller.crisis_skill.clone(),
        ..settings.routing.clone()
    });
    let now = Timestamp::now();
    // When the server stopped, read before anything is written (the alive mark too, which
    // `keep_alive` starts writing after this): the time it was down is no one's handle time.
    let down_since = store.last_alive().await?;
    let mut queues = store.queues().await?;
    if queues.is_empty() {
        let general = QueueDefinition::open(QueueId::parse("general")?, "General support");
        store.put_queue(&general).await?;
        queues.push(general);
    }
    // Overflow targets must exist in the engine before the queues that name them.
    for queue in &queues {
        let mut config = queue.routing();
        config.overflow_to = None;
        engine.handle(now, Command::UpsertQueue(config))?;
    }
    for queue in &queues {
        engine.handle(now, Command::UpsertQueue(queue.routing()))?;
    }
    for account in store.accounts().await? {
        let skills = store.account_skills(account.id).await?;
        engine.handle(
            now,
            Command::UpsertOperator(admin::profile_of(&account, &skills)),
        )?;
        hub.set_person(account.id, gateway::hub::Person::of(&account));
    }
    // Open contacts, and those abandoned recently enough to be resumed.
    let mut stored = store.open_contacts().await?;
    let window = settings.routing.resume_window_ms;
    if window > 0 {
        stored.extend(store.abandoned_since(now.plus_ms(-window)).await?);
    }
    // Which of the waiting ones were requeued after losing their operator (first in line).
    let waiting: Vec<ContactId> = stored
        .iter()
        .filter(|c| {
            matches!(
                c.state,
                ContactState::Waiting | ContactState::Offered | ContactState::Abandoned
            )
        })
        .map(|c| c.id)
        .collect();
    let operator_lost: std::collections::HashSet<ContactId> = store
        .lost_their_operator(&waiting)
        .await?
        .into_iter()
        .collect();
    // Who had joined the live ones.
    let live: Vec<ContactId> = stored
        .iter()
        .filter(|c| c.state == ContactState::Assigned)
        .map(|c| c.id)
        .collect();
    let mut participants = participants_from(store.joins_and_leaves(&live).await?);
    // When each one's current stay in its queue began and which queues it overflowed out of, so
    // that relaxation, max wait and overflow go on as they would have without the restart.
    let all: Vec<ContactId> = stored.iter().map(|c| c.id).collect();
    let stays: HashMap<ContactId, crate::store::Stay> = store
        .stays(&all)
        .await?
        .into_iter()
        .map(|stay| (stay.contact, stay))
        .collect();
    let restored: Vec<RestoredContact> = stored
        .into_iter()
        .map(|c| RestoredContact {
            operator_lost: operator_lost.contains(&c.id),
            participants: participants.remove(&c.id).unwrap_or_default(),
            queued_at: stays.get(&c.id).map_or(c.entered_at, |stay| stay.since),
            visited: stays
                .get(&c.id)
                .map(|stay| stay.overflowed_from.clone())
                .unwrap_or_default(),
            contact: NewContact {
                id: c.id,
                extra_skills: gateway::caller::topic_requirements(
                    &settings.caller,
                    c.topic.as_ref(),
                ),
                queue: c.queue,
                channel: c.channel,
                language: c.language,
                topic: c.topic,
                risk: c.risk,
            },
            entered_at: c.entered_at,
            state: c.state,
            operator: c
                .operator
                .filter(|_| matches!(c.state, ContactState::Assigned | ContactState::Wrapping)),
            // A held contact's handle time runs from when its current operator took it (after
            // a transfer, not the first operator's connect the contacts row keeps).
            connected_at: match c.state {
                ContactState::Assigned | ContactState::Wrapping => stays
                    .get(&c.id)
                    .and_then(|stay| stay.last_connect)
                    .or(c.connected_at),
                _ => c.connected_at,
            },
            wrapped_at: stays
                .get(&c.id)
                .and_then(|stay| stay.last_wrap_up)
                .filter(|_| c.state == ContactState::Wrapping),
            ended_at: c.ended_at.filter(|_| c.state == ContactState::Abandoned),
        })
        .collect();
    if !restored.is_empty() {
        tracing::info!(
            contacts = restored.len(),
            "restoring open and resumable contacts"
        );
        let callers: Vec<_> = restored.iter().map(|c| c.contact.id).collect();
        let mut events = engine.restore(now, down_since, restored);
        // Those who hold restored contacts are taken as Available; one who was on break (by
        // choice or after missed offers) stays on break, and is offered nothing new.
        let holding: Vec<OperatorId> = engine
            .operators()
            .into_iter()
            .filter(|o| !o.contacts.is_empty())
            .map(|o| o.id)
            .collect();
        for stored in store.states_before_away(&holding).await? {
            let Some(operator) = stored.operator else {
                continue;
            };
            if let Ok(Event::OperatorState {
                state: OperatorState::Break { reason },
                ..
            }) = serde_json::from_value::<Event>(stored.data)
            {
                let presence = crate::domain::Presence::Break { reason };
                if let Ok(more) = engine.handle(now, Command::SetPresence { operator, presence }) {
                    events.extend(more);
                }
            }
        }
        // No caller is connected after a restart: each one's grace period starts now, so a caller
        // who never comes back is counted as an abandon instead of waiting forever.
        for contact in callers {
            if let Ok(more) = engine.handle(now, Command::CallerDisconnected { contact }) {
                events.extend(more);
            }
        }
        store.record_events(now, &events).await?;
    }
    Ok((engine, queues))
}

/// Who takes part in each contact, from its `join` and `leave` events in order: each person
/// once, with the mode of their last join.
fn participants_from(
    events: Vec<crate::store::StoredEvent>,
) -> HashMap<ContactId, Vec<(OperatorId, JoinMode)>> {
    let mut taking_part: HashMap<ContactId, Vec<(OperatorId, JoinMode)>> = HashMap::new();
    for stored in events {
        match serde_json::from_value::<Event>(stored.data) {
            Ok(Event::Join {
                contact,
                participant,
                mode,
            }) => {
                let people = taking_part.entry(contact).or_default();
                people.retain(|(p, _)| *p != participant);
                people.push((participant, mode));
            }
            Ok(Event::Leave {
                contact,
                participant,
            }) => {
                if let Some(people) = taking_part.get_mut(&contact) {
                    people.retain(|(p, _)| *p != participant);
                }
            }
            _ => tracing::warn!(seq = stored.seq, "unreadable join or leave event; skipped"),
        }
    }
    taking_part
}

/// Runs the server on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with_hooks(listener, settings, shutdown, Hooks::default()).await
}

/// [`run`], with test [`Hooks`].
pub async fn run_with_hooks(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    let store = store::connect(&settings.database.url)
        .await
        .context("opening the database")?;
    tracing::info!(dialect = store.dialect(), "database ready");
    if let Some(FirstAdmin { name, password }) = bootstrap_admin(&store).await? {
        // Printed once to the console on purpose (not logged): the operator of the server needs it.
        println!(
            "No enabled administrator: created the account '{name}' with the one-time password: \
             {password}\nSign in and change it now."
        );
    }
    let lexicon = Arc::new(load_lexicon(&settings)?);
    let note_form = crate::notes::load_form(&settings.notes)?;
    let quality = crate::quality::Quality::load(&settings.quality)?;
    let hub = Arc::new(Hub::default());
    let metrics = Metrics::new();
    let health = StoreHealth::healthy();
    let (engine, queues) = prepare_engine(&settings, &store, &hub).await?;
    let pager = crate::paging::Pager::new(
        store.clone(),
        hub.clone(),
        metrics.clone(),
        settings.paging.clone(),
    )
    .context("starting the pager")?;
    let tasks = TaskTracker::new();
    let (router_task, router) = RouterTask::new(
        engine,
        store.clone(),
        hub.clone(),
        pager.clone(),
        tasks.clone(),
        metrics.clone(),
        health.clone(),
    );
    let router_stop = CancellationToken::new();
    // The shutdown deadline: cancelled `shutdown_grace_ms` after the stop signal.
    let grace = Duration::from_millis(settings.server.shutdown_grace_ms);
    let overdue = CancellationToken::new();
    tokio::spawn({
        let (shutdown, overdue) = (shutdown.clone(), overdue.clone());
        async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
            overdue.cancel();
        }
    });
    let router_join = tokio::spawn(router_task.run(router_stop.clone(), overdue.clone()));
    // Stopped after the router and the transcript writer, to record their last write's time or
    // later; or when `run` returns early (the guard).
    let alive_stop = CancellationToken::new();
    let _alive_stops = alive_stop.clone().drop_guard();
    let alive_every = Duration::from_millis(settings.server.alive_every_ms.max(100));
    let alive_join = tokio::spawn(keep_alive(store.clone(), alive_every, alive_stop.clone()));
    // Stopped with the router, after every connection task has finished writing.
    let (transcripts, transcripts_join) =
        gateway::TranscriptWriter::start(store.clone(), metrics.clone(), router_stop.clone());

    let state = AppState {
        login_limiter: LoginLimiter::per_minute(settings.auth.logins_per_minute),
        join_limiter: AddressLimiter::per_minute(settings.caller.joins_per_minute),
        queues: Arc::new(RwLock::new(
            queues.into_iter().map(|q| (q.id.clone(), q)).collect(),
        )),
        queue_edits: Arc::default(),
        profile_sync: Arc::default(),
        hooks,
        dummy_hash: auth::hash_password(auth::random_token(16)).await?.into(),
        settings: settings.clone(),
        store: store.clone(),
        router,
        transcripts,
        hub: hub.clone(),
        pager: pager.clone(),
        metrics,
        health,
        lexicon,
        note_form,
        quality,
        shutdown: shutdown.clone(),
        tasks,
    };
    // The timer worker and auditor: stopped by `shutdown`, waited for with the connections.
    state.tasks.spawn(pager.run(shutdown.clone()));
    // Live KPI metrics, certification lapses and audit draws: stopped by `shutdown`.
    crate::quality::spawn(&state, &shutdown);
    state
        .tasks
        .spawn(forget_idle_limits(state.clone(), shutdown.clone()));
    let app = routes(state.clone());
    tracing::info!(address = %listener.local_addr()?, "listening");
    // Chat frames are small and latency matters more than packet count: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    // Graceful shutdown waits for every HTTP request to end; a client that never finishes one
    // must not hold the process, so the deadline cuts it short.
    match before(&overdue, serve.into_future()).await {
        Some(served) => served?,
        None => tracing::warn!("HTTP requests still unfinished at the shutdown deadline; dropped"),
    }

    tracing::info!("shutting down: closing connections");
    state.tasks.close();
    if before(&overdue, state.tasks.wait()).await.is_none() {
        tracing::warn!(
            tasks = state.tasks.len(),
            "connections or background tasks still running at the shutdown deadline; cut short"
        );
    }
    router_stop.cancel();
    let flushed = async {
        let _ = router_join.await;
        let _ = transcripts_join.await;
        // The last alive mark, after every other write: a restart takes this stop, not the last
        // event or line before it, as when the server stopped.
        alive_stop.cancel();
        let _ = alive_join.await;
    };
    let too_late = async {
        overdue.cancelled().await;
        tokio::time::sleep(FLUSH_MARGIN).await;
    };
    tokio::select! {
        _ = flushed => tracing::info!("stopped"),
        _ = too_late => tracing::warn!(
            "the router, the transcript writer or the last alive mark still writing after the shutdown deadline; stopped without them"
        ),
    }
    Ok(())
}

/// `work`'s outcome, or `None` if the shutdown deadline passes first (`work` is dropped). Work
/// that is already done wins over a deadline that has passed.
async fn before<T>(overdue: &CancellationToken, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        done = work => Some(done),
        _ = overdue.cancelled() => None,
    }
}

pub fn routes(state: AppState) -> Router {
    let api = Router::new()
        .route("/login", post(auth::http::login))
        .route("/logout", post(auth::http::logout))
        .route("/me", get(auth::http::me))
        .route("/me/password", post(auth::http::change_password))
        .route("/public/info", get(gateway::public::info))
        .route("/wallboard", get(gateway::public::wallboard))
        .route("/staff", get(gateway::public::staff))
        .route(
            "/contacts/{id}/transcript",
            get(gateway::public::transcript),
        )
        .route("/notes/form", get(crate::notes::http::form))
        .route(
            "/contacts/{id}/notes",
            get(crate::notes::http::notes_of_contact),
        )
        .route("/contacts/{id}/note", put(crate::notes::http::save_draft))
        .route(
            "/contacts/{id}/note/submit",
            post(crate::notes::http::submit),
        )
        .route("/notes/{id}/amendments", post(crate::notes::http::amend))
        .route("/queues", get(admin::list_queues))
        .route("/skills", get(admin::list_skills))
        .route(
            "/admin/accounts",
            get(admin::list_accounts).post(admin::create_account),
        )
        .route(
            "/admin/accounts/{id}",
            axum::routing::patch(admin::update_account),
        )
        .route(
            "/admin/accounts/{id}/skills",
            put(admin::set_account_skills),
        )
        .route("/admin/accounts/{id}/password", post(admin::reset_password))
        .route("/admin/skills/{skill}", put(admin::put_skill))
        .route(
            "/admin/queues/{id}",
            put(admin::put_queue).delete(admin::delete_queue),
        )
        .merge(crate::paging::http::routes())
        .merge(crate::quality::http::routes())
        // Refusals of the API itself answer an ErrorBody like every other.
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(64 * 1024));

    let router = Router::new()
        .nest("/api", api)
        .route("/ws/caller", get(gateway::caller::upgrade))
        .route("/ws/staff", get(gateway::staff::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(crate::console::serve);
    router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            crate::error::panic_response,
        ))
        // Method and route, never the URI: see `crate::logs`.
        .layer(crate::logs::http_trace_layer())
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store_ok = state.health.is_ok() && state.store.ping().await.is_ok();
    if store_ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

/// How long a scrape waits for the router's picture of the floor. The router answers reads
/// between batches; while it retries a write the store refuses, it answers none.
const FLOOR_READ_WAIT: Duration = Duration::from_millis(500);

/// Refreshes the floor gauges from the engine and hub, then encodes every metric.
///
/// The scrape never waits longer than [`FLOOR_READ_WAIT`] for the router: during a store outage
/// (exactly when the figures matter) the counters, the store failures and the connections are
/// served at once, and the floor gauges keep the values of the last scrape that got them.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.metrics.clone();
    let counts = state.hub.connection_counts();
    for (role, n) in [
        ("caller", counts.callers),
        ("operator", counts.operators),
        ("crisis_lead", counts.crisis_leads),
        ("supervisor", counts.supervisors),
        ("admin", counts.admins),
    ] {
        m.connections.with_label_values(&[role]).set(n as i64);
    }
    let hub = state.hub.clone();
    let snapshot = state.router.read(move |engine, now| {
        // The people who may take or join contacts: not admins, not disabled accounts.
        let states: Vec<&'static str> = engine
            .operators()
            .iter()
            .filter(|o| {
                hub.person(o.id)
                    .is_some_and(|p| p.role != Role::Admin && !p.disabled)
            })
            .map(|o| state_label(&o.state))
            .collect();
        (states, engine.waiting_summary(), now)
    });
    if let Ok(Ok((states, waiting, now))) = tokio::time::timeout(FLOOR_READ_WAIT, snapshot).await {
        m.operators.reset();
        for s in ["available", "busy", "wrap_up", "break", "away", "offline"] {
            m.operators.with_label_values(&[s]).set(0);
        }
        for s in states {
            m.operators.with_label_values(&[s]).inc();
        }
        m.contacts_waiting.reset();
        m.oldest_wait_seconds.reset();
        let mut oldest: BTreeMap<String, i64> = BTreeMap::new();
        for w in waiting {
            m.contacts_waiting
                .with_label_values(&[w.queue.as_str(), w.risk.as_str()])
                .set(w.waiting as i64);
            if let Some(at) = w.oldest_waiting_since {
                let secs = now.since(at) / 1000;
                let e = oldest.entry(w.queue.to_string()).or_default();
                *e = (*e).max(secs);
            }
        }
        for (queue, secs) in oldest {
            m.oldest_wait_seconds.with_label_values(&[&queue]).set(secs);
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        m.encode(),
    )
}
