//! Quality storage: what reports read from the event log, incidents and notes; the access log;
//! quality audits; the training catalogue, sessions and attendance; certifications; assessment
//! sign-offs. One SQL body for both dialects ([`impl_quality_store!`]).
//!
//! Reads for reports return rows, never figures: every figure is computed in Rust from the same
//! rows on both databases (`quality::kpi`, `quality::trends`), so a report is identical on
//! SQLite and PostgreSQL.
//!
//! What it must never do: decide what to sample or how to score (that is `quality`), log note
//! contents, feedback or comments.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::notes::Note;
use super::{ContactRecord, StoreError, StoreResult, StoredEvent};
use crate::domain::{ContactId, OperatorId, Proficiency, Skill, Timestamp};

/// A crisis incident as reports need it (from the paging tables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentFact {
    pub incident: i64,
    pub contact: ContactId,
    pub triggered_at: Timestamp,
    /// The first acknowledgement on the incident's timeline.
    pub acknowledged_at: Option<Timestamp>,
}

/// What was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    Transcript,
    Notes,
    /// The audit view (transcript, notes and timeline together).
    Audit,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Transcript => "transcript",
            AccessKind::Notes => "notes",
            AccessKind::Audit => "audit",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [AccessKind::Transcript, AccessKind::Notes, AccessKind::Audit]
            .into_iter()
            .find(|k| k.as_str() == raw)
    }
}

/// One read of a contact's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AccessRecord {
    pub id: i64,
    pub reader: OperatorId,
    pub contact: ContactId,
    pub what: AccessKind,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFilter {
    pub contact: Option<ContactId>,
    pub reader: Option<OperatorId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// Why a contact is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditReason {
    /// Every crisis contact is audited.
    Crisis,
    /// Drawn by the cycle's reproducible sample.
    Sample,
    /// Added by a supervisor.
    Manual,
}

impl AuditReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditReason::Crisis => "crisis",
            AuditReason::Sample => "sample",
            AuditReason::Manual => "manual",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [
            AuditReason::Crisis,
            AuditReason::Sample,
            AuditReason::Manual,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// Waiting for a supervisor.
    Pending,
    /// Scored with feedback; waiting for the operator to acknowledge.
    Scored,
    Acknowledged,
}

impl AuditStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditStatus::Pending => "pending",
            AuditStatus::Scored => "scored",
            AuditStatus::Acknowledged => "acknowledged",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        [
            AuditStatus::Pending,
            AuditStatus::Scored,
            AuditStatus::Acknowledged,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// Item id → 0, 1, 2, or null for "not applicable".
pub type Scores = BTreeMap<String, Option<u8>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub contact: ContactId,
    pub operator: OperatorId,
    pub cycle: String,
    pub reason: AuditReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Audit {
    pub id: i64,
    pub contact: ContactId,
    /// Whose work is audited.
    pub operator: OperatorId,
    pub cycle: String,
    pub reason: AuditReason,
    pub status: AuditStatus,
    /// The scorecard as it was when scored.
    pub scorecard: Option<serde_json::Value>,
    pub scores: Option<Scores>,
    pub points: Option<i64>,
    pub max_points: Option<i64>,
    pub feedback: Option<String>,
    pub auditor: Option<OperatorId>,
    pub scored_at: Option<Timestamp>,
    pub acknowledged_at: Option<Timestamp>,
    pub operator_comment: Option<String>,
    pub created_at: Timestamp,
}

/// A supervisor's scoring of an audit.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditScore {
    pub auditor: OperatorId,
    pub scorecard: serde_json::Value,
    pub scores: Scores,
    pub points: i64,
    pub max_points: i64,
    pub feedback: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub status: Option<AuditStatus>,
    pub operator: Option<OperatorId>,
    pub cycle: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// One of the base modules everyone takes.
    Base,
    /// An extra module by role (the "x" of "8+x").
    Extra,
}

impl ModuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Base => "base",
            ModuleKind::Extra => "extra",
        }
    }
}

/// A module of the training catalogue, with its class hours (学时).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrainingModule {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub hours: u32,
    pub kind: ModuleKind,
    /// Order in the catalogue.
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attendee {
    pub account: OperatorId,
    /// The post-training questionnaire is done (needed for the hours to count towards a
    /// training-hours certificate).
    pub questionnaire_done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrainingSession {
    pub title: String,
    /// Local date, `YYYY-MM-DD`.
    pub held_on: String,
    pub trainer: String,
    /// A systematic training (counts towards the ≥ 4 a year).
    pub systematic: bool,
    pub modules: Vec<String>,
    pub attendees: Vec<Attendee>,
    pub created_by: OperatorId,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrainingSession {
    pub id: i64,
    pub title: String,
    pub held_on: String,
    pub trainer: String,
    pub systematic: bool,
    pub modules: Vec<String>,
    /// Class hours of the session: the sum of its modules' hours as they were when the session
    /// was recorded (a later change to the catalogue does not change them).
    pub hours: u32,
    pub attendees: Vec<Attendee>,
    pub created_by: OperatorId,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertification {
    pub account: OperatorId,
    pub kind: String,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub granted_by: OperatorId,
    pub assessment_score: Option<i64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Certification {
    pub id: i64,
    pub account: OperatorId,
    pub kind: String,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
    pub granted_by: OperatorId,
    pub assessment_score: Option<i64>,
    pub note: Option<String>,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<OperatorId>,
    pub revoke_reason: Option<String>,
    /// When its lapse (expiry or revocation) was applied to routing.
    pub lapsed_at: Option<Timestamp>,
}

impl Certification {
    /// In force now (`now` is the present): not revoked and not expired. A revocation applies
    /// from the moment it is recorded, whichever node's clock recorded it; a grant applies at
    /// once even if that clock is a little ahead.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// Held at `at` (an instant in the past, such as the end of an assessment cycle): granted
    /// by then, not revoked by then and not expired by then. A revocation made later does not
    /// reach back.
    pub fn held_at(&self, at: Timestamp) -> bool {
        self.granted_at <= at && self.revoked_at.is_none_or(|r| r > at) && self.expires_at > at
    }
}

/// A supervisor's sign-off of an operator's assessment for a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SignOff {
    pub cycle: String,
    pub operator: OperatorId,
    /// What the rules computed (`meets`, `needs_improvement`, `not_eligible`).
    pub computed: String,
    /// What the supervisor signed (may differ from `computed`, with a comment saying why).
    pub outcome: String,
    pub comment: String,
    /// The figures as they were when signed.
    pub figures: serde_json::Value,
    pub signed_by: OperatorId,
    pub signed_at: Timestamp,
}

#[async_trait]
pub trait QualityStore {
    // ---- report inputs ----
    /// The `seq` of the last event in the log (0 when empty).
    async fn event_head(&self) -> StoreResult<i64>;
    /// Events with `from <= at < to`, oldest first.
    async fn events_between(&self, from: Timestamp, to: Timestamp)
    -> StoreResult<Vec<StoredEvent>>;
    /// Every event (at any time) of the contacts that entered a queue in `[from, to)`.
    async fn events_of_contacts_entered(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Each operator's last `operator_state` event before `before`.
    async fn last_operator_states(&self, before: Timestamp) -> StoreResult<Vec<StoredEvent>>;
    /// Crisis incidents of the contacts that entered a queue in `[from, to)`.
    async fn incident_facts(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<IncidentFact>>;
    /// Contacts with `from <= entered_at < to`, by id.
    async fn contacts_entered(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<ContactRecord>>;
    /// Submitted notes (with amendments) of the contacts with `from <= entered_at < to`.
    async fn submitted_notes_of_contacts_entered(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Vec<Note>>;

    // ---- access log ----
    async fn record_access(
        &self,
        reader: OperatorId,
        contact: ContactId,
        what: AccessKind,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Newest first, at most `limit`.
    async fn access_log(&self, filter: &AccessFilter, limit: i64)
    -> StoreResult<Vec<AccessRecord>>;

    // ---- audits ----
    /// Inserts the audits that do not exist yet (one per contact and operator); returns how
    /// many were new.
    async fn insert_audits(&self, audits: &[NewAudit], at: Timestamp) -> StoreResult<u64>;
    async fn audit(&self, id: i64) -> StoreResult<Audit>;
    /// Newest first, at most `limit`.
    async fn audits(&self, filter: &AuditFilter, limit: i64) -> StoreResult<Vec<Audit>>;
    /// Scores (or re-scores) an audit; `Conflict` once acknowledged, and once its operator's
    /// assessment for its cycle was signed off with its score (the signed figures keep that
    /// score). A pending audit is scored even after the sign-off, and re-scored until
    /// acknowledged.
    async fn score_audit(&self, id: i64, score: &AuditScore) -> StoreResult<Audit>;
    /// The audited operator acknowledges a scored audit; `Conflict` unless it is `scored`
    /// and theirs.
    async fn acknowledge_audit(
        &self,
        id: i64,
        operator: OperatorId,
        comment: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<Audit>;

    // ---- training ----
    async fn training_modules(&self) -> StoreResult<Vec<TrainingModule>>;
    async fn put_training_module(&self, module: &TrainingModule) -> StoreResult<()>;
    /// Stores a session with its modules and attendees in one transaction. An unknown module
    /// or account is `NotFound`.
    async fn create_training_session(
        &self,
        session: &NewTrainingSession,
    ) -> StoreResult<TrainingSession>;
    async fn training_session(&self, id: i64) -> StoreResult<TrainingSession>;
    /// Sessions held on `from <= held_on < to` (ISO dates), oldest first.
    async fn training_sessions(&self, from: &str, to: &str) -> StoreResult<Vec<TrainingSession>>;
    /// Marks an attendee's questionnaire done (or not). `NotFound` if they did not attend.
    async fn set_questionnaire(
        &self,
        session: i64,
        account: OperatorId,
        done: bool,
    ) -> StoreResult<()>;

    // ---- certifications ----
    /// Stores a certification and, in the same transaction, grants its skill (added to the
    /// catalogue if missing; an existing higher proficiency is kept).
    async fn grant_certification(
        &self,
        certification: &NewCertification,
        skill: Option<(&Skill, Proficiency)>,
    ) -> StoreResult<Certification>;
    async fn certification(&self, id: i64) -> StoreResult<Certification>;
    /// Every certification, or one account's; newest first.
    async fn certifications(&self, account: Option<OperatorId>) -> StoreResult<Vec<Certification>>;
    /// `Conflict` if already revoked.
    async fn revoke_certification(
        &self,
        id: i64,
        by: OperatorId,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<Certification>;
    /// Expired or revoked certifications whose lapse was not applied yet.
    async fn lapsed_certifications(&self, now: Timestamp) -> StoreResult<Vec<Certification>>;
    /// Marks a lapse applied; false if someone else did first.
    async fn mark_certification_lapsed(&self, id: i64, at: Timestamp) -> StoreResult<bool>;
    /// The earliest expiry of a certification whose lapse is not applied yet.
    async fn next_certification_expiry(&self) -> StoreResult<Option<Timestamp>>;
    /// Removes one skill from an account (no error if it did not have it).
    async fn remove_account_skill(&self, account: OperatorId, skill: &Skill) -> StoreResult<()>;

    // ---- assessments ----
    /// `Conflict` if this operator's assessment for the cycle is already signed.
    async fn sign_off(&self, sign_off: &SignOff) -> StoreResult<SignOff>;
    async fn sign_offs(&self, cycle: &str) -> StoreResult<Vec<SignOff>>;
}

// ---- row parsing, shared by both dialects ----

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(crate) fn to_json<T: Serialize>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    id: i64,
    reader_id: i64,
    contact_id: i64,
    what: String,
    at: i64,
}

impl TryFrom<AccessRow> for AccessRecord {
    type Error = StoreError;
    fn try_from(r: AccessRow) -> StoreResult<AccessRecord> {
        Ok(AccessRecord {
            id: r.id,
            reader: OperatorId(r.reader_id),
            contact: ContactId(r.contact_id),
            what: AccessKind::parse(&r.what).ok_or_else(|| corrupt("access_log.what", &r.what))?,
            at: Timestamp(r.at),
        })
    }
}

macro_rules! audit_columns {
    () => {
        "id, contact_id, operator_id, cycle, reason, status, scorecard, scores, points, \
         max_points, feedback, auditor_id, scored_at, acknowledged_at, operator_comment, created_at"
    };
}
macro_rules! certification_columns {
    () => {
        "id, account_id, kind, granted_at, expires_at, granted_by, assessment_score, note, \
         revoked_at, revoked_by, revoke_reason, lapsed_at"
    };
}
pub(crate) use {audit_columns, certification_columns};

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    contact_id: i64,
    operator_id: i64,
    cycle: String,
    reason: String,
    status: String,
    scorecard: Option<String>,
    scores: Option<String>,
    points: Option<i64>,
    max_points: Option<i64>,
    feedback: Option<String>,
    auditor_id: Option<i64>,
    scored_at: Option<i64>,
    acknowledged_at: Option<i64>,
    operator_comment: Option<String>,
    created_at: i64,
}

impl TryFrom<AuditRow> for Audit {
    type Error = StoreError;
    fn try_from(r: AuditRow) -> StoreResult<Audit> {
        Ok(Audit {
            id: r.id,
            contact: ContactId(r.contact_id),
            operator: OperatorId(r.operator_id),
            cycle: r.cycle,
            reason: AuditReason::parse(&r.reason)
                .ok_or_else(|| corrupt("audits.reason", &r.reason))?,
            status: AuditStatus::parse(&r.status)
                .ok_or_else(|| corrupt("audits.status", &r.status))?,
            scorecard: r
                .scorecard
                .map(|s| from_json("audits.scorecard", &s))
                .transpose()?,
            scores: r
                .scores
                .map(|s| from_json("audits.scores", &s))
                .transpose()?,
            points: r.points,
            max_points: r.max_points,
            feedback: r.feedback,
            auditor: r.auditor_id.map(OperatorId),
            scored_at: r.scored_at.map(Timestamp),
            acknowledged_at: r.acknowledged_at.map(Timestamp),
            operator_comment: r.operator_comment,
            created_at: Timestamp(r.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ModuleRow {
    id: String,
    name_zh: String,
    name_en: String,
    hours: i64,
    kind: String,
    position: i64,
}

impl TryFrom<ModuleRow> for TrainingModule {
    type Error = StoreError;
    fn try_from(r: ModuleRow) -> StoreResult<TrainingModule> {
        Ok(TrainingModule {
            id: r.id,
            name_zh: r.name_zh,
            name_en: r.name_en,
            hours: u32::try_from(r.hours).map_err(|e| corrupt("training_modules.hours", e))?,
            kind: match r.kind.as_str() {
                "base" => ModuleKind::Base,
                "extra" => ModuleKind::Extra,
                other => return Err(corrupt("training_modules.kind", other)),
            },
            position: r.position,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: i64,
    title: String,
    held_on: String,
    trainer: String,
    systematic: bool,
    created_by: i64,
    created_at: i64,
}

/// Builds sessions from their rows, their (session, module, hours) rows and their
/// (session, account, questionnaire) rows.
pub(crate) fn sessions(
    rows: Vec<SessionRow>,
    modules: Vec<(i64, String, i64)>,
    attendance: Vec<(i64, i64, bool)>,
) -> StoreResult<Vec<TrainingSession>> {
    let mut out: Vec<TrainingSession> = rows
        .into_iter()
        .map(|r| TrainingSession {
            id: r.id,
            title: r.title,
            held_on: r.held_on,
            trainer: r.trainer,
            systematic: r.systematic,
            modules: Vec::new(),
            hours: 0,
            attendees: Vec::new(),
            created_by: OperatorId(r.created_by),
            created_at: Timestamp(r.created_at),
        })
        .collect();
    let index: BTreeMap<i64, usize> = out.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    for (session, module, hours) in modules {
        if let Some(&i) = index.get(&session) {
            out[i].modules.push(module);
            out[i].hours += u32::try_from(hours).map_err(|e| corrupt("training hours", e))?;
        }
    }
    for (session, account, done) in attendance {
        if let Some(&i) = index.get(&session) {
            out[i].attendees.push(Attendee {
                account: OperatorId(account),
                questionnaire_done: done,
            });
        }
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
pub(crate) struct CertificationRow {
    id: i64,
    account_id: i64,
    kind: String,
    granted_at: i64,
    expires_at: i64,
    granted_by: i64,
    assessment_score: Option<i64>,
    note: Option<String>,
    revoked_at: Option<i64>,
    revoked_by: Option<i64>,
    revoke_reason: Option<String>,
    lapsed_at: Option<i64>,
}

impl From<CertificationRow> for Certification {
    fn from(r: CertificationRow) -> Certification {
        Certification {
            id: r.id,
            account: OperatorId(r.account_id),
            kind: r.kind,
            granted_at: Timestamp(r.granted_at),
            expires_at: Timestamp(r.expires_at),
            granted_by: OperatorId(r.granted_by),
            assessment_score: r.assessment_score,
            note: r.note,
            revoked_at: r.revoked_at.map(Timestamp),
            revoked_by: r.revoked_by.map(OperatorId),
            revoke_reason: r.revoke_reason,
            lapsed_at: r.lapsed_at.map(Timestamp),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SignOffRow {
    cycle: String,
    operator_id: i64,
    computed: String,
    outcome: String,
    comment: String,
    figures: String,
    signed_by: i64,
    signed_at: i64,
}

impl TryFrom<SignOffRow> for SignOff {
    type Error = StoreError;
    fn try_from(r: SignOffRow) -> StoreResult<SignOff> {
        Ok(SignOff {
            cycle: r.cycle,
            operator: OperatorId(r.operator_id),
            computed: r.computed,
            outcome: r.outcome,
            comment: r.comment,
            figures: from_json("assessment_signoffs.figures", &r.figures)?,
            signed_by: OperatorId(r.signed_by),
            signed_at: Timestamp(r.signed_at),
        })
    }
}

/// The contacts of a report cohort: those that entered a queue in `[$1, $2)`.
macro_rules! cohort {
    () => {
        "SELECT contact_id FROM events WHERE kind = 'enter_queue' AND at >= $1 AND at < $2"
    };
}
pub(crate) use cohort;

/// `impl QualityStore` for a store type with a `pool` field; the same SQL serves both dialects.
macro_rules! impl_quality_store {
    ($store:ty, dialect = $dialect:literal) => {
        const _: () = {
            use $crate::domain::{ContactId, OperatorId, Proficiency, Skill, Timestamp};
            use $crate::store::notes::{self, AmendmentRow, Note, NoteRow, note_columns};
            use $crate::store::quality::{
                self as quality, AccessFilter, AccessKind, AccessRecord, AccessRow, Audit,
                AuditFilter, AuditRow, AuditScore, Certification, CertificationRow, IncidentFact,
                ModuleRow, NewAudit, NewCertification, NewTrainingSession, QualityStore,
                SessionRow, SignOff, SignOffRow, TrainingModule, TrainingSession,
                audit_columns, certification_columns, cohort,
            };
            use $crate::store::{ContactRecord, StoreError, StoreResult, StoredEvent, sql};

            impl $store {
                async fn sessions_where(
                    &self,
                    from: &str,
                    to: &str,
                    id: Option<i64>,
                ) -> StoreResult<Vec<TrainingSession>> {
                    // One filter for the three reads: a date range, or one id.
                    macro_rules! filter {
                        () => {
                            "SELECT id FROM training_sessions WHERE \
                             ($3 IS NULL AND held_on >= $1 AND held_on < $2) OR id = $3"
                        };
                    }
                    let rows: Vec<SessionRow> = sqlx::query_as(concat!(
                        "SELECT id, title, held_on, trainer, systematic, created_by, created_at \
                         FROM training_sessions WHERE id IN (", filter!(), ") ORDER BY held_on, id"
                    ))
                    .bind(from)
                    .bind(to)
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    let modules: Vec<(i64, String, i64)> = sqlx::query_as(concat!(
                        "SELECT sm.session_id, sm.module_id, sm.hours \
                         FROM training_session_modules sm \
                         JOIN training_modules m ON m.id = sm.module_id \
                         WHERE sm.session_id IN (", filter!(), ") ORDER BY sm.session_id, m.position"
                    ))
                    .bind(from)
                    .bind(to)
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    let attendance: Vec<(i64, i64, bool)> = sqlx::query_as(concat!(
                        "SELECT session_id, account_id, questionnaire_done FROM training_attendance \
                         WHERE session_id IN (", filter!(), ") ORDER BY session_id, account_id"
                    ))
                    .bind(from)
                    .bind(to)
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    quality::sessions(rows, modules, attendance)
                }
            }

            #[async_trait::async_trait]
            impl QualityStore for $store {
                // ---- report inputs ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn event_head(&self) -> StoreResult<i64> {
                    let head: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(head.unwrap_or(0))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn events_between(
                    &self,
                    from: Timestamp,
                    to: Timestamp,
                ) -> StoreResult<Vec<StoredEvent>> {
                    let rows: Vec<sql::EventRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::event_columns!(), " FROM events \
                         WHERE at >= $1 AND at < $2 ORDER BY seq"
                    ))
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn events_of_contacts_entered(
                    &self,
                    from: Timestamp,
                    to: Timestamp,
                ) -> StoreResult<Vec<StoredEvent>> {
                    let rows: Vec<sql::EventRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::event_columns!(), " FROM events \
                         WHERE contact_id IN (", cohort!(), ") ORDER BY seq"
                    ))
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn last_operator_states(
                    &self,
                    before: Timestamp,
                ) -> StoreResult<Vec<StoredEvent>> {
                    let rows: Vec<sql::EventRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::event_columns!(), " FROM events WHERE seq IN \
                         (SELECT MAX(seq) FROM events WHERE kind = 'operator_state' AND at < $1 \
                         GROUP BY operator_id) ORDER BY seq"
                    ))
                    .bind(before.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn incident_facts(
                    &self,
                    from: Timestamp,
                    to: Timestamp,
                ) -> StoreResult<Vec<IncidentFact>> {
                    let rows: Vec<(i64, i64, i64, Option<i64>)> = sqlx::query_as(concat!(
                        "SELECT i.id, i.contact_id, i.created_at, \
                         (SELECT MIN(s.at) FROM incident_steps s \
                          WHERE s.incident_id = i.id AND s.kind = 'acknowledged') \
                         FROM incidents i WHERE i.contact_id IN (", cohort!(), ") ORDER BY i.id"
                    ))
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(rows
                        .into_iter()
                        .map(|(incident, contact, at, ack)| IncidentFact {
                            incident,
                            contact: ContactId(contact),
                            triggered_at: Timestamp(at),
                            acknowledged_at: ack.map(Timestamp),
                        })
                        .collect())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn contacts_entered(
                    &self,
                    from: Timestamp,
                    to: Timestamp,
                ) -> StoreResult<Vec<ContactRecord>> {
                    let rows: Vec<sql::ContactRow> = sqlx::query_as(concat!(
                        "SELECT ", sql::contact_columns!(), " FROM contacts \
                         WHERE entered_at >= $1 AND entered_at < $2 ORDER BY id"
                    ))
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn submitted_notes_of_contacts_entered(
                    &self,
                    from: Timestamp,
                    to: Timestamp,
                ) -> StoreResult<Vec<Note>> {
                    let rows: Vec<NoteRow> = sqlx::query_as(concat!(
                        "SELECT ", note_columns!(), " FROM notes WHERE status = 'submitted' \
                         AND contact_id IN (SELECT id FROM contacts \
                         WHERE entered_at >= $1 AND entered_at < $2) ORDER BY id"
                    ))
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    let amendments: Vec<AmendmentRow> = sqlx::query_as(
                        "SELECT a.id, a.note_id, a.author_id, a.reason, a.changes, a.at \
                         FROM note_amendments a JOIN notes n ON n.id = a.note_id \
                         WHERE n.status = 'submitted' AND n.contact_id IN (SELECT id FROM contacts \
                         WHERE entered_at >= $1 AND entered_at < $2) ORDER BY a.id",
                    )
                    .bind(from.0)
                    .bind(to.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    notes::notes(rows, amendments)
                }

                // ---- access log ----

                #[tracing::instrument(skip_all, fields(db = $dialect, contact = %contact))]
                async fn record_access(
                    &self,
                    reader: OperatorId,
                    contact: ContactId,
                    what: AccessKind,
                    at: Timestamp,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO access_log (reader_id, contact_id, what, at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(reader.0)
                    .bind(contact.0)
                    .bind(what.as_str())
                    .bind(at.0)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn access_log(
                    &self,
                    filter: &AccessFilter,
                    limit: i64,
                ) -> StoreResult<Vec<AccessRecord>> {
                    let rows: Vec<AccessRow> = sqlx::query_as(
                        "SELECT id, reader_id, contact_id, what, at FROM access_log \
                         WHERE ($1 IS NULL OR contact_id = $1) AND ($2 IS NULL OR reader_id = $2) \
                         AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4) \
                         ORDER BY id DESC LIMIT $5",
                    )
                    .bind(filter.contact.map(|c| c.0))
                    .bind(filter.reader.map(|r| r.0))
                    .bind(filter.from.map(|t| t.0))
                    .bind(filter.to.map(|t| t.0))
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                // ---- audits ----

                #[tracing::instrument(skip_all, fields(db = $dialect, audits = audits.len()))]
                async fn insert_audits(
                    &self,
                    audits: &[NewAudit],
                    at: Timestamp,
                ) -> StoreResult<u64> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let mut inserted = 0;
                    for audit in audits {
                        let done = sqlx::query(
                            "INSERT INTO audits (contact_id, operator_id, cycle, reason, status, \
                             created_at) VALUES ($1, $2, $3, $4, 'pending', $5) \
                             ON CONFLICT (contact_id, operator_id) DO NOTHING",
                        )
                        .bind(audit.contact.0)
                        .bind(audit.operator.0)
                        .bind(&audit.cycle)
                        .bind(audit.reason.as_str())
                        .bind(at.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        inserted += done.rows_affected();
                    }
                    tx.commit().await.map_err(sql::error)?;
                    Ok(inserted)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, audit = id))]
                async fn audit(&self, id: i64) -> StoreResult<Audit> {
                    let row: AuditRow = sqlx::query_as(concat!(
                        "SELECT ", audit_columns!(), " FROM audits WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn audits(&self, filter: &AuditFilter, limit: i64) -> StoreResult<Vec<Audit>> {
                    let rows: Vec<AuditRow> = sqlx::query_as(concat!(
                        "SELECT ", audit_columns!(), " FROM audits \
                         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR operator_id = $2) \
                         AND ($3 IS NULL OR cycle = $3) ORDER BY id DESC LIMIT $4"
                    ))
                    .bind(filter.status.map(|s| s.as_str()))
                    .bind(filter.operator.map(|o| o.0))
                    .bind(filter.cycle.as_deref())
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, audit = id))]
                async fn score_audit(&self, id: i64, score: &AuditScore) -> StoreResult<Audit> {
                    let row: Option<AuditRow> = sqlx::query_as(concat!(
                        "UPDATE audits SET status = 'scored', scorecard = $2, scores = $3, \
                         points = $4, max_points = $5, feedback = $6, auditor_id = $7, \
                         scored_at = $8 WHERE id = $1 AND (status = 'pending' \
                         OR (status = 'scored' AND NOT EXISTS (SELECT 1 FROM \
                         assessment_signoffs s WHERE s.cycle = audits.cycle \
                         AND s.operator_id = audits.operator_id \
                         AND s.signed_at >= audits.scored_at))) RETURNING ",
                        audit_columns!()
                    ))
                    .bind(id)
                    .bind(quality::to_json("audits.scorecard", &score.scorecard)?)
                    .bind(quality::to_json("audits.scores", &score.scores)?)
                    .bind(score.points)
                    .bind(score.max_points)
                    .bind(&score.feedback)
                    .bind(score.auditor.0)
                    .bind(score.at.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    match row {
                        Some(row) => row.try_into(),
                        None => self.audit(id).await.and(Err(StoreError::Conflict)),
                    }
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, audit = id))]
                async fn acknowledge_audit(
                    &self,
                    id: i64,
                    operator: OperatorId,
                    comment: Option<&str>,
                    at: Timestamp,
                ) -> StoreResult<Audit> {
                    let row: Option<AuditRow> = sqlx::query_as(concat!(
                        "UPDATE audits SET status = 'acknowledged', acknowledged_at = $3, \
                         operator_comment = $4 \
                         WHERE id = $1 AND operator_id = $2 AND status = 'scored' RETURNING ",
                        audit_columns!()
                    ))
                    .bind(id)
                    .bind(operator.0)
                    .bind(at.0)
                    .bind(comment)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    match row {
                        Some(row) => row.try_into(),
                        None => self.audit(id).await.and(Err(StoreError::Conflict)),
                    }
                }

                // ---- training ----

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn training_modules(&self) -> StoreResult<Vec<TrainingModule>> {
                    let rows: Vec<ModuleRow> = sqlx::query_as(
                        "SELECT id, name_zh, name_en, hours, kind, position FROM training_modules \
                         ORDER BY position, id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn put_training_module(&self, module: &TrainingModule) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO training_modules (id, name_zh, name_en, hours, kind, position) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                         name_zh = excluded.name_zh, name_en = excluded.name_en, \
                         hours = excluded.hours, kind = excluded.kind, position = excluded.position",
                    )
                    .bind(&module.id)
                    .bind(&module.name_zh)
                    .bind(&module.name_en)
                    .bind(i64::from(module.hours))
                    .bind(module.kind.as_str())
                    .bind(module.position)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn create_training_session(
                    &self,
                    session: &NewTrainingSession,
                ) -> StoreResult<TrainingSession> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO training_sessions (title, held_on, trainer, systematic, \
                         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    )
                    .bind(&session.title)
                    .bind(&session.held_on)
                    .bind(&session.trainer)
                    .bind(session.systematic)
                    .bind(session.created_by.0)
                    .bind(session.created_at.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    for module in &session.modules {
                        // The module's class hours as the catalogue has them now: the session
                        // keeps them, whatever the catalogue says later. Unknown: `NotFound`.
                        let hours: i64 =
                            sqlx::query_scalar("SELECT hours FROM training_modules WHERE id = $1")
                                .bind(module)
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(sql::error)?;
                        sqlx::query(
                            "INSERT INTO training_session_modules (session_id, module_id, hours) \
                             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(module)
                        .bind(hours)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    for attendee in &session.attendees {
                        sqlx::query(
                            "INSERT INTO training_attendance (session_id, account_id, \
                             questionnaire_done) VALUES ($1, $2, $3) \
                             ON CONFLICT (session_id, account_id) DO UPDATE SET \
                             questionnaire_done = excluded.questionnaire_done",
                        )
                        .bind(id)
                        .bind(attendee.account.0)
                        .bind(attendee.questionnaire_done)
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    tx.commit().await.map_err(sql::error)?;
                    self.training_session(id).await
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, session = id))]
                async fn training_session(&self, id: i64) -> StoreResult<TrainingSession> {
                    self.sessions_where("", "", Some(id))
                        .await?
                        .pop()
                        .ok_or(StoreError::NotFound)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn training_sessions(
                    &self,
                    from: &str,
                    to: &str,
                ) -> StoreResult<Vec<TrainingSession>> {
                    self.sessions_where(from, to, None).await
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, session = session))]
                async fn set_questionnaire(
                    &self,
                    session: i64,
                    account: OperatorId,
                    done: bool,
                ) -> StoreResult<()> {
                    let done = sqlx::query(
                        "UPDATE training_attendance SET questionnaire_done = $3 \
                         WHERE session_id = $1 AND account_id = $2",
                    )
                    .bind(session)
                    .bind(account.0)
                    .bind(done)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::touched(done.rows_affected())
                }

                // ---- certifications ----

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %certification.account))]
                async fn grant_certification(
                    &self,
                    certification: &NewCertification,
                    skill: Option<(&Skill, Proficiency)>,
                ) -> StoreResult<Certification> {
                    let mut tx = self.pool.begin().await.map_err(sql::error)?;
                    let row: CertificationRow = sqlx::query_as(concat!(
                        "INSERT INTO certifications (account_id, kind, granted_at, expires_at, \
                         granted_by, assessment_score, note) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         RETURNING ", certification_columns!()
                    ))
                    .bind(certification.account.0)
                    .bind(&certification.kind)
                    .bind(certification.granted_at.0)
                    .bind(certification.expires_at.0)
                    .bind(certification.granted_by.0)
                    .bind(certification.assessment_score)
                    .bind(certification.note.as_deref())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(sql::error)?;
                    if let Some((skill, level)) = skill {
                        sqlx::query(
                            "INSERT INTO skills (skill, description) VALUES ($1, $2) \
                             ON CONFLICT (skill) DO NOTHING",
                        )
                        .bind(skill.as_str())
                        .bind(format!("granted by the certification {}", certification.kind))
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                        sqlx::query(
                            "INSERT INTO account_skills (account_id, skill, proficiency) \
                             VALUES ($1, $2, $3) ON CONFLICT (account_id, skill) DO UPDATE SET \
                             proficiency = CASE WHEN excluded.proficiency > account_skills.proficiency \
                             THEN excluded.proficiency ELSE account_skills.proficiency END",
                        )
                        .bind(certification.account.0)
                        .bind(skill.as_str())
                        .bind(i64::from(level.get()))
                        .execute(&mut *tx)
                        .await
                        .map_err(sql::error)?;
                    }
                    tx.commit().await.map_err(sql::error)?;
                    Ok(row.into())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, certification = id))]
                async fn certification(&self, id: i64) -> StoreResult<Certification> {
                    let row: CertificationRow = sqlx::query_as(concat!(
                        "SELECT ", certification_columns!(), " FROM certifications WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(row.into())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn certifications(
                    &self,
                    account: Option<OperatorId>,
                ) -> StoreResult<Vec<Certification>> {
                    let rows: Vec<CertificationRow> = sqlx::query_as(concat!(
                        "SELECT ", certification_columns!(), " FROM certifications \
                         WHERE $1 IS NULL OR account_id = $1 ORDER BY id DESC"
                    ))
                    .bind(account.map(|a| a.0))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(rows.into_iter().map(Certification::from).collect())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, certification = id))]
                async fn revoke_certification(
                    &self,
                    id: i64,
                    by: OperatorId,
                    reason: &str,
                    at: Timestamp,
                ) -> StoreResult<Certification> {
                    let row: Option<CertificationRow> = sqlx::query_as(concat!(
                        "UPDATE certifications SET revoked_at = $2, revoked_by = $3, \
                         revoke_reason = $4 WHERE id = $1 AND revoked_at IS NULL RETURNING ",
                        certification_columns!()
                    ))
                    .bind(id)
                    .bind(at.0)
                    .bind(by.0)
                    .bind(reason)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    match row {
                        Some(row) => Ok(row.into()),
                        None => self.certification(id).await.and(Err(StoreError::Conflict)),
                    }
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn lapsed_certifications(
                    &self,
                    now: Timestamp,
                ) -> StoreResult<Vec<Certification>> {
                    let rows: Vec<CertificationRow> = sqlx::query_as(concat!(
                        "SELECT ", certification_columns!(), " FROM certifications \
                         WHERE lapsed_at IS NULL AND (expires_at <= $1 OR revoked_at IS NOT NULL) \
                         ORDER BY id"
                    ))
                    .bind(now.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(rows.into_iter().map(Certification::from).collect())
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, certification = id))]
                async fn mark_certification_lapsed(
                    &self,
                    id: i64,
                    at: Timestamp,
                ) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE certifications SET lapsed_at = $2 \
                         WHERE id = $1 AND lapsed_at IS NULL",
                    )
                    .bind(id)
                    .bind(at.0)
                    .execute(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(done.rows_affected() == 1)
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn next_certification_expiry(&self) -> StoreResult<Option<Timestamp>> {
                    let next: Option<i64> = sqlx::query_scalar(
                        "SELECT MIN(expires_at) FROM certifications WHERE lapsed_at IS NULL",
                    )
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    Ok(next.map(Timestamp))
                }

                #[tracing::instrument(skip_all, fields(db = $dialect, account = %account))]
                async fn remove_account_skill(
                    &self,
                    account: OperatorId,
                    skill: &Skill,
                ) -> StoreResult<()> {
                    sqlx::query("DELETE FROM account_skills WHERE account_id = $1 AND skill = $2")
                        .bind(account.0)
                        .bind(skill.as_str())
                        .execute(&self.pool)
                        .await
                        .map_err(sql::error)?;
                    Ok(())
                }

                // ---- assessments ----

                #[tracing::instrument(skip_all, fields(db = $dialect, operator = %sign_off.operator))]
                async fn sign_off(&self, sign_off: &SignOff) -> StoreResult<SignOff> {
                    let row: SignOffRow = sqlx::query_as(
                        "INSERT INTO assessment_signoffs (cycle, operator_id, computed, outcome, \
                         comment, figures, signed_by, signed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING cycle, operator_id, \
                         computed, outcome, comment, figures, signed_by, signed_at",
                    )
                    .bind(&sign_off.cycle)
                    .bind(sign_off.operator.0)
                    .bind(&sign_off.computed)
                    .bind(&sign_off.outcome)
                    .bind(&sign_off.comment)
                    .bind(quality::to_json("assessment_signoffs.figures", &sign_off.figures)?)
                    .bind(sign_off.signed_by.0)
                    .bind(sign_off.signed_at.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    row.try_into()
                }

                #[tracing::instrument(skip_all, fields(db = $dialect))]
                async fn sign_offs(&self, cycle: &str) -> StoreResult<Vec<SignOff>> {
                    let rows: Vec<SignOffRow> = sqlx::query_as(
                        "SELECT cycle, operator_id, computed, outcome, comment, figures, \
                         signed_by, signed_at FROM assessment_signoffs WHERE cycle = $1 \
                         ORDER BY operator_id",
                    )
                    .bind(cycle)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(sql::error)?;
                    sql::all(rows)
                }
            }
        };
    };
}
pub(crate) use impl_quality_store;
