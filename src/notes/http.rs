//! The notes API. Operators write the note of a contact they handled; a submitted note is locked,
//! and changes are amendments: by the author within `notes.amend_window_hours`, by supervisors later.

use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::form::{NoteFacts, NoteForm};
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{ContactId, OperatorId, RiskLevel, Role, Timestamp};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::paging::FlagSource;
use crate::store::StoreError;
use crate::store::notes::{Amendment, Note, NoteFields, NoteStatus};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteDraft {
    pub fields: NoteFields,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendmentRequest {
    /// Why the note changes; required.
    pub reason: String,
    pub changes: NoteFields,
}

/// A note with how it reads now (amendments applied).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct NoteView {
    pub note: Note,
    pub effective: NoteFields,
}

impl From<Note> for NoteView {
    fn from(note: Note) -> Self {
        NoteView {
            effective: note.effective(),
            note,
        }
    }
}

/// Largest note body accepted (the form's own limits are checked at submission).
const MAX_NOTE_BYTES: usize = 32 * 1024;

/// Whether `me` was ever connected to the contact (the event log says so).
async fn handled(state: &AppState, contact: ContactId, me: OperatorId) -> Result<bool, ApiError> {
    Ok(state
        .store
        .events_of_contact(contact)
        .await?
        .iter()
        .any(|e| e.kind == "connect" && e.operator == Some(me)))
}

/// Supervisors, admins and crisis leads read every note; operators those of contacts they handled.
async fn may_read(
    state: &AppState,
    user: &CurrentUser,
    contact: ContactId,
) -> Result<(), ApiError> {
    if matches!(
        user.role(),
        Role::Supervisor | Role::Admin | Role::CrisisLead
    ) || handled(state, contact, user.id()).await?
        || crate::gateway::staff::is_member(state, user.id(), contact)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn check_size(fields: &NoteFields) -> Result<(), ApiError> {
    let size = serde_json::to_string(fields)
        .map(|s| s.len())
        .unwrap_or(usize::MAX);
    if size > MAX_NOTE_BYTES {
        return Err(ApiError::Invalid(format!(
            "fields: a note is limited to {MAX_NOTE_BYTES} bytes"
        )));
    }
    Ok(())
}

fn conflict_if_submitted(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict => {
            ApiError::Conflict("this note is submitted; changes are made as amendments".into())
        }
        other => other.into(),
    }
}

pub async fn form(State(state): State<AppState>, _user: CurrentUser) -> Json<NoteForm> {
    Json(state.note_form.as_ref().clone())
}

pub async fn notes_of_contact(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<NoteView>>, ApiError> {
    let contact = ContactId(id);
    may_read(&state, &user, contact).await?;
    // Who reads notes is always recorded (confidentiality); no record, no read.
    crate::quality::record_access(
        &state,
        &user,
        contact,
        crate::store::quality::AccessKind::Notes,
    )
    .await?;
    let notes = state.store.notes_of_contact(contact).await?;
    Ok(Json(notes.into_iter().map(NoteView::from).collect()))
}

/// Saves the draft as the operator types. Nothing is validated but size: a draft may be half done.
#[tracing::instrument(skip_all, fields(contact = id))]
pub async fn save_draft(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(draft): Json<NoteDraft>,
) -> Result<Json<NoteView>, ApiError> {
    let contact = ContactId(id);
    if !handled(&state, contact, user.id()).await? {
        return Err(ApiError::Forbidden);
    }
    check_size(&draft.fields)?;
    let note = state
        .store
        .save_note_draft(
            contact,
            user.id(),
            state.note_form.version,
            &draft.fields,
            Timestamp::now(),
        )
        .await
        .map_err(conflict_if_submitted)?;
    Ok(Json(note.into()))
}

/// Submits the note: refused field by field (the draft is kept) or stored and locked.
/// High or imminent risk, or the crisis flag, pages the crisis team.
#[tracing::instrument(skip_all, fields(contact = id))]
pub async fn submit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(draft): Json<NoteDraft>,
) -> Result<Json<NoteView>, ApiError> {
    let contact = ContactId(id);
    if !handled(&state, contact, user.id()).await? {
        return Err(ApiError::Forbidden);
    }
    check_size(&draft.fields)?;
    let now = Timestamp::now();
    let version = state.note_form.version;
    let facts = match state.note_form.validate(&draft.fields) {
        Ok(facts) => facts,
        Err(errors) => {
            // Keep what was written: the operator fixes the fields and submits again.
            state
                .store
                .save_note_draft(contact, user.id(), version, &draft.fields, now)
                .await
                .map_err(conflict_if_submitted)?;
            return Err(ApiError::InvalidFields(errors));
        }
    };
    let stored = async {
        let note = state
            .store
            .submit_note(contact, user.id(), version, &draft.fields, now)
            .await
            .map_err(conflict_if_submitted)?;
        tracing::info!(note = note.id, "note submitted");
        Ok::<_, ApiError>(note)
    };
    let note = paging_if_crisis(&state, contact, user.id(), crisis_risk(&facts), stored).await?;
    Ok(Json(note.into()))
}

/// Stores a note's submission or amendment that may bring it to crisis level (`crisis`, the risk
/// it raises the contact to). Its page is recorded as due before `store` runs, so that a crash in
/// between pages rather than not; it is forgotten if `store` is refused, and raised once stored.
async fn paging_if_crisis<T, E: From<ApiError>>(
    state: &AppState,
    contact: ContactId,
    author: OperatorId,
    crisis: Option<RiskLevel>,
    store: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let Some(risk) = crisis else {
        return store.await;
    };
    let due = state
        .pager
        .flag_due(contact, FlagSource::Note(author))
        .await
        .map_err(|e| E::from(e.into()))?;
    match store.await {
        Ok(stored) => {
            state
                .raise_crisis_from_note(due, contact, author, risk)
                .await;
            Ok(stored)
        }
        Err(e) => {
            state.pager.forget_due(due).await;
            Err(e)
        }
    }
}

/// The risk a note at crisis level raises its contact to: the crisis flag, or high risk or
/// above. A flagged note is at least high risk, whatever level it names.
fn crisis_risk(facts: &NoteFacts) -> Option<RiskLevel> {
    (facts.crisis_flag || facts.risk.is_some_and(|r| r >= RiskLevel::High))
        .then(|| facts.risk.unwrap_or(RiskLevel::High).max(RiskLevel::High))
}

/// How often an amendment is checked again when others to the same note keep being appended
/// between its check and its write.
const AMEND_ATTEMPTS: usize = 5;

/// Why one attempt at an amendment stored nothing.
enum AmendError {
    Refused(ApiError),
    /// Another amendment was appended after this one's check: check it again.
    NoteChanged,
}

impl From<ApiError> for AmendError {
    fn from(e: ApiError) -> Self {
        AmendError::Refused(e)
    }
}

/// Appends an amendment: the whole note, amended, must still satisfy its form.
///
/// The change is checked against the note as it reads at that moment, and appended only if no
/// other amendment came in between; if one did, it is checked again against the note with that
/// one, as if the two had been made one after the other (the one that no longer fits is refused
/// field by field, as any amendment would be). Two amendments made at once can therefore never
/// together give a note neither was checked against.
#[tracing::instrument(skip_all, fields(note = id))]
pub async fn amend(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<AmendmentRequest>,
) -> Result<(StatusCode, Json<Amendment>), ApiError> {
    let reason = req.reason.trim();
    for _ in 0..AMEND_ATTEMPTS {
        match amend_once(&state, &user, id, reason, &req.changes).await {
            Ok(amendment) => return Ok((StatusCode::CREATED, Json(amendment))),
            Err(AmendError::Refused(e)) => return Err(e),
            Err(AmendError::NoteChanged) => {
                tracing::info!(
                    note = id,
                    "note amended meanwhile; checking the amendment again"
                );
            }
        }
    }
    Err(ApiError::Conflict(
        "this note is being amended by others right now; reload it and try again".into(),
    ))
}

/// One attempt: read the note, check the amended whole, append if the note is still as read.
async fn amend_once(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    reason: &str,
    changes: &NoteFields,
) -> Result<Amendment, AmendError> {
    let note = state.store.note(id).await.map_err(ApiError::from)?;
    if note.status != NoteStatus::Submitted {
        return Err(ApiError::Conflict("a draft is edited, not amended".into()).into());
    }
    let window_ms = state.settings.notes.amend_window_hours * 3_600_000;
    let now = Timestamp::now();
    let own_in_window = note.author == user.id()
        && note
            .submitted_at
            .is_some_and(|at| now.since(at) <= window_ms);
    let supervisor = matches!(user.role(), Role::Supervisor | Role::Admin);
    if !(own_in_window || supervisor) {
        return Err(ApiError::Forbidden.into());
    }
    // The request itself is judged only once the note is known to exist and to be the user's to
    // amend: a missing note is 404 and someone else's 403, whatever the body says.
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::Invalid("reason: say why, in at most 500 characters".into()).into());
    }
    check_size(changes)?;
    let before = note.effective();
    let mut amended = before.clone();
    amended.extend(changes.clone());
    let facts = state
        .note_form
        .validate(&amended)
        .map_err(ApiError::InvalidFields)?;
    // An amendment that brings the note to crisis level, or to a higher one, pages as such a
    // submission does (once per contact: a contact whose crisis was handled is not paged again).
    let was = state
        .note_form
        .validate(&before)
        .ok()
        .and_then(|f| crisis_risk(&f));
    let crisis = crisis_risk(&facts).filter(|&risk| Some(risk) > was);
    let checked_against = note.amendments.last().map(|a| a.id);
    let stored = async {
        match state
            .store
            .amend_note(id, user.id(), reason, changes, now, checked_against)
            .await
            .map_err(ApiError::from)?
        {
            Some(amendment) => {
                tracing::info!(note = id, "note amended");
                Ok(amendment)
            }
            None => Err(AmendError::NoteChanged),
        }
    };
    paging_if_crisis(state, note.contact, user.id(), crisis, stored).await
}
