//! Quality, training and assessment over the real server, on SQLite and PostgreSQL: KPI and
//! trend reports from a fixture event log (the same JSON and CSV on both databases), the
//! audit cycle (draw, review, score, acknowledge) with the access log, training hours,
//! assessment sign-off and exports, and certifications that grant a routing skill and stop
//! routing at once when they lapse.

#[macro_use]
mod common;

use std::time::Duration;

use common::server::*;
use common::{Backend, FreshDb, fresh_database};
use futures_util::StreamExt;
use hotline::domain::{
    Channel, ContactId, Language, OperatorId, QueueId, RiskLevel, Role, Skill, Timestamp,
};
use hotline::paging::policy::PolicyDefinition;
use hotline::paging::{FlagSource, IncidentState, Step, Urgency};
use hotline::quality::period::{day_start, parse_day};
use hotline::routing::{EndedBy, Event, OperatorState};
use hotline::store::paging::{Effects, IncidentChange, NewIncident};
use hotline::store::{DynStore, NewContactRecord};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

// ---- helpers ----

async fn get_json(server: &Server, cookie: &str, path: &str) -> Value {
    let response = get_raw(server, cookie, path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

fn settings(db: &FreshDb) -> hotline::config::Settings {
    let mut s = test_settings(db);
    s.quality.check_interval_ms = 200;
    s.quality.live_interval_ms = 100;
    s
}

/// Reads frames for `within`; fails on an offer.
async fn no_offer(ws: &mut Ws, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.0.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_ne!(
                    frame["type"], "offer",
                    "an offer after the skill lapsed: {frame}"
                );
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("the staff socket ended: {other:?}"),
        }
    }
}

/// A caller joins `queue`, `op` accepts, says a line, ends and finishes the wrap-up. Returns the
/// contact id.
async fn handled_contact(server: &Server, op: &mut Ws, queue: &str) -> i64 {
    let (mut caller, joined) = server.caller_joins(join(queue, "no")).await;
    let contact = joined["contact"].as_i64().unwrap();
    caller.send(say("我睡不着", "c1")).await;
    caller.expect("said").await;
    let offer = op.expect("offer").await;
    assert_eq!(offer["contact"]["id"], contact);
    accept(op, contact).await;
    op.send(say_to(contact, "我在这里", "o1")).await;
    op.expect("said").await;
    end(op, contact).await;
    finish_wrap_up(op, contact).await;
    contact
}

// ---- a fixture event log, written straight to the store ----

/// 2026-01-05 10:00 in Asia/Shanghai (the default report time zone), plus `secs`.
fn at(secs: i64) -> Timestamp {
    day_start(chrono_tz::Asia::Shanghai, parse_day("2026-01-05").unwrap())
        .plus_ms(10 * 3_600_000 + secs * 1000)
}

async fn new_contact(
    store: &DynStore,
    queue: &str,
    channel: Channel,
    risk: RiskLevel,
    when: Timestamp,
) -> i64 {
    store
        .create_contact(NewContactRecord {
            queue: QueueId::parse(queue).unwrap(),
            channel,
            language: Language::parse("zh").unwrap(),
            topic: None,
            age_group: None,
            risk,
            caller_key_hash: None,
            resume_token_hash: hotline::auth::random_token(16),
            entered_at: when,
        })
        .await
        .unwrap()
        .0
}

/// Writes the fixture day: operators `op1`, `op2` (accounts must exist), six contacts on
/// 2026-01-05 and one a week before, notes with categories, and an incident acknowledged after
/// 30 s. The figures it must give are asserted in `fixture_reports`.
async fn write_fixture(store: &DynStore) {
    use RiskLevel::{High, Imminent, None as No};
    let op1 = OperatorId(id_of(store, "op1").await);
    let op2 = OperatorId(id_of(store, "op2").await);
    let sup = OperatorId(id_of(store, "sup").await);
    let q = |s: &str| QueueId::parse(s).unwrap();
    // The week before: one contact in `general`.
    let week_before = at(-7 * 86_400);
    let c0 = new_contact(store, "general", Channel::Chat, No, week_before).await;
    store
        .record_events(
            week_before,
            &[Event::EnterQueue {
                contact: ContactId(c0),
                queue: q("general"),
                channel: Channel::Chat,
                risk: No,
            }],
        )
        .await
        .unwrap();
    // The day.
    let c1 = new_contact(store, "general", Channel::Chat, No, at(0)).await;
    let c2 = new_contact(store, "general", Channel::Chat, No, at(5)).await;
    let c3 = new_contact(store, "general", Channel::Voice, No, at(10)).await;
    let c4 = new_contact(store, "general", Channel::Chat, No, at(20)).await;
    let c5 = new_contact(store, "crisis", Channel::Chat, High, at(30)).await;
    let c6 = new_contact(store, "crisis", Channel::Chat, Imminent, at(40)).await;
    let c = ContactId;
    let enter = |id: i64, queue: &str, channel: Channel, risk: RiskLevel| Event::EnterQueue {
        contact: c(id),
        queue: q(queue),
        channel,
        risk,
    };
    let connect = |id: i64, op: OperatorId, queue: &str, waited_s: i64| Event::Connect {
        contact: c(id),
        operator: op,
        queue: q(queue),
        waited_ms: waited_s * 1000,
    };
    let log: Vec<(i64, Vec<Event>)> = vec![
        (
            -60,
            vec![
                Event::OperatorState {
                    operator: op1,
                    state: OperatorState::Available,
                },
                Event::OperatorState {
                    operator: op2,
                    state: OperatorState::Available,
                },
            ],
        ),
        (0, vec![enter(c1, "general", Channel::Chat, No)]),
        (5, vec![enter(c2, "general", Channel::Chat, No)]),
        (
            10,
            vec![
                Event::Offer {
                    contact: c(c1),
                    operator: op1,
                    expires_at: at(30),
                },
                Event::Accept {
                    contact: c(c1),
                    operator: op1,
                },
                connect(c1, op1, "general", 10),
                enter(c3, "general", Channel::Voice, No),
            ],
        ),
        // c3 leaves after 3 s: a short abandon.
        (
            13,
            vec![Event::Abandon {
                contact: c(c3),
                queue: q("general"),
                waited_ms: 3_000,
            }],
        ),
        (20, vec![enter(c4, "general", Channel::Chat, No)]),
        (30, vec![enter(c5, "crisis", Channel::Chat, High)]),
        (
            35,
            vec![
                Event::Offer {
                    contact: c(c2),
                    operator: op2,
                    expires_at: at(55),
                },
                Event::Accept {
                    contact: c(c2),
                    operator: op2,
                },
                connect(c2, op2, "general", 30),
            ],
        ),
        (40, vec![enter(c6, "crisis", Channel::Chat, Imminent)]),
        (45, vec![connect(c6, op1, "crisis", 5)]),
        // c4 gives up after 30 s.
        (
            50,
            vec![Event::Abandon {
                contact: c(c4),
                queue: q("general"),
                waited_ms: 30_000,
            }],
        ),
        (
            70,
            vec![Event::WrapUp {
                contact: c(c1),
                operator: op1,
                by: EndedBy::Caller,
            }],
        ),
        (90, vec![connect(c5, op2, "crisis", 60)]),
        (
            95,
            vec![Event::Complete {
                contact: c(c2),
                operator: op2,
                handled_ms: 60_000,
            }],
        ),
        (
            100,
            vec![Event::Complete {
                contact: c(c1),
                operator: op1,
                handled_ms: 90_000,
            }],
        ),
        (
            150,
            vec![Event::Complete {
                contact: c(c6),
                operator: op1,
                handled_ms: 105_000,
            }],
        ),
        (
            200,
            vec![Event::Complete {
                contact: c(c5),
                operator: op2,
                handled_ms: 110_000,
            }],
        ),
        (
            300,
            vec![
                Event::OperatorState {
                    operator: op1,
                    state: OperatorState::Offline,
                },
                Event::OperatorState {
                    operator: op2,
                    state: OperatorState::Offline,
                },
            ],
        ),
    ];
    for (secs, events) in log {
        store.record_events(at(secs), &events).await.unwrap();
    }
    // Notes: c1 family; c6 suicide and self-harm, amended to add family.
    let note = |categories: Value| -> hotline::store::notes::NoteFields {
        serde_json::from_value(json!({"call_type": "counselling", "categories": categories}))
            .unwrap()
    };
    store
        .submit_note(
            c(c1),
            op1,
            1,
            &note(json!({"family": ["conflict"]})),
            at(110),
        )
        .await
        .unwrap();
    let n6 = store
        .submit_note(
            c(c6),
            op1,
            1,
            &note(json!({"suicide_self_harm": ["suicidal_thoughts"]})),
            at(160),
        )
        .await
        .unwrap();
    store
        .amend_note(
            n6.id,
            sup,
            "more detail",
            &note(json!({"suicide_self_harm": ["suicidal_thoughts"], "family": ["conflict"]})),
            at(400),
            None,
        )
        .await
        .unwrap()
        .expect("the note's first amendment");
    // c6's crisis incident: triggered at 41 s, acknowledged by op1 at 71 s.
    let incident = store
        .open_incident(
            &NewIncident {
                contact: c(c6),
                urgency: Urgency::High,
                source: FlagSource::Routing,
                reason: None,
                policy_id: None,
                policy: PolicyDefinition {
                    name: "fixture".into(),
                    default_for_crisis: false,
                    levels: Vec::new(),
                    repeat: 0,
                },
            },
            &Effects::default().step(
                None,
                Step::Triggered {
                    source: FlagSource::Routing,
                    reason: None,
                },
            ),
            at(41),
        )
        .await
        .unwrap();
    let mut acknowledged = incident.clone();
    acknowledged.state = IncidentState::Acknowledged;
    acknowledged.acknowledged_at = Some(at(71));
    acknowledged.acknowledged_by = Some(op1);
    store
        .change_incident(&IncidentChange {
            incident: incident.id,
            update: Some(acknowledged),
            claim: None,
            effects: Effects::default().step(Some(op1), Step::Acknowledged { by: op1 }),
            at: at(71),
        })
        .await
        .unwrap();
}

/// The reports of the fixture day, from a server on `db`: (KPI JSON, KPI CSV, trends JSON,
/// trends CSV, assessment JSON).
async fn fixture_reports(db: FreshDb) -> (Value, String, Value, String, Value) {
    let server = start(&db, settings(&db)).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    server.account("op1", Role::Operator, &[]).await;
    server.account("op2", Role::Operator, &[]).await;
    write_fixture(&server.store).await;
    let day = "from=2026-01-05&to=2026-01-05";
    let kpi = get_json(&server, &sup, &format!("/api/reports/kpi?{day}")).await;
    let t = &kpi["total"];
    // Cohort c1..c6. Answered c1 (10 s), c2 (30 s), c6 (5 s), c5 (60 s) → 4 of 6.
    assert_eq!(
        (t["arrived"].as_u64(), t["answered"].as_u64()),
        (Some(6), Some(4)),
        "{t}"
    );
    assert_eq!(t["answer_rate"], json!(4.0 / 6.0));
    assert_eq!(t["asa_seconds"], json!(105.0 / 4.0)); // (10 + 30 + 5 + 60) / 4
    // Abandoned c3 (3 s, short) and c4 (30 s): SL denominator 4 + 2 − 1 = 5.
    assert_eq!(
        (t["abandoned"].as_u64(), t["short_abandoned"].as_u64()),
        (Some(2), Some(1))
    );
    // SL(20 s): c1, c6 → 2/5; SL(60 s): all four → 4/5.
    assert_eq!(t["service_levels"][0]["ratio"], json!(0.4));
    assert_eq!(t["service_levels"][1]["ratio"], json!(0.8));
    // AHT (90 + 60 + 105 + 110) / 4 = 91.25 s.
    assert_eq!(t["aht_seconds"], json!(91.25));
    // Occupancy over the day (the period is over):
    //   op1: available from −60 s; holds c1 10–100 and c6 45–150 → handling 10–150 = 140 s;
    //        idle −60–10 = 70 s and 150–300 (offline) = 150 s → 220 s.
    //   op2: holds c2 35–95 and c5 90–200 → handling 35–200 = 165 s (the overlap counts once);
    //        idle −60–35 = 95 s and 200–300 = 100 s → 195 s.
    //   handling 305 s, available idle 415 s.
    let occ = &t["occupancy"];
    assert_eq!(occ["handling_seconds"], json!(305.0), "{occ}");
    assert_eq!(occ["available_idle_seconds"], json!(415.0), "{occ}");
    // Risk: c5 waited 60 s (high), c6 5 s (imminent). Crisis: one incident, acked after 30 s.
    assert_eq!(t["high_risk"]["asa_seconds"], json!(60.0));
    assert_eq!(t["imminent_risk"]["asa_seconds"], json!(5.0));
    assert_eq!(t["crisis"]["source"], "paging");
    assert_eq!(t["crisis"]["incidents"], 1);
    assert_eq!(t["crisis"]["mean_time_to_acknowledge_seconds"], json!(30.0));
    // Per queue and per operator rows.
    let queues: Vec<&str> = kpi["by_queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["queue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["crisis", "general"]);
    assert_eq!(kpi["by_operator"].as_array().unwrap().len(), 2);
    let voice = get_json(
        &server,
        &sup,
        &format!("/api/reports/kpi?{day}&channel=voice"),
    )
    .await;
    assert_eq!(voice["total"]["arrived"], 1);
    let csv = get_raw(&server, &sup, &format!("/api/reports/kpi?{day}&format=csv")).await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let kpi_csv = csv.text().await.unwrap();
    assert!(
        kpi_csv.starts_with("scope,queue,operator,from,to,arrived,answered,answer_rate"),
        "{kpi_csv}"
    );
    assert_eq!(kpi_csv.lines().count(), 1 + 1 + 2 + 2, "{kpi_csv}");

    let trends = get_json(&server, &sup, &format!("/api/reports/trends?{day}")).await;
    let series = |dimension: &str, key: &str| -> Value {
        trends["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["dimension"] == dimension && s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no series {dimension}/{key}: {trends}"))
    };
    // Six contacts against one the week before; family from c1 and (amended) c6.
    assert_eq!(series("total", "all")["points"][0]["count"], 6);
    assert_eq!(series("total", "all")["points"][0]["week_before"], 1);
    assert_eq!(series("category", "family")["points"][0]["count"], 2);
    assert_eq!(series("risk", "imminent")["points"][0]["count"], 1);
    let trends_csv = get_raw(
        &server,
        &sup,
        &format!("/api/reports/trends?{day}&format=csv"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(trends_csv.starts_with("day,dimension,key,count"));

    let assessment = get_json(&server, &sup, "/api/assessments/2026-Q1").await;
    let op1 = assessment["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "op1 display")
        .cloned()
        .unwrap();
    assert_eq!(op1["kpis"]["completed"], 2);
    assert_eq!(op1["computed"], "not_eligible"); // fewer than 5 contacts
    server.stop().await;
    (kpi, kpi_csv, trends, trends_csv, assessment)
}

/// The same fixture gives the same reports on SQLite and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_identical_on_both_databases() {
    let sqlite = fixture_reports(fresh_database(Backend::Sqlite).await.unwrap()).await;
    let Some(pg) = fresh_database(Backend::Postgres).await else {
        eprintln!("PostgreSQL not configured; compared nothing (skipped outside CI)");
        return;
    };
    let postgres = fixture_reports(pg).await;
    assert_eq!(sqlite.0, postgres.0, "KPI JSON differs");
    assert_eq!(sqlite.1, postgres.1, "KPI CSV differs");
    assert_eq!(sqlite.2, postgres.2, "trends JSON differs");
    assert_eq!(sqlite.3, postgres.3, "trends CSV differs");
    assert_eq!(sqlite.4, postgres.4, "assessment JSON differs");
}

// ---- live figures and training hours ----

/// Waits (up to 5 s) for a line of `/metrics`; returns the last text read and whether it was there.
async fn metric_appears(server: &Server, line: &str) -> (bool, String) {
    let mut text = String::new();
    for _ in 0..50 {
        text = server.metrics().await;
        if text.lines().any(|l| l == line) {
            return (true, text);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (false, text)
}

/// Today's live service level counts each contact once, as the KPI report does: a contact that
/// abandoned, resumed and was answered is answered (not also abandoned); so is one answered,
/// requeued after losing its operator, then abandoned.
async fn live_service_level_counts_each_contact_once(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op = OperatorId(server.account("op", Role::Operator, &[]).await);
    let q = |s: &str| QueueId::parse(s).unwrap();
    let now = Timestamp::now();
    let resumed = ContactId(
        new_contact(
            &server.store,
            "resumed",
            Channel::Chat,
            RiskLevel::None,
            now,
        )
        .await,
    );
    let requeued = ContactId(
        new_contact(
            &server.store,
            "requeued",
            Channel::Chat,
            RiskLevel::None,
            now,
        )
        .await,
    );
    server
        .store
        .record_events(
            now,
            &[
                Event::EnterQueue {
                    contact: resumed,
                    queue: q("resumed"),
                    channel: Channel::Chat,
                    risk: RiskLevel::None,
                },
                Event::EnterQueue {
                    contact: requeued,
                    queue: q("requeued"),
                    channel: Channel::Chat,
                    risk: RiskLevel::None,
                },
                // Leaves after 8 s, comes back within the resume window, answered after 15 s.
                Event::Abandon {
                    contact: resumed,
                    queue: q("resumed"),
                    waited_ms: 8_000,
                },
                Event::Resume { contact: resumed },
                Event::Connect {
                    contact: resumed,
                    operator: op,
                    queue: q("resumed"),
                    waited_ms: 15_000,
                },
                // Answered after 5 s; its operator is lost; the caller then leaves.
                Event::Connect {
                    contact: requeued,
                    operator: op,
                    queue: q("requeued"),
                    waited_ms: 5_000,
                },
                Event::Requeue {
                    contact: requeued,
                    queue: q("requeued"),
                    reason: hotline::routing::RequeueReason::OperatorLost,
                },
                Event::Abandon {
                    contact: requeued,
                    queue: q("requeued"),
                    waited_ms: 60_000,
                },
            ],
        )
        .await
        .unwrap();
    // The report: each queue has one answered contact (within 20 s), none abandoned → SL 1.
    for queue in ["resumed", "requeued"] {
        let kpi = get_json(&server, &sup, &format!("/api/reports/kpi?queue={queue}")).await;
        assert_eq!(kpi["total"]["abandoned"], 0, "{queue}: {kpi}");
        assert_eq!(
            kpi["total"]["service_levels"][0]["ratio"],
            json!(1.0),
            "{queue}"
        );
    }
    let (_, metrics) =
        metric_appears(&server, "hotline_answered_total{queue=\"requeued\"} 1").await;
    let mut failures = Vec::new();
    for queue in ["resumed", "requeued"] {
        let line = format!("hotline_service_level_ratio{{queue=\"{queue}\",threshold=\"20\"}} 1");
        let (ok, _) = metric_appears(&server, &line).await;
        if !ok {
            let got: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("hotline_service_level_ratio") && l.contains(queue))
                .collect();
            failures.push(format!("{queue}: live {got:?}, report 1"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await;
}
server_test!(live_service_level_counts_each_contact_once);

/// After a restart, today's live service level still counts a contact answered today that was
/// still being handled when the server stopped — also one that arrived before midnight.
async fn live_service_level_survives_a_restart(db: FreshDb) {
    let mut s = settings(&db);
    s.routing.operator_grace_ms = 600_000;
    s.routing.caller_grace_ms = 600_000;
    let server = start(&db, s.clone()).await;
    let op = OperatorId(server.account("op", Role::Operator, &[]).await);
    let q = QueueId::parse("general").unwrap();
    let tz = chrono_tz::Asia::Shanghai;
    let now = Timestamp::now();
    // Arrived 10 s before local midnight, answered today (now), still in conversation.
    let entered = day_start(tz, hotline::quality::period::local_day(tz, now)).plus_ms(-10_000);
    let c = ContactId(
        new_contact(
            &server.store,
            "general",
            Channel::Chat,
            RiskLevel::None,
            entered,
        )
        .await,
    );
    server
        .store
        .record_events(
            entered,
            &[Event::EnterQueue {
                contact: c,
                queue: q.clone(),
                channel: Channel::Chat,
                risk: RiskLevel::None,
            }],
        )
        .await
        .unwrap();
    server
        .store
        .record_events(
            now,
            &[Event::Connect {
                contact: c,
                operator: op,
                queue: q.clone(),
                waited_ms: now.since(entered),
            }],
        )
        .await
        .unwrap();
    // Answered today, not within 20 s: today's SL(20 s) is 0 of 1.
    let line = "hotline_service_level_ratio{queue=\"general\",threshold=\"20\"} 0";
    let (ok, metrics) = metric_appears(&server, line).await;
    assert!(ok, "before the restart: {metrics}");
    server.stop().await;

    let server = start(&db, s).await;
    let (ok, metrics) = metric_appears(&server, line).await;
    let got: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("hotline_service_level_ratio"))
        .collect();
    assert!(
        ok,
        "after the restart, today's answered contact is gone: {got:?}"
    );
    server.stop().await;
}
server_test!(live_service_level_survives_a_restart);

/// A training session that was held keeps the class hours it had: changing a module's hours in
/// the catalogue later does not rewrite past sessions, nor the hours people earned in them.
async fn a_held_session_keeps_its_class_hours(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op_id = server.account("op", Role::Operator, &[]).await;
    let (status, session) = post(
        &server,
        &sup,
        "/api/training/sessions",
        json!({
            "title": "基础知识", "held_on": "2026-01-10", "trainer": "王老师",
            "modules": ["basic_knowledge"],
            "attendees": [{"account": op_id, "questionnaire_done": true}]
        }),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["hours"], 4);
    let id = session["id"].as_i64().unwrap();
    // Later, the catalogue's module is lengthened for future sessions.
    let (status, body) = put(
        &server,
        &sup,
        "/api/training/modules/basic_knowledge",
        json!({"name_zh": "基础知识", "name_en": "Basic knowledge", "hours": 8, "kind": "base"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let held = get_json(&server, &sup, &format!("/api/training/sessions/{id}")).await;
    let hours = get_json(
        &server,
        &sup,
        &format!("/api/training/hours?year=2026&account={op_id}"),
    )
    .await;
    assert_eq!(
        (
            held["hours"].as_u64(),
            hours["people"][0]["certified_hours"].as_u64()
        ),
        (Some(4), Some(4)),
        "the session held on 2026-01-10 was 4 class hours"
    );
    server.stop().await;
}
server_test!(a_held_session_keeps_its_class_hours);

// ---- the audit cycle, the access log, training and assessment ----

async fn audit_cycle(db: FreshDb) {
    let mut s = settings(&db);
    s.quality.assessment_min_contacts = 1;
    // Audits are drawn here only when the test asks: the server's own draw in the background
    // (200 ms after start, then hourly) could take the contact between its completion and the
    // test's request, which then draws nothing new.
    s.quality.check_interval_ms = 3_600_000;
    let server = start(&db, s).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op_cookie = server.signed_in("op", Role::Operator).await;
    let op_id = id_of(&server.store, "op").await;
    let sup_id = id_of(&server.store, "sup").await;

    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "general").await;
    server
        .store
        .submit_note(
            ContactId(contact),
            OperatorId(op_id),
            1,
            &serde_json::from_value(json!({"call_type": "counselling"})).unwrap(),
            Timestamp::now(),
        )
        .await
        .unwrap();

    // Operators may not read reports or draw audits.
    assert_eq!(
        get_raw(&server, &op_cookie, "/api/reports/kpi")
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&server, &op_cookie, "/api/audits/sample", json!({}))
            .await
            .0,
        403
    );

    // The draw: op's only contact (the minimum of one per operator).
    let (status, drawn) = post(&server, &sup, "/api/audits/sample", json!({})).await;
    assert_eq!(status, 200, "{drawn}");
    assert_eq!(drawn["new"], 1);
    let cycle = drawn["cycle"].as_str().unwrap().to_owned();
    // Drawing again draws nothing new.
    assert_eq!(
        post(&server, &sup, "/api/audits/sample", json!({"cycle": cycle}))
            .await
            .1["new"],
        0
    );
    let queue = get_json(&server, &sup, "/api/audits?status=pending").await;
    assert_eq!(queue.as_array().unwrap().len(), 1);
    let audit = &queue[0]["audit"];
    assert_eq!(
        (audit["contact"].as_i64(), audit["operator"].as_i64()),
        (Some(contact), Some(op_id))
    );
    let id = audit["id"].as_i64().unwrap();
    // A pending audit is not shown to the operator.
    assert_eq!(
        get_json(&server, &op_cookie, "/api/audits").await,
        json!([])
    );
    assert_eq!(
        get_raw(&server, &op_cookie, &format!("/api/audits/{id}"))
            .await
            .status(),
        403
    );

    // The review: transcript, notes, timeline; the read is logged.
    let detail = get_json(&server, &sup, &format!("/api/audits/{id}")).await;
    let lines: Vec<&str> = detail["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["body"].as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&"我睡不着") && lines.contains(&"我在这里"),
        "{lines:?}"
    );
    assert_eq!(detail["notes"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"connect") && kinds.contains(&"complete"),
        "{kinds:?}"
    );

    // Scoring: feedback is required, every item 0/1/2/null.
    let card = get_json(&server, &sup, "/api/audits/scorecard").await;
    let mut scores = serde_json::Map::new();
    for section in card["sections"].as_array().unwrap() {
        for item in section["items"].as_array().unwrap() {
            scores.insert(item["id"].as_str().unwrap().into(), json!(2));
        }
    }
    scores.insert("hold_short".into(), Value::Null);
    scores.insert("hold_explained".into(), Value::Null);
    let path = format!("/api/audits/{id}/score");
    let (status, _) = put(
        &server,
        &sup,
        &path,
        json!({"scores": scores, "feedback": "  "}),
    )
    .await;
    assert_eq!(status, 422);
    let mut bad = scores.clone();
    bad.insert("greeting".into(), json!(5));
    let (status, body) = put(
        &server,
        &sup,
        &path,
        json!({"scores": bad, "feedback": "ok"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_fields"))
    );
    assert_eq!(body["fields"][0]["field"], "greeting");
    scores.insert("summary".into(), json!(1));
    let (status, scored) = put(
        &server,
        &sup,
        &path,
        json!({"scores": scores, "feedback": "温暖、专注。结束前请总结。"}),
    )
    .await;
    assert_eq!(status, 200, "{scored}");
    assert_eq!(scored["audit"]["status"], "scored");
    // 18 items scored (2 not applicable): 35 of 36 points.
    assert_eq!(
        (
            scored["summary"]["points"].as_i64(),
            scored["summary"]["max_points"].as_i64()
        ),
        (Some(35), Some(36))
    );
    let closing = scored["summary"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "closing")
        .unwrap()
        .clone();
    assert_eq!(closing["points"], 5);

    // The operator sees it and acknowledges it, once; then it can no longer be re-scored.
    let mine = get_json(&server, &op_cookie, "/api/audits").await;
    assert_eq!(mine[0]["audit"]["feedback"], "温暖、专注。结束前请总结。");
    assert_eq!(
        post(
            &server,
            &sup,
            &format!("/api/audits/{id}/acknowledge"),
            json!({})
        )
        .await
        .0,
        403
    );
    let (status, acked) = post(
        &server,
        &op_cookie,
        &format!("/api/audits/{id}/acknowledge"),
        json!({"comment": "谢谢"}),
    )
    .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["audit"]["status"], "acknowledged");
    assert_eq!(
        post(
            &server,
            &op_cookie,
            &format!("/api/audits/{id}/acknowledge"),
            json!({})
        )
        .await
        .0,
        409
    );
    assert_eq!(
        put(
            &server,
            &sup,
            &path,
            json!({"scores": scores, "feedback": "again"})
        )
        .await
        .0,
        409
    );

    // Reading the transcript and notes is logged too; the log is for supervisors.
    assert_eq!(
        get_raw(
            &server,
            &sup,
            &format!("/api/contacts/{contact}/transcript")
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        get_raw(
            &server,
            &op_cookie,
            &format!("/api/contacts/{contact}/notes")
        )
        .await
        .status(),
        200
    );
    let log = get_json(&server, &sup, &format!("/api/access-log?contact={contact}")).await;
    let entries: Vec<(i64, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["reader"].as_i64().unwrap(), e["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [(op_id, "notes"), (sup_id, "transcript"), (sup_id, "audit")]
    );
    let by_reader = get_json(&server, &sup, &format!("/api/access-log?reader={op_id}")).await;
    assert_eq!(by_reader.as_array().unwrap().len(), 1);
    assert_eq!(
        get_raw(&server, &op_cookie, "/api/access-log")
            .await
            .status(),
        403
    );

    // Training: one systematic session with the 8 base modules (32 h), questionnaire done.
    let modules = get_json(&server, &op_cookie, "/api/training/modules").await;
    let base: Vec<&str> = modules
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "base")
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let base_hours: u64 = modules
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "base")
        .map(|m| m["hours"].as_u64().unwrap())
        .sum();
    assert_eq!((base.len(), base_hours), (8, 32));
    let today = hotline::quality::period::local_day(chrono_tz::Asia::Shanghai, Timestamp::now())
        .to_string();
    let (status, session) = post(
        &server,
        &sup,
        "/api/training/sessions",
        json!({
            "title": "8+x 基础培训", "held_on": today, "trainer": "王老师",
            "modules": base, "attendees": [{"account": op_id, "questionnaire_done": false}]
        }),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["hours"], 32);
    let sid = session["id"].as_i64().unwrap();
    let (status, _) = put(
        &server,
        &op_cookie,
        &format!("/api/training/sessions/{sid}/attendees/{op_id}/questionnaire"),
        json!({"done": true}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &server,
        &sup,
        "/api/training/sessions",
        json!({
            "title": "x", "held_on": today, "trainer": "t", "modules": ["juggling"]
        }),
    )
    .await;
    assert_eq!(status, 422);
    let hours = get_json(&server, &op_cookie, "/api/training/hours").await;
    assert_eq!(hours["people"].as_array().unwrap().len(), 1);
    assert_eq!(hours["people"][0]["certified_hours"], 32);
    assert_eq!(hours["people"][0]["base_modules_missing"], json!([]));

    // The assessment: one contact handled (minimum 1 here), audit 97 %, one systematic
    // training (1 a quarter required) → meets. Signed off once, by a supervisor.
    let report = get_json(&server, &sup, &format!("/api/assessments/{cycle}")).await;
    let mine = report["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operator"] == op_id)
        .cloned()
        .unwrap();
    assert_eq!(mine["computed"], "meets", "{mine}");
    assert_eq!(mine["training"]["systematic_sessions"], 1);
    assert_eq!(report["rules"]["trainings_required"], 1);
    let sign = format!("/api/assessments/{cycle}/{op_id}/sign-off");
    assert_eq!(post(&server, &op_cookie, &sign, json!({})).await.0, 403);
    let (status, _) = post(
        &server,
        &sup,
        &sign,
        json!({"outcome": "needs_improvement"}),
    )
    .await;
    assert_eq!(status, 422); // overriding needs a comment
    let (status, signed) = post(&server, &sup, &sign, json!({"comment": "按期完成"})).await;
    assert_eq!(status, 201, "{signed}");
    assert_eq!(
        (signed["outcome"].as_str(), signed["computed"].as_str()),
        (Some("meets"), Some("meets"))
    );
    assert_eq!(signed["figures"]["kpis"]["completed"], 1);
    assert_eq!(post(&server, &sup, &sign, json!({})).await.0, 409);
    let csv = get_raw(
        &server,
        &sup,
        &format!("/api/assessments/{cycle}?format=csv"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(csv.lines().next().unwrap().contains("computed"));
    assert!(csv.contains("op display") && csv.contains("meets"), "{csv}");
    let html = get_raw(
        &server,
        &sup,
        &format!("/api/assessments/{cycle}/report.html"),
    )
    .await;
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = html.text().await.unwrap();
    assert!(
        html.contains("@media print") && html.contains("op display") && html.contains("按期完成")
    );
    assert_eq!(
        get_raw(&server, &sup, "/api/assessments/2026-Q9")
            .await
            .status(),
        422
    );

    // Live metrics: the contact was answered in `general`.
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = server.metrics().await;
        if metrics.contains("hotline_answered_total{queue=\"general\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("hotline_answered_total{queue=\"general\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("hotline_arrived_total{queue=\"general\"} 1"));
    assert!(metrics.contains("hotline_service_level_ratio{queue=\"general\",threshold=\"20\"} 1"));
    // The KPI report of today has it too.
    let kpi = get_json(&server, &sup, "/api/reports/kpi").await;
    assert_eq!(kpi["total"]["answered"], 1);
    server.stop().await;
}
server_test!(audit_cycle);

// ---- certifications drive routing ----

async fn certification_drives_routing(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let admin = server.signed_in("boss", Role::Admin).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op_id = server.account("op", Role::Operator, &[]).await;
    let new_id = server.account("new.op", Role::Operator, &[]).await;
    let crisis = Skill::parse("crisis").unwrap();
    let (status, _) = put(
        &server,
        &admin,
        "/api/admin/skills/crisis",
        json!({"description": "crisis work"}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = put(
        &server,
        &admin,
        "/api/admin/queues/crisis",
        json!({
            "id": "crisis", "name": "Crisis", "never_relax": true,
            "required_skills": [{"skill": "crisis", "min_proficiency": 3}]
        }),
    )
    .await;
    assert_eq!(status, 200);

    // The risk-assessment module, questionnaire done, for `op` only.
    let today = hotline::quality::period::local_day(chrono_tz::Asia::Shanghai, Timestamp::now())
        .to_string();
    let (status, _) = post(
        &server,
        &sup,
        "/api/training/sessions",
        json!({
            "title": "风险评估与转介", "held_on": today, "trainer": "李医生", "systematic": false,
            "modules": ["risk_assessment"],
            "attendees": [{"account": op_id, "questionnaire_done": true}, {"account": new_id}]
        }),
    )
    .await;
    assert_eq!(status, 201);
    let grant = |account: i64, passed: bool, expires_at: Option<i64>| {
        json!({"account": account, "certification": "crisis_certified",
               "assessment_passed": passed, "assessment_score": 88, "expires_at": expires_at})
    };
    // No questionnaire, no assessment, or an unknown certification: refused.
    assert_eq!(
        post(
            &server,
            &sup,
            "/api/training/certifications",
            grant(new_id, true, None)
        )
        .await
        .0,
        422
    );
    assert_eq!(
        post(
            &server,
            &sup,
            "/api/training/certifications",
            grant(op_id, false, None)
        )
        .await
        .0,
        422
    );
    let (status, _) = post(
        &server,
        &sup,
        "/api/training/certifications",
        json!({"account": op_id, "certification": "juggler", "assessment_passed": true}),
    )
    .await;
    assert_eq!(status, 422);

    // Granted for 6 s: the skill is there and routing offers crisis contacts at once.
    let expires = Timestamp::now().plus_ms(6_000).0;
    let (status, cert) = post(
        &server,
        &sup,
        "/api/training/certifications",
        grant(op_id, true, Some(expires)),
    )
    .await;
    assert_eq!(status, 201, "{cert}");
    let skills = server
        .store
        .account_skills(OperatorId(op_id))
        .await
        .unwrap();
    assert_eq!(skills.len(), 1);
    assert_eq!((&skills[0].0, skills[0].1.get()), (&crisis, 3));
    let mut op = server.available_staff("op").await;
    let first = handled_contact(&server, &mut op, "crisis").await;
    assert!(first > 0);

    // It lapses: the skill is removed and the engine told, without anyone asking.
    let mut lapsed = false;
    for _ in 0..100 {
        if server
            .store
            .account_skills(OperatorId(op_id))
            .await
            .unwrap()
            .is_empty()
        {
            lapsed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lapsed, "the skill is still there after expiry");
    let certs = get_json(
        &server,
        &sup,
        &format!("/api/training/certifications?account={op_id}"),
    )
    .await;
    assert!(certs[0]["lapsed_at"].is_i64(), "{certs}");
    // A new crisis contact is no longer offered to op.
    let mut caller = server.caller().await;
    caller.send(join("crisis", "no")).await;
    caller.expect("joined").await;
    no_offer(&mut op, Duration::from_secs(2)).await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("hotline_certification_lapses_total{cause=\"expired\"} 1"),
        "{metrics}"
    );

    // Granted again (a year by default): the waiting contact is offered at once. Then revoked:
    // the skill goes at once.
    let (status, cert) = post(
        &server,
        &sup,
        "/api/training/certifications",
        grant(op_id, true, None),
    )
    .await;
    assert_eq!(status, 201);
    op.expect("offer").await;
    let id = cert["id"].as_i64().unwrap();
    let (status, _) = post(
        &server,
        &sup,
        &format!("/api/training/certifications/{id}/revoke"),
        json!({"reason": ""}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, revoked) = post(
        &server,
        &sup,
        &format!("/api/training/certifications/{id}/revoke"),
        json!({"reason": "复核未通过"}),
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_i64() && revoked["lapsed_at"].is_i64());
    assert!(
        server
            .store
            .account_skills(OperatorId(op_id))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        post(
            &server,
            &sup,
            &format!("/api/training/certifications/{id}/revoke"),
            json!({"reason": "again"})
        )
        .await
        .0,
        409
    );
    server.stop().await;
}
server_test!(certification_drives_routing);

/// Report bounds, training days and cycle ids at the edges of what chrono represents (or that
/// split a character), and a module position that cannot be followed, are refused with 422
/// `invalid`: no handler panics.
async fn extreme_bounds_are_refused_not_panicked(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let cookie = server.signed_in("sup", Role::Supervisor).await;
    let http = reqwest::Client::new();
    let max_ms = chrono::DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis();
    // A module at the largest position, so the next one without a position cannot follow it.
    let (status, body) = put(
        &server,
        &cookie,
        "/api/training/modules/last_one",
        json!({"name_zh": "末", "name_en": "Last", "hours": 1, "kind": "extra",
               "position": i64::MAX}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "kpi: from/to far apart (their difference overflows)",
            http.get(
                server.url("/api/reports/kpi?from=-9000000000000000000&to=9000000000000000000"),
            ),
        ),
        (
            "kpi: an RFC 3339 bound past the year 2200",
            http.get(server.url("/api/reports/kpi?from=2200-12-20&to=2201-01-02T00:00:00Z")),
        ),
        (
            "trends: the last instant chrono knows",
            http.get(server.url(&format!("/api/reports/trends?from={max_ms}&to={max_ms}"))),
        ),
        (
            "access log: a date before the year 2000",
            http.get(server.url("/api/access-log?from=1999-12-31")),
        ),
        (
            "training sessions: to = the last date chrono knows",
            http.get(server.url("/api/training/sessions?from=2026-01-01&to=%2B262142-12-31")),
        ),
        (
            "assessment: a cycle id with a non-ASCII character",
            http.get(server.url("/api/assessments/2026-%C3%A91")),
        ),
        (
            "training module without a position after one at i64::MAX",
            http.put(server.url("/api/training/modules/next_one"))
                .json(&json!({"name_zh": "下", "name_en": "Next", "hours": 1, "kind": "extra"})),
        ),
    ];
    let mut failures = Vec::new();
    for (what, request) in cases {
        match request.header("cookie", &cookie).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if (status, body["code"].as_str()) != (422, Some("invalid")) {
                    failures.push(format!("{what}: answered {status} {body}"));
                }
            }
            Err(e) => failures.push(format!("{what}: no answer ({e})")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Bounds within the years a client may name still work.
    let (status, body) = get(
        &server,
        &cookie,
        "/api/reports/kpi?from=2026-01-01&to=2026-01-31",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(
        &server,
        &cookie,
        "/api/training/sessions?from=2200-01-01&to=2200-12-31",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The server itself is still up.
    assert_eq!(get_raw(&server, &cookie, "/api/me").await.status(), 200);
    server.stop().await;
}
server_test!(extreme_bounds_are_refused_not_panicked);

// ---- assessment figures ----

/// A trend report of one day compares its last 7 days with the 7 days before them; all 14 must
/// be read, or a steady flow of contacts is flagged as a sudden rise.
async fn trends_of_a_short_period_read_the_whole_previous_week(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    // Two contacts a day, every day from 2026-01-01 to 2026-01-14: a steady flow.
    for day in 1..=14 {
        let start = day_start(
            chrono_tz::Asia::Shanghai,
            parse_day(&format!("2026-01-{day:02}")).unwrap(),
        );
        for hour in [9, 15] {
            new_contact(
                &server.store,
                "general",
                Channel::Chat,
                RiskLevel::None,
                start.plus_ms(hour * 3_600_000),
            )
            .await;
        }
    }
    let trends = get_json(
        &server,
        &sup,
        "/api/reports/trends?from=2026-01-14&to=2026-01-14",
    )
    .await;
    let total = trends["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["dimension"] == "total")
        .cloned()
        .unwrap();
    let wow = &total["week_over_week"];
    // Last 7 days: 01-08..01-14 = 14; the 7 before: 01-01..01-07 = 14.
    assert_eq!(wow["last_7_days"], 14, "{wow}");
    assert_eq!(wow["previous_7_days"], 14, "{wow}");
    assert_eq!(wow["alert"], false, "a steady flow raised an alert: {wow}");
    server.stop().await;
}
server_test!(trends_of_a_short_period_read_the_whole_previous_week);

/// An assessment lists the certifications valid at the end of its cycle: one revoked after the
/// cycle ended was held during it.
async fn a_certification_revoked_after_the_cycle_counts_in_it(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op = OperatorId(server.account("op", Role::Operator, &[]).await);
    let sup_id = OperatorId(id_of(&server.store, "sup").await);
    // Granted on 2025-07-01 for a year; revoked today, long after 2025-Q3 ended.
    let granted =
        day_start(chrono_tz::Asia::Shanghai, parse_day("2025-07-01").unwrap()).plus_ms(3_600_000);
    let cert = server
        .store
        .grant_certification(
            &hotline::store::quality::NewCertification {
                account: op,
                kind: "crisis_certified".into(),
                granted_at: granted,
                expires_at: granted.plus_ms(365 * 86_400_000),
                granted_by: sup_id,
                assessment_score: None,
                note: None,
            },
            None,
        )
        .await
        .unwrap();
    server
        .store
        .revoke_certification(cert.id, sup_id, "review failed", Timestamp::now())
        .await
        .unwrap();
    let report = get_json(&server, &sup, "/api/assessments/2025-Q3").await;
    let mine = report["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operator"] == op.0)
        .cloned()
        .unwrap();
    assert_eq!(
        mine["certifications"],
        json!(["crisis_certified"]),
        "valid all through 2025-Q3: {mine}"
    );
    server.stop().await;
}
server_test!(a_certification_revoked_after_the_cycle_counts_in_it);

/// A lapse whose skill could not be removed (the database failing for a moment) is applied again
/// on the next round, not marked done with the skill still there.
async fn a_lapse_that_failed_half_way_is_applied_again(db: FreshDb) {
    let server = start(&db, settings(&db)).await;
    let sup = OperatorId(server.account("sup", Role::Supervisor, &[]).await);
    let op = OperatorId(server.account("op", Role::Operator, &[("crisis", 3)]).await);
    let fail: &[&'static str] = match db.backend() {
        Backend::Postgres => &[
            "CREATE FUNCTION skills_fail() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the database is briefly unavailable'; END $$",
            "CREATE TRIGGER skills_fail BEFORE DELETE ON account_skills \
             FOR EACH ROW EXECUTE FUNCTION skills_fail()",
        ],
        Backend::Sqlite => &[
            "CREATE TRIGGER skills_fail BEFORE DELETE ON account_skills \
             BEGIN SELECT RAISE(ABORT, 'the database is briefly unavailable'); END",
        ],
    };
    for statement in fail {
        db.execute(statement).await;
    }
    // Granted two days ago, expired an hour ago.
    let now = Timestamp::now();
    server
        .store
        .grant_certification(
            &hotline::store::quality::NewCertification {
                account: op,
                kind: "crisis_certified".into(),
                granted_at: now.plus_ms(-2 * 86_400_000),
                expires_at: now.plus_ms(-3_600_000),
                granted_by: sup,
                assessment_score: None,
                note: None,
            },
            None,
        )
        .await
        .unwrap();
    // Several rounds (every 200 ms) fail to remove the skill.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(server.store.account_skills(op).await.unwrap().len(), 1);
    let drop = match db.backend() {
        Backend::Postgres => "DROP TRIGGER skills_fail ON account_skills",
        Backend::Sqlite => "DROP TRIGGER skills_fail",
    };
    db.execute(drop).await;
    // The lapse is marked applied only after the skill is gone and the engine has the profile,
    // so the two are seen a moment apart: wait for both.
    let mut removed = false;
    let mut certs = Vec::new();
    for _ in 0..50 {
        removed = server.store.account_skills(op).await.unwrap().is_empty();
        certs = server.store.certifications(Some(op)).await.unwrap();
        if removed && certs[0].lapsed_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        removed,
        "the skill is still there once the database works again"
    );
    assert!(certs[0].lapsed_at.is_some(), "{certs:?}");
    server.stop().await;
}
server_test!(a_lapse_that_failed_half_way_is_applied_again);

/// The assessment of a signed-off operator (JSON, CSV and the printable page) shows the figures
/// that were signed: an audit score that was signed cannot be changed, and an audit still pending
/// at the sign-off and scored afterwards is listed as a change, not passed off as signed.
async fn a_signed_assessment_export_keeps_the_signed_figures(db: FreshDb) {
    let mut s = settings(&db);
    s.quality.assessment_min_contacts = 1;
    s.quality.trainings_per_year = 0;
    let server = start(&db, s).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op = OperatorId(server.account("op", Role::Operator, &[]).await);
    let q = QueueId::parse("general").unwrap();
    // Two contacts handled by op in 2025-Q4, both audited.
    let day = day_start(chrono_tz::Asia::Shanghai, parse_day("2025-11-10").unwrap());
    let mut contacts = Vec::new();
    for hour in [10, 11] {
        let t = day.plus_ms(hour * 3_600_000);
        let c = ContactId(
            new_contact(&server.store, "general", Channel::Chat, RiskLevel::None, t).await,
        );
        server
            .store
            .record_events(
                t,
                &[Event::EnterQueue {
                    contact: c,
                    queue: q.clone(),
                    channel: Channel::Chat,
                    risk: RiskLevel::None,
                }],
            )
            .await
            .unwrap();
        server
            .store
            .record_events(
                t.plus_ms(5_000),
                &[Event::Connect {
                    contact: c,
                    operator: op,
                    queue: q.clone(),
                    waited_ms: 5_000,
                }],
            )
            .await
            .unwrap();
        server
            .store
            .record_events(
                t.plus_ms(300_000),
                &[Event::Complete {
                    contact: c,
                    operator: op,
                    handled_ms: 295_000,
                }],
            )
            .await
            .unwrap();
        contacts.push(c);
    }
    server
        .store
        .insert_audits(
            &contacts
                .iter()
                .map(|c| hotline::store::quality::NewAudit {
                    contact: *c,
                    operator: op,
                    cycle: "2025-Q4".into(),
                    reason: hotline::store::quality::AuditReason::Manual,
                })
                .collect::<Vec<_>>(),
            Timestamp::now(),
        )
        .await
        .unwrap();
    let listed = get_json(&server, &sup, "/api/audits?cycle=2025-Q4").await;
    let audit_of = |c: ContactId| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["audit"]["contact"] == c.0)
            .unwrap()["audit"]["id"]
            .as_i64()
            .unwrap()
    };
    let (signed_audit, late_audit) = (audit_of(contacts[0]), audit_of(contacts[1]));
    let card = get_json(&server, &sup, "/api/audits/scorecard").await;
    let scores = |v: i64| -> Value {
        let mut m = serde_json::Map::new();
        for section in card["sections"].as_array().unwrap() {
            for item in section["items"].as_array().unwrap() {
                m.insert(item["id"].as_str().unwrap().into(), json!(v));
            }
        }
        Value::Object(m)
    };
    let score = |audit: i64, v: i64, feedback: &'static str| {
        let server = &server;
        let sup = &sup;
        let body = json!({"scores": scores(v), "feedback": feedback});
        async move { put(server, sup, &format!("/api/audits/{audit}/score"), body).await }
    };
    // One audit scored 100 %, the other still pending: signed off as meets.
    let (status, body) = score(signed_audit, 2, "good").await;
    assert_eq!(status, 200, "{body}");
    let (status, signed) = post(
        &server,
        &sup,
        &format!("/api/assessments/2025-Q4/{}/sign-off", op.0),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{signed}");
    assert_eq!(signed["outcome"], "meets");
    assert_eq!(signed["figures"]["audits"]["average_percent"], json!(100.0));
    assert_eq!(signed["figures"]["audits"]["pending"], 1);
    // The score that was signed is final (the operator has not acknowledged it yet).
    let (status, body) = score(signed_audit, 0, "on reflection").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("signed off"),
        "{body}"
    );
    // The audit pending at the sign-off is scored afterwards (0 %), and corrected (0 % again).
    for feedback in ["late", "late, corrected"] {
        let (status, body) = score(late_audit, 0, feedback).await;
        assert_eq!(status, 200, "{body}");
    }
    let audits = get_json(&server, &sup, "/api/audits?cycle=2025-Q4").await;
    assert!(
        audits
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["audit"]["id"] == signed_audit && a["audit"]["feedback"] == "good"),
        "{audits}"
    );

    // JSON: the signed figures, and what the data now gives differently.
    let report = get_json(&server, &sup, "/api/assessments/2025-Q4").await;
    let mine = report["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operator"] == op.0)
        .cloned()
        .unwrap();
    assert_eq!(
        (
            &mine["audits"]["average_percent"],
            &mine["audits"]["pending"],
            &mine["computed"]
        ),
        (&json!(100.0), &json!(1), &json!("meets")),
        "{mine}"
    );
    let changes: Vec<(String, String, String)> = mine["changed_since_sign_off"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_owned();
            (s("figure"), s("signed"), s("now"))
        })
        .collect();
    let change = |f: &str| changes.iter().find(|c| c.0 == f).cloned();
    assert_eq!(
        (
            change("audits.average_percent"),
            change("audits.pending"),
            change("computed")
        ),
        (
            Some((
                "audits.average_percent".into(),
                "100.0".into(),
                "50.0".into()
            )),
            Some(("audits.pending".into(), "1".into(), "0".into())),
            Some((
                "computed".into(),
                "meets".into(),
                "needs_improvement".into()
            ))
        ),
        "{changes:?}"
    );
    assert!(
        changes
            .iter()
            .all(|c| c.0.starts_with("audits.") || c.0 == "computed"),
        "only the audits changed: {changes:?}"
    );

    // CSV: the signed figures, the changes apart.
    let csv = get_raw(&server, &sup, "/api/assessments/2025-Q4?format=csv")
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines
        .find(|l| l.contains("op display"))
        .unwrap()
        .split(',')
        .collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(col("signed_outcome"), "meets");
    assert_eq!(
        (col("audit_average_percent"), col("computed")),
        ("100.0", "meets"),
        "the signed form shows figures that were never signed: {csv}"
    );
    assert!(
        col("changed_since_sign_off").contains("audits.average_percent: 100.0 → 50.0"),
        "{csv}"
    );

    // The printable form: the signed average, the change listed apart.
    let html = get_raw(&server, &sup, "/api/assessments/2025-Q4/report.html")
        .await
        .text()
        .await
        .unwrap();
    let form = &html[html.find("<div class=\"form\">").unwrap()..];
    assert!(
        form.contains("平均 average 100.0 %")
            && form.contains("Changed since the sign-off")
            && form.contains("computed: meets → needs_improvement"),
        "{form}"
    );
    server.stop().await;
}
server_test!(a_signed_assessment_export_keeps_the_signed_figures);

/// The cycle's draw is reproducible and meets `audit_min_per_operator`, no more: drawing again
/// later in the cycle does not add "minimum" audits to an operator who already has them.
async fn the_minimum_draw_is_not_repeated_as_the_cycle_grows(db: FreshDb) {
    let mut s = settings(&db);
    s.quality.audit_share = 0.0;
    s.quality.audit_min_per_operator = 1;
    let server = start(&db, s).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let op = OperatorId(server.account("op", Role::Operator, &[]).await);
    let q = QueueId::parse("general").unwrap();
    let cycle = "2025-Q4";
    let day = day_start(chrono_tz::Asia::Shanghai, parse_day("2025-11-10").unwrap());
    let handled = |c: ContactId, t: Timestamp| {
        let store = server.store.clone();
        let q = q.clone();
        async move {
            store
                .record_events(
                    t,
                    &[Event::EnterQueue {
                        contact: c,
                        queue: q.clone(),
                        channel: Channel::Chat,
                        risk: RiskLevel::None,
                    }],
                )
                .await
                .unwrap();
            store
                .record_events(
                    t.plus_ms(1_000),
                    &[Event::Connect {
                        contact: c,
                        operator: op,
                        queue: q.clone(),
                        waited_ms: 1_000,
                    }],
                )
                .await
                .unwrap();
            store
                .record_events(
                    t.plus_ms(60_000),
                    &[Event::Complete {
                        contact: c,
                        operator: op,
                        handled_ms: 59_000,
                    }],
                )
                .await
                .unwrap();
        }
    };
    let mut contacts = Vec::new();
    for i in 0..10 {
        let t = day.plus_ms(i * 3_600_000);
        contacts.push((
            ContactId(
                new_contact(&server.store, "general", Channel::Chat, RiskLevel::None, t).await,
            ),
            t,
        ));
    }
    // The contact with the highest draw is handled first; the others later in the cycle.
    contacts.sort_by(|a, b| {
        hotline::quality::audits::draw(cycle, b.0)
            .total_cmp(&hotline::quality::audits::draw(cycle, a.0))
    });
    handled(contacts[0].0, contacts[0].1).await;
    let (status, first) = post(&server, &sup, "/api/audits/sample", json!({"cycle": cycle})).await;
    assert_eq!((status, first["new"].as_u64()), (200, Some(1)), "{first}");
    for (c, t) in &contacts[1..] {
        handled(*c, *t).await;
    }
    let (status, again) = post(&server, &sup, "/api/audits/sample", json!({"cycle": cycle})).await;
    assert_eq!(status, 200);
    let audits = get_json(&server, &sup, &format!("/api/audits?cycle={cycle}")).await;
    assert_eq!(
        audits.as_array().unwrap().len(),
        1,
        "share 0, minimum 1, yet the second draw added {}: {audits}",
        again["new"]
    );
    server.stop().await;
}
server_test!(the_minimum_draw_is_not_repeated_as_the_cycle_grows);
