//! Durable storage: one [`Store`] trait, a SQLite implementation (the embedded default, WAL) and a
//! PostgreSQL implementation (production), chosen by the database URL.
//!
//! What it owns: accounts, sessions, skills, queues, contacts, transcripts and the append-only
//! event log. Every write that the server acknowledges to anyone has returned `Ok` here first.
//! The `contacts` table is a projection of the event log, updated in the same transaction as the
//! events that change it ([`projection`]), so the two never disagree after a crash.
//!
//! What it must never do: decide routing, log personal data (message bodies, names, keys).

pub mod notes;
pub mod paging;
mod postgres;
pub mod projection;
pub mod quality;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Channel, ContactId, Language, OperatorId, Proficiency, QueueId, RiskLevel, Role, Skill,
    Timestamp, Topic,
};
use crate::queues::QueueDefinition;
use crate::routing::{ContactState, Event};

pub use notes::NoteStore;
pub use paging::PagingStore;
pub use postgres::PgStore;
pub use quality::QualityStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique key already exists (e.g. an account name).
    #[error("already exists")]
    Conflict,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database refused a value it cannot hold (a data exception, e.g. the NUL character
    /// in text on PostgreSQL): bad input, not a failure.
    #[error("the database cannot store this value")]
    Unstorable,
    /// The writer in front of the store has stopped (the server is shutting down).
    #[error("the store is closed")]
    Closed,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// A failure of the moment rather than of the request — the connection lost, the pool out of
    /// connections, the database restarting or busy, a transaction chosen as a deadlock's victim
    /// — so that the same write may well succeed if tried again shortly.
    pub fn is_transient(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // PostgreSQL: connection exception, transaction rollback, insufficient
                // resources, shutting down. SQLite: busy, locked.
                ["08", "40", "53", "57P"]
                    .iter()
                    .any(|class| code.starts_with(class))
                    || code == "5"
                    || code == "6"
            }),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The logs written in numbered batches, each by one task: the router's event log and the
/// transcript writer's lines. Each has a head row holding the number of its last batch; a batch
/// is written as the number after the head or not at all, so a write that committed although its
/// writer was told it failed (a connection lost after `COMMIT`) is found there, never repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    Events,
    Transcript,
}

/// A log's head as its one writer knows it: the number to give the next batch.
#[derive(Debug)]
pub struct LogHead {
    log: Log,
    known: Option<u64>,
}

impl LogHead {
    pub fn new(log: Log) -> Self {
        LogHead { log, known: None }
    }

    /// The number of the next batch (the head is read from the store the first time, and again
    /// after a failed write).
    pub async fn next(&mut self, store: &dyn Store) -> StoreResult<u64> {
        let head = match self.known {
            Some(head) => head,
            None => *self.known.insert(store.log_head(self.log).await?),
        };
        Ok(head + 1)
    }

    /// Batch `batch` is written.
    pub fn written(&mut self, batch: u64) {
        self.known = Some(batch);
    }

    /// A write of batch `batch` was reported failed: whether it committed all the same (then it
    /// counts as written). Otherwise the head is read afresh before the next batch.
    pub async fn committed_anyway(&mut self, store: &dyn Store, batch: u64) -> bool {
        self.known = None;
        match store.log_head(self.log).await {
            Ok(head) if head == batch => {
                self.written(batch);
                true
            }
            Ok(head) if head + 1 != batch => {
                tracing::error!(
                    log = ?self.log,
                    head,
                    expected = batch - 1,
                    "the log was written by another writer; is a second server using this database?"
                );
                false
            }
            _ => false,
        }
    }
}

/// An account: operators, crisis leads, supervisors and administrators.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: OperatorId,
    /// Login name, unique.
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// argon2id PHC string. Never serialized to clients.
    pub password_hash: String,
    pub languages: Vec<Language>,
    pub chat_capacity: u8,
    pub voice_capacity: u8,
    /// A voice contact leaves no room for chats, and a chat none for a voice contact.
    pub voice_excludes_chat: bool,
    pub disabled: bool,
    /// Set for generated passwords (the first admin's); cleared by a password change.
    pub must_change_password: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub languages: Vec<Language>,
    pub chat_capacity: u8,
    pub voice_capacity: u8,
    pub voice_excludes_chat: bool,
    pub must_change_password: bool,
}

/// Fields an administrator may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountUpdate {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub languages: Option<Vec<Language>>,
    pub chat_capacity: Option<u8>,
    pub voice_capacity: Option<u8>,
    pub voice_excludes_chat: Option<bool>,
    pub disabled: Option<bool>,
}

/// A login session. Only the SHA-256 of the cookie token is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub account: OperatorId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SkillInfo {
    pub skill: Skill,
    pub description: String,
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    Caller,
    Operator,
    /// A supervisor or crisis lead who joined the contact.
    Participant,
    System,
}

/// Who may see a transcript line: everyone, or the operator side only (whispers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    All,
    Operators,
}

/// Who reads a transcript: staff see every line, a caller only those for everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    Staff,
    Caller,
}

/// A stretch of a transcript, oldest line first.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptPage {
    pub lines: Vec<Message>,
    /// Lines the reader may see exist before the first of `lines`.
    pub earlier: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub contact: ContactId,
    pub sender: Sender,
    /// The account that wrote it (None for the caller and the system).
    pub author: Option<OperatorId>,
    pub visibility: Visibility,
    pub body: String,
    pub at: Timestamp,
}

/// A durable transcript line. `seq` counts from 1 within its contact, with no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub id: i64,
    pub contact: ContactId,
    pub seq: i64,
    pub sender: Sender,
    pub author: Option<OperatorId>,
    pub visibility: Visibility,
    pub body: String,
    pub at: Timestamp,
}

/// What the caller told us before the chat (pre-chat step).
#[derive(Debug, Clone, PartialEq)]
pub struct NewContactRecord {
    pub queue: QueueId,
    pub channel: Channel,
    pub language: Language,
    pub topic: Option<Topic>,
    pub age_group: Option<String>,
    pub risk: RiskLevel,
    /// SHA-256 of the pseudonymous caller key, when the caller consented to one.
    pub caller_key_hash: Option<String>,
    /// SHA-256 of the resume token handed to the caller.
    pub resume_token_hash: String,
    pub entered_at: Timestamp,
}

/// A contact row: what the caller told us plus the projection of its events.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    pub id: ContactId,
    pub queue: QueueId,
    pub channel: Channel,
    pub language: Language,
    pub topic: Option<Topic>,
    pub age_group: Option<String>,
    pub risk: RiskLevel,
    pub state: ContactState,
    pub operator: Option<OperatorId>,
    pub caller_key_hash: Option<String>,
    pub resume_token_hash: String,
    pub entered_at: Timestamp,
    pub connected_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

/// One row of the append-only event log. `seq` is global and strictly increasing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub kind: String,
    pub contact: Option<ContactId>,
    pub operator: Option<OperatorId>,
    /// The whole event, as serialized from [`Event`].
    pub data: serde_json::Value,
}

/// Where a contact stands in its queues, as its events tell it: what a restart needs so that
/// relaxation, max wait and overflow carry on as they would have without it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stay {
    pub contact: ContactId,
    /// When its current stay in its queue began: its last `enter_queue`, `overflow`, `transfer`
    /// or `requeue` event. A transfer to a person counts too: should a restart cut that offer
    /// short, the contact waits in its queue from the transfer (without the restart it would
    /// have from the offer's end, a `requeue`, moments later).
    pub since: Timestamp,
    /// The queues it overflowed out of (the `from` of its `overflow` events), oldest first.
    pub overflowed_from: Vec<QueueId>,
    /// Its last `connect`: when its current operator took it, if it is held (the contacts row
    /// keeps the first connection, the one waiting time is measured to).
    pub last_connect: Option<Timestamp>,
    /// Its `wrap_up` after that connect: when the conversation with its current operator ended,
    /// if it is in wrap-up.
    pub last_wrap_up: Option<Timestamp>,
}

/// The storage interface. Both implementations pass the same test-suite (`tests/store.rs`).
#[async_trait]
pub trait Store: NoteStore + PagingStore + QualityStore + Send + Sync + 'static {
    /// Which dialect this is ("sqlite" or "postgres"), for logs and metrics.
    fn dialect(&self) -> &'static str;
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    // accounts
    async fn count_accounts(&self) -> StoreResult<i64>;
    async fn create_account(&self, account: NewAccount, at: Timestamp) -> StoreResult<Account>;
    async fn account(&self, id: OperatorId) -> StoreResult<Account>;
    async fn account_by_name(&self, name: &str) -> StoreResult<Account>;
    async fn accounts(&self) -> StoreResult<Vec<Account>>;
    async fn update_account(&self, id: OperatorId, update: AccountUpdate) -> StoreResult<Account>;
    /// Sets a new hash and clears `must_change_password` unless `must_change` is true.
    async fn set_password(&self, id: OperatorId, hash: &str, must_change: bool) -> StoreResult<()>;

    // sessions
    async fn create_session(&self, session: Session) -> StoreResult<()>;
    /// The session if it exists and has not expired at `now`.
    async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Session>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn delete_sessions_of(&self, account: OperatorId) -> StoreResult<()>;

    // skills
    async fn put_skill(&self, skill: SkillInfo) -> StoreResult<()>;
    async fn skills(&self) -> StoreResult<Vec<SkillInfo>>;
    /// Replaces an account's skills. Every skill must exist in the catalogue (else `NotFound`).
    async fn set_account_skills(
        &self,
        account: OperatorId,
        skills: &[(Skill, Proficiency)],
    ) -> StoreResult<()>;
    async fn account_skills(&self, account: OperatorId) -> StoreResult<Vec<(Skill, Proficiency)>>;

    // queues
    async fn put_queue(&self, queue: &QueueDefinition) -> StoreResult<()>;
    async fn queues(&self) -> StoreResult<Vec<QueueDefinition>>;
    async fn delete_queue(&self, id: &QueueId) -> StoreResult<()>;

    // contacts, transcripts, events
    /// Makes a new contact durable (state `waiting`) and returns its id.
    async fn create_contact(&self, contact: NewContactRecord) -> StoreResult<ContactId>;
    async fn contact(&self, id: ContactId) -> StoreResult<ContactRecord>;
    async fn contact_by_resume_token(&self, token_hash: &str) -> StoreResult<ContactRecord>;
    /// Contacts whose state is waiting, offered, assigned or wrapping — what a restart restores.
    async fn open_contacts(&self) -> StoreResult<Vec<ContactRecord>>;
    /// Contacts abandoned at or after `since`, oldest first — those a restart keeps resumable.
    async fn abandoned_since(&self, since: Timestamp) -> StoreResult<Vec<ContactRecord>>;
    /// A caller's earlier contacts, newest first.
    async fn contacts_of_caller(
        &self,
        caller_key_hash: &str,
        limit: i64,
    ) -> StoreResult<Vec<ContactRecord>>;
    /// Appends a transcript line, assigning the next `seq` of its contact. Durable when it returns.
    async fn append_message(&self, message: NewMessage) -> StoreResult<Message>;
    /// Appends several lines in one transaction (group commit), in order; all or none. The
    /// transaction is the transcript's next batch; with `batch: Some(n)` it fails, writing
    /// nothing, unless the transcript's head is at `n - 1` (see [`Store::appended_batch`]).
    async fn append_messages(
        &self,
        messages: Vec<NewMessage>,
        batch: Option<u64>,
    ) -> StoreResult<Vec<Message>>;
    /// If the transcript's last batch is number `batch` — a write reported failed that committed
    /// all the same, say after a connection lost on the way back — its lines, as
    /// [`Store::append_messages`] would have returned them; `None` if it was not written.
    async fn appended_batch(
        &self,
        batch: u64,
        messages: Vec<NewMessage>,
    ) -> StoreResult<Option<Vec<Message>>>;
    async fn messages(&self, contact: ContactId) -> StoreResult<Vec<Message>>;
    /// The newest `limit` lines of a contact before `before` (from the end when `None`) that
    /// `reader` may see, oldest first, and whether earlier ones exist.
    async fn transcript_page(
        &self,
        contact: ContactId,
        reader: Reader,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<TranscriptPage>;
    /// Appends events in order and applies their projection to `contacts`, in one transaction.
    async fn record_events(&self, at: Timestamp, events: &[Event]) -> StoreResult<()> {
        self.record_batch(at, None, &[], events).await
    }
    /// Hands out `n` contact ids (at least one) for [`Store::record_batch`]; they are never
    /// handed out again nor taken by [`Store::create_contact`].
    async fn reserve_contact_ids(&self, n: u32) -> StoreResult<Vec<ContactId>>;
    /// Creates `contacts` (with ids from [`Store::reserve_contact_ids`], state `waiting`), then
    /// appends `events` and applies their projection — all in one transaction, which becomes the
    /// log's next batch.
    ///
    /// With `batch: Some(n)` the write fails, writing nothing, unless the log's head
    /// ([`Store::log_head`]`(Log::Events)`) is at `n - 1`: a batch that committed although its
    /// writer was told it failed (a connection lost after the commit) is never written again.
    async fn record_batch(
        &self,
        at: Timestamp,
        batch: Option<u64>,
        contacts: &[(ContactId, NewContactRecord)],
        events: &[Event],
    ) -> StoreResult<()>;
    /// The number of a log's last batch (0 before the first).
    async fn log_head(&self, log: Log) -> StoreResult<u64>;
    /// Records that the server is alive at `at`, over the one row of the mark (the last mark
    /// written is the mark, so a clock set back is corrected at the next one). Written every
    /// `server.alive_every_ms` and once more at a graceful shutdown: see [`Store::last_alive`].
    async fn mark_alive(&self, at: Timestamp) -> StoreResult<()>;
    /// When the server was last known alive: the latest of its alive mark
    /// ([`Store::mark_alive`]), the newest event and the newest transcript line (one query, three
    /// index reads); `None` when all three are empty. Read at start-up, before anything else is
    /// written, it tells when the server stopped — after a graceful stop, the stop itself; after a
    /// crash, at most `server.alive_every_ms` before it — so a restart does not count the time it
    /// was down as anyone's handle time.
    async fn last_alive(&self) -> StoreResult<Option<Timestamp>>;
    async fn events_of_contact(&self, contact: ContactId) -> StoreResult<Vec<StoredEvent>>;
    /// Of `contacts`, those the log shows requeued after losing their operator (a restart puts
    /// them first in line again), in id order.
    async fn lost_their_operator(&self, contacts: &[ContactId]) -> StoreResult<Vec<ContactId>>;
    /// The `join` and `leave` events of `contacts`, oldest first: who takes part in each (a
    /// restart puts supervisors and crisis leads back in the live contacts they had joined).
    async fn joins_and_leaves(&self, contacts: &[ContactId]) -> StoreResult<Vec<StoredEvent>>;
    /// Of `contacts`, the current stay of each that has one in the log, in id order (one query).
    async fn stays(&self, contacts: &[ContactId]) -> StoreResult<Vec<Stay>>;
    /// Of `operators`, each one's last `operator_state` event other than `away`: the state they
    /// were in before their console dropped (a restart puts a held operator's break back).
    async fn states_before_away(&self, operators: &[OperatorId]) -> StoreResult<Vec<StoredEvent>>;
    /// Events with `seq > after`, oldest first, at most `limit`.
    async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<StoredEvent>>;
}

pub type DynStore = Arc<dyn Store>;

/// Opens (creating if needed) the database named by `url` and runs its migrations.
/// `sqlite://path` (or `sqlite::memory:`) selects SQLite, `postgres://…` PostgreSQL.
pub async fn connect(url: &str) -> StoreResult<DynStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_of_the_moment_are_transient() {
        let lost = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(StoreError::Database(sqlx::Error::Io(lost)).is_transient());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::NotFound.is_transient());
        assert!(!StoreError::Unstorable.is_transient());
        assert!(!StoreError::Closed.is_transient());
    }
}
