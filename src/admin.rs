//! The administrators' HTTP API: accounts and roles, skills with proficiency, queues.
//! Every change that affects routing is pushed to the engine at once (a removed skill stops
//! routing those contacts to that person immediately).

use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{CurrentUser, check_new_password, hash_password};
use crate::domain::{Language, OperatorId, Proficiency, QueueId, Role, Skill};
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::gateway::RouterError;
use crate::queues::QueueDefinition;
use crate::routing::{Command, EngineError, OperatorProfile};
use crate::store::{Account, AccountUpdate, NewAccount, SkillInfo};

/// An account as administrators see it (never the hash).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AccountView {
    pub id: OperatorId,
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub languages: Vec<Language>,
    pub chat_capacity: u8,
    pub voice_capacity: u8,
    /// While holding a voice contact this person is offered no chat, and while holding a chat
    /// no voice contact.
    pub voice_excludes_chat: bool,
    pub disabled: bool,
    pub skills: Vec<SkillLevel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SkillLevel {
    pub skill: Skill,
    pub proficiency: Proficiency,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountRequest {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub password: String,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default = "default_chat_capacity")]
    pub chat_capacity: u8,
    #[serde(default = "default_voice_capacity")]
    pub voice_capacity: u8,
    /// While holding a voice contact, take no chat (and the other way round); true if absent.
    #[serde(default = "default_voice_excludes_chat")]
    pub voice_excludes_chat: bool,
}

fn default_chat_capacity() -> u8 {
    2
}
fn default_voice_capacity() -> u8 {
    1
}
fn default_voice_excludes_chat() -> bool {
    true
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub languages: Option<Vec<Language>>,
    pub chat_capacity: Option<u8>,
    pub voice_capacity: Option<u8>,
    pub voice_excludes_chat: Option<bool>,
    pub disabled: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    pub password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillDescription {
    pub description: String,
}

const MAX_CHAT_CAPACITY: u8 = 8;

/// Login names: 2–40 characters of letters, digits, '.', '_' or '-'.
pub fn check_account_name(name: &str) -> Result<(), ApiError> {
    let ok = (2..=40).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Invalid(
            "name: must be 2-40 characters of letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

fn check_display_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 60 {
        return Err(ApiError::Invalid(
            "display_name: must be 1-60 characters".into(),
        ));
    }
    Ok(())
}

fn check_capacity(chat: Option<u8>, voice: Option<u8>) -> Result<(), ApiError> {
    if chat.is_some_and(|c| c > MAX_CHAT_CAPACITY) {
        return Err(ApiError::Invalid(format!(
            "chat_capacity: must be at most {MAX_CHAT_CAPACITY}"
        )));
    }
    if voice.is_some_and(|v| v > 1) {
        return Err(ApiError::Invalid("voice_capacity: must be 0 or 1".into()));
    }
    Ok(())
}

/// The engine's profile of an account. Admins and disabled accounts take no contacts.
pub fn profile_of(account: &Account, skills: &[(Skill, Proficiency)]) -> OperatorProfile {
    let routable = account.role.takes_contacts() && !account.disabled;
    OperatorProfile {
        id: account.id,
        skills: skills.iter().cloned().collect(),
        languages: account.languages.clone(),
        chat_capacity: if routable { account.chat_capacity } else { 0 },
        voice_capacity: if routable { account.voice_capacity } else { 0 },
        voice_excludes_chat: account.voice_excludes_chat,
    }
}

/// Reads an account and its skills afresh and puts that profile and name in force (engine and
/// hub); returns the account as read. Call it after every change to an account, and whenever a
/// console connects. Pushes go one at a time, each reading after the one before it, so whatever
/// order changes and pushes come in, the profile in force is the account as it was last changed:
/// an older read is never pushed after a newer one.
pub async fn sync_account(state: &AppState, id: OperatorId) -> Result<AccountView, ApiError> {
    let _one_at_a_time = state.profile_sync.lock().await;
    let account = state.store.account(id).await?;
    let skills = state.store.account_skills(id).await?;
    state
        .router
        .send(Command::UpsertOperator(profile_of(&account, &skills)))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    state
        .hub
        .set_person(account.id, crate::gateway::hub::Person::of(&account));
    Ok(view(&account, skills))
}

fn view(account: &Account, skills: Vec<(Skill, Proficiency)>) -> AccountView {
    AccountView {
        id: account.id,
        name: account.name.clone(),
        display_name: account.display_name.clone(),
        role: account.role,
        languages: account.languages.clone(),
        chat_capacity: account.chat_capacity,
        voice_capacity: account.voice_capacity,
        voice_excludes_chat: account.voice_excludes_chat,
        disabled: account.disabled,
        skills: skills
            .into_iter()
            .map(|(skill, proficiency)| SkillLevel { skill, proficiency })
            .collect(),
    }
}

pub async fn list_accounts(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    user.require(&[Role::Admin, Role::Supervisor])?;
    let mut out = Vec::new();
    for account in state.store.accounts().await? {
        let skills = state.store.account_skills(account.id).await?;
        out.push(view(&account, skills));
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
pub async fn create_account(
    State(state): State<AppState>,
    user: CurrentUser,
    Json(req): Json<NewAccountRequest>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    user.require(&[Role::Admin])?;
    check_account_name(&req.name)?;
    check_display_name(&req.display_name)?;
    check_new_password(&req.password)?;
    check_capacity(Some(req.chat_capacity), Some(req.voice_capacity))?;
    if req.role.takes_contacts() && req.languages.is_empty() {
        return Err(ApiError::Invalid(
            "languages: name at least one language this person speaks (contacts are routed by it)"
                .into(),
        ));
    }
    let password_hash = hash_password(req.password).await?;
    let account = state
        .store
        .create_account(
            NewAccount {
                name: req.name,
                display_name: req.display_name,
                role: req.role,
                password_hash,
                languages: req.languages,
                chat_capacity: req.chat_capacity,
                voice_capacity: req.voice_capacity,
                voice_excludes_chat: req.voice_excludes_chat,
                must_change_password: true,
            },
            crate::domain::Timestamp::now(),
        )
        .await?;
    tracing::info!(account = %account.id, by = %user.id(), "account created");
    Ok((
        StatusCode::CREATED,
        Json(sync_account(&state, account.id).await?),
    ))
}

#[tracing::instrument(skip_all)]
pub async fn update_account(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(patch): Json<AccountPatch>,
) -> Result<Json<AccountView>, ApiError> {
    user.require(&[Role::Admin])?;
    if let Some(name) = &patch.display_name {
        check_display_name(name)?;
    }
    check_capacity(patch.chat_capacity, patch.voice_capacity)?;
    let id = OperatorId(id);
    if id == user.id()
        && (patch.disabled == Some(true) || patch.role.is_some_and(|r| r != Role::Admin))
    {
        return Err(ApiError::Invalid(
            "you cannot disable or demote your own account".into(),
        ));
    }
    // The role as it was: an edit that sends the same role back changes nothing about it.
    let before = state.store.account(id).await?;
    let role_changed = patch.role.is_some_and(|role| role != before.role);
    let account = state
        .store
        .update_account(
            id,
            AccountUpdate {
                display_name: patch.display_name,
                role: patch.role,
                languages: patch.languages,
                chat_capacity: patch.chat_capacity,
                voice_capacity: patch.voice_capacity,
                voice_excludes_chat: patch.voice_excludes_chat,
                disabled: patch.disabled,
            },
        )
        .await?;
    if account.disabled {
        state.store.delete_sessions_of(id).await?;
    }
    // An open console works with the account as it was when it connected: close it.
    if account.disabled || role_changed {
        state.hub.sign_out_staff(id);
    }
    tracing::info!(account = %id, by = %user.id(), "account updated");
    let view = sync_account(&state, id).await?;
    // Someone who may take no more contacts (disabled, or moved to a role that takes none) is not
    // coming back to the ones they hold: they go offline now, and their live contacts are
    // offered again first in line instead of waiting out the reconnection grace period.
    let routable = account.role.takes_contacts() && !account.disabled;
    if !routable && (patch.disabled == Some(true) || role_changed) {
        state
            .router
            .send(Command::SetPresence {
                operator: id,
                presence: crate::domain::Presence::Offline,
            })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    // Someone who may no longer join contacts is taken out of those they joined: a demoted
    // supervisor must not go on listening to (or barging into) a caller's conversation.
    if (account.disabled || !account.role.may_join_contacts())
        && (patch.disabled == Some(true) || role_changed)
    {
        state
            .router
            .send(Command::LeaveAll { participant: id })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
    }
    Ok(Json(view))
}

pub async fn reset_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin])?;
    check_new_password(&req.password)?;
    let id = OperatorId(id);
    state.store.account(id).await?;
    let hash = hash_password(req.password).await?;
    state.store.set_password(id, &hash, true).await?;
    state.store.delete_sessions_of(id).await?;
    state.hub.sign_out_staff(id);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_account_skills(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Json(skills): Json<Vec<SkillLevel>>,
) -> Result<Json<AccountView>, ApiError> {
    user.require(&[Role::Admin])?;
    let id = OperatorId(id);
    state.store.account(id).await?;
    let pairs: Vec<_> = skills
        .into_iter()
        .map(|s| (s.skill, s.proficiency))
        .collect();
    // A skill has one proficiency: the store would refuse the second as a conflict.
    if let Some((skill, _)) = pairs
        .iter()
        .enumerate()
        .find_map(|(i, (skill, _))| pairs[..i].iter().find(|(s, _)| s == skill))
    {
        return Err(ApiError::Invalid(format!(
            "skills: {} is named more than once",
            skill.as_str()
        )));
    }
    state
        .store
        .set_account_skills(id, &pairs)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::Invalid("skills: unknown skill; add it to the catalogue first".into())
            }
            other => other.into(),
        })?;
    Ok(Json(sync_account(&state, id).await?))
}

pub async fn list_skills(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<SkillInfo>>, ApiError> {
    Ok(Json(state.store.skills().await?))
}

pub async fn put_skill(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(skill): Path<String>,
    Json(req): Json<SkillDescription>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin])?;
    let skill = Skill::parse(&skill)?;
    state
        .store
        .put_skill(SkillInfo {
            skill,
            description: req.description,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_queues(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<QueueDefinition>>, ApiError> {
    Ok(Json(state.queues_snapshot()))
}

/// Saves a queue: stored and in force together, or neither (the answer says which). Routing
/// writes the definition and applies it in one step ([`RouterHandle::define_queue`]), so no
/// contact is routed by a definition the store does not hold, nor the other way round.
///
/// [`RouterHandle::define_queue`]: crate::gateway::RouterHandle::define_queue
#[tracing::instrument(skip_all)]
pub async fn put_queue(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(queue): Json<QueueDefinition>,
) -> Result<Json<QueueDefinition>, ApiError> {
    user.require(&[Role::Admin])?;
    let id = QueueId::parse(&id)?;
    if queue.id != id {
        return Err(ApiError::Invalid("id: must match the path".into()));
    }
    if queue.name.trim().is_empty() {
        return Err(ApiError::Invalid("name: must not be empty".into()));
    }
    queue.check().map_err(ApiError::Invalid)?;
    if queue
        .relaxation
        .windows(2)
        .any(|w| w[0].after_ms >= w[1].after_ms)
        || queue.relaxation.iter().any(|s| s.after_ms < 0)
    {
        return Err(ApiError::Invalid(
            "relaxation: steps must have increasing, non-negative after_ms".into(),
        ));
    }
    let _edit = state.queue_edits.lock().await;
    if let Some(target) = &queue.overflow_to
        && (target == &id || !state.queues_snapshot().iter().any(|q| &q.id == target))
    {
        return Err(ApiError::Invalid(
            "overflow_to: must name another existing queue".into(),
        ));
    }
    match state.router.define_queue(queue.clone()).await {
        Ok(()) => {
            state.set_queue(queue.clone());
            tracing::info!(queue = %id, by = %user.id(), "queue saved");
            Ok(Json(queue))
        }
        Err(e) => {
            tracing::error!(queue = %id, error = %e, "queue not saved");
            Err(ApiError::Unavailable(
                "the queue was not saved and nothing changed: the service cannot save right now; \
                 please try again in a moment"
                    .into(),
            ))
        }
    }
}

pub async fn delete_queue(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    user.require(&[Role::Admin])?;
    let id = QueueId::parse(&id)?;
    let _edit = state.queue_edits.lock().await;
    if state
        .queues_snapshot()
        .iter()
        .any(|q| q.overflow_to.as_ref() == Some(&id))
    {
        return Err(ApiError::Conflict(
            "another queue overflows to this one".into(),
        ));
    }
    // The engine checks and forgets in one step, so no contact can enter the queue between the
    // check and the deletion (and none can be transferred into it afterwards).
    match state
        .router
        .send(Command::RemoveQueue { queue: id.clone() })
        .await
    {
        Ok(_) | Err(RouterError::Engine(EngineError::UnknownQueue)) => {}
        Err(RouterError::Engine(EngineError::QueueInUse)) => {
            return Err(ApiError::Conflict(
                "contacts are still in this queue".into(),
            ));
        }
        Err(e) => return Err(ApiError::Internal(e.into())),
    }
    if let Err(e) = state.store.delete_queue(&id).await {
        // Still stored: routing must know it again.
        if let Some(queue) = state.queue(&id) {
            let _ = state
                .router
                .send(Command::UpsertQueue(queue.routing()))
                .await;
        }
        return Err(e.into());
    }
    state.remove_queue(&id);
    Ok(StatusCode::NO_CONTENT)
}
