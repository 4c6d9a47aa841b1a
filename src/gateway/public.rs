//! Plain HTTP reads: what the caller page shows before the chat, the supervisors' wallboard
//! snapshot, and a contact's transcript for the people in it and supervisors.

use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::protocol::{StaffEvent, StaffLine};
use super::router::floor;
use crate::app::AppState;
use crate::auth::CurrentUser;
use crate::domain::{ContactId, Language, OperatorId, QueueId, Role, Timestamp, Topic};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query, query_field, whole_number};
use crate::notes::form::Label;
use crate::queues::Alternative;
use crate::routing::OperatorState;
use crate::store::Reader;

/// What the caller page needs before the pre-chat step.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicInfo {
    pub queues: Vec<PublicQueue>,
    /// The confidentiality statement and its exceptions, which the caller must accept.
    pub confidentiality: Confidentiality,
    /// Topics the caller may choose in the pre-chat step (ids as `join.topic` expects).
    pub topics: Vec<TopicChoice>,
    /// The longest line a caller may write, in UTF-8 bytes (a Chinese character is three).
    pub max_message_bytes: usize,
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

/// The statement and its exceptions, in each console language.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Confidentiality {
    pub statement: Label,
    pub exceptions: Vec<Label>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TopicChoice {
    pub id: Topic,
    pub label: Label,
}

fn label(zh: &str, en: &str) -> Label {
    Label {
        zh: zh.into(),
        en: en.into(),
    }
}

fn confidentiality() -> Confidentiality {
    Confidentiality {
        statement: label(
            "你在这里说的话会被保密。你不需要告诉我们你的名字。对话会被安全地记录和保存，\
             只有为你提供帮助的工作人员及其督导可以查看。",
            "What you share here stays confidential. You do not have to give your name. \
             Conversations are recorded and kept securely, and only the people who support \
             you and their supervisors can read them.",
        ),
        exceptions: vec![
            label(
                "如果你或他人的生命正处于紧迫危险中，我们可能会联系紧急服务（110 / 120）以保护你的安全。",
                "If your life or someone else's life is in immediate danger, we may contact \
                 emergency services (110 / 120) to keep you safe.",
            ),
            label(
                "如果儿童或其他弱势人士正在受到伤害，我们可能需要告知负责保护他们的部门。",
                "If a child or a vulnerable person is being harmed, we may have to tell the \
                 authorities who protect them.",
            ),
            label(
                "如果法律要求我们提供信息，我们只会提供法律要求的部分。",
                "If the law requires us to share information, we will share only what is required.",
            ),
        ],
    }
}

/// The pre-chat topics. `caller.topic_skills` in the settings may map any of these ids to skills.
pub fn topics() -> Vec<TopicChoice> {
    [
        ("emotions", "情绪困扰", "Feelings and mood"),
        (
            "suicide",
            "自杀或自伤的想法",
            "Thoughts of suicide or self-harm",
        ),
        ("family", "家庭", "Family"),
        ("relationships", "恋爱与人际关系", "Relationships"),
        ("study", "学习与学校", "Study and school"),
        ("work", "工作", "Work"),
        ("health", "健康", "Health"),
        ("loss", "丧亲与失去", "Loss and bereavement"),
        ("violence", "暴力或虐待", "Violence or abuse"),
        ("other", "其他", "Something else"),
    ]
    .into_iter()
    .filter_map(|(id, zh, en)| {
        Some(TopicChoice {
            id: Topic::parse(id).ok()?,
            label: label(zh, en),
        })
    })
    .collect()
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
        topics: topics(),
        max_message_bytes: state.settings.caller.max_message_bytes,
    })
}

/// A colleague, for transfers and for naming participants.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct StaffMember {
    pub id: OperatorId,
    pub name: String,
    pub role: Role,
    /// Routing state, for people who take contacts.
    pub state: Option<OperatorState>,
}

/// Every active colleague with their state now (any signed-in staff member).
pub async fn staff(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<StaffMember>>, ApiError> {
    let states = state
        .router
        .read(|engine, _| {
            engine
                .operators()
                .into_iter()
                .map(|o| (o.id, o.state))
                .collect::<std::collections::HashMap<_, _>>()
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let members = state
        .hub
        .people()
        .into_iter()
        .filter(|(_, p)| !p.disabled)
        .map(|(id, p)| StaffMember {
            id,
            name: p.name,
            role: p.role,
            state: states.get(&id).copied().filter(|_| p.role.takes_contacts()),
        })
        .collect();
    Ok(Json(members))
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
        .read(move |engine, _| floor(engine, |id| hub.person(id)))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(frame))
}

/// Which stretch of a transcript to read.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TranscriptQuery {
    /// Lines before this `seq`; the newest lines when absent.
    pub before: Option<String>,
    /// At most this many lines, 1–1000; `caller.transcript_page_lines` when absent.
    pub limit: Option<String>,
}

/// A stretch of a transcript, oldest line first.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TranscriptLines {
    pub lines: Vec<StaffLine>,
    /// Earlier lines exist: ask again with `before` set to the first line's `seq`.
    pub earlier: bool,
}

/// The most lines one transcript read returns.
const MAX_TRANSCRIPT_LINES: u32 = 1_000;

impl TranscriptQuery {
    fn parse(&self, default_limit: u32) -> Result<(Option<i64>, u32), ApiError> {
        let before = query_field(self.before.as_deref(), whole_number("before"))?;
        let limit = match query_field(self.limit.as_deref(), whole_number("limit"))? {
            None => default_limit.min(MAX_TRANSCRIPT_LINES),
            Some(n) if (1..=i64::from(MAX_TRANSCRIPT_LINES)).contains(&n) => n as u32,
            Some(_) => {
                return Err(ApiError::Invalid(format!(
                    "limit: must be 1 to {MAX_TRANSCRIPT_LINES}"
                )));
            }
        };
        Ok((before, limit))
    }
}

/// A contact's transcript, a page at a time (the newest lines first): for the people in it
/// now, and for supervisors.
pub async fn transcript(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(query): Query<TranscriptQuery>,
) -> Result<Json<TranscriptLines>, ApiError> {
    let (before, limit) = query.parse(state.settings.caller.transcript_page_lines.get())?;
    let contact = ContactId(id);
    let allowed = matches!(user.role(), Role::Supervisor | Role::Admin)
        || super::staff::is_member(&state, user.id(), contact);
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    // Who reads a transcript is always recorded (confidentiality); no record, no read.
    crate::quality::record_access(
        &state,
        &user,
        contact,
        crate::store::quality::AccessKind::Transcript,
    )
    .await?;
    let page = state
        .store
        .transcript_page(contact, Reader::Staff, before, limit)
        .await?;
    Ok(Json(TranscriptLines {
        lines: page.lines.iter().map(StaffLine::from).collect(),
        earlier: page.earlier,
    }))
}
