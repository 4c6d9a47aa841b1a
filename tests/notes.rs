//! Structured notes over the real server, on SQLite and PostgreSQL: drafts, field-by-field refusal
//! that keeps the draft, locked submission, amendments that keep the original, who may read and
//! amend, and the caller's history shown to the next operator.

#[macro_use]
mod common;

use common::server::*;
use common::{Backend, FreshDb, fresh_database};
use hotline::domain::Role;
use serde_json::{Value, json};

/// A complete, valid note for a data contact.
fn valid_note() -> Value {
    json!({
        "call_type": "counselling",
        "categories": {"emotional_distress": ["anxiety"], "study": ["exam_stress"]},
        "age_group": "18_24",
        "suicidal_thoughts": "no",
        "risk_level": "low",
        "interventions": ["active_listening"],
        "outcome": "resolved",
        "summary": "Exam stress; slept badly for a week. Agreed a plan for the weekend."
    })
}

/// The join frame of a caller whose browser keeps `caller_key` (the same key, the same caller).
fn join_with_key(caller_key: &str) -> Value {
    let mut form = join("general", "no");
    form["caller_key"] = json!(caller_key);
    form
}

/// Handles one contact end to end (join, offer, accept, end) and returns its id.
async fn handled_contact(server: &Server, op: &mut Ws, caller_key: &str) -> i64 {
    let (_caller, joined) = server.caller_joins(join_with_key(caller_key)).await;
    let contact = joined["contact"].as_i64().unwrap();
    let offer = op
        .expect_where("offer", |f| f["contact"]["id"] == contact)
        .await;
    assert_eq!(offer["contact"]["id"], contact);
    accept(op, contact).await;
    end(op, contact).await;
    contact
}

async fn a_note_from_draft_to_amendment(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let op_cookie = server.signed_in("op", Role::Operator).await;
    let other = server.signed_in("other", Role::Operator).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "browser-key-notes-0001").await;

    let (status, form) = get(&server, &op_cookie, "/api/notes/form").await;
    assert_eq!(status, 200);
    assert_eq!(form["version"], 1);

    // A half-written draft is saved as it is.
    let path = format!("/api/contacts/{contact}/note");
    let (status, draft) = put(
        &server,
        &op_cookie,
        &path,
        json!({"fields": {"call_type": "counselling"}}),
    )
    .await;
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["note"]["status"], "draft");

    // Someone who never handled the contact may neither write nor read it.
    assert_eq!(
        put(&server, &other, &path, json!({"fields": {}})).await.0,
        403
    );
    assert_eq!(
        get(&server, &other, &format!("/api/contacts/{contact}/notes"))
            .await
            .0,
        403
    );

    // Submitting an incomplete note is refused field by field, and what was written is kept.
    let submit = format!("/api/contacts/{contact}/note/submit");
    let mut partial = valid_note();
    partial.as_object_mut().unwrap().remove("summary");
    partial["risk_level"] = json!("urgent");
    let (status, refused) = post(&server, &op_cookie, &submit, json!({"fields": partial})).await;
    assert_eq!(status, 422);
    assert_eq!(refused["code"], "invalid_fields");
    let fields: Vec<&str> = refused["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["risk_level", "summary"]);
    let (_, notes) = get(
        &server,
        &op_cookie,
        &format!("/api/contacts/{contact}/notes"),
    )
    .await;
    assert_eq!(notes[0]["note"]["status"], "draft");
    assert_eq!(
        notes[0]["note"]["fields"]["age_group"], "18_24",
        "the draft keeps what was written"
    );

    // A valid note is stored and locked.
    let (status, submitted) = post(
        &server,
        &op_cookie,
        &submit,
        json!({"fields": valid_note()}),
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["note"]["status"], "submitted");
    assert_eq!(submitted["note"]["form_version"], 1);
    let note_id = submitted["note"]["id"].as_i64().unwrap();
    assert_eq!(
        put(&server, &op_cookie, &path, json!({"fields": {}}))
            .await
            .0,
        409
    );
    assert_eq!(
        post(
            &server,
            &op_cookie,
            &submit,
            json!({"fields": valid_note()})
        )
        .await
        .0,
        409
    );

    // Amendments: a reason is required, the amended note must still be valid, the original stays.
    let amend = format!("/api/notes/{note_id}/amendments");
    let (status, _) = post(
        &server,
        &op_cookie,
        &amend,
        json!({"reason": " ", "changes": {"outcome": "referred"}}),
    )
    .await;
    assert_eq!(status, 422);
    let (status, bad) = post(
        &server,
        &op_cookie,
        &amend,
        json!({"reason": "typo", "changes": {"outcome": "teleported"}}),
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (422, Some("invalid_fields"))
    );
    let (status, amendment) = post(
        &server,
        &op_cookie,
        &amend,
        json!({"reason": "caller was referred after all", "changes": {"outcome": "referred"}}),
    )
    .await;
    assert_eq!(status, 201, "{amendment}");
    assert_eq!(
        post(
            &server,
            &other,
            &amend,
            json!({"reason": "mine now", "changes": {"outcome": "resolved"}})
        )
        .await
        .0,
        403
    );
    // The note and the right to amend it are checked before the request: a missing note is 404
    // and someone else's note 403, even with no reason given.
    let blank = json!({"reason": "", "changes": {"outcome": "resolved"}});
    assert_eq!(post(&server, &other, &amend, blank.clone()).await.0, 403);
    let missing = format!("/api/notes/{}/amendments", note_id + 1_000);
    assert_eq!(post(&server, &sup, &missing, blank).await.0, 404);
    let (status, _) = post(
        &server,
        &sup,
        &amend,
        json!({"reason": "audit correction", "changes": {"age_group": "25_44"}}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, notes) = get(&server, &sup, &format!("/api/contacts/{contact}/notes")).await;
    let view = &notes[0];
    assert_eq!(
        view["note"]["fields"]["outcome"], "resolved",
        "the original text is kept"
    );
    assert_eq!(view["note"]["fields"]["age_group"], "18_24");
    assert_eq!(view["effective"]["outcome"], "referred");
    assert_eq!(view["effective"]["age_group"], "25_44");
    let amendments = view["note"]["amendments"].as_array().unwrap();
    assert_eq!(amendments.len(), 2);
    assert_eq!(amendments[0]["reason"], "caller was referred after all");

    // The same caller comes back: the next operator sees the earlier note in the history.
    finish_wrap_up(&mut op, contact).await;
    let (_caller, _, assigned) = server
        .accepted_contact(&mut op, join_with_key("browser-key-notes-0001"))
        .await;
    let history = &assigned["contact"]["history"];
    assert_eq!(history[0]["contact"], contact);
    assert_eq!(history[0]["notes"][0]["risk_level"], "low");
    assert!(
        history[0]["notes"][0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Exam stress")
    );
    server.stop().await;
}
server_test!(a_note_from_draft_to_amendment);

/// A silent contact needs only its call type; bodies that are not JSON objects are refused.
async fn non_data_notes_and_bad_bodies(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let cookie = server.signed_in("op", Role::Operator).await;
    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "browser-key-notes-0002").await;
    let submit = format!("/api/contacts/{contact}/note/submit");
    let (status, note) = post(
        &server,
        &cookie,
        &submit,
        json!({"fields": {"call_type": "silent"}}),
    )
    .await;
    assert_eq!(status, 200, "{note}");
    let (status, _) = post(
        &server,
        &cookie,
        "/api/contacts/999999/note/submit",
        json!({"fields": {}}),
    )
    .await;
    assert_eq!(status, 403);
    let path = format!("/api/contacts/{contact}/note");
    let (status, _) = put(&server, &cookie, &path, json!([1, 2, 3])).await;
    assert_eq!(status, 422);
    server.stop().await;
}
server_test!(non_data_notes_and_bad_bodies);

/// A note naming high risk opens a crisis incident for its contact.
async fn a_high_risk_note_pages_the_crisis_team(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let cookie = server.signed_in("op", Role::Operator).await;
    let lead_cookie = server.signed_in("lead", Role::CrisisLead).await;
    let mut lead = server.staff("lead").await;
    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "browser-key-notes-0003").await;
    let mut note = valid_note();
    note["risk_level"] = json!("high");
    note["suicidal_thoughts"] = json!("yes");
    let submit = format!("/api/contacts/{contact}/note/submit");
    let (status, _) = post(&server, &cookie, &submit, json!({"fields": note})).await;
    assert_eq!(status, 200);
    let page = lead.expect("page").await;
    assert_eq!(page["incident"]["contact"], contact);
    let (status, incidents) = get(&server, &lead_cookie, "/api/incidents?state=open").await;
    assert_eq!(status, 200);
    assert!(
        incidents
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["contact"] == contact),
        "{incidents}"
    );
    server.stop().await;
}
server_test!(a_high_risk_note_pages_the_crisis_team);

/// A high-risk note for a contact whose crisis was already handled does not page everyone again.
async fn a_note_after_a_resolved_incident_does_not_page_again(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let cookie = server.signed_in("op", Role::Operator).await;
    let lead_cookie = server.signed_in("lead", Role::CrisisLead).await;
    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "browser-key-notes-0004").await;
    let (status, flagged) = post(
        &server,
        &cookie,
        &format!("/api/contacts/{contact}/crisis"),
        json!({}),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {flagged}");
    let (_, open) = get(&server, &lead_cookie, "/api/incidents?state=open").await;
    let incident = open[0]["id"].as_i64().unwrap();
    let path = format!("/api/incidents/{incident}");
    assert!(
        post(
            &server,
            &lead_cookie,
            &format!("{path}/acknowledge"),
            json!({})
        )
        .await
        .0 < 300
    );
    let (status, body) = post(
        &server,
        &lead_cookie,
        &format!("{path}/resolve"),
        json!({"resolution": "talked it through; safe at home"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut note = valid_note();
    note["risk_level"] = json!("high");
    let submit = format!("/api/contacts/{contact}/note/submit");
    assert_eq!(
        post(&server, &cookie, &submit, json!({"fields": note}))
            .await
            .0,
        200
    );
    let (_, all) = get(&server, &lead_cookie, "/api/incidents?state=all").await;
    let of_contact = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["contact"] == contact)
        .count();
    assert_eq!(of_contact, 1, "no second incident: {all}");
    server.stop().await;
}
server_test!(a_note_after_a_resolved_incident_does_not_page_again);

/// A note submitted without a crisis, then amended to carry the crisis flag at high risk (the
/// caller's plan came to light at the very end) pages the crisis team as such a note would.
async fn an_amendment_to_crisis_level_pages_the_crisis_team(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let cookie = server.signed_in("op", Role::Operator).await;
    let lead_cookie = server.signed_in("lead", Role::CrisisLead).await;
    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "browser-key-notes-0005").await;
    let submit = format!("/api/contacts/{contact}/note/submit");
    let (status, submitted) =
        post(&server, &cookie, &submit, json!({"fields": valid_note()})).await;
    assert_eq!(status, 200, "{submitted}");
    let (_, open) = get(&server, &lead_cookie, "/api/incidents?state=open").await;
    assert_eq!(open, json!([]), "no crisis yet");
    let note = submitted["note"]["id"].as_i64().unwrap();
    let (status, amendment) = post(
        &server,
        &cookie,
        &format!("/api/notes/{note}/amendments"),
        json!({"reason": "the caller disclosed a plan at the very end",
               "changes": {"crisis_flag": true, "risk_level": "high", "suicidal_thoughts": "yes"}}),
    )
    .await;
    assert_eq!(status, 201, "{amendment}");
    wait_for_incident(&server, &lead_cookie, contact, 3, "nobody was paged").await;
    server.stop().await;
}
server_test!(an_amendment_to_crisis_level_pages_the_crisis_team);

/// A crisis note whose page cannot be written now (a passing database error) is stored, and its
/// page, recorded as due before the note, is raised by the auditor once the database is back.
async fn a_crisis_note_pages_after_a_passing_store_error(db: FreshDb) {
    let mut settings = test_settings(&db);
    settings.paging.audit_interval_ms = 200;
    settings.paging.audit_slack_ms = 100;
    let server = start(&db, settings).await;
    let cookie = server.signed_in("op", Role::Operator).await;
    let lead_cookie = server.signed_in("lead", Role::CrisisLead).await;
    let mut op = server.available_staff("op").await;
    let contact = handled_contact(&server, &mut op, "browser-key-notes-0006").await;
    let mut note = valid_note();
    note["risk_level"] = json!("high");
    note["suicidal_thoughts"] = json!("yes");
    note["crisis_flag"] = json!(true);
    let submit = format!("/api/contacts/{contact}/note/submit");
    incidents_fail(&db, true).await;
    let (status, body) = post(&server, &cookie, &submit, json!({"fields": note.clone()})).await;
    assert_eq!(status, 200, "the note is stored: {body}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // the auditor tries, and fails
    let (_, open) = get(&server, &lead_cookie, "/api/incidents?state=open").await;
    assert_eq!(open, json!([]));
    incidents_fail(&db, false).await;
    let (status, _) = post(&server, &cookie, &submit, json!({"fields": note})).await;
    assert_eq!(status, 409, "submitted once");
    wait_for_incident(
        &server,
        &lead_cookie,
        contact,
        5,
        "the crisis note never paged",
    )
    .await;
    server.stop().await;
}
server_test!(a_crisis_note_pages_after_a_passing_store_error);

/// A caller (known by `caller_key`) handled by `op` (signed in as `op_cookie`), whose note is
/// submitted and wrap-up finished; then `op` goes offline, so the caller's next contact goes to
/// someone else. Returns the handled contact's id.
async fn noted_contact(server: &Server, op_cookie: &str, caller_key: &str) -> i64 {
    let mut op = server.available_staff("op").await;
    let first = handled_contact(server, &mut op, caller_key).await;
    let (status, _) = post(
        server,
        op_cookie,
        &format!("/api/contacts/{first}/note/submit"),
        json!({"fields": valid_note()}),
    )
    .await;
    assert_eq!(status, 200);
    finish_wrap_up(&mut op, first).await;
    op.send(json!({"type": "set_presence", "presence": {"status": "offline"}}))
        .await;
    first
}

/// The caller's history on an assigned contact shows earlier contacts' notes: that is a read of those notes
/// and is written to the access log like any other (no record, no read).
async fn the_callers_history_is_recorded_in_the_access_log(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let op_cookie = server.signed_in("op", Role::Operator).await;
    let next_id = server.account("next", Role::Operator, &[]).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let first = noted_contact(&server, &op_cookie, "browser-key-notes-0099").await;
    // The caller comes back; `next`, who never handled the first contact, is offered it.
    let mut next = server.available_staff("next").await;
    let (_caller, joined, assigned) = server
        .accepted_contact(&mut next, join_with_key("browser-key-notes-0099"))
        .await;
    let second = joined["contact"].as_i64().unwrap();
    assert_eq!(
        assigned["contact"]["history"][0]["notes"][0]["risk_level"], "low",
        "{assigned}"
    );
    let (status, log) = get(&server, &sup, &format!("/api/access-log?contact={first}")).await;
    assert_eq!(status, 200);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["reader"] == next_id && e["what"] == "notes"),
        "`next` read the first contact's notes and the access log does not say so: {log}"
    );
    // A supervisor who joins the live contact reads its transcript: that is recorded too.
    let sup_id = id_of(&server.store, "sup").await;
    let mut watcher = server.staff("sup").await;
    join_contact(&mut watcher, second, "monitor").await;
    let (_, log) = get(&server, &sup, &format!("/api/access-log?contact={second}")).await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["reader"] == sup_id && e["what"] == "transcript"),
        "{log}"
    );
    server.stop().await;
}
server_test!(the_callers_history_is_recorded_in_the_access_log);

/// When the store fails while the operator's `assigned` frame is built (here, recording that they
/// read the caller's history), the console is not left without the contact it now holds, with
/// only an error that fades: it is told, closed with 1013, and its new connection's `hello`
/// holds the contact once the store answers again.
async fn a_contact_the_store_could_not_read_for_the_console_comes_back_on_reconnect(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let op_cookie = server.signed_in("op", Role::Operator).await;
    server.account("next", Role::Operator, &[]).await;
    noted_contact(&server, &op_cookie, "browser-key-notes-0123").await;

    let mut next = server.available_staff("next").await;
    let (_caller, joined) = server
        .caller_joins(join_with_key("browser-key-notes-0123"))
        .await;
    let second = joined["contact"].as_i64().unwrap();
    next.expect_where("offer", |f| f["contact"]["id"] == second)
        .await;
    writes_fail(&db, "access_log", true).await;
    next.send(json!({"type": "accept", "contact": second}))
        .await;
    let error = next.expect("error").await;
    assert_eq!(error["code"], "internal", "{error}");
    let (code, _) = next.closed_with_reason().await.expect("a close frame");
    assert_eq!(code, 1013);

    writes_fail(&db, "access_log", false).await;
    let (_next, hello) = server.staff_with_hello("next").await;
    assert_eq!(hello["contacts"][0]["summary"]["id"], second, "{hello}");
    assert_eq!(
        hello["contacts"][0]["history"][0]["notes"][0]["risk_level"], "low",
        "{hello}"
    );
    server.stop().await;
}
server_test!(a_contact_the_store_could_not_read_for_the_console_comes_back_on_reconnect);

/// Two amendments made at the same moment are each checked against the note as the other left
/// it, as if made one after the other. Here each fits the submitted note alone (a silent call
/// with everything filled in: one makes it a counselling contact, the other clears the summary a
/// silent call does not need), but together they would make a counselling note without its
/// summary, which no one could have written: one of them is stored, the other refused field by
/// field, and the note as amended still satisfies its form. Several notes, to give the two
/// requests every chance to meet.
async fn concurrent_amendments_are_checked_one_after_the_other(db: FreshDb) {
    let server = start(&db, test_settings(&db)).await;
    let op_cookie = server.signed_in("op", Role::Operator).await;
    let sup = server.signed_in("sup", Role::Supervisor).await;
    let mut op = server.available_staff("op").await;
    for round in 0..6 {
        let contact = handled_contact(
            &server,
            &mut op,
            &format!("browser-key-concurrent-{round:04}"),
        )
        .await;
        let mut silent = valid_note();
        silent["call_type"] = json!("silent");
        let (status, submitted) = post(
            &server,
            &op_cookie,
            &format!("/api/contacts/{contact}/note/submit"),
            json!({"fields": silent}),
        )
        .await;
        assert_eq!(status, 200, "{submitted}");
        let amend = format!("/api/notes/{}/amendments", submitted["note"]["id"]);
        let (counselling, cleared) = tokio::join!(
            post(
                &server,
                &op_cookie,
                &amend,
                json!({"reason": "it was a real conversation", "changes": {"call_type": "counselling"}}),
            ),
            post(
                &server,
                &sup,
                &amend,
                json!({"reason": "a silent call keeps no summary", "changes": {"summary": null}}),
            ),
        );
        let mut statuses = [counselling.0, cleared.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [201, 422],
            "round {round}: {counselling:?} {cleared:?}"
        );
        let refused = if counselling.0 == 422 {
            &counselling.1
        } else {
            &cleared.1
        };
        assert_eq!(refused["code"], "invalid_fields", "{refused}");
        assert_eq!(refused["fields"][0]["field"], "summary", "{refused}");

        let (_, notes) = get(&server, &sup, &format!("/api/contacts/{contact}/notes")).await;
        let view = &notes[0];
        assert_eq!(view["note"]["amendments"].as_array().unwrap().len(), 1);
        let effective = &view["effective"];
        let counselling_without_summary =
            effective["call_type"] == "counselling" && effective["summary"].is_null();
        assert!(
            !counselling_without_summary,
            "round {round}: the amended note breaks its form: {effective}"
        );
        finish_wrap_up(&mut op, contact).await;
    }
    server.stop().await;
}
server_test!(concurrent_amendments_are_checked_one_after_the_other);
