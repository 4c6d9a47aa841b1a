//! The engine's vocabulary: commands in, events out, configuration and read-only views.
//! Kept apart from the engine so that storage and the protocol depend on words, not on decisions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{
    BreakReason, Channel, ContactId, JoinMode, Language, OperatorId, Presence, Proficiency,
    QueueId, RiskLevel, Skill, Timestamp, Topic,
};

/// Engine-wide timings and policy. All durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EngineConfig {
    /// How long an offer rings before it times out and the contact returns to its place.
    pub offer_timeout_ms: i64,
    /// Consecutive offer timeouts after which the operator is put on break (`BreakReason::NoAnswer`).
    pub max_no_answer: u32,
    /// Longest enforced wrap-up after a contact ends; then it completes on its own.
    pub wrap_up_max_ms: i64,
    /// How long a disconnected operator keeps their contacts before going offline.
    pub operator_grace_ms: i64,
    /// How long a disconnected caller keeps their contact before it counts as abandoned.
    pub caller_grace_ms: i64,
    /// How long after an abandon the caller may come back and resume their place.
    pub resume_window_ms: i64,
    /// Ageing bonus per risk level (indexed by `RiskLevel::index`), in ms of extra waiting credited.
    /// Imminent is strictly first regardless of this table.
    pub risk_bonus_ms: [i64; 5],
    /// Handle time assumed for wait estimates before any contact has completed.
    pub default_handle_ms: i64,
    /// The skill every high- or imminent-risk contact needs: added when a contact joins at that
    /// risk, and when its risk rises to it. Set from `caller.crisis_skill`, not read here.
    #[serde(skip)]
    pub crisis_skill: Option<Skill>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            offer_timeout_ms: 20_000,
            max_no_answer: 2,
            wrap_up_max_ms: 120_000,
            operator_grace_ms: 30_000,
            caller_grace_ms: 60_000,
            resume_window_ms: 300_000,
            risk_bonus_ms: [0, 60_000, 180_000, 600_000, 0],
            default_handle_ms: 900_000,
            crisis_skill: None,
        }
    }
}

/// A skill a queue (or a topic) requires, at a minimum proficiency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkillRequirement {
    pub skill: Skill,
    pub min_proficiency: Proficiency,
}

/// One step of skill relaxation: after a contact has waited `after_ms`, every required
/// proficiency is capped at `max_proficiency`; with `drop_skills`, skills are no longer required
/// at all (the language still is, and so is the crisis skill of a contact that needs it). A
/// contact keeps its place in the queue while it relaxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RelaxStep {
    pub after_ms: i64,
    #[serde(default)]
    pub max_proficiency: Option<Proficiency>,
    #[serde(default)]
    pub drop_skills: bool,
}

/// A queue as the engine sees it (opening hours and names live outside the engine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QueueConfig {
    pub id: QueueId,
    #[serde(default)]
    pub required_skills: Vec<SkillRequirement>,
    /// Languages served; empty means any. A contact's language must also be spoken by the operator.
    #[serde(default)]
    pub languages: Vec<Language>,
    /// Relaxation steps, in increasing `after_ms`.
    #[serde(default)]
    pub relaxation: Vec<RelaxStep>,
    /// Crisis-only queues may be set never to relax.
    #[serde(default)]
    pub never_relax: bool,
    /// Backup queue for contacts nobody here can take, or that waited longer than `max_wait_ms`.
    #[serde(default)]
    pub overflow_to: Option<QueueId>,
    #[serde(default)]
    pub max_wait_ms: Option<i64>,
}

/// An operator's routing profile: what they can take, and how many at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorProfile {
    pub id: OperatorId,
    pub skills: BTreeMap<Skill, Proficiency>,
    pub languages: Vec<Language>,
    /// Simultaneous chats.
    pub chat_capacity: u8,
    /// Simultaneous voice contacts (normally 1; 0 for chat-only operators).
    pub voice_capacity: u8,
    /// While on a voice contact, take no chats (and the other way round).
    pub voice_excludes_chat: bool,
}

/// A new contact entering a queue. Its id comes from the store (reserved ahead by the router),
/// and its row is written in the same transaction as the events of entering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NewContact {
    pub id: ContactId,
    pub queue: QueueId,
    pub channel: Channel,
    pub language: Language,
    pub topic: Option<Topic>,
    /// Extra skills this contact needs beyond its queue's (e.g. from its topic).
    pub extra_skills: Vec<SkillRequirement>,
    pub risk: RiskLevel,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TransferTarget {
    Queue { queue: QueueId },
    Operator { operator: OperatorId },
}

/// Who ended a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    Caller,
    Operator,
    /// The caller's connection was lost and did not come back within the grace period.
    CallerLost,
}

/// Why a contact went back into a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequeueReason {
    /// Its operator disconnected and did not return within the grace period; it is re-offered first.
    OperatorLost,
    /// A targeted transfer was not taken.
    TransferNotTaken,
}

/// Why a contact overflowed to its queue's backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverflowReason {
    NoEligibleOperator,
    MaxWait,
}

/// A command to the engine. Everything that changes routing state is one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Adds a queue or replaces its configuration at once: waiting contacts are placed again
    /// under the new requirements, and a ringing offer they no longer allow is rescinded.
    UpsertQueue(QueueConfig),
    /// Forgets a deleted queue, so nothing can enter it any more (a join, a transfer). Refused
    /// while a contact is in it (abandoned ones that may still resume included) or another
    /// queue overflows to it.
    RemoveQueue {
        queue: QueueId,
    },
    /// Adds or updates an operator's profile (skills, languages, capacity). Takes effect at once:
    /// a lapsed skill stops routing those contacts immediately, and an offer ringing for a
    /// contact the operator no longer fits is rescinded (the contact keeps its place).
    UpsertOperator(OperatorProfile),
    /// The operator's console connected (first time, or back within the grace period).
    OperatorConnected {
        operator: OperatorId,
    },
    /// The operator's console connection dropped; the grace period starts.
    OperatorDisconnected {
        operator: OperatorId,
    },
    SetPresence {
        operator: OperatorId,
        presence: Presence,
    },
    Enqueue(NewContact),
    /// Risk only rises this way (lexicon, screening, operator flag); it never silently falls.
    RaiseRisk {
        contact: ContactId,
        risk: RiskLevel,
    },
    Accept {
        operator: OperatorId,
        contact: ContactId,
    },
    Reject {
        operator: OperatorId,
        contact: ContactId,
    },
    End {
        contact: ContactId,
        by: EndedBy,
    },
    FinishWrapUp {
        operator: OperatorId,
        contact: ContactId,
    },
    /// The caller left on purpose (closed the chat while waiting or talking).
    CallerLeft {
        contact: ContactId,
    },
    CallerDisconnected {
        contact: ContactId,
    },
    /// The caller came back (after a reload or network loss, or within the resume window after an abandon).
    CallerReturned {
        contact: ContactId,
    },
    Transfer {
        contact: ContactId,
        by: OperatorId,
        target: TransferTarget,
    },
    Join {
        contact: ContactId,
        participant: OperatorId,
        mode: JoinMode,
    },
    Leave {
        contact: ContactId,
        participant: OperatorId,
    },
    /// Takes `participant` out of every contact they joined (a `Leave` each): their account may
    /// no longer join contacts (disabled, or moved to a role that does not join). Nothing for
    /// someone it does not know.
    LeaveAll {
        participant: OperatorId,
    },
}

/// The state of one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    Waiting,
    Offered,
    Assigned,
    Wrapping,
    Completed,
    Abandoned,
}

impl ContactState {
    pub fn is_terminal(self) -> bool {
        matches!(self, ContactState::Completed | ContactState::Abandoned)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Waiting => "waiting",
            ContactState::Offered => "offered",
            ContactState::Assigned => "assigned",
            ContactState::Wrapping => "wrapping",
            ContactState::Completed => "completed",
            ContactState::Abandoned => "abandoned",
        }
    }
}

/// The operator state shown on wallboards: presence, refined by what they are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OperatorState {
    Available,
    /// Available but full (every slot taken by offers, live contacts or wrap-ups).
    Busy,
    /// Available, and at least one slot is held by a contact in wrap-up with no free slot left.
    WrapUp,
    Break {
        reason: BreakReason,
    },
    /// Connection lost; contacts kept until the grace period ends.
    Away,
    Offline,
}

/// What the engine decided. Each is appended, in order, to the durable event log
/// (`kind` names follow Asterisk's queue_log in spirit: enter_queue, offer, accept, connect…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    EnterQueue {
        contact: ContactId,
        queue: QueueId,
        channel: Channel,
        risk: RiskLevel,
    },
    Offer {
        contact: ContactId,
        operator: OperatorId,
        expires_at: Timestamp,
    },
    Accept {
        contact: ContactId,
        operator: OperatorId,
    },
    /// The contact is connected to its operator. `waited_ms` is how long it waited for them:
    /// since it entered the queue for its first operator (its queue wait, overflows and a
    /// resume included), since the last operator let it go (a transfer, a requeue) for the next.
    Connect {
        contact: ContactId,
        operator: OperatorId,
        queue: QueueId,
        waited_ms: i64,
    },
    Reject {
        contact: ContactId,
        operator: OperatorId,
    },
    OfferTimeout {
        contact: ContactId,
        operator: OperatorId,
    },
    /// An offer withdrawn by the router (caller left, operator went away, higher priority…).
    OfferRescinded {
        contact: ContactId,
        operator: OperatorId,
    },
    RiskChange {
        contact: ContactId,
        from: RiskLevel,
        to: RiskLevel,
    },
    /// A waiting contact's skill requirements relaxed to the given step (index into `relaxation`).
    Relax {
        contact: ContactId,
        step: usize,
    },
    Overflow {
        contact: ContactId,
        from: QueueId,
        to: QueueId,
        reason: OverflowReason,
    },
    Transfer {
        contact: ContactId,
        from: OperatorId,
        target: TransferTarget,
    },
    Requeue {
        contact: ContactId,
        queue: QueueId,
        reason: RequeueReason,
    },
    CallerAway {
        contact: ContactId,
    },
    CallerBack {
        contact: ContactId,
    },
    Abandon {
        contact: ContactId,
        queue: QueueId,
        waited_ms: i64,
    },
    /// An abandoned contact came back within the resume window and took its old place.
    Resume {
        contact: ContactId,
    },
    WrapUp {
        contact: ContactId,
        operator: OperatorId,
        by: EndedBy,
    },
    Complete {
        contact: ContactId,
        operator: OperatorId,
        /// Talk + wrap-up time.
        handled_ms: i64,
    },
    Join {
        contact: ContactId,
        participant: OperatorId,
        mode: JoinMode,
    },
    Leave {
        contact: ContactId,
        participant: OperatorId,
    },
    OperatorState {
        operator: OperatorId,
        state: OperatorState,
    },
}

impl Event {
    /// The event's kind, as stored in the event log's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::EnterQueue { .. } => "enter_queue",
            Event::Offer { .. } => "offer",
            Event::Accept { .. } => "accept",
            Event::Connect { .. } => "connect",
            Event::Reject { .. } => "reject",
            Event::OfferTimeout { .. } => "offer_timeout",
            Event::OfferRescinded { .. } => "offer_rescinded",
            Event::RiskChange { .. } => "risk_change",
            Event::Relax { .. } => "relax",
            Event::Overflow { .. } => "overflow",
            Event::Transfer { .. } => "transfer",
            Event::Requeue { .. } => "requeue",
            Event::CallerAway { .. } => "caller_away",
            Event::CallerBack { .. } => "caller_back",
            Event::Abandon { .. } => "abandon",
            Event::Resume { .. } => "resume",
            Event::WrapUp { .. } => "wrap_up",
            Event::Complete { .. } => "complete",
            Event::Join { .. } => "join",
            Event::Leave { .. } => "leave",
            Event::OperatorState { .. } => "operator_state",
        }
    }

    /// The contact this event is about, if any.
    pub fn contact(&self) -> Option<ContactId> {
        match self {
            Event::EnterQueue { contact, .. }
            | Event::Offer { contact, .. }
            | Event::Accept { contact, .. }
            | Event::Connect { contact, .. }
            | Event::Reject { contact, .. }
            | Event::OfferTimeout { contact, .. }
            | Event::OfferRescinded { contact, .. }
            | Event::RiskChange { contact, .. }
            | Event::Relax { contact, .. }
            | Event::Overflow { contact, .. }
            | Event::Transfer { contact, .. }
            | Event::Requeue { contact, .. }
            | Event::CallerAway { contact }
            | Event::CallerBack { contact }
            | Event::Abandon { contact, .. }
            | Event::Resume { contact }
            | Event::WrapUp { contact, .. }
            | Event::Complete { contact, .. }
            | Event::Join { contact, .. }
            | Event::Leave { contact, .. } => Some(*contact),
            Event::OperatorState { .. } => None,
        }
    }

    /// The operator this event is about, if any.
    pub fn operator(&self) -> Option<OperatorId> {
        match self {
            Event::Offer { operator, .. }
            | Event::Accept { operator, .. }
            | Event::Connect { operator, .. }
            | Event::Reject { operator, .. }
            | Event::OfferTimeout { operator, .. }
            | Event::OfferRescinded { operator, .. }
            | Event::WrapUp { operator, .. }
            | Event::Complete { operator, .. }
            | Event::OperatorState { operator, .. } => Some(*operator),
            Event::Transfer { from, .. } => Some(*from),
            Event::Join { participant, .. } | Event::Leave { participant, .. } => {
                Some(*participant)
            }
            _ => None,
        }
    }
}

/// Why the engine refused a command. Refusals change nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown contact")]
    UnknownContact,
    #[error("unknown operator")]
    UnknownOperator,
    #[error("unknown queue")]
    UnknownQueue,
    #[error("contact already exists")]
    DuplicateContact,
    #[error("the contact is not offered to this operator")]
    NotOffered,
    #[error("the contact is not assigned to this operator")]
    NotAssigned,
    #[error("the contact is not in wrap-up with this operator")]
    NotWrapping,
    #[error("the target operator cannot take this contact now")]
    TargetUnavailable,
    #[error("this command does not apply to a contact that is {0}")]
    WrongState(&'static str),
    #[error("contacts are still in this queue, or another queue overflows to it")]
    QueueInUse,
}

impl EngineError {
    /// Stable error code for the protocol.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::UnknownContact => "unknown_contact",
            EngineError::UnknownOperator => "unknown_operator",
            EngineError::UnknownQueue => "unknown_queue",
            EngineError::DuplicateContact => "duplicate_contact",
            EngineError::NotOffered => "not_offered",
            EngineError::NotAssigned => "not_assigned",
            EngineError::NotWrapping => "not_wrapping",
            EngineError::TargetUnavailable => "target_unavailable",
            EngineError::WrongState(_) => "wrong_state",
            EngineError::QueueInUse => "queue_in_use",
        }
    }
}

/// A read-only view of one contact, for wallboards, restore and callers' position updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactView {
    pub id: ContactId,
    pub queue: QueueId,
    pub channel: Channel,
    pub language: Language,
    pub topic: Option<Topic>,
    pub risk: RiskLevel,
    pub state: ContactState,
    pub entered_at: Timestamp,
    /// Operator holding the offer or the contact.
    pub operator: Option<OperatorId>,
    pub participants: Vec<(OperatorId, JoinMode)>,
    pub caller_away: bool,
}

/// A read-only view of one operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OperatorView {
    pub id: OperatorId,
    pub presence: Presence,
    pub state: OperatorState,
    pub contacts: Vec<ContactId>,
    pub idle_since: Timestamp,
}

/// A waiting contact's place: 1-based position among its queue's waiting contacts in routing
/// order, and an estimated wait in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueuePlace {
    pub contact: ContactId,
    pub position: u32,
    pub estimated_wait_ms: i64,
}

/// A contact restored from the store after a restart, before routing resumes.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredContact {
    pub contact: NewContact,
    pub entered_at: Timestamp,
    /// When its current stay in its queue began (entering, overflowing or being transferred to
    /// it, or being requeued there): relaxation and the queue's max wait count from here, as
    /// they did before the restart.
    pub queued_at: Timestamp,
    /// The queues it overflowed out of: it never overflows back into them.
    pub visited: Vec<QueueId>,
    pub state: ContactState,
    /// For assigned/wrapping contacts: the operator holding it.
    pub operator: Option<OperatorId>,
    /// When it was connected to the operator holding it (for others: first connected, if it was).
    pub connected_at: Option<Timestamp>,
    /// For wrapping contacts: when the conversation ended and wrap-up began.
    pub wrapped_at: Option<Timestamp>,
    /// For abandoned contacts: when the caller left. One that left less than the resume window
    /// ago is restored as abandoned and can still be resumed, in its place.
    pub ended_at: Option<Timestamp>,
    /// It was requeued after losing its operator: it waits first in line again.
    pub operator_lost: bool,
    /// For assigned contacts: who had joined it (supervisors, crisis leads) and how.
    pub participants: Vec<(OperatorId, JoinMode)>,
}

/// How many contacts of one risk level wait in one queue (waiting or offered, not yet
/// answered), and when the longest of their current waits began (see `Contact::waiting_since`:
/// a contact waiting again after a transfer or a requeue waits from then). For metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WaitingSummary {
    pub queue: QueueId,
    pub risk: RiskLevel,
    pub waiting: usize,
    pub oldest_waiting_since: Option<Timestamp>,
}
