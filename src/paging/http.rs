//! The paging HTTP API: incidents (list, detail with timeline, acknowledge, resolve, record
//! steps), the crisis flag on a contact, escalation policies and schedules (administrators),
//! who is on call, a schedule's iCalendar export, and paging addresses.
//!
//! Every error answers with a code ([`ApiError`]), malformed bodies included. Policies and
//! schedules naming unknown people (or schedules) are refused with 422 `invalid_fields`, one
//! entry per field (`levels[0].targets[1].id`, `rotations[0].participants[2]`…).

use std::collections::{HashMap, HashSet};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{ContactId, OperatorId, Role, Timestamp};
use crate::error::ApiError;
use crate::extract::{Bytes, Json, Path, Query, json_of};
use crate::notes::form::FieldError;
use crate::routing::ContactState;
use crate::store::StoreError;
use crate::store::paging::PagingAddress;

use super::model::{
    FlagSource, IncidentDetail, IncidentId, IncidentState, IncidentView, PageChannel, PolicyId,
    PolicyRef, ScheduleId, StepRequest,
};
use super::policy::{EscalationPolicy, Known, PolicyDefinition, resolve_level};
use super::schedule::{MAX_EXPORT_WEEKS, OnCallSource, Schedule, ScheduleDefinition};

/// Who acts on incidents.
const INCIDENT_ROLES: &[Role] = &[Role::CrisisLead, Role::Supervisor, Role::Admin];
/// Who may read policies and schedules (administrators change them).
const READ_ROLES: &[Role] = &[Role::CrisisLead, Role::Supervisor, Role::Admin];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(list_incidents))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/acknowledge", post(acknowledge))
        .route("/incidents/{id}/resolve", post(resolve))
        .route("/incidents/{id}/steps", post(add_step))
        .route(
            "/contacts/{id}/crisis",
            post(crisis_flag).get(contact_incident),
        )
        .route("/oncall", get(on_call_now))
        .route("/schedules/{id}/oncall", get(schedule_on_call))
        .route("/schedules/{id}/calendar.ics", get(calendar))
        .route(
            "/me/calendar-feed",
            post(create_calendar_feed).delete(delete_calendar_feed),
        )
        .route(
            "/calendar-feeds/{token}/schedules/{id}/calendar.ics",
            get(calendar_feed),
        )
        .route(
            "/admin/escalation-policies",
            get(list_policies).post(create_policy),
        )
        .route(
            "/admin/escalation-policies/{id}",
            get(policy).put(update_policy).delete(delete_policy),
        )
        .route(
            "/admin/schedules",
            get(list_schedules).post(create_schedule),
        )
        .route(
            "/admin/schedules/{id}",
            get(schedule).put(update_schedule).delete(delete_schedule),
        )
        .route(
            "/admin/paging-addresses/{account}",
            get(paging_addresses).put(set_paging_addresses),
        )
}

/// A numeric id from the path; anything else is not found.
fn id_of(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

// ---- incidents ----

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IncidentQuery {
    /// `open` (default: triggered or acknowledged), `triggered`, `acknowledged`, `resolved`, `all`.
    pub state: Option<String>,
    /// At most 500; 100 by default. Newest first.
    pub limit: Option<i64>,
}

async fn list_incidents(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<IncidentQuery>,
) -> Result<Json<Vec<IncidentView>>, ApiError> {
    user.require(INCIDENT_ROLES)?;
    let states: Vec<IncidentState> = match q.state.as_deref().unwrap_or("open") {
        "open" => vec![IncidentState::Triggered, IncidentState::Acknowledged],
        "all" => IncidentState::ALL.to_vec(),
        other => vec![IncidentState::parse(other).ok_or_else(|| {
            ApiError::Invalid(
                "state: must be open, triggered, acknowledged, resolved or all".into(),
            )
        })?],
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let incidents = state.store.incidents(&states, limit).await?;
    Ok(Json(incidents.iter().map(IncidentView::from).collect()))
}

async fn incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    user.require(INCIDENT_ROLES)?;
    Ok(Json(state.pager.detail(IncidentId(id_of(&id)?)).await?))
}

async fn acknowledge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<IncidentView>, ApiError> {
    user.require(INCIDENT_ROLES)?;
    let incident = state
        .pager
        .acknowledge(IncidentId(id_of(&id)?), user.id())
        .await?;
    Ok(Json(IncidentView::from(&incident)))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    pub resolution: String,
    /// Required when emergency services were contacted and help was not confirmed to reach
    /// the person: why it cannot be.
    #[serde(default)]
    pub unconfirmed_reason: Option<String>,
}

async fn resolve(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(req): Json<ResolveRequest>,
) -> Result<Json<IncidentView>, ApiError> {
    user.require(INCIDENT_ROLES)?;
    let incident = state
        .pager
        .resolve(
            IncidentId(id_of(&id)?),
            user.id(),
            req.resolution,
            req.unconfirmed_reason,
        )
        .await?;
    Ok(Json(IncidentView::from(&incident)))
}

async fn add_step(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(req): Json<StepRequest>,
) -> Result<(StatusCode, Json<IncidentDetail>), ApiError> {
    user.require(INCIDENT_ROLES)?;
    let id = IncidentId(id_of(&id)?);
    let step = req.into_step(user.id()).map_err(ApiError::Invalid)?;
    state.pager.add_step(id, user.id(), step).await?;
    Ok((StatusCode::CREATED, Json(state.pager.detail(id).await?)))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrisisRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CrisisFlagged {
    /// The incident (new, or the contact's open one the flag was added to).
    pub incident: IncidentId,
}

/// The operator holding the contact, supervisors and crisis leads may flag it.
async fn crisis_flag(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Bytes(body): Bytes,
) -> Result<Json<CrisisFlagged>, ApiError> {
    let contact = ContactId(id_of(&id)?);
    let req: CrisisRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CrisisRequest::default()
    } else {
        json_of(&body)?
    };
    may_flag(&state, &user, contact).await?;
    let incident = state
        .pager
        .crisis_flag(contact, FlagSource::Operator(user.id()), req.reason)
        .await?;
    Ok(Json(CrisisFlagged { incident }))
}

/// The contact's latest incident (open or not), or `null`: what an operator's desk shows beside
/// the crisis flag after a reload, before any `incident_changed` frame arrives.
async fn contact_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Option<IncidentView>>, ApiError> {
    let contact = ContactId(id_of(&id)?);
    may_flag(&state, &user, contact).await?;
    let incident = state.store.latest_incident_of(contact).await?;
    Ok(Json(incident.as_ref().map(IncidentView::from)))
}

/// Who may flag a contact and read its incident: the operator holding it, supervisors and crisis
/// leads.
async fn may_flag(
    state: &AppState,
    user: &CurrentUser,
    contact: ContactId,
) -> Result<(), ApiError> {
    match user.role() {
        Role::Supervisor | Role::CrisisLead => Ok(()),
        Role::Operator if holds(state, user.id(), contact).await? => Ok(()),
        Role::Operator | Role::Admin => Err(ApiError::Forbidden),
    }
}

/// Whether `me` holds the contact now (live, or assigned/wrapping in the store).
async fn holds(state: &AppState, me: OperatorId, contact: ContactId) -> Result<bool, ApiError> {
    if state
        .hub
        .members(contact)
        .is_some_and(|m| m.operator == Some(me))
    {
        return Ok(true);
    }
    match state.store.contact(contact).await {
        Ok(c) => Ok(c.operator == Some(me)
            && matches!(c.state, ContactState::Assigned | ContactState::Wrapping)),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

// ---- who is on call ----

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OnCallPerson {
    pub id: OperatorId,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OnCallNow {
    pub policy: PolicyRef,
    /// Whom the first level of the default policy pages now.
    pub people: Vec<OnCallPerson>,
    /// Targets of that level that page nobody now (empty schedule, disabled account…).
    pub problems: Vec<String>,
}

fn person(names: &HashMap<OperatorId, String>, id: OperatorId) -> OnCallPerson {
    OnCallPerson {
        id,
        name: names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("account {id}")),
    }
}

async fn names(state: &AppState) -> Result<HashMap<OperatorId, String>, ApiError> {
    Ok(state
        .store
        .accounts()
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect())
}

/// Who the first level of the default policy would page now (all of a round-robin level).
async fn on_call_now(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<OnCallNow>, ApiError> {
    let directory = state.pager.directory().await?;
    let (policy_ref, mut policy) = match state.store.default_policy().await? {
        Some(p) => (
            PolicyRef {
                id: Some(p.id),
                name: p.definition.name.clone(),
            },
            p.definition,
        ),
        None => {
            let p = PolicyDefinition::fallback(&directory.directory);
            (
                PolicyRef {
                    id: None,
                    name: p.name.clone(),
                },
                p,
            )
        }
    };
    if let Some(first) = policy.levels.first_mut() {
        first.mode = super::policy::LevelMode::NotifyAll;
    }
    let page = resolve_level(&policy, 0, 0, 0, Timestamp::now(), &directory.directory);
    let names: HashMap<OperatorId, String> = directory
        .directory
        .accounts
        .iter()
        .map(|(id, p)| (*id, p.name.clone()))
        .collect();
    Ok(Json(OnCallNow {
        policy: policy_ref,
        people: page.targets.iter().map(|id| person(&names, *id)).collect(),
        problems: page.problems,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AtQuery {
    /// Unix milliseconds or RFC 3339 (`2025-03-01T09:00:00+08:00`) in the years 2000-2200; now
    /// when absent.
    pub at: Option<String>,
}

/// `?at=`: unix milliseconds or RFC 3339, within the years a client may name.
fn parse_at(raw: Option<&str>) -> Result<Timestamp, ApiError> {
    let Some(raw) = raw else {
        return Ok(Timestamp::now());
    };
    let at = match raw.parse::<i64>() {
        Ok(ms) => Timestamp(ms),
        Err(_) => chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| Timestamp(t.timestamp_millis()))
            .map_err(|_| ApiError::Invalid("at: unix milliseconds or an RFC 3339 time".into()))?,
    };
    at.within_client_years()
        .map_err(|e| ApiError::Invalid(format!("at: {e}")))
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ScheduleOnCall {
    pub schedule: ScheduleId,
    pub at: Timestamp,
    /// Nobody before the first rotation starts.
    pub person: Option<OnCallPerson>,
    pub source: Option<OnCallSource>,
    /// When the next person takes over (looking five weeks ahead).
    pub until: Option<Timestamp>,
}

async fn schedule_on_call(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Json<ScheduleOnCall>, ApiError> {
    let schedule = state.store.schedule(ScheduleId(id_of(&id)?)).await?;
    let at = parse_at(q.at.as_deref())?;
    let on_call = schedule.on_call_at(at);
    let names = names(&state).await?;
    Ok(Json(ScheduleOnCall {
        schedule: schedule.id,
        at,
        person: on_call.map(|o| person(&names, o.person)),
        source: on_call.map(|o| o.source),
        until: on_call.and_then(|_| schedule.on_call_until(at)),
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CalendarQuery {
    /// Weeks from now, 1-26; 4 by default.
    pub weeks: Option<u32>,
}

async fn calendar(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<CalendarQuery>,
) -> Result<impl IntoResponse, ApiError> {
    ical(&state, &id, q).await
}

/// A calendar app's own address for a person: sent once, kept only as a hash.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CalendarFeed {
    /// Goes in `/api/calendar-feeds/{token}/schedules/{id}/calendar.ics`.
    pub token: String,
}

/// A new calendar feed token for the signed-in person; the one they had stops working.
async fn create_calendar_feed(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<(StatusCode, Json<CalendarFeed>), ApiError> {
    user.require(READ_ROLES)?;
    let token = crate::auth::random_token(32);
    state
        .store
        .set_calendar_feed(
            user.id(),
            &crate::auth::token_hash(&token),
            Timestamp::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CalendarFeed { token })))
}

async fn delete_calendar_feed(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.store.delete_calendar_feed(user.id()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A schedule as iCalendar for a calendar app, which sends no cookie: the token in the path
/// stands for its person, who must still be an active account allowed to read schedules. An
/// unknown or revoked token is `not_found`, like an unknown schedule.
async fn calendar_feed(
    State(state): State<AppState>,
    Path((token, id)): Path<(String, String)>,
    Query(q): Query<CalendarQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let account = match state
        .store
        .calendar_feed_account(&crate::auth::token_hash(&token))
        .await?
    {
        Some(id) => state.store.account(id).await?,
        None => return Err(StoreError::NotFound.into()),
    };
    if account.disabled || !READ_ROLES.contains(&account.role) {
        return Err(StoreError::NotFound.into());
    }
    ical(&state, &id, q).await
}

async fn ical(state: &AppState, id: &str, q: CalendarQuery) -> Result<Response, ApiError> {
    let schedule = state.store.schedule(ScheduleId(id_of(id)?)).await?;
    let weeks = q.weeks.unwrap_or(4);
    if !(1..=MAX_EXPORT_WEEKS).contains(&weeks) {
        return Err(ApiError::Invalid(format!(
            "weeks: must be between 1 and {MAX_EXPORT_WEEKS}"
        )));
    }
    let now = Timestamp::now();
    let text = schedule.to_ical(now, weeks, &names(state).await?, now);
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"oncall.ics\"",
            ),
        ],
        text,
    )
        .into_response())
}

// ---- escalation policies ----

/// What exists, for checking references.
async fn known(state: &AppState) -> Result<Known, ApiError> {
    Ok(Known {
        accounts: state.store.accounts().await?.iter().map(|a| a.id).collect(),
        schedules: state
            .store
            .schedules()
            .await?
            .iter()
            .map(|s| s.id)
            .collect(),
    })
}

/// Refuses with `invalid_fields`, one entry per problem (`field: message`).
fn refuse(problems: Vec<String>) -> Result<(), ApiError> {
    if problems.is_empty() {
        return Ok(());
    }
    let fields = problems
        .into_iter()
        .map(|p| match p.split_once(": ") {
            Some((field, message)) => FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            },
            None => FieldError {
                field: String::new(),
                message: p,
            },
        })
        .collect();
    Err(ApiError::InvalidFields(fields))
}

/// A reference that vanished between the check and the write.
fn saved<T>(result: Result<T, StoreError>, what: &str) -> Result<T, ApiError> {
    match result {
        Ok(v) => Ok(v),
        Err(StoreError::Conflict) => Err(ApiError::Conflict(format!(
            "name: another {what} has this name"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn list_policies(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<EscalationPolicy>>, ApiError> {
    user.require(READ_ROLES)?;
    Ok(Json(state.store.policies().await?))
}

async fn policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<EscalationPolicy>, ApiError> {
    user.require(READ_ROLES)?;
    Ok(Json(state.store.policy(PolicyId(id_of(&id)?)).await?))
}

async fn create_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(definition): Json<PolicyDefinition>,
) -> Result<(StatusCode, Json<EscalationPolicy>), ApiError> {
    user.require(&[Role::Admin])?;
    refuse(definition.problems(&known(&state).await?))?;
    let created = state
        .store
        .create_policy(&definition, Timestamp::now())
        .await;
    Ok((StatusCode::CREATED, Json(saved(created, "policy")?)))
}

async fn update_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(definition): Json<PolicyDefinition>,
) -> Result<Json<EscalationPolicy>, ApiError> {
    user.require(&[Role::Admin])?;
    let id = PolicyId(id_of(&id)?);
    refuse(definition.problems(&known(&state).await?))?;
    let updated = state
        .store
        .update_policy(id, &definition, Timestamp::now())
        .await;
    Ok(Json(saved(updated, "policy")?))
}

async fn delete_policy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin])?;
    state.store.delete_policy(PolicyId(id_of(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- schedules ----

async fn known_accounts(state: &AppState) -> Result<HashSet<OperatorId>, ApiError> {
    Ok(state.store.accounts().await?.iter().map(|a| a.id).collect())
}

async fn list_schedules(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<Schedule>>, ApiError> {
    user.require(READ_ROLES)?;
    Ok(Json(state.store.schedules().await?))
}

async fn schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    user.require(READ_ROLES)?;
    Ok(Json(state.store.schedule(ScheduleId(id_of(&id)?)).await?))
}

async fn create_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(definition): Json<ScheduleDefinition>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    user.require(&[Role::Admin])?;
    refuse(definition.problems(&known_accounts(&state).await?))?;
    let created = state
        .store
        .create_schedule(&definition, Timestamp::now())
        .await;
    Ok((StatusCode::CREATED, Json(saved(created, "schedule")?)))
}

async fn update_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(definition): Json<ScheduleDefinition>,
) -> Result<Json<Schedule>, ApiError> {
    user.require(&[Role::Admin])?;
    let id = ScheduleId(id_of(&id)?);
    refuse(definition.problems(&known_accounts(&state).await?))?;
    let updated = state
        .store
        .update_schedule(id, &definition, Timestamp::now())
        .await;
    Ok(Json(saved(updated, "schedule")?))
}

async fn delete_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin])?;
    match state.store.delete_schedule(ScheduleId(id_of(&id)?)).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::Conflict) => Err(ApiError::Conflict(
            "an escalation policy pages this schedule; change the policy first".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---- paging addresses ----

/// Where a person is paged besides the console. Absent fields are removed.
#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagingAddresses {
    /// An http(s) URL that receives a signed JSON POST per page (e.g. an SMS gateway).
    #[serde(default)]
    pub webhook: Option<String>,
    /// E-mail pages (when the server has SMTP configured).
    #[serde(default)]
    pub email: Option<String>,
}

async fn paging_addresses(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(account): Path<String>,
) -> Result<Json<PagingAddresses>, ApiError> {
    user.require(&[Role::Admin])?;
    let account = OperatorId(id_of(&account)?);
    state.store.account(account).await?;
    let mut out = PagingAddresses::default();
    for a in state.store.paging_addresses(account).await? {
        match a.channel {
            PageChannel::Webhook => out.webhook = Some(a.address),
            PageChannel::Email => out.email = Some(a.address),
            PageChannel::Console => {}
        }
    }
    Ok(Json(out))
}

async fn set_paging_addresses(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(account): Path<String>,
    Json(req): Json<PagingAddresses>,
) -> Result<Json<PagingAddresses>, ApiError> {
    user.require(&[Role::Admin])?;
    let account = OperatorId(id_of(&account)?);
    let mut problems = Vec::new();
    let mut addresses = Vec::new();
    if let Some(url) = &req.webhook {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && url.len() <= 2_000 => {
                addresses.push(PagingAddress {
                    channel: PageChannel::Webhook,
                    address: url.clone(),
                });
            }
            _ => problems.push("webhook: must be an http or https URL".to_owned()),
        }
    }
    if let Some(email) = &req.email {
        match email.parse::<lettre::Address>() {
            Ok(_) if email.len() <= 254 => addresses.push(PagingAddress {
                channel: PageChannel::Email,
                address: email.clone(),
            }),
            _ => problems.push("email: must be an e-mail address".to_owned()),
        }
    }
    refuse(problems)?;
    state
        .store
        .set_paging_addresses(account, &addresses)
        .await?;
    Ok(Json(req))
}
