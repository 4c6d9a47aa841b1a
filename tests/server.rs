//! The real server on 127.0.0.1:0, driven over real HTTP and WebSockets, on SQLite and PostgreSQL.
//! Each test body runs once per database (`server_test!`), each on a fresh database.

#[macro_use]
mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::server::*;
use common::{Backend, FreshDb, fresh_database};
use futures_util::{SinkExt, StreamExt};
use hotline::config::TrustedProxies;
use hotline::domain::{ContactId, QueueId, Role, Timestamp};
use hotline::queues::QueueDefinition;
use hotline::store::Reader;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

// ---------------------------------------------------------------------------------------------

/// Sign-in, roles, the admin API and its refusals.
async fn accounts_and_roles(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    assert_eq!(get(&server, "", "/readyz").await.0, 200);

    server.account("boss", Role::Admin, &[]).await;
    server.account("op", Role::Operator, &[]).await;

    let (status, wrong) = post(
        &server,
        "",
        "/api/login",
        json!({"name": "boss", "password": "nope"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(wrong["code"], "invalid");

    let admin = server.login("boss").await;
    let (_, me) = get(&server, &admin, "/api/me").await;
    assert_eq!(me["role"], "admin");

    // The admin adds a skill, an operator with it, and a queue that requires it.
    let (status, _) = put(
        &server,
        &admin,
        "/api/admin/skills/crisis",
        json!({"description": "crisis work"}),
    )
    .await;
    assert_eq!(status, 204);
    let (_, created) = post(
        &server,
        &admin,
        "/api/admin/accounts",
        json!({"name": "new.op", "display_name": "New", "role": "operator",
               "password": PASSWORD, "languages": ["zh"]}),
    )
    .await;
    let id = created["id"].as_i64().unwrap();
    let skills_path = format!("/api/admin/accounts/{id}/skills");
    let (status, skills) = put(
        &server,
        &admin,
        &skills_path,
        json!([{"skill": "crisis", "proficiency": 4}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(skills["skills"][0]["proficiency"], 4);
    let (status, _) = put(
        &server,
        &admin,
        &skills_path,
        json!([{"skill": "juggling", "proficiency": 4}]),
    )
    .await;
    assert_eq!(status, 422, "an unknown skill");
    let (status, _) = put(
        &server,
        &admin,
        &skills_path,
        json!([{"skill": "crisis", "proficiency": 9}]),
    )
    .await;
    assert_eq!(status, 422, "a level past 5");
    let (status, _) = put(
        &server,
        &admin,
        "/api/admin/queues/crisis",
        json!({"id": "crisis", "name": "Crisis", "never_relax": true,
               "required_skills": [{"skill": "crisis", "min_proficiency": 3}]}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &server,
        &admin,
        "/api/admin/accounts",
        json!({"name": "new.op", "display_name": "Again", "role": "operator",
               "password": PASSWORD, "languages": ["zh"]}),
    )
    .await;
    assert_eq!(status, 409, "a name taken");
    let (status, _) = post(
        &server,
        &admin,
        "/api/admin/accounts",
        json!({"name": "mute.op", "display_name": "Mute", "role": "operator", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        status, 422,
        "an operator needs a language to be routed anything"
    );

    // An operator may not administer.
    let op = server.login("op").await;
    let (status, forbidden) = post(
        &server,
        &op,
        "/api/admin/accounts",
        json!({"name": "x.y", "display_name": "X", "role": "admin", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(forbidden["code"], "forbidden");
    let (_, info) = get(&server, "", "/api/public/info").await;
    let names: Vec<&str> = info["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"general") && names.contains(&"crisis"),
        "{names:?}"
    );
    assert!(
        !info["confidentiality"]["exceptions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        info["confidentiality"]["statement"]["zh"]
            .as_str()
            .unwrap()
            .contains("保密")
    );
    assert!(
        info["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "suicide")
    );
    assert_eq!(
        info["max_message_bytes"],
        hotline::config::Settings::default()
            .caller
            .max_message_bytes
    );
    let (_, staff) = get(&server, &op, "/api/staff").await;
    assert!(
        staff
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "New" && p["role"] == "operator")
    );

    // Password change ends other sessions; logout ends this one.
    let (status, _) = post(
        &server,
        &op,
        "/api/me/password",
        json!({"current_password": PASSWORD, "new_password": "another long password"}),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(get(&server, &op, "/api/me").await.0, 401);
    let (status, _) = api(&server, &admin, "POST", "/api/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(get(&server, &admin, "/api/me").await.0, 401);

    // The staff socket needs a session.
    let anonymous =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/staff", server.addr)).await;
    assert!(anonymous.is_err());
    let metrics = server.metrics().await;
    for name in [
        "hotline_connections",
        "hotline_operators",
        "hotline_offers_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    server.stop().await;
}
server_test!(accounts_and_roles);

/// Too many sign-in attempts from one address are refused.
async fn login_is_rate_limited(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.auth.logins_per_minute = 3;
    let server = start(&db, settings).await;
    // One client for all attempts: the limit refills as time passes, so they must come quickly.
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = http
            .post(server.url("/api/login"))
            .json(&json!({"name": "nobody", "password": "whatever"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [422, 422, 422, 429, 429]);
    // Someone else's attempts from the same address do not lock an account out…
    server.signed_in("op", Role::Operator).await;
    // …but trying many names from one place is bounded too (ten times the rate per name).
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let r = http
            .post(server.url("/api/login"))
            .json(&json!({"name": format!("name{i}"), "password": "whatever"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    // 30 a minute from this address, 4 of them spent above; one comes back every 2 s meanwhile
    // (password hashing is slow on a busy machine, so count them).
    let refilled = (started.elapsed().as_secs_f64() / 2.0).ceil() as usize + 1;
    let allowed = statuses.iter().take_while(|&&s| s == 422).count();
    assert!(
        (26..=26 + refilled).contains(&allowed),
        "{statuses:?} in {:?}",
        started.elapsed()
    );
    assert!(
        statuses[allowed..].iter().all(|&s| s == 429),
        "{statuses:?}"
    );
    server.stop().await;
}
server_test!(login_is_rate_limited);

/// Every refusal is a JSON body with a code, also when the body, the query string or the path
/// cannot be read into the request's type.
async fn http_refusals_are_json_with_a_code(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let http = reqwest::Client::new();
    let cases = vec![
        (
            "login: body is not JSON",
            http.post(server.url("/api/login"))
                .header("content-type", "application/json")
                .body("{not json"),
            (422, "invalid"),
        ),
        (
            "login: a field of the wrong type",
            http.post(server.url("/api/login"))
                .json(&json!({"name": 5, "password": "x"})),
            (422, "invalid"),
        ),
        (
            "login: no content type",
            http.post(server.url("/api/login")).body("{}"),
            (415, "unsupported_media_type"),
        ),
        (
            "account id is not a number",
            http.patch(server.url("/api/admin/accounts/abc"))
                .header("cookie", &admin)
                .json(&json!({})),
            (404, "not_found"),
        ),
        (
            "?limit= is not a number",
            http.get(server.url("/api/audits?limit=ten"))
                .header("cookie", &admin),
            (422, "invalid"),
        ),
        (
            "body over 64 KiB",
            http.put(server.url("/api/admin/skills/big"))
                .header("cookie", &admin)
                .json(&json!({"description": "x".repeat(70_000)})),
            (413, "too_large"),
        ),
        (
            "an address of the API that names nothing",
            http.get(server.url("/api/no/such/thing"))
                .header("cookie", &admin),
            (404, "not_found"),
        ),
        (
            "a method the address does not take",
            http.delete(server.url("/api/login")),
            (405, "method_not_allowed"),
        ),
        (
            "a plain request to the caller's WebSocket",
            http.get(server.url("/ws/caller")),
            (426, "upgrade_required"),
        ),
        (
            "a plain request to the console's WebSocket",
            http.get(server.url("/ws/staff")).header("cookie", &admin),
            (426, "upgrade_required"),
        ),
        (
            "a WebSocket handshake without its key",
            http.get(server.url("/ws/caller"))
                .header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13"),
            (422, "invalid"),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, request, (status, code)) in cases {
        let r = request.send().await.unwrap();
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        let message = body["message"].as_str().unwrap_or_default();
        if (got, body["code"].as_str()) != (status, Some(code))
            || message.is_empty()
            || message.len() > 300
        {
            wrong.push(format!("{what}: {got} {text:.300}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "refusals without the expected JSON error code:\n{}",
        wrong.join("\n")
    );
    server.stop().await;
}
server_test!(http_refusals_are_json_with_a_code);

/// The whole chat story: join, write while waiting, offer with that transcript, accept, talk,
/// end, wrap-up, complete — and the event log has every step in order.
async fn chat_from_join_to_complete(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;

    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    assert_eq!(joined["position"], 1);
    assert!(joined["resume_token"].as_str().unwrap().len() >= 24);
    caller.send(say("我最近压力很大", "c1")).await;
    let said = caller.expect("said").await;
    assert_eq!(
        (said["client_id"].as_str(), said["seq"].as_i64()),
        (Some("c1"), Some(1))
    );

    let mut op = server.available_staff("op").await;
    let offer = op.expect("offer").await;
    assert_eq!(offer["contact"]["id"], contact);
    assert_eq!(offer["contact"]["colour"], "green");
    assert_eq!(offer["transcript"][0]["body"], "我最近压力很大");
    let assigned = accept(&mut op, contact).await;
    assert_eq!(
        assigned["contact"]["transcript"].as_array().unwrap().len(),
        1
    );
    let connected = caller.expect("connected").await;
    assert_eq!(connected["operator_name"], "op display");

    op.send(say_to(contact, "你好，我在这里", "o1")).await;
    assert_eq!(op.expect("said").await["seq"], 2);
    let line = caller.expect("message").await;
    assert_eq!(line["line"]["body"], "你好，我在这里");
    assert_eq!(line["line"]["sender"], "operator");
    caller.send(json!({"type": "typing"})).await;
    op.expect("typing").await;
    caller.send(say("谢谢", "c2")).await;
    assert_eq!(op.expect("message").await["line"]["body"], "谢谢");

    let wrap = end(&mut op, contact).await;
    assert_eq!(wrap["by"], "operator");
    assert_eq!(caller.expect("ended").await["by"], "operator");
    finish_wrap_up(&mut op, contact).await;

    let kinds = server.events_of(contact).await;
    let expected = [
        "enter_queue",
        "offer",
        "accept",
        "connect",
        "wrap_up",
        "complete",
    ];
    let mut at = 0;
    for kind in &kinds {
        if at < expected.len() && kind == expected[at] {
            at += 1;
        }
    }
    assert_eq!(at, expected.len(), "event log {kinds:?}");
    let transcript = server
        .store
        .messages(hotline::domain::ContactId(contact))
        .await
        .unwrap();
    assert_eq!(transcript.len(), 3);
    // Live per-operator figures, labelled by account id only (never a name).
    let mut seen = false;
    for _ in 0..50 {
        let metrics = server.metrics().await;
        if metrics.contains("hotline_operator_completed_total{operator=\"")
            && metrics.contains("hotline_operator_handle_seconds_total{operator=\"")
        {
            assert!(!metrics.contains("op display"), "no names in metrics");
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(seen, "per-operator metrics after a completed contact");
    server.stop().await;
}
server_test!(chat_from_join_to_complete);

/// A line naming imminent risk raises the contact above an earlier, calmer one.
async fn risk_lexicon_puts_imminent_first(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let (_calm, _) = server.caller_joins(join("general", "no")).await;
    let (mut urgent, joined) = server
        .caller_joins(join("general", "prefer_not_to_say"))
        .await;
    let urgent_id = joined["contact"].as_i64().unwrap();
    urgent
        .send(say("I want to kill myself tonight", "u1"))
        .await;
    urgent.expect("said").await;
    // The urgent caller moves to the front.
    urgent
        .expect_where("queue_update", |f| f["position"] == 1)
        .await;

    let mut op = server.available_staff("op").await;
    let offer = op.expect("offer").await;
    assert_eq!(offer["contact"]["id"], urgent_id);
    assert_eq!(offer["contact"]["risk"], "imminent");
    assert_eq!(offer["contact"]["colour"], "red");
    assert!(server.has_event(urgent_id, "risk_change").await);
    server.stop().await;
}
server_test!(risk_lexicon_puts_imminent_first);

/// A caller who loses the connection comes back with the resume token to the same contact;
/// leaving is recorded as an abandon.
async fn caller_resumes_then_leaves(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    let token = joined["resume_token"].as_str().unwrap().to_owned();
    caller.send(say("hello?", "a")).await;
    caller.expect("said").await;
    drop(caller);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = server.caller_resumes(&token).await;
    let resumed = back.expect("resumed").await;
    assert_eq!(resumed["contact"], contact);
    assert_eq!(resumed["state"], "waiting");
    assert_eq!(resumed["position"], 1);
    assert_eq!(resumed["transcript"][0]["body"], "hello?");

    let mut stranger = server.caller_resumes("not-a-token").await;
    assert_eq!(stranger.expect("error").await["code"], "ended");

    back.send(json!({"type": "leave"})).await;
    back.expect("ended").await;
    let kinds = server.events_of(contact).await;
    assert!(kinds.contains(&"caller_away".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"caller_back".to_owned()), "{kinds:?}");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("abandon"),
        "{kinds:?}"
    );
    server.stop().await;
}
server_test!(caller_resumes_then_leaves);

/// An operator whose console drops past the grace period loses the contact to a colleague,
/// who gets it first and with the transcript intact.
async fn lost_operator_contacts_are_reoffered(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("first", Role::Operator, &[]).await;
    server.account("second", Role::Operator, &[]).await;
    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    caller.send(say("are you there", "x")).await;
    caller.expect("said").await;

    let mut first = server.available_staff("first").await;
    first.expect("offer").await;
    accept(&mut first, contact).await;
    caller.expect("connected").await;

    let mut second = server.available_staff("second").await;
    second.ping().await;
    drop(first); // grace is 1 s in these tests

    let offer = second.expect("offer").await;
    assert_eq!(offer["contact"]["id"], contact);
    assert_eq!(offer["transcript"][0]["body"], "are you there");
    assert!(server.has_event(contact, "requeue").await);
    server.stop().await;
}
server_test!(lost_operator_contacts_are_reoffered);

/// An operator who reconnects within the grace period keeps the contact (sent again in hello).
async fn operator_reconnects_within_grace(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 10_000;
    let server = start(&db, settings).await;
    server.account("op", Role::Operator, &[]).await;
    let (mut caller, joined, op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    drop(op);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut op, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], contact);
    op.send(say_to(contact, "still here", "r")).await;
    op.expect("said").await;
    assert_eq!(caller.expect("message").await["line"]["body"], "still here");
    server.stop().await;
}
server_test!(operator_reconnects_within_grace);

/// After a restart, a waiting contact keeps its place and an assigned one its operator and transcript.
async fn restart_restores_contacts(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 10_000;
    settings.routing.caller_grace_ms = 10_000;
    let server = start(&db, settings.clone()).await;
    server.account("op", Role::Operator, &[]).await;
    let (mut talking, talking_joined, mut op) = server.connected_contact("op").await;
    let talking_id = talking_joined["contact"].as_i64().unwrap();
    talking.send(say("before the restart", "b")).await;
    talking.expect("said").await;
    let (_waiting, waiting_joined) = server.caller_joins(join("general", "no")).await;
    // A caller who leaves before the restart can still come back within the resume window.
    let (mut leaving, leaving_joined) = server.caller_joins(join("general", "no")).await;
    leaving.send(json!({"type": "leave"})).await;
    leaving.expect("ended").await;

    // The server goes down: everyone is told.
    server.stop_telling(&mut op).await;

    let server = start(&db, settings).await;
    let mut talking = server.caller_resumes(&talking_joined["resume_token"]).await;
    let resumed = talking.expect("resumed").await;
    assert_eq!(resumed["state"], "assigned");
    assert_eq!(resumed["transcript"][0]["body"], "before the restart");
    let mut waiting = server.caller_resumes(&waiting_joined["resume_token"]).await;
    let resumed = waiting.expect("resumed").await;
    assert_eq!(resumed["state"], "waiting");
    assert_eq!(resumed["position"], 1);
    let mut leaving = server.caller_resumes(&leaving_joined["resume_token"]).await;
    let resumed = leaving.expect("resumed").await;
    assert_eq!(resumed["state"], "waiting", "{resumed}");
    assert_eq!(
        resumed["position"], 2,
        "back in its place, after the earlier caller"
    );

    let (_op, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], talking_id);
    assert_eq!(
        hello["contacts"][0]["transcript"][0]["body"],
        "before the restart"
    );
    server.stop().await;
}
server_test!(restart_restores_contacts);

/// A contact requeued after losing its operator waits first in line, ahead of callers who came
/// before it — and still does after a restart.
async fn lost_contact_stays_first_after_a_restart(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.caller_grace_ms = 10_000;
    let server = start(&db, settings.clone()).await;
    server.account("op", Role::Operator, &[]).await;
    let (mut early, early_joined) = server.caller_joins(join("general", "no")).await;
    let (mut lost, lost_joined) = server.caller_joins(join("general", "no")).await;
    assert_eq!(lost_joined["position"], 2);

    // The operator passes on the first caller and takes the second, then their console drops
    // for good (grace is 1 s in these tests).
    let mut op = server.available_staff("op").await;
    let offer = op.expect("offer").await;
    assert_eq!(offer["contact"]["id"], early_joined["contact"]);
    op.send(json!({"type": "reject", "contact": early_joined["contact"]}))
        .await;
    let offer = op.expect("offer").await;
    assert_eq!(offer["contact"]["id"], lost_joined["contact"]);
    accept(&mut op, &lost_joined["contact"]).await;
    lost.expect("connected").await;
    drop(op);
    let lost_id = lost_joined["contact"].as_i64().unwrap();
    wait_for_event(&server, lost_id, "requeue").await;

    let stop = tokio::spawn(server.stop());
    stop.await.unwrap();
    let server = start(&db, settings).await;
    for (caller, joined, position) in [(&mut early, &early_joined, 2), (&mut lost, &lost_joined, 1)]
    {
        *caller = server.caller_resumes(&joined["resume_token"]).await;
        let resumed = caller.expect("resumed").await;
        assert_eq!(resumed["state"], "waiting", "{resumed}");
        assert_eq!(resumed["position"], position, "{resumed}");
    }
    server.stop().await;
}
server_test!(lost_contact_stays_first_after_a_restart);

/// A contact that overflowed keeps the queue it overflowed to across a restart: it never
/// overflows back into the queue it left.
async fn an_overflowed_contact_keeps_its_queue_after_a_restart(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.caller_grace_ms = 10_000;
    let queue = |id: &str| QueueId::parse(id).unwrap();
    // Nobody could ever take a contact in `a`: it overflows to `b` at once. `b` would send it
    // back after 100 ms, were `a` not a queue it left.
    let store = db.connect().await;
    store
        .put_queue(&QueueDefinition {
            overflow_to: Some(queue("b")),
            ..QueueDefinition::open(queue("a"), "A")
        })
        .await
        .unwrap();
    store
        .put_queue(&QueueDefinition {
            overflow_to: Some(queue("a")),
            max_wait_ms: Some(100),
            ..QueueDefinition::open(queue("b"), "B")
        })
        .await
        .unwrap();
    let server = start(&db, settings.clone()).await;
    let (caller, joined) = server.caller_joins(join("a", "no")).await;
    let id = joined["contact"].as_i64().unwrap();
    let overflows = |kinds: Vec<String>| kinds.iter().filter(|k| *k == "overflow").count();
    assert_eq!(overflows(server.events_of(id).await), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(overflows(server.events_of(id).await), 1);
    server.stop().await;
    drop(caller);

    let server = start(&db, settings).await;
    assert_eq!(
        overflows(server.events_of(id).await),
        1,
        "moved on by the restart"
    );
    let record = server.store.contact(ContactId(id)).await.unwrap();
    assert_eq!(record.queue, queue("b"));
    let mut caller = server.caller_resumes(&joined["resume_token"]).await;
    let resumed = caller.expect("resumed").await;
    assert_eq!(resumed["state"], "waiting", "{resumed}");
    server.stop().await;
}
server_test!(an_overflowed_contact_keeps_its_queue_after_a_restart);

/// After a restart the operator and a supervisor who had barged in come back before the caller:
/// both are in the contact again, the operator can write at once, and hears when the caller is back.
async fn staff_come_back_before_the_caller_after_a_restart(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 10_000;
    settings.routing.caller_grace_ms = 10_000;
    let server = start(&db, settings.clone()).await;
    server.account("op", Role::Operator, &[]).await;
    server.account("lead", Role::Supervisor, &[]).await;
    let (caller, joined, mut op) = server.connected_contact("op").await;
    let id = joined["contact"].as_i64().unwrap();
    let mut lead = server.staff("lead").await;
    join_contact(&mut lead, id, "barge").await;
    server.stop_telling(&mut op).await;
    drop((op, lead, caller));

    let server = start(&db, settings).await;
    let (mut op, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], id, "{hello}");
    let (mut lead, hello) = server.staff_with_hello("lead").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], id, "{hello}");
    op.send(say_to(id, "I am still here", "o")).await;
    assert_eq!(op.expect("said").await["client_id"], "o");
    assert_eq!(
        lead.expect("message").await["line"]["body"],
        "I am still here"
    );

    let mut caller = server.caller_resumes(&joined["resume_token"]).await;
    let resumed = caller.expect("resumed").await;
    assert_eq!(resumed["state"], "assigned");
    assert_eq!(resumed["transcript"][0]["body"], "I am still here");
    op.expect_where("caller_back", |f| f["contact"] == id).await;
    caller.send(say("back again", "c")).await;
    assert_eq!(op.expect("message").await["line"]["body"], "back again");
    assert_eq!(lead.expect("message").await["line"]["body"], "back again");
    server.stop().await;
}
server_test!(staff_come_back_before_the_caller_after_a_restart);

/// A long transcript comes a page at a time: frames carry its newest lines and say there are
/// earlier ones; staff read those over HTTP, the caller over its socket (never the whispers).
async fn a_long_transcript_comes_a_page_at_a_time(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.caller.transcript_page_lines = 3.try_into().unwrap();
    let server = start(&db, settings).await;
    let cookie = server.signed_in("op", Role::Operator).await;
    server.account("lead", Role::Supervisor, &[]).await;
    let mut caller = server.caller().await;
    caller.send(json!({"type": "earlier", "before": 5})).await;
    assert_eq!(caller.expect("error").await["code"], "not_joined");
    caller.send(join("general", "no")).await;
    let joined = caller.expect("joined").await;
    let id = joined["contact"].as_i64().unwrap();
    for i in 1..=5 {
        caller.send(say(format!("line {i}"), format!("c{i}"))).await;
        assert_eq!(caller.expect("said").await["seq"], i);
    }
    let seqs = |lines: &Value| -> Vec<i64> {
        lines
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["seq"].as_i64().unwrap())
            .collect()
    };

    let mut op = server.available_staff("op").await;
    let offer = op.expect("offer").await;
    assert_eq!(seqs(&offer["transcript"]), [3, 4, 5], "{offer}");
    assert_eq!(offer["earlier"], true);
    let assigned = accept(&mut op, id).await;
    assert_eq!(seqs(&assigned["contact"]["transcript"]), [3, 4, 5]);
    assert_eq!(assigned["contact"]["earlier"], true);
    caller.expect("connected").await;

    let mut lead = server.staff("lead").await;
    join_contact(&mut lead, id, "whisper").await;
    lead.send(say_to(id, "whisper", "w")).await;
    assert_eq!(lead.expect("said").await["seq"], 6);
    op.send(say_to(id, "op line", "o")).await;
    assert_eq!(op.expect("said").await["seq"], 7);

    let path = format!("/api/contacts/{id}/transcript");
    let (status, newest) = get(&server, &cookie, &path).await;
    assert_eq!(status, 200, "{newest}");
    assert_eq!(
        (seqs(&newest["lines"]), &newest["earlier"]),
        (vec![5, 6, 7], &json!(true))
    );
    let (_, page) = get(&server, &cookie, &format!("{path}?before=5")).await;
    assert_eq!(
        (seqs(&page["lines"]), &page["earlier"]),
        (vec![2, 3, 4], &json!(true))
    );
    let (_, page) = get(&server, &cookie, &format!("{path}?before=2&limit=10")).await;
    assert_eq!(
        (seqs(&page["lines"]), &page["earlier"]),
        (vec![1], &json!(false))
    );
    for bad in ["?limit=0", "?limit=1001", "?before=x", "?limit=-3"] {
        let (status, body) = get(&server, &cookie, &format!("{path}{bad}")).await;
        assert_eq!(
            (status, &body["code"]),
            (422, &json!("invalid")),
            "{bad}: {body}"
        );
    }

    drop(caller);
    let mut caller = server.caller_resumes(&joined["resume_token"]).await;
    let resumed = caller.expect("resumed").await;
    assert_eq!(seqs(&resumed["transcript"]), [4, 5, 7], "{resumed}");
    assert_eq!(resumed["earlier"], true);
    caller.send(json!({"type": "earlier", "before": 4})).await;
    let earlier = caller.expect("earlier").await;
    assert_eq!(
        (seqs(&earlier["lines"]), &earlier["earlier"]),
        (vec![1, 2, 3], &json!(false))
    );
    assert_eq!(earlier["lines"][0]["body"], "line 1");
    caller.send(json!({"type": "earlier", "before": 8})).await;
    let again = caller.expect("earlier").await;
    assert_eq!(
        seqs(&again["lines"]),
        [4, 5, 7],
        "the whisper never reaches the caller"
    );
    server.stop().await;
}
server_test!(a_long_transcript_comes_a_page_at_a_time);

/// The NUL character, which PostgreSQL refuses (failing the whole batch it is in), is refused at
/// the door with a code; the connection stays usable and the next caller is routed as usual.
async fn the_nul_character_is_refused_and_routing_goes_on(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let mut bad = server.caller().await;
    let mut frame = join("general", "no");
    frame["age_group"] = json!("18\u{0}24");
    bad.send(frame).await;
    assert_eq!(bad.expect("error").await["code"], "invalid");
    bad.send(join("general", "no")).await;
    bad.expect("joined").await;
    bad.send(say("a\u{0}b", "n")).await;
    let refused = bad.expect("error").await;
    assert_eq!(
        (&refused["code"], &refused["client_id"]),
        (&json!("invalid"), &json!(null))
    );
    bad.send(say("a\\u0000b", "t")).await;
    assert_eq!(bad.expect("said").await["client_id"], "t");

    let (_caller, _joined, mut op) = server.connected_contact("op").await;
    op.ping().await;
    server.stop().await;
}
server_test!(the_nul_character_is_refused_and_routing_goes_on);

/// SIGTERM ends the server within the grace period even while an HTTP client holds a request
/// open: it has sent a POST's headers and part of its body, and then nothing more.
async fn a_slow_http_client_cannot_hold_shutdown(db: FreshDb) {
    use tokio::io::AsyncWriteExt;
    let server = start(&db, test_settings(&db)).await; // shutdown_grace_ms = 2000
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(
        b"POST /api/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"name\"",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.handle)
        .await
        .expect("stopped within 10 s (grace 2 s) although one HTTP request is unfinished")
        .unwrap()
        .unwrap();
    drop(slow);
}
server_test!(a_slow_http_client_cannot_hold_shutdown);

/// SIGTERM while the event log refuses every write: the router stops retrying at the shutdown
/// deadline and the server ends in time. The batch it gives up was never acknowledged: the
/// caller is not told it joined, and nothing of it is in the store.
async fn shutdown_ends_while_the_store_refuses_writes(db: FreshDb) {
    use futures_util::StreamExt;
    let server = start(&db, test_settings(&db)).await; // shutdown_grace_ms = 2000
    match db.backend() {
        Backend::Sqlite => {
            db.execute(
                "CREATE TRIGGER events_fail BEFORE INSERT ON events \
                 BEGIN SELECT RAISE(ABORT, 'the database is briefly unavailable'); END",
            )
            .await
        }
        Backend::Postgres => {
            db.execute(
                "CREATE OR REPLACE FUNCTION events_fail() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'the database is briefly unavailable'; END $$",
            )
            .await;
            db.execute(
                "CREATE TRIGGER events_fail BEFORE INSERT ON events \
                 FOR EACH ROW EXECUTE FUNCTION events_fail()",
            )
            .await;
        }
    }
    let mut caller = server.caller().await;
    caller.send(join("general", "no")).await; // its batch cannot commit
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.handle)
        .await
        .expect("stopped within 10 s (grace 2 s) while the store refuses writes")
        .unwrap()
        .unwrap();
    let mut told = Vec::new();
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_secs(2), caller.0.next()).await
    {
        let frame: Value = serde_json::from_str(&text).unwrap();
        told.push(frame["type"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        !told.iter().any(|kind| kind == "joined"),
        "the caller was told of a join that never became durable: {told:?}"
    );
    assert_eq!(server.store.open_contacts().await.unwrap().len(), 0);
}
server_test!(shutdown_ends_while_the_store_refuses_writes);

/// A line of 14 KB, `n` times, from one socket (a caller's or, with `contact`, staff), until all
/// are acknowledged; the far side does not read meanwhile.
async fn flood(ws: &mut Ws, contact: Option<i64>, n: usize, tag: &str) {
    let body = "x".repeat(14_000);
    for i in 0..n {
        let mut frame = say(&body, format!("{tag}{i}"));
        if let Some(contact) = contact {
            frame["contact"] = json!(contact);
        }
        ws.0.feed(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
    ws.0.flush().await.unwrap();
    for _ in 0..n {
        ws.expect("said").await;
    }
}

/// Polls the event log until the contact has an event of `kind`.
async fn wait_for_event(server: &Server, contact: i64, kind: &str) {
    for _ in 0..100 {
        if server.has_event(contact, kind).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {kind} for contact {contact}: {:?}",
        server.events_of(contact).await
    );
}

/// A console that stops reading is dropped as too slow; once it is gone its contacts go back to
/// the queue after the grace period, as for any lost connection. So does a caller's grace period
/// start when the caller's tab is dropped the same way.
async fn peers_dropped_as_too_slow_are_treated_as_gone(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.caller.max_message_bytes = 15_000;
    settings.caller.frames_per_10s = 1_000_000;
    settings.routing.caller_grace_ms = 60_000;
    let server = start(&db, settings).await;
    server.account("op", Role::Operator, &[]).await;
    server.account("op2", Role::Operator, &[]).await;
    for name in ["s1", "s2", "s3"] {
        server.account(name, Role::Supervisor, &[]).await;
    }
    let (mut caller, joined, op) = server.connected_contact("op").await;
    let id = joined["contact"].as_i64().unwrap();
    // The console stops reading; the caller writes far more than its inbox holds.
    flood(&mut caller, None, 1_500, "c").await;
    drop(op);
    wait_for_event(&server, id, "requeue").await;
    caller.send(json!({"type": "leave"})).await;
    caller.expect("ended").await;

    // The other way round: a caller's tab stops reading while four people write to it.
    let (caller, joined, op) = server.connected_contact("op2").await;
    let id = joined["contact"].as_i64().unwrap();
    let mut staff = vec![op];
    for name in ["s1", "s2", "s3"] {
        let mut ws = server.staff(name).await;
        join_contact(&mut ws, id, "barge").await;
        staff.push(ws);
    }
    let writers = staff.into_iter().enumerate().map(|(k, mut ws)| {
        tokio::spawn(async move {
            flood(&mut ws, Some(id), 190, &format!("s{k}-")).await;
            ws
        })
    });
    let mut staff = Vec::new();
    for writer in writers.collect::<Vec<_>>() {
        staff.push(writer.await.unwrap());
    }
    drop(caller);
    wait_for_event(&server, id, "caller_away").await;
    drop(staff);
    server.stop().await;
}
server_test!(peers_dropped_as_too_slow_are_treated_as_gone);

/// With a crisis skill configured, a contact whose risk the lexicon raises to imminent needs it,
/// as one that screened imminent does: it is not offered to an operator without it.
async fn a_raised_risk_needs_the_crisis_skill(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.caller.crisis_skill = Some(hotline::domain::Skill::parse("crisis").unwrap());
    let server = start(&db, settings).await;
    server.account("op", Role::Operator, &[]).await;
    server
        .account("crisis", Role::Operator, &[("crisis", 3)])
        .await;
    let (mut urgent, joined) = server.caller_joins(join("general", "no")).await;
    let urgent_id = joined["contact"].as_i64().unwrap();
    let (_calm, joined) = server.caller_joins(join("general", "no")).await;
    let calm_id = joined["contact"].as_i64().unwrap();
    urgent
        .send(say("I want to kill myself tonight", "u1"))
        .await;
    urgent.expect("said").await;
    wait_for_event(&server, urgent_id, "risk_change").await;

    // First in line, but not for an operator without the crisis skill.
    let mut op = server.available_staff("op").await;
    assert_eq!(op.expect("offer").await["contact"]["id"], calm_id);
    let mut crisis = server.available_staff("crisis").await;
    assert_eq!(crisis.expect("offer").await["contact"]["id"], urgent_id);
    server.stop().await;
}
server_test!(a_raised_risk_needs_the_crisis_skill);

/// Bad frames get coded errors and the connection stays usable; floods are closed with 1008;
/// forged origins and wrong roles are refused.
async fn bad_input_is_refused_with_codes(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.caller.frames_per_10s = 30;
    settings.caller.max_message_bytes = 100;
    let server = start(&db, settings).await;
    server.account("op", Role::Operator, &[]).await;

    let mut caller = server.caller().await;
    for (frame, code) in [
        ("this is not json", "bad_frame"),
        ("{\"type\": 5}", "bad_frame"),
        ("{\"type\": \"dance\"}", "unknown_type"),
        ("{\"type\": \"say\"}", "invalid"),
    ] {
        caller.send_raw(frame).await;
        assert_eq!(caller.expect("error").await["code"], code, "{frame}");
    }
    caller.send(say("early", "e")).await;
    assert_eq!(caller.expect("error").await["code"], "not_joined");
    let mut refused = join("general", "no");
    refused["accepted_confidentiality"] = json!(false);
    caller.send(refused).await;
    assert_eq!(caller.expect("error").await["code"], "invalid");
    caller.send(join("nowhere", "no")).await;
    assert_eq!(caller.expect("error").await["code"], "not_found");
    caller.send(join("general", "no")).await;
    caller.expect("joined").await;
    caller.send(say("x".repeat(500), "big")).await;
    assert_eq!(caller.expect("error").await["code"], "too_large");
    caller
        .send_raw(&format!(
            "{{\"type\":\"say\",\"text\":\"{}\",\"client_id\":\"huge\"}}",
            "y".repeat(20_000)
        ))
        .await;
    assert_eq!(caller.expect("error").await["code"], "too_large");
    caller.ping().await;

    // An operator may not join contacts, nor accept what was not offered.
    let mut op = server.staff("op").await;
    op.send(json!({"type": "join", "contact": 1, "mode": "barge"}))
        .await;
    assert_eq!(op.expect("error").await["code"], "forbidden");
    op.send(json!({"type": "accept", "contact": 999})).await;
    let code = op.expect("error").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(code == "unknown_contact" || code == "not_offered", "{code}");

    // A forged origin cannot open a socket.
    let mut request = format!("ws://{}/ws/caller", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());

    // A flood is closed as a policy violation.
    let mut flood = server.caller().await;
    for _ in 0..40 {
        // The server may close the socket before the last frames are written: that is the point.
        if flood
            .0
            .send(Message::Text(json!({"type": "ping"}).to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(flood.closed().await, Some(1008));

    // Accepted work survived all of it: the server still routes.
    available(&mut op).await;
    op.expect("offer").await;
    server.stop().await;
}
server_test!(bad_input_is_refused_with_codes);

/// A caller may write faster than lines are written: every line is acknowledged in order, shown
/// to the operator in order, and stored in order; a bad line in between fails alone; a frame after
/// them (leave) is answered only after them.
async fn lines_written_back_to_back(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let mut op = server.available_staff("op").await;
    let (mut caller, joined, _) = server
        .accepted_contact(&mut op, join("general", "no"))
        .await;
    let contact = joined["contact"].as_i64().unwrap();
    caller.expect("connected").await;

    let lines = 40;
    for i in 0..lines {
        let text = if i == 7 {
            "   ".to_owned()
        } else {
            format!("line {i}")
        };
        caller.send(say(text, format!("c{i}"))).await;
    }
    caller.send(json!({"type": "leave"})).await;
    // A line refused on sight is answered at once; durable ones are acknowledged in order.
    let mut said = Vec::new();
    for _ in 0..lines {
        let frame = caller.next().await;
        if frame["type"] == "error" {
            assert_eq!(
                (frame["code"].as_str(), frame["client_id"].as_str()),
                (Some("invalid"), Some("c7")),
                "{frame}"
            );
            continue;
        }
        assert_eq!(frame["type"], "said", "{frame}");
        said.push((
            frame["client_id"].as_str().unwrap().to_owned(),
            frame["seq"].as_i64().unwrap(),
        ));
    }
    let expected: Vec<_> = (0..lines)
        .filter(|i| *i != 7)
        .enumerate()
        .map(|(n, i)| (format!("c{i}"), n as i64 + 1))
        .collect();
    assert_eq!(said, expected);
    caller.expect("ended").await;
    for i in (0..lines).filter(|i| *i != 7) {
        let line = op.expect("message").await;
        assert_eq!(line["line"]["body"], format!("line {i}"));
    }
    let stored: Vec<_> = server
        .store
        .messages(hotline::domain::ContactId(contact))
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.seq, m.body))
        .collect();
    let expected: Vec<_> = (0..lines)
        .filter(|i| *i != 7)
        .enumerate()
        .map(|(n, i)| (n as i64 + 1, format!("line {i}")))
        .collect();
    assert_eq!(stored, expected);
    server.stop().await;
}
server_test!(lines_written_back_to_back);

/// A closed queue answers with its message and alternative numbers.
async fn closed_queue_lists_alternatives(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    // Open for one minute a day, at a minute that is not now.
    let now_min = ((Timestamp::now().0 / 60_000) % 1440) as u16;
    let open = (now_min + 720) % 1440;
    let (status, body) = put(
        &server,
        &admin,
        "/api/admin/queues/night",
        json!({"id": "night", "name": "Night line",
            "opening_hours": {"kind": "daily", "open_minute": open, "close_minute": (open + 1) % 1440, "utc_offset_minutes": 0}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut caller = server.caller().await;
    caller.send(join("night", "no")).await;
    let closed = caller.expect("closed").await;
    let numbers: Vec<&str> = closed["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["number"].as_str().unwrap())
        .collect();
    assert!(numbers.contains(&"12356") && numbers.contains(&"110") && numbers.contains(&"120"));
    server.stop().await;
}
server_test!(closed_queue_lists_alternatives);

/// A supervisor whispers (the caller does not see it) and barges (the caller does); transfer to a
/// queue hands the contact to the colleague there.
async fn supervisor_joins_and_operator_transfers(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    server
        .account("lead", Role::Supervisor, &[("youth", 5)])
        .await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let (status, body) = put(
        &server,
        &admin,
        "/api/admin/queues/youth",
        json!({"id": "youth", "name": "Youth",
               "required_skills": [{"skill": "youth", "min_proficiency": 3}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (mut caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();

    let mut lead = server.staff("lead").await;
    let (_, floor) = get(&server, &server.login("lead").await, "/api/wallboard").await;
    assert_eq!(floor["contacts"][0]["id"], contact);
    let joined = join_contact(&mut lead, contact, "whisper").await;
    assert_eq!(joined["contact"]["summary"]["id"], contact);
    op.expect("participant").await;
    lead.send(say_to(contact, "ask about sleep", "w")).await;
    lead.expect("said").await;
    let whisper = op.expect("message").await;
    assert_eq!(whisper["line"]["visibility"], "operators");
    lead.send(json!({"type": "join", "contact": contact, "mode": "barge"}))
        .await;
    op.expect("participant").await;
    lead.send(say_to(contact, "I am a supervisor", "b")).await;
    lead.expect("said").await;
    // The caller sees the barge line and never the whisper.
    let seen = caller.expect("message").await;
    assert_eq!(seen["line"]["body"], "I am a supervisor");
    lead.send(json!({"type": "leave", "contact": contact}))
        .await;
    lead.expect("released").await;

    available(&mut lead).await;
    op.send(json!({"type": "transfer", "contact": contact, "target": {"kind": "queue", "queue": "youth"}}))
        .await;
    op.expect("released").await;
    caller.expect("transferring").await;
    let offer = lead.expect("offer").await;
    assert_eq!(offer["contact"]["queue"], "youth");
    server.stop().await;
}
server_test!(supervisor_joins_and_operator_transfers);

/// New chats from one address are rate-limited.
async fn caller_joins_are_rate_limited(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.caller.joins_per_minute = 2;
    let server = start(&db, settings).await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let mut caller = server.caller().await;
        caller.send(join("general", "no")).await;
        let frame = caller.next().await;
        codes.push(match frame["type"].as_str() {
            Some("error") => frame["code"].as_str().unwrap().to_owned(),
            other => other.unwrap().to_owned(),
        });
    }
    assert_eq!(codes, ["joined", "joined", "rate_limited"]);
    server.stop().await;
}
server_test!(caller_joins_are_rate_limited);

/// Runs `hotline ARGS` on `db`'s database in `dir`, with `stdin` written to it; returns whether
/// it succeeded and what it printed.
fn hotline_cli(
    db: &FreshDb,
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .env("HOTLINE_DATABASE_URL", db.url())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `hotline serve` as its own process on `db`'s database, on a free port, its standard output
/// read line by line.
struct ServeProcess {
    child: std::process::Child,
    base: String,
    stdout: std::sync::mpsc::Receiver<String>,
}

/// A test that fails while the server runs leaves no server behind.
impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ServeProcess {
    /// Starts it in `dir` and waits until it answers `/readyz`.
    async fn start(db: &FreshDb, dir: &std::path::Path) -> ServeProcess {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotline"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("HOTLINE_DATABASE_URL", db.url())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines, stdout) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{base}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return ServeProcess {
                    child,
                    base,
                    stdout,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server answers /readyz");
    }

    /// What it printed so far: everything it prints at a start comes before it answers
    /// `/readyz`, and reaches the reading thread at once (no line for 300 ms: that was all).
    fn printed(&self) -> String {
        let mut lines = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(300)) {
            lines.push(line);
        }
        lines.join("\n")
    }

    /// Sends SIGTERM; it must exit cleanly within 10 s.
    async fn terminate(mut self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "clean exit after SIGTERM: {status:?}");
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "exits within 10 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The command line: migrate, user add (password on stdin), demo, and serve until SIGTERM,
/// which it obeys within 10 s. `demo` on a database a server is using adds what is missing and
/// changes nothing an administrator set (the `general` queue), and says that the server must be
/// restarted to serve the queues it added; after the restart they are served.
async fn command_line_and_sigterm(db: FreshDb) {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| hotline_cli(&db, dir.path(), args, stdin);
    assert!(run(&["migrate"], None).0);
    let (ok, out) = run(
        &["user", "add", "--name", "cli.op", "--role", "operator"],
        Some("a long cli password\n"),
    );
    assert!(ok && out.contains("added cli.op"), "{out}");
    let (ok, _) = run(
        &["user", "add", "--name", "cli.op", "--role", "operator"],
        Some("a long cli password\n"),
    );
    assert!(!ok, "a duplicate name is refused");
    let (ok, _) = run(
        &["user", "add", "--name", "x.y", "--role", "wizard"],
        Some("a long cli password\n"),
    );
    assert!(!ok, "an unknown role is refused");
    // An administrator's own `general`.
    let mut general = QueueDefinition::open(QueueId::parse("general").unwrap(), "Our line");
    general.max_wait_ms = Some(123_000);
    db.connect().await.put_queue(&general).await.unwrap();

    let server = ServeProcess::start(&db, dir.path()).await;
    let (ok, out) = run(&["demo"], None);
    assert!(
        ok && out.contains("li.na") && out.contains("crisis_lead"),
        "{out}"
    );
    assert!(
        out.contains("general  already there, left as it is")
            && out.contains("Added the queues crisis, youth")
            && out.contains("restart it to serve them"),
        "{out}"
    );
    server.terminate().await;

    let server = ServeProcess::start(&db, dir.path()).await;
    let info: Value = reqwest::get(format!("{}/api/public/info", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served: Vec<(&str, &str)> = info["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["id"].as_str().unwrap(), q["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        served,
        [
            ("crisis", "Crisis line"),
            ("general", "Our line"),
            ("youth", "Youth and students")
        ],
        "demo queues are served after the restart, the administrator's general as it was"
    );
    let stored = db.connect().await.queues().await.unwrap();
    assert_eq!(
        stored.iter().find(|q| q.id.as_str() == "general"),
        Some(&general)
    );
    server.terminate().await;

    // Again: nothing to add, nothing changed, no restart needed.
    let (ok, out) = run(&["demo"], None);
    assert!(
        ok && out.contains("li.na      operator     Li Na (already there, left as it is)")
            && !out.contains("restart"),
        "{out}"
    );
}
server_test!(command_line_and_sigterm);

/// Whenever no enabled administrator exists, `hotline serve` creates one with a one-time password
/// it prints: after `hotline user add` made only staff accounts, and after the last administrator
/// was disabled. An account named `admin` that is someone else's is left as it is: the new
/// administrator takes the next free name.
async fn an_administrator_is_made_whenever_none_is_enabled(db: FreshDb) {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| hotline_cli(&db, dir.path(), args, stdin);
    assert!(run(&["migrate"], None).0);
    for name in ["cli.op", "admin"] {
        let (ok, out) = run(
            &["user", "add", "--name", name, "--role", "operator"],
            Some("a long cli password\n"),
        );
        assert!(ok, "{out}");
    }
    let store = db.connect().await;
    // The one-time password printed by a start, for the account it names.
    let made = |printed: &str, name: &str| -> Option<String> {
        let line = printed.lines().find(|l| l.contains("one-time password"))?;
        assert!(line.contains(&format!("'{name}'")), "{line}");
        Some(line.rsplit(": ").next().unwrap().trim().to_owned())
    };

    let server = ServeProcess::start(&db, dir.path()).await;
    let printed = server.printed();
    let password = made(&printed, "admin2").expect("an administrator is made");
    let signed_in = reqwest::Client::new()
        .post(format!("{}/api/login", server.base))
        .json(&json!({"name": "admin2", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = session_cookie(&signed_in);
    let me: Value = reqwest::Client::new()
        .get(format!("{}/api/me", server.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&me["role"], &me["must_change_password"]),
        (&json!("admin"), &json!(true)),
        "{me}"
    );
    let operator = store.account_by_name("admin").await.unwrap();
    assert_eq!(
        (operator.role, operator.disabled),
        (Role::Operator, false),
        "the operator named admin is left as they were"
    );
    server.terminate().await;

    // With an enabled administrator, a start makes none.
    let server = ServeProcess::start(&db, dir.path()).await;
    let printed = server.printed();
    assert_eq!(made(&printed, "-"), None, "{printed}");
    server.terminate().await;

    // The only administrator disabled: the next start makes another.
    let admin = store.account_by_name("admin2").await.unwrap();
    store
        .update_account(
            admin.id,
            hotline::store::AccountUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let server = ServeProcess::start(&db, dir.path()).await;
    assert!(made(&server.printed(), "admin3").is_some());
    server.terminate().await;
    let admins = store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.role == Role::Admin)
        .map(|a| (a.name, a.disabled))
        .collect::<Vec<_>>();
    assert_eq!(
        admins,
        [("admin2".to_owned(), true), ("admin3".to_owned(), false)]
    );
}
server_test!(an_administrator_is_made_whenever_none_is_enabled);

/// Once a conversation is over, nobody writes to it: the caller's late line (and the operator's
/// in wrap-up) is refused with `ended` and not stored, since nobody would ever read it.
async fn nobody_writes_to_a_conversation_that_is_over(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let (mut caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    end(&mut op, contact).await;
    caller.expect("ended").await;
    op.send(say_to(contact, "one more thing", "o")).await;
    assert_eq!(op.expect("error").await["code"], "ended");
    caller.send(say("我不想活了", "late")).await;
    let refused = caller.expect("error").await;
    assert_eq!(
        (&refused["code"], &refused["client_id"]),
        (&json!("ended"), &json!("late"))
    );
    let stored = server
        .store
        .messages(hotline::domain::ContactId(contact))
        .await
        .unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    server.stop().await;
}
server_test!(nobody_writes_to_a_conversation_that_is_over);

/// An open console works with the account as it was when it connected: disabling the account,
/// changing its role, resetting its password or signing out closes it; other edits (a name, a
/// capacity, the same role sent back) do not. A demoted supervisor who connects again is an
/// operator.
async fn account_changes_close_the_open_console(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let op_id = server.account("op", Role::Operator, &[]).await;
    let sup_id = server.account("sup", Role::Supervisor, &[]).await;
    let (_caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();

    let (status, body) = edit_account(&server, &admin, op_id, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        op.closed().await,
        Some(1008),
        "the disabled account's console"
    );

    let mut sup = server.staff("sup").await;
    // An edit that sends the role back unchanged (as the console's form does) leaves it open.
    let (status, body) = edit_account(
        &server,
        &admin,
        sup_id,
        json!({"role": "supervisor", "display_name": "Sup B", "chat_capacity": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    sup.ping().await;
    let (status, body) = edit_account(&server, &admin, sup_id, json!({"role": "operator"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sup.closed().await,
        Some(1008),
        "the demoted supervisor's console"
    );
    let mut sup = server.staff("sup").await;
    sup.send(json!({"type": "join", "contact": contact, "mode": "monitor"}))
        .await;
    assert_eq!(sup.expect("error").await["code"], "forbidden");

    let (status, _) = post(
        &server,
        &admin,
        &format!("/api/admin/accounts/{sup_id}/password"),
        json!({"password": "a brand new long password"}),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(sup.closed().await, Some(1008), "after a password reset");

    let mut boss = server.staff("boss").await;
    let (status, _) = post(&server, &admin, "/api/logout", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(boss.closed().await, Some(1008), "after signing out");
    server.stop().await;
}
server_test!(account_changes_close_the_open_console);

/// A password someone else set (the first start's, an admin's reset) is good for one thing:
/// choosing a new one. Until then the account sees only itself, its password change and sign-out.
async fn a_set_password_must_be_changed_before_anything_else(db: FreshDb) {
    let store = db.connect().await;
    let password = hotline::app::bootstrap_admin(&store)
        .await
        .unwrap()
        .expect("a fresh database gets an admin")
        .password;
    drop(store);
    let server = start(&db, test_settings(&db)).await;
    let cookie = server.login_with("admin", &password).await;
    let (status, me) = get(&server, &cookie, "/api/me").await;
    assert_eq!((status, &me["must_change_password"]), (200, &json!(true)));
    let new_account = json!({"name": "second", "display_name": "Second", "role": "admin",
                             "password": "another long password"});
    let (status, body) = post(&server, &cookie, "/api/admin/accounts", new_account.clone()).await;
    assert_eq!(
        (status, &body["code"]),
        (403, &json!("password_change_required"))
    );
    let mut upgrade = format!("ws://{}/ws/staff", server.addr)
        .into_client_request()
        .unwrap();
    upgrade
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    upgrade
        .headers_mut()
        .insert("origin", format!("http://{}", server.addr).parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(upgrade).await.is_err(),
        "no console before the change"
    );

    let response = reqwest::Client::new()
        .post(server.url("/api/me/password"))
        .header("cookie", &cookie)
        .json(&json!({"current_password": password, "new_password": "my own long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cookie = session_cookie(&response);
    let (status, body) = post(&server, &cookie, "/api/admin/accounts", new_account).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}
server_test!(a_set_password_must_be_changed_before_anything_else);

/// Handle time counts the talk and wrap-up of the operator who completes a contact: a restart
/// during the second operator's conversation (after a transfer) must not add the first one's.
async fn handle_time_after_a_transfer_and_a_restart(db: FreshDb) {
    let mut s = test_settings(&db);
    s.routing.operator_grace_ms = 600_000;
    s.routing.caller_grace_ms = 600_000;
    let server = start(&db, s.clone()).await;
    server.account("op1", Role::Operator, &[]).await;
    let op2_id = server.account("op2", Role::Operator, &[]).await;
    let mut op1 = server.available_staff("op1").await;
    let (caller, joined, _) = server
        .accepted_contact(&mut op1, join("general", "no"))
        .await;
    let contact = joined["contact"].as_i64().unwrap();
    // op1 talks for 1.5 s, then hands the caller to op2.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut op2 = server.available_staff("op2").await;
    op2.ping().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    op1.send(json!({"type": "transfer", "contact": contact,
                    "target": {"kind": "operator", "operator": op2_id}}))
        .await;
    op1.expect("released").await;
    op2.expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    accept(&mut op2, contact).await;
    drop((op1, op2, caller));
    server.stop().await;

    let server = start(&db, s).await;
    let mut op2 = server.staff("op2").await;
    end(&mut op2, contact).await;
    finish_wrap_up(&mut op2, contact).await;
    let events = server
        .store
        .events_of_contact(hotline::domain::ContactId(contact))
        .await
        .unwrap();
    let connects: Vec<Timestamp> = events
        .iter()
        .filter(|e| e.kind == "connect")
        .map(|e| e.at)
        .collect();
    let complete = events.iter().find(|e| e.kind == "complete").unwrap();
    let handled = complete.data["handled_ms"].as_i64().unwrap();
    let op2_time = complete.at.since(*connects.last().unwrap());
    assert!(
        (handled - op2_time).abs() < 1_000,
        "op2 held the contact {op2_time} ms, but its complete says {handled} ms \
         (from op1's connect: {} ms)",
        complete.at.since(connects[0])
    );
    server.stop().await;
}
server_test!(handle_time_after_a_transfer_and_a_restart);

// ---- caller side review ----

/// A conversation the operator ended is over for the caller too: coming back with its resume
/// token (a reload during the operator's wrap-up) must not reopen it, or the caller's lines would
/// be acknowledged while nobody reads them.
async fn resume_after_the_operator_ended_is_refused(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op1", Role::Operator, &[]).await;
    let (mut caller, joined, mut op) = server.connected_contact("op1").await;
    let contact = joined["contact"].clone();
    end(&mut op, contact).await;
    caller.expect("ended").await;
    drop(caller);

    let mut back = server.caller_resumes(&joined["resume_token"]).await;
    let answer = back.next().await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "ended", "{answer}");
    back.send(say("are you there?", "x")).await;
    let answer = back.next().await;
    assert_eq!(
        answer["type"], "error",
        "a line nobody reads was accepted: {answer}"
    );
    server.stop().await;
}
server_test!(resume_after_the_operator_ended_is_refused);

/// A flood is a flood whatever the frames hold: binary frames count against the caller's frame
/// budget like text ones, and past it the connection is closed with the policy code.
async fn caller_binary_flood_is_closed(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let mut caller = server.caller().await;
    caller
        .0
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    // One binary frame is answered and the connection stays usable.
    assert_eq!(caller.expect("error").await["code"], "bad_frame");
    caller.ping().await;
    for _ in 0..200 {
        if caller
            .0
            .send(Message::Binary(vec![0; 8].into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(caller.closed().await, Some(1008));
    server.stop().await;
}
server_test!(caller_binary_flood_is_closed);

/// The same for a staff console (its limit is 200 frames in 10 s).
async fn staff_binary_flood_is_closed(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let mut op = server.staff("op").await;
    for _ in 0..400 {
        if op.0.send(Message::Binary(vec![0; 8].into())).await.is_err() {
            break;
        }
    }
    let mut code = None;
    for _ in 0..500 {
        let next = tokio::time::timeout(Duration::from_secs(5), op.0.next()).await;
        match next.ok().flatten() {
            Some(Ok(Message::Close(frame))) => {
                code = frame.map(|f| u16::from(f.code));
                break;
            }
            Some(Ok(_)) => {}
            _ => break,
        }
    }
    assert_eq!(code, Some(1008));
    server.stop().await;
}
server_test!(staff_binary_flood_is_closed);

/// A frame too large to read at all (over 64 KiB) ends the connection with a word and a code, not
/// a silent drop: the caller's lines sent before it are acknowledged and kept, then `too_large`
/// and a close with 1009 ("message too big"). The same for a staff console.
async fn a_frame_too_large_to_read_is_closed_with_1009(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let oversized = format!(
        "{{\"type\":\"say\",\"text\":\"{}\",\"client_id\":\"z\"}}",
        "z".repeat(70_000)
    );

    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    // Two lines and, right behind them, the oversized frame, sent without waiting for answers.
    caller.send(say("first line", "a")).await;
    caller.send(say("second line", "b")).await;
    caller.send_raw(&oversized).await;
    let mut said = Vec::new();
    let error = loop {
        let frame = caller.next().await;
        match frame["type"].as_str() {
            Some("said") => said.push(frame["client_id"].clone()),
            Some("error") => break frame,
            _ => {}
        }
    };
    assert_eq!(
        said,
        [json!("a"), json!("b")],
        "accepted lines are answered first"
    );
    assert_eq!(error["code"], "too_large", "{error}");
    assert_eq!(caller.closed().await, Some(1009));
    let kept = server
        .store
        .transcript_page(ContactId(contact), Reader::Staff, None, 10)
        .await
        .unwrap();
    let bodies: Vec<&str> = kept.lines.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["first line", "second line"]);

    let mut op = server.staff("op").await;
    op.send_raw(&oversized).await;
    let error = loop {
        let frame = op.next().await;
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(error["code"], "too_large", "{error}");
    assert_eq!(op.closed().await, Some(1009));
    server.stop().await;
}
server_test!(a_frame_too_large_to_read_is_closed_with_1009);

/// Behind a trusted reverse proxy, per-address limits (new chats, sign-in) count each client
/// under the address the proxy forwarded, not all of them under the proxy's; from any other peer,
/// `X-Forwarded-For` is ignored, since anyone can write it.
async fn limits_count_clients_behind_a_trusted_proxy_apart(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    settings.caller.joins_per_minute = 1;
    settings.auth.logins_per_minute = 1;
    let server = start(&db, settings).await;
    server.account("op", Role::Operator, &[]).await;
    let proxy = IpAddr::from([127, 0, 0, 1]);
    let elsewhere = IpAddr::from([127, 0, 0, 2]);

    async fn join_from(server: &Server, from: IpAddr, forwarded_for: Option<&str>) -> String {
        let mut caller = server.caller_from(from, forwarded_for).await;
        caller.send(join("general", "no")).await;
        loop {
            let frame = caller.next().await;
            match frame["type"].as_str() {
                Some("joined") => return "joined".into(),
                Some("error") => return frame["code"].as_str().unwrap().into(),
                _ => {}
            }
        }
    }
    // One new chat a minute for each caller behind the proxy, and for the proxy itself.
    assert_eq!(
        join_from(&server, proxy, Some("203.0.113.1")).await,
        "joined"
    );
    assert_eq!(
        join_from(&server, proxy, Some("203.0.113.2")).await,
        "joined"
    );
    assert_eq!(
        join_from(&server, proxy, Some("203.0.113.1")).await,
        "rate_limited"
    );
    assert_eq!(join_from(&server, proxy, None).await, "joined");
    // A peer that is not a trusted proxy is counted as itself, whatever it claims.
    assert_eq!(
        join_from(&server, elsewhere, Some("203.0.113.3")).await,
        "joined"
    );
    assert_eq!(
        join_from(&server, elsewhere, Some("203.0.113.4")).await,
        "rate_limited"
    );
    assert_eq!(
        join_from(&server, proxy, Some("203.0.113.3")).await,
        "joined"
    );

    async fn sign_in_from(server: &Server, from: IpAddr, forwarded_for: &str) -> u16 {
        let client = reqwest::Client::builder()
            .local_address(from)
            .build()
            .unwrap();
        let response = client
            .post(server.url("/api/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"name": "op", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
    assert_eq!(sign_in_from(&server, proxy, "203.0.113.1").await, 200);
    assert_eq!(sign_in_from(&server, proxy, "203.0.113.2").await, 200);
    assert_eq!(sign_in_from(&server, proxy, "203.0.113.1").await, 429);
    assert_eq!(sign_in_from(&server, elsewhere, "203.0.113.5").await, 200);
    assert_eq!(sign_in_from(&server, elsewhere, "203.0.113.6").await, 429);
    server.stop().await;
}
server_test!(limits_count_clients_behind_a_trusted_proxy_apart);

/// A queue that can close must leave the caller somewhere to turn: a definition without any
/// alternative number, with a blank number, or with opening minutes past the end of the day (which
/// would close it at hours nobody chose) is refused, and callers still see the numbers.
async fn queue_without_alternatives_is_refused(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let hours = json!({"kind": "daily", "open_minute": 1200, "close_minute": 480, "utc_offset_minutes": 480});
    let bad = [
        json!({"id": "night", "name": "Night line", "opening_hours": hours, "alternatives": []}),
        json!({"id": "night", "name": "Night line", "opening_hours": hours,
               "alternatives": [{"name": "Police", "number": "  "}]}),
        json!({"id": "night", "name": "Night line", "opening_hours":
               {"kind": "daily", "open_minute": 1200, "close_minute": 1500, "utc_offset_minutes": 480}}),
    ];
    for body in bad {
        let (status, answer) = put(&server, &admin, "/api/admin/queues/night", body.clone()).await;
        assert_eq!(status, 422, "{body} was accepted: {answer}");
    }
    let (_, info) = get(&server, "", "/api/public/info").await;
    for queue in info["queues"].as_array().unwrap() {
        assert!(
            !queue["alternatives"].as_array().unwrap().is_empty(),
            "{queue}"
        );
    }
    server.stop().await;
}
server_test!(queue_without_alternatives_is_refused);

/// The same conversation opened in a second window (a duplicated tab carries the resume token)
/// takes it over; the first window is told so, with an ordinary close, not a policy close for a
/// "too slow" connection it would reconnect from and take the conversation back, without end.
async fn resume_in_another_window_tells_the_first_one(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let (mut first, joined) = server.caller_joins(join("general", "no")).await;
    let mut second = server.caller_resumes(&joined["resume_token"]).await;
    assert_eq!(second.expect("resumed").await["contact"], joined["contact"]);
    let told = first.next().await;
    assert_eq!(told["type"], "error", "{told}");
    assert_eq!(told["code"], "replaced", "{told}");
    assert_eq!(first.closed().await, Some(1000));
    second.ping().await;
    server.stop().await;
}
server_test!(resume_in_another_window_tells_the_first_one);

/// A console that replaced an older one before the server saw that one go is told which offer
/// still rings for it, and takes it; once the server has seen a console go, its offer was
/// rescinded (the withdrawal reached nobody) and the next console is told that nothing rings.
async fn hello_names_the_offers_still_ringing(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    let mut first = server.available_staff("op").await;
    first
        .expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    // The first console's connection is still up as far as the server knows.
    let (second, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["offered"], json!([contact]), "{hello}");

    // The server sees the second console go: the offer is rescinded, and the caller leaves.
    drop(second);
    let mut rescinded = false;
    for _ in 0..50 {
        if server.has_event(contact, "offer_rescinded").await {
            rescinded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rescinded, "a console the server saw go loses its offer");
    caller.send(json!({"type": "leave"})).await;
    caller.ping().await;
    let (mut third, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["offered"], json!([]), "{hello}");
    third.ping().await;
    drop(first);
    server.stop().await;
}
server_test!(hello_names_the_offers_still_ringing);

/// A TCP relay in front of PostgreSQL that, once armed with a marker, lets the next client message
/// holding the marker through, lets PostgreSQL run it and its transaction to the end (the next
/// `ReadyForQuery` outside a transaction), and then cuts the connection before the client reads a
/// byte of what came back since the marker: a commit whose writer is told it failed. Or, armed
/// `before_commit`, at the first answer after the marker: a transaction lost half-way.
struct CommitCutter {
    addr: std::net::SocketAddr,
    marker: Armed,
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl CommitCutter {
    async fn start(target: String) -> CommitCutter {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU8, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let marker: Armed = Arc::default();
        let cuts: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let (armed, done) = (marker.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let cutting = Arc::new(AtomicU8::new(NOT_CUTTING));
                let (armed, sees) = (armed.clone(), cutting.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
                        let chunk = &buf[..n];
                        {
                            let mut armed = armed.lock().unwrap();
                            if let Some((m, mode)) = armed.as_ref()
                                && chunk.windows(m.len()).any(|w| w == m)
                            {
                                sees.store(*mode, Ordering::SeqCst);
                                *armed = None;
                            }
                        }
                        if server_tx.write_all(chunk).await.is_err() {
                            break;
                        }
                    }
                });
                let done = done.clone();
                tokio::spawn(async move {
                    // Server messages: a type byte, then a length (itself included). The client
                    // asks for no TLS, so there is no one-byte answer to an SSL request first.
                    let mut pending: Vec<u8> = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = server_rx.read(&mut buf).await {
                        pending.extend_from_slice(&buf[..n]);
                        // Whole messages are passed on; once cutting, only up to the last
                        // answer that left a transaction open, and the answer that ends the
                        // marker's transaction (ReadyForQuery, idle) cuts the connection instead.
                        let mode = cutting.load(Ordering::SeqCst);
                        let cut = mode != NOT_CUTTING;
                        let (mut whole, mut passed) = (0, 0);
                        while pending.len() >= whole + 5 {
                            let len = u32::from_be_bytes(
                                pending[whole + 1..whole + 5].try_into().unwrap(),
                            ) as usize;
                            if pending.len() < whole + 1 + len {
                                break;
                            }
                            let ready = pending[whole] == b'Z';
                            if cut && ready && (mode == BEFORE_COMMIT || pending[whole + 5] == b'I')
                            {
                                done.fetch_add(1, Ordering::SeqCst);
                                let _ = client_tx.shutdown().await;
                                return; // both halves drop: the connection is gone
                            }
                            whole += 1 + len;
                            if !cut || ready {
                                passed = whole;
                            }
                        }
                        if client_tx.write_all(&pending[..passed]).await.is_err() {
                            return;
                        }
                        pending.drain(..passed);
                    }
                });
            }
        });
        CommitCutter { addr, marker, cuts }
    }

    /// Cuts the connection that next sends `marker`, once its statement has committed.
    fn arm(&self, marker: &str) {
        *self.marker.lock().unwrap() = Some((marker.as_bytes().to_vec(), AFTER_COMMIT));
    }

    /// Cuts the connection that next sends `marker` at PostgreSQL's first answer after it.
    fn arm_before_commit(&self, marker: &str) {
        *self.marker.lock().unwrap() = Some((marker.as_bytes().to_vec(), BEFORE_COMMIT));
    }

    fn cuts(&self) -> usize {
        self.cuts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The marker a [`CommitCutter`] waits for, and how it is to cut.
type Armed = std::sync::Arc<std::sync::Mutex<Option<(Vec<u8>, u8)>>>;

/// How a [`CommitCutter`] connection is to be cut.
const NOT_CUTTING: u8 = 0;
const AFTER_COMMIT: u8 = 1;
const BEFORE_COMMIT: u8 = 2;

/// `url` with its host and port replaced by `addr`; and the host and port it had.
fn rehost(url: &str, addr: std::net::SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.rsplit_once('@').unwrap_or(("", rest));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let at = if user.is_empty() { "" } else { "@" };
    (
        format!("{scheme}://{user}{at}{addr}/{path}"),
        host.to_owned(),
    )
}

/// PostgreSQL commits a router batch, and the connection drops before the server hears so. The
/// retry must neither wedge routing (the batch's new contact exists already) nor log the batch's
/// events twice; nor may a transcript batch cut the same way be written twice, and one cut before
/// its commit is written again rather than refused. (A network between server and database is PostgreSQL's alone: SQLite's part,
/// that a batch numbered twice is refused, is in the store tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_lost_on_the_way_back_is_neither_repeated_nor_wedging() {
    let Some(db) = fresh_database(Backend::Postgres).await else {
        eprintln!("PostgreSQL not configured; skipped outside CI");
        return;
    };
    let (_, target) = rehost(db.url(), "127.0.0.1:0".parse().unwrap());
    let cutter = CommitCutter::start(target).await;
    let (url, _) = rehost(db.url(), cutter.addr);
    // In plain text, so that the relay can read the messages.
    let url = format!(
        "{url}{}sslmode=disable",
        if url.contains('?') { '&' } else { '?' }
    );
    let mut settings = test_settings(&db);
    settings.database.url = url;
    let server = start(&db, settings).await;
    server.account("op", Role::Operator, &[]).await;
    let mut op = server.available_staff("op").await;

    // The join's batch: it creates the contact and offers it to the free operator.
    cutter.arm("cut-after-commit");
    let mut form = join("general", "no");
    form["age_group"] = json!("cut-after-commit");
    let (mut caller, joined) = server.caller_joins(form).await;
    let contact = joined["contact"].clone();
    assert_eq!(cutter.cuts(), 1, "the join's commit was cut");
    op.expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;

    // An events-only batch: the accept.
    cutter.arm("\"k\":\"accept\"");
    accept(&mut op, &contact).await;
    caller.expect("connected").await;
    assert_eq!(cutter.cuts(), 2, "the accept's commit was cut");

    let kinds = server.events_of(contact.as_i64().unwrap()).await;
    for kind in ["enter_queue", "offer", "accept", "connect"] {
        assert_eq!(
            kinds.iter().filter(|k| *k == kind).count(),
            1,
            "{kind} logged once: {kinds:?}"
        );
    }
    // A transcript batch: the caller's line is acknowledged and delivered once, and stored once.
    cutter.arm("a line whose commit is cut");
    caller.send(say("a line whose commit is cut", "l1")).await;
    let said = caller.expect("said").await;
    assert_eq!(said["client_id"], "l1");
    let message = op.expect("message").await;
    assert_eq!(message["line"]["seq"], said["seq"], "{message}");
    assert_eq!(cutter.cuts(), 3, "the line's commit was cut");
    caller.send(say("and the next one", "l2")).await;
    assert_eq!(
        caller.expect("said").await["seq"],
        said["seq"].as_i64().unwrap() + 1
    );
    let lines = server
        .store
        .messages(ContactId(contact.as_i64().unwrap()))
        .await
        .unwrap();
    let bodies: Vec<_> = lines.iter().map(|l| l.body.as_str()).collect();
    assert_eq!(bodies, ["a line whose commit is cut", "and the next one"]);

    // A transcript batch lost half-way (rolled back) is written again: the line is not refused.
    cutter.arm_before_commit("a line whose transaction is cut");
    caller
        .send(say("a line whose transaction is cut", "l3"))
        .await;
    assert_eq!(caller.expect("said").await["client_id"], "l3");
    assert_eq!(cutter.cuts(), 4, "the line's transaction was cut");
    let lines = server
        .store
        .messages(ContactId(contact.as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");

    // Routing goes on.
    let (_second, _) = server.caller_joins(join("general", "no")).await;
    server.stop().await;
}

// ---- presence, restore and admin review ----

/// A deleted queue is gone for routing too: nobody can transfer a contact into it (where no
/// administrator could see or configure it any more), and the contact stays with its operator.
async fn a_deleted_queue_takes_no_transfers(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    server.account("op", Role::Operator, &[]).await;
    let (status, body) = put(
        &server,
        &admin,
        "/api/admin/queues/night",
        json!({"id": "night", "name": "Night line"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = delete(&server, &admin, "/api/admin/queues/night").await;
    assert_eq!(status, 204, "{body}");
    let (_caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    op.send(json!({"type": "transfer", "contact": contact,
                   "target": {"kind": "queue", "queue": "night"}}))
        .await;
    let refused = loop {
        let frame = op.next().await;
        assert_ne!(
            frame["type"], "released",
            "transferred into a deleted queue: {frame}"
        );
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(refused["code"], "unknown_queue", "{refused}");
    let held = server.store.contact(ContactId(contact)).await.unwrap();
    assert_eq!(held.queue.as_str(), "general");
    let (status, body) = delete(&server, &admin, "/api/admin/queues/general").await;
    assert_eq!(status, 409, "a queue with a live contact: {body}");
    server.stop().await;
}
server_test!(a_deleted_queue_takes_no_transfers);

/// Disabling an operator who holds a contact hands it on at once, first in line: they can never
/// sign in again, so waiting out their reconnection grace period only leaves the caller alone.
async fn a_disabled_operators_contact_is_offered_again_at_once(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 60_000;
    let server = start(&db, settings).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let op_id = server.account("op", Role::Operator, &[]).await;
    server.account("other", Role::Operator, &[]).await;
    let (_caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    let mut other = server.available_staff("other").await;
    other.expect("state").await;
    let (status, body) = edit_account(&server, &admin, op_id, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(op.closed().await, Some(1008));
    other
        .expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    assert!(
        server.has_event(contact, "requeue").await,
        "requeued after losing its operator"
    );
    server.stop().await;
}
server_test!(a_disabled_operators_contact_is_offered_again_at_once);

/// A supervisor moved to a role that may not join contacts, or disabled, while they barge into a
/// conversation leaves it at once: the operator sees them go, and signed in again they hold
/// nothing and cannot write to the caller.
async fn an_account_that_may_no_longer_join_leaves_what_it_joined(db: FreshDb) {
    let mut settings = test_settings(&db);
    // Not by waiting out a lost connection: at once.
    settings.routing.operator_grace_ms = 60_000;
    let server = start(&db, settings).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let sup_id = server.account("sup", Role::Supervisor, &[]).await;
    let lead_id = server.account("lead", Role::CrisisLead, &[]).await;
    server.account("op", Role::Operator, &[]).await;
    let (mut caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    let mut sup = server.staff("sup").await;
    let mut lead = server.staff("lead").await;
    join_contact(&mut sup, contact, "barge").await;
    join_contact(&mut lead, contact, "monitor").await;
    let left = |id: i64| move |f: &Value| f["participant"] == id && f["mode"].is_null();

    let (status, body) = edit_account(&server, &admin, sup_id, json!({"role": "operator"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sup.closed().await, Some(1008));
    op.expect_where("participant", left(sup_id)).await;
    let (mut sup, hello) = server.staff_with_hello("sup").await;
    assert_eq!(hello["contacts"], json!([]), "{hello}");
    sup.send(say_to(contact, "still listening", "x")).await;
    assert_eq!(sup.expect("error").await["code"], "forbidden");

    let (status, body) = edit_account(&server, &admin, lead_id, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{body}");
    op.expect_where("participant", left(lead_id)).await;
    // The conversation itself goes on.
    op.send(say_to(contact, "I am still here", "o")).await;
    op.expect("said").await;
    assert_eq!(
        caller.expect("message").await["line"]["body"],
        "I am still here"
    );
    server.stop().await;
}
server_test!(an_account_that_may_no_longer_join_leaves_what_it_joined);

/// `/metrics` answers while the store refuses the router's writes (a failover, a full disk):
/// the failures are counted and shown, not hidden behind a scrape that waits for the store. And
/// the operators gauge counts the people on the floor: not admins, not disabled accounts.
async fn metrics_answer_while_the_store_refuses_writes(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let gone = server.account("gone", Role::Operator, &[]).await;
    server.account("op", Role::Operator, &[]).await;
    let mut op = server.staff("op").await;
    let (status, body) = edit_account(&server, &admin, gone, json!({"disabled": true})).await;
    assert_eq!(status, 200, "{body}");
    let metrics = server.metrics().await;
    let offline = metrics
        .lines()
        .find(|l| l.starts_with("hotline_operators{state=\"offline\"}"))
        .unwrap_or_default()
        .to_owned();
    // The operator whose console is open (not yet available); the bootstrap admin, boss and the
    // disabled account are not counted.
    assert_eq!(
        offline, "hotline_operators{state=\"offline\"} 1",
        "{metrics}"
    );

    writes_fail(&db, "events", true).await;
    available(&mut op).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = tokio::time::timeout(Duration::from_secs(3), server.metrics())
        .await
        .expect("/metrics answers during a store outage");
    assert!(
        metrics.contains("hotline_store_failures_total{what=\"events\"}"),
        "{metrics}"
    );
    writes_fail(&db, "events", false).await;
    op.expect("state").await;
    server.stop().await;
}
server_test!(metrics_answer_while_the_store_refuses_writes);

/// An operator who changes their password in the middle of a conversation is not told that
/// their console was "replaced" (which stops it for good, and after the grace period hands the
/// caller to someone else): the console is closed as signed out, connects again with the new
/// session, and still holds the conversation. Only a newer console of the same person is
/// "replaced".
async fn a_password_change_does_not_stop_the_console_as_replaced(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let (_caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    let cookie = server.login("op").await;
    let response = reqwest::Client::new()
        .post(server.url("/api/me/password"))
        .header("cookie", &cookie)
        .json(&json!({"current_password": PASSWORD, "new_password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (code, reason) = op.closed_with_reason().await.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(!reason.contains("replaced"), "{reason}");
    let mut op = server.staff_socket_with(&session_cookie(&response)).await;
    let hello = op.expect("hello").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], contact, "{hello}");

    // A second console of the same person replaces this one.
    let mut newer = server.staff_socket_with(&session_cookie(&response)).await;
    newer.expect("hello").await;
    let (code, reason) = op.closed_with_reason().await.expect("a close frame");
    assert_eq!(code, 1008);
    assert!(reason.contains("replaced"), "{reason}");
    server.stop().await;
}
server_test!(a_password_change_does_not_stop_the_console_as_replaced);

/// A resume refused because the transcript could not be read (a store failure of the moment)
/// leaves the connection as if it had never resumed: the caller tries again on it and is back,
/// in their place, instead of being told `already_joined` for good.
async fn a_refused_resume_can_be_tried_again_on_the_same_connection(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let (caller, joined) = server.caller_joins(join("general", "no")).await;
    let token = joined["resume_token"].clone();
    drop(caller);
    // The transcript cannot be read for a moment (its table is away).
    db.execute("ALTER TABLE messages RENAME TO messages_away")
        .await;
    let mut again = server.caller_resumes(&token).await;
    assert_eq!(again.expect("error").await["code"], "internal");
    db.execute("ALTER TABLE messages_away RENAME TO messages")
        .await;
    again
        .send(json!({"type": "resume", "resume_token": token}))
        .await;
    let resumed = again.expect("resumed").await;
    assert_eq!(resumed["contact"], joined["contact"], "{resumed}");
    assert_eq!(resumed["position"], 1, "{resumed}");
    server.stop().await;
}
server_test!(a_refused_resume_can_be_tried_again_on_the_same_connection);

/// Everyone in a live contact is told who else joins and leaves it, not only its holder: a lead
/// listening in sees a supervisor start whispering, and stop.
async fn participants_see_each_other_come_and_go(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    server.account("lead", Role::CrisisLead, &[]).await;
    let sup_id = server.account("sup", Role::Supervisor, &[]).await;
    let (_caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    let mut lead = server.staff("lead").await;
    join_contact(&mut lead, contact, "monitor").await;
    let mut sup = server.staff("sup").await;
    join_contact(&mut sup, contact, "whisper").await;
    let seen = lead
        .expect_where("participant", |f| f["participant"] == sup_id)
        .await;
    assert_eq!(seen["contact"], contact, "{seen}");
    assert_eq!(seen["mode"], "whisper", "{seen}");
    sup.send(json!({"type": "leave", "contact": contact})).await;
    sup.expect("released").await;
    let gone = |f: &Value| f["participant"] == sup_id && f["mode"].is_null();
    lead.expect_where("participant", gone).await;
    op.expect_where("participant", gone).await;
    server.stop().await;
}
server_test!(participants_see_each_other_come_and_go);

/// An operator on break who still holds a contact is on break after a restart too: the restart
/// must not put them back in line for new offers they never asked for.
async fn a_break_survives_a_restart(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 10_000;
    settings.routing.caller_grace_ms = 10_000;
    let server = start(&db, settings.clone()).await;
    server.account("op", Role::Operator, &[]).await;
    let (_caller, _joined, mut op) = server.connected_contact("op").await;
    op.send(json!({"type": "set_presence",
                   "presence": {"status": "break", "reason": "supervision"}}))
        .await;
    op.expect_where("state", |f| f["state"]["state"] == "break")
        .await;
    server.stop_telling(&mut op).await;

    let server = start(&db, settings).await;
    let (_op, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["contacts"].as_array().unwrap().len(), 1, "{hello}");
    assert_eq!(
        hello["state"],
        json!({"state": "break", "reason": "supervision"}),
        "{hello}"
    );
    server.stop().await;
}
server_test!(a_break_survives_a_restart);

/// Naming a skill twice in an account's skills is a mistake in the request (422, saying which
/// skill), not a conflict with something already stored; the skills stay as they were.
async fn a_skill_named_twice_is_invalid(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let yop_id = server.account("yop", Role::Operator, &[("youth", 4)]).await;
    let (status, body) = put(
        &server,
        &admin,
        &format!("/api/admin/accounts/{yop_id}/skills"),
        json!([{"skill": "youth", "proficiency": 2}, {"skill": "youth", "proficiency": 5}]),
    )
    .await;
    assert_eq!((status, &body["code"]), (422, &json!("invalid")), "{body}");
    let (_, accounts) = get(&server, &admin, "/api/admin/accounts").await;
    let yop = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == yop_id)
        .unwrap();
    assert_eq!(yop["skills"], json!([{"skill": "youth", "proficiency": 4}]));
    server.stop().await;
}
server_test!(a_skill_named_twice_is_invalid);

/// Taking a skill away from an operator whose console is ringing with a contact that needs it
/// withdraws that offer at once; the contact goes to a colleague who has the skill.
async fn a_removed_skill_withdraws_the_offer_it_rang_for(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let yop_id = server.account("yop", Role::Operator, &[("youth", 4)]).await;
    server
        .account("yop2", Role::Operator, &[("youth", 3)])
        .await;
    let (status, body) = put(
        &server,
        &admin,
        "/api/admin/queues/youth",
        json!({"id": "youth", "name": "Youth",
               "required_skills": [{"skill": "youth", "min_proficiency": 3}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut yop = server.available_staff("yop").await;
    let (_caller, joined) = server.caller_joins(join("youth", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    assert_eq!(yop.expect("offer").await["contact"]["id"], contact);

    let (status, body) = put(
        &server,
        &admin,
        &format!("/api/admin/accounts/{yop_id}/skills"),
        json!([{"skill": "youth", "proficiency": 2}]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let withdrawn = yop.expect("offer_withdrawn").await;
    assert_eq!(
        (&withdrawn["contact"], &withdrawn["reason"]),
        (&json!(contact), &json!("rescinded"))
    );
    yop.send(json!({"type": "accept", "contact": contact}))
        .await;
    assert_eq!(yop.expect("error").await["code"], "not_offered");

    let mut yop2 = server.available_staff("yop2").await;
    assert_eq!(yop2.expect("offer").await["contact"]["id"], contact);
    server.stop().await;
}
server_test!(a_removed_skill_withdraws_the_offer_it_rang_for);

/// Saving a queue is one step: while the store refuses the definition, the answer says that
/// nothing changed, and the queue list, routing and the store all keep what they had; once it is
/// saved, all three have it at once.
async fn a_queue_is_saved_and_in_force_together_or_not_at_all(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    server.account("op", Role::Operator, &[]).await;
    let youth = json!({"id": "youth", "name": "Youth line"});
    let general = json!({"id": "general", "name": "General support",
                         "required_skills": [{"skill": "crisis", "min_proficiency": 3}]});

    writes_fail(&db, "queues", true).await;
    for (path, body) in [
        ("/api/admin/queues/youth", &youth),
        ("/api/admin/queues/general", &general),
    ] {
        let (status, answer) = put(&server, &admin, path, body.clone()).await;
        assert_eq!(status, 503, "{path}: {answer}");
        assert_eq!(answer["code"], "unavailable", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains("not saved") && m.contains("nothing changed")),
            "{answer}"
        );
    }
    let (_, listed) = get(&server, &admin, "/api/queues").await;
    let listed = listed.as_array().unwrap();
    assert!(!listed.iter().any(|q| q["id"] == "youth"), "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|q| q["id"] == "general" && q["required_skills"] == json!([])),
        "{listed:?}"
    );
    let mut caller = server.caller().await;
    caller.send(join("youth", "no")).await;
    assert_eq!(caller.expect("error").await["code"], "not_found");
    // Routing still goes by general as it was: an operator without the skill is offered its
    // contact.
    let (_caller, _joined, mut op) = server.connected_contact("op").await;

    writes_fail(&db, "queues", false).await;
    let (status, answer) = put(&server, &admin, "/api/admin/queues/youth", youth.clone()).await;
    assert_eq!(status, 200, "{answer}");
    caller.send(join("youth", "no")).await;
    let joined = caller.expect("joined").await;
    op.expect_where("offer", |f| f["contact"]["id"] == joined["contact"])
        .await;
    let stored = server.store.queues().await.unwrap();
    let ids: Vec<&str> = stored.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["general", "youth"]);
    assert!(stored[0].required_skills.is_empty(), "{stored:?}");
    server.stop().await;
}
server_test!(a_queue_is_saved_and_in_force_together_or_not_at_all);

/// An operator's state on the wallboard, waiting up to 5 s for it to become `want`.
async fn wait_for_floor_state(server: &Server, cookie: &str, operator: i64, want: &str) {
    let mut seen = Value::Null;
    for _ in 0..50 {
        let (status, floor) = get(server, cookie, "/api/wallboard").await;
        assert_eq!(status, 200, "{floor}");
        seen = floor["operators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == operator)
            .map(|o| o["state"]["state"].clone())
            .unwrap_or_default();
        if seen == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("operator {operator} is {seen}, not {want}");
}

/// An account disabled while its console is connecting, before the console registers or just
/// after it has read the account, ends up with no open console and no routing presence.
async fn an_account_disabled_while_its_console_connects_is_signed_out(db: FreshDb) {
    let gate = StaffGate::default();
    let server = start_with_hooks(&db, test_settings(&db), gate.hooks()).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    for (name, stage) in [
        ("early", StaffStage::Upgraded),
        ("late", StaffStage::Admitted),
    ] {
        let id = server.account(name, Role::Operator, &[]).await;
        gate.hold(id, stage);
        let mut console = server.staff_socket(name).await;
        gate.reached().await;
        let (status, body) = edit_account(&server, &admin, id, json!({"disabled": true})).await;
        assert_eq!(status, 200, "{body}");
        gate.release();
        assert_eq!(console.closed().await, Some(1008), "{stage:?}");
        wait_for_floor_state(&server, &admin, id, "offline").await;
    }
    server.stop().await;
}
server_test!(an_account_disabled_while_its_console_connects_is_signed_out);

/// A profile changed while its console is connecting is the one in force: the console's own
/// read of the account, taken before the change, does not overwrite it.
async fn a_profile_changed_while_its_console_connects_is_the_one_in_force(db: FreshDb) {
    let gate = StaffGate::default();
    let server = start_with_hooks(&db, test_settings(&db), gate.hooks()).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let id = server.account("op", Role::Operator, &[]).await;
    let languages = |list: Value| {
        let (server, admin) = (&server, admin.clone());
        async move {
            let (status, body) = edit_account(server, &admin, id, json!({"languages": list})).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    languages(json!(["en"])).await;
    gate.hold(id, StaffStage::Upgraded);
    let mut op = server.staff_socket("op").await;
    gate.reached().await;
    // Callers join in Chinese: the operator is given it while the console connects.
    languages(json!(["zh", "en"])).await;
    gate.release();
    op.expect("hello").await;
    available(&mut op).await;
    let (_caller, joined) = server.caller_joins(join("general", "no")).await;
    op.expect_where("offer", |f| f["contact"]["id"] == joined["contact"])
        .await;
    server.stop().await;
}
server_test!(a_profile_changed_while_its_console_connects_is_the_one_in_force);

/// Whether voice excludes chat is an account's own setting, true unless set otherwise, and only
/// a true or false is taken.
async fn voice_excludes_chat_is_set_per_account(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let account = |name: &str, extra: Value| {
        let mut body = json!({"name": name, "display_name": name, "role": "operator",
                              "password": PASSWORD, "languages": ["zh"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (status, plain) = post(
        &server,
        &admin,
        "/api/admin/accounts",
        account("plain", json!({})),
    )
    .await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["voice_excludes_chat"], true);
    let (status, both) = post(
        &server,
        &admin,
        "/api/admin/accounts",
        account("both", json!({"voice_excludes_chat": false})),
    )
    .await;
    assert_eq!(status, 201, "{both}");
    assert_eq!(both["voice_excludes_chat"], false);
    let (status, refused) = post(
        &server,
        &admin,
        "/api/admin/accounts",
        account("wrong", json!({"voice_excludes_chat": "no"})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "invalid");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("voice_excludes_chat")),
        "{refused}"
    );

    for wrong in [json!(0), json!("false"), json!([])] {
        let (status, refused) = edit_account(
            &server,
            &admin,
            &plain["id"],
            json!({"voice_excludes_chat": wrong}),
        )
        .await;
        assert_eq!(status, 422, "{wrong}: {refused}");
        assert_eq!(refused["code"], "invalid");
    }
    let (status, changed) = edit_account(
        &server,
        &admin,
        &plain["id"],
        json!({"voice_excludes_chat": false}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["voice_excludes_chat"], false);
    // A change that does not name it leaves it as it is.
    let (status, kept) =
        edit_account(&server, &admin, &plain["id"], json!({"chat_capacity": 3})).await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["voice_excludes_chat"], false);
    let (_, listed) = get(&server, &admin, "/api/admin/accounts").await;
    let flags: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["voice_excludes_chat"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        [
            ("admin", true),
            ("boss", true),
            ("plain", false),
            ("both", false)
        ]
    );
    server.stop().await;
}
server_test!(voice_excludes_chat_is_set_per_account);

/// An operator for whom voice does not exclude chat holds a voice contact and a chat at once.
/// The setting is in force as soon as it is saved, and again after a restart. (Voice contacts
/// come from outside the chat gateway; here one is written to the store and restored.)
async fn an_operator_may_hold_a_chat_beside_a_voice_contact(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 30_000;
    settings.routing.caller_grace_ms = 60_000;
    let server = start(&db, settings.clone()).await;
    server.account("boss", Role::Admin, &[]).await;
    let op_id = server.account("op", Role::Operator, &[]).await;
    server.stop().await;

    // The operator is talking to a caller by voice when the server restarts.
    let store = db.connect().await;
    let voice = store
        .create_contact(hotline::store::NewContactRecord {
            queue: QueueId::parse("general").unwrap(),
            channel: hotline::domain::Channel::Voice,
            language: hotline::domain::Language::parse("zh").unwrap(),
            topic: None,
            age_group: None,
            risk: hotline::domain::RiskLevel::None,
            caller_key_hash: None,
            resume_token_hash: "voice-contact-resume-token-hash".into(),
            entered_at: Timestamp::now(),
        })
        .await
        .unwrap();
    let operator = hotline::domain::OperatorId(op_id);
    let general = QueueId::parse("general").unwrap();
    store
        .record_events(
            Timestamp::now(),
            &[
                hotline::routing::Event::EnterQueue {
                    contact: voice,
                    queue: general.clone(),
                    channel: hotline::domain::Channel::Voice,
                    risk: hotline::domain::RiskLevel::None,
                },
                hotline::routing::Event::Offer {
                    contact: voice,
                    operator,
                    expires_at: Timestamp::now().plus_ms(3_000),
                },
                hotline::routing::Event::Accept {
                    contact: voice,
                    operator,
                },
                hotline::routing::Event::Connect {
                    contact: voice,
                    operator,
                    queue: general,
                    waited_ms: 0,
                },
            ],
        )
        .await
        .unwrap();
    drop(store);

    let server = start(&db, settings.clone()).await;
    let admin = server.login("boss").await;
    let (mut op, hello) = server.staff_with_hello("op").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], voice.0);
    assert_eq!(hello["contacts"][0]["summary"]["channel"], "voice");
    available(&mut op).await;
    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    // Voice excludes chat until the administrator says otherwise; then the chat is offered at once.
    let (status, body) = edit_account(
        &server,
        &admin,
        op_id,
        json!({"voice_excludes_chat": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chat = joined["contact"].clone();
    op.expect_where("offer", |f| f["contact"]["id"] == chat)
        .await;
    accept(&mut op, &chat).await;
    caller.expect("connected").await;
    let (_, floor) = get(&server, &admin, "/api/wallboard").await;
    let held = floor["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == op_id)
        .map(|o| o["contacts"].clone());
    assert_eq!(held, Some(json!([voice.0, chat])), "{floor}");
    end(&mut op, &chat).await;
    finish_wrap_up(&mut op, &chat).await;
    drop((op, caller));
    server.stop().await;

    // After a restart the setting is read back from the store.
    let server = start(&db, settings).await;
    let mut op = server.available_staff("op").await;
    let (_caller, joined) = server.caller_joins(join("general", "no")).await;
    op.expect_where("offer", |f| f["contact"]["id"] == joined["contact"])
        .await;
    server.stop().await;
}
server_test!(an_operator_may_hold_a_chat_beside_a_voice_contact);

/// A contact in wrap-up when the server stopped, whose operator's account is gone when it
/// starts again, is completed at the restart with the handle time the log gives it (its talk and
/// its wrap-up until the server stopped), not 0: average handle time is not dragged down by a
/// restart, nor pushed up by the time the server was down.
async fn a_wrap_up_restored_without_its_operator_keeps_its_handle_time(db: FreshDb) {
    let mut settings = test_settings(&db);
    // The wrap-up is not ended by the operator's grace period running out before the restart.
    settings.routing.operator_grace_ms = 60_000;
    let server = start(&db, settings.clone()).await;
    server.account("op", Role::Operator, &[]).await;
    let (_caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    end(&mut op, contact).await;
    drop(op);
    server.stop().await;
    // The account is removed while the server is down (nothing else refers to it).
    db.execute("DELETE FROM accounts WHERE name = 'op'").await;
    let stopped = server_stopped_at(&db).await;

    let restarted = Timestamp::now();
    let server = start(&db, settings).await;
    let events = server
        .store
        .events_of_contact(ContactId(contact))
        .await
        .unwrap();
    let at = |kind: &str| {
        events
            .iter()
            .rev()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("no {kind}: {events:?}"))
            .at
    };
    let (connected, wrapped, completed) = (at("connect"), at("wrap_up"), at("complete"));
    assert!(
        completed >= restarted,
        "completed at the restart: {events:?}"
    );
    let complete = events.iter().find(|e| e.kind == "complete").unwrap();
    let handled = complete.data["handled_ms"].as_i64().unwrap();
    assert!(
        handled >= wrapped.since(connected) && wrapped.since(connected) >= 1_200,
        "talked {} ms, but its complete says {handled} ms",
        wrapped.since(connected)
    );
    assert_eq!(handled, stopped.since(connected), "{events:?}");
    server.stop().await;
}
server_test!(a_wrap_up_restored_without_its_operator_keeps_its_handle_time);

/// When the server last wrote something, read as a restart reads it.
async fn server_stopped_at(db: &FreshDb) -> Timestamp {
    let store = db.connect().await;
    store
        .last_alive()
        .await
        .unwrap()
        .expect("the server wrote something before it stopped")
}

/// An operator holds a contact when the server stops; it starts again after a while, and the
/// operator reconnects, ends and finishes: the handle time is the time they held it while the
/// server ran, not the time it was down.
async fn the_time_the_server_was_down_is_not_handle_time(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.operator_grace_ms = 600_000;
    settings.routing.caller_grace_ms = 600_000;
    let server = start(&db, settings.clone()).await;
    server.account("op", Role::Operator, &[]).await;
    let (caller, joined, op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    drop((caller, op));
    server.stop().await;
    let stopped = server_stopped_at(&db).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let restarted = Timestamp::now();
    let server = start(&db, settings).await;
    let mut op = server.staff("op").await;
    end(&mut op, contact).await;
    finish_wrap_up(&mut op, contact).await;
    let events = server
        .store
        .events_of_contact(ContactId(contact))
        .await
        .unwrap();
    let connected = events.iter().find(|e| e.kind == "connect").unwrap().at;
    let complete = events.iter().find(|e| e.kind == "complete").unwrap();
    let handled = complete.data["handled_ms"].as_i64().unwrap();
    let down = restarted.since(stopped);
    assert!(down >= 1_500, "down {down} ms");
    assert!(
        handled <= complete.at.since(connected) - down,
        "held {} ms from connect to complete, down {down} ms of it, but its complete says \
         {handled} ms",
        complete.at.since(connected)
    );
    server.stop().await;
}
server_test!(the_time_the_server_was_down_is_not_handle_time);

/// A caller joins and leaves (kept waiting: their grace period outlasts the test), after which
/// nothing happens; the time of the last event, that caller's `caller_away`.
async fn a_caller_who_left(server: &Server) -> Timestamp {
    let (caller, _) = server.caller_joins(join("general", "no")).await;
    drop(caller);
    for _ in 0..100 {
        let events = server.store.events_after(0, 1_000).await.unwrap();
        if events.iter().any(|e| e.kind == "caller_away") {
            return events.iter().map(|e| e.at).max().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the caller's leaving was never logged");
}

/// On a quiet stretch (a voice contact writes no transcript lines; no event for a while) the
/// server still records that it is alive, every `alive_every_ms`: after a crash then, a restart
/// would take that, not the last event, as when the server stopped.
async fn a_quiet_server_records_that_it_is_alive(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.server.alive_every_ms = 100;
    settings.routing.caller_grace_ms = 600_000;
    let server = start(&db, settings).await;
    let last_event = a_caller_who_left(&server).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let alive = server.store.last_alive().await.unwrap().unwrap();
    let now = Timestamp::now();
    assert!(
        alive.since(last_event) >= 500 && alive <= now,
        "1 s after the last event, the server was last alive {} ms after it",
        alive.since(last_event)
    );
    server.stop().await;
}
server_test!(a_quiet_server_records_that_it_is_alive);

/// A graceful stop after a quiet stretch is recorded as when the server stopped, not the last
/// event before it: a restart then leaves no talk time before the stop out of handle time.
async fn a_graceful_stop_is_recorded_as_when_the_server_stopped(db: FreshDb) {
    let mut settings = test_settings(&db);
    // Recorded alive at the start and at the stop only.
    settings.server.alive_every_ms = 3_600_000;
    settings.routing.caller_grace_ms = 600_000;
    let server = start(&db, settings).await;
    let last_event = a_caller_who_left(&server).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stopping = Timestamp::now();
    server.stop().await;
    let stopped = Timestamp::now();
    let store = db.connect().await;
    let events = store.events_after(0, 1_000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.at).max(),
        Some(last_event),
        "no event after the quiet stretch: {events:?}"
    );
    let recorded = server_stopped_at(&db).await;
    assert!(
        stopping <= recorded && recorded <= stopped,
        "stopped between {stopping:?} and {stopped:?}, but recorded as stopped at {recorded:?} \
         (the last event was at {last_event:?})"
    );
}
server_test!(a_graceful_stop_is_recorded_as_when_the_server_stopped);

// ---- the staff desk's view of a live contact ----

/// A silent caller: only staff wrote (the operator, and a supervisor's whisper). The colleague
/// a transfer offers the contact to reads those lines on the offer, as the accept then shows them.
async fn an_offer_shows_what_staff_wrote_to_a_silent_caller(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.offer_timeout_ms = 30_000;
    let server = start(&db, settings).await;
    server.account("op1", Role::Operator, &[]).await;
    let op2_id = server.account("op2", Role::Operator, &[]).await;
    server.account("sup", Role::Supervisor, &[]).await;
    let mut op1 = server.available_staff("op1").await;
    let (_caller, joined, _) = server
        .accepted_contact(&mut op1, join("general", "no"))
        .await;
    let contact = joined["contact"].as_i64().unwrap();
    for (i, text) in ["Hello, I am here.", "Take your time."].iter().enumerate() {
        op1.send(say_to(contact, text, format!("o{i}"))).await;
        op1.expect("said").await;
    }
    let mut sup = server.staff("sup").await;
    join_contact(&mut sup, contact, "whisper").await;
    sup.send(say_to(contact, "Ask whether they are safe.", "w"))
        .await;
    sup.expect("said").await;

    let mut op2 = server.available_staff("op2").await;
    op2.ping().await;
    op1.send(json!({"type": "transfer", "contact": contact,
                    "target": {"kind": "operator", "operator": op2_id}}))
        .await;
    op1.expect("released").await;
    let offer = op2
        .expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    let bodies = |lines: &Value| -> Vec<(String, String)> {
        lines
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let text = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
                (text("body"), text("visibility"))
            })
            .collect()
    };
    let written = vec![
        ("Hello, I am here.".to_owned(), "all".to_owned()),
        ("Take your time.".to_owned(), "all".to_owned()),
        (
            "Ask whether they are safe.".to_owned(),
            "operators".to_owned(),
        ),
    ];
    assert_eq!(bodies(&offer["transcript"]), written, "{offer}");
    assert_eq!(offer["earlier"], false);
    let assigned = accept(&mut op2, contact).await;
    assert_eq!(
        bodies(&assigned["contact"]["transcript"]),
        written,
        "the offer shows what the accept shows"
    );
    server.stop().await;
}
server_test!(an_offer_shows_what_staff_wrote_to_a_silent_caller);

/// The risk of a contact whose offer is ringing rises (the caller writes a line the lexicon
/// reads as imminent): the offer keeps ringing, and the operator it rings for is told — for an
/// offer from the queue and for a transfer to them by name.
async fn a_ringing_offer_is_told_that_the_risk_rose(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.routing.offer_timeout_ms = 30_000;
    let server = start(&db, settings).await;
    server.account("op1", Role::Operator, &[]).await;
    let op2_id = server.account("op2", Role::Operator, &[]).await;
    let risen = |frame: &Value, contact: i64| {
        assert_eq!(
            (frame["risk"].as_str(), frame["colour"].as_str()),
            (Some("imminent"), Some("red")),
            "contact {contact}: {frame}"
        );
    };

    // Offered from the queue.
    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    let mut op1 = server.available_staff("op1").await;
    let offer = op1
        .expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    assert_eq!(offer["contact"]["risk"], "none");
    caller
        .send(say("I want to kill myself tonight", "k1"))
        .await;
    caller.expect("said").await;
    let changed = op1
        .expect_where("risk_changed", |f| f["contact"] == contact)
        .await;
    risen(&changed, contact);
    let assigned = accept(&mut op1, contact).await;
    assert_eq!(assigned["contact"]["summary"]["risk"], "imminent");

    // Transferred to a colleague by name.
    let (mut caller, joined) = server.caller_joins(join("general", "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    op1.expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    accept(&mut op1, contact).await;
    let mut op2 = server.available_staff("op2").await;
    op2.ping().await;
    op1.send(json!({"type": "transfer", "contact": contact,
                    "target": {"kind": "operator", "operator": op2_id}}))
        .await;
    op1.expect_where("released", |f| f["contact"] == contact)
        .await;
    op2.expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    caller
        .send(say("I want to kill myself tonight", "k2"))
        .await;
    caller.expect("said").await;
    let changed = op2
        .expect_where("risk_changed", |f| f["contact"] == contact)
        .await;
    risen(&changed, contact);
    server.stop().await;
}
server_test!(a_ringing_offer_is_told_that_the_risk_rose);

/// A supervisor whispering in a contact reloads the console, and so does its holder: each
/// console's `hello` says how its reader takes part (the whisperer's composer comes back) and
/// who has joined the contact (the holder still sees who is whispering).
async fn hello_tells_how_the_reader_joined_and_who_has(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    server.account("op", Role::Operator, &[]).await;
    let sup_id = server.account("sup", Role::Supervisor, &[]).await;
    let (mut caller, joined, mut op) = server.connected_contact("op").await;
    let contact = joined["contact"].as_i64().unwrap();
    let whispering = json!([{"id": sup_id, "name": "sup display", "mode": "whisper"}]);

    let mut sup = server.staff("sup").await;
    let joined = join_contact(&mut sup, contact, "whisper").await;
    assert_eq!(joined["contact"]["mode"], "whisper", "{joined}");
    assert_eq!(joined["contact"]["participants"], whispering);
    op.expect("participant").await;

    // The supervisor's console reloads (the new one takes over from the old).
    let (mut sup, hello) = server.staff_with_hello("sup").await;
    let seen = &hello["contacts"][0];
    assert_eq!(seen["summary"]["id"], contact, "{hello}");
    assert_eq!(seen["mode"], "whisper", "{hello}");
    assert_eq!(seen["participants"], whispering);
    sup.send(say_to(contact, "Ask about sleep.", "w")).await;
    sup.expect("said").await;

    // The holder's console reloads (the new one takes over from the old).
    let (mut op, hello) = server.staff_with_hello("op").await;
    let held = &hello["contacts"][0];
    assert_eq!(held["summary"]["id"], contact, "{hello}");
    assert_eq!(
        held["mode"],
        Value::Null,
        "the holder did not join: {hello}"
    );
    assert_eq!(held["participants"], whispering);
    op.send(say_to(contact, "Are you safe tonight?", "o")).await;
    op.expect("said").await;
    assert_eq!(
        caller.expect("message").await["line"]["body"],
        "Are you safe tonight?"
    );
    server.stop().await;
}
server_test!(hello_tells_how_the_reader_joined_and_who_has);

/// Log lines written into memory, as `hotline` writes them to standard error.
#[derive(Clone, Default)]
struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// `HOTLINE_LOG=trace` logs neither a calendar feed's token, which its address holds, nor the
/// lines of a chat, which pass through the WebSocket library: the HTTP span names the route,
/// not the URI, and the libraries that log what passes through them are capped whatever the
/// filter says. The server runs on a runtime whose every thread logs through `hotline`'s own
/// subscriber (`hotline::logs::subscriber`, what `main` installs), at `trace`.
fn logs_keep_no_token_nor_chat_text(backend: Backend) {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let logs = CapturedLogs::default();
    let dispatch = tracing::Dispatch::new(
        hotline::logs::subscriber(Some("trace"), {
            let logs = logs.clone();
            move || logs.clone()
        })
        .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start({
            let dispatch = dispatch.clone();
            // For the thread's whole life (`log` records, tungstenite's, go through it too).
            move || std::mem::forget(dispatch.clone().set_default())
        })
        .build()
        .unwrap();
    let _this_thread = dispatch.set_default();
    let (token, caller_line, operator_line) = (
        std::cell::RefCell::new(String::new()),
        "caller-words-that-stay-out-of-logs",
        "operator-words-that-stay-out-of-logs",
    );
    runtime.block_on(async {
        let Some(db) = fresh_database(backend).await else {
            eprintln!("PostgreSQL not configured; skipped outside CI");
            return;
        };
        let server = start(&db, test_settings(&db)).await;
        let sup = server.signed_in("sup", Role::Supervisor).await;
        let (status, created) = api(&server, &sup, "POST", "/api/me/calendar-feed", None).await;
        assert_eq!(status, 201, "{created}");
        *token.borrow_mut() = created["token"].as_str().unwrap().to_owned();
        let feed = format!(
            "/api/calendar-feeds/{}/schedules/nights/calendar.ics?weeks=2",
            token.borrow()
        );
        assert_eq!(get_raw(&server, "", &feed).await.status(), 404);

        server.account("op", Role::Operator, &[]).await;
        let (mut caller, joined, mut op) = server.connected_contact("op").await;
        caller.send(say(caller_line, "c1")).await;
        assert_eq!(op.expect("message").await["line"]["body"], caller_line);
        op.send(say_to(&joined["contact"], operator_line, "o1"))
            .await;
        assert_eq!(
            caller.expect("message").await["line"]["body"],
            operator_line
        );
        server.stop().await;
    });
    drop(runtime);
    let logs = logs.text();
    let token = token.into_inner();
    if token.is_empty() {
        return; // skipped
    }
    for secret in [token.as_str(), caller_line, operator_line] {
        let at = logs.find(secret).map(|at| {
            let line_start = logs[..at].rfind('\n').map_or(0, |n| n + 1);
            logs[line_start..].lines().next().unwrap_or_default()
        });
        assert_eq!(at, None, "{secret} is in the logs");
    }
    assert!(
        logs.contains(r#""route":"/api/calendar-feeds/{token}/schedules/{id}/calendar.ics""#),
        "the feed's request is logged under its route"
    );
}

mod logs_keep_no_token_nor_chat_text {
    use super::*;
    #[test]
    fn sqlite() {
        super::logs_keep_no_token_nor_chat_text(Backend::Sqlite);
    }
    #[test]
    fn postgres() {
        super::logs_keep_no_token_nor_chat_text(Backend::Postgres);
    }
}
