//! The protocol contract, generated from the Rust types: JSON Schema for every WebSocket frame and
//! an OpenAPI 3.1 document for the HTTP API. `hotline proto` writes it to `proto/`; a test fails
//! when the committed files differ from what the code generates.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::generate::SchemaSettings;
use schemars::{SchemaGenerator, schema_for};
use serde_json::{Value, json};

use crate::admin::{
    AccountPatch, AccountView, NewAccountRequest, PasswordReset, SkillDescription, SkillLevel,
};
use crate::auth::http::{LoginRequest, Me, PasswordChange};
use crate::error::ErrorBody;
use crate::gateway::protocol::{
    CallerEvent, CallerRequest, PROTOCOL_VERSION, StaffEvent, StaffRequest,
};
use crate::gateway::public::PublicInfo;
use crate::queues::QueueDefinition;
use crate::store::SkillInfo;

fn pretty(value: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("schemas serialize");
    s.push('\n');
    s
}

/// Every generated file, by name under `proto/`.
pub fn render() -> BTreeMap<&'static str, String> {
    let mut files = BTreeMap::new();
    files.insert(
        "ws/caller-request.schema.json",
        pretty(&schema_for!(CallerRequest)),
    );
    files.insert(
        "ws/caller-event.schema.json",
        pretty(&schema_for!(CallerEvent)),
    );
    files.insert(
        "ws/staff-request.schema.json",
        pretty(&schema_for!(StaffRequest)),
    );
    files.insert(
        "ws/staff-event.schema.json",
        pretty(&schema_for!(StaffEvent)),
    );
    files.insert("openapi.json", pretty(&openapi()));
    files
}

/// Writes every generated file under `dir`.
pub fn write(dir: &Path) -> std::io::Result<()> {
    for (name, text) in render() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

struct Route {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// Who may call it: "public", "signed in", or the roles.
    access: &'static str,
    request: Option<Value>,
    response: Option<Value>,
    /// Answers 201 Created.
    created: bool,
}

fn openapi() -> Value {
    // OpenAPI 3.1 schemas are JSON Schema 2020-12; only the place of shared definitions differs.
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = SchemaGenerator::new(settings);
    let body = |schema: schemars::Schema| Some(schema.to_value());
    macro_rules! s {
        ($t:ty) => {
            body(generator.subschema_for::<$t>())
        };
    }
    let routes = vec![
        Route {
            method: "post",
            path: "/api/login",
            summary: "Sign in; sets the session cookie",
            access: "public (rate-limited per address)",
            request: s!(LoginRequest),
            response: s!(Me),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/logout",
            summary: "Sign out",
            access: "signed in",
            request: None,
            response: None,
            created: false,
        },
        Route {
            method: "get",
            path: "/api/me",
            summary: "The signed-in account",
            access: "signed in",
            request: None,
            response: s!(Me),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/me/password",
            summary: "Change your password (other sessions end)",
            access: "signed in",
            request: s!(PasswordChange),
            response: None,
            created: false,
        },
        Route {
            method: "get",
            path: "/api/public/info",
            summary: "Queues, opening state and the confidentiality statement for the caller page",
            access: "public",
            request: None,
            response: s!(PublicInfo),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/staff",
            summary: "Active colleagues with their routing state (for transfers and names)",
            access: "signed in",
            request: None,
            response: s!(Vec<crate::gateway::public::StaffMember>),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/notes/form",
            summary: "The note form in force",
            access: "signed in",
            request: None,
            response: s!(crate::notes::form::NoteForm),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/contacts/{id}/notes",
            summary: "A contact's notes, with amendments and how each reads now",
            access: "people who handled it, crisis_lead, supervisor, admin",
            request: None,
            response: s!(Vec<crate::notes::http::NoteView>),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/contacts/{id}/note",
            summary: "Save your draft note (not validated)",
            access: "operators who handled the contact",
            request: s!(crate::notes::http::NoteDraft),
            response: s!(crate::notes::http::NoteView),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/contacts/{id}/note/submit",
            summary: "Submit and lock your note; refused field by field (invalid_fields) with the draft kept. High/imminent risk or the crisis flag pages the crisis team",
            access: "operators who handled the contact",
            request: s!(crate::notes::http::NoteDraft),
            response: s!(crate::notes::http::NoteView),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/notes/{id}/amendments",
            summary: "Amend a submitted note (author within the window, supervisors any time); the original is kept",
            access: "author, supervisor, admin",
            request: s!(crate::notes::http::AmendmentRequest),
            response: s!(crate::store::notes::Amendment),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/wallboard",
            summary: "The floor now: contacts and operators",
            access: "supervisor, crisis_lead, admin",
            request: None,
            response: s!(StaffEvent),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/contacts/{id}/transcript",
            summary: "A contact's transcript, a page at a time, newest lines first (?before=seq&limit=1..1000; the read is recorded in the access log)",
            access: "people in the contact, supervisor, admin",
            request: None,
            response: s!(crate::gateway::public::TranscriptLines),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/queues",
            summary: "Queue definitions",
            access: "signed in",
            request: None,
            response: s!(Vec<QueueDefinition>),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/skills",
            summary: "The skill catalogue",
            access: "signed in",
            request: None,
            response: s!(Vec<SkillInfo>),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/admin/accounts",
            summary: "All accounts",
            access: "admin, supervisor",
            request: None,
            response: s!(Vec<AccountView>),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/admin/accounts",
            summary: "Create an account (must change password at first sign-in)",
            access: "admin",
            request: s!(NewAccountRequest),
            response: s!(AccountView),
            created: true,
        },
        Route {
            method: "patch",
            path: "/api/admin/accounts/{id}",
            summary: "Change an account; disabling ends its sessions",
            access: "admin",
            request: s!(AccountPatch),
            response: s!(AccountView),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/admin/accounts/{id}/skills",
            summary: "Replace an account's skills (routing changes at once)",
            access: "admin",
            request: s!(Vec<SkillLevel>),
            response: s!(AccountView),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/admin/accounts/{id}/password",
            summary: "Reset a password (must change at next sign-in)",
            access: "admin",
            request: s!(PasswordReset),
            response: None,
            created: false,
        },
        Route {
            method: "put",
            path: "/api/admin/skills/{skill}",
            summary: "Add or describe a skill",
            access: "admin",
            request: s!(SkillDescription),
            response: None,
            created: false,
        },
        Route {
            method: "put",
            path: "/api/admin/queues/{id}",
            summary: "Create or change a queue",
            access: "admin",
            request: s!(QueueDefinition),
            response: s!(QueueDefinition),
            created: false,
        },
        Route {
            method: "delete",
            path: "/api/admin/queues/{id}",
            summary: "Delete an empty queue no other queue overflows to",
            access: "admin",
            request: None,
            response: None,
            created: false,
        },
        Route {
            method: "post",
            path: "/api/contacts/{id}/crisis",
            summary: "Raise a crisis flag: opens an incident and pages the crisis team at once (or adds the flag to the contact's open incident); the body is optional",
            access: "the operator holding the contact, supervisor, crisis_lead",
            request: s!(crate::paging::http::CrisisRequest),
            response: s!(crate::paging::http::CrisisFlagged),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/contacts/{id}/crisis",
            summary: "The contact's latest crisis incident, open or resolved, or null if it was never flagged (an operator's desk reads it after a reload)",
            access: "the operator holding the contact, supervisor, crisis_lead",
            request: None,
            response: s!(Option<crate::paging::IncidentView>),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/incidents",
            summary: "Incidents, newest first (?state=open|triggered|acknowledged|resolved|all, default open; ?limit= up to 500)",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(Vec<crate::paging::IncidentView>),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/incidents/{id}",
            summary: "An incident with its whole timeline",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(crate::paging::IncidentDetail),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/incidents/{id}/acknowledge",
            summary: "Acknowledge: paging stops; the acknowledgement timeout starts (again)",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(crate::paging::IncidentView),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/incidents/{id}/resolve",
            summary: "Resolve; if emergency services were contacted, help must be confirmed first (or unconfirmed_reason given)",
            access: "crisis_lead, supervisor, admin",
            request: s!(crate::paging::http::ResolveRequest),
            response: s!(crate::paging::IncidentView),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/incidents/{id}/steps",
            summary: "Record a step: joined the contact, emergency services contacted, help confirmed, referral made, outcome",
            access: "crisis_lead, supervisor, admin",
            request: s!(crate::paging::model::StepRequest),
            response: s!(crate::paging::IncidentDetail),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/oncall",
            summary: "Who the first level of the default escalation policy pages now",
            access: "signed in",
            request: None,
            response: s!(crate::paging::http::OnCallNow),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/schedules/{id}/oncall",
            summary: "Who a schedule has on call now, or ?at= (unix ms or RFC 3339)",
            access: "signed in",
            request: None,
            response: s!(crate::paging::http::ScheduleOnCall),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/schedules/{id}/calendar.ics",
            summary: "The schedule as iCalendar (text/calendar), from now for ?weeks= (1-26, default 4)",
            access: "signed in",
            request: None,
            response: Some(json!({ "type": "string", "contentMediaType": "text/calendar" })),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/me/calendar-feed",
            summary: "A new secret calendar feed token for the signed-in person (the one they had stops working): calendar apps, which send no cookie, read schedules with it",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(crate::paging::http::CalendarFeed),
            created: true,
        },
        Route {
            method: "delete",
            path: "/api/me/calendar-feed",
            summary: "Revoke the signed-in person's calendar feed token",
            access: "signed in",
            request: None,
            response: None,
            created: false,
        },
        Route {
            method: "get",
            path: "/api/calendar-feeds/{token}/schedules/{id}/calendar.ics",
            summary: "The schedule as iCalendar for a calendar app, without a cookie: the token stands for an active crisis_lead, supervisor or admin (?weeks= 1-26, default 4); an unknown or revoked token is not_found",
            access: "anyone with the token",
            request: None,
            response: Some(json!({ "type": "string", "contentMediaType": "text/calendar" })),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/admin/escalation-policies",
            summary: "Escalation policies",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(Vec<crate::paging::policy::EscalationPolicy>),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/admin/escalation-policies",
            summary: "Create a policy (422 naming each unknown person or schedule; default_for_crisis moves the default flag here)",
            access: "admin",
            request: s!(crate::paging::policy::PolicyDefinition),
            response: s!(crate::paging::policy::EscalationPolicy),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/admin/escalation-policies/{id}",
            summary: "An escalation policy",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(crate::paging::policy::EscalationPolicy),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/admin/escalation-policies/{id}",
            summary: "Replace a policy (incidents already paging keep the policy they started with)",
            access: "admin",
            request: s!(crate::paging::policy::PolicyDefinition),
            response: s!(crate::paging::policy::EscalationPolicy),
            created: false,
        },
        Route {
            method: "delete",
            path: "/api/admin/escalation-policies/{id}",
            summary: "Delete a policy",
            access: "admin",
            request: None,
            response: None,
            created: false,
        },
        Route {
            method: "get",
            path: "/api/admin/schedules",
            summary: "On-call schedules",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(Vec<crate::paging::schedule::Schedule>),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/admin/schedules",
            summary: "Create a schedule (422 naming each unknown person)",
            access: "admin",
            request: s!(crate::paging::schedule::ScheduleDefinition),
            response: s!(crate::paging::schedule::Schedule),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/admin/schedules/{id}",
            summary: "An on-call schedule",
            access: "crisis_lead, supervisor, admin",
            request: None,
            response: s!(crate::paging::schedule::Schedule),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/admin/schedules/{id}",
            summary: "Replace a schedule",
            access: "admin",
            request: s!(crate::paging::schedule::ScheduleDefinition),
            response: s!(crate::paging::schedule::Schedule),
            created: false,
        },
        Route {
            method: "delete",
            path: "/api/admin/schedules/{id}",
            summary: "Delete a schedule no escalation policy pages (else 409)",
            access: "admin",
            request: None,
            response: None,
            created: false,
        },
        Route {
            method: "get",
            path: "/api/admin/paging-addresses/{account}",
            summary: "Where a person is paged besides the console",
            access: "admin",
            request: None,
            response: s!(crate::paging::http::PagingAddresses),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/admin/paging-addresses/{account}",
            summary: "Set a person's webhook (e.g. an SMS gateway) and e-mail; absent fields are removed",
            access: "admin",
            request: s!(crate::paging::http::PagingAddresses),
            response: s!(crate::paging::http::PagingAddresses),
            created: false,
        },
        // Quality, training and assessment (src/quality). Periods: ?from=&to= as local dates (YYYY-MM-DD, `to` included), RFC 3339 or unix ms.
        Route {
            method: "get",
            path: "/api/reports/kpi",
            summary: "KPIs of the contacts that arrived in a period (?from=&to=, today by default; ?queue=&operator=&channel=): answer rate, ASA, service levels, abandons (short apart), AHT, occupancy, transfers, high/imminent-risk answer times, crisis incidents; with per-queue and per-operator rows. ?format=csv for CSV",
            access: "supervisor, admin",
            request: None,
            response: s!(crate::quality::reports::KpiReport),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/reports/trends",
            summary: "Daily contacts by queue, risk level, note category and call type, with week-over-week change and alerts on sudden rises (?from=&to= local days, the last 28 by default). ?format=csv for CSV",
            access: "supervisor, admin",
            request: None,
            response: s!(crate::quality::trends::TrendReport),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/audits",
            summary: "The audit queue (?status=pending|scored|acknowledged&operator=&cycle=&limit=); operators get their own scored audits",
            access: "supervisor, admin; operators (their own)",
            request: None,
            response: s!(Vec<crate::quality::http::AuditView>),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/audits",
            summary: "Add a contact to the audit queue by hand",
            access: "supervisor, admin",
            request: s!(crate::quality::http::NewAuditRequest),
            response: s!(crate::quality::http::AuditView),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/audits/scorecard",
            summary: "The scorecard in force (items scored 0/1/2 or null for not applicable)",
            access: "signed in",
            request: None,
            response: s!(crate::quality::audits::Scorecard),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/audits/sample",
            summary: "Draw a cycle's audits now: every crisis contact plus a reproducible share of each operator's contacts (already drawn audits stay)",
            access: "supervisor, admin",
            request: s!(crate::quality::http::SampleRequest),
            response: s!(crate::quality::http::SampleResult),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/audits/{id}",
            summary: "An audit with the transcript, the notes as amended and the event timeline (the read is recorded in the access log)",
            access: "supervisor, admin; the audited operator once scored",
            request: None,
            response: s!(crate::quality::http::AuditDetail),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/audits/{id}/score",
            summary: "Score (or re-score until acknowledged, or until the assessment is signed off with this score: then 409) with written feedback; refused item by item (invalid_fields)",
            access: "supervisor, admin (not their own contact)",
            request: s!(crate::quality::http::ScoreRequest),
            response: s!(crate::quality::http::AuditView),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/audits/{id}/acknowledge",
            summary: "The audited operator acknowledges the feedback (optional comment; body optional)",
            access: "the audited operator",
            request: s!(crate::quality::http::AcknowledgeRequest),
            response: s!(crate::quality::http::AuditView),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/training/modules",
            summary: "The training catalogue (\"8+x\": base and extra modules with class hours)",
            access: "signed in",
            request: None,
            response: s!(Vec<crate::store::quality::TrainingModule>),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/training/modules/{id}",
            summary: "Add or change a module",
            access: "supervisor, admin",
            request: s!(crate::quality::http::ModuleRequest),
            response: s!(crate::store::quality::TrainingModule),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/training/sessions",
            summary: "Training sessions (?from=&to= local days, this year by default); operators get the ones they attended",
            access: "signed in",
            request: None,
            response: s!(Vec<crate::store::quality::TrainingSession>),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/training/sessions",
            summary: "Record a training session with its modules and attendees",
            access: "supervisor, admin",
            request: s!(crate::quality::http::SessionRequest),
            response: s!(crate::store::quality::TrainingSession),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/training/sessions/{id}",
            summary: "A training session",
            access: "supervisor, admin; attendees",
            request: None,
            response: s!(crate::store::quality::TrainingSession),
            created: false,
        },
        Route {
            method: "put",
            path: "/api/training/sessions/{id}/attendees/{account}/questionnaire",
            summary: "Record an attendee's post-training questionnaire",
            access: "supervisor, admin; the attendee",
            request: s!(crate::quality::http::QuestionnaireRequest),
            response: s!(crate::store::quality::TrainingSession),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/training/hours",
            summary: "Training per person for a year (?year=&account=): sessions, systematic trainings, class hours, hours with questionnaire, base modules missing",
            access: "supervisor, admin; operators (their own)",
            request: None,
            response: s!(crate::quality::http::TrainingHours),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/training/certifications",
            summary: "Certifications (?account=)",
            access: "supervisor, admin; operators (their own)",
            request: None,
            response: s!(Vec<crate::store::quality::Certification>),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/training/certifications",
            summary: "Grant a certification once its modules are completed and its assessment passed; its routing skill applies at once",
            access: "supervisor, admin",
            request: s!(crate::quality::http::GrantRequest),
            response: s!(crate::store::quality::Certification),
            created: true,
        },
        Route {
            method: "post",
            path: "/api/training/certifications/{id}/revoke",
            summary: "Revoke a certification; its skill is removed and routing stops at once",
            access: "supervisor, admin",
            request: s!(crate::quality::http::RevokeRequest),
            response: s!(crate::store::quality::Certification),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/assessments/{cycle}",
            summary: "A cycle's assessment (e.g. 2026-Q1): per operator KPIs, audits, training against the requirement, computed outcome and sign-off. ?format=csv for CSV",
            access: "supervisor, admin",
            request: None,
            response: s!(crate::quality::assessment::CycleAssessment),
            created: false,
        },
        Route {
            method: "get",
            path: "/api/assessments/{cycle}/report.html",
            summary: "The cycle's assessment as a printable page (text/html)",
            access: "supervisor, admin",
            request: None,
            response: Some(json!({ "type": "string", "contentMediaType": "text/html" })),
            created: false,
        },
        Route {
            method: "post",
            path: "/api/assessments/{cycle}/{operator}/sign-off",
            summary: "Sign an operator's assessment off (once); the figures are kept as they are now; a different outcome needs a comment",
            access: "supervisor",
            request: s!(crate::quality::http::SignOffRequest),
            response: s!(crate::store::quality::SignOff),
            created: true,
        },
        Route {
            method: "get",
            path: "/api/access-log",
            summary: "Who read which contact's transcript, notes or audit view, newest first (?contact=&reader=&from=&to=&limit=)",
            access: "supervisor, admin",
            request: None,
            response: s!(Vec<crate::store::quality::AccessRecord>),
            created: false,
        },
    ];
    let error = s!(ErrorBody);
    let mut paths = serde_json::Map::new();
    for r in routes {
        let mut op = json!({
            "summary": r.summary,
            "description": format!("Access: {}.", r.access),
            "responses": {
                "default": { "description": "An error with a stable code", "content": { "application/json": { "schema": error } } }
            }
        });
        let ok = match &r.response {
            Some(schema) => {
                json!({ "description": "OK", "content": { "application/json": { "schema": schema } } })
            }
            None => json!({ "description": "Done (no content)" }),
        };
        let status = match (r.method, &r.response) {
            (_, None) => "204",
            ("post", Some(_)) if r.created => "201",
            _ => "200",
        };
        op["responses"][status] = ok;
        if let Some(schema) = &r.request {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
        }
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        let entry = paths.entry(r.path).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    let schemas: serde_json::Map<String, Value> =
        generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hotline",
            "version": format!("{PROTOCOL_VERSION}"),
            "description": "HTTP API of the hotline server. WebSocket frames (/ws/caller, /ws/staff) are described by the JSON Schemas under ws/. Errors answer with ErrorBody and a stable code."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "session": { "type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE } }
        }
    })
}

#[cfg(test)]
mod tests {
    /// proto/ is the contract: it must be exactly what the code generates.
    #[test]
    fn committed_proto_matches_the_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let mut stale = Vec::new();
        for (name, text) in super::render() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            if committed != text {
                stale.push(name);
            }
        }
        assert!(
            stale.is_empty(),
            "proto/ is out of date for {stale:?}; run `cargo run -- proto` and commit the result"
        );
    }
}
