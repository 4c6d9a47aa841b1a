//! Every WebSocket frame, as Rust types. `proto/` is generated from these (JSON Schema) and is the
//! contract with the web console; change a type here, then run `hotline proto` to regenerate it.
//!
//! Frames are JSON text with a `type` tag. Version: [`PROTOCOL_VERSION`], sent in every `hello`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Channel, ContactId, JoinMode, Language, OperatorId, Presence, QueueId, RiskColour, RiskLevel,
    Role, Timestamp, Topic,
};
use crate::paging::IncidentView;
use crate::queues::Alternative;
use crate::routing::{ContactState, EndedBy, OperatorState, TransferTarget};
use crate::store::{Message, Sender, Visibility};

pub const PROTOCOL_VERSION: u32 = 1;

/// The caller's answer to the one risk-screening question of the pre-chat step:
/// "Are you thinking about ending your life, or are you in danger right now?"
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningAnswer {
    No,
    PreferNotToSay,
    /// Thoughts of suicide or self-harm.
    Thoughts,
    /// In danger right now.
    DangerNow,
}

impl ScreeningAnswer {
    pub fn risk(self) -> RiskLevel {
        match self {
            ScreeningAnswer::No => RiskLevel::None,
            ScreeningAnswer::PreferNotToSay => RiskLevel::Low,
            ScreeningAnswer::Thoughts => RiskLevel::High,
            ScreeningAnswer::DangerNow => RiskLevel::Imminent,
        }
    }
}

/// Frames a caller's browser sends on `/ws/caller`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CallerRequest {
    /// The pre-chat step, completed: enter a queue.
    Join {
        queue: QueueId,
        language: Language,
        #[serde(default)]
        topic: Option<Topic>,
        #[serde(default)]
        age_group: Option<String>,
        screening: ScreeningAnswer,
        /// Must be true: the caller has read the confidentiality statement and its exceptions.
        accepted_confidentiality: bool,
        /// A pseudonymous key the browser keeps (with consent) to link repeat contacts.
        #[serde(default)]
        caller_key: Option<String>,
    },
    /// Come back to a contact after a reload or network loss.
    Resume {
        resume_token: String,
    },
    Say {
        text: String,
        /// Echoed in `said`, so the browser can match its pending line.
        client_id: String,
    },
    Typing,
    /// Read the lines before `before` (a `seq`): answered by `earlier`.
    Earlier {
        before: i64,
    },
    /// Leave the queue or end the chat.
    Leave,
    Ping,
}

/// Frames the server sends to a caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallerEvent {
    Hello {
        protocol: u32,
    },
    /// The contact is durable and queued. Keep `resume_token` to come back.
    Joined {
        contact: ContactId,
        resume_token: String,
        /// 1-based place among the queue's contacts of the same channel.
        position: u32,
        estimated_wait_ms: i64,
    },
    /// Back on an existing contact; the transcript so far (its newest lines when long).
    Resumed {
        contact: ContactId,
        state: ContactState,
        transcript: Vec<TranscriptLine>,
        /// Lines exist before the first of `transcript`: ask with `earlier`.
        earlier: bool,
        position: Option<u32>,
        estimated_wait_ms: Option<i64>,
    },
    /// The queue is closed now.
    Closed {
        message: String,
        alternatives: Vec<Alternative>,
    },
    QueueUpdate {
        /// 1-based place among the queue's contacts of the same channel.
        position: u32,
        estimated_wait_ms: i64,
    },
    /// An operator took the contact.
    Connected {
        operator_name: String,
    },
    /// A line written by the caller is durable.
    Said {
        client_id: String,
        seq: i64,
    },
    Message {
        line: TranscriptLine,
    },
    Typing,
    /// The answer to `earlier`: the lines just before the one asked, oldest first.
    Earlier {
        lines: Vec<TranscriptLine>,
        /// Still earlier lines exist.
        earlier: bool,
    },
    /// The caller is being transferred; they stay connected.
    Transferring,
    Ended {
        by: EndedBy,
    },
    Pong,
    Error(ErrorFrame),
}

/// A transcript line as a caller sees it (no internal ids).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TranscriptLine {
    pub seq: i64,
    pub sender: Sender,
    pub body: String,
    pub at: Timestamp,
}

impl From<&Message> for TranscriptLine {
    fn from(m: &Message) -> Self {
        TranscriptLine {
            seq: m.seq,
            sender: m.sender,
            body: m.body.clone(),
            at: m.at,
        }
    }
}

/// An error answer. The connection stays usable unless the server closes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorFrame {
    /// Stable, machine-readable: bad_frame, too_large, unknown_type, not_joined, closed, forbidden,
    /// not_found, rate_limited, invalid, unknown_contact, not_offered, wrong_state, unavailable, internal,
    /// replaced (a caller's conversation was resumed in another window)…
    pub code: String,
    pub message: String,
    /// For a refused `say`: the line's `client_id`, so the sender can mark that line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// For `internal`: the id under which the server logged the failure, for support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
}

impl ErrorFrame {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorFrame {
            code: code.into(),
            message: message.into(),
            client_id: None,
            error_id: None,
        }
    }

    /// The same error, marked as the answer to the line `client_id`.
    pub fn for_line(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }
}

/// Frames a staff member's console sends on `/ws/staff` (operators, crisis leads, supervisors, admins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StaffRequest {
    SetPresence {
        presence: Presence,
    },
    Accept {
        contact: ContactId,
    },
    Reject {
        contact: ContactId,
    },
    Say {
        contact: ContactId,
        text: String,
        client_id: String,
    },
    Typing {
        contact: ContactId,
    },
    /// End the conversation; wrap-up starts.
    End {
        contact: ContactId,
    },
    FinishWrapUp {
        contact: ContactId,
    },
    Transfer {
        contact: ContactId,
        target: TransferTarget,
    },
    RaiseRisk {
        contact: ContactId,
        risk: RiskLevel,
    },
    /// Join a live contact as monitor, whisper or barge (supervisors, crisis leads, admins).
    Join {
        contact: ContactId,
        mode: JoinMode,
    },
    Leave {
        contact: ContactId,
    },
    Ping,
}

/// A contact as staff see it in offers, desks and wallboards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactSummary {
    pub id: ContactId,
    pub queue: QueueId,
    pub channel: Channel,
    pub language: Language,
    pub topic: Option<Topic>,
    pub risk: RiskLevel,
    pub colour: RiskColour,
    pub state: ContactState,
    pub entered_at: Timestamp,
    pub operator: Option<OperatorId>,
    pub caller_away: bool,
}

/// A transcript line as staff see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StaffLine {
    pub contact: ContactId,
    pub seq: i64,
    pub sender: Sender,
    pub author: Option<OperatorId>,
    pub visibility: Visibility,
    pub body: String,
    pub at: Timestamp,
}

impl From<&Message> for StaffLine {
    fn from(m: &Message) -> Self {
        StaffLine {
            contact: m.contact,
            seq: m.seq,
            sender: m.sender,
            author: m.author,
            visibility: m.visibility,
            body: m.body.clone(),
            at: m.at,
        }
    }
}

/// Frames the server sends to a staff console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StaffEvent {
    Hello {
        protocol: u32,
        operator: OperatorId,
        name: String,
        role: Role,
        state: Option<OperatorState>,
        /// Contacts this person holds or has joined, with transcripts (after a reconnect too).
        contacts: Vec<ContactDetail>,
        /// Contacts whose offer rings for this person now. An offer survives a reconnect only
        /// when the new console replaced the old one before the server saw it go (a lost
        /// connection rescinds it, and its `offer_withdrawn` reached nobody): a console keeps
        /// the cards listed here and drops any other.
        offered: Vec<ContactId>,
    },
    /// A contact rings: accept or reject before `expires_at`.
    Offer {
        contact: ContactSummary,
        expires_at: Timestamp,
        /// What the caller wrote while waiting (the newest lines when long).
        transcript: Vec<StaffLine>,
        /// Lines exist before the first of `transcript`.
        earlier: bool,
    },
    OfferWithdrawn {
        contact: ContactId,
        reason: String,
    },
    /// The contact is yours (accepted, or restored after a reconnect).
    Assigned {
        contact: ContactDetail,
    },
    Message {
        line: StaffLine,
    },
    Said {
        client_id: String,
        contact: ContactId,
        seq: i64,
    },
    Typing {
        contact: ContactId,
    },
    RiskChanged {
        contact: ContactId,
        risk: RiskLevel,
        colour: RiskColour,
    },
    CallerAway {
        contact: ContactId,
    },
    CallerBack {
        contact: ContactId,
    },
    /// The conversation ended; fill the note and finish wrap-up before `deadline`.
    WrapUp {
        contact: ContactId,
        by: EndedBy,
        deadline: Timestamp,
    },
    Completed {
        contact: ContactId,
    },
    /// The contact left you (transferred, requeued or abandoned).
    Released {
        contact: ContactId,
        reason: String,
    },
    /// You joined a live contact as a participant; the transcript so far.
    Joined {
        contact: ContactDetail,
        mode: JoinMode,
    },
    /// Someone joined (mode set) or left (mode null) a contact you are in.
    Participant {
        contact: ContactId,
        participant: OperatorId,
        mode: Option<JoinMode>,
    },
    State {
        state: OperatorState,
    },
    /// For supervisors, crisis leads and admins: a change on the floor (operator state or contact).
    Floor {
        contacts: Vec<ContactSummary>,
        operators: Vec<FloorOperator>,
    },
    /// You are paged: a crisis incident needs you. Acknowledge it (`POST
    /// /api/incidents/{id}/acknowledge`) or the next level is paged.
    Page {
        incident: IncidentView,
    },
    /// An incident changed (for supervisors, crisis leads, admins and the operator holding the
    /// contact): state, level, or a new step on its timeline.
    IncidentChanged {
        incident: IncidentView,
    },
    /// The server is going down; reconnect shortly.
    Shutdown,
    Pong,
    Error(ErrorFrame),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactDetail {
    pub summary: ContactSummary,
    /// How the reader takes part, when they joined the contact (monitor, whisper or barge);
    /// null for its holder. A console that reconnects or reloads learns it here.
    pub mode: Option<JoinMode>,
    /// Who has joined the contact (supervisors, crisis leads), the reader included if they did.
    pub participants: Vec<ContactParticipant>,
    /// The transcript, or its newest lines when long.
    pub transcript: Vec<StaffLine>,
    /// Lines exist before the first of `transcript`: read them a page at a time with
    /// `GET /api/contacts/{id}/transcript?before={seq}`.
    pub earlier: bool,
    /// The caller's earlier contacts (same pseudonymous key), newest first.
    pub history: Vec<HistoryItem>,
}

/// Someone who joined a live contact, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactParticipant {
    pub id: OperatorId,
    /// Their display name, when the server has it at hand.
    pub name: Option<String>,
    pub mode: JoinMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryItem {
    pub contact: ContactId,
    pub entered_at: Timestamp,
    pub topic: Option<Topic>,
    pub risk: RiskLevel,
    pub state: ContactState,
    /// Submitted notes of that contact (as amended), newest last.
    pub notes: Vec<HistoryNote>,
}

/// What the next operator needs to know from an earlier note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HistoryNote {
    pub author: OperatorId,
    pub call_type: Option<String>,
    pub risk_level: Option<RiskLevel>,
    pub summary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FloorOperator {
    pub id: OperatorId,
    pub name: String,
    pub role: Role,
    pub state: OperatorState,
    pub contacts: Vec<ContactId>,
}
