//! Paging the crisis team, over the real server on SQLite and PostgreSQL: a crisis flag pages at
//! once (signed webhook, console, e-mail), escalation after a level's delay, acknowledgement,
//! the acknowledgement timeout, exactly-once escalation across a restart and a second worker,
//! retries and dead letters, policy and schedule checks, the iCalendar export; and the pager's
//! entry points and auditor against the store directly.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use common::server::*;
use common::{Backend, FreshDb, fresh_database};
use hmac::{Hmac, KeyInit, Mac};
use hotline::config::{Settings, SmtpSettings, SmtpTls};
use hotline::domain::{
    Channel, ContactId, Language, OperatorId, QueueId, RiskLevel, Role, Timestamp,
};
use hotline::gateway::Hub;
use hotline::metrics::Metrics;
use hotline::paging::{FlagSource, IncidentState, Pager};
use hotline::store::{DynStore, NewContactRecord};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const SECRET: &str = "webhook-test-secret";

// ---- a webhook receiver on loopback ----

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    json: Value,
    at: Instant,
}

/// A tiny axum server on 127.0.0.1:0 that records every POST and answers 200.
struct Receiver {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let recorded = hits.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let recorded = recorded.clone();
                async move {
                    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    recorded.lock().unwrap().push(Hit {
                        path: uri.path().to_owned(),
                        headers,
                        body,
                        json,
                        at: Instant::now(),
                    });
                    AxumStatus::OK
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn hits_at(&self, path: &str) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.path == path).collect()
    }

    /// Waits (up to `within`) for the first hit on `path` satisfying `test`.
    async fn wait_for(&self, path: &str, within: Duration, test: impl Fn(&Hit) -> bool) -> Hit {
        let deadline = Instant::now() + within;
        loop {
            if let Some(hit) = self.hits_at(path).into_iter().find(|h| test(h)) {
                return hit;
            }
            assert!(
                Instant::now() < deadline,
                "no webhook on {path} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn verify_signature(hit: &Hit) {
    let header = hit.headers["x-hotline-signature"].to_str().unwrap();
    let hex = header.strip_prefix("sha256=").expect("sha256= prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&hit.body);
    mac.verify_slice(&hex::decode(hex).unwrap())
        .expect("the signature verifies");
}

// ---- a fake SMTP server on loopback ----

/// Accepts SMTP sessions and keeps each message's DATA.
async fn fake_smtp() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = mails.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(text) = data.as_mut() {
                        if line == "." {
                            kept.lock().unwrap().push(data.take().unwrap());
                            write.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            text.push_str(&line);
                            text.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 fake\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    if write.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, mails)
}

// ---- the crew ----

fn paging_settings(db: &FreshDb, receiver: &Receiver) -> Settings {
    let mut s = test_settings(db);
    s.paging.webhook_url = Some(receiver.url("/global"));
    s.paging.webhook_secret = Some(SECRET.into());
    s.paging.send_timeout_ms = 1_000;
    s.paging.max_attempts = 3;
    s.paging.retry_base_ms = 50;
    s.paging.retry_max_ms = 200;
    s.paging.poll_ms = 200;
    s.paging.audit_interval_ms = 500;
    s.paging.audit_slack_ms = 2_000;
    s
}

/// A contact row, as a caller's join would make it.
async fn contact(store: &DynStore) -> i64 {
    contact_at(store, RiskLevel::High).await
}

async fn contact_at(store: &DynStore, risk: RiskLevel) -> i64 {
    store
        .create_contact(NewContactRecord {
            queue: QueueId::parse("general").unwrap(),
            channel: Channel::Chat,
            language: Language::parse("zh").unwrap(),
            topic: None,
            age_group: None,
            risk,
            caller_key_hash: None,
            resume_token_hash: hotline::auth::random_token(16),
            entered_at: Timestamp::now(),
        })
        .await
        .unwrap()
        .0
}

/// Accounts `boss` (admin), `sup` (supervisor), `lead1`, `lead2` (crisis leads) and `op`; each
/// lead's webhook goes to `/lead1`, `/lead2` on the receiver.
struct Crew {
    admin: String,
    sup: String,
    lead1: i64,
    lead2: i64,
}

async fn crew(server: &Server, receiver: &Receiver) -> Crew {
    let admin = server.signed_in("boss", Role::Admin).await;
    server.account("sup", Role::Supervisor, &[]).await;
    let lead1 = server.account("lead1", Role::CrisisLead, &[]).await;
    let lead2 = server.account("lead2", Role::CrisisLead, &[]).await;
    server.account("op", Role::Operator, &[]).await;
    for (id, path) in [(lead1, "/lead1"), (lead2, "/lead2")] {
        let (status, _) = put(
            server,
            &admin,
            &format!("/api/admin/paging-addresses/{id}"),
            json!({"webhook": receiver.url(path)}),
        )
        .await;
        assert_eq!(status, 200);
    }
    Crew {
        sup: server.login("sup").await,
        admin,
        lead1,
        lead2,
    }
}

/// The opening of most tests here: a webhook receiver, the server started with
/// [`paging_settings`] for it, and the [`crew`].
async fn crewed_server(db: &FreshDb) -> (Receiver, Server, Crew) {
    let receiver = Receiver::start().await;
    let server = start(db, paging_settings(db, &receiver)).await;
    let crew = crew(&server, &receiver).await;
    (receiver, server, crew)
}

/// The default policy: lead1, then (after `delay_ms`) lead2, each waited on `delay_ms`.
async fn two_level_policy(
    server: &Server,
    crew: &Crew,
    delay_ms: u64,
    second_delay_ms: u64,
) -> i64 {
    let (status, policy) = post(
        server,
        &crew.admin,
        "/api/admin/escalation-policies",
        json!({
            "name": "crisis team",
            "default_for_crisis": true,
            "levels": [
                {"targets": [{"type": "person", "id": crew.lead1}], "delay_ms": delay_ms},
                {"targets": [{"type": "person", "id": crew.lead2}], "delay_ms": second_delay_ms},
            ],
            "repeat": 0,
        }),
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    policy["id"].as_i64().unwrap()
}

async fn flag(server: &Server, cookie: &str, contact: i64, reason: &str) -> i64 {
    let (status, body) = post(
        server,
        cookie,
        &format!("/api/contacts/{contact}/crisis"),
        json!({"reason": reason}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["incident"].as_i64().unwrap()
}

async fn detail(server: &Server, cookie: &str, incident: i64) -> Value {
    let (status, body) = get(server, cookie, &format!("/api/incidents/{incident}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn steps<'a>(detail: &'a Value, kind: &str) -> Vec<&'a Value> {
    detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == kind)
        .collect()
}

/// Polls the incident until `test` holds (up to `within`).
async fn wait_detail(
    server: &Server,
    cookie: &str,
    incident: i64,
    within: Duration,
    test: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let d = detail(server, cookie, incident).await;
        if test(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "incident never got there: {d:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------------------------------------

/// A crisis flag pages level 1 at once: a signed webhook (personal and global) within a second,
/// the console rings, an e-mail goes out; supervisors see the incident; a second flag on the
/// same contact joins the open incident.
async fn crisis_flag_pages_at_once(db: FreshDb) {
    let receiver = Receiver::start().await;
    let (smtp_port, mails) = fake_smtp().await;
    let mut settings = paging_settings(&db, &receiver);
    settings.paging.smtp = Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port: smtp_port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Hotline paging <paging@hotline.test>".into(),
    });
    settings.paging.console_url = Some("https://hotline.test".into());
    let server = start(&db, settings).await;
    let crew = crew(&server, &receiver).await;
    let (status, _) = put(
        &server,
        &crew.admin,
        &format!("/api/admin/paging-addresses/{}", crew.lead1),
        json!({"webhook": receiver.url("/lead1"), "email": "lead1@hotline.test"}),
    )
    .await;
    assert_eq!(status, 200);
    two_level_policy(&server, &crew, 60_000, 60_000).await;
    let mut lead1 = server.staff("lead1").await;
    let mut sup_ws = server.staff("sup").await;
    let contact = contact(&server.store).await;

    let flagged_at = Instant::now();
    let incident = flag(&server, &crew.sup, contact, "has a plan and the means").await;
    let hit = receiver
        .wait_for("/lead1", Duration::from_secs(1), |_| true)
        .await;
    assert!(
        hit.at - flagged_at < Duration::from_secs(1),
        "{:?}",
        hit.at - flagged_at
    );
    verify_signature(&hit);
    assert_eq!(hit.headers["content-type"], "application/json");
    let key = hit.headers["idempotency-key"].to_str().unwrap().to_owned();
    assert!(
        key.starts_with(&format!("hotline-incident-{incident}-page-")),
        "{key}"
    );
    assert_eq!(hit.json["event"], "page");
    assert_eq!(hit.json["incident"]["id"], incident);
    assert_eq!(hit.json["incident"]["contact"], contact);
    assert_eq!(hit.json["incident"]["level"], 1);
    assert_eq!(hit.json["target"], crew.lead1);
    assert_eq!(
        hit.json["console_url"],
        format!("https://hotline.test/incidents/{incident}")
    );
    assert!(
        !String::from_utf8_lossy(&hit.body).contains("plan"),
        "no reason leaves the server"
    );
    let global = receiver
        .wait_for("/global", Duration::from_secs(1), |_| true)
        .await;
    verify_signature(&global);
    assert_eq!(global.json["target"], Value::Null);

    let page = lead1.expect("page").await;
    assert_eq!(page["incident"]["id"], incident);
    assert_eq!(page["incident"]["state"], "triggered");
    assert_eq!(page["incident"]["urgency"], "high");
    assert_eq!(page["incident"]["reason"], "has a plan and the means");
    let changed = sup_ws.expect("incident_changed").await;
    assert_eq!(changed["incident"]["id"], incident);

    // The e-mail (fake SMTP on loopback).
    let deadline = Instant::now() + Duration::from_secs(3);
    while mails.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no e-mail");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mail = mails.lock().unwrap()[0].clone();
    assert!(
        mail.contains(&format!("Crisis incident #{incident} needs you (level 1)")),
        "{mail}"
    );
    assert!(!mail.contains("plan"), "{mail}");

    // Every attempt is on the timeline.
    let d = wait_detail(&server, &crew.sup, incident, Duration::from_secs(3), |d| {
        steps(d, "paged").len() >= 4
    })
    .await;
    assert_eq!(d["incident"]["state"], "triggered");
    assert_eq!(
        d["incident"]["source"],
        json!({"kind": "operator", "operator": id_of(&server.store, "sup").await})
    );
    assert_eq!(steps(&d, "triggered").len(), 1);
    let escalated = steps(&d, "escalated");
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0]["level"], 1);
    assert_eq!(escalated[0]["targets"], json!([crew.lead1]));
    assert_eq!(escalated[0]["cause"], "triggered");
    let mut channels: Vec<(String, String)> = steps(&d, "paged")
        .iter()
        .map(|s| {
            (
                s["channel"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    channels.sort();
    assert_eq!(
        channels,
        vec![
            ("console".into(), "sent".into()),
            ("email".into(), "delivered".into()),
            ("webhook".into(), "delivered".into()),
            ("webhook".into(), "delivered".into()),
        ]
    );

    // A second flag on the same contact goes onto the open incident; admins may not flag.
    assert_eq!(flag(&server, &crew.sup, contact, "").await, incident);
    let d = detail(&server, &crew.sup, incident).await;
    assert_eq!(steps(&d, "flagged").len(), 1);
    assert_eq!(
        steps(&d, "escalated").len(),
        1,
        "no second page for the same crisis"
    );
    let (status, body) = api(
        &server,
        &crew.admin,
        "POST",
        &format!("/api/contacts/{contact}/crisis"),
        None,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = api(
        &server,
        &crew.sup,
        "POST",
        "/api/contacts/999999/crisis",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, open) = get(&server, &crew.sup, "/api/incidents?state=open").await;
    assert_eq!(status, 200);
    assert_eq!(open.as_array().unwrap().len(), 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("hotline_incidents{state=\"triggered\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_escalations_total{level=\"1\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("hotline_notifications_total{channel=\"webhook\",outcome=\"delivered\"} 2"),
        "{metrics}"
    );
    server.stop().await;
}

server_test!(crisis_flag_pages_at_once);

/// Nobody acknowledges: level 2 is paged after level 1's delay, exactly once.
async fn unacknowledged_escalates_to_level_two(db: FreshDb) {
    let (receiver, server, crew) = crewed_server(&db).await;
    two_level_policy(&server, &crew, 300, 60_000).await;
    let mut lead2 = server.staff("lead2").await;
    let contact = contact(&server.store).await;
    let flagged = Instant::now();
    let incident = flag(&server, &crew.sup, contact, "").await;

    receiver
        .wait_for("/lead1", Duration::from_secs(1), |_| true)
        .await;
    let second = receiver
        .wait_for("/lead2", Duration::from_secs(6), |_| true)
        .await;
    // Not before the level's delay (300 ms), counted from the incident's start, which came after
    // `flagged` (from level 1's delivery it could look shorter: that delivery may be late on a busy
    // machine). The upper bound only says it did not stall (timing is for benchmarks, not tests);
    // a millisecond is given for timestamps kept in whole milliseconds.
    let waited = second.at - flagged;
    assert!(
        waited >= Duration::from_millis(299),
        "level 2 came after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "level 2 came after {waited:?}"
    );
    verify_signature(&second);
    assert_eq!(second.json["incident"]["level"], 2);
    assert_eq!(lead2.expect("page").await["incident"]["level"], 2);

    let d = wait_detail(&server, &crew.sup, incident, Duration::from_secs(2), |d| {
        steps(d, "escalated").len() == 2
    })
    .await;
    let levels: Vec<(i64, &str)> = steps(&d, "escalated")
        .iter()
        .map(|s| (s["level"].as_i64().unwrap(), s["cause"].as_str().unwrap()))
        .collect();
    assert_eq!(levels, vec![(1, "triggered"), (2, "not_acknowledged")]);
    assert_eq!(d["incident"]["level"], 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits_at("/lead2").len(), 1);
    assert_eq!(receiver.hits_at("/lead1").len(), 1);
    server.stop().await;
}

server_test!(unacknowledged_escalates_to_level_two);

/// An acknowledgement stops the escalation: level 2 is never paged; an operator may not
/// acknowledge; a resolved incident cannot be acknowledged again.
async fn acknowledgement_stops_escalation(db: FreshDb) {
    let (receiver, server, crew) = crewed_server(&db).await;
    // Level 1 waits 3 s: long enough for the acknowledgement below to come first on a loaded
    // machine, and the wait after it outlasts that delay.
    two_level_policy(&server, &crew, 3_000, 1_000).await;
    // Signed in first: password hashing is slow in debug builds.
    let op = server.login("op").await;
    let lead1 = server.login("lead1").await;
    let contact = contact(&server.store).await;
    let flagged = tokio::time::Instant::now();
    let incident = flag(&server, &crew.sup, contact, "").await;
    receiver
        .wait_for("/lead1", Duration::from_secs(3), |_| true)
        .await;

    let path = format!("/api/incidents/{incident}/acknowledge");
    assert_eq!(api(&server, &op, "POST", &path, None).await.0, 403);
    let (status, acked) = api(&server, &lead1, "POST", &path, None).await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], crew.lead1);

    tokio::time::sleep_until(flagged + Duration::from_millis(3_500)).await;
    assert!(
        receiver.hits_at("/lead2").is_empty(),
        "level 2 must not be paged"
    );
    let d = detail(&server, &crew.sup, incident).await;
    assert_eq!(steps(&d, "escalated").len(), 1);
    assert!(steps(&d, "policy_exhausted").is_empty());
    assert_eq!(steps(&d, "acknowledged")[0]["by"], crew.lead1);
    assert_eq!(steps(&d, "acknowledged")[0]["actor"], crew.lead1);

    // Resolving ends it for good.
    let resolve = format!("/api/incidents/{incident}/resolve");
    let (status, resolved) = post(
        &server,
        &lead1,
        &resolve,
        json!({"resolution": "safe at home with family"}),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(api(&server, &lead1, "POST", &path, None).await.0, 409);
    assert_eq!(
        post(&server, &lead1, &resolve, json!({"resolution": "again"}))
            .await
            .0,
        409
    );
    let (_, listed) = get(&server, &lead1, "/api/incidents?state=resolved").await;
    assert_eq!(listed[0]["id"], incident);
    let (status, body) = get(&server, &lead1, "/api/incidents?state=sleeping").await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid")));
    // A new flag on the same contact opens a new incident.
    assert_ne!(flag(&server, &crew.sup, contact, "").await, incident);
    server.stop().await;
}

server_test!(acknowledgement_stops_escalation);

/// Acknowledged but not resolved within the acknowledgement timeout: it re-triggers and pages
/// level 1 again.
async fn ack_timeout_retriggers(db: FreshDb) {
    let receiver = Receiver::start().await;
    let mut settings = paging_settings(&db, &receiver);
    settings.paging.ack_timeout_ms = 400;
    let server = start(&db, settings).await;
    let crew = crew(&server, &receiver).await;
    two_level_policy(&server, &crew, 60_000, 60_000).await;
    let mut lead1_ws = server.staff("lead1").await;
    let contact = contact(&server.store).await;
    let incident = flag(&server, &crew.sup, contact, "").await;
    assert_eq!(lead1_ws.expect("page").await["incident"]["id"], incident);
    let lead1 = server.login("lead1").await;
    // The timeout starts when the server acknowledges, which is after this request leaves: time
    // since it left is an upper bound of time since the acknowledgement.
    let asked_at = Instant::now();
    let (status, _) = api(
        &server,
        &lead1,
        "POST",
        &format!("/api/incidents/{incident}/acknowledge"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    let again = lead1_ws.expect("page").await;
    assert!(
        asked_at.elapsed() >= Duration::from_millis(400),
        "re-triggered {:?} after the acknowledgement was asked for",
        asked_at.elapsed()
    );
    assert_eq!(again["incident"]["state"], "triggered");
    assert_eq!(again["incident"]["level"], 1);
    assert_eq!(again["incident"]["acknowledged_by"], Value::Null);
    receiver
        .wait_for("/lead1", Duration::from_secs(2), |h| {
            h.json["attempt"] == 1
                && h.json["delivery"] != receiver.hits_at("/lead1")[0].json["delivery"]
        })
        .await;
    let d = detail(&server, &crew.sup, incident).await;
    assert_eq!(steps(&d, "retriggered").len(), 1);
    let causes: Vec<&str> = steps(&d, "escalated")
        .iter()
        .map(|s| s["cause"].as_str().unwrap())
        .collect();
    assert_eq!(causes, vec!["triggered", "ack_timeout"]);
    server.stop().await;
}

server_test!(ack_timeout_retriggers);

/// The server stops in the middle of an escalation and comes back (twice over, on two workers
/// sharing the database): level 2 is paged exactly once.
async fn restart_mid_escalation_escalates_exactly_once(db: FreshDb) {
    let receiver = Receiver::start().await;
    let settings = paging_settings(&db, &receiver);
    let server = start(&db, settings.clone()).await;
    let crew = crew(&server, &receiver).await;
    two_level_policy(&server, &crew, 3_000, 60_000).await;
    let contact = contact(&server.store).await;
    let incident = flag(&server, &crew.sup, contact, "").await;
    receiver
        .wait_for("/lead1", Duration::from_secs(1), |_| true)
        .await;
    let store = server.store.clone();
    server.stop().await;
    // Stopped before level 2 was due: only level 1 is on the timeline.
    let escalated = store
        .timeline(hotline::paging::IncidentId(incident))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.step.kind() == "escalated")
        .count();
    assert_eq!(escalated, 1, "stopped before level 2 was due");
    assert!(receiver.hits_at("/lead2").is_empty());

    // Two servers on the same database: a restart, and a second node racing it for the timer.
    let first = start(&db, settings.clone()).await;
    let second = start(&db, settings).await;
    receiver
        .wait_for("/lead2", Duration::from_secs(5), |_| true)
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        receiver.hits_at("/lead2").len(),
        1,
        "level 2 paged exactly once"
    );
    let global_level_2 = receiver
        .hits_at("/global")
        .iter()
        .filter(|h| h.json["incident"]["level"] == 2)
        .count();
    assert_eq!(global_level_2, 1);
    let sup = first.login("sup").await;
    let d = detail(&first, &sup, incident).await;
    let levels: Vec<i64> = steps(&d, "escalated")
        .iter()
        .map(|s| s["level"].as_i64().unwrap())
        .collect();
    assert_eq!(levels, vec![1, 2]);
    let deliveries = first
        .store
        .deliveries_of(hotline::paging::IncidentId(incident))
        .await
        .unwrap();
    assert_eq!(
        deliveries.iter().filter(|d| d.level == 1).count(),
        3,
        "console, webhook, global"
    );
    first.stop().await;
    second.stop().await;
}

server_test!(restart_mid_escalation_escalates_exactly_once);

/// A personal webhook that cannot be reached is retried with backoff and dead-lettered, every
/// attempt on the timeline, while the console rings at once.
async fn unreachable_webhook_dead_letters_while_console_rings(db: FreshDb) {
    let (receiver, server, crew) = crewed_server(&db).await;
    // A port nothing listens on.
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let (status, _) = put(
        &server,
        &crew.admin,
        &format!("/api/admin/paging-addresses/{}", crew.lead1),
        json!({"webhook": format!("http://127.0.0.1:{closed}/sms")}),
    )
    .await;
    assert_eq!(status, 200);
    two_level_policy(&server, &crew, 60_000, 60_000).await;
    let mut lead1 = server.staff("lead1").await;
    let contact = contact(&server.store).await;
    let flagged = Instant::now();
    let incident = flag(&server, &crew.sup, contact, "").await;
    assert_eq!(lead1.expect("page").await["incident"]["id"], incident);
    assert!(flagged.elapsed() < Duration::from_secs(1));

    let d = wait_detail(&server, &crew.sup, incident, Duration::from_secs(5), |d| {
        steps(d, "paged")
            .iter()
            .any(|s| s["outcome"] == "dead_lettered")
    })
    .await;
    let webhook: Vec<(i64, &str)> = steps(&d, "paged")
        .iter()
        .filter(|s| s["channel"] == "webhook" && s["target"] == crew.lead1)
        .map(|s| {
            (
                s["attempt"].as_i64().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        webhook,
        vec![(1, "retrying"), (2, "retrying"), (3, "dead_lettered")]
    );
    let dead = steps(&d, "paged")
        .into_iter()
        .find(|s| s["outcome"] == "dead_lettered")
        .unwrap();
    assert!(
        dead["detail"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{dead}"
    );
    assert!(
        !dead["detail"]
            .as_str()
            .unwrap()
            .contains(&closed.to_string()),
        "no address in the detail"
    );
    let console: Vec<&str> = steps(&d, "paged")
        .iter()
        .filter(|s| s["channel"] == "console")
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(console, vec!["sent"]);
    // The global webhook is unaffected.
    assert_eq!(receiver.hits_at("/global").len(), 1);
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            "hotline_notifications_total{channel=\"webhook\",outcome=\"dead_lettered\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("hotline_notifications_total{channel=\"webhook\",outcome=\"retrying\"} 2"),
        "{metrics}"
    );
    server.stop().await;
}

server_test!(unreachable_webhook_dead_letters_while_console_rings);

/// Policies and schedules naming unknown people (or schedules) are refused field by field; a
/// schedule a policy pages cannot be deleted; only administrators change them.
async fn unknown_people_are_refused(db: FreshDb) {
    let (_receiver, server, crew) = crewed_server(&db).await;
    let schedule = json!({
        "name": "leads",
        "rotations": [{"length": "weekly", "handoff_time": "09:00", "start_date": "2025-01-06",
                        "participants": [crew.lead1, 9999]}],
        "overrides": [{"start": 0, "end": 1000, "person": 8888}],
    });
    let (status, body) = post(&server, &crew.admin, "/api/admin/schedules", schedule).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_fields")),
        "{body}"
    );
    assert_eq!(
        body["fields"],
        json!([
            {"field": "rotations[0].participants[1]", "message": "there is no account 9999"},
            {"field": "overrides[0].person", "message": "there is no account 8888"},
        ])
    );

    let policy = json!({
        "name": "p",
        "levels": [{"targets": [{"type": "person", "id": 9999}, {"type": "schedule", "id": 77}], "delay_ms": 1000}],
    });
    let (status, body) = post(
        &server,
        &crew.admin,
        "/api/admin/escalation-policies",
        policy,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_fields")),
        "{body}"
    );
    assert_eq!(
        body["fields"],
        json!([
            {"field": "levels[0].targets[0].id", "message": "there is no account 9999"},
            {"field": "levels[0].targets[1].id", "message": "there is no schedule 77"},
        ])
    );

    // Malformed bodies answer with a code too.
    let (status, body) = post(&server, &crew.admin, "/api/admin/schedules", json!({"name": "x", "rotations": [{"length": "daily", "handoff_time": "25:00", "start_date": "2025-01-06", "participants": [crew.lead1]}]})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid")),
        "{body}"
    );
    let (status, body) = put(
        &server,
        &crew.admin,
        &format!("/api/admin/paging-addresses/{}", crew.lead1),
        json!({"webhook": "ftp://x", "email": "nope"}),
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["webhook", "email"]);

    // A valid schedule and a policy paging it; then the schedule cannot go.
    let (status, created) = post(&server, &crew.admin, "/api/admin/schedules", json!({
        "name": "leads",
        "rotations": [{"length": "daily", "handoff_time": "09:00", "start_date": "2025-01-06", "participants": [crew.lead1, crew.lead2]}],
    })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["time_zone"], "Asia/Shanghai");
    let schedule_id = created["id"].as_i64().unwrap();
    let (status, policy) = post(
        &server,
        &crew.admin,
        "/api/admin/escalation-policies",
        json!({
            "name": "by schedule", "default_for_crisis": true,
            "levels": [{"targets": [{"type": "schedule", "id": schedule_id}], "delay_ms": 1000}],
        }),
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let (status, body) = delete(
        &server,
        &crew.admin,
        &format!("/api/admin/schedules/{schedule_id}"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    // Names are unique; only administrators write; crisis leads read.
    let (status, _) = post(&server, &crew.admin, "/api/admin/schedules", json!({
        "name": "leads",
        "rotations": [{"length": "daily", "handoff_time": "09:00", "start_date": "2025-01-06", "participants": [crew.lead1]}],
    })).await;
    assert_eq!(status, 409);
    let lead = server.login("lead1").await;
    assert_eq!(
        delete(
            &server,
            &lead,
            &format!("/api/admin/schedules/{schedule_id}")
        )
        .await
        .0,
        403
    );
    let (status, listed) = get(&server, &lead, "/api/admin/escalation-policies").await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["default_for_crisis"], true);
    // A second default policy takes the flag from the first.
    let (status, _) = post(
        &server,
        &crew.admin,
        "/api/admin/escalation-policies",
        json!({
            "name": "new default", "default_for_crisis": true,
            "levels": [{"targets": [{"type": "person", "id": crew.lead2}], "delay_ms": 1000}],
        }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, listed) = get(&server, &lead, "/api/admin/escalation-policies").await;
    let defaults: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["default_for_crisis"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, vec!["new default"]);
    // Deleting the policy that paged the schedule frees it.
    let policy_id = policy["id"].as_i64().unwrap();
    assert_eq!(
        delete(
            &server,
            &crew.admin,
            &format!("/api/admin/escalation-policies/{policy_id}")
        )
        .await
        .0,
        204
    );
    assert_eq!(
        delete(
            &server,
            &crew.admin,
            &format!("/api/admin/schedules/{schedule_id}")
        )
        .await
        .0,
        204
    );
    server.stop().await;
}

server_test!(unknown_people_are_refused);

/// Who is on call (a schedule at a time, the default policy now), and the iCalendar export,
/// parsed back with the same crate.
async fn on_call_and_calendar_export(db: FreshDb) {
    let (_receiver, server, crew) = crewed_server(&db).await;
    let (status, created) = post(&server, &crew.admin, "/api/admin/schedules", json!({
        "name": "crisis leads",
        "rotations": [{"length": "daily", "handoff_time": "09:00", "start_date": "2025-01-06", "participants": [crew.lead1, crew.lead2]}],
        "overrides": [{"start": 1_736_236_800_000i64, "end": 1_736_244_000_000i64, "person": crew.lead2}],
    })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let sup = &crew.sup;

    // 2025-01-07 08:59 Shanghai is still the first shift (lead1); 09:00 hands off to lead2.
    let (status, on_call) = get(
        &server,
        sup,
        &format!("/api/schedules/{id}/oncall?at=2025-01-07T08:59:00%2B08:00"),
    )
    .await;
    assert_eq!(status, 200, "{on_call}");
    assert_eq!(on_call["person"]["id"], crew.lead1);
    assert_eq!(on_call["person"]["name"], "lead1 display");
    assert_eq!(
        on_call["until"], 1_736_211_600_000i64,
        "until 09:00 Shanghai = 01:00 UTC"
    );
    let (_, on_call) = get(
        &server,
        sup,
        &format!("/api/schedules/{id}/oncall?at=2025-01-07T09:00:00%2B08:00"),
    )
    .await;
    assert_eq!(on_call["person"]["id"], crew.lead2);
    assert_eq!(on_call["source"], json!({"type": "rotation", "index": 0}));
    let (_, on_call) = get(
        &server,
        sup,
        &format!("/api/schedules/{id}/oncall?at=1736236800000"),
    )
    .await;
    assert_eq!(on_call["source"], json!({"type": "override"}));
    let (status, _) = get(
        &server,
        sup,
        &format!("/api/schedules/{id}/oncall?at=yesterday"),
    )
    .await;
    assert_eq!(status, 422);

    let response = get_raw(
        &server,
        sup,
        &format!("/api/schedules/{id}/calendar.ics?weeks=2"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let text = response.text().await.unwrap();
    let calendar: icalendar::Calendar = text.parse().expect("the export parses");
    use icalendar::Component;
    let events: Vec<&icalendar::Event> = calendar
        .components
        .iter()
        .filter_map(|c| c.as_event())
        .collect();
    assert!(
        (14..=15).contains(&events.len()),
        "{} events: {text}",
        events.len()
    );
    let summaries: Vec<&str> = events.iter().filter_map(|e| e.get_summary()).collect();
    assert!(
        summaries.contains(&"On call: lead1 display")
            && summaries.contains(&"On call: lead2 display"),
        "{summaries:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.get_start().is_some() && e.get_end().is_some() && e.get_uid().is_some())
    );
    let (status, _) = get(
        &server,
        sup,
        &format!("/api/schedules/{id}/calendar.ics?weeks=99"),
    )
    .await;
    assert_eq!(status, 422);

    // A calendar app sends no cookie: it reads the same export through a feed token.
    let feed = |token: &str| format!("/api/calendar-feeds/{token}/schedules/{id}/calendar.ics");
    let no_cookie = |path: String| {
        let server = &server;
        async move {
            let response = get_raw(server, "", &path).await;
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, created) = api(&server, sup, "POST", "/api/me/calendar-feed", None).await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, text) = no_cookie(feed(&token)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("On call: lead1 display"), "{text}");
    assert_eq!(no_cookie(feed("not-a-token")).await.0, 404);
    // A new token replaces the old one; revoking ends it.
    let (_, renewed) = api(&server, sup, "POST", "/api/me/calendar-feed", None).await;
    let renewed = renewed["token"].as_str().unwrap().to_owned();
    assert_ne!(renewed, token);
    assert_eq!(no_cookie(feed(&token)).await.0, 404);
    assert_eq!(no_cookie(feed(&renewed)).await.0, 200);
    let (status, _) = delete(&server, sup, "/api/me/calendar-feed").await;
    assert_eq!(status, 204);
    assert_eq!(no_cookie(feed(&renewed)).await.0, 404);
    // Operators are not on these schedules and get no feed.
    let op = server.login("op").await;
    let (status, _) = api(&server, &op, "POST", "/api/me/calendar-feed", None).await;
    assert_eq!(status, 403);

    // Without a default policy, the fallback: every crisis lead.
    let (_, now) = get(&server, sup, "/api/oncall").await;
    assert_eq!(now["policy"]["id"], Value::Null);
    assert_eq!(now["people"].as_array().unwrap().len(), 2);
    // With one paging the schedule: whoever is on call now.
    let (status, _) = post(
        &server,
        &crew.admin,
        "/api/admin/escalation-policies",
        json!({
            "name": "by schedule", "default_for_crisis": true,
            "levels": [{"targets": [{"type": "schedule", "id": id}], "delay_ms": 1000}],
        }),
    )
    .await;
    assert_eq!(status, 201);
    let (_, now) = get(&server, sup, "/api/oncall").await;
    assert_eq!(now["policy"]["name"], "by schedule");
    let people = now["people"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{now}");
    assert!(people[0]["id"] == crew.lead1 || people[0]["id"] == crew.lead2);
    server.stop().await;
}

server_test!(on_call_and_calendar_export);

/// The crisis lead records what was done; resolving requires that help was confirmed to reach
/// the person when emergency services were contacted (988). The operator holding the contact
/// may flag it; joining is on the timeline.
async fn crisis_lead_records_steps_and_resolves(db: FreshDb) {
    let (_receiver, server, crew) = crewed_server(&db).await;
    two_level_policy(&server, &crew, 60_000, 60_000).await;

    // A real contact, accepted by the operator, who flags it.
    let (_caller, joined) = server.caller_joins(join("general", "danger_now")).await;
    let contact = joined["contact"].as_i64().unwrap();
    let mut op_ws = server.available_staff("op").await;
    op_ws.expect("offer").await;
    accept(&mut op_ws, contact).await;
    let op = server.login("op").await;
    let other = contact_without_operator(&server.store).await;
    let (status, _) = api(
        &server,
        &op,
        "POST",
        &format!("/api/contacts/{other}/crisis"),
        None,
    )
    .await;
    assert_eq!(status, 403, "an operator flags only the contact they hold");
    let crisis_of = |contact: i64| format!("/api/contacts/{contact}/crisis");
    // The screening answer has opened an incident already; the operator's flag joins it.
    let (status, screened) = get(&server, &op, &crisis_of(contact)).await;
    assert_eq!(status, 200, "{screened}");
    assert_eq!(screened["source"]["kind"], "routing");
    let incident = flag(&server, &op, contact, "said goodbye").await;
    assert_eq!(screened["id"], incident);
    let changed = op_ws.expect("incident_changed").await;
    assert_eq!(changed["incident"]["id"], incident);
    // After a reload the desk reads it back: the operator holding the contact, and no other.
    let (status, read) = get(&server, &op, &crisis_of(contact)).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["id"], incident);
    assert_eq!(read["state"], "triggered");
    assert_eq!(get(&server, &op, &crisis_of(other)).await.0, 403);
    assert_eq!(
        get(&server, &crew.sup, &crisis_of(other)).await,
        (200, Value::Null),
        "never flagged"
    );

    let lead = server.login("lead1").await;
    let steps_path = format!("/api/incidents/{incident}/steps");
    assert_eq!(
        post(
            &server,
            &op,
            &steps_path,
            json!({"kind": "outcome", "text": "x"})
        )
        .await
        .0,
        403
    );
    for (body, status) in [
        (json!({"kind": "joined_contact"}), 201),
        (
            json!({"kind": "emergency_services_contacted", "service": "ambulance_120", "reference": "120-2025-0042"}),
            201,
        ),
        (
            json!({"kind": "emergency_services_contacted", "service": "other"}),
            422,
        ),
        (
            json!({"kind": "referral_made", "service": "city psychiatric hospital", "reference": "R-7"}),
            201,
        ),
        (json!({"kind": "dance"}), 422),
    ] {
        let (got, answer) = post(&server, &lead, &steps_path, body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
    }
    let resolve = format!("/api/incidents/{incident}/resolve");
    let (status, body) = post(
        &server,
        &lead,
        &resolve,
        json!({"resolution": "ambulance took them"}),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("help_confirmed:"),
        "{body}"
    );
    let (status, _) = post(
        &server,
        &lead,
        &steps_path,
        json!({"kind": "help_confirmed", "how": "120 crew called back: with the person"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &server,
        &lead,
        &steps_path,
        json!({"kind": "outcome", "text": "admitted for assessment"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, resolved) = post(
        &server,
        &lead,
        &resolve,
        json!({"resolution": "ambulance took them"}),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["resolved_by"], crew.lead1);
    let d = detail(&server, &lead, incident).await;
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .filter(|k| *k != "paged")
        .collect();
    assert_eq!(
        kinds,
        vec![
            // Routing opened the incident when the caller said they were in danger now; the
            // operator's flag then joined it.
            "triggered",
            "escalated",
            "flagged",
            "joined_contact",
            "emergency_services_contacted",
            "referral_made",
            "help_confirmed",
            "outcome",
            "resolved"
        ]
    );
    assert_eq!(d["timeline"][0]["source"], json!({"kind": "routing"}));
    assert_eq!(
        steps(&d, "flagged")[0]["source"],
        json!({"kind": "operator", "operator": id_of(&server.store, "op").await})
    );
    assert_eq!(
        steps(&d, "emergency_services_contacted")[0]["reference"],
        "120-2025-0042"
    );
    server.stop().await;
}

server_test!(crisis_lead_records_steps_and_resolves);

async fn contact_without_operator(store: &DynStore) -> i64 {
    contact(store).await
}

// ---- the pager's entry points and the auditor, without a running worker ----

/// `crisis_flag` from routing and notes, `contact_joined`, and the auditor: a timer the worker
/// never fired is fired once, counted and noted; a second pager on the same database (another
/// node) cannot fire it again.
async fn crisis_lead(store: &DynStore) -> OperatorId {
    store
        .create_account(
            hotline::store::NewAccount {
                name: "lead".into(),
                display_name: "Lead".into(),
                role: Role::CrisisLead,
                password_hash: "x".into(),
                languages: vec![],
                chat_capacity: 1,
                voice_capacity: 1,
                voice_excludes_chat: true,
                must_change_password: false,
            },
            Timestamp::now(),
        )
        .await
        .unwrap()
        .id
}

async fn pager_entry_points_and_auditor(db: FreshDb) {
    let store = db.connect().await;
    let lead = crisis_lead(&store).await;
    let mut settings = Settings::default().paging;
    settings.audit_slack_ms = 5_000;
    let metrics = Metrics::new();
    let pager = Pager::new(
        store.clone(),
        Arc::new(Hub::default()),
        metrics.clone(),
        settings.clone(),
    )
    .unwrap();
    let other_node = Pager::new(
        store.clone(),
        Arc::new(Hub::default()),
        Metrics::new(),
        settings,
    )
    .unwrap();
    let contact = ContactId(contact(&store).await);

    let incident = pager
        .crisis_flag(contact, FlagSource::Routing, None)
        .await
        .unwrap();
    assert_eq!(
        pager
            .crisis_flag(
                contact,
                FlagSource::Note(lead),
                Some("note says plan".into())
            )
            .await
            .unwrap(),
        incident
    );
    pager.contact_joined(contact, lead).await;
    pager
        .contact_joined(ContactId(contact.0 + 1000), lead)
        .await; // no incident: nothing happens
    assert!(matches!(
        pager
            .crisis_flag(ContactId(424242), FlagSource::Routing, None)
            .await,
        Err(hotline::paging::PagingError::UnknownContact)
    ));
    let d = pager.detail(incident).await.unwrap();
    let kinds: Vec<&str> = d.timeline.iter().map(|e| e.step.kind()).collect();
    assert_eq!(
        kinds,
        vec![
            "triggered",
            "fallback_policy",
            "escalated",
            "flagged",
            "joined_contact"
        ]
    );
    assert_eq!(d.timeline[4].actor, Some(lead));

    // No worker runs: the fallback's 5-minute escalation timer is due in 5 minutes.
    let now = Timestamp::now();
    assert_eq!(pager.fire_due(now).await.unwrap(), 0);
    assert_eq!(
        pager.audit(now.plus_ms(5 * 60_000 + 1_000)).await.unwrap(),
        0,
        "within the slack"
    );
    let late = now.plus_ms(5 * 60_000 + 6_000);
    assert_eq!(
        pager.audit(late).await.unwrap(),
        1,
        "the auditor fires the missed timer"
    );
    assert_eq!(
        other_node.fire_due(late).await.unwrap(),
        0,
        "and nobody fires it again"
    );
    assert_eq!(other_node.audit(late).await.unwrap(), 0);
    let d = pager.detail(incident).await.unwrap();
    let kinds: Vec<&str> = d.timeline.iter().map(|e| e.step.kind()).collect();
    // The fallback repeats once: its second pass pages level 1 again.
    assert_eq!(
        kinds[5..],
        ["overdue_timer_fired", "escalated"],
        "{kinds:?}"
    );
    assert_eq!((d.incident.level, d.incident.cycle), (1, 2));
    assert_eq!(d.incident.state, IncidentState::Triggered);
    assert!(
        metrics
            .encode()
            .contains("hotline_escalations_overdue_fixed_total{kind=\"escalate\"} 1")
    );

    // Acknowledge, let the acknowledgement timeout pass unseen: the auditor re-triggers.
    pager.acknowledge(incident, lead).await.unwrap();
    let later = Timestamp::now().plus_ms(31 * 60_000 + 6_000);
    assert_eq!(pager.audit(later).await.unwrap(), 1);
    let d = pager.detail(incident).await.unwrap();
    assert_eq!(d.incident.state, IncidentState::Triggered);
    assert_eq!(d.incident.level, 1);
    let deliveries = store.deliveries_of(incident).await.unwrap();
    // A console page at the flag, at the audited escalation and at the re-trigger; the first two
    // were cancelled by the acknowledgement (no worker sent them).
    use hotline::store::paging::DeliveryState;
    let states: Vec<DeliveryState> = deliveries.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [
            DeliveryState::Cancelled,
            DeliveryState::Cancelled,
            DeliveryState::Pending
        ]
    );
    assert_eq!(deliveries[0].target, Some(OperatorId(lead.0)));
}

server_test!(pager_entry_points_and_auditor);

/// The auditor raises the crisis flags the live path missed: one recorded as due, once it is
/// past the slack, and once only; and routing's for an open contact at imminent risk with no
/// incident, when it finds it two rounds in a row.
async fn the_auditor_raises_missed_crisis_flags(db: FreshDb) {
    let store = db.connect().await;
    let lead = crisis_lead(&store).await;
    let mut settings = Settings::default().paging;
    settings.audit_slack_ms = 5_000;
    let metrics = Metrics::new();
    let pager = Pager::new(
        store.clone(),
        Arc::new(Hub::default()),
        metrics.clone(),
        settings,
    )
    .unwrap();
    let noted = ContactId(contact(&store).await);
    let imminent = ContactId(contact_at(&store, RiskLevel::Imminent).await);
    let _calm = contact_at(&store, RiskLevel::Medium).await;

    let due = pager.flag_due(noted, FlagSource::Note(lead)).await.unwrap();
    let now = Timestamp::now();
    let listed = store.flags_due(now.plus_ms(1), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id, listed[0].contact, listed[0].source),
        (due, noted, FlagSource::Note(lead))
    );
    assert_eq!(
        store.imminent_without_incident(10).await.unwrap(),
        [imminent]
    );
    assert_eq!(
        pager.audit(now).await.unwrap(),
        0,
        "the flag is within the slack; the contact is seen once"
    );
    assert_eq!(pager.audit(now.plus_ms(6_000)).await.unwrap(), 2);
    for contact in [noted, imminent] {
        assert!(store.open_incident_of(contact).await.unwrap().is_some());
    }
    assert!(
        store
            .flags_due(now.plus_ms(60_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .imminent_without_incident(10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(pager.audit(now.plus_ms(12_000)).await.unwrap(), 0);
    assert!(
        metrics
            .encode()
            .contains("hotline_escalations_overdue_fixed_total{kind=\"crisis_flag\"} 2")
    );

    // A flag whose note was refused is forgotten.
    let refused = pager.flag_due(noted, FlagSource::Note(lead)).await.unwrap();
    pager.forget_due(refused).await;
    assert!(
        store
            .flags_due(now.plus_ms(60_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

server_test!(the_auditor_raises_missed_crisis_flags);

/// An incident that cannot be read (here a corrupt row) does not hold back the escalation of
/// the others, neither in the worker's round nor in the auditor's.
async fn a_timer_that_cannot_fire_does_not_hold_back_the_others(db: FreshDb) {
    let store = db.connect().await;
    crisis_lead(&store).await;
    let pager = Pager::new(
        store.clone(),
        Arc::new(Hub::default()),
        Metrics::new(),
        Settings::default().paging,
    )
    .unwrap();
    let mut incidents = Vec::new();
    for _ in 0..3 {
        let contact = ContactId(contact(&store).await);
        incidents.push(
            pager
                .crisis_flag(contact, FlagSource::Routing, None)
                .await
                .unwrap(),
        );
    }
    // The first and last incidents' timers are due first; the first cannot be read.
    db.execute(
        "UPDATE incidents SET policy = 'not a policy' WHERE id = (SELECT MIN(id) FROM incidents)",
    )
    .await;
    let late = Timestamp::now().plus_ms(5 * 60_000 + 1_000);
    assert!(
        pager.fire_due(late).await.is_err(),
        "the broken one is reported"
    );
    for &incident in &incidents[1..] {
        let i = store.incident(incident).await.unwrap();
        assert_eq!((i.level, i.cycle), (0, 1), "escalated past the broken one");
    }
    let later = late.plus_ms(5 * 60_000 + 60_000);
    assert_eq!(pager.audit(later).await.unwrap(), 2, "the auditor too");
    assert_eq!(
        store.due_timers(later, 10).await.unwrap().len(),
        1,
        "only the broken one is left"
    );
}

server_test!(a_timer_that_cannot_fire_does_not_hold_back_the_others);

/// A caller in danger now is routed first and pages the crisis team by itself; the crisis lead
/// joins the live chat from the page (barge), the caller sees them, and the join is on the timeline.
async fn imminent_risk_pages_and_the_lead_joins_the_chat(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let lead_cookie = server.signed_in("lead", Role::CrisisLead).await;
    let mut lead = server.staff("lead").await;
    let mut op = server.available_staff("op").await;

    let (mut caller, joined) = server.caller_joins(join("general", "danger_now")).await;
    let contact = joined["contact"].as_i64().unwrap();
    let offer = op.expect("offer").await;
    assert_eq!(offer["contact"]["risk"], "imminent");
    accept(&mut op, contact).await;

    // Routing saw imminent risk: the lead is paged without anyone pressing a button.
    let page = lead.expect("page").await;
    assert_eq!(page["incident"]["contact"], contact);
    let incident = page["incident"]["id"].as_i64().unwrap();
    let d = detail(&server, &lead_cookie, incident).await;
    assert_eq!(steps(&d, "triggered").len(), 1, "{d:#}");

    join_contact(&mut lead, contact, "barge").await;
    lead.send(say_to(contact, "I'm from the crisis team.", "l1"))
        .await;
    lead.expect("said").await;
    let line = caller.expect("message").await;
    assert_eq!(line["line"]["sender"], "participant");
    let d = wait_detail(
        &server,
        &lead_cookie,
        incident,
        Duration::from_secs(3),
        |d| !steps(d, "joined_contact").is_empty(),
    )
    .await;
    assert_eq!(steps(&d, "joined_contact").len(), 1);
    server.stop().await;
}
server_test!(imminent_risk_pages_and_the_lead_joins_the_chat);

/// Routing sees imminent risk and opens an incident; if the store refuses it for longer than
/// routing's own retries, the auditor finds the contact at imminent risk without an incident and
/// pages once the store is back.
async fn routing_flag_survives_a_passing_store_error(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.paging.audit_interval_ms = 200;
    settings.paging.audit_slack_ms = 100;
    let server = start(&db, settings).await;
    let lead_cookie = server.signed_in("lead", Role::CrisisLead).await;
    incidents_fail(&db, true).await;
    let (_caller, joined) = server.caller_joins(join("general", "danger_now")).await;
    let contact = joined["contact"].as_i64().unwrap();
    // Routing's tries (at once, after 0.5 s and 2 s more) and the auditor's all fail.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let (_, open) = get(&server, &lead_cookie, "/api/incidents?state=open").await;
    assert_eq!(open, json!([]));
    incidents_fail(&db, false).await;
    wait_for_incident(
        &server,
        &lead_cookie,
        contact,
        5,
        "the crisis team was never paged",
    )
    .await;
    server.stop().await;
}
server_test!(routing_flag_survives_a_passing_store_error);

/// `GET /api/schedules/{id}/oncall?at=` near the end of chrono's range (where the schedule's
/// local time cannot be represented) is refused with 422 `invalid`, not a dropped connection.
async fn on_call_at_the_end_of_time_is_refused(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let lead1 = server.account("lead1", Role::CrisisLead, &[]).await;
    let (status, created) = post(
        &server,
        &admin,
        "/api/admin/schedules",
        json!({
            "name": "leads",
            "rotations": [{"length": "daily", "handoff_time": "09:00", "start_date": "2025-01-06",
                            "participants": [lead1]}],
        }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let max_ms = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis();
    for at in [
        max_ms.to_string(),
        "8210266876799999".to_owned(),
        "1999-12-31T23:59:59Z".to_owned(),
    ] {
        let answer = reqwest::Client::new()
            .get(server.url(&format!("/api/schedules/{id}/oncall?at={at}")))
            .header("cookie", &admin)
            .send()
            .await
            .unwrap_or_else(|e| panic!("at={at}: no answer ({e})"));
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("invalid")),
            "at={at}: {body}"
        );
    }
    // An instant within the years a client may name is answered.
    let (status, body) = get(
        &server,
        &admin,
        &format!("/api/schedules/{id}/oncall?at=2025-01-07T10:00:00%2B08:00"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["person"]["id"], json!(lead1), "{body}");
    server.stop().await;
}
server_test!(on_call_at_the_end_of_time_is_refused);
