//! The real server on 127.0.0.1:0 for integration tests: start it on a fresh database, sign in,
//! open staff and caller WebSockets, stop it (and start it again on the same database).
//!
//! Use it from a test binary with `#[macro_use] mod common;` and `use common::server::*;`, then
//! write each test body once as `async fn name(db: FreshDb)` and generate a `#[tokio::test]` per
//! database with `server_test!(name);` (the macro expects the body's module to `use` this one).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
pub use hotline::app::{Hooks, StaffStage};
use hotline::config::Settings;
use hotline::domain::{Language, OperatorId, Proficiency, Role, Skill, Timestamp};
use hotline::store::{DynStore, NewAccount, SkillInfo};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::{Backend, FreshDb};

pub const PASSWORD: &str = "a long test password";

/// Generates one `#[tokio::test]` per database for an `async fn(FreshDb)` body.
#[allow(unused_macros)]
macro_rules! server_test {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = fresh_database(Backend::Sqlite).await.expect("sqlite");
                super::$name(db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = fresh_database(Backend::Postgres).await else {
                    eprintln!("PostgreSQL not configured; skipped outside CI");
                    return;
                };
                super::$name(db).await;
            }
        }
    };
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
    pub store: DynStore,
}

pub fn test_settings(db: &FreshDb) -> Settings {
    let mut s = Settings::default();
    s.database.url = db.url().to_owned();
    s.server.shutdown_grace_ms = 2_000;
    s.auth.logins_per_minute = 1_000;
    s.caller.joins_per_minute = 1_000;
    s.routing.offer_timeout_ms = 3_000;
    s.routing.operator_grace_ms = 1_000;
    s.routing.caller_grace_ms = 1_000;
    s
}

pub async fn start(db: &FreshDb, settings: Settings) -> Server {
    start_with_hooks(db, settings, Hooks::default()).await
}

/// [`start`], with hooks that hold connections at chosen points (see [`StaffGate`]).
pub async fn start_with_hooks(db: &FreshDb, settings: Settings, hooks: Hooks) -> Server {
    let store = db.connect().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(hotline::run_with_hooks(
        listener,
        settings,
        shutdown.clone(),
        hooks,
    ));
    let server = Server {
        addr,
        shutdown,
        handle,
        store,
    };
    // Wait until it answers.
    for _ in 0..100 {
        if reqwest::get(server.url("/healthz")).await.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("stops within 10 s")
            .unwrap()
            .unwrap();
    }

    /// Stops the server while `staff` is connected; the console must be told `shutdown`.
    pub async fn stop_telling(self, staff: &mut Ws) {
        let stop = tokio::spawn(self.stop());
        staff.expect("shutdown").await;
        stop.await.unwrap();
    }

    /// Creates an account directly in the store (with skills), as `hotline user add` would.
    /// Returns its id.
    pub async fn account(&self, name: &str, role: Role, skills: &[(&str, u8)]) -> i64 {
        let account = self
            .store
            .create_account(
                NewAccount {
                    name: name.into(),
                    display_name: format!("{name} display"),
                    role,
                    password_hash: hotline::auth::hash_password(PASSWORD.into()).await.unwrap(),
                    languages: vec![
                        Language::parse("zh").unwrap(),
                        Language::parse("en").unwrap(),
                    ],
                    chat_capacity: 2,
                    voice_capacity: 1,
                    voice_excludes_chat: true,
                    must_change_password: false,
                },
                Timestamp::now(),
            )
            .await
            .unwrap();
        let mut levels = Vec::new();
        for (skill, level) in skills {
            let skill = Skill::parse(skill).unwrap();
            self.store
                .put_skill(SkillInfo {
                    skill: skill.clone(),
                    description: String::new(),
                })
                .await
                .unwrap();
            levels.push((skill, Proficiency::new(*level).unwrap()));
        }
        self.store
            .set_account_skills(account.id, &levels)
            .await
            .unwrap();
        account.id.0
    }

    /// Creates an account without skills (see [`Server::account`]) and signs it in; returns its
    /// session cookie.
    pub async fn signed_in(&self, name: &str, role: Role) -> String {
        self.account(name, role, &[]).await;
        self.login(name).await
    }

    /// Signs in and returns the session cookie (`name=value`).
    pub async fn login(&self, name: &str) -> String {
        self.login_with(name, PASSWORD).await
    }

    /// [`Server::login`] with a password other than the test accounts' [`PASSWORD`].
    pub async fn login_with(&self, name: &str, password: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/api/login"))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login {name}");
        let set = response
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        session_cookie(&response)
    }

    pub async fn staff(&self, name: &str) -> Ws {
        self.staff_with_hello(name).await.0
    }

    /// Signs in, opens the staff socket (its `hello` read) and goes available: a console that
    /// is offered contacts.
    pub async fn available_staff(&self, name: &str) -> Ws {
        let mut ws = self.staff(name).await;
        available(&mut ws).await;
        ws
    }

    /// Signs in, opens the staff socket and returns it with its `hello` frame.
    pub async fn staff_with_hello(&self, name: &str) -> (Ws, Value) {
        let mut ws = self.staff_socket(name).await;
        let hello = ws.expect("hello").await;
        (ws, hello)
    }

    /// Signs in and opens the staff socket, reading nothing from it.
    pub async fn staff_socket(&self, name: &str) -> Ws {
        let cookie = self.login(name).await;
        self.staff_socket_with(&cookie).await
    }

    /// Opens the staff socket of the session `cookie` (`name=value`), reading nothing from it.
    pub async fn staff_socket_with(&self, cookie: &str) -> Ws {
        let mut request = format!("ws://{}/ws/staff", self.addr)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        Ws(socket)
    }

    /// A caller joins `general`; `operator` signs in, goes available and accepts the contact.
    /// Returns the caller's socket, its `joined` frame and the operator's socket.
    pub async fn connected_contact(&self, operator: &str) -> (Ws, Value, Ws) {
        let (mut caller, joined) = self.caller_joins(join("general", "no")).await;
        let mut op = self.available_staff(operator).await;
        op.expect_where("offer", |f| f["contact"]["id"] == joined["contact"])
            .await;
        accept(&mut op, &joined["contact"]).await;
        caller.expect("connected").await;
        (caller, joined, op)
    }

    /// A caller sends the join frame `form` while `op` is available: `op` is offered the contact
    /// and accepts it. Returns the caller's socket, its `joined` frame and `op`'s `assigned` frame.
    pub async fn accepted_contact(&self, op: &mut Ws, form: Value) -> (Ws, Value, Value) {
        let (caller, joined) = self.caller_joins(form).await;
        op.expect_where("offer", |f| f["contact"]["id"] == joined["contact"])
            .await;
        let assigned = accept(op, &joined["contact"]).await;
        (caller, joined, assigned)
    }

    /// A caller opens a socket and sends the join frame `form` (see [`join`]). Returns the
    /// socket and its `joined` frame.
    pub async fn caller_joins(&self, form: Value) -> (Ws, Value) {
        let mut caller = self.caller().await;
        caller.send(form).await;
        let joined = caller.expect("joined").await;
        (caller, joined)
    }

    /// A caller comes back: opens a socket and sends `resume` with `token`. The answer
    /// (`resumed`, or an error) is left for the test to read.
    pub async fn caller_resumes(&self, token: impl Serialize) -> Ws {
        let mut caller = self.caller().await;
        caller
            .send(json!({"type": "resume", "resume_token": token}))
            .await;
        caller
    }

    pub async fn caller(&self) -> Ws {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws/caller", self.addr))
            .await
            .unwrap();
        let mut ws = Ws(socket);
        ws.expect("hello").await;
        ws
    }

    /// A caller's socket opened from `from` (any 127.x.y.z is this machine), with an
    /// `X-Forwarded-For` header when one is given, as a reverse proxy would open it.
    pub async fn caller_from(&self, from: IpAddr, forwarded_for: Option<&str>) -> Ws {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(self.addr).await.unwrap();
        let mut request = format!("ws://{}/ws/caller", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(forwarded) = forwarded_for {
            request
                .headers_mut()
                .insert("x-forwarded-for", forwarded.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
        let mut ws = Ws(socket);
        ws.expect("hello").await;
        ws
    }

    /// The text of `/metrics`, as a scraper reads it.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn events_of(&self, contact: i64) -> Vec<String> {
        self.store
            .events_of_contact(hotline::domain::ContactId(contact))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// Whether the contact's event log has an event of `kind`.
    pub async fn has_event(&self, contact: i64, kind: &str) -> bool {
        self.events_of(contact).await.iter().any(|k| k == kind)
    }
}

/// Holds the next staff connection of one person at one [`StaffStage`] until released, so that
/// a test can change the account at exactly that point.
#[derive(Clone, Default)]
pub struct StaffGate(Arc<GateInner>);

#[derive(Default)]
struct GateInner {
    armed: std::sync::Mutex<Option<(OperatorId, StaffStage)>>,
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl StaffGate {
    /// The hooks to start the server with.
    pub fn hooks(&self) -> Hooks {
        let gate = self.clone();
        Hooks {
            staff: Some(Arc::new(move |who, stage| {
                let gate = gate.clone();
                Box::pin(async move {
                    let hit = {
                        let mut armed = gate.0.armed.lock().unwrap();
                        let hit = *armed == Some((who, stage));
                        if hit {
                            *armed = None;
                        }
                        hit
                    };
                    if hit {
                        gate.0.reached.notify_one();
                        gate.0.release.notified().await;
                    }
                })
            })),
        }
    }

    /// Holds the next connection of `who` when it reaches `stage`.
    pub fn hold(&self, who: i64, stage: StaffStage) {
        *self.0.armed.lock().unwrap() = Some((OperatorId(who), stage));
    }

    /// Waits until a connection is held.
    pub async fn reached(&self) {
        tokio::time::timeout(Duration::from_secs(5), self.0.reached.notified())
            .await
            .expect("a connection held within 5 s");
    }

    /// Lets the held connection go on.
    pub fn release(&self) {
        self.0.release.notify_one();
    }
}

/// A WebSocket client speaking JSON frames.
pub struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    pub async fn send(&mut self, frame: Value) {
        self.0
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.0.send(Message::Text(text.into())).await.unwrap();
    }

    /// A round trip: `ping`, then its `pong`. The server has read everything sent before it,
    /// and the connection is still usable.
    pub async fn ping(&mut self) {
        self.send(json!({"type": "ping"})).await;
        self.expect("pong").await;
    }

    /// The next JSON frame, within 5 s.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("a frame within 5 s")
                .expect("the socket is open")
                .expect("a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Reads frames until one of type `kind` arrives (others — position updates, floor pictures,
    /// state changes — are passed over) and returns it.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        loop {
            let frame = tokio::time::timeout_at(deadline, self.next())
                .await
                .unwrap_or_else(|_| panic!("no {kind} frame in time"));
            if frame["type"] == kind {
                return frame;
            }
            assert_ne!(
                frame["type"], "error",
                "unexpected error while waiting for {kind}: {frame}"
            );
        }
    }

    /// Like [`Ws::expect`], for the first frame of type `kind` that also satisfies `test`.
    pub async fn expect_where(&mut self, kind: &str, test: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.expect(kind).await;
            if test(&frame) {
                return frame;
            }
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        self.closed_with_reason().await.map(|(code, _)| code)
    }

    /// [`Ws::closed`], with the close frame's reason.
    pub async fn closed_with_reason(&mut self) -> Option<(u16, String)> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.0.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return frame.map(|f| (f.code.into(), f.reason.to_string()));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => return None,
                Err(_) => panic!("socket not closed in time"),
            }
        }
    }
}

/// One signed-in JSON request: the status and the body as JSON (an empty body as null, any other
/// body that is not JSON as a string). An empty `cookie` sends none: a request from nobody in
/// particular (the public pages, sign-in).
pub async fn api(
    server: &Server,
    cookie: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, server.url(path));
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = match text.as_str() {
        "" => Value::Null,
        _ => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    };
    (status, body)
}

/// A signed-in GET whose response is read as it is: for bodies that are not JSON (CSV, HTML,
/// iCalendar) and for headers. An empty `cookie` sends none.
pub async fn get_raw(server: &Server, cookie: &str, path: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url(path));
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

pub async fn get(server: &Server, cookie: &str, path: &str) -> (u16, Value) {
    api(server, cookie, "GET", path, None).await
}

pub async fn post(server: &Server, cookie: &str, path: &str, body: Value) -> (u16, Value) {
    api(server, cookie, "POST", path, Some(body)).await
}

pub async fn put(server: &Server, cookie: &str, path: &str, body: Value) -> (u16, Value) {
    api(server, cookie, "PUT", path, Some(body)).await
}

pub async fn patch(server: &Server, cookie: &str, path: &str, body: Value) -> (u16, Value) {
    api(server, cookie, "PATCH", path, Some(body)).await
}

pub async fn delete(server: &Server, cookie: &str, path: &str) -> (u16, Value) {
    api(server, cookie, "DELETE", path, None).await
}

/// An administrator's change to account `id` (`PATCH /api/admin/accounts/{id}`).
pub async fn edit_account(
    server: &Server,
    admin: &str,
    id: impl std::fmt::Display,
    changes: Value,
) -> (u16, Value) {
    patch(server, admin, &format!("/api/admin/accounts/{id}"), changes).await
}

/// The session cookie (`name=value`) a response sets.
pub fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// An account's id, by login name.
pub async fn id_of(store: &DynStore, name: &str) -> i64 {
    store.account_by_name(name).await.unwrap().id.0
}

pub fn join(queue: &str, screening: &str) -> Value {
    json!({"type": "join", "queue": queue, "language": "zh", "topic": "family",
           "screening": screening, "accepted_confidentiality": true,
           "caller_key": "browser-key-0123456789"})
}

/// A caller's line: `say` with the caller's own `client_id`, which its `said` names.
pub fn say(text: impl Serialize, client_id: impl Serialize) -> Value {
    json!({"type": "say", "text": text, "client_id": client_id})
}

/// A staff member's line in `contact` (see [`say`]).
pub fn say_to(contact: impl Serialize, text: impl Serialize, client_id: impl Serialize) -> Value {
    json!({"type": "say", "contact": contact, "text": text, "client_id": client_id})
}

pub async fn available(ws: &mut Ws) {
    ws.send(json!({"type": "set_presence", "presence": {"status": "available"}}))
        .await;
}

/// Accepts the offer of `contact`; returns the `assigned` frame.
pub async fn accept(ws: &mut Ws, contact: impl Serialize) -> Value {
    ws.send(json!({"type": "accept", "contact": contact})).await;
    ws.expect("assigned").await
}

/// Ends the conversation with `contact`; returns the `wrap_up` frame.
pub async fn end(ws: &mut Ws, contact: impl Serialize) -> Value {
    ws.send(json!({"type": "end", "contact": contact})).await;
    ws.expect("wrap_up").await
}

/// Finishes the wrap-up of `contact`; returns the `completed` frame.
pub async fn finish_wrap_up(ws: &mut Ws, contact: impl Serialize) -> Value {
    ws.send(json!({"type": "finish_wrap_up", "contact": contact}))
        .await;
    ws.expect("completed").await
}

/// Staff join a live contact in `mode` (`monitor`, `whisper` or `barge`); returns the `joined`
/// frame.
pub async fn join_contact(ws: &mut Ws, contact: impl Serialize, mode: &str) -> Value {
    ws.send(json!({"type": "join", "contact": contact, "mode": mode}))
        .await;
    ws.expect("joined").await
}

/// Makes every insert into `incidents` fail, as a passing database error would (a failover, a
/// dropped connection), or lets them through again.
pub async fn incidents_fail(db: &FreshDb, fail: bool) {
    let statements: &[&'static str] = match (db.backend(), fail) {
        (Backend::Postgres, true) => &[
            "CREATE OR REPLACE FUNCTION incidents_fail() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the database is briefly unavailable'; END $$",
            "CREATE TRIGGER incidents_fail BEFORE INSERT ON incidents \
             FOR EACH ROW EXECUTE FUNCTION incidents_fail()",
        ],
        (Backend::Postgres, false) => &["DROP TRIGGER incidents_fail ON incidents"],
        (Backend::Sqlite, true) => &["CREATE TRIGGER incidents_fail BEFORE INSERT ON incidents \
             BEGIN SELECT RAISE(ABORT, 'the database is briefly unavailable'); END"],
        (Backend::Sqlite, false) => &["DROP TRIGGER incidents_fail"],
    };
    for statement in statements {
        db.execute(statement).await;
    }
}

/// Makes every insert into and update of `table` fail, as a passing database error would, or
/// lets them through again.
pub async fn writes_fail(db: &FreshDb, table: &str, fail: bool) {
    let statements: Vec<String> = match (db.backend(), fail) {
        (Backend::Postgres, true) => vec![
            format!(
                "CREATE OR REPLACE FUNCTION {table}_fail() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'the database is briefly unavailable'; END $$"
            ),
            format!(
                "CREATE TRIGGER {table}_fail BEFORE INSERT OR UPDATE ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION {table}_fail()"
            ),
        ],
        (Backend::Postgres, false) => vec![format!("DROP TRIGGER {table}_fail ON {table}")],
        (Backend::Sqlite, true) => ["INSERT", "UPDATE"]
            .iter()
            .map(|op| {
                format!(
                    "CREATE TRIGGER {table}_{op}_fail BEFORE {op} ON {table} \
                     BEGIN SELECT RAISE(ABORT, 'the database is briefly unavailable'); END"
                )
            })
            .collect(),
        (Backend::Sqlite, false) => ["INSERT", "UPDATE"]
            .iter()
            .map(|op| format!("DROP TRIGGER {table}_{op}_fail"))
            .collect(),
    };
    for statement in statements {
        db.execute(&statement).await;
    }
}

/// Waits (up to `secs`) until the contact has an open incident; panics with `why` if it never does.
pub async fn wait_for_incident(server: &Server, cookie: &str, contact: i64, secs: u64, why: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, open) = get(server, cookie, "/api/incidents?state=open").await;
        assert_eq!(status, 200, "{open}");
        if open
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["contact"] == contact)
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{why}: {open}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
