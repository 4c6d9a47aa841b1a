//! Training and certification: the "8+x" module catalogue with class hours, sessions with their
//! attendees and questionnaires, hours per person, and certifications that grant a routing
//! skill while they are valid.
//!
//! A certification's skill is granted with the certification (one transaction) and pushed to the
//! routing engine at once. When it lapses — it expires or is revoked — the skill is removed
//! (unless another valid certification grants it) and the engine is told at once, so routing
//! stops offering those contacts to that person. Lapses are applied by revocation itself, and
//! by [`apply_lapses`], which the quality task runs at each certification's expiry time and
//! every `quality.check_interval_ms`.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::config::CertificationRule;
use crate::domain::{OperatorId, Timestamp};
use crate::error::ApiError;
use crate::store::quality::{Certification, ModuleKind, TrainingModule, TrainingSession};

/// One person's training over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TrainingSummary {
    pub account: OperatorId,
    pub sessions: u64,
    /// Systematic trainings attended (the policy asks for at least 4 a year).
    pub systematic_sessions: u64,
    /// Class hours attended.
    pub hours: u32,
    /// Class hours of sessions whose questionnaire is done: what a training-hours certificate
    /// counts.
    pub certified_hours: u32,
    /// Modules attended with the questionnaire done.
    pub modules_completed: Vec<String>,
    /// Base modules of the catalogue not completed yet.
    pub base_modules_missing: Vec<String>,
}

/// Sums `account`'s attendance over `sessions`.
pub fn summarize(
    account: OperatorId,
    sessions: &[TrainingSession],
    catalogue: &[TrainingModule],
) -> TrainingSummary {
    let mut summary = TrainingSummary {
        account,
        sessions: 0,
        systematic_sessions: 0,
        hours: 0,
        certified_hours: 0,
        modules_completed: Vec::new(),
        base_modules_missing: Vec::new(),
    };
    let mut completed = BTreeSet::new();
    for session in sessions {
        let Some(attendee) = session.attendees.iter().find(|a| a.account == account) else {
            continue;
        };
        summary.sessions += 1;
        summary.systematic_sessions += u64::from(session.systematic);
        summary.hours += session.hours;
        if attendee.questionnaire_done {
            summary.certified_hours += session.hours;
            completed.extend(session.modules.iter().cloned());
        }
    }
    summary.base_modules_missing = catalogue
        .iter()
        .filter(|m| m.kind == ModuleKind::Base && !completed.contains(&m.id))
        .map(|m| m.id.clone())
        .collect();
    summary.modules_completed = completed.into_iter().collect();
    summary
}

/// The modules a rule requires that `summary` has not completed.
pub fn missing_modules(rule: &CertificationRule, summary: &TrainingSummary) -> Vec<String> {
    rule.requires_modules
        .iter()
        .filter(|m| !summary.modules_completed.contains(m))
        .cloned()
        .collect()
}

/// Applies every lapse not applied yet: removes the skill unless another certification in force
/// grants it, pushes the account's profile to the engine, and only then marks the lapse applied
/// (compare-and-set, so it is counted once across nodes). A failure on the way leaves the lapse
/// unapplied, to be applied again on the next round — removing a skill twice is harmless, an
/// operator keeping a skill whose certification lapsed is not. Returns how many were applied.
pub async fn apply_lapses(state: &AppState, now: Timestamp) -> Result<u64, ApiError> {
    let rules = &state.settings.quality.certifications;
    let mut applied = 0;
    for lapsed in state.store.lapsed_certifications(now).await? {
        let removed = match rules.get(&lapsed.kind) {
            Some(rule) => {
                let others = state.store.certifications(Some(lapsed.account)).await?;
                let still_granted = others.iter().any(|c: &Certification| {
                    c.id != lapsed.id
                        && c.in_force(now)
                        && rules.get(&c.kind).is_some_and(|r| r.skill == rule.skill)
                });
                if !still_granted {
                    state
                        .store
                        .remove_account_skill(lapsed.account, &rule.skill)
                        .await?;
                    crate::admin::sync_account(state, lapsed.account).await?;
                }
                (!still_granted).then_some(&rule.skill)
            }
            None => None,
        };
        if !state
            .store
            .mark_certification_lapsed(lapsed.id, now)
            .await?
        {
            continue;
        }
        applied += 1;
        state
            .metrics
            .certification_lapses
            .with_label_values(&[if lapsed.revoked_at.is_some() {
                "revoked"
            } else {
                "expired"
            }])
            .inc();
        if let Some(skill) = removed {
            tracing::info!(
                certification = lapsed.id,
                account = %lapsed.account,
                skill = %skill,
                "certification lapsed; skill removed"
            );
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Proficiency, Skill};
    use crate::store::quality::Attendee;

    fn module(id: &str, hours: u32, kind: ModuleKind) -> TrainingModule {
        TrainingModule {
            id: id.into(),
            name_zh: id.into(),
            name_en: id.into(),
            hours,
            kind,
            position: 0,
        }
    }

    fn session(
        id: i64,
        modules: &[(&str, u32)],
        systematic: bool,
        attendees: &[(i64, bool)],
    ) -> TrainingSession {
        TrainingSession {
            id,
            title: format!("s{id}"),
            held_on: "2026-01-10".into(),
            trainer: "t".into(),
            systematic,
            modules: modules.iter().map(|(m, _)| (*m).into()).collect(),
            hours: modules.iter().map(|(_, h)| h).sum(),
            attendees: attendees
                .iter()
                .map(|(a, done)| Attendee {
                    account: OperatorId(*a),
                    questionnaire_done: *done,
                })
                .collect(),
            created_by: OperatorId(1),
            created_at: Timestamp(0),
        }
    }

    #[test]
    fn hours_and_modules_per_person() {
        let catalogue = vec![
            module("basic_knowledge", 4, ModuleKind::Base),
            module("communication_intervention", 8, ModuleKind::Base),
            module("risk_assessment", 4, ModuleKind::Extra),
        ];
        let sessions = vec![
            // Person 7: 4 + 8 = 12 h, questionnaire done; person 8 attended without it.
            session(
                1,
                &[("basic_knowledge", 4), ("communication_intervention", 8)],
                true,
                &[(7, true), (8, false)],
            ),
            // Person 7: risk assessment (4 h), questionnaire not done; not systematic.
            session(2, &[("risk_assessment", 4)], false, &[(7, false)]),
        ];
        let s7 = summarize(OperatorId(7), &sessions, &catalogue);
        assert_eq!(
            (
                s7.sessions,
                s7.systematic_sessions,
                s7.hours,
                s7.certified_hours
            ),
            (2, 1, 16, 12)
        );
        assert_eq!(
            s7.modules_completed,
            ["basic_knowledge", "communication_intervention"]
        );
        assert!(s7.base_modules_missing.is_empty());
        let s8 = summarize(OperatorId(8), &sessions, &catalogue);
        assert_eq!((s8.hours, s8.certified_hours), (12, 0));
        assert_eq!(
            s8.base_modules_missing,
            ["basic_knowledge", "communication_intervention"]
        );
        let rule = CertificationRule {
            skill: Skill::parse("crisis").unwrap(),
            proficiency: Proficiency::new(3).unwrap(),
            requires_modules: vec!["risk_assessment".into()],
            valid_days: 365,
        };
        // The risk-assessment questionnaire is not done: not yet.
        assert_eq!(missing_modules(&rule, &s7), ["risk_assessment"]);
    }

    #[test]
    fn a_certification_is_held_until_it_lapses_and_in_force_until_revoked() {
        let day = 86_400_000;
        let cert = |revoked: Option<i64>| Certification {
            id: 1,
            account: OperatorId(7),
            kind: "crisis_certified".into(),
            granted_at: Timestamp(10 * day),
            expires_at: Timestamp(375 * day),
            granted_by: OperatorId(1),
            assessment_score: None,
            note: None,
            revoked_at: revoked.map(Timestamp),
            revoked_by: revoked.map(|_| OperatorId(1)),
            revoke_reason: revoked.map(|_| "review failed".into()),
            lapsed_at: None,
        };
        let held = |c: &Certification, d: i64| c.held_at(Timestamp(d * day));
        let plain = cert(None);
        // Not before the grant, from the grant, not from the expiry on.
        assert!(!held(&plain, 9) && held(&plain, 10) && held(&plain, 374));
        assert!(!held(&plain, 375));
        // Revoked on day 200: held before, not from then on.
        let revoked = cert(Some(200 * day));
        assert!(held(&revoked, 199) && !held(&revoked, 200) && !held(&revoked, 300));
        // Now: a revocation ends it, even one recorded by a clock a little ahead of ours.
        assert!(plain.in_force(Timestamp(100 * day)));
        assert!(!revoked.in_force(Timestamp(200 * day - 1_000)));
        assert!(!plain.in_force(Timestamp(375 * day)));
        // A grant recorded by a clock a little ahead of ours is in force at once.
        assert!(plain.in_force(Timestamp(10 * day - 1_000)));
    }
}
