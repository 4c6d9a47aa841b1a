//! The quality API: KPI and trend reports (JSON and CSV), audits, training and certifications,
//! assessment cycles (JSON, CSV, printable HTML), the access log.
//!
//! Access: reports, the audit queue, training records, assessments and the access log are for
//! supervisors and administrators; an operator sees their own audits (once scored), their own
//! training and certifications; only the audited operator acknowledges an audit and only a
//! supervisor signs an assessment off.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::assessment::{self, AuditSummary, CycleAssessment, OperatorAssessment, Outcome, Rules};
use super::audits::{ScoreSummary, Scorecard};
use super::kpi::{self, KpiFilter};
use super::period::{Cycle, local_day, parse_bound, parse_day, query_period};
use super::reports;
use super::training::{self, TrainingSummary};
use super::{cycle_at, record_access, sample_cycle};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{
    CLIENT_YEARS, Channel, ContactId, OUTSIDE_CLIENT_YEARS, OperatorId, QueueId, Role, Timestamp,
};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query, query_field, whole_number};
use crate::gateway::protocol::StaffLine;
use crate::notes::http::NoteView;
use crate::store::quality::{
    AccessFilter, AccessKind, AccessRecord, Attendee, Audit, AuditFilter, AuditReason, AuditScore,
    AuditStatus, Certification, ModuleKind, NewAudit, NewCertification, NewTrainingSession, Scores,
    SignOff, TrainingModule, TrainingSession,
};
use crate::store::{StoreError, StoredEvent};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reports/kpi", get(kpi_report))
        .route("/reports/trends", get(trends_report))
        .route("/audits", get(list_audits).post(add_audit))
        .route("/audits/scorecard", get(scorecard))
        .route("/audits/sample", post(sample))
        .route("/audits/{id}", get(audit_detail))
        .route("/audits/{id}/score", put(score_audit))
        .route("/audits/{id}/acknowledge", post(acknowledge_audit))
        .route("/training/modules", get(list_modules))
        .route("/training/modules/{id}", put(put_module))
        .route(
            "/training/sessions",
            get(list_sessions).post(create_session),
        )
        .route("/training/sessions/{id}", get(session))
        .route(
            "/training/sessions/{id}/attendees/{account}/questionnaire",
            put(set_questionnaire),
        )
        .route("/training/hours", get(training_hours))
        .route(
            "/training/certifications",
            get(list_certifications).post(grant_certification),
        )
        .route(
            "/training/certifications/{id}/revoke",
            post(revoke_certification),
        )
        .route("/assessments/{cycle}", get(assessment))
        .route("/assessments/{cycle}/report.html", get(assessment_html))
        .route("/assessments/{cycle}/{operator}/sign-off", post(sign_off))
        .route("/access-log", get(access_log))
}

const MANAGERS: &[Role] = &[Role::Supervisor, Role::Admin];

fn is_manager(user: &CurrentUser) -> bool {
    MANAGERS.contains(&user.role())
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Invalid(message.into())
}

/// `?format=csv` or JSON (the default).
fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format.unwrap_or("json") {
        "json" | "" => Ok(false),
        "csv" => Ok(true),
        _ => Err(invalid("format: must be json or csv")),
    }
}

fn csv_response(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn limit(raw: Option<i64>) -> i64 {
    raw.unwrap_or(200).clamp(1, 5_000)
}

// ---------------------------------------------------------------------------------------------
// Reports

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct KpiQuery {
    /// A local date (`YYYY-MM-DD`), an RFC 3339 time or unix ms; today by default.
    pub from: Option<String>,
    /// A local date (that whole day included), an RFC 3339 time or unix ms; now by default.
    pub to: Option<String>,
    pub queue: Option<String>,
    pub operator: Option<String>,
    pub channel: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn kpi_report(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<KpiQuery>,
) -> Result<Response, ApiError> {
    user.require(MANAGERS)?;
    let csv = wants_csv(q.format.as_deref())?;
    let settings = &state.settings.quality;
    let tz = settings.time_zone.0;
    let now = Timestamp::now();
    let period = query_period(tz, q.from.as_deref(), q.to.as_deref(), now).map_err(invalid)?;
    let filter = KpiFilter {
        queue: query_field(q.queue.as_deref(), |s| Ok(QueueId::parse(s)?))?,
        operator: query_field(q.operator.as_deref(), whole_number("operator"))?.map(OperatorId),
        channel: query_field(q.channel.as_deref(), |s| Ok(Channel::parse(s)?))?,
    };
    let inputs = reports::load(&state.store, settings, period, now).await?;
    let report = reports::kpi_report(tz, &inputs, &filter);
    if csv {
        Ok(csv_response("kpi.csv", reports::kpi_csv(&report)))
    } else {
        Ok(Json(report).into_response())
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TrendsQuery {
    /// First local day (`YYYY-MM-DD`); the last 28 days by default.
    pub from: Option<String>,
    /// Last local day, included; today by default.
    pub to: Option<String>,
    pub format: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn trends_report(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<TrendsQuery>,
) -> Result<Response, ApiError> {
    user.require(MANAGERS)?;
    let csv = wants_csv(q.format.as_deref())?;
    let settings = &state.settings.quality;
    let tz = settings.time_zone.0;
    let now = Timestamp::now();
    let default_from = (local_day(tz, now) - chrono::Duration::days(27))
        .format("%Y-%m-%d")
        .to_string();
    let from = q
        .from
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(&default_from);
    let period = query_period(tz, Some(from), q.to.as_deref(), now).map_err(invalid)?;
    let report = reports::trends(&state.store, settings, &state.note_form, period).await?;
    if csv {
        Ok(csv_response("trends.csv", reports::trends_csv(&report)))
    } else {
        Ok(Json(report).into_response())
    }
}

// ---------------------------------------------------------------------------------------------
// Audits

/// An audit with its section and total percentages (once scored).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditView {
    pub audit: Audit,
    pub summary: Option<ScoreSummary>,
}

/// Everything a supervisor reviews: the audit, the transcript, the notes as amended, and the
/// contact's event timeline.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AuditDetail {
    pub audit: Audit,
    pub summary: Option<ScoreSummary>,
    pub transcript: Vec<StaffLine>,
    pub notes: Vec<NoteView>,
    pub timeline: Vec<StoredEvent>,
}

fn view(audit: Audit) -> AuditView {
    let summary = summary_of(&audit);
    AuditView { audit, summary }
}

/// The percentages of a scored audit, by the scorecard it was scored with.
fn summary_of(audit: &Audit) -> Option<ScoreSummary> {
    let card: Scorecard = serde_json::from_value(audit.scorecard.clone()?).ok()?;
    card.score(audit.scores.as_ref()?).ok()
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AuditQuery {
    /// `pending`, `scored` or `acknowledged`.
    pub status: Option<String>,
    pub operator: Option<String>,
    pub cycle: Option<String>,
    pub limit: Option<i64>,
}

/// The audit queue (supervisors), or an operator's own scored audits.
pub async fn list_audits(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let status = query_field(q.status.as_deref(), |s| {
        AuditStatus::parse(s)
            .ok_or_else(|| invalid("status: must be pending, scored or acknowledged"))
    })?;
    let mut filter = AuditFilter {
        status,
        operator: query_field(q.operator.as_deref(), whole_number("operator"))?.map(OperatorId),
        cycle: q.cycle.filter(|c| !c.is_empty()),
    };
    if !is_manager(&user) {
        if filter.operator.is_some_and(|o| o != user.id()) {
            return Err(ApiError::Forbidden);
        }
        filter.operator = Some(user.id());
    }
    let audits = state.store.audits(&filter, limit(q.limit)).await?;
    Ok(Json(
        audits
            .into_iter()
            // Operators see their audits once scored, never the queue of pending ones.
            .filter(|a| is_manager(&user) || a.status != AuditStatus::Pending)
            .map(view)
            .collect(),
    ))
}

pub async fn scorecard(State(state): State<AppState>, _user: CurrentUser) -> Json<Scorecard> {
    Json(state.quality.scorecard.as_ref().clone())
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleRequest {
    /// The cycle to draw (e.g. `2026-Q1`); the current one by default.
    #[serde(default)]
    pub cycle: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SampleResult {
    pub cycle: String,
    /// Audits drawn now (earlier draws of the cycle are kept as they were).
    pub new: u64,
}

fn parse_cycle(state: &AppState, raw: &str) -> Result<Cycle, ApiError> {
    Cycle::parse(raw, state.settings.quality.cycle_months).map_err(invalid)
}

/// Draws a cycle's audits now (the server also does it every hour).
#[tracing::instrument(skip_all)]
pub async fn sample(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<SampleRequest>,
) -> Result<Json<SampleResult>, ApiError> {
    user.require(MANAGERS)?;
    let cycle = match req.cycle.as_deref() {
        Some(raw) => parse_cycle(&state, raw)?,
        None => cycle_at(&state.settings.quality, Timestamp::now()),
    };
    let new = sample_cycle(&state, cycle).await?;
    Ok(Json(SampleResult {
        cycle: cycle.id(),
        new,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAuditRequest {
    pub contact: ContactId,
    /// The operator whose handling is audited; they must have been connected to the contact.
    pub operator: OperatorId,
}

/// A supervisor adds a contact to the audit queue by hand.
#[tracing::instrument(skip_all)]
pub async fn add_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<NewAuditRequest>,
) -> Result<(StatusCode, Json<AuditView>), ApiError> {
    user.require(MANAGERS)?;
    let contact = state.store.contact(req.contact).await?;
    let took_it = state
        .store
        .events_of_contact(req.contact)
        .await?
        .iter()
        .any(|e| e.kind == "connect" && e.operator == Some(req.operator));
    if !took_it {
        return Err(invalid("operator: was never connected to this contact"));
    }
    let cycle = cycle_at(&state.settings.quality, contact.entered_at).id();
    let now = Timestamp::now();
    state
        .store
        .insert_audits(
            &[NewAudit {
                contact: req.contact,
                operator: req.operator,
                cycle: cycle.clone(),
                reason: AuditReason::Manual,
            }],
            now,
        )
        .await?;
    let audit = state
        .store
        .audits(
            &AuditFilter {
                operator: Some(req.operator),
                cycle: Some(cycle),
                status: None,
            },
            5_000,
        )
        .await?
        .into_iter()
        .find(|a| a.contact == req.contact)
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(view(audit))))
}

/// May `user` see this audit? Supervisors always; the audited operator once it is scored.
fn may_see(user: &CurrentUser, audit: &Audit) -> Result<(), ApiError> {
    if is_manager(user) || (audit.operator == user.id() && audit.status != AuditStatus::Pending) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The audit with the transcript, the notes as amended and the event timeline. The read is
/// recorded in the access log.
#[tracing::instrument(skip_all, fields(audit = id))]
pub async fn audit_detail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<AuditDetail>, ApiError> {
    let audit = state.store.audit(id).await?;
    may_see(&user, &audit)?;
    record_access(&state, &user, audit.contact, AccessKind::Audit).await?;
    let transcript = state
        .store
        .messages(audit.contact)
        .await?
        .iter()
        .map(StaffLine::from)
        .collect();
    let notes = state
        .store
        .notes_of_contact(audit.contact)
        .await?
        .into_iter()
        .map(NoteView::from)
        .collect();
    let timeline = state.store.events_of_contact(audit.contact).await?;
    Ok(Json(AuditDetail {
        summary: summary_of(&audit),
        audit,
        transcript,
        notes,
        timeline,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// Every scorecard item: 0, 1, 2, or null for not applicable.
    pub scores: Scores,
    /// Written feedback for the operator; required.
    pub feedback: String,
}

/// Scores an audit, or re-scores it until the operator has acknowledged it or their assessment
/// for its cycle is signed off with its score (the signed form keeps that score). An audit
/// still pending at the sign-off is scored afterwards all the same: the score reaches the
/// operator as feedback and the assessment lists it as a change since the sign-off.
#[tracing::instrument(skip_all, fields(audit = id))]
pub async fn score_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<ScoreRequest>,
) -> Result<Json<AuditView>, ApiError> {
    user.require(MANAGERS)?;
    let audit = state.store.audit(id).await?;
    if audit.operator == user.id() {
        return Err(invalid("you cannot audit your own contact"));
    }
    let feedback = req.feedback.trim();
    if feedback.is_empty() || feedback.chars().count() > 4_000 {
        return Err(invalid(
            "feedback: written feedback is required (at most 4000 characters)",
        ));
    }
    let card = state.quality.scorecard.as_ref();
    let summary = card.score(&req.scores).map_err(ApiError::InvalidFields)?;
    let scored = state
        .store
        .score_audit(
            id,
            &AuditScore {
                auditor: user.id(),
                scorecard: serde_json::to_value(card).map_err(|e| ApiError::Internal(e.into()))?,
                scores: req.scores,
                points: summary.points,
                max_points: summary.max_points,
                feedback: feedback.to_owned(),
                at: Timestamp::now(),
            },
        )
        .await;
    let scored = match scored {
        Err(StoreError::Conflict) => {
            let audit = state.store.audit(id).await?;
            return Err(ApiError::Conflict(
                if audit.status == AuditStatus::Acknowledged {
                    "the operator has acknowledged this audit".into()
                } else {
                    format!(
                        "the operator's assessment for {} was signed off with this audit's score, \
                     which is now final",
                        audit.cycle
                    )
                },
            ));
        }
        other => other?,
    };
    tracing::info!(audit = id, "audit scored");
    Ok(Json(AuditView {
        audit: scored,
        summary: Some(summary),
    }))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// The operator's reply to the feedback, if any.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The audited operator has read the feedback.
#[tracing::instrument(skip_all, fields(audit = id))]
pub async fn acknowledge_audit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    body: Option<Json<AcknowledgeRequest>>,
) -> Result<Json<AuditView>, ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let audit = state.store.audit(id).await?;
    if audit.operator != user.id() {
        return Err(ApiError::Forbidden);
    }
    let comment = req
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > 2_000) {
        return Err(invalid("comment: at most 2000 characters"));
    }
    let audit = state
        .store
        .acknowledge_audit(id, user.id(), comment, Timestamp::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict("only a scored audit is acknowledged".into())
            }
            other => other.into(),
        })?;
    Ok(Json(view(audit)))
}

// ---------------------------------------------------------------------------------------------
// Training

pub async fn list_modules(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<TrainingModule>>, ApiError> {
    Ok(Json(state.store.training_modules().await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleRequest {
    pub name_zh: String,
    pub name_en: String,
    pub hours: u32,
    pub kind: ModuleKind,
    #[serde(default)]
    pub position: Option<i64>,
}

/// Adds or changes a module of the catalogue.
pub async fn put_module(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(req): Json<ModuleRequest>,
) -> Result<Json<TrainingModule>, ApiError> {
    user.require(MANAGERS)?;
    let id = crate::domain::Skill::parse(&id)
        .map_err(|_| invalid("id: must be 1-40 characters of a-z, 0-9, '_' or '-'"))?
        .to_string();
    if req.name_zh.trim().is_empty() || req.name_en.trim().is_empty() {
        return Err(invalid("name_zh, name_en: must not be empty"));
    }
    if req.hours > 1_000 {
        return Err(invalid("hours: at most 1000"));
    }
    let existing = state.store.training_modules().await?;
    let position = match req.position {
        Some(position) => position,
        None => match existing.iter().find(|m| m.id == id) {
            Some(m) => m.position,
            // After the last module.
            None => {
                let last = existing.iter().map(|m| m.position).max().unwrap_or(0);
                last.checked_add(1).ok_or_else(|| {
                    invalid("position: the last module is at the largest position; give one")
                })?
            }
        },
    };
    let module = TrainingModule {
        id,
        name_zh: req.name_zh.trim().to_owned(),
        name_en: req.name_en.trim().to_owned(),
        hours: req.hours,
        kind: req.kind,
        position,
    };
    state.store.put_training_module(&module).await?;
    Ok(Json(module))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SessionsQuery {
    /// First local day (`YYYY-MM-DD`); the start of this year by default.
    pub from: Option<String>,
    /// Last local day, included; the end of this year by default.
    pub to: Option<String>,
}

fn year_bounds(state: &AppState) -> (String, String) {
    let today = local_day(state.settings.quality.time_zone.0, Timestamp::now());
    (
        today.format("%Y-01-01").to_string(),
        today.format("%Y-12-31").to_string(),
    )
}

/// `[from, to]` local days → `[from, to + 1)` as ISO strings.
fn day_range(from: &str, to: &str) -> Result<(String, String), ApiError> {
    let from = parse_day(from).map_err(|e| invalid(format!("from: {e}")))?;
    let to = parse_day(to).map_err(|e| invalid(format!("to: {e}")))?;
    if to < from {
        return Err(invalid("to: must not be before from"));
    }
    // `to` is at most 2200-12-31 (`parse_day`), so the day after it exists.
    let after = to
        .succ_opt()
        .ok_or_else(|| invalid("to: there is no day after it"))?;
    Ok((from.to_string(), after.to_string()))
}

/// Sessions in a range; operators see the sessions they attended.
pub async fn list_sessions(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<SessionsQuery>,
) -> Result<Json<Vec<TrainingSession>>, ApiError> {
    let (year_from, year_to) = year_bounds(&state);
    let (from, to) = day_range(
        q.from.as_deref().unwrap_or(&year_from),
        q.to.as_deref().unwrap_or(&year_to),
    )?;
    let sessions = state.store.training_sessions(&from, &to).await?;
    let me = user.id();
    Ok(Json(
        sessions
            .into_iter()
            .filter(|s| is_manager(&user) || s.attendees.iter().any(|a| a.account == me))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendeeRequest {
    pub account: OperatorId,
    #[serde(default)]
    pub questionnaire_done: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub title: String,
    /// Local date, `YYYY-MM-DD`.
    pub held_on: String,
    pub trainer: String,
    /// A systematic training (counts towards the ≥ 4 a year); true by default.
    #[serde(default = "yes")]
    pub systematic: bool,
    /// Module ids of the catalogue; the session's class hours are theirs.
    pub modules: Vec<String>,
    #[serde(default)]
    pub attendees: Vec<AttendeeRequest>,
}

#[tracing::instrument(skip_all)]
pub async fn create_session(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<SessionRequest>,
) -> Result<(StatusCode, Json<TrainingSession>), ApiError> {
    user.require(MANAGERS)?;
    let title = req.title.trim();
    let trainer = req.trainer.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(invalid("title: 1-200 characters"));
    }
    if trainer.is_empty() || trainer.chars().count() > 100 {
        return Err(invalid("trainer: 1-100 characters"));
    }
    let held_on = parse_day(&req.held_on).map_err(|e| invalid(format!("held_on: {e}")))?;
    let catalogue: BTreeSet<String> = state
        .store
        .training_modules()
        .await?
        .into_iter()
        .map(|m| m.id)
        .collect();
    if req.modules.is_empty() {
        return Err(invalid("modules: name at least one module"));
    }
    if let Some(unknown) = req.modules.iter().find(|m| !catalogue.contains(*m)) {
        return Err(invalid(format!(
            "modules: {unknown:?} is not in the catalogue"
        )));
    }
    let mut seen = BTreeSet::new();
    if req.attendees.iter().any(|a| !seen.insert(a.account)) {
        return Err(invalid("attendees: an account appears twice"));
    }
    let session = state
        .store
        .create_training_session(&NewTrainingSession {
            title: title.to_owned(),
            held_on: held_on.to_string(),
            trainer: trainer.to_owned(),
            systematic: req.systematic,
            modules: req.modules,
            attendees: req
                .attendees
                .iter()
                .map(|a| Attendee {
                    account: a.account,
                    questionnaire_done: a.questionnaire_done,
                })
                .collect(),
            created_by: user.id(),
            created_at: Timestamp::now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => invalid("attendees: unknown account"),
            other => other.into(),
        })?;
    tracing::info!(session = session.id, "training session recorded");
    Ok((StatusCode::CREATED, Json(session)))
}

pub async fn session(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<TrainingSession>, ApiError> {
    let session = state.store.training_session(id).await?;
    if !is_manager(&user) && !session.attendees.iter().any(|a| a.account == user.id()) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(session))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionnaireRequest {
    pub done: bool,
}

/// Records an attendee's post-training questionnaire (supervisors, or the attendee).
pub async fn set_questionnaire(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, account)): Path<(i64, i64)>,
    Json(req): Json<QuestionnaireRequest>,
) -> Result<Json<TrainingSession>, ApiError> {
    let account = OperatorId(account);
    if !is_manager(&user) && user.id() != account {
        return Err(ApiError::Forbidden);
    }
    state.store.set_questionnaire(id, account, req.done).await?;
    Ok(Json(state.store.training_session(id).await?))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct HoursQuery {
    /// Calendar year; this year by default.
    pub year: Option<i32>,
    pub account: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TrainingHours {
    pub year: i32,
    /// Systematic trainings required a year.
    pub required_systematic: u32,
    pub people: Vec<TrainingSummary>,
}

/// Training hours per person for a year (operators: their own).
pub async fn training_hours(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<HoursQuery>,
) -> Result<Json<TrainingHours>, ApiError> {
    let tz = state.settings.quality.time_zone.0;
    let year = q
        .year
        .unwrap_or_else(|| chrono::Datelike::year(&local_day(tz, Timestamp::now())));
    if !CLIENT_YEARS.contains(&year) {
        return Err(invalid(format!("year: {OUTSIDE_CLIENT_YEARS}")));
    }
    let mut only = query_field(q.account.as_deref(), whole_number("account"))?.map(OperatorId);
    if !is_manager(&user) {
        if only.is_some_and(|a| a != user.id()) {
            return Err(ApiError::Forbidden);
        }
        only = Some(user.id());
    }
    let sessions = state
        .store
        .training_sessions(&format!("{year}-01-01"), &format!("{}-01-01", year + 1))
        .await?;
    let catalogue = state.store.training_modules().await?;
    let people: Vec<TrainingSummary> = state
        .store
        .accounts()
        .await?
        .into_iter()
        .filter(|a| match only {
            Some(id) => a.id == id,
            None => a.role.takes_contacts() && !a.disabled,
        })
        .map(|a| training::summarize(a.id, &sessions, &catalogue))
        .collect();
    Ok(Json(TrainingHours {
        year,
        required_systematic: state.settings.quality.trainings_per_year,
        people,
    }))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CertificationsQuery {
    pub account: Option<String>,
}

/// Certifications (operators: their own).
pub async fn list_certifications(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<CertificationsQuery>,
) -> Result<Json<Vec<Certification>>, ApiError> {
    let mut account = query_field(q.account.as_deref(), whole_number("account"))?.map(OperatorId);
    if !is_manager(&user) {
        if account.is_some_and(|a| a != user.id()) {
            return Err(ApiError::Forbidden);
        }
        account = Some(user.id());
    }
    Ok(Json(state.store.certifications(account).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub account: OperatorId,
    /// A certification named in `quality.certifications`, e.g. `crisis_certified`.
    pub certification: String,
    /// The certification's assessment was passed (the supervisor attests it).
    pub assessment_passed: bool,
    #[serde(default)]
    pub assessment_score: Option<i64>,
    #[serde(default)]
    pub note: Option<String>,
    /// When it expires; `valid_days` from now by default.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// Grants a certification once its modules are completed and its assessment passed; its skill
/// is granted in the same transaction and routing uses it at once.
#[tracing::instrument(skip_all)]
pub async fn grant_certification(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<GrantRequest>,
) -> Result<(StatusCode, Json<Certification>), ApiError> {
    user.require(MANAGERS)?;
    let rules = &state.settings.quality.certifications;
    let Some(rule) = rules.get(&req.certification) else {
        let known: Vec<&str> = rules.keys().map(String::as_str).collect();
        return Err(invalid(format!(
            "certification: must be one of {}",
            known.join(", ")
        )));
    };
    if !req.assessment_passed {
        return Err(invalid(
            "assessment_passed: the assessment must be passed first",
        ));
    }
    let account = state
        .store
        .account(req.account)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => invalid("account: unknown account"),
            other => other.into(),
        })?;
    let now = Timestamp::now();
    let expires_at = req
        .expires_at
        .unwrap_or_else(|| now.plus_ms(i64::from(rule.valid_days) * 86_400_000));
    if expires_at <= now {
        return Err(invalid("expires_at: must be in the future"));
    }
    expires_at
        .within_client_years()
        .map_err(|e| invalid(format!("expires_at: {e}")))?;
    let sessions = state
        .store
        .training_sessions("0000-01-01", "9999-12-31")
        .await?;
    let catalogue = state.store.training_modules().await?;
    let summary = training::summarize(account.id, &sessions, &catalogue);
    let missing = training::missing_modules(rule, &summary);
    if !missing.is_empty() {
        return Err(invalid(format!(
            "account: has not completed (attended, questionnaire done) {}",
            missing.join(", ")
        )));
    }
    let certification = state
        .store
        .grant_certification(
            &NewCertification {
                account: account.id,
                kind: req.certification.clone(),
                granted_at: now,
                expires_at,
                granted_by: user.id(),
                assessment_score: req.assessment_score,
                note: req
                    .note
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
            },
            Some((&rule.skill, rule.proficiency)),
        )
        .await?;
    crate::admin::sync_account(&state, account.id).await?;
    state.quality.wake();
    tracing::info!(certification = certification.id, account = %account.id, "certification granted");
    Ok((StatusCode::CREATED, Json(certification)))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub reason: String,
}

/// Revokes a certification; its skill is removed and routing stops at once.
#[tracing::instrument(skip_all, fields(certification = id))]
pub async fn revoke_certification(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<RevokeRequest>,
) -> Result<Json<Certification>, ApiError> {
    user.require(MANAGERS)?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(invalid("reason: say why, in at most 500 characters"));
    }
    let now = Timestamp::now();
    state
        .store
        .revoke_certification(id, user.id(), reason, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict("already revoked".into()),
            other => other.into(),
        })?;
    training::apply_lapses(&state, now).await?;
    Ok(Json(state.store.certification(id).await?))
}

// ---------------------------------------------------------------------------------------------
// Assessments

/// Computes a cycle's assessment for every operator; a signed-off operator's is the signed form
/// (with what the data now gives differently).
pub async fn cycle_assessment(state: &AppState, cycle: Cycle) -> Result<CycleAssessment, ApiError> {
    let q = &state.settings.quality;
    let tz = q.time_zone.0;
    let period = cycle.period(tz);
    let now = Timestamp::now();
    let inputs = reports::load(&state.store, q, period, now).await?;
    let (_, active) = kpi::dimensions(&inputs.digest);
    let active: BTreeSet<OperatorId> = active.into_iter().collect();
    let id = cycle.id();
    let audits = state
        .store
        .audits(
            &AuditFilter {
                cycle: Some(id.clone()),
                ..AuditFilter::default()
            },
            1_000_000,
        )
        .await?;
    let first = cycle.first_day().to_string();
    let end = cycle.end_day().to_string();
    let year_start = format!("{}-01-01", cycle.year);
    let sessions = state.store.training_sessions(&first, &end).await?;
    let year_sessions = state.store.training_sessions(&year_start, &end).await?;
    let catalogue = state.store.training_modules().await?;
    let certifications = state.store.certifications(None).await?;
    let sign_offs: BTreeMap<OperatorId, SignOff> = state
        .store
        .sign_offs(&id)
        .await?
        .into_iter()
        .map(|s| (s.operator, s))
        .collect();
    let rules = Rules {
        trainings_required: assessment::trainings_required(q.trainings_per_year, q.cycle_months),
        audit_pass_percent: q.audit_pass_percent,
        min_contacts: q.assessment_min_contacts,
    };
    let valid_at = now.min(period.to.plus_ms(-1));
    let mut operators = Vec::new();
    for account in state.store.accounts().await? {
        let assessed = (matches!(account.role, Role::Operator | Role::CrisisLead)
            && !account.disabled)
            || active.contains(&account.id)
            || sign_offs.contains_key(&account.id);
        if !assessed {
            continue;
        }
        let kpis = kpi::kpis(
            &inputs.digest,
            Some(&inputs.incidents),
            &inputs.params,
            &KpiFilter {
                operator: Some(account.id),
                ..KpiFilter::default()
            },
        );
        let mine: Vec<&Audit> = audits.iter().filter(|a| a.operator == account.id).collect();
        let percents: Vec<f64> = mine
            .iter()
            .filter(|a| a.status != AuditStatus::Pending)
            .filter_map(|a| super::audits::percent(a.points?, a.max_points?))
            .collect();
        let audit_summary = AuditSummary {
            scored: mine
                .iter()
                .filter(|a| a.status != AuditStatus::Pending)
                .count() as u64,
            pending: mine
                .iter()
                .filter(|a| a.status == AuditStatus::Pending)
                .count() as u64,
            average_percent: (!percents.is_empty())
                .then(|| percents.iter().sum::<f64>() / percents.len() as f64),
        };
        let training = training::summarize(account.id, &sessions, &catalogue);
        let training_year = training::summarize(account.id, &year_sessions, &catalogue);
        let (computed, reasons) =
            assessment::assess(kpis.completed, &audit_summary, &training, &rules);
        let held: BTreeSet<String> = certifications
            .iter()
            .filter(|c| c.account == account.id && c.held_at(valid_at))
            .map(|c| c.kind.clone())
            .collect();
        let assessment = OperatorAssessment {
            operator: account.id,
            name: account.display_name.clone(),
            role: account.role,
            kpis,
            audits: audit_summary,
            training,
            training_year,
            certifications: held.into_iter().collect(),
            computed,
            reasons,
            sign_off: None,
            changed_since_sign_off: Vec::new(),
        };
        operators.push(match sign_offs.get(&account.id) {
            Some(signed) => assessment::as_signed(assessment, signed.clone()),
            None => assessment,
        });
    }
    Ok(CycleAssessment {
        cycle: id,
        first_day: first,
        last_day: (cycle.end_day() - chrono::Duration::days(1)).to_string(),
        time_zone: tz.name().to_owned(),
        rules,
        operators,
    })
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct FormatQuery {
    pub format: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn assessment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cycle): Path<String>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    user.require(MANAGERS)?;
    let csv = wants_csv(q.format.as_deref())?;
    let cycle = parse_cycle(&state, &cycle)?;
    let report = cycle_assessment(&state, cycle).await?;
    if csv {
        Ok(csv_response(
            &format!("assessment-{}.csv", report.cycle),
            assessment::csv(&report),
        ))
    } else {
        Ok(Json(report).into_response())
    }
}

/// The printable assessment page (print it, or save it as PDF from the browser).
#[tracing::instrument(skip_all)]
pub async fn assessment_html(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cycle): Path<String>,
) -> Result<Response, ApiError> {
    user.require(MANAGERS)?;
    let cycle = parse_cycle(&state, &cycle)?;
    let report = cycle_assessment(&state, cycle).await?;
    let names: BTreeMap<OperatorId, String> = state
        .store
        .accounts()
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect();
    let tz = state.settings.quality.time_zone.0;
    let page = assessment::html(&report, tz, |id| {
        names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response())
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignOffRequest {
    /// `meets`, `needs_improvement` or `not_eligible`; the computed outcome by default.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Required when the outcome differs from the computed one.
    #[serde(default)]
    pub comment: String,
}

/// A supervisor signs an operator's assessment off; the figures are kept as they are now.
#[tracing::instrument(skip_all)]
pub async fn sign_off(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((cycle, operator)): Path<(String, i64)>,
    Json(req): Json<SignOffRequest>,
) -> Result<(StatusCode, Json<SignOff>), ApiError> {
    user.require(&[Role::Supervisor])?;
    let cycle = parse_cycle(&state, &cycle)?;
    let operator = OperatorId(operator);
    if operator == user.id() {
        return Err(invalid("you cannot sign off your own assessment"));
    }
    let report = cycle_assessment(&state, cycle).await?;
    let Some(assessment) = report
        .operators
        .into_iter()
        .find(|a| a.operator == operator)
    else {
        return Err(ApiError::NotFound);
    };
    if assessment.sign_off.is_some() {
        return Err(ApiError::Conflict(
            "this assessment is already signed off".into(),
        ));
    }
    let outcome = req.outcome.unwrap_or(assessment.computed);
    let comment = req.comment.trim();
    if outcome != assessment.computed && comment.is_empty() {
        return Err(invalid(
            "comment: say why the outcome differs from the computed one",
        ));
    }
    if comment.chars().count() > 4_000 {
        return Err(invalid("comment: at most 4000 characters"));
    }
    let figures = assessment::figures_to_sign(&assessment);
    let signed = state
        .store
        .sign_off(&SignOff {
            cycle: report.cycle,
            operator,
            computed: assessment.computed.as_str().into(),
            outcome: outcome.as_str().into(),
            comment: comment.to_owned(),
            figures,
            signed_by: user.id(),
            signed_at: Timestamp::now(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict("this assessment is already signed off".into())
            }
            other => other.into(),
        })?;
    tracing::info!(operator = %operator, "assessment signed off");
    Ok((StatusCode::CREATED, Json(signed)))
}

// ---------------------------------------------------------------------------------------------
// Access log

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AccessLogQuery {
    pub contact: Option<String>,
    pub reader: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<i64>,
}

/// Who read which contact's records, newest first.
pub async fn access_log(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<AccessLogQuery>,
) -> Result<Json<Vec<AccessRecord>>, ApiError> {
    user.require(MANAGERS)?;
    let tz = state.settings.quality.time_zone.0;
    let bound = |raw: Option<&str>, end: bool| {
        query_field(raw, |s| parse_bound(tz, s, end).map_err(invalid))
    };
    let filter = AccessFilter {
        contact: query_field(q.contact.as_deref(), whole_number("contact"))?.map(ContactId),
        reader: query_field(q.reader.as_deref(), whole_number("reader"))?.map(OperatorId),
        from: bound(q.from.as_deref(), false)?,
        to: bound(q.to.as_deref(), true)?,
    };
    Ok(Json(state.store.access_log(&filter, limit(q.limit)).await?))
}
