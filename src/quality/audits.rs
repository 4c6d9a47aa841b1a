//! Quality audits: which contacts are audited (every crisis contact, plus a reproducible share of
//! each operator's contacts per cycle) and how an audit is scored (a scorecard defined as data:
//! openCHS's sections, each item 0/1/2, section and total percentages, written feedback).
//!
//! Pure: sampling reads a KPI [`Digest`](super::kpi::Digest), scoring reads a scorecard.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::kpi::Digest;
use crate::domain::{ContactId, OperatorId, RiskLevel};
use crate::notes::form::{FieldError, Label};
use crate::store::quality::{AuditReason, IncidentFact, NewAudit, Scores};

/// The scorecard, as data. Stored with every scored audit as it was then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scorecard {
    pub version: u32,
    pub sections: Vec<ScoreSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreSection {
    pub id: String,
    pub label: Label,
    pub items: Vec<ScoreItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreItem {
    pub id: String,
    pub label: Label,
}

/// Points of one section or of the whole audit. Items scored "not applicable" count in neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SectionScore {
    pub id: String,
    pub points: i64,
    pub max_points: i64,
    pub percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScoreSummary {
    pub sections: Vec<SectionScore>,
    pub points: i64,
    pub max_points: i64,
    pub percent: Option<f64>,
}

/// The most an item scores.
pub const ITEM_MAX: u8 = 2;

fn label(zh: &str, en: &str) -> Label {
    Label {
        zh: zh.into(),
        en: en.into(),
    }
}

/// openCHS's scorecard: opening, listening, communication, proactive approach, resolution,
/// hold management, closing.
pub fn default_scorecard() -> Scorecard {
    let section = |id: &str, zh: &str, en: &str, items: &[(&str, &str, &str)]| ScoreSection {
        id: id.into(),
        label: label(zh, en),
        items: items
            .iter()
            .map(|(id, zh, en)| ScoreItem {
                id: (*id).into(),
                label: label(zh, en),
            })
            .collect(),
    };
    Scorecard {
        version: 1,
        sections: vec![
            section(
                "opening",
                "开场",
                "Opening",
                &[
                    (
                        "greeting",
                        "以热线名称问候",
                        "Greeted with the service's name",
                    ),
                    (
                        "confidentiality",
                        "说明保密原则及例外",
                        "Explained confidentiality and its exceptions when relevant",
                    ),
                    (
                        "invitation",
                        "邀请来电者讲述",
                        "Invited the caller to talk (open question)",
                    ),
                ],
            ),
            section(
                "listening",
                "倾听",
                "Listening",
                &[
                    (
                        "attentive",
                        "专注倾听，不打断",
                        "Listened attentively without interrupting",
                    ),
                    (
                        "reflection",
                        "反映内容与情感",
                        "Reflected content and feelings",
                    ),
                    (
                        "empathy",
                        "共情，不评判",
                        "Showed empathy without judgement",
                    ),
                ],
            ),
            section(
                "communication",
                "沟通",
                "Communication",
                &[
                    ("clarity", "语言清晰易懂", "Clear, simple language"),
                    ("tone", "语气平和温暖", "Calm, warm tone"),
                    ("pace", "配合来电者节奏", "Matched the caller's pace"),
                ],
            ),
            section(
                "proactive",
                "主动性",
                "Proactive approach",
                &[
                    (
                        "exploration",
                        "以开放式问题探索问题",
                        "Explored the problem with open questions",
                    ),
                    (
                        "risk_inquiry",
                        "必要时直接询问自杀风险",
                        "Asked directly about suicide risk when indicated",
                    ),
                    (
                        "options",
                        "探讨可选方案与资源",
                        "Explored options and resources",
                    ),
                ],
            ),
            section(
                "resolution",
                "解决",
                "Resolution",
                &[
                    (
                        "next_step",
                        "与来电者商定下一步",
                        "Agreed a next step with the caller",
                    ),
                    ("referral", "恰当转介", "Referred appropriately"),
                    (
                        "safety_plan",
                        "有风险时制定安全计划",
                        "Made a safety plan when there was risk",
                    ),
                ],
            ),
            section(
                "hold",
                "等待管理",
                "Hold management",
                &[
                    (
                        "hold_explained",
                        "说明停顿或等待并回到来电者",
                        "Explained silences or holds and came back",
                    ),
                    ("hold_short", "等待时间短", "Kept holds short"),
                ],
            ),
            section(
                "closing",
                "结束",
                "Closing",
                &[
                    ("summary", "总结", "Summarised the conversation"),
                    (
                        "invite_back",
                        "邀请再次来电",
                        "Invited the caller to reach out again",
                    ),
                    (
                        "warm_close",
                        "温和结束，不突然挂断",
                        "Closed warmly, not abruptly",
                    ),
                ],
            ),
        ],
    }
}

impl Scorecard {
    /// Checks the scorecard itself: at least one item, unique ids.
    pub fn check(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for s in &self.sections {
            if !seen.insert(format!("section:{}", s.id)) {
                return Err(format!("section {} appears twice", s.id));
            }
            for i in &s.items {
                if !seen.insert(i.id.clone()) {
                    return Err(format!("item {} appears twice", i.id));
                }
            }
        }
        if self.sections.iter().all(|s| s.items.is_empty()) {
            return Err("the scorecard has no item".into());
        }
        Ok(())
    }

    /// Scores an audit: every item 0, 1, 2 or null (not applicable), nothing else.
    pub fn score(&self, scores: &Scores) -> Result<ScoreSummary, Vec<FieldError>> {
        let mut errors = Vec::new();
        let known: BTreeSet<&str> = self
            .sections
            .iter()
            .flat_map(|s| s.items.iter().map(|i| i.id.as_str()))
            .collect();
        for key in scores.keys() {
            if !known.contains(key.as_str()) {
                errors.push(FieldError {
                    field: key.clone(),
                    message: "is not an item of this scorecard".into(),
                });
            }
        }
        let mut sections = Vec::new();
        for section in &self.sections {
            let (mut points, mut max) = (0i64, 0i64);
            for item in &section.items {
                match scores.get(&item.id) {
                    None => errors.push(FieldError {
                        field: item.id.clone(),
                        message: "is required (0, 1, 2, or null for not applicable)".into(),
                    }),
                    Some(None) => {}
                    Some(Some(v)) if *v <= ITEM_MAX => {
                        points += i64::from(*v);
                        max += i64::from(ITEM_MAX);
                    }
                    Some(Some(_)) => errors.push(FieldError {
                        field: item.id.clone(),
                        message: "must be 0, 1 or 2".into(),
                    }),
                }
            }
            sections.push(SectionScore {
                id: section.id.clone(),
                points,
                max_points: max,
                percent: percent(points, max),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let points = sections.iter().map(|s| s.points).sum();
        let max_points = sections.iter().map(|s| s.max_points).sum();
        Ok(ScoreSummary {
            sections,
            points,
            max_points,
            percent: percent(points, max_points),
        })
    }
}

pub fn percent(points: i64, max: i64) -> Option<f64> {
    (max > 0).then(|| points as f64 * 100.0 / max as f64)
}

/// A contact's place in a cycle's draw, in `[0, 1)`: the first 8 bytes of
/// SHA-256(`cycle:contact`). The same on every machine and every run.
pub fn draw(cycle: &str, contact: ContactId) -> f64 {
    let hash = Sha256::digest(format!("{cycle}:{}", contact.0).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0
}

/// The audits a cycle calls for, among the completed contacts of `digest` (the cycle's cohort):
/// every crisis contact (an incident, or risk that reached high or imminent) for each operator
/// who took it; plus, per operator, the contacts whose [`draw`] is below `share`; plus, while an
/// operator has fewer than `min_per_operator`, their contacts with the lowest draws.
///
/// `existing` are the cycle's audits already stored, as (contact, operator): they count towards
/// each operator's minimum, so drawing again as the cycle grows never adds a second "minimum"
/// audit to an operator who has one. The share needs no such care: a contact is in it by its
/// own draw, whenever it is drawn.
pub fn sample(
    digest: &Digest,
    incidents: &[IncidentFact],
    cycle: &str,
    share: f64,
    min_per_operator: u32,
    existing: &BTreeSet<(ContactId, OperatorId)>,
) -> Vec<NewAudit> {
    let flagged: BTreeSet<ContactId> = incidents.iter().map(|i| i.contact).collect();
    let mut chosen: BTreeMap<(ContactId, OperatorId), AuditReason> = BTreeMap::new();
    let mut candidates: BTreeMap<OperatorId, Vec<(f64, ContactId)>> = BTreeMap::new();
    for c in digest.contacts.values().filter(|c| c.completed()) {
        let crisis = flagged.contains(&c.id) || c.peak_risk >= RiskLevel::High;
        for &op in &c.operators {
            if crisis {
                chosen.insert((c.id, op), AuditReason::Crisis);
            } else {
                candidates
                    .entry(op)
                    .or_default()
                    .push((draw(cycle, c.id), c.id));
            }
        }
    }
    for (op, mut contacts) in candidates {
        contacts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Every audit of this operator in the cycle: stored, and chosen now for a crisis.
        let mut audited: BTreeSet<ContactId> = existing
            .iter()
            .chain(chosen.keys())
            .filter(|(_, o)| *o == op)
            .map(|(c, _)| *c)
            .collect();
        for (place, contact) in contacts {
            let stored = audited.contains(&contact);
            if place < share || (!stored && audited.len() < min_per_operator as usize) {
                chosen.insert((contact, op), AuditReason::Sample);
                audited.insert(contact);
            }
        }
    }
    chosen
        .into_iter()
        .map(|((contact, operator), reason)| NewAudit {
            contact,
            operator,
            cycle: cycle.to_owned(),
            reason,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Timestamp};
    use crate::quality::kpi::digest;
    use crate::quality::kpi::tests::{T0, complete, connect, enter, log, params};

    #[test]
    fn the_default_scorecard_is_valid_and_scores_by_section() {
        let card = default_scorecard();
        card.check().unwrap();
        assert_eq!(card.sections.len(), 7);
        let mut scores: Scores = card
            .sections
            .iter()
            .flat_map(|s| s.items.iter().map(|i| (i.id.clone(), Some(2))))
            .collect();
        // Opening: 2 + 1 + 0 = 3 of 6 = 50 %. Hold management not applicable (chat).
        scores.insert("confidentiality".into(), Some(1));
        scores.insert("invitation".into(), Some(0));
        scores.insert("hold_explained".into(), None);
        scores.insert("hold_short".into(), None);
        let s = card.score(&scores).unwrap();
        let opening = &s.sections[0];
        assert_eq!(
            (opening.points, opening.max_points, opening.percent),
            (3, 6, Some(50.0))
        );
        let hold = s.sections.iter().find(|x| x.id == "hold").unwrap();
        assert_eq!((hold.max_points, hold.percent), (0, None));
        // 20 items, 2 not applicable: 18 scored, max 36; points 36 − 1 − 2 = 33.
        assert_eq!((s.points, s.max_points), (33, 36));
        assert_eq!(s.percent, Some(33.0 * 100.0 / 36.0));

        scores.insert("greeting".into(), Some(3));
        scores.remove("summary");
        scores.insert("charm".into(), Some(2));
        let errors = card.score(&scores).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["charm", "greeting", "summary"]);
    }

    #[test]
    fn draws_are_reproducible_and_spread() {
        assert_eq!(draw("2026-Q1", ContactId(7)), draw("2026-Q1", ContactId(7)));
        assert_ne!(draw("2026-Q1", ContactId(7)), draw("2026-Q2", ContactId(7)));
        let below = (0..10_000)
            .filter(|i| draw("2026-Q1", ContactId(*i)) < 0.1)
            .count();
        assert!((800..1200).contains(&below), "{below}");
    }

    #[test]
    fn sampling_takes_crisis_contacts_a_share_and_a_minimum() {
        use RiskLevel::{High, None as No};
        let mut entries = Vec::new();
        // Operator 1 handles 40 ordinary contacts (ids 1..=40); operator 2 handles one
        // ordinary contact (41) and one high-risk contact (42); contact 43 (op 2) has an
        // incident; contact 44 is never completed.
        for c in 1..=40 {
            entries.push((c, enter(c, "general", Channel::Chat, No)));
            entries.push((c, connect(c, 1, "general", 1)));
            entries.push((c, complete(c, 1, 60)));
        }
        for (c, risk) in [(41, No), (42, High), (43, No), (44, No)] {
            entries.push((c, enter(c, "general", Channel::Chat, risk)));
            entries.push((c, connect(c, 2, "general", 1)));
            if c != 44 {
                entries.push((c, complete(c, 2, 60)));
            }
        }
        let events = log(entries);
        let d = digest(&events, &params(0, 100));
        let incidents = vec![IncidentFact {
            incident: 1,
            contact: ContactId(43),
            triggered_at: Timestamp(T0),
            acknowledged_at: None,
        }];
        let share = 0.25;
        let none = BTreeSet::new();
        let audits = sample(&d, &incidents, "2026-Q1", share, 1, &none);
        let of = |op: i64| -> Vec<&NewAudit> {
            audits
                .iter()
                .filter(|a| a.operator == OperatorId(op))
                .collect()
        };
        // Operator 1: exactly the contacts whose draw is below the share (at least one).
        let expected: Vec<ContactId> = (1..=40)
            .map(ContactId)
            .filter(|c| draw("2026-Q1", *c) < share)
            .collect();
        assert!(!expected.is_empty());
        let got: Vec<ContactId> = of(1).iter().map(|a| a.contact).collect();
        assert_eq!(got, expected);
        assert!(of(1).iter().all(|a| a.reason == AuditReason::Sample));
        // Operator 2: both crisis contacts; the minimum (1) is met by them, so 41 is drawn
        // only if its draw is below the share.
        let two: Vec<(i64, AuditReason)> = of(2).iter().map(|a| (a.contact.0, a.reason)).collect();
        assert!(
            two.contains(&(42, AuditReason::Crisis)) && two.contains(&(43, AuditReason::Crisis))
        );
        assert_eq!(
            two.iter().any(|(c, _)| *c == 41),
            draw("2026-Q1", ContactId(41)) < share
        );
        assert!(two.iter().all(|(c, _)| *c != 44));
        // The same inputs draw the same audits.
        assert_eq!(audits, sample(&d, &incidents, "2026-Q1", share, 1, &none));
        // With no share, the minimum still gives operator 1 their lowest draw.
        let minimum = sample(&d, &incidents, "2026-Q1", 0.0, 1, &none);
        let lowest = (1..=40)
            .map(ContactId)
            .min_by(|a, b| draw("2026-Q1", *a).total_cmp(&draw("2026-Q1", *b)))
            .unwrap();
        let one: Vec<ContactId> = minimum
            .iter()
            .filter(|a| a.operator == OperatorId(1))
            .map(|a| a.contact)
            .collect();
        assert_eq!(one, vec![lowest]);
        // Operator 1's highest draw was audited earlier in the cycle (when it was their only
        // contact): it meets the minimum, so drawing again adds nothing for them.
        let highest = (1..=40)
            .map(ContactId)
            .max_by(|a, b| draw("2026-Q1", *a).total_cmp(&draw("2026-Q1", *b)))
            .unwrap();
        let stored = BTreeSet::from([(highest, OperatorId(1))]);
        let again = sample(&d, &incidents, "2026-Q1", 0.0, 1, &stored);
        assert!(
            again.iter().all(|a| a.operator != OperatorId(1)),
            "{again:?}"
        );
        // A minimum of 2: one more, the lowest draw.
        let two_each = sample(&d, &incidents, "2026-Q1", 0.0, 2, &stored);
        let one: Vec<ContactId> = two_each
            .iter()
            .filter(|a| a.operator == OperatorId(1))
            .map(|a| a.contact)
            .collect();
        assert_eq!(one, vec![lowest]);
        // The share is the same whatever is stored; a stored audit in it is not counted twice.
        let lowest_stored = BTreeSet::from([(lowest, OperatorId(1))]);
        assert_eq!(
            sample(&d, &incidents, "2026-Q1", share, 1, &lowest_stored),
            audits
        );
        // Operator 2's crisis audits, stored or not, meet their minimum.
        let crisis_stored = BTreeSet::from([(ContactId(42), OperatorId(2))]);
        assert_eq!(
            sample(&d, &incidents, "2026-Q1", 0.0, 1, &crisis_stored)
                .iter()
                .filter(|a| a.operator == OperatorId(2))
                .count(),
            2
        );
    }
}
