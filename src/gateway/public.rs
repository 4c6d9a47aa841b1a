//! Plain HTTP reads: what the caller page shows before the chat, the supervisors' wallboard
//! snapshot, and a contact's transcript for the people in it and supervisors.

use axum::Json;
use axum::extract::{Path, State};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::protocol::{StaffEvent, StaffLine};
use super::router::floor;
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{ContactId, Language, QueueId, Role, Timestamp};
use crate::error::ApiError;
use crate::queues::Alternative;

/// What the caller page needs before the pre-chat step.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicInfo {
    pub queues: Vec<PublicQueue>,
    /// The confidentiality statement and its exceptions, which the caller must accept.
    pub confidentiality: Confidentiality,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicQueue {
    pub id: QueueId,
    pub name: String,
    pub open: bool,
    pub languages: Vec<Language>,
    pub closed_message: String,
    pub alternatives: Vec<Alternative>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Confidentiality {
    pub statement: String,
    pub exceptions: Vec<String>,
}

fn confidentiality() -> Confidentiality {
    Confidentiality {
        statement: "What you share here stays confidential. You do not have to give your name. \
                    Conversations are recorded and kept securely, and only the people who support \
                    you and their supervisors can read them."
            .into(),
        exceptions: vec![
            "If your life or someone else's life is in immediate danger, we may contact emergency \
             services (110 / 120) to keep you safe."
                .into(),
            "If a child or a vulnerable person is being harmed, we may have to tell the \
             authorities who protect them."
                .into(),
            "If the law requires us to share information, we will share only what is required."
                .into(),
        ],
    }
}

pub async fn info(State(state): State<AppState>) -> Json<PublicInfo> {
    let now = Timestamp::now();
    let queues = state
        .queues_snapshot()
        .into_iter()
        .map(|q| PublicQueue {
            open: q.opening_hours.is_open(now),
            id: q.id,
            name: q.name,
            languages: q.languages,
            closed_message: q.closed_message,
            alternatives: q.alternatives,
        })
        .collect();
    Json(PublicInfo {
        queues,
        confidentiality: confidentiality(),
    })
}

/// The floor right now (the same picture live wallboards receive over the WebSocket).
pub async fn wallboard(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<StaffEvent>, ApiError> {
    user.require(&[Role::Supervisor, Role::Admin, Role::CrisisLead])?;
    let hub = state.hub.clone();
    let frame = state
        .router
        .read(move |engine, _| floor(engine, |id| hub.staff_name(id)))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(frame))
}

/// A contact's transcript: for the people in it now, and for supervisors.
pub async fn transcript(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<StaffLine>>, ApiError> {
    let contact = ContactId(id);
    let allowed = matches!(user.role(), Role::Supervisor | Role::Admin)
        || super::staff::is_member(&state, user.id(), contact);
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    let lines = state
        .store
        .messages(contact)
        .await?
        .iter()
        .map(StaffLine::from)
        .collect();
    Ok(Json(lines))
}
