//! Notes storage: drafts saved while the operator types, submission that locks the note, and
//! amendments appended (never edits). One SQL body for both dialects ([`impl_note_store!`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{StoreError, StoreResult};
use crate::domain::{ContactId, OperatorId, Timestamp};

/// Field values of a note: field id → value, as the form defines them.
pub type NoteFields = BTreeMap<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    Draft,
    Submitted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Note {
    pub id: i64,
    pub contact: ContactId,
    pub author: OperatorId,
    pub form_version: u32,
    /// As first written (drafts) or submitted; amendments never change these.
    pub fields: NoteFields,
    pub status: NoteStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub submitted_at: Option<Timestamp>,
    pub amendments: Vec<Amendment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Amendment {
    pub id: i64,
    pub author: OperatorId,
    pub reason: String,
    /// Field id → new value.
    pub changes: NoteFields,
    pub at: Timestamp,
}

impl Note {
    /// The note as it reads now: the submitted fields with every amendment applied in order.
    pub fn effective(&self) -> NoteFields {
        let mut fields = self.fields.clone();
        for a in &self.amendments {
            for (k, v) in &a.changes {
                fields.insert(k.clone(), v.clone());
            }
        }
        fields
    }
}

#[async_trait]
pub trait NoteStore {
    /// Saves (creating or replacing) the author's draft for a contact. `Conflict` once submitted.
    async fn save_note_draft(
        &self,
        contact: ContactId,
        author: OperatorId,
        form_version: u32,
        fields: &NoteFields,
        at: Timestamp,
    ) -> StoreResult<Note>;
    /// Stores and locks the author's note. `Conflict` if it was already submitted.
    async fn submit_note(
        &self,
        contact: ContactId,
        author: OperatorId,
        form_version: u32,
        fields: &NoteFields,
        at: Timestamp,
    ) -> StoreResult<Note>;
    async fn note(&self, id: i64) -> StoreResult<Note>;
    /// Every note of a contact (drafts included), oldest first, with amendments.
    async fn notes_of_contact(&self, contact: ContactId) -> StoreResult<Vec<Note>>;
    /// Appends an amendment to a submitted note (`Conflict` for a draft), if the note's last
    /// amendment is still `after` (the one the change was checked against; `None`: none yet).
    /// `Ok(None)` when another was appended since: nothing is written, and the change must be
    /// checked again against the note as it now is. Amendments to one note are appended one at a
    /// time, so two made at once are never both checked against the same note.
    async fn amend_note(
        &self,
        note: i64,
        author: OperatorId,
        reason: &str,
        changes: &NoteFields,
        at: Timestamp,
        after: Option<i64>,
    ) -> StoreResult<Option<Amendment>>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct NoteRow {
    pub id: i64,
    pub contact_id: i64,
    pub author_id: i64,
    pub form_version: i64,
    pub fields: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AmendmentRow {
    pub id: i64,
    pub note_id: i64,
    pub author_id: i64,
    pub reason: String,
    pub changes: String,
    pub at: i64,
}

fn fields_from(what: &str, text: &str) -> StoreResult<NoteFields> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn amendment(row: AmendmentRow) -> StoreResult<Amendment> {
    Ok(Amendment {
        id: row.id,
        author: OperatorId(row.author_id),
        reason: row.reason,
        changes: fields_from("note_amendments.changes", &row.changes)?,
        at: Timestamp(row.at),
    })
}

/// Builds notes from their rows and all their amendment rows (any order of amendments by id).
pub(crate) fn notes(rows: Vec<NoteRow>, amendments: Vec<AmendmentRow>) -> StoreResult<Vec<Note>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let status = match r.status.as_str() {
            "draft" => NoteStatus::Draft,
            "submitted" => NoteStatus::Submitted,
            _ => return Err(StoreError::Corrupt("notes.status: unknown status".into())),
        };
        out.push(Note {
            id: r.id,
            contact: ContactId(r.contact_id),
            author: OperatorId(r.author_id),
            form_version: u32::try_from(r.form_version)
                .map_err(|e| StoreError::Corrupt(format!("notes.form_version: {e}")))?,
            fields: fields_from("notes.fields", &r.fields)?,
            status,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            submitted_at: r.submitted_at.map(Timestamp),
            amendments: Vec::new(),
        });
    }
    let mut amendments = amendments;
    amendments.sort_by_key(|a| a.id);
    for a in amendments {
        let note = a.note_id;
        if let Some(n) = out.iter_mut().find(|n| n.id == note) {
            n.amendments.push(amendment(a)?);
        }
    }
    Ok(out)
}

pub(crate) fn fields_json(fields: &NoteFields) -> StoreResult<String> {
    serde_json::to_string(fields).map_err(|e| StoreError::Corrupt(format!("note fields: {e}")))
}

macro_rules! note_columns {
    () => {
        "id, contact_id, author_id, form_version, fields, status, created_at, updated_at, submitted_at"
    };
}
pub(crate) use note_columns;

/// `impl NoteStore` for a store type with a `pool` field; the same SQL serves both dialects.
macro_rules! impl_note_store {
    ($store:ty, dialect = $dialect:literal) => {
        const _: () = {
            use $crate::domain::{ContactId, OperatorId, Timestamp};
            use $crate::store::notes::{
                self, Amendment, AmendmentRow, Note, NoteFields, NoteRow, NoteStore, note_columns,
            };
            use $crate::store::{StoreError, StoreResult, sql};

            impl $store {
                /// Writes the author's note in `status`, refusing if it is already submitted.
                async fn write_note(
                    &self,
                    contact: ContactId,
                    author: OperatorId,
                    form_version: u32,
                    fields: &NoteFields,
                    at: Timestamp,
                    submit: bool,
                ) -> StoreResult<Note> {
                    let status = if submit { "submitted" } else { "draft" };
                    // One statement: insert, or update only while still a draft. A submitted
                    // note matches no row, which is the conflict.
                    let row: Option<NoteRow> = sqlx::query_as(concat!(
                        "INSERT INTO notes (contact_id, author_id, form_version, fields, status, \
                         created_at, updated_at, submitted_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
                         ON CONFLICT (contact_id, author_id) DO UPDATE SET \
                         form_version = excluded.form_version, fields = excluded.fields, \
                         status = excluded.status, updated_at = excluded.updated_at, \
                         submitted_at = excluded.submitted_at \
                         WHERE notes.status = 'draft' RETURNING ",
                        note_columns!()
                    ))
                    .bind(contact.0)
                    .bind(author.0)
                    .bind(i64::from(form_version))
                    .bind(notes::fields_json(fields)?)
                    .bind(status)
                    .bind(at.0)
                    .bind(submit.then_some(at.0))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    let row = row.ok_or(StoreError::Conflict)?;
                    Ok(notes::notes(vec![row], Vec::new())?.remove(0))
                }
            }

            #[async_trait::async_trait]
            impl NoteStore for $store {
                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn save_note_draft(
                    &self,
                    contact: ContactId,
                    author: OperatorId,
                    form_version: u32,
                    fields: &NoteFields,
                    at: Timestamp,
                ) -> StoreResult<Note> {
                    self.write_note(contact, author, form_version, fields, at, false)
                        .await
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn submit_note(
                    &self,
                    contact: ContactId,
                    author: OperatorId,
                    form_version: u32,
                    fields: &NoteFields,
                    at: Timestamp,
                ) -> StoreResult<Note> {
                    self.write_note(contact, author, form_version, fields, at, true)
                        .await
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn note(&self, id: i64) -> StoreResult<Note> {
                    let row: NoteRow = sqlx::query_as(concat!(
                        "SELECT ",
                        note_columns!(),
                        " FROM notes WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    let amendments: Vec<AmendmentRow> = sqlx::query_as(
                        "SELECT id, note_id, author_id, reason, changes, at FROM note_amendments \
                         WHERE note_id = $1 ORDER BY id",
                    )
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(notes::notes(vec![row], amendments)?.remove(0))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn notes_of_contact(&self, contact: ContactId) -> StoreResult<Vec<Note>> {
                    let rows: Vec<NoteRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        note_columns!(),
                        " FROM notes WHERE contact_id = $1 ORDER BY id"
                    ))
                    .bind(contact.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    let amendments: Vec<AmendmentRow> = sqlx::query_as(
                        "SELECT a.id, a.note_id, a.author_id, a.reason, a.changes, a.at \
                         FROM note_amendments a JOIN notes n ON n.id = a.note_id \
                         WHERE n.contact_id = $1 ORDER BY a.id",
                    )
                    .bind(contact.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    notes::notes(rows, amendments)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn amend_note(
                    &self,
                    note: i64,
                    author: OperatorId,
                    reason: &str,
                    changes: &NoteFields,
                    at: Timestamp,
                    after: Option<i64>,
                ) -> StoreResult<Option<Amendment>> {
                    let changes = notes::fields_json(changes)?;
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    // A write first, which changes nothing: it takes the note's row lock
                    // (PostgreSQL) or the write lock (SQLite), so that amendments to a note are
                    // appended one at a time and the last one read below is the last one.
                    let locked: Option<i64> = sqlx::query_scalar(
                        "UPDATE notes SET updated_at = updated_at \
                         WHERE id = $1 AND status = 'submitted' RETURNING id",
                    )
                    .bind(note)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    if locked.is_none() {
                        drop(tx);
                        // The note does not exist, or is still a draft.
                        return match self.note(note).await {
                            Ok(_) => Err(StoreError::Conflict),
                            Err(e) => Err(e),
                        };
                    }
                    let last: Option<i64> = sqlx::query_scalar(
                        "SELECT max(id) FROM note_amendments WHERE note_id = $1",
                    )
                    .bind(note)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    if last != after {
                        return Ok(None);
                    }
                    let row: AmendmentRow = sqlx::query_as(
                        "INSERT INTO note_amendments (note_id, author_id, reason, changes, at) \
                         VALUES ($1, $2, $3, $4, $5) \
                         RETURNING id, note_id, author_id, reason, changes, at",
                    )
                    .bind(note)
                    .bind(author.0)
                    .bind(reason)
                    .bind(changes)
                    .bind(at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    tx.commit().await.map_err(sql::error)?;
                    notes::amendment(row).map(Some)
                }
            }
        };
    };
}
pub(crate) use impl_note_store;
