//! Escalation policies: ordered levels of targets (people, or whoever a schedule has on call), a
//! delay before the next level, notify-all or round-robin, and N repeats of the whole policy.
//!
//! Pure: which level comes next and whom a level pages are functions of the policy, the
//! directory (accounts and schedules) and the time, so they are unit-tested without a database.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{OperatorId, Role, Timestamp};

use super::model::{PolicyId, ScheduleId};
use super::schedule::Schedule;

/// Limits that keep a policy readable and its pages bounded.
pub const MAX_LEVELS: usize = 10;
pub const MAX_TARGETS: usize = 20;
pub const MAX_REPEAT: u32 = 10;
pub const MIN_DELAY_MS: u64 = 100;
pub const MAX_DELAY_MS: u64 = 24 * 3_600_000;
/// Delay between the levels of the built-in fallback policy.
pub const FALLBACK_DELAY_MS: u64 = 5 * 60_000;

/// Whom a level pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// One account.
    Person { id: OperatorId },
    /// Whoever the schedule has on call when the level is paged.
    Schedule { id: ScheduleId },
}

/// Page every target of the level at once, or one of them in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelMode {
    #[default]
    NotifyAll,
    /// One target per page, turning with the contact and the pass (see [`resolve_level`]).
    RoundRobin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub targets: Vec<Target>,
    /// How long nobody may acknowledge before the next level is paged.
    pub delay_ms: u64,
    #[serde(default)]
    pub mode: LevelMode,
}

/// A policy as administrators write it (`PUT`/`POST` body) and as incidents keep a copy of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDefinition {
    pub name: String,
    /// The policy crisis incidents follow. Saving one with this set clears it on the others.
    #[serde(default)]
    pub default_for_crisis: bool,
    pub levels: Vec<Level>,
    /// How many more passes over all levels follow the first when nobody acknowledges.
    #[serde(default)]
    pub repeat: u32,
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EscalationPolicy {
    pub id: PolicyId,
    #[serde(flatten)]
    pub definition: PolicyDefinition,
    pub updated_at: Timestamp,
}

/// What comes after a level has waited its delay without an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Page this level (0-based) of this pass (0-based).
    Page { level: u32, cycle: u32 },
    /// Every pass is done.
    Exhausted,
}

/// What the policy check needs to know exists.
#[derive(Debug, Default)]
pub struct Known {
    pub accounts: HashSet<OperatorId>,
    pub schedules: HashSet<ScheduleId>,
}

impl PolicyDefinition {
    /// Every problem, field by field (`levels[1].targets[0].id: …`); empty when the policy is fine.
    pub fn problems(&self, known: &Known) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.chars().count() > 80 {
            problems.push("name: must be 1-80 characters".to_owned());
        }
        if self.levels.is_empty() || self.levels.len() > MAX_LEVELS {
            problems.push(format!("levels: must have 1-{MAX_LEVELS} levels"));
        }
        if self.repeat > MAX_REPEAT {
            problems.push(format!("repeat: must be at most {MAX_REPEAT}"));
        }
        for (i, level) in self.levels.iter().enumerate() {
            if level.targets.is_empty() || level.targets.len() > MAX_TARGETS {
                problems.push(format!(
                    "levels[{i}].targets: must have 1-{MAX_TARGETS} targets"
                ));
            }
            if !(MIN_DELAY_MS..=MAX_DELAY_MS).contains(&level.delay_ms) {
                problems.push(format!(
                    "levels[{i}].delay_ms: must be between {MIN_DELAY_MS} and {MAX_DELAY_MS}"
                ));
            }
            for (j, target) in level.targets.iter().enumerate() {
                match target {
                    Target::Person { id } if !known.accounts.contains(id) => problems.push(
                        format!("levels[{i}].targets[{j}].id: there is no account {id}"),
                    ),
                    Target::Schedule { id } if !known.schedules.contains(id) => problems.push(
                        format!("levels[{i}].targets[{j}].id: there is no schedule {id}"),
                    ),
                    _ => {}
                }
            }
        }
        problems
    }

    /// The people and schedules this policy names (what the store keeps foreign keys to).
    pub fn references(&self) -> (Vec<OperatorId>, Vec<ScheduleId>) {
        let mut people = Vec::new();
        let mut schedules = Vec::new();
        for target in self.levels.iter().flat_map(|l| &l.targets) {
            match *target {
                Target::Person { id } if !people.contains(&id) => people.push(id),
                Target::Schedule { id } if !schedules.contains(&id) => schedules.push(id),
                _ => {}
            }
        }
        (people, schedules)
    }

    /// The level after `level` of pass `cycle`.
    pub fn next_after(&self, level: u32, cycle: u32) -> Next {
        if (level as usize) + 1 < self.levels.len() {
            Next::Page {
                level: level + 1,
                cycle,
            }
        } else if cycle < self.repeat {
            Next::Page {
                level: 0,
                cycle: cycle + 1,
            }
        } else {
            Next::Exhausted
        }
    }

    /// How long `level` waits for an acknowledgement (0 for a level that does not exist).
    pub fn delay_ms(&self, level: u32) -> u64 {
        self.levels.get(level as usize).map_or(0, |l| l.delay_ms)
    }

    /// What pages when no default policy exists: every crisis lead, then every supervisor (then
    /// every administrator if there is neither), each waited on for [`FALLBACK_DELAY_MS`], twice
    /// over. A crisis must reach a human even on a server nobody configured.
    pub fn fallback(directory: &Directory) -> PolicyDefinition {
        let by_role = |role: Role| -> Vec<Target> {
            let mut ids: Vec<OperatorId> = directory
                .accounts
                .iter()
                .filter(|(_, a)| a.role == role && !a.disabled)
                .map(|(id, _)| *id)
                .collect();
            ids.sort();
            ids.into_iter().map(|id| Target::Person { id }).collect()
        };
        let mut levels: Vec<Level> = [by_role(Role::CrisisLead), by_role(Role::Supervisor)]
            .into_iter()
            .filter(|targets| !targets.is_empty())
            .map(|targets| Level {
                targets,
                delay_ms: FALLBACK_DELAY_MS,
                mode: LevelMode::NotifyAll,
            })
            .collect();
        if levels.is_empty() {
            levels.push(Level {
                targets: by_role(Role::Admin),
                delay_ms: FALLBACK_DELAY_MS,
                mode: LevelMode::NotifyAll,
            });
        }
        PolicyDefinition {
            name: "Built-in fallback: every crisis lead, then every supervisor".into(),
            default_for_crisis: false,
            levels,
            repeat: 1,
        }
    }
}

/// An account as paging needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
}

/// Who exists, to resolve targets at page time.
#[derive(Debug, Default)]
pub struct Directory {
    pub accounts: HashMap<OperatorId, Person>,
    pub schedules: HashMap<ScheduleId, Schedule>,
}

/// Whom one level pages, and why some of its targets page nobody.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LevelPage {
    pub targets: Vec<OperatorId>,
    pub problems: Vec<String>,
}

/// Resolves `level` (0-based) of `policy` at `at`: people as named, schedules to whoever is on
/// call then; disabled or deleted accounts are skipped with a problem noted. Round-robin picks
/// one of the resolved people, turning with `turn` (the contact's number) and the pass: crises on
/// different contacts go to different people, a repeat pass pages the next person, and a contact
/// flagged again reaches the same person first (continuity). `turn` is known before the incident
/// row exists, so the first page commits in the same transaction as the incident.
pub fn resolve_level(
    policy: &PolicyDefinition,
    level: u32,
    cycle: u32,
    turn: i64,
    at: Timestamp,
    directory: &Directory,
) -> LevelPage {
    let mut page = LevelPage::default();
    let Some(spec) = policy.levels.get(level as usize) else {
        page.problems
            .push(format!("level {} does not exist", level + 1));
        return page;
    };
    let admit = |page: &mut LevelPage, id: OperatorId| match directory.accounts.get(&id) {
        None => page.problems.push(format!("account {id} no longer exists")),
        Some(p) if p.disabled => page.problems.push(format!("account {id} is disabled")),
        Some(_) if page.targets.contains(&id) => {}
        Some(_) => page.targets.push(id),
    };
    for target in &spec.targets {
        match *target {
            Target::Person { id } => admit(&mut page, id),
            Target::Schedule { id } => match directory.schedules.get(&id) {
                None => page
                    .problems
                    .push(format!("schedule {id} no longer exists")),
                Some(schedule) => match schedule.on_call_at(at) {
                    Some(on_call) => admit(&mut page, on_call.person),
                    None => page
                        .problems
                        .push(format!("schedule {id} has nobody on call")),
                },
            },
        }
    }
    if spec.mode == LevelMode::RoundRobin && page.targets.len() > 1 {
        let turn = (turn.unsigned_abs() + u64::from(cycle)) % page.targets.len() as u64;
        page.targets = vec![page.targets[turn as usize]];
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::schedule::{Rotation, RotationLength, ScheduleDefinition};

    fn person(id: i64) -> Target {
        Target::Person { id: OperatorId(id) }
    }

    fn policy(levels: Vec<Vec<Target>>, repeat: u32) -> PolicyDefinition {
        PolicyDefinition {
            name: "crisis".into(),
            default_for_crisis: true,
            levels: levels
                .into_iter()
                .map(|targets| Level {
                    targets,
                    delay_ms: 300,
                    mode: LevelMode::NotifyAll,
                })
                .collect(),
            repeat,
        }
    }

    fn directory(ids: &[i64]) -> Directory {
        Directory {
            accounts: ids
                .iter()
                .map(|&id| {
                    (
                        OperatorId(id),
                        Person {
                            name: format!("p{id}"),
                            role: Role::CrisisLead,
                            disabled: false,
                        },
                    )
                })
                .collect(),
            schedules: HashMap::new(),
        }
    }

    #[test]
    fn levels_then_repeats_then_exhausted() {
        let p = policy(vec![vec![person(1)], vec![person(2)]], 1);
        assert_eq!(p.next_after(0, 0), Next::Page { level: 1, cycle: 0 });
        assert_eq!(p.next_after(1, 0), Next::Page { level: 0, cycle: 1 });
        assert_eq!(p.next_after(0, 1), Next::Page { level: 1, cycle: 1 });
        assert_eq!(p.next_after(1, 1), Next::Exhausted);
        let once = policy(vec![vec![person(1)]], 0);
        assert_eq!(once.next_after(0, 0), Next::Exhausted);
    }

    #[test]
    fn unknown_people_and_schedules_are_named_field_by_field() {
        let mut p = policy(
            vec![
                vec![person(1), person(99)],
                vec![Target::Schedule { id: ScheduleId(7) }],
            ],
            0,
        );
        p.levels[1].delay_ms = 5;
        let known = Known {
            accounts: [OperatorId(1)].into(),
            schedules: HashSet::new(),
        };
        assert_eq!(
            p.problems(&known),
            vec![
                "levels[0].targets[1].id: there is no account 99",
                "levels[1].delay_ms: must be between 100 and 86400000",
                "levels[1].targets[0].id: there is no schedule 7",
            ]
        );
        let empty = policy(vec![], 11);
        assert_eq!(empty.problems(&known).len(), 2);
    }

    #[test]
    fn notify_all_skips_disabled_and_duplicates() {
        let mut dir = directory(&[1, 2, 3]);
        dir.accounts.get_mut(&OperatorId(2)).unwrap().disabled = true;
        let p = policy(
            vec![vec![person(1), person(2), person(1), person(3), person(4)]],
            0,
        );
        let page = resolve_level(&p, 0, 0, 1, Timestamp(0), &dir);
        assert_eq!(page.targets, vec![OperatorId(1), OperatorId(3)]);
        assert_eq!(
            page.problems,
            vec!["account 2 is disabled", "account 4 no longer exists"]
        );
    }

    #[test]
    fn round_robin_turns_with_contacts_and_passes() {
        let dir = directory(&[1, 2, 3]);
        let mut p = policy(vec![vec![person(1), person(2), person(3)]], 2);
        p.levels[0].mode = LevelMode::RoundRobin;
        let pick = |incident: i64, cycle: u32| {
            resolve_level(&p, 0, cycle, incident, Timestamp(0), &dir).targets
        };
        assert_eq!(pick(3, 0), vec![OperatorId(1)]);
        assert_eq!(pick(4, 0), vec![OperatorId(2)]);
        assert_eq!(pick(5, 0), vec![OperatorId(3)]);
        assert_eq!(
            pick(3, 1),
            vec![OperatorId(2)],
            "a repeat pass pages the next one"
        );
    }

    #[test]
    fn schedules_resolve_to_whoever_is_on_call() {
        let mut dir = directory(&[1, 2]);
        let schedule = Schedule::new(
            ScheduleId(5),
            ScheduleDefinition {
                name: "leads".into(),
                time_zone: Default::default(),
                rotations: vec![Rotation {
                    length: RotationLength::Daily,
                    handoff_time: "09:00".parse().unwrap(),
                    start_date: "2025-01-01".parse().unwrap(),
                    participants: vec![OperatorId(1), OperatorId(2)],
                }],
                overrides: vec![],
            },
        );
        dir.schedules.insert(ScheduleId(5), schedule);
        let p = policy(vec![vec![Target::Schedule { id: ScheduleId(5) }]], 0);
        // 2025-01-02 10:00 in Shanghai = 02:00 UTC: the second day's shift.
        let at = Timestamp(1_735_783_200_000);
        let page = resolve_level(&p, 0, 0, 1, at, &dir);
        assert_eq!(page.targets, vec![OperatorId(2)]);
        // Before the rotation starts, nobody is on call: said, not silently skipped.
        let before = resolve_level(&p, 0, 0, 1, Timestamp(0), &dir);
        assert!(before.targets.is_empty());
        assert_eq!(before.problems, vec!["schedule 5 has nobody on call"]);
    }

    #[test]
    fn fallback_pages_crisis_leads_then_supervisors() {
        let mut dir = directory(&[1, 2]);
        dir.accounts.insert(
            OperatorId(3),
            Person {
                name: "s".into(),
                role: Role::Supervisor,
                disabled: false,
            },
        );
        let p = PolicyDefinition::fallback(&dir);
        assert_eq!(p.levels.len(), 2);
        assert_eq!(p.levels[0].targets, vec![person(1), person(2)]);
        assert_eq!(p.levels[1].targets, vec![person(3)]);
    }
}
