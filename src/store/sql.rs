//! The one SQL body behind both stores. [`impl_store!`] expands to `impl Store for …` for
//! [`SqliteStore`](super::SqliteStore) and [`PgStore`](super::PgStore) from the same queries, so
//! each query is written (and read) once. Both dialects accept `$N` placeholders, `RETURNING`,
//! `ON CONFLICT … DO UPDATE`, `UPDATE … FROM` and `CAST(… AS TEXT)`. The dialect-specific bits
//! are few and spelled out where they are: a batch as a JSON table ([`json_rows`]), explicit
//! contact ids (`OVERRIDING SYSTEM VALUE`), and reserving ids from each one's sequence.
//!
//! Rows are read into plain `*Row` structs (`sqlx::FromRow`, generic over the database) and
//! parsed into domain records here: an unknown enum string or malformed JSON in a stored row is
//! [`StoreError::Corrupt`], never a panic.
//!
//! Write transactions start with a write (`UPDATE … RETURNING`, `DELETE`, `INSERT`): on SQLite a
//! transaction that reads first and then writes can fail with `SQLITE_BUSY` instead of waiting
//! for the lock; on PostgreSQL that first `UPDATE` takes the row lock that serializes writers
//! (message `seq` per contact; the event log's commit order).
//!
//! Never logs message bodies, names, keys or hashes: spans carry only the dialect.

use crate::domain::{
    Channel, ContactId, Language, OperatorId, Proficiency, QueueId, RiskLevel, Role, Skill,
    Timestamp, Topic,
};
use crate::queues::QueueDefinition;
use crate::routing::ContactState;

use super::{
    Account, ContactRecord, Message, NewMessage, Sender, Session, Stay, StoreError, StoreResult,
    StoredEvent, Visibility,
};

/// A JSON array parameter (`$param`) read as a table with `columns` (name, PostgreSQL type), in
/// either dialect. A batch of any size is then **one statement with one parameter**: one
/// prepared statement, reused, and one round trip to the database — where a multi-row `VALUES`
/// list would be a new statement for every batch size, and a statement per row a round trip per
/// row (on SQLite each round trip is a hand-off to sqlx's worker thread, ~60 µs; that, not
/// SQLite, was the cost of a batch). A column of type `jsonb` is kept as JSON text on SQLite.
/// SQLite pays for reading each row back out of JSON; the hottest batch, transcript lines, is
/// therefore bound as `VALUES` rows of a few fixed shapes there ([`sqlite_append_lines`]).
pub(crate) fn json_rows(dialect: &str, param: usize, columns: &[(&str, &str)]) -> String {
    json_rows_at(dialect, &format!("${param}"), columns)
}

/// [`json_rows`] with the parameter spelled out (`$1`, or `?` for SQLite's positional
/// parameters).
fn json_rows_at(dialect: &str, placeholder: &str, columns: &[(&str, &str)]) -> String {
    let mut select = String::new();
    for (i, (name, ty)) in columns.iter().enumerate() {
        if i > 0 {
            select.push_str(", ");
        }
        if dialect == "sqlite" {
            let op = if *ty == "jsonb" { "->" } else { "->>" };
            select.push_str(&format!("value {op} '$.{name}' AS {name}"));
        } else {
            select.push_str(&format!("{name} {ty}"));
        }
    }
    if dialect == "sqlite" {
        format!("(SELECT {select} FROM json_each({placeholder}))")
    } else {
        format!("(SELECT * FROM jsonb_to_recordset({placeholder}::jsonb) AS r({select}))")
    }
}

/// `UPDATE contacts SET {set} FROM ({json_rows} at `placeholder`) AS j{joined} WHERE
/// contacts.id = j.cid {tail}`: a batch's change to each of its contacts, `j.cid` naming the
/// contact; `joined` adds tables to the `FROM` (`", head"`). PostgreSQL's planner takes a JSON
/// table for 100 rows, and with fewer than some 15,000 contacts it would rather scan them all and
/// hash-join (1.4–2.8 ms at 5,500–12,000) than look up the one or two a batch holds; naming the
/// ids as an array (`id = ANY(ARRAY(…))`) makes it a primary-key lookup at any size
/// (0.06–0.08 ms).
pub(crate) fn update_contacts_from(
    dialect: &str,
    placeholder: &str,
    columns: &[(&str, &str)],
    set: &str,
    joined: &str,
    tail: &str,
) -> String {
    let rows = json_rows_at(dialect, placeholder, columns);
    if dialect == "sqlite" {
        format!(
            "UPDATE contacts SET {set} FROM {rows} AS j{joined} WHERE contacts.id = j.cid {tail}"
        )
    } else {
        format!(
            "WITH j AS {rows} UPDATE contacts SET {set} FROM j{joined} WHERE contacts.id = j.cid \
             AND contacts.id = ANY(ARRAY(SELECT cid FROM j)) {tail}"
        )
    }
}

/// Moves each contact's `last_message_seq` on by its lines in a transcript batch: a JSON table
/// of `(cid, n)` at `placeholder`, one row per contact. On PostgreSQL it takes the row lock that
/// serializes appends to a contact.
pub(crate) fn bump_message_seqs(dialect: &str, placeholder: &str) -> String {
    update_contacts_from(
        dialect,
        placeholder,
        &[("cid", "bigint"), ("n", "bigint")],
        "last_message_seq = last_message_seq + j.n",
        "",
        "",
    )
}

/// Rows as the JSON array parameter of a [`json_rows`] table.
pub(crate) fn json_param<T: serde::Serialize>(rows: &[T]) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|e| corrupt("batch parameter", e))
}

/// Ids as the JSON array parameter of a [`json_rows`] table with one `cid` column.
pub(crate) fn ids_param(ids: impl IntoIterator<Item = i64>) -> StoreResult<String> {
    let rows: Vec<IdParam> = ids.into_iter().map(|cid| IdParam { cid }).collect();
    json_param(&rows)
}

/// One SQLite transaction as one statement string — `BEGIN IMMEDIATE; …; COMMIT` — so that it
/// costs one round trip to sqlx's worker thread instead of one per statement (with `$N`
/// parameters numbered across the whole string, or positional `?` taken in order across it).
/// `IMMEDIATE` takes the write lock at once.
/// If it fails part-way, [`abandon`] the connection.
pub(crate) fn one_shot(statements: &[&str]) -> String {
    format!("BEGIN IMMEDIATE; {}; COMMIT", statements.join("; "))
}

/// Transcript lines on SQLite, the hottest write: a [`one_shot`] that bumps each contact's
/// `last_message_seq` ([`bump_message_seqs`], at the first `?`) and then inserts
/// the lines from bound `VALUES` rows. SQLite binds a value about three times faster than it reads
/// it back out of a JSON row (`json_each`, then `->>` per column), so lines are not sent as JSON.
/// To keep the number of statement shapes small (each is prepared once per connection), a batch
/// of n lines is written as ⌈n / 128⌉ inserts of 128 rows, or one insert of 8 rows when n ≤ 8;
/// rows past the last line are bound NULL and skipped. Every parameter is a positional `?`: the
/// counts first, then [`LINE_VALUES`] per row — contact id, lines of that contact after this one
/// in the batch, sender, author, visibility, body, time; last the batch's number for
/// [`next_transcript_head`]. Returns the statement and its rows.
pub(crate) fn sqlite_append_lines(lines: usize) -> (std::borrow::Cow<'static, str>, usize) {
    use std::sync::LazyLock;
    const SMALL: usize = 8;
    const CHUNK: usize = 128;
    /// Shapes kept ready: the small one, then 1..=8 chunks (the transcript writer's largest batch).
    static SHAPES: LazyLock<Vec<String>> = LazyLock::new(|| {
        std::iter::once(append_lines(SMALL, 1))
            .chain((1..=8).map(|chunks| append_lines(CHUNK, chunks)))
            .collect()
    });
    fn append_lines(rows: usize, inserts: usize) -> String {
        let bump = bump_message_seqs("sqlite", "?");
        let row = format!("({})", ["?"; LINE_VALUES].join(", "));
        // A line's seq: its contact's last seq after the bump, less the contact's lines after it.
        // An unknown contact leaves it NULL, which the NOT NULL column refuses.
        let insert = format!(
            "INSERT INTO messages (contact_id, seq, sender, author_id, visibility, body, at) \
             SELECT column1, (SELECT last_message_seq FROM contacts WHERE id = column1) - column2, \
             column3, column4, column5, column6, column7 FROM (VALUES {}) \
             WHERE column1 IS NOT NULL RETURNING id, contact_id, seq",
            vec![row; rows].join(", "),
        );
        let head = next_transcript_head("?");
        let mut statements = vec![bump.as_str()];
        statements.extend(std::iter::repeat_n(insert.as_str(), inserts));
        statements.push(head.as_str());
        one_shot(&statements)
    }
    if lines <= SMALL {
        return (std::borrow::Cow::Borrowed(&SHAPES[0]), SMALL);
    }
    let inserts = lines.div_ceil(CHUNK);
    let rows = inserts * CHUNK;
    match SHAPES.get(inserts) {
        Some(shape) => (std::borrow::Cow::Borrowed(shape), rows),
        None => (std::borrow::Cow::Owned(append_lines(CHUNK, inserts)), rows),
    }
}

/// A transcript batch's lines grouped by contact: each contact's number of lines (in order of
/// first appearance) and each line's contact slot and rank (from 1) among that contact's lines.
pub(crate) struct LineSlots {
    pub per_contact: Vec<SeqParam>,
    pub ranks: Vec<(usize, i64)>,
    slot_of: std::collections::HashMap<i64, usize>,
}

impl LineSlots {
    pub fn of(messages: &[NewMessage]) -> LineSlots {
        let mut slots = LineSlots {
            per_contact: Vec::new(),
            ranks: Vec::with_capacity(messages.len()),
            slot_of: std::collections::HashMap::new(),
        };
        for m in messages {
            let per_contact = &mut slots.per_contact;
            let slot = *slots.slot_of.entry(m.contact.0).or_insert_with(|| {
                per_contact.push(SeqParam {
                    cid: m.contact.0,
                    n: 0,
                });
                per_contact.len() - 1
            });
            per_contact[slot].n += 1;
            slots.ranks.push((slot, per_contact[slot].n));
        }
        slots
    }

    /// The stored lines, from the `(id, contact, seq)` rows written for them: each contact's
    /// rows in seq order go to its lines in rank order.
    pub fn stored(
        self,
        messages: Vec<NewMessage>,
        written: Vec<(i64, i64, i64)>,
    ) -> StoreResult<Vec<Message>> {
        let mut stored: Vec<Vec<(i64, i64)>> = vec![Vec::new(); self.per_contact.len()];
        for (id, contact, seq) in written {
            if let Some(&slot) = self.slot_of.get(&contact) {
                stored[slot].push((seq, id));
            }
        }
        for seqs in &mut stored {
            seqs.sort_unstable();
        }
        messages
            .into_iter()
            .zip(self.ranks)
            .map(|(message, (slot, k))| {
                let (seq, id) = usize::try_from(k - 1)
                    .ok()
                    .and_then(|k| stored[slot].get(k).copied())
                    .ok_or_else(|| {
                        StoreError::Corrupt("messages: a line was not returned".into())
                    })?;
                Ok(Message {
                    id,
                    contact: message.contact,
                    seq,
                    sender: message.sender,
                    author: message.author,
                    visibility: message.visibility,
                    body: message.body,
                    at: message.at,
                })
            })
            .collect()
    }
}

/// The new `batches` of a log's head row (`events_head`, `transcript_head`) for a batch numbered
/// `n` (an SQL expression; NULL for "the next one"): `n` if it follows the head, else NULL, which
/// the NOT NULL column refuses — failing the batch's whole transaction, so that a batch is never
/// written twice (see [`super::Log`]).
pub(crate) fn next_batch(n: &str) -> String {
    format!("CASE WHEN {n} IS NULL THEN batches + 1 WHEN batches = {n} - 1 THEN {n} END")
}

/// The transcript head moves to a batch's number (at `param`, see [`next_batch`]) and to its last
/// line. Runs after the batch's lines are inserted.
pub(crate) fn next_transcript_head(param: &str) -> String {
    format!(
        "UPDATE transcript_head SET batches = {}, \
         last_id = COALESCE((SELECT max(id) FROM messages), 0) \
         FROM (SELECT {param} AS n) AS x WHERE id = 1",
        next_batch("x.n"),
    )
}

/// Values bound per line by [`sqlite_append_lines`].
pub(crate) const LINE_VALUES: usize = 7;

/// After a failed [`one_shot`]: rolls back whatever it left open (nothing, if it failed at
/// `BEGIN`) and closes the connection instead of returning it to the pool, so no later use of it
/// can find itself inside a half-done transaction.
pub(crate) async fn abandon<DB: sqlx::Database>(conn: &mut sqlx::pool::PoolConnection<DB>)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let _ = sqlx::query::<DB>("ROLLBACK").execute(&mut **conn).await;
    conn.close_on_drop();
}

/// The rows of the batch statements, named as their [`json_rows`] columns.
#[derive(serde::Serialize)]
struct IdParam {
    pub cid: i64,
}

#[derive(serde::Serialize)]
pub(crate) struct SeqParam {
    pub cid: i64,
    pub n: i64,
}

#[derive(serde::Serialize)]
pub(crate) struct LineParam<'a> {
    pub i: usize,
    pub c: i64,
    pub n: i64,
    pub k: i64,
    pub f: &'static str,
    pub a: Option<i64>,
    pub v: &'static str,
    pub b: &'a str,
    pub t: i64,
}

#[derive(serde::Serialize)]
pub(crate) struct ContactParam<'a> {
    pub id: i64,
    pub queue: &'a str,
    pub channel: &'static str,
    pub language: &'a str,
    pub topic: Option<&'a str>,
    pub age_group: Option<&'a str>,
    pub risk: &'static str,
    pub state: &'static str,
    pub operator_id: Option<i64>,
    pub caller_key_hash: Option<&'a str>,
    pub resume_token_hash: &'a str,
    pub entered_at: i64,
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
}

#[derive(serde::Serialize)]
pub(crate) struct EventParam<'a> {
    pub i: usize,
    pub t: i64,
    pub k: &'static str,
    pub c: Option<i64>,
    pub o: Option<i64>,
    pub d: &'a crate::routing::Event,
}

#[derive(serde::Serialize)]
pub(crate) struct ProjectionParam<'a> {
    pub cid: i64,
    pub new_state: Option<&'static str>,
    pub set_operator: bool,
    pub new_operator: Option<i64>,
    pub new_queue: Option<&'a str>,
    pub new_risk: Option<&'static str>,
    pub new_connected_at: Option<i64>,
    pub set_ended: bool,
    pub new_ended_at: Option<i64>,
}

/// Maps driver errors to the store's: unique keys → `Conflict`, a missing row or a dangling
/// reference (unknown account, skill or contact) → `NotFound`.
pub(crate) fn error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            sqlx::error::ErrorKind::UniqueViolation => StoreError::Conflict,
            sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            // SQLSTATE class 22, data exception: the value, not the database, is at fault.
            _ if db.code().is_some_and(|c| c.starts_with("22")) => StoreError::Unstorable,
            _ => StoreError::Database(e),
        },
        _ => StoreError::Database(e),
    }
}

/// `Ok` if a write touched a row, `NotFound` if it touched none.
pub(crate) fn touched(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn parse<T, E: std::fmt::Display>(what: &str, parsed: Result<T, E>) -> StoreResult<T> {
    parsed.map_err(|e| corrupt(what, e))
}

pub(crate) fn state_from_str(raw: &str) -> StoreResult<ContactState> {
    use ContactState::*;
    [Waiting, Offered, Assigned, Wrapping, Completed, Abandoned]
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| StoreError::Corrupt("contacts.state: unknown state".into()))
}

pub(crate) fn sender_str(sender: Sender) -> &'static str {
    match sender {
        Sender::Caller => "caller",
        Sender::Operator => "operator",
        Sender::Participant => "participant",
        Sender::System => "system",
    }
}

fn sender_from_str(raw: &str) -> StoreResult<Sender> {
    use Sender::*;
    [Caller, Operator, Participant, System]
        .into_iter()
        .find(|s| sender_str(*s) == raw)
        .ok_or_else(|| StoreError::Corrupt("messages.sender: unknown sender".into()))
}

pub(crate) fn visibility_str(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::All => "all",
        Visibility::Operators => "operators",
    }
}

fn visibility_from_str(raw: &str) -> StoreResult<Visibility> {
    [Visibility::All, Visibility::Operators]
        .into_iter()
        .find(|v| visibility_str(*v) == raw)
        .ok_or_else(|| StoreError::Corrupt("messages.visibility: unknown visibility".into()))
}

// Column lists, as macros so that `concat!` can build each query at compile time.
macro_rules! account_columns {
    () => {
        "id, name, display_name, role, password_hash, languages, chat_capacity, voice_capacity, \
         voice_excludes_chat, disabled, must_change_password, created_at"
    };
}
macro_rules! contact_columns {
    () => {
        "id, queue, channel, language, topic, age_group, risk, state, operator_id, \
         caller_key_hash, resume_token_hash, entered_at, connected_at, ended_at"
    };
}
macro_rules! message_columns {
    () => {
        "id, contact_id, seq, sender, author_id, visibility, body, at"
    };
}
/// `data` is JSONB on PostgreSQL: read it back as text on both.
macro_rules! event_columns {
    () => {
        "seq, at, kind, contact_id, operator_id, CAST(data AS TEXT) AS data"
    };
}
/// Inside a write transaction `$tx`: deletes the account's rows of `$table` — the first write, so
/// that SQLite holds the write lock before anything is read — then returns `NotFound` from the
/// enclosing function if the account does not exist. Used by the "replace an account's rows"
/// writes (skills, paging addresses, the calendar feed).
macro_rules! clear_account_rows {
    ($tx:expr, $table:literal, $account:expr) => {{
        sqlx::query(concat!("DELETE FROM ", $table, " WHERE account_id = $1"))
            .bind($account.0)
            .execute(&mut *$tx)
            .await
            .map_err(sql::error)?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = $1")
            .bind($account.0)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(sql::error)?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
    }};
}
pub(crate) use {
    account_columns, clear_account_rows, contact_columns, event_columns, message_columns,
};

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    id: i64,
    name: String,
    display_name: String,
    role: String,
    password_hash: String,
    languages: String,
    chat_capacity: i64,
    voice_capacity: i64,
    voice_excludes_chat: bool,
    disabled: bool,
    must_change_password: bool,
    created_at: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> StoreResult<Account> {
        Ok(Account {
            id: OperatorId(r.id),
            name: r.name,
            display_name: r.display_name,
            role: parse("accounts.role", Role::parse(&r.role))?,
            password_hash: r.password_hash,
            languages: from_json("accounts.languages", &r.languages)?,
            chat_capacity: parse("accounts.chat_capacity", u8::try_from(r.chat_capacity))?,
            voice_capacity: parse("accounts.voice_capacity", u8::try_from(r.voice_capacity))?,
            voice_excludes_chat: r.voice_excludes_chat,
            disabled: r.disabled,
            must_change_password: r.must_change_password,
            created_at: Timestamp(r.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    token_hash: String,
    account_id: i64,
    created_at: i64,
    expires_at: i64,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Session {
        Session {
            token_hash: r.token_hash,
            account: OperatorId(r.account_id),
            created_at: Timestamp(r.created_at),
            expires_at: Timestamp(r.expires_at),
        }
    }
}

pub(crate) fn account_skill(skill: String, proficiency: i64) -> StoreResult<(Skill, Proficiency)> {
    let level = parse("account_skills.proficiency", u8::try_from(proficiency))?;
    Ok((
        parse("account_skills.skill", Skill::parse(&skill))?,
        parse("account_skills.proficiency", Proficiency::new(level))?,
    ))
}

pub(crate) fn queue_definition(json: &str) -> StoreResult<QueueDefinition> {
    from_json("queues.definition", json)
}

#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    id: i64,
    queue: String,
    channel: String,
    language: String,
    topic: Option<String>,
    age_group: Option<String>,
    risk: String,
    state: String,
    operator_id: Option<i64>,
    caller_key_hash: Option<String>,
    resume_token_hash: String,
    entered_at: i64,
    connected_at: Option<i64>,
    ended_at: Option<i64>,
}

impl TryFrom<ContactRow> for ContactRecord {
    type Error = StoreError;
    fn try_from(r: ContactRow) -> StoreResult<ContactRecord> {
        Ok(ContactRecord {
            id: ContactId(r.id),
            queue: parse("contacts.queue", QueueId::parse(&r.queue))?,
            channel: parse("contacts.channel", Channel::parse(&r.channel))?,
            language: parse("contacts.language", Language::parse(&r.language))?,
            topic: r
                .topic
                .map(|t| parse("contacts.topic", Topic::parse(&t)))
                .transpose()?,
            age_group: r.age_group,
            risk: parse("contacts.risk", RiskLevel::parse(&r.risk))?,
            state: state_from_str(&r.state)?,
            operator: r.operator_id.map(OperatorId),
            caller_key_hash: r.caller_key_hash,
            resume_token_hash: r.resume_token_hash,
            entered_at: Timestamp(r.entered_at),
            connected_at: r.connected_at.map(Timestamp),
            ended_at: r.ended_at.map(Timestamp),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    contact_id: i64,
    seq: i64,
    sender: String,
    author_id: Option<i64>,
    visibility: String,
    body: String,
    at: i64,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> StoreResult<Message> {
        Ok(Message {
            id: r.id,
            contact: ContactId(r.contact_id),
            seq: r.seq,
            sender: sender_from_str(&r.sender)?,
            author: r.author_id.map(OperatorId),
            visibility: visibility_from_str(&r.visibility)?,
            body: r.body,
            at: Timestamp(r.at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    at: i64,
    kind: String,
    contact_id: Option<i64>,
    operator_id: Option<i64>,
    data: String,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> StoreResult<StoredEvent> {
        Ok(StoredEvent {
            seq: r.seq,
            at: Timestamp(r.at),
            kind: r.kind,
            contact: r.contact_id.map(ContactId),
            operator: r.operator_id.map(OperatorId),
            data: from_json("events.data", &r.data)?,
        })
    }
}

/// One event that began a stay in a queue (`overflowed_from` is set for an `overflow`).
#[derive(sqlx::FromRow)]
pub(crate) struct StayRow {
    contact_id: i64,
    kind: String,
    at: i64,
    overflowed_from: Option<String>,
}

/// Each contact's stay from its stay-beginning, `connect` and `wrap_up` events, in contact then
/// log order: the last stay-beginning one began the current stay, the last `connect` its current
/// holding, and a `wrap_up` after that connect the end of its conversation.
pub(crate) fn stays_from(rows: Vec<StayRow>) -> StoreResult<Vec<Stay>> {
    let mut stays: Vec<Stay> = Vec::new();
    for row in rows {
        let contact = ContactId(row.contact_id);
        if stays.last().is_none_or(|stay| stay.contact != contact) {
            stays.push(Stay {
                contact,
                since: Timestamp(row.at),
                overflowed_from: Vec::new(),
                last_connect: None,
                last_wrap_up: None,
            });
        }
        if let Some(stay) = stays.last_mut() {
            match row.kind.as_str() {
                "connect" => {
                    stay.last_connect = Some(Timestamp(row.at));
                    stay.last_wrap_up = None;
                    continue;
                }
                "wrap_up" => {
                    stay.last_wrap_up = Some(Timestamp(row.at));
                    continue;
                }
                _ => {}
            }
            stay.since = Timestamp(row.at);
            if let Some(from) = row.overflowed_from {
                stay.overflowed_from
                    .push(parse("events.data.from", QueueId::parse(&from))?);
            }
        }
    }
    Ok(stays)
}

/// Parses every row, failing on the first corrupt one.
pub(crate) fn all<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// `impl Store for $store` over its `pool` field, from the one body of SQL below.
///
/// `dialect`: `"sqlite"` or `"postgres"`: what [`Store::dialect`](super::Store::dialect)
/// answers, spans record, and the few dialect-specific statements switch on.
macro_rules! impl_store {
    ($store:ty, dialect = $dialect:literal) => {
        // An anonymous const gives the `use`s a scope of their own: the invoking module's
        // namespace stays untouched, and the impl is global all the same.
        const _: () = {
            use $crate::domain::{
                ContactId, OperatorId, Proficiency, QueueId, RiskLevel, Role, Skill, Timestamp,
                Topic,
            };
            use $crate::queues::QueueDefinition;
            use $crate::routing::{ContactState, Event};
            use std::sync::LazyLock;

            use $crate::store::{
                Account, AccountUpdate, ContactRecord, Log, Message, NewAccount, NewContactRecord,
                NewMessage, Reader, Session, SkillInfo, Stay, Store, StoreError, StoreResult,
                StoredEvent, TranscriptPage, projection, sql,
            };

            #[async_trait::async_trait]
            impl Store for $store {
                fn dialect(&self) -> &'static str {
                    $dialect
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query("SELECT 1").execute(&self.pool).await.map_err(sql::error)?;
                    Ok(())
                }

                // ---- accounts ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn count_accounts(&self) -> StoreResult<i64> {
                    sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(sql::error)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn create_account(
                    &self,
                    account: NewAccount,
                    at: Timestamp,
                ) -> StoreResult<Account> {
                    let row: sql::AccountRow = sqlx::query_as(concat!(
                        "INSERT INTO accounts (name, display_name, role, password_hash, languages, \
                         chat_capacity, voice_capacity, voice_excludes_chat, disabled, \
                         must_change_password, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
                        sql::account_columns!()
                    ))
                    .bind(account.name)
                    .bind(account.display_name)
                    .bind(account.role.as_str())
                    .bind(account.password_hash)
                    .bind(sql::to_json("accounts.languages", &account.languages)?)
                    .bind(i64::from(account.chat_capacity))
                    .bind(i64::from(account.voice_capacity))
                    .bind(account.voice_excludes_chat)
                    .bind(false)
                    .bind(account.must_change_password)
                    .bind(at.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %id))]
                async fn account(&self, id: OperatorId) -> StoreResult<Account> {
                    let row: sql::AccountRow = sqlx::query_as(concat!(
                        "SELECT ", sql::account_columns!(), " FROM accounts WHERE id = $1"
                    ))
                    .bind(id.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn account_by_name(&self, name: &str) -> StoreResult<Account> {
                    let row: sql::AccountRow = sqlx::query_as(concat!(
                        "SELECT ", sql::account_columns!(), " FROM accounts WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn accounts(&self) -> StoreResult<Vec<Account>> {
                    let rows: Vec<sql::AccountRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::account_columns!(), " FROM accounts ORDER BY id"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %id))]
                async fn update_account(
                    &self,
                    id: OperatorId,
                    update: AccountUpdate,
                ) -> StoreResult<Account> {
                    let languages = update
                        .languages
                        .map(|l| sql::to_json("accounts.languages", &l))
                        .transpose()?;
                    let row: sql::AccountRow = sqlx::query_as(concat!(
                        "UPDATE accounts SET \
                         display_name = COALESCE($2, display_name), \
                         role = COALESCE($3, role), \
                         languages = COALESCE($4, languages), \
                         chat_capacity = COALESCE($5, chat_capacity), \
                         voice_capacity = COALESCE($6, voice_capacity), \
                         disabled = COALESCE($7, disabled), \
                         voice_excludes_chat = COALESCE($8, voice_excludes_chat) \
                         WHERE id = $1 RETURNING ",
                        sql::account_columns!()
                    ))
                    .bind(id.0)
                    .bind(update.display_name)
                    .bind(update.role.map(Role::as_str))
                    .bind(languages)
                    .bind(update.chat_capacity.map(i64::from))
                    .bind(update.voice_capacity.map(i64::from))
                    .bind(update.disabled)
                    .bind(update.voice_excludes_chat)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %id))]
                async fn set_password(
                    &self,
                    id: OperatorId,
                    hash: &str,
                    must_change: bool,
                ) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE accounts SET password_hash = $2, must_change_password = $3 \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(hash)
                    .bind(must_change)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::touched(done.rows_affected())
                }

                // ---- sessions ----

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %session.account))]
                async fn create_session(&self, session: Session) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(session.token_hash)
                    .bind(session.account.0)
                    .bind(session.created_at.0)
                    .bind(session.expires_at.0)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Session> {
                    let row: sql::SessionRow = sqlx::query_as(
                        "SELECT token_hash, account_id, created_at, expires_at FROM sessions \
                         WHERE token_hash = $1 AND expires_at > $2",
                    )
                    .bind(token_hash)
                    .bind(now.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(row.into())
                }

                /// Idempotent: deleting a session that is already gone is `Ok` (logging out twice).
                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                        .bind(token_hash)
                        .execute(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn delete_sessions_of(&self, account: OperatorId) -> StoreResult<()> {
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                        .bind(account.0)
                        .execute(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(())
                }

                // ---- skills ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn put_skill(&self, skill: SkillInfo) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO skills (skill, description) VALUES ($1, $2) \
                         ON CONFLICT (skill) DO UPDATE SET description = excluded.description",
                    )
                    .bind(skill.skill.as_str())
                    .bind(skill.description)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn skills(&self) -> StoreResult<Vec<SkillInfo>> {
                    let rows: Vec<(String, String)> =
                        sqlx::query_as("SELECT skill, description FROM skills ORDER BY skill")
                            .fetch_all(&self.pool)
                            .await
                            .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(skill, description)| {
                            let skill = Skill::parse(&skill)
                                .map_err(|e| StoreError::Corrupt(format!("skills.skill: {e}")))?;
                            Ok(SkillInfo { skill, description })
                        })
                        .collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn set_account_skills(
                    &self,
                    account: OperatorId,
                    skills: &[(Skill, Proficiency)],
                ) -> StoreResult<()> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    sql::clear_account_rows!(tx, "account_skills", account);
                    for (skill, proficiency) in skills {
                        // An unknown skill breaks the foreign key: NotFound.
                        sqlx::query(
                            "INSERT INTO account_skills (account_id, skill, proficiency) \
                             VALUES ($1, $2, $3)",
                        )
                        .bind(account.0)
                        .bind(skill.as_str())
                        .bind(i64::from(proficiency.get()))
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    tx.commit().await.map_err(sql::error)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn account_skills(
                    &self,
                    account: OperatorId,
                ) -> StoreResult<Vec<(Skill, Proficiency)>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT skill, proficiency FROM account_skills WHERE account_id = $1 \
                         ORDER BY skill",
                    )
                    .bind(account.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    rows.into_iter()
                        .map(|(skill, level)| sql::account_skill(skill, level))
                        .collect()
                }

                // ---- queues ----

                #[tracing::instrument(skip_all, fields(db = $dialect, queue = %queue.id))]
                async fn put_queue(&self, queue: &QueueDefinition) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO queues (id, definition) VALUES ($1, $2) \
                         ON CONFLICT (id) DO UPDATE SET definition = excluded.definition",
                    )
                    .bind(queue.id.as_str())
                    .bind(sql::to_json("queues.definition", queue)?)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn queues(&self) -> StoreResult<Vec<QueueDefinition>> {
                    let rows: Vec<String> =
                        sqlx::query_scalar("SELECT definition FROM queues ORDER BY id")
                            .fetch_all(&self.pool)
                            .await
                            .map_err(sql::error)?;
                    rows.iter().map(|json| sql::queue_definition(json)).collect()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, queue = %id))]
                async fn delete_queue(&self, id: &QueueId) -> StoreResult<()> {
                    let done = sqlx::query("DELETE FROM queues WHERE id = $1")
                        .bind(id.as_str())
                        .execute(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    sql::touched(done.rows_affected())
                }

                // ---- contacts ----

                #[tracing::instrument(skip_all, fields(db = $dialect, queue = %contact.queue))]
                async fn create_contact(
                    &self,
                    contact: NewContactRecord,
                ) -> StoreResult<ContactId> {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO contacts (queue, channel, language, topic, age_group, risk, \
                         state, caller_key_hash, resume_token_hash, entered_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                    )
                    .bind(contact.queue.as_str())
                    .bind(contact.channel.as_str())
                    .bind(contact.language.as_str())
                    .bind(contact.topic.as_ref().map(Topic::as_str))
                    .bind(contact.age_group)
                    .bind(contact.risk.as_str())
                    .bind(ContactState::Waiting.as_str())
                    .bind(contact.caller_key_hash)
                    .bind(contact.resume_token_hash)
                    .bind(contact.entered_at.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(ContactId(id))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %id))]
                async fn contact(&self, id: ContactId) -> StoreResult<ContactRecord> {
                    let row: sql::ContactRow = sqlx::query_as(concat!(
                        "SELECT ", sql::contact_columns!(), " FROM contacts WHERE id = $1"
                    ))
                    .bind(id.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn contact_by_resume_token(
                    &self,
                    token_hash: &str,
                ) -> StoreResult<ContactRecord> {
                    let row: sql::ContactRow = sqlx::query_as(concat!(
                        "SELECT ", sql::contact_columns!(), " FROM contacts \
                         WHERE resume_token_hash = $1"
                    ))
                    .bind(token_hash)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                /// Oldest first. The `IN` list is the partial index `contacts_open`'s, word for
                /// word (SQLite only uses a partial index whose condition the query repeats).
                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn open_contacts(&self) -> StoreResult<Vec<ContactRecord>> {
                    let rows: Vec<sql::ContactRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::contact_columns!(), " FROM contacts \
                         WHERE state IN ('waiting', 'offered', 'assigned', 'wrapping') \
                         ORDER BY entered_at, id"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                /// The condition is the partial index `contacts_abandoned`'s, word for word.
                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn abandoned_since(&self, since: Timestamp) -> StoreResult<Vec<ContactRecord>> {
                    let rows: Vec<sql::ContactRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::contact_columns!(), " FROM contacts \
                         WHERE state = 'abandoned' AND ended_at >= $1 \
                         ORDER BY entered_at, id"
                    ))
                    .bind(since.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn contacts_of_caller(
                    &self,
                    caller_key_hash: &str,
                    limit: i64,
                ) -> StoreResult<Vec<ContactRecord>> {
                    let rows: Vec<sql::ContactRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::contact_columns!(), " FROM contacts \
                         WHERE caller_key_hash = $1 ORDER BY entered_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(caller_key_hash)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                // ---- transcripts ----

                /// The contact row is bumped first (`last_message_seq`), which both assigns the seq
                /// and serializes concurrent appends to one contact: seqs are 1..n with no gaps.
                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %message.contact))]
                async fn append_message(&self, message: NewMessage) -> StoreResult<Message> {
                    let mut appended = self.append_messages(vec![message], None).await?;
                    appended.pop().ok_or(StoreError::NotFound)
                }

                /// Two statements for any number of lines: one `UPDATE … FROM` bumps each
                /// contact's `last_message_seq` by its number of lines (taking the row lock that
                /// serializes appends to a contact on PostgreSQL), one `INSERT … SELECT` writes the
                /// lines with the seqs that leaves. On SQLite the whole transaction is one
                /// round trip, with the lines as bound rows ([`sql::sqlite_append_lines`]).
                #[tracing::instrument(skip_all, fields(db = $dialect, lines = messages.len()))]
                async fn append_messages(
                    &self,
                    messages: Vec<NewMessage>,
                    batch: Option<u64>,
                ) -> StoreResult<Vec<Message>> {
                    // A line's seq: its contact's last seq after the bump, less the contact's lines
                    // in the batch (n), plus its own rank among them (k, from 1). An unknown
                    // contact leaves it NULL, which the NOT NULL column refuses.
                    fn insert(param: usize) -> String {
                        format!(
                        "INSERT INTO messages (contact_id, seq, sender, author_id, visibility, body, at) \
                         SELECT j.c, (SELECT last_message_seq FROM contacts WHERE id = j.c) - j.n + j.k, \
                         j.f, j.a, j.v, j.b, j.t FROM {} AS j ORDER BY j.i \
                         RETURNING id, contact_id, seq",
                        sql::json_rows($dialect, param, &[
                            ("i", "bigint"), ("c", "bigint"), ("n", "bigint"), ("k", "bigint"),
                            ("f", "text"), ("a", "bigint"), ("v", "text"), ("b", "text"),
                            ("t", "bigint"),
                        ]),
                        )
                    }
                    static BUMP: LazyLock<String> = LazyLock::new(|| sql::bump_message_seqs($dialect, "$1"));
                    static INSERT: LazyLock<String> = LazyLock::new(|| insert(1));
                    static HEAD: LazyLock<String> = LazyLock::new(|| sql::next_transcript_head("$1::bigint"));
                    let batch = batch.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
                    if messages.is_empty() {
                        return Ok(Vec::new());
                    }
                    let slots = sql::LineSlots::of(&messages);
                    let (per_contact, ranks) = (&slots.per_contact, &slots.ranks);
                    // Bumped (and on PostgreSQL locked) in ascending id, as the router's
                    // projection does, so that the two never wait on each other's rows.
                    let mut bumps: Vec<&sql::SeqParam> = per_contact.iter().collect();
                    bumps.sort_by_key(|p| p.cid);
                    let counts = sql::json_param(&bumps)?;
                    let refused = |e: sqlx::Error| match e.as_database_error().map(|d| d.kind()) {
                        Some(sqlx::error::ErrorKind::NotNullViolation) => StoreError::NotFound,
                        _ => sql::error(e),
                    };
                    let written: Vec<(i64, i64, i64)> = if $dialect == "sqlite" {
                        let (statement, rows) = sql::sqlite_append_lines(messages.len());
                        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(statement)).bind(counts);
                        for (m, (slot, k)) in messages.iter().zip(ranks) {
                            query = query
                                .bind(m.contact.0)
                                .bind(per_contact[*slot].n - k)
                                .bind(sql::sender_str(m.sender))
                                .bind(m.author.map(|a| a.0))
                                .bind(sql::visibility_str(m.visibility))
                                .bind(m.body.as_str())
                                .bind(m.at.0);
                        }
                        for _ in 0..(rows - messages.len()) * sql::LINE_VALUES {
                            query = query.bind(None::<i64>);
                        }
                        query = query.bind(batch);
                        let mut conn = self.writer().acquire().await.map_err(sql::error)?;
                        match query.fetch_all(&mut *conn).await {
                            Ok(rows) => rows,
                            Err(e) => {
                                sql::abandon(&mut conn).await;
                                return Err(refused(e));
                            }
                        }
                    } else {
                        let rows: Vec<_> = messages
                            .iter()
                            .zip(ranks)
                            .enumerate()
                            .map(|(i, (m, (slot, k)))| sql::LineParam {
                                i,
                                c: m.contact.0,
                                n: per_contact[*slot].n,
                                k: *k,
                                f: sql::sender_str(m.sender),
                                a: m.author.map(|a| a.0),
                                v: sql::visibility_str(m.visibility),
                                b: &m.body,
                                t: m.at.0,
                            })
                            .collect();
                        let lines = sql::json_param(&rows)?;
                        drop(rows);
                        let mut tx = self.writer().begin().await.map_err(sql::error)?;
                        let bumped = sqlx::query(sqlx::AssertSqlSafe(BUMP.as_str()))
                            .bind(counts)
                            .execute(&mut *tx)
                            .await
                            .map_err(sql::error)?;
                        if bumped.rows_affected() != per_contact.len() as u64 {
                            return Err(StoreError::NotFound);
                        }
                        let written = sqlx::query_as(sqlx::AssertSqlSafe(INSERT.as_str()))
                            .bind(lines)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(refused)?;
                        sqlx::query(sqlx::AssertSqlSafe(HEAD.as_str()))
                            .bind(batch)
                            .execute(&mut *tx)
                            .await
                            .map_err(sql::error)?;
                        tx.commit().await.map_err(sql::error)?;
                        written
                    };
                    slots.stored(messages, written)
                }

                async fn appended_batch(
                    &self,
                    batch: u64,
                    messages: Vec<NewMessage>,
                ) -> StoreResult<Option<Vec<Message>>> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let (batches, last_id): (i64, i64) = sqlx::query_as(
                        "SELECT batches, last_id FROM transcript_head WHERE id = 1",
                    )
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    if u64::try_from(batches).ok() != Some(batch) {
                        return Ok(None);
                    }
                    let mut written: Vec<(i64, i64, i64)> = sqlx::query_as(
                        "SELECT id, contact_id, seq FROM messages WHERE id <= $1 \
                         ORDER BY id DESC LIMIT $2",
                    )
                    .bind(last_id)
                    .bind(i64::try_from(messages.len()).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    tx.commit().await.map_err(sql::error)?;
                    written.reverse();
                    sql::LineSlots::of(&messages).stored(messages, written).map(Some)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn messages(&self, contact: ContactId) -> StoreResult<Vec<Message>> {
                    let rows: Vec<sql::MessageRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::message_columns!(), " FROM messages \
                         WHERE contact_id = $1 ORDER BY seq"
                    ))
                    .bind(contact.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn transcript_page(
                    &self,
                    contact: ContactId,
                    reader: Reader,
                    before: Option<i64>,
                    limit: u32,
                ) -> StoreResult<TranscriptPage> {
                    let statement = match reader {
                        Reader::Staff => concat!(
                            "SELECT ", sql::message_columns!(), " FROM messages \
                             WHERE contact_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
                        ),
                        Reader::Caller => concat!(
                            "SELECT ", sql::message_columns!(), " FROM messages \
                             WHERE contact_id = $1 AND seq < $2 AND visibility = 'all' \
                             ORDER BY seq DESC LIMIT $3"
                        ),
                    };
                    // One row more than asked says whether there are earlier lines.
                    let mut rows: Vec<sql::MessageRow> = sqlx::query_as(statement)
                        .bind(contact.0)
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit) + 1)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    let earlier = rows.len() > limit as usize;
                    rows.truncate(limit as usize);
                    rows.reverse();
                    Ok(TranscriptPage {
                        lines: sql::all(rows)?,
                        earlier,
                    })
                }

                // ---- event log ----

                /// Ids handed out ahead of their rows, so that the router can create a contact
                /// inside the transaction that logs its first events. Never handed out twice, and
                /// never taken by a later `create_contact`.
                #[tracing::instrument(skip_all, fields(db = $dialect, n = n))]
                async fn reserve_contact_ids(&self, n: u32) -> StoreResult<Vec<ContactId>> {
                    let n = i64::from(n.max(1));
                    if $dialect == "sqlite" {
                        // AUTOINCREMENT takes max(rowid, sqlite_sequence.seq) + 1: moving the
                        // sequence on reserves the ids in between.
                        let mut tx = self.writer().begin().await.map_err(sql::error)?;
                        sqlx::query(
                            "INSERT INTO sqlite_sequence (name, seq) SELECT 'contacts', 0 \
                             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'contacts')",
                        )
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        let last: i64 = sqlx::query_scalar(
                            "UPDATE sqlite_sequence \
                             SET seq = MAX(seq, COALESCE((SELECT MAX(id) FROM contacts), 0)) + $1 \
                             WHERE name = 'contacts' RETURNING seq",
                        )
                        .bind(n)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        tx.commit().await.map_err(sql::error)?;
                        Ok((last - n + 1..=last).map(ContactId).collect())
                    } else {
                        let ids: Vec<i64> = sqlx::query_scalar(
                            "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) \
                             FROM generate_series(1, $1::bigint)",
                        )
                        .bind(n)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql::error)?;
                        Ok(ids.into_iter().map(ContactId).collect())
                    }
                }

                /// One transaction, whatever the batch's size: new contacts (with the batch's
                /// changes to them already applied), the events (in the engine's order, so seq
                /// order is decision order), and one projection row per other contact touched (the
                /// batch's changes folded in order). On SQLite it is three statements sent as one
                /// round trip ([`sql::one_shot`]); on PostgreSQL one statement, whose data-modifying
                /// `WITH` parts all wait for the log's head row first (see events_head).
                #[tracing::instrument(skip_all, fields(db = $dialect, contacts = contacts.len(), events = events.len()))]
                async fn record_batch(
                    &self,
                    at: Timestamp,
                    batch: Option<u64>,
                    contacts: &[(ContactId, NewContactRecord)],
                    events: &[Event],
                ) -> StoreResult<()> {
                    const CREATED: &[(&str, &str)] = &[
                        ("id", "bigint"), ("queue", "text"), ("channel", "text"),
                        ("language", "text"), ("topic", "text"), ("age_group", "text"),
                        ("risk", "text"), ("state", "text"), ("operator_id", "bigint"),
                        ("caller_key_hash", "text"), ("resume_token_hash", "text"),
                        ("entered_at", "bigint"), ("connected_at", "bigint"), ("ended_at", "bigint"),
                    ];
                    const LOGGED: &[(&str, &str)] = &[
                        ("i", "bigint"), ("t", "bigint"), ("k", "text"), ("c", "bigint"),
                        ("o", "bigint"), ("d", "jsonb"),
                    ];
                    const CHANGED: &[(&str, &str)] = &[
                        ("cid", "bigint"), ("new_state", "text"), ("set_operator", "boolean"),
                        ("new_operator", "bigint"), ("new_queue", "text"), ("new_risk", "text"),
                        ("new_connected_at", "bigint"), ("set_ended", "boolean"),
                        ("new_ended_at", "bigint"),
                    ];
                    const SET: &str = "state = COALESCE(j.new_state, state), \
                        operator_id = CASE WHEN j.set_operator THEN j.new_operator ELSE operator_id END, \
                        queue = COALESCE(j.new_queue, queue), \
                        risk = COALESCE(j.new_risk, risk), \
                        connected_at = COALESCE(connected_at, j.new_connected_at), \
                        ended_at = CASE WHEN j.set_ended THEN j.new_ended_at ELSE ended_at END";
                    /// `also` joins the head row on PostgreSQL (empty on SQLite).
                    fn create(param: usize, also: &str) -> String {
                        let names: Vec<&str> = CREATED.iter().map(|(name, _)| *name).collect();
                        format!(
                            "INSERT INTO contacts ({names}) {overriding} SELECT {names} \
                             FROM {rows} AS j{also} ORDER BY j.id",
                            names = names.join(", "),
                            overriding = if $dialect == "sqlite" { "" } else { "OVERRIDING SYSTEM VALUE" },
                            rows = sql::json_rows($dialect, param, CREATED),
                        )
                    }
                    fn log(param: usize, also: &str) -> String {
                        format!(
                            "INSERT INTO events (at, kind, contact_id, operator_id, data) \
                             SELECT t, k, c, o, d FROM {} AS j{also} ORDER BY j.i",
                            sql::json_rows($dialect, param, LOGGED),
                        )
                    }
                    // The head moves to the batch's number (see `sql::next_batch`).
                    fn next_head(param: &str) -> String {
                        format!(
                            "UPDATE events_head SET batches = {} WHERE id = 1",
                            sql::next_batch(param),
                        )
                    }
                    static ONE_SHOT: LazyLock<String> = LazyLock::new(|| {
                        sql::one_shot(&[
                            &next_head("$4"),
                            &create(1, ""),
                            &log(2, ""),
                            &sql::update_contacts_from("sqlite", "$3", CHANGED, SET, "", "RETURNING id"),
                        ])
                    });
                    // The head row first: it serializes writers of the log, so that seq order is
                    // commit order. Every part joins it, so none runs before its lock is taken.
                    static ONE_STATEMENT: LazyLock<String> = LazyLock::new(|| {
                        format!(
                            "WITH head AS ({next_head} RETURNING batches), \
                             created AS ({create}), logged AS ({log}), projected AS ({project}) \
                             SELECT id FROM projected",
                            next_head = next_head("$4::bigint"),
                            create = create(1, ", head"),
                            log = log(2, ", head"),
                            project = sql::update_contacts_from(
                                "postgres", "$3", CHANGED, SET, ", head", "RETURNING id",
                            ),
                        )
                    });
                    if events.is_empty() && contacts.is_empty() {
                        return Ok(());
                    }
                    let mut folded = projection::project_batch(events, at);
                    // A contact created in this batch is written as the batch leaves it: the
                    // projection of the other statement would not see it on PostgreSQL.
                    let created: Vec<_> = contacts
                        .iter()
                        .map(|(id, c)| {
                            let change = folded
                                .iter()
                                .position(|(contact, _)| contact == id)
                                .map(|i| folded.remove(i).1)
                                .unwrap_or_default();
                            (id, c, change)
                        })
                        .collect();
                    let created: Vec<_> = created
                        .iter()
                        .map(|(id, c, change)| sql::ContactParam {
                            id: id.0,
                            queue: change.queue.as_ref().unwrap_or(&c.queue).as_str(),
                            channel: c.channel.as_str(),
                            language: c.language.as_str(),
                            topic: c.topic.as_ref().map(Topic::as_str),
                            age_group: c.age_group.as_deref(),
                            risk: change.risk.unwrap_or(c.risk).as_str(),
                            state: change.state.unwrap_or(ContactState::Waiting).as_str(),
                            operator_id: change.operator.flatten().map(|o| o.0),
                            caller_key_hash: c.caller_key_hash.as_deref(),
                            resume_token_hash: &c.resume_token_hash,
                            entered_at: c.entered_at.0,
                            connected_at: change.connected_at.map(|t| t.0),
                            ended_at: change.ended_at.flatten().map(|t| t.0),
                        })
                        .collect();
                    let logged: Vec<_> = events
                        .iter()
                        .enumerate()
                        .map(|(i, event)| sql::EventParam {
                            i,
                            t: at.0,
                            k: event.kind(),
                            c: event.contact().map(|c| c.0),
                            o: event.operator().map(|o| o.0),
                            d: event,
                        })
                        .collect();
                    let changes: Vec<_> = folded
                        .iter()
                        .map(|(contact, change)| sql::ProjectionParam {
                            cid: contact.0,
                            new_state: change.state.map(ContactState::as_str),
                            set_operator: change.operator.is_some(),
                            new_operator: change.operator.flatten().map(|o| o.0),
                            new_queue: change.queue.as_ref().map(QueueId::as_str),
                            new_risk: change.risk.map(RiskLevel::as_str),
                            new_connected_at: change.connected_at.map(|t| t.0),
                            set_ended: change.ended_at.is_some(),
                            new_ended_at: change.ended_at.flatten().map(|t| t.0),
                        })
                        .collect();
                    let statement = if $dialect == "sqlite" { &ONE_SHOT } else { &ONE_STATEMENT };
                    let mut conn = self.writer().acquire().await.map_err(sql::error)?;
                    let projected: Vec<i64> = match sqlx::query_scalar(sqlx::AssertSqlSafe(statement.as_str()))
                        .bind(sql::json_param(&created)?)
                        .bind(sql::json_param(&logged)?)
                        .bind(sql::json_param(&changes)?)
                        .bind(batch.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
                        .fetch_all(&mut *conn)
                        .await
                    {
                        Ok(ids) => ids,
                        Err(e) => {
                            if $dialect == "sqlite" {
                                sql::abandon(&mut conn).await;
                            }
                            return Err(sql::error(e));
                        }
                    };
                    if projected.len() < changes.len() {
                        // The events are in the log all the same: the log never refuses what the
                        // engine decided.
                        tracing::warn!(
                            unknown = changes.len() - projected.len(),
                            "events for unknown contacts"
                        );
                    }
                    Ok(())
                }

                async fn log_head(&self, log: Log) -> StoreResult<u64> {
                    let query = match log {
                        Log::Events => "SELECT batches FROM events_head WHERE id = 1",
                        Log::Transcript => "SELECT batches FROM transcript_head WHERE id = 1",
                    };
                    let head: i64 = sqlx::query_scalar(query)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    u64::try_from(head).map_err(|e| StoreError::Corrupt(format!("{log:?} log head: {e}")))
                }

                // On SQLite through the writer connection, in line with the hot writes: through
                // the main pool it would meet their lock every `alive_every_ms`, and leave the
                // writer's page cache cold.
                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn mark_alive(&self, at: Timestamp) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO alive (id, at) VALUES (1, $1) \
                         ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    )
                    .bind(at.0)
                    .execute(self.writer())
                    .await
                    .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn last_alive(&self) -> StoreResult<Option<Timestamp>> {
                    let (mark, event, line): (Option<i64>, Option<i64>, Option<i64>) =
                        sqlx::query_as(
                            "SELECT (SELECT at FROM alive WHERE id = 1), \
                             (SELECT at FROM events ORDER BY seq DESC LIMIT 1), \
                             (SELECT at FROM messages ORDER BY id DESC LIMIT 1)",
                        )
                        .fetch_one(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(mark.max(event).max(line).map(Timestamp))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn events_of_contact(
                    &self,
                    contact: ContactId,
                ) -> StoreResult<Vec<StoredEvent>> {
                    let rows: Vec<sql::EventRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::event_columns!(), " FROM events \
                         WHERE contact_id = $1 ORDER BY seq"
                    ))
                    .bind(contact.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contacts = contacts.len()))]
                async fn lost_their_operator(
                    &self,
                    contacts: &[ContactId],
                ) -> StoreResult<Vec<ContactId>> {
                    static QUERY: LazyLock<String> = LazyLock::new(|| {
                        format!(
                            "SELECT DISTINCT contact_id FROM events \
                             WHERE contact_id IN (SELECT cid FROM {} AS j) \
                             AND kind = 'requeue' AND data ->> 'reason' = 'operator_lost' \
                             ORDER BY contact_id",
                            sql::json_rows($dialect, 1, &[("cid", "bigint")]),
                        )
                    });
                    if contacts.is_empty() {
                        return Ok(Vec::new());
                    }
                    let lost: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(QUERY.as_str()))
                        .bind(sql::ids_param(contacts.iter().map(|c| c.0))?)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(lost.into_iter().map(ContactId).collect())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contacts = contacts.len()))]
                async fn joins_and_leaves(
                    &self,
                    contacts: &[ContactId],
                ) -> StoreResult<Vec<StoredEvent>> {
                    static QUERY: LazyLock<String> = LazyLock::new(|| {
                        format!(
                            "SELECT {} FROM events \
                             WHERE contact_id IN (SELECT cid FROM {} AS j) \
                             AND kind IN ('join', 'leave') ORDER BY seq",
                            sql::event_columns!(),
                            sql::json_rows($dialect, 1, &[("cid", "bigint")]),
                        )
                    });
                    if contacts.is_empty() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<sql::EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(QUERY.as_str()))
                        .bind(sql::ids_param(contacts.iter().map(|c| c.0))?)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, contacts = contacts.len()))]
                async fn stays(
                    &self,
                    contacts: &[ContactId],
                ) -> StoreResult<Vec<Stay>> {
                    static QUERY: LazyLock<String> = LazyLock::new(|| {
                        format!(
                            "SELECT contact_id, kind, at, \
                             CASE WHEN kind = 'overflow' THEN data ->> 'from' END \
                             AS overflowed_from FROM events \
                             WHERE contact_id IN (SELECT cid FROM {} AS j) \
                             AND kind IN ('enter_queue', 'overflow', 'transfer', 'requeue', \
                             'connect', 'wrap_up') \
                             ORDER BY contact_id, seq",
                            sql::json_rows($dialect, 1, &[("cid", "bigint")]),
                        )
                    });
                    if contacts.is_empty() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<sql::StayRow> = sqlx::query_as(sqlx::AssertSqlSafe(QUERY.as_str()))
                        .bind(sql::ids_param(contacts.iter().map(|c| c.0))?)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    sql::stays_from(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, operators = operators.len()))]
                async fn states_before_away(
                    &self,
                    operators: &[OperatorId],
                ) -> StoreResult<Vec<StoredEvent>> {
                    static QUERY: LazyLock<String> = LazyLock::new(|| {
                        format!(
                            "SELECT {} FROM events WHERE seq IN \
                             (SELECT MAX(seq) FROM events WHERE kind = 'operator_state' \
                             AND operator_id IN (SELECT cid FROM {} AS j) \
                             AND data -> 'state' ->> 'state' <> 'away' \
                             GROUP BY operator_id) ORDER BY seq",
                            sql::event_columns!(),
                            sql::json_rows($dialect, 1, &[("cid", "bigint")]),
                        )
                    });
                    if operators.is_empty() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<sql::EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(QUERY.as_str()))
                        .bind(sql::ids_param(operators.iter().map(|o| o.0))?)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, after = after, limit = limit))]
                async fn events_after(
                    &self,
                    after: i64,
                    limit: i64,
                ) -> StoreResult<Vec<StoredEvent>> {
                    let rows: Vec<sql::EventRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::event_columns!(), " FROM events \
                         WHERE seq > $1 ORDER BY seq LIMIT $2"
                    ))
                    .bind(after)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }
            }
        };
    };
}
pub(crate) use impl_store;
