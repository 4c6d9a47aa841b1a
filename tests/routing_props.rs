//! Property tests and scenario tests for the routing engine.
//!
//! The property test drives the engine with random command sequences and random time advances
//! and, after *every* call, checks the engine's invariants with an independent, naive model
//! built only from the commands sent and the events received (plus the public views):
//! 1. a contact is never offered or assigned to two operators at once (event stream holders);
//! 2. no operator goes over capacity or holds two ringing offers; views agree with the events;
//! 3. every contact is live, or has exactly one terminal event not later resumed;
//! 4. no waiting contact has an eligible operator with room (naive eligibility checker);
//! 5. an offer never skips a better-placed waiting contact of the same channel that the
//!    operator was eligible for (imminent first, then ageing order);
//! 6. a refused command changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use hotline::domain::{
    BreakReason, Channel, ContactId, JoinMode, Language, OperatorId, Presence, Proficiency,
    QueueId, RiskLevel, Skill, Timestamp,
};
use hotline::routing::{
    Command, ContactState, ContactView, EndedBy, Engine, EngineConfig, EngineError, Event,
    NewContact, OperatorProfile, OperatorState, OperatorView, OverflowReason, QueueConfig,
    RelaxStep, RequeueReason, RestoredContact, SkillRequirement, TransferTarget,
};
use proptest::prelude::*;
use proptest::sample::Index;

// ----- helpers -------------------------------------------------------------------------------

fn qid(s: &str) -> QueueId {
    QueueId::parse(s).unwrap()
}
fn skill(s: &str) -> Skill {
    Skill::parse(s).unwrap()
}
fn lang(s: &str) -> Language {
    Language::parse(s).unwrap()
}
fn prof(n: u8) -> Proficiency {
    Proficiency::new(n).unwrap()
}
fn req(s: &str, n: u8) -> SkillRequirement {
    SkillRequirement {
        skill: skill(s),
        min_proficiency: prof(n),
    }
}

fn queue(id: &str) -> QueueConfig {
    QueueConfig {
        id: qid(id),
        required_skills: vec![],
        languages: vec![],
        relaxation: vec![],
        never_relax: false,
        overflow_to: None,
        max_wait_ms: None,
    }
}

fn profile(id: i64, skills: &[(&str, u8)], langs: &[&str], chat: u8, voice: u8) -> OperatorProfile {
    OperatorProfile {
        id: OperatorId(id),
        skills: skills.iter().map(|&(s, n)| (skill(s), prof(n))).collect(),
        languages: langs.iter().map(|l| lang(l)).collect(),
        chat_capacity: chat,
        voice_capacity: voice,
        voice_excludes_chat: true,
    }
}

fn contact(id: i64, queue: &str, channel: Channel, risk: RiskLevel) -> NewContact {
    NewContact {
        id: ContactId(id),
        queue: qid(queue),
        channel,
        language: lang("zh"),
        topic: None,
        extra_skills: vec![],
        risk,
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        offer_timeout_ms: 15_000,
        max_no_answer: 2,
        wrap_up_max_ms: 30_000,
        operator_grace_ms: 20_000,
        caller_grace_ms: 20_000,
        resume_window_ms: 60_000,
        risk_bonus_ms: [0, 60_000, 180_000, 600_000, 0],
        default_handle_ms: 300_000,
        crisis_skill: None,
    }
}

const T0: i64 = 1_700_000_000_000;

/// A small driver for scenario tests: virtual time, every event kept.
struct Sim {
    e: Engine,
    now: i64,
    log: Vec<Event>,
}

impl Sim {
    fn new(cfg: EngineConfig) -> Self {
        Sim {
            e: Engine::new(cfg),
            now: T0,
            log: Vec::new(),
        }
    }
    fn ts(&self) -> Timestamp {
        Timestamp(self.now)
    }
    /// Moves time forward and fires what is due.
    fn advance(&mut self, ms: i64) -> Vec<Event> {
        self.now += ms;
        let ev = self.e.tick(self.ts());
        self.log.extend(ev.iter().cloned());
        ev
    }
    fn cmd(&mut self, cmd: Command) -> Vec<Event> {
        let ev = self
            .e
            .handle(self.ts(), cmd.clone())
            .unwrap_or_else(|e| panic!("{cmd:?} refused: {e}"));
        self.log.extend(ev.iter().cloned());
        ev
    }
    fn try_cmd(&mut self, cmd: Command) -> Result<Vec<Event>, EngineError> {
        let r = self.e.handle(self.ts(), cmd);
        if let Ok(ev) = &r {
            self.log.extend(ev.iter().cloned());
        }
        r
    }
    /// Adds an operator, connected and available.
    fn op(&mut self, p: OperatorProfile) -> Vec<Event> {
        let id = p.id;
        let mut ev = self.cmd(Command::UpsertOperator(p));
        ev.extend(self.cmd(Command::OperatorConnected { operator: id }));
        ev.extend(self.cmd(Command::SetPresence {
            operator: id,
            presence: Presence::Available,
        }));
        ev
    }
    fn enqueue(&mut self, c: NewContact) -> Vec<Event> {
        self.cmd(Command::Enqueue(c))
    }
    fn accept(&mut self, op: i64, c: i64) -> Vec<Event> {
        self.cmd(Command::Accept {
            operator: OperatorId(op),
            contact: ContactId(c),
        })
    }
    fn state(&self, c: i64) -> Option<ContactState> {
        self.e.contact(ContactId(c)).map(|v| v.state)
    }
    fn holder(&self, c: i64) -> Option<OperatorId> {
        self.e.contact(ContactId(c)).and_then(|v| v.operator)
    }
}

fn offers(ev: &[Event]) -> Vec<(i64, i64)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Offer {
                contact, operator, ..
            } => Some((contact.0, operator.0)),
            _ => None,
        })
        .collect()
}

// ----- the naive model -----------------------------------------------------------------------

/// What the test knows, from the commands it sent and the events it received.
#[derive(Default)]
struct Model {
    cfg: EngineConfig,
    queues: BTreeMap<QueueId, QueueConfig>,
    profiles: BTreeMap<OperatorId, OperatorProfile>,
    /// Per contact: channel, language, extra skills, entered_at.
    info: BTreeMap<ContactId, (Channel, Language, Vec<SkillRequirement>, i64)>,
    /// When each contact joined its current queue.
    queued_at: BTreeMap<ContactId, i64>,
    /// Requeued after its operator was lost (tier 1).
    lost: BTreeSet<ContactId>,
    holders: BTreeMap<ContactId, OperatorId>,
    /// Ringing offers per operator.
    pending: BTreeMap<OperatorId, ContactId>,
    /// Contacts held per operator (offers, live, wrap-up).
    held: BTreeMap<OperatorId, BTreeSet<ContactId>>,
    /// Outstanding terminal events per contact (0 or 1).
    terminal: BTreeMap<ContactId, u32>,
    completed: BTreeSet<ContactId>,
    /// (operator, until) per contact: operators who declined it recently; forgotten when it is
    /// connected, abandoned, overflows, is transferred to a queue or requeued after its operator
    /// was lost (the engine's documented policy).
    declines: BTreeMap<ContactId, Vec<(OperatorId, i64)>>,
    /// Contacts whose ringing offer transfers them to a named person.
    targeted: BTreeSet<ContactId>,
}

fn capacity_of(p: &OperatorProfile, ch: Channel) -> usize {
    match ch {
        Channel::Chat => usize::from(p.chat_capacity),
        Channel::Voice => usize::from(p.voice_capacity),
    }
}

impl Model {
    fn channel(&self, c: ContactId) -> Channel {
        self.info[&c].0
    }

    fn used(&self, op: OperatorId, ch: Channel) -> usize {
        self.held
            .get(&op)
            .map_or(0, |s| s.iter().filter(|c| self.channel(**c) == ch).count())
    }

    fn take(&mut self, c: ContactId, op: OperatorId) {
        assert_eq!(
            self.holders.remove(&c),
            Some(op),
            "{c:?} was not held by {op:?}"
        );
        self.held.entry(op).or_default().remove(&c);
        if self.pending.get(&op) == Some(&c) {
            self.pending.remove(&op);
        }
        self.targeted.remove(&c);
    }

    /// Applies one call's events; panics on an invariant broken by the stream itself.
    fn apply(&mut self, now: i64, events: &[Event]) {
        for ev in events {
            if let Some(c) = ev.contact() {
                assert!(
                    !self.completed.contains(&c),
                    "event about a completed contact: {ev:?}"
                );
            }
            match ev {
                Event::EnterQueue {
                    contact, channel, ..
                } => {
                    assert_eq!(self.info[contact].0, *channel);
                    self.queued_at.insert(*contact, now);
                    self.terminal.insert(*contact, 0);
                }
                Event::Offer {
                    contact,
                    operator,
                    expires_at,
                } => {
                    assert!(
                        !self.holders.contains_key(contact),
                        "{contact:?} offered to {operator:?} while held by {:?}",
                        self.holders.get(contact)
                    );
                    assert!(
                        !self.pending.contains_key(operator),
                        "{operator:?} got a second ringing offer"
                    );
                    assert_eq!(expires_at.0, now + self.cfg.offer_timeout_ms);
                    self.holders.insert(*contact, *operator);
                    self.pending.insert(*operator, *contact);
                    self.held.entry(*operator).or_default().insert(*contact);
                    let p = &self.profiles[operator];
                    let ch = self.channel(*contact);
                    let other = match ch {
                        Channel::Chat => Channel::Voice,
                        Channel::Voice => Channel::Chat,
                    };
                    assert!(
                        self.used(*operator, ch) <= capacity_of(p, ch),
                        "{operator:?} over {ch:?} capacity"
                    );
                    assert!(
                        !(p.voice_excludes_chat && self.used(*operator, other) > 0),
                        "{operator:?} offered {ch:?} while holding {other:?}"
                    );
                }
                Event::Accept { contact, operator } => {
                    assert_eq!(self.holders.get(contact), Some(operator));
                    assert_eq!(self.pending.remove(operator), Some(*contact));
                    self.targeted.remove(contact);
                    self.declines.remove(contact);
                }
                Event::Connect {
                    contact, operator, ..
                }
                | Event::WrapUp {
                    contact, operator, ..
                } => {
                    assert_eq!(self.holders.get(contact), Some(operator));
                }
                Event::Reject { contact, operator } | Event::OfferTimeout { contact, operator } => {
                    self.take(*contact, *operator);
                    self.declines
                        .entry(*contact)
                        .or_default()
                        .push((*operator, now + self.cfg.offer_timeout_ms));
                }
                Event::OfferRescinded { contact, operator } => self.take(*contact, *operator),
                Event::Complete {
                    contact, operator, ..
                } => {
                    self.take(*contact, *operator);
                    let t = self.terminal.entry(*contact).or_default();
                    assert_eq!(*t, 0, "second terminal event for {contact:?}");
                    *t = 1;
                    self.completed.insert(*contact);
                }
                Event::Abandon { contact, .. } => {
                    self.declines.remove(contact);
                    assert!(
                        !self.holders.contains_key(contact),
                        "abandoned while held: {contact:?}"
                    );
                    let t = self.terminal.entry(*contact).or_default();
                    assert_eq!(*t, 0, "second terminal event for {contact:?}");
                    *t = 1;
                }
                Event::Resume { contact } => {
                    let t = self.terminal.entry(*contact).or_default();
                    assert_eq!(*t, 1, "resume without abandon: {contact:?}");
                    *t = 0;
                }
                Event::Requeue {
                    contact, reason, ..
                } => {
                    match reason {
                        RequeueReason::OperatorLost => {
                            self.declines.remove(contact);
                            let op = self.holders[contact];
                            self.take(*contact, op);
                            self.lost.insert(*contact);
                        }
                        RequeueReason::TransferNotTaken => {
                            assert!(!self.holders.contains_key(contact));
                        }
                    }
                    self.queued_at.insert(*contact, now);
                }
                Event::Transfer {
                    contact,
                    from,
                    target,
                } => {
                    self.take(*contact, *from);
                    if matches!(target, TransferTarget::Queue { .. }) {
                        // A new stay, which the transferring operator has declined.
                        self.declines
                            .insert(*contact, vec![(*from, now + self.cfg.offer_timeout_ms)]);
                        self.queued_at.insert(*contact, now);
                    } else {
                        self.targeted.insert(*contact);
                    }
                }
                Event::Overflow { contact, .. } => {
                    // A new stay: declines are forgotten.
                    self.declines.remove(contact);
                    self.queued_at.insert(*contact, now);
                }
                _ => {}
            }
        }
    }

    /// Requirements of a contact in a queue at `now`, relaxation applied cumulatively.
    fn requirements(&self, q: &QueueConfig, c: ContactId, now: i64) -> Vec<(Skill, Proficiency)> {
        let mut merged: BTreeMap<Skill, Proficiency> = BTreeMap::new();
        for r in q.required_skills.iter().chain(self.info[&c].2.iter()) {
            let e = merged.entry(r.skill.clone()).or_insert(r.min_proficiency);
            *e = (*e).max(r.min_proficiency);
        }
        if !q.never_relax {
            let waited = now - self.queued_at[&c];
            let reached: Vec<&RelaxStep> =
                match q.relaxation.iter().rposition(|s| s.after_ms <= waited) {
                    Some(i) => q.relaxation[..=i].iter().collect(),
                    None => vec![],
                };
            if reached.iter().any(|s| s.drop_skills) {
                return vec![];
            }
            if let Some(cap) = reached.iter().filter_map(|s| s.max_proficiency).min() {
                for v in merged.values_mut() {
                    *v = (*v).min(cap);
                }
            }
        }
        merged.into_iter().collect()
    }

    /// Naive static eligibility: channel capacity, languages, skills after relaxation.
    fn fits(&self, op: OperatorId, c: &ContactView, now: i64) -> bool {
        let p = &self.profiles[&op];
        let q = &self.queues[&c.queue];
        capacity_of(p, c.channel) > 0
            && p.languages.contains(&c.language)
            && (q.languages.is_empty() || q.languages.contains(&c.language))
            && self
                .requirements(q, c.id, now)
                .iter()
                .all(|(s, min)| p.skills.get(s).is_some_and(|have| have >= min))
    }

    /// Eligibility without room: fits, and not held back by a decline. An operator who declined
    /// the contact during this stay is held back during a one-ring cooldown, and afterwards for
    /// as long as someone who has not declined it is connected, Available and fits.
    fn eligible(&self, e: &Engine, op: OperatorId, c: &ContactView, now: i64) -> bool {
        if !self.fits(op, c, now) {
            return false;
        }
        let Some(list) = self.declines.get(&c.id) else {
            return true;
        };
        let Some(until) = list.iter().filter(|d| d.0 == op).map(|d| d.1).max() else {
            return true;
        };
        if until > now {
            return false;
        }
        !e.operators().iter().any(|v| {
            !list.iter().any(|d| d.0 == v.id)
                && v.presence == Presence::Available
                && !matches!(v.state, OperatorState::Away | OperatorState::Offline)
                && self.fits(v.id, c, now)
        })
    }

    /// Naive room: connected and available, no ringing offer, a free slot on the channel.
    fn has_room(&self, view: &OperatorView, ch: Channel) -> bool {
        let p = &self.profiles[&view.id];
        let other = match ch {
            Channel::Chat => Channel::Voice,
            Channel::Voice => Channel::Chat,
        };
        matches!(view.state, OperatorState::Available)
            && view.presence == Presence::Available
            && !self.pending.contains_key(&view.id)
            && self.used(view.id, ch) < capacity_of(p, ch)
            && !(p.voice_excludes_chat && self.used(view.id, other) > 0)
    }

    fn key(&self, c: &ContactView) -> (u8, i64, ContactId) {
        let tier = if c.risk == RiskLevel::Imminent {
            0
        } else if self.lost.contains(&c.id) {
            1
        } else {
            2
        };
        (
            tier,
            c.entered_at.0 - self.cfg.risk_bonus_ms[c.risk.index()],
            c.id,
        )
    }

    /// Checks the engine's state after a call that produced `events` at `now`.
    fn check(&self, e: &Engine, now: i64, events: &[Event]) {
        let contacts = e.contacts();
        let ops = e.operators();
        // Views agree with the event stream.
        for v in &ops {
            let from_events: Vec<ContactId> = self
                .held
                .get(&v.id)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            assert_eq!(v.contacts, from_events, "operator view of {:?}", v.id);
        }
        for c in &contacts {
            assert_eq!(
                c.operator,
                self.holders.get(&c.id).copied(),
                "holder of {:?}",
                c.id
            );
            let held = matches!(
                c.state,
                ContactState::Offered | ContactState::Assigned | ContactState::Wrapping
            );
            assert_eq!(held, c.operator.is_some(), "{c:?}");
        }
        // Terminal states.
        for (id, &t) in &self.terminal {
            let v = e.contact(*id);
            if self.completed.contains(id) {
                assert!(v.is_none(), "completed contact still known: {id:?}");
            } else if t == 1 {
                assert!(
                    v.as_ref()
                        .is_none_or(|v| v.state == ContactState::Abandoned),
                    "abandoned contact is live: {v:?}"
                );
            } else {
                assert!(
                    v.as_ref().is_some_and(|v| !v.state.is_terminal()),
                    "live contact lost: {id:?} {v:?}"
                );
            }
        }
        // No waiting contact has an eligible operator with room.
        for c in contacts.iter().filter(|c| c.state == ContactState::Waiting) {
            for v in &ops {
                if self.has_room(v, c.channel) && self.eligible(e, v.id, c, now) {
                    panic!(
                        "{:?} (risk {:?}) waits while {:?} is eligible with room",
                        c.id, c.risk, v.id
                    );
                }
            }
        }
        // A ringing queue offer is always one its operator fits, within capacity, whatever
        // profile or queue changed since it was made.
        for (&operator, &contact) in &self.pending {
            if self.targeted.contains(&contact) {
                continue;
            }
            let Some(offered) = e.contact(contact) else {
                continue;
            };
            let p = &self.profiles[&operator];
            let other = match offered.channel {
                Channel::Chat => Channel::Voice,
                Channel::Voice => Channel::Chat,
            };
            assert!(
                self.fits(operator, &offered, now)
                    && self.used(operator, offered.channel) <= capacity_of(p, offered.channel)
                    && !(p.voice_excludes_chat && self.used(operator, other) > 0),
                "{contact:?} rings for {operator:?}, who no longer fits it"
            );
        }
        // Offers never skip a better-placed contact of the same channel.
        for ev in events {
            if let Event::Offer {
                contact, operator, ..
            } = ev
            {
                let Some(offered) = e.contact(*contact) else {
                    continue;
                };
                if offered.operator != Some(*operator) {
                    continue;
                }
                let transferred = events.iter().any(|t| {
                    matches!(t, Event::Transfer { contact: c, target: TransferTarget::Operator { .. }, .. } if c == contact)
                });
                assert!(
                    transferred || self.eligible(e, *operator, &offered, now),
                    "{contact:?} offered to ineligible {operator:?}"
                );
                let mine = self.key(&offered);
                for d in contacts
                    .iter()
                    .filter(|d| d.state == ContactState::Waiting && d.channel == offered.channel)
                {
                    if self.key(d) < mine && self.eligible(e, *operator, d, now) {
                        panic!(
                            "{operator:?} was offered {contact:?} {mine:?} while {:?} {:?} waited",
                            d.id,
                            self.key(d)
                        );
                    }
                }
            }
        }
        if let Some(next) = e.next_deadline() {
            assert!(next.0 > now, "deadline {next:?} not fired at {now}");
        }
    }
}

// ----- the property test ---------------------------------------------------------------------

const LANGS: [&str; 2] = ["zh", "en"];
const SKILLS: [&str; 2] = ["crisis", "youth"];
const QUEUES: [&str; 3] = ["q0", "q1", "q2"];
const OPS: i64 = 5;

fn arb_reqs() -> impl Strategy<Value = Vec<SkillRequirement>> {
    prop::collection::vec((0..2usize, prop_oneof![3 => 1..=3u8, 1 => 4..=5u8]), 0..=2).prop_map(
        |v| {
            let mut seen = BTreeSet::new();
            v.into_iter()
                .filter(|(s, _)| seen.insert(*s))
                .map(|(s, n)| req(SKILLS[s], n))
                .collect()
        },
    )
}

fn arb_langs() -> impl Strategy<Value = Vec<Language>> {
    prop_oneof![
        Just(vec![]),
        Just(vec![lang("zh")]),
        Just(vec![lang("en")]),
        Just(vec![lang("zh"), lang("en")]),
    ]
}

fn arb_queue(i: usize) -> impl Strategy<Value = QueueConfig> {
    (
        arb_reqs(),
        arb_langs(),
        prop::collection::vec(
            (
                0..60_000i64,
                prop::option::of(1..=5u8),
                prop::bool::weighted(0.3),
            ),
            0..=2,
        ),
        prop::bool::weighted(0.2),
        prop::option::of(0..3usize),
        prop::option::of(20_000..120_000i64),
    )
        .prop_map(move |(reqs, langs, steps, never, over, max_wait)| {
            let mut steps = steps;
            steps.sort_by_key(|s| s.0);
            QueueConfig {
                id: qid(QUEUES[i]),
                required_skills: reqs,
                languages: langs,
                relaxation: steps
                    .into_iter()
                    .map(|(after, cap, drop)| RelaxStep {
                        after_ms: after,
                        max_proficiency: cap.map(prof),
                        drop_skills: drop,
                    })
                    .collect(),
                never_relax: never,
                overflow_to: over.filter(|&o| o != i).map(|o| qid(QUEUES[o])),
                max_wait_ms: max_wait,
            }
        })
}

fn arb_profile(id: i64) -> impl Strategy<Value = OperatorProfile> {
    (
        prop::collection::vec(prop::option::weighted(0.7, 2..=5u8), 2),
        prop_oneof![
            Just(vec!["zh"]),
            Just(vec!["en"]),
            Just(vec!["zh", "en"]),
            Just(vec![]),
        ],
        0..=3u8,
        prop_oneof![1 => Just(0u8), 3 => Just(1u8)],
        any::<bool>(),
    )
        .prop_map(move |(skills, langs, chat, voice, excl)| OperatorProfile {
            id: OperatorId(id),
            skills: skills
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.map(|n| (skill(SKILLS[i]), prof(n))))
                .collect(),
            languages: langs.iter().map(|l| lang(l)).collect(),
            chat_capacity: chat,
            voice_capacity: voice,
            voice_excludes_chat: excl,
        })
}

fn arb_risk() -> impl Strategy<Value = RiskLevel> {
    prop_oneof![
        3 => Just(RiskLevel::None),
        1 => Just(RiskLevel::Low),
        1 => Just(RiskLevel::Medium),
        1 => Just(RiskLevel::High),
        2 => Just(RiskLevel::Imminent),
    ]
}

fn arb_presence() -> impl Strategy<Value = Presence> {
    prop_oneof![
        3 => Just(Presence::Available),
        1 => Just(Presence::Break { reason: BreakReason::Meal }),
        1 => Just(Presence::Offline),
    ]
}

#[derive(Debug, Clone)]
enum Action {
    Advance(i64),
    Enqueue {
        queue: usize,
        voice: bool,
        lang: usize,
        extra: Vec<SkillRequirement>,
        risk: RiskLevel,
    },
    EnqueueDuplicate(Index),
    EnqueueUnknownQueue,
    RaiseRisk(Index, RiskLevel),
    Accept(Index, bool),
    Reject(Index),
    End(Index, bool),
    Finish(Index),
    CallerLeft(Index),
    CallerDisconnected(Index),
    CallerReturned(Index),
    Connect(i64),
    Disconnect(i64),
    SetPresence(i64, Presence),
    UpsertOperator(OperatorProfile),
    UpsertQueue(QueueConfig),
    TransferQueue(Index, usize),
    TransferOperator(Index, i64),
    Join(Index, i64, bool),
    Leave(Index, i64),
    UnknownOperator,
}

fn arb_op() -> impl Strategy<Value = i64> {
    1..=OPS
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => (0..25_000i64).prop_map(Action::Advance),
        10 => (0..3usize, prop::bool::weighted(0.3), 0..2usize, prop_oneof![3 => Just(vec![]), 1 => arb_reqs()], arb_risk())
            .prop_map(|(queue, voice, lang, extra, risk)| Action::Enqueue { queue, voice, lang, extra, risk }),
        1 => any::<Index>().prop_map(Action::EnqueueDuplicate),
        1 => Just(Action::EnqueueUnknownQueue),
        2 => (any::<Index>(), arb_risk()).prop_map(|(i, r)| Action::RaiseRisk(i, r)),
        16 => (any::<Index>(), prop::bool::weighted(0.9)).prop_map(|(i, right)| Action::Accept(i, right)),
        3 => any::<Index>().prop_map(Action::Reject),
        5 => (any::<Index>(), any::<bool>()).prop_map(|(i, b)| Action::End(i, b)),
        5 => any::<Index>().prop_map(Action::Finish),
        2 => any::<Index>().prop_map(Action::CallerLeft),
        2 => any::<Index>().prop_map(Action::CallerDisconnected),
        3 => any::<Index>().prop_map(Action::CallerReturned),
        2 => arb_op().prop_map(Action::Connect),
        2 => arb_op().prop_map(Action::Disconnect),
        3 => (arb_op(), arb_presence()).prop_map(|(o, p)| Action::SetPresence(o, p)),
        1 => arb_op().prop_flat_map(arb_profile).prop_map(Action::UpsertOperator),
        1 => (0..3usize).prop_flat_map(arb_queue).prop_map(Action::UpsertQueue),
        2 => (any::<Index>(), 0..3usize).prop_map(|(i, q)| Action::TransferQueue(i, q)),
        2 => (any::<Index>(), arb_op()).prop_map(|(i, o)| Action::TransferOperator(i, o)),
        2 => (any::<Index>(), arb_op(), any::<bool>()).prop_map(|(i, o, b)| Action::Join(i, o, b)),
        2 => (any::<Index>(), arb_op()).prop_map(|(i, o)| Action::Leave(i, o)),
        1 => Just(Action::UnknownOperator),
    ]
}

fn pick(
    views: &[ContactView],
    idx: &Index,
    pred: impl Fn(&ContactView) -> bool,
) -> Option<ContactView> {
    let matching: Vec<&ContactView> = views.iter().filter(|v| pred(v)).collect();
    (!matching.is_empty()).then(|| matching[idx.index(matching.len())].clone())
}

struct Run {
    e: Engine,
    m: Model,
    now: i64,
    next_id: i64,
    known: Vec<ContactId>,
}

impl Run {
    /// Sends a command; a refusal must change nothing; events feed the model, then all checks.
    fn send(&mut self, cmd: Command) {
        let before = (
            self.e.contacts(),
            self.e.operators(),
            self.e.next_deadline(),
        );
        if let Command::Enqueue(c) = &cmd
            && !self.m.info.contains_key(&c.id)
        {
            self.m.info.insert(
                c.id,
                (
                    c.channel,
                    c.language.clone(),
                    c.extra_skills.clone(),
                    self.now,
                ),
            );
        }
        match self.e.handle(Timestamp(self.now), cmd.clone()) {
            Ok(events) => {
                match &cmd {
                    Command::UpsertQueue(q) => {
                        self.m.queues.insert(q.id.clone(), q.clone());
                    }
                    Command::UpsertOperator(p) => {
                        self.m.profiles.insert(p.id, p.clone());
                    }
                    Command::Enqueue(c) => self.known.push(c.id),
                    _ => {}
                }
                self.m.apply(self.now, &events);
                self.m.check(&self.e, self.now, &events);
            }
            Err(_) => {
                let after = (
                    self.e.contacts(),
                    self.e.operators(),
                    self.e.next_deadline(),
                );
                assert_eq!(before, after, "refused {cmd:?} changed the engine");
            }
        }
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        let events = self.e.tick(Timestamp(self.now));
        self.m.apply(self.now, &events);
        self.m.check(&self.e, self.now, &events);
    }

    fn act(&mut self, a: Action) {
        let views = self.e.contacts();
        let state_is = |s: ContactState| move |v: &ContactView| v.state == s;
        match a {
            Action::Advance(ms) => self.advance(ms),
            Action::Enqueue {
                queue,
                voice,
                lang: l,
                extra,
                risk,
            } => {
                self.next_id += 1;
                self.send(Command::Enqueue(NewContact {
                    id: ContactId(self.next_id),
                    queue: qid(QUEUES[queue]),
                    channel: if voice { Channel::Voice } else { Channel::Chat },
                    language: lang(LANGS[l]),
                    topic: None,
                    extra_skills: extra,
                    risk,
                }));
            }
            Action::EnqueueDuplicate(i) => {
                if let Some(v) = pick(&views, &i, |_| true) {
                    let r = self.e.handle(
                        Timestamp(self.now),
                        Command::Enqueue(contact(v.id.0, "q0", Channel::Chat, RiskLevel::None)),
                    );
                    assert_eq!(r, Err(EngineError::DuplicateContact));
                }
            }
            Action::EnqueueUnknownQueue => {
                let r = self.e.handle(
                    Timestamp(self.now),
                    Command::Enqueue(contact(999_999, "nowhere", Channel::Chat, RiskLevel::None)),
                );
                assert_eq!(r, Err(EngineError::UnknownQueue));
            }
            Action::RaiseRisk(i, risk) => {
                if let Some(v) = pick(&views, &i, |_| true) {
                    self.send(Command::RaiseRisk {
                        contact: v.id,
                        risk,
                    });
                }
            }
            Action::Accept(i, right) => {
                if let Some(v) = pick(&views, &i, state_is(ContactState::Offered)) {
                    let holder = v.operator.unwrap();
                    let operator = if right {
                        holder
                    } else {
                        OperatorId(holder.0 % OPS + 1)
                    };
                    self.send(Command::Accept {
                        operator,
                        contact: v.id,
                    });
                }
            }
            Action::Reject(i) => {
                if let Some(v) = pick(&views, &i, state_is(ContactState::Offered)) {
                    self.send(Command::Reject {
                        operator: v.operator.unwrap(),
                        contact: v.id,
                    });
                }
            }
            Action::End(i, by_caller) => {
                let live = |v: &ContactView| v.state == ContactState::Assigned || v.id.0 % 5 == 0;
                if let Some(v) = pick(&views, &i, live) {
                    self.send(Command::End {
                        contact: v.id,
                        by: if by_caller {
                            EndedBy::Caller
                        } else {
                            EndedBy::Operator
                        },
                    });
                }
            }
            Action::Finish(i) => {
                if let Some(v) = pick(&views, &i, state_is(ContactState::Wrapping)) {
                    self.send(Command::FinishWrapUp {
                        operator: v.operator.unwrap(),
                        contact: v.id,
                    });
                }
            }
            Action::CallerLeft(i) => {
                let live = |v: &ContactView| v.state == ContactState::Assigned || v.id.0 % 4 == 0;
                if let Some(v) = pick(&views, &i, live) {
                    self.send(Command::CallerLeft { contact: v.id });
                }
            }
            Action::CallerDisconnected(i) => {
                if let Some(v) = pick(&views, &i, |_| true) {
                    self.send(Command::CallerDisconnected { contact: v.id });
                }
            }
            Action::CallerReturned(i) => {
                if !self.known.is_empty() {
                    let id = self.known[i.index(self.known.len())];
                    self.send(Command::CallerReturned { contact: id });
                }
            }
            Action::Connect(o) => self.send(Command::OperatorConnected {
                operator: OperatorId(o),
            }),
            Action::Disconnect(o) => self.send(Command::OperatorDisconnected {
                operator: OperatorId(o),
            }),
            Action::SetPresence(o, presence) => self.send(Command::SetPresence {
                operator: OperatorId(o),
                presence,
            }),
            Action::UpsertOperator(p) => self.send(Command::UpsertOperator(p)),
            Action::UpsertQueue(q) => self.send(Command::UpsertQueue(q)),
            Action::TransferQueue(i, q) => {
                if let Some(v) = pick(&views, &i, state_is(ContactState::Assigned)) {
                    self.send(Command::Transfer {
                        contact: v.id,
                        by: v.operator.unwrap(),
                        target: TransferTarget::Queue {
                            queue: qid(QUEUES[q]),
                        },
                    });
                }
            }
            Action::TransferOperator(i, o) => {
                if let Some(v) = pick(&views, &i, state_is(ContactState::Assigned)) {
                    self.send(Command::Transfer {
                        contact: v.id,
                        by: v.operator.unwrap(),
                        target: TransferTarget::Operator {
                            operator: OperatorId(o),
                        },
                    });
                }
            }
            Action::Join(i, o, barge) => {
                let live = |v: &ContactView| v.state == ContactState::Assigned || v.id.0 % 5 == 0;
                if let Some(v) = pick(&views, &i, live) {
                    self.send(Command::Join {
                        contact: v.id,
                        participant: OperatorId(o),
                        mode: if barge {
                            JoinMode::Barge
                        } else {
                            JoinMode::Monitor
                        },
                    });
                }
            }
            Action::Leave(i, o) => {
                if let Some(v) = pick(&views, &i, state_is(ContactState::Assigned)) {
                    self.send(Command::Leave {
                        contact: v.id,
                        participant: OperatorId(o),
                    });
                }
            }
            Action::UnknownOperator => {
                let r = self.e.handle(
                    Timestamp(self.now),
                    Command::SetPresence {
                        operator: OperatorId(404),
                        presence: Presence::Available,
                    },
                );
                assert_eq!(r, Err(EngineError::UnknownOperator));
            }
        }
    }
}

fn arb_setup() -> impl Strategy<Value = (Vec<QueueConfig>, Vec<OperatorProfile>, Vec<bool>)> {
    (
        (arb_queue(0), arb_queue(1), arb_queue(2)).prop_map(|(a, b, c)| vec![a, b, c]),
        (1..=OPS).map(arb_profile).collect::<Vec<_>>(),
        prop::collection::vec(prop::bool::weighted(0.85), OPS as usize),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invariants_hold_after_every_call(
        (queues, profiles, online) in arb_setup(),
        actions in prop::collection::vec(arb_action(), 1..120),
    ) {
        let mut run = Run {
            e: Engine::new(config()),
            m: Model { cfg: config(), ..Model::default() },
            now: T0,
            next_id: 0,
            known: Vec::new(),
        };
        for q in queues {
            run.send(Command::UpsertQueue(q));
        }
        for (p, on) in profiles.into_iter().zip(online) {
            let id = p.id;
            run.send(Command::UpsertOperator(p));
            if on {
                run.send(Command::OperatorConnected { operator: id });
                run.send(Command::SetPresence { operator: id, presence: Presence::Available });
            }
        }
        for a in actions {
            run.act(a);
        }
        // Let every deadline play out: the invariants must still hold, and nothing may stay
        // ringing or wrapping forever.
        for _ in 0..20 {
            run.advance(20_000);
        }
        for c in run.e.contacts() {
            prop_assert!(
                !matches!(c.state, ContactState::Offered | ContactState::Wrapping),
                "{:?} stuck", c
            );
        }
    }
}

// ----- scenarios -----------------------------------------------------------------------------

fn one_queue_sim() -> Sim {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(queue("general")));
    s
}

#[test]
fn imminent_goes_first_then_ageing_order() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    // The operator is busy with contact 1.
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    s.advance(10_000);
    s.enqueue(contact(3, "general", Channel::Voice, RiskLevel::High));
    s.advance(10_000);
    s.enqueue(contact(4, "general", Channel::Voice, RiskLevel::Imminent));
    let places: Vec<i64> =
        s.e.queue_places(s.ts(), &qid("general"))
            .iter()
            .map(|p| p.contact.0)
            .collect();
    assert_eq!(places, vec![4, 3, 2]);
    s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    let ev = s.cmd(Command::FinishWrapUp {
        operator: OperatorId(1),
        contact: ContactId(1),
    });
    assert_eq!(offers(&ev), vec![(4, 1)]);
}

#[test]
fn imminent_is_offered_at_once_when_an_operator_is_free() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 2, 1));
    let ev = s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::Imminent));
    assert_eq!(offers(&ev), vec![(1, 1)]);
}

#[test]
fn ageing_prevents_starvation() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    // A no-risk contact waits; high-risk contacts keep arriving. Bonus for high = 600 s.
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    s.advance(500_000);
    s.enqueue(contact(3, "general", Channel::Voice, RiskLevel::High)); // credited 600 s: ahead
    s.advance(200_000);
    s.enqueue(contact(4, "general", Channel::Voice, RiskLevel::High)); // 700 s later: behind
    let order: Vec<i64> =
        s.e.queue_places(s.ts(), &qid("general"))
            .iter()
            .map(|p| p.contact.0)
            .collect();
    assert_eq!(order, vec![3, 2, 4]);
}

#[test]
fn reject_returns_the_contact_to_its_place() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.advance(1_000);
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    assert_eq!(s.holder(1), Some(OperatorId(1)));
    let ev = s.cmd(Command::Reject {
        operator: OperatorId(1),
        contact: ContactId(1),
    });
    assert!(ev.contains(&Event::Reject {
        contact: ContactId(1),
        operator: OperatorId(1)
    }));
    // Not re-offered to the one who declined it during the cooldown: contact 2 goes to them.
    assert_eq!(offers(&ev), vec![(2, 1)]);
    let places = s.e.queue_places(s.ts(), &qid("general"));
    assert_eq!(places[0].contact, ContactId(1));
    assert_eq!(places[0].position, 1);
    // Another operator arrives: contact 1, still first, is theirs.
    let ev = s.op(profile(2, &[], &["zh"], 0, 1));
    assert_eq!(offers(&ev), vec![(1, 2)]);
}

#[test]
fn a_declined_contact_comes_back_after_the_cooldown_if_nobody_else_can_take_it() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::Imminent));
    let ev = s.cmd(Command::Reject {
        operator: OperatorId(1),
        contact: ContactId(1),
    });
    assert!(offers(&ev).is_empty());
    assert_eq!(s.state(1), Some(ContactState::Waiting));
    let ev = s.advance(15_000);
    assert_eq!(offers(&ev), vec![(1, 1)]);
}

#[test]
fn a_declined_contact_waits_for_someone_else_while_anyone_else_could_take_it() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.op(profile(2, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1); // operator 1 (longest idle) is busy
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::High));
    assert_eq!(s.holder(2), Some(OperatorId(2)));
    s.cmd(Command::Reject {
        operator: OperatorId(2),
        contact: ContactId(2),
    });
    // Operator 1 is busy but could take it: it waits for them, past the cooldown too.
    assert!(offers(&s.advance(60_000)).is_empty());
    assert_eq!(s.state(2), Some(ContactState::Waiting));
    // Operator 2 takes a newer contact, finishes it, and is free again: still not theirs.
    let ev = s.enqueue(contact(3, "general", Channel::Voice, RiskLevel::None));
    assert_eq!(offers(&ev), vec![(3, 2)]);
    s.accept(2, 3);
    s.cmd(Command::End {
        contact: ContactId(3),
        by: EndedBy::Caller,
    });
    let ev = s.cmd(Command::FinishWrapUp {
        operator: OperatorId(2),
        contact: ContactId(3),
    });
    assert!(offers(&ev).is_empty(), "{ev:?}");
    s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    let ev = s.cmd(Command::FinishWrapUp {
        operator: OperatorId(1),
        contact: ContactId(1),
    });
    assert_eq!(offers(&ev), vec![(2, 1)]);
}

#[test]
fn a_declined_contact_goes_back_when_the_one_it_waited_for_leaves() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.op(profile(2, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::Imminent));
    s.cmd(Command::Reject {
        operator: OperatorId(2),
        contact: ContactId(2),
    });
    s.advance(20_000);
    let ev = s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Break {
            reason: BreakReason::Personal,
        },
    });
    assert_eq!(offers(&ev), vec![(2, 2)]);
}

#[test]
fn max_no_answer_puts_the_operator_on_break() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    let ev = s.advance(15_000);
    assert!(ev.contains(&Event::OfferTimeout {
        contact: ContactId(1),
        operator: OperatorId(1)
    }));
    assert_eq!(offers(&ev), vec![(2, 1)]);
    let ev = s.advance(15_000);
    assert!(ev.contains(&Event::OfferTimeout {
        contact: ContactId(2),
        operator: OperatorId(1)
    }));
    assert!(ev.contains(&Event::OperatorState {
        operator: OperatorId(1),
        state: OperatorState::Break {
            reason: BreakReason::NoAnswer
        }
    }));
    assert!(offers(&ev).is_empty());
    assert_eq!(
        s.e.operator(OperatorId(1)).unwrap().presence,
        Presence::Break {
            reason: BreakReason::NoAnswer
        }
    );
    // Back to available: the counter is reset and contact 1 (first in line) is offered.
    let ev = s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Available,
    });
    assert_eq!(offers(&ev), vec![(1, 1)]);
}

#[test]
fn a_reject_between_two_misses_is_not_two_misses_in_a_row() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    for id in 1..=3 {
        s.enqueue(contact(id, "general", Channel::Voice, RiskLevel::None));
    }
    let ev = s.advance(15_000); // miss 1, offered 2
    assert_eq!(offers(&ev), vec![(2, 1)]);
    let ev = s.cmd(Command::Reject {
        operator: OperatorId(1),
        contact: ContactId(2),
    });
    assert_eq!(offers(&ev), vec![(3, 1)]);
    let ev = s.advance(15_000); // a miss after an answer: no break
    assert!(
        !ev.iter().any(|e| matches!(
            e,
            Event::OperatorState {
                state: OperatorState::Break { .. },
                ..
            }
        )),
        "{ev:?}"
    );
}

#[test]
fn accept_resets_the_no_answer_counter() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    s.advance(15_000); // miss 1, offered 2
    s.accept(1, 2);
    s.cmd(Command::End {
        contact: ContactId(2),
        by: EndedBy::Caller,
    });
    s.advance(15_000); // the cooldown on contact 1 ends while wrapping up
    let ev = s.cmd(Command::FinishWrapUp {
        operator: OperatorId(1),
        contact: ContactId(2),
    });
    assert_eq!(offers(&ev), vec![(1, 1)]);
    let ev = s.advance(15_000); // a single miss after the accept: no break
    assert!(!ev.iter().any(|e| matches!(
        e,
        Event::OperatorState {
            state: OperatorState::Break { .. },
            ..
        }
    )));
}

#[test]
fn wrap_up_max_auto_completes() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.advance(2_000);
    let ev = s.accept(1, 1);
    assert!(ev.contains(&Event::Connect {
        contact: ContactId(1),
        operator: OperatorId(1),
        queue: qid("general"),
        waited_ms: 2_000
    }));
    s.advance(60_000);
    let ev = s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    assert!(ev.contains(&Event::WrapUp {
        contact: ContactId(1),
        operator: OperatorId(1),
        by: EndedBy::Operator
    }));
    assert!(ev.contains(&Event::OperatorState {
        operator: OperatorId(1),
        state: OperatorState::WrapUp
    }));
    assert_eq!(s.e.next_deadline(), Some(Timestamp(s.now + 30_000)));
    let ev = s.advance(29_999);
    assert!(ev.is_empty());
    let ev = s.advance(1);
    assert!(ev.contains(&Event::Complete {
        contact: ContactId(1),
        operator: OperatorId(1),
        handled_ms: 90_000
    }));
    assert!(s.e.contact(ContactId(1)).is_none());
    assert_eq!(
        s.e.operator(OperatorId(1)).unwrap().state,
        OperatorState::Available
    );
}

fn relaxing_queue(never_relax: bool) -> QueueConfig {
    QueueConfig {
        required_skills: vec![req("crisis", 4)],
        relaxation: vec![RelaxStep {
            after_ms: 30_000,
            max_proficiency: Some(prof(2)),
            drop_skills: false,
        }],
        never_relax,
        ..queue("crisis")
    }
}

#[test]
fn relaxation_lets_a_lower_proficiency_operator_take_it_without_losing_place() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(relaxing_queue(false)));
    s.op(profile(1, &[("crisis", 2)], &["zh"], 0, 1));
    s.enqueue(contact(1, "crisis", Channel::Voice, RiskLevel::None));
    s.advance(10_000);
    s.enqueue(contact(2, "crisis", Channel::Voice, RiskLevel::None));
    assert_eq!(s.state(1), Some(ContactState::Waiting));
    let ev = s.advance(20_000);
    assert_eq!(
        ev[0],
        Event::Relax {
            contact: ContactId(1),
            step: 0
        }
    );
    assert_eq!(offers(&ev), vec![(1, 1)]);
    // Contact 2 has not relaxed yet and stays first among those waiting.
    let places = s.e.queue_places(s.ts(), &qid("crisis"));
    assert_eq!(places.len(), 2);
    assert_eq!((places[1].contact, places[1].position), (ContactId(2), 2));
}

#[test]
fn relaxation_keeps_place_ahead_of_newer_contacts() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(relaxing_queue(false)));
    s.op(profile(1, &[("crisis", 2)], &["zh"], 0, 1));
    s.op(profile(2, &[("crisis", 5)], &["zh"], 0, 1));
    // The expert is busy; contacts 2 and 3 wait; contact 2 relaxes first.
    s.enqueue(contact(1, "crisis", Channel::Voice, RiskLevel::None));
    s.accept(2, 1);
    s.enqueue(contact(2, "crisis", Channel::Voice, RiskLevel::None));
    s.advance(5_000);
    s.enqueue(contact(3, "crisis", Channel::Voice, RiskLevel::None));
    let ev = s.advance(25_000);
    assert_eq!(offers(&ev), vec![(2, 1)]);
    s.cmd(Command::Reject {
        operator: OperatorId(1),
        contact: ContactId(2),
    });
    // The expert frees up: contact 2 is still first.
    s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    let ev = s.cmd(Command::FinishWrapUp {
        operator: OperatorId(2),
        contact: ContactId(1),
    });
    assert_eq!(offers(&ev), vec![(2, 2)]);
}

#[test]
fn never_relax_queue_does_not_relax() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(relaxing_queue(true)));
    s.op(profile(1, &[("crisis", 2)], &["zh"], 0, 1));
    s.enqueue(contact(1, "crisis", Channel::Voice, RiskLevel::Imminent));
    let ev = s.advance(600_000);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(s.state(1), Some(ContactState::Waiting));
}

#[test]
fn overflow_on_max_wait() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(QueueConfig {
        overflow_to: Some(qid("backup")),
        max_wait_ms: Some(60_000),
        languages: vec![lang("zh")],
        ..queue("main")
    }));
    s.cmd(Command::UpsertQueue(queue("backup")));
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "main", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    s.enqueue(contact(2, "main", Channel::Voice, RiskLevel::Low));
    let ev = s.advance(59_999);
    assert!(ev.is_empty());
    let ev = s.advance(1);
    assert_eq!(
        ev,
        vec![Event::Overflow {
            contact: ContactId(2),
            from: qid("main"),
            to: qid("backup"),
            reason: OverflowReason::MaxWait
        }]
    );
    let v = s.e.contact(ContactId(2)).unwrap();
    assert_eq!(v.queue, qid("backup"));
    assert_eq!(v.entered_at, Timestamp(T0));
    // A backup operator takes it.
    let ev = s.op(profile(2, &[], &["zh"], 0, 1));
    assert_eq!(offers(&ev), vec![(2, 2)]);
}

#[test]
fn overflow_when_no_operator_could_ever_take_it_and_never_back() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("youth", 3)],
        overflow_to: Some(qid("b")),
        ..queue("a")
    }));
    s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("crisis", 3)],
        overflow_to: Some(qid("a")),
        ..queue("b")
    }));
    // Logged in, on break: counts as someone who could take "a" contacts.
    s.op(profile(1, &[("youth", 3)], &["zh"], 0, 1));
    s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Break {
            reason: BreakReason::Meal,
        },
    });
    let ev = s.enqueue(contact(1, "a", Channel::Voice, RiskLevel::None));
    assert!(!ev.iter().any(|e| matches!(e, Event::Overflow { .. })));
    // The only youth operator logs off: nobody could ever take it in "a".
    let ev = s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Offline,
    });
    assert!(ev.contains(&Event::Overflow {
        contact: ContactId(1),
        from: qid("a"),
        to: qid("b"),
        reason: OverflowReason::NoEligibleOperator
    }));
    // Nobody can take it in "b" either, but it never goes back to "a".
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Overflow { .. }))
            .count(),
        1
    );
    assert_eq!(s.e.contact(ContactId(1)).unwrap().queue, qid("b"));
    // A new contact with nobody logged in at all overflows at once.
    let ev = s.enqueue(contact(2, "a", Channel::Voice, RiskLevel::None));
    assert!(ev.contains(&Event::Overflow {
        contact: ContactId(2),
        from: qid("a"),
        to: qid("b"),
        reason: OverflowReason::NoEligibleOperator
    }));
}

#[test]
fn abandon_and_resume_within_the_window_keeps_the_place() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    s.advance(1_000);
    s.enqueue(contact(3, "general", Channel::Voice, RiskLevel::None));
    let ev = s.cmd(Command::CallerLeft {
        contact: ContactId(2),
    });
    assert!(ev.contains(&Event::Abandon {
        contact: ContactId(2),
        queue: qid("general"),
        waited_ms: 1_000
    }));
    assert_eq!(s.state(2), Some(ContactState::Abandoned));
    assert!(s.e.contacts().iter().all(|c| c.id != ContactId(2)));
    s.advance(30_000);
    let ev = s.cmd(Command::CallerReturned {
        contact: ContactId(2),
    });
    assert_eq!(
        ev,
        vec![Event::Resume {
            contact: ContactId(2)
        }]
    );
    let order: Vec<i64> =
        s.e.queue_places(s.ts(), &qid("general"))
            .iter()
            .map(|p| p.contact.0)
            .collect();
    assert_eq!(order, vec![2, 3]);
}

#[test]
fn resume_after_the_window_fails() {
    let mut s = one_queue_sim();
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.cmd(Command::CallerLeft {
        contact: ContactId(1),
    });
    s.now += 60_000; // the window has passed but the owner has not ticked yet
    assert_eq!(
        s.try_cmd(Command::CallerReturned {
            contact: ContactId(1)
        }),
        Err(EngineError::WrongState("abandoned"))
    );
    s.advance(0);
    assert!(s.e.contact(ContactId(1)).is_none());
    assert_eq!(
        s.try_cmd(Command::CallerReturned {
            contact: ContactId(1)
        }),
        Err(EngineError::UnknownContact)
    );
}

#[test]
fn caller_disconnect_grace() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    // Back within the grace period.
    let ev = s.cmd(Command::CallerDisconnected {
        contact: ContactId(1),
    });
    assert_eq!(
        ev,
        vec![Event::CallerAway {
            contact: ContactId(1)
        }]
    );
    s.advance(10_000);
    let ev = s.cmd(Command::CallerReturned {
        contact: ContactId(1),
    });
    assert_eq!(
        ev,
        vec![Event::CallerBack {
            contact: ContactId(1)
        }]
    );
    assert!(s.advance(20_000).is_empty());
    // Lost for good: the live contact ends, the waiting one is abandoned.
    s.cmd(Command::CallerDisconnected {
        contact: ContactId(1),
    });
    s.cmd(Command::CallerDisconnected {
        contact: ContactId(2),
    });
    let ev = s.advance(20_000);
    assert!(ev.contains(&Event::WrapUp {
        contact: ContactId(1),
        operator: OperatorId(1),
        by: EndedBy::CallerLost
    }));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Abandon {
            contact: ContactId(2),
            ..
        }
    )));
}

#[test]
fn operator_grace_then_requeue_first() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.op(profile(2, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    let holder1 = s.holder(1).unwrap();
    let holder2 = s.holder(2).unwrap();
    s.accept(holder1.0, 1);
    s.accept(holder2.0, 2);
    s.advance(1_000);
    s.enqueue(contact(3, "general", Channel::Voice, RiskLevel::None));
    s.advance(1_000);
    s.enqueue(contact(4, "general", Channel::Voice, RiskLevel::High));
    // Reconnect within the grace period: nothing changes.
    let ev = s.cmd(Command::OperatorDisconnected { operator: holder1 });
    assert!(ev.contains(&Event::OperatorState {
        operator: holder1,
        state: OperatorState::Away
    }));
    s.advance(10_000);
    let ev = s.cmd(Command::OperatorConnected { operator: holder1 });
    assert!(ev.contains(&Event::OperatorState {
        operator: holder1,
        state: OperatorState::Busy
    }));
    assert_eq!(s.holder(1), Some(holder1));
    // Lost for good.
    s.cmd(Command::OperatorDisconnected { operator: holder1 });
    let ev = s.advance(20_000);
    assert!(ev.contains(&Event::Requeue {
        contact: ContactId(1),
        queue: qid("general"),
        reason: RequeueReason::OperatorLost
    }));
    assert!(ev.contains(&Event::OperatorState {
        operator: holder1,
        state: OperatorState::Offline
    }));
    assert_eq!(
        s.e.queue_places(s.ts(), &qid("general"))[0].contact,
        ContactId(1)
    );
    // The other operator frees up: contact 1 is re-offered first, ahead of the high-risk one.
    s.cmd(Command::End {
        contact: ContactId(2),
        by: EndedBy::Operator,
    });
    let ev = s.cmd(Command::FinishWrapUp {
        operator: holder2,
        contact: ContactId(2),
    });
    assert_eq!(offers(&ev), vec![(1, holder2.0)]);
    let ev = s.accept(holder2.0, 1);
    // Its wait for holder 2 began at the requeue, just now (the talk before is no wait).
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Connect { waited_ms, .. } if *waited_ms == 0))
    );
}

#[test]
fn operator_going_offline_completes_wrap_ups_and_rescinds_offers() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 2, 0));
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    s.accept(1, 1);
    s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Caller,
    });
    s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(s.holder(2), Some(OperatorId(1)));
    let ev = s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Offline,
    });
    assert!(ev.contains(&Event::OfferRescinded {
        contact: ContactId(2),
        operator: OperatorId(1)
    }));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Complete {
            contact: ContactId(1),
            ..
        }
    )));
    assert_eq!(s.state(2), Some(ContactState::Waiting));
}

#[test]
fn break_keeps_contacts_but_stops_offers() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 3, 0));
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    s.accept(1, 1);
    s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Break {
            reason: BreakReason::Supervision,
        },
    });
    let ev = s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::None));
    assert!(offers(&ev).is_empty());
    assert_eq!(s.state(1), Some(ContactState::Assigned));
    let ev = s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Available,
    });
    assert_eq!(offers(&ev), vec![(2, 1)]);
}

#[test]
fn chat_goes_to_the_least_occupied_and_voice_to_the_longest_idle() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 3, 0));
    s.advance(1_000);
    s.op(profile(2, &[], &["zh"], 3, 0));
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(s.holder(1), Some(OperatorId(1)), "longest idle first");
    s.accept(1, 1);
    s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(s.holder(2), Some(OperatorId(2)), "least occupied");
    s.accept(2, 2);
    s.enqueue(contact(3, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(
        s.holder(3),
        Some(OperatorId(1)),
        "tie on load: longest idle"
    );

    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.advance(1_000);
    s.op(profile(2, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    assert_eq!(s.holder(1), Some(OperatorId(1)));
    s.accept(1, 1);
    s.advance(5_000);
    s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    s.cmd(Command::FinishWrapUp {
        operator: OperatorId(1),
        contact: ContactId(1),
    });
    s.enqueue(contact(2, "general", Channel::Voice, RiskLevel::None));
    assert_eq!(s.holder(2), Some(OperatorId(2)), "1 just finished a call");
}

#[test]
fn voice_excludes_chat() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 3, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    let ev = s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::Imminent));
    assert!(offers(&ev).is_empty());
    assert_eq!(
        s.e.operator(OperatorId(1)).unwrap().state,
        OperatorState::Busy
    );
}

#[test]
fn transfer_to_a_queue() {
    let mut s = one_queue_sim();
    s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("youth", 2)],
        ..queue("youth")
    }));
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::Medium));
    s.advance(3_000);
    s.accept(1, 1);
    s.advance(600_000);
    let ev = s.cmd(Command::Transfer {
        contact: ContactId(1),
        by: OperatorId(1),
        target: TransferTarget::Queue {
            queue: qid("youth"),
        },
    });
    assert!(ev.contains(&Event::Transfer {
        contact: ContactId(1),
        from: OperatorId(1),
        target: TransferTarget::Queue {
            queue: qid("youth")
        }
    }));
    assert!(!ev.iter().any(|e| matches!(e, Event::WrapUp { .. })));
    let v = s.e.contact(ContactId(1)).unwrap();
    assert_eq!(
        (v.queue.as_str(), v.state, v.entered_at),
        ("youth", ContactState::Waiting, Timestamp(T0))
    );
    assert!(s.e.operator(OperatorId(1)).unwrap().contacts.is_empty());
    // Its wait in the new queue began at the transfer, not when it first entered (the
    // conversation is no queue wait).
    s.advance(2_000);
    let youth = s.e.waiting_summary();
    let youth = youth
        .iter()
        .find(|w| w.queue.as_str() == "youth" && w.risk == RiskLevel::Medium)
        .unwrap();
    assert_eq!(youth.oldest_waiting_since, Some(Timestamp(T0 + 603_000)));
    let ev = s.op(profile(2, &[("youth", 3)], &["zh"], 0, 1));
    assert_eq!(offers(&ev), vec![(1, 2)]);
    let ev = s.accept(2, 1);
    assert!(ev.iter().any(
        |e| matches!(e, Event::Connect { queue, waited_ms: 2_000, .. } if queue.as_str() == "youth")
    ));
}

/// A contact requeued after its operator was lost waits again from then: the conversation before
/// is no queue wait, for the next `connect` and for the waiting summary (the oldest-wait gauge).
#[test]
fn a_requeued_contact_waits_from_the_requeue() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.advance(4_000);
    let ev = s.accept(1, 1);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Connect {
            waited_ms: 4_000,
            ..
        }
    )));
    s.advance(900_000);
    s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Offline,
    });
    s.advance(5_000);
    let none = s.e.waiting_summary();
    let none = none.iter().find(|w| w.risk == RiskLevel::None).unwrap();
    assert_eq!(none.oldest_waiting_since, Some(Timestamp(T0 + 904_000)));
    s.op(profile(2, &[], &["zh"], 0, 1));
    let ev = s.accept(2, 1);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Connect {
                waited_ms: 5_000,
                ..
            }
        )),
        "{ev:?}"
    );
}

/// A contact transferred to a queue goes to a colleague, not straight back to the operator who
/// handed it on (who has just been freed, and so would be first by idle time); when nobody else
/// can take it, it comes back to them after the one-ring cooldown, as after any decline.
#[test]
fn a_contact_transferred_to_a_queue_goes_to_someone_else_first() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::None));
    s.accept(1, 1);
    s.advance(60_000);
    s.op(profile(2, &[], &["zh"], 0, 1));
    let transfer_by = |by: i64| Command::Transfer {
        contact: ContactId(1),
        by: OperatorId(by),
        target: TransferTarget::Queue {
            queue: qid("general"),
        },
    };
    let ev = s.cmd(transfer_by(1));
    assert_eq!(
        offers(&ev),
        vec![(1, 2)],
        "a colleague, though operator 1 has been idle longer"
    );

    // Operator 2 takes it and hands it on while nobody else is free.
    s.accept(2, 1);
    s.cmd(Command::SetPresence {
        operator: OperatorId(1),
        presence: Presence::Break {
            reason: BreakReason::Meal,
        },
    });
    let ev = s.cmd(transfer_by(2));
    assert_eq!(offers(&ev), vec![], "not back at once");
    let cooldown = config().offer_timeout_ms;
    assert_eq!(offers(&s.advance(cooldown - 1)), vec![]);
    assert_eq!(
        offers(&s.advance(1)),
        vec![(1, 2)],
        "nobody else could: back after one ring"
    );
}

/// A supervisor or lead who joined a contact and lost their connection leaves it once the grace
/// period is over (they usually take no contacts, so their presence is Offline), and keeps it if
/// they are back in time; after a restart, a participant who does not reconnect leaves it too.
#[test]
fn a_participant_whose_connection_stays_lost_leaves_the_contact() {
    let grace = config().operator_grace_ms;
    let left = |ev: &[Event]| {
        ev.contains(&Event::Leave {
            contact: ContactId(1),
            participant: OperatorId(7),
        })
    };
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::High));
    s.accept(1, 1);
    s.cmd(Command::UpsertOperator(profile(7, &[], &["zh"], 0, 0)));
    s.cmd(Command::OperatorConnected {
        operator: OperatorId(7),
    });
    s.cmd(Command::Join {
        contact: ContactId(1),
        participant: OperatorId(7),
        mode: JoinMode::Barge,
    });
    let dropped = Command::OperatorDisconnected {
        operator: OperatorId(7),
    };
    // Back within the grace period: still there.
    s.cmd(dropped.clone());
    s.advance(grace - 1);
    s.cmd(Command::OperatorConnected {
        operator: OperatorId(7),
    });
    assert!(!left(&s.advance(grace)));
    // Gone for good: leaves when the grace period ends, not before.
    s.cmd(dropped);
    assert!(!left(&s.advance(grace - 1)));
    assert!(left(&s.advance(1)));
    assert_eq!(
        s.e.contact(ContactId(1)).map(|v| v.participants),
        Some(vec![])
    );
    assert_eq!(
        s.state(1),
        Some(ContactState::Assigned),
        "the operator keeps it"
    );

    // After a restart nobody is connected: a participant who does not come back leaves it.
    let mut s = one_queue_sim();
    s.cmd(Command::UpsertOperator(profile(1, &[], &["zh"], 0, 1)));
    s.cmd(Command::UpsertOperator(profile(7, &[], &["zh"], 0, 0)));
    s.e.restore(
        s.ts(),
        None,
        vec![RestoredContact {
            contact: contact(1, "general", Channel::Voice, RiskLevel::High),
            entered_at: Timestamp(T0 - 60_000),
            queued_at: Timestamp(T0 - 60_000),
            visited: Vec::new(),
            state: ContactState::Assigned,
            operator: Some(OperatorId(1)),
            connected_at: Some(Timestamp(T0 - 50_000)),
            wrapped_at: None,
            ended_at: None,
            operator_lost: false,
            participants: vec![(OperatorId(7), JoinMode::Monitor)],
        }],
    );
    s.cmd(Command::OperatorConnected {
        operator: OperatorId(1),
    });
    assert!(left(&s.advance(grace)));
    assert_eq!(s.state(1), Some(ContactState::Assigned));
}

#[test]
fn transfer_to_a_person() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(QueueConfig {
        languages: vec![lang("zh")],
        ..queue("general")
    }));
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::High));
    s.accept(1, 1);
    // A supervisor who does not even speak the queue's language: a deliberate transfer.
    s.cmd(Command::UpsertOperator(profile(9, &[], &["en"], 0, 1)));
    assert_eq!(
        s.try_cmd(Command::Transfer {
            contact: ContactId(1),
            by: OperatorId(1),
            target: TransferTarget::Operator {
                operator: OperatorId(9)
            },
        }),
        Err(EngineError::TargetUnavailable)
    );
    s.cmd(Command::OperatorConnected {
        operator: OperatorId(9),
    });
    s.cmd(Command::SetPresence {
        operator: OperatorId(9),
        presence: Presence::Available,
    });
    assert_eq!(
        s.try_cmd(Command::Transfer {
            contact: ContactId(1),
            by: OperatorId(9),
            target: TransferTarget::Operator {
                operator: OperatorId(1)
            },
        }),
        Err(EngineError::NotAssigned)
    );
    let ev = s.cmd(Command::Transfer {
        contact: ContactId(1),
        by: OperatorId(1),
        target: TransferTarget::Operator {
            operator: OperatorId(9),
        },
    });
    assert_eq!(offers(&ev), vec![(1, 9)]);
    // Declined: back in its queue at its original place; operator 1 (free again) gets it.
    let ev = s.cmd(Command::Reject {
        operator: OperatorId(9),
        contact: ContactId(1),
    });
    assert!(ev.contains(&Event::Requeue {
        contact: ContactId(1),
        queue: qid("general"),
        reason: RequeueReason::TransferNotTaken
    }));
    assert_eq!(offers(&ev), vec![(1, 1)]);
}

#[test]
fn join_and_leave() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.cmd(Command::UpsertOperator(profile(7, &[], &["zh"], 0, 0)));
    s.enqueue(contact(1, "general", Channel::Voice, RiskLevel::High));
    assert_eq!(
        s.try_cmd(Command::Join {
            contact: ContactId(1),
            participant: OperatorId(7),
            mode: JoinMode::Monitor
        }),
        Err(EngineError::WrongState("offered"))
    );
    s.accept(1, 1);
    let join = |mode| Command::Join {
        contact: ContactId(1),
        participant: OperatorId(7),
        mode,
    };
    assert_eq!(s.cmd(join(JoinMode::Monitor)).len(), 1);
    assert!(s.cmd(join(JoinMode::Monitor)).is_empty());
    s.cmd(join(JoinMode::Barge));
    let v = s.e.contact(ContactId(1)).unwrap();
    assert_eq!(v.participants, vec![(OperatorId(7), JoinMode::Barge)]);
    assert!(s.e.operator(OperatorId(7)).unwrap().contacts.is_empty());
    let ev = s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    assert_eq!(
        ev[0],
        Event::Leave {
            contact: ContactId(1),
            participant: OperatorId(7)
        }
    );
}

#[test]
fn raise_risk_rekeys_and_never_lowers() {
    let mut s = one_queue_sim();
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::High));
    let ev = s.cmd(Command::RaiseRisk {
        contact: ContactId(1),
        risk: RiskLevel::Imminent,
    });
    assert_eq!(
        ev,
        vec![Event::RiskChange {
            contact: ContactId(1),
            from: RiskLevel::None,
            to: RiskLevel::Imminent
        }]
    );
    assert!(
        s.cmd(Command::RaiseRisk {
            contact: ContactId(1),
            risk: RiskLevel::Low
        })
        .is_empty()
    );
    assert_eq!(s.e.contact(ContactId(1)).unwrap().risk, RiskLevel::Imminent);
    assert_eq!(
        s.e.queue_places(s.ts(), &qid("general"))[0].contact,
        ContactId(1)
    );
    let ev = s.op(profile(1, &[], &["zh"], 1, 0));
    assert_eq!(offers(&ev), vec![(1, 1)]);
}

#[test]
fn a_contact_at_high_risk_needs_the_crisis_skill_from_when_its_risk_rises() {
    let mut s = Sim::new(EngineConfig {
        crisis_skill: Some(skill("crisis")),
        ..config()
    });
    s.cmd(Command::UpsertQueue(queue("general")));
    // One joins at high risk, one is raised to imminent while waiting, one stays at low.
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::High));
    s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::None));
    s.enqueue(contact(3, "general", Channel::Chat, RiskLevel::None));
    s.cmd(Command::RaiseRisk {
        contact: ContactId(2),
        risk: RiskLevel::Imminent,
    });
    s.cmd(Command::RaiseRisk {
        contact: ContactId(3),
        risk: RiskLevel::Low,
    });
    // Raised to imminent it keeps its place: first in line.
    assert_eq!(
        s.e.queue_places(s.ts(), &qid("general"))[0].contact,
        ContactId(2)
    );
    // Without the crisis skill an operator gets only the low-risk one…
    let ev = s.op(profile(1, &[], &["zh"], 3, 0));
    assert_eq!(offers(&ev), vec![(3, 1)]);
    // …and one with it gets the imminent one first, then the high one.
    let ev = s.op(profile(2, &[("crisis", 1)], &["zh"], 3, 0));
    assert_eq!(offers(&ev), vec![(2, 2)]);
    let ev = s.accept(2, 2);
    assert_eq!(offers(&ev), vec![(1, 2)]);
}

#[test]
fn relaxation_never_drops_the_crisis_skill() {
    let mut s = Sim::new(EngineConfig {
        crisis_skill: Some(skill("crisis")),
        ..config()
    });
    s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("youth", 3)],
        relaxation: vec![RelaxStep {
            after_ms: 30_000,
            max_proficiency: None,
            drop_skills: true,
        }],
        ..queue("general")
    }));
    s.op(profile(1, &[], &["zh"], 2, 0));
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::High));
    s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::None));
    // Relaxed, the queue's skill is dropped for both; the crisis skill stays for the high one.
    let ev = s.advance(30_000);
    assert_eq!(offers(&ev), vec![(2, 1)], "{ev:?}");
    let ev = s.op(profile(2, &[("crisis", 1)], &["zh"], 1, 0));
    assert_eq!(offers(&ev), vec![(1, 2)]);
}

#[test]
fn refusals() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 1, 0));
    assert_eq!(
        s.try_cmd(Command::Enqueue(contact(
            1,
            "nope",
            Channel::Chat,
            RiskLevel::None
        ))),
        Err(EngineError::UnknownQueue)
    );
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(
        s.try_cmd(Command::Enqueue(contact(
            1,
            "general",
            Channel::Chat,
            RiskLevel::None
        ))),
        Err(EngineError::DuplicateContact)
    );
    assert_eq!(
        s.try_cmd(Command::Accept {
            operator: OperatorId(2),
            contact: ContactId(1)
        }),
        Err(EngineError::UnknownOperator)
    );
    assert_eq!(
        s.try_cmd(Command::Accept {
            operator: OperatorId(1),
            contact: ContactId(5)
        }),
        Err(EngineError::UnknownContact)
    );
    assert_eq!(
        s.try_cmd(Command::FinishWrapUp {
            operator: OperatorId(1),
            contact: ContactId(1)
        }),
        Err(EngineError::NotWrapping)
    );
    s.accept(1, 1);
    assert_eq!(
        s.try_cmd(Command::Accept {
            operator: OperatorId(1),
            contact: ContactId(1)
        }),
        Err(EngineError::NotOffered)
    );
    assert_eq!(
        s.try_cmd(Command::CallerReturned {
            contact: ContactId(1)
        }),
        Err(EngineError::WrongState("assigned"))
    );
    s.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    assert_eq!(
        s.try_cmd(Command::End {
            contact: ContactId(1),
            by: EndedBy::Operator
        }),
        Err(EngineError::WrongState("wrapping"))
    );
    assert_eq!(
        s.try_cmd(Command::Transfer {
            contact: ContactId(1),
            by: OperatorId(1),
            target: TransferTarget::Queue {
                queue: qid("general")
            }
        }),
        Err(EngineError::NotAssigned)
    );
}

#[test]
fn restore_after_a_restart() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("crisis", 1)],
        overflow_to: Some(qid("backup")),
        ..queue("general")
    }));
    s.cmd(Command::UpsertQueue(queue("backup")));
    s.cmd(Command::UpsertOperator(profile(
        1,
        &[("crisis", 3)],
        &["zh"],
        0,
        1,
    )));
    s.cmd(Command::UpsertOperator(profile(
        2,
        &[("crisis", 3)],
        &["zh"],
        0,
        1,
    )));
    s.now += 100_000;
    let restored = |id: i64, at: i64, state: ContactState, op: Option<i64>| RestoredContact {
        contact: contact(id, "general", Channel::Voice, RiskLevel::None),
        entered_at: Timestamp(T0 + at),
        queued_at: Timestamp(T0 + at),
        visited: Vec::new(),
        state,
        operator: op.map(OperatorId),
        connected_at: None,
        wrapped_at: None,
        ended_at: None,
        operator_lost: false,
        participants: Vec::new(),
    };
    // Left before the restart: one within the resume window, one long before it.
    let now = s.now;
    let left = |id: i64, at: i64, ago: i64| RestoredContact {
        ended_at: Some(Timestamp(now - ago)),
        ..restored(id, at, ContactState::Abandoned, None)
    };
    let ev = s.e.restore(
        s.ts(),
        None,
        vec![
            restored(10, 5_000, ContactState::Waiting, None),
            restored(11, 1_000, ContactState::Offered, None),
            // Someone had joined it; so had its own operator and an account since removed,
            // which are not put back.
            RestoredContact {
                participants: vec![
                    (OperatorId(2), JoinMode::Barge),
                    (OperatorId(1), JoinMode::Whisper),
                    (OperatorId(99), JoinMode::Monitor),
                ],
                ..restored(12, 0, ContactState::Assigned, Some(1))
            },
            restored(13, 0, ContactState::Completed, None),
            restored(14, 0, ContactState::Assigned, Some(99)),
            left(15, 3_000, 1_000),
            left(16, 3_000, 10_000_000),
            // Requeued after losing its operator before the restart: first in line again.
            RestoredContact {
                operator_lost: true,
                ..restored(17, 9_000, ContactState::Waiting, None)
            },
        ],
    );
    // Nobody is connected yet; nothing overflows during the reconnection grace period.
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Overflow { .. })),
        "{ev:?}"
    );
    assert!(ev.contains(&Event::Requeue {
        contact: ContactId(14),
        queue: qid("general"),
        reason: RequeueReason::OperatorLost
    }));
    assert!(ev.contains(&Event::OperatorState {
        operator: OperatorId(1),
        state: OperatorState::Away
    }));
    assert_eq!(s.state(12), Some(ContactState::Assigned));
    assert_eq!(
        s.e.contact(ContactId(12)).map(|v| v.participants),
        Some(vec![(OperatorId(2), JoinMode::Barge)])
    );
    assert_eq!(s.state(11), Some(ContactState::Waiting));
    assert!(s.e.contact(ContactId(13)).is_none());
    let order: Vec<i64> =
        s.e.queue_places(s.ts(), &qid("general"))
            .iter()
            .map(|p| p.contact.0)
            .collect();
    assert_eq!(order, vec![14, 17, 11, 10]);
    // The caller who left within the window is kept out of the queue, resumable; the other is gone.
    assert_eq!(s.state(15), Some(ContactState::Abandoned));
    assert!(s.e.contact(ContactId(16)).is_none());
    let ev = s.cmd(Command::CallerReturned {
        contact: ContactId(15),
    });
    assert!(ev.contains(&Event::Resume {
        contact: ContactId(15)
    }));
    let order: Vec<i64> =
        s.e.queue_places(s.ts(), &qid("general"))
            .iter()
            .map(|p| p.contact.0)
            .collect();
    assert_eq!(order, vec![14, 17, 11, 15, 10], "back in its place");
    // Operator 1 reconnects in time and keeps their contact.
    let ev = s.cmd(Command::OperatorConnected {
        operator: OperatorId(1),
    });
    assert!(ev.contains(&Event::OperatorState {
        operator: OperatorId(1),
        state: OperatorState::Busy
    }));
    // Operator 2 comes on and takes the first in line.
    let ev = s.op(profile(2, &[("crisis", 3)], &["zh"], 0, 1));
    assert_eq!(offers(&ev), vec![(14, 2)]);
}

#[test]
fn restored_operator_who_does_not_come_back_loses_the_contact_to_the_queue() {
    let mut s = one_queue_sim();
    s.cmd(Command::UpsertOperator(profile(1, &[], &["zh"], 0, 1)));
    let ev = s.e.restore(
        s.ts(),
        None,
        vec![RestoredContact {
            contact: contact(1, "general", Channel::Voice, RiskLevel::None),
            entered_at: Timestamp(T0 - 5_000),
            queued_at: Timestamp(T0 - 5_000),
            visited: Vec::new(),
            state: ContactState::Wrapping,
            operator: Some(OperatorId(1)),
            connected_at: Some(Timestamp(T0 - 4_000)),
            wrapped_at: None,
            ended_at: None,
            operator_lost: false,
            participants: Vec::new(),
        }],
    );
    assert!(ev.contains(&Event::OperatorState {
        operator: OperatorId(1),
        state: OperatorState::Away
    }));
    let ev = s.advance(20_000);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Complete {
            contact: ContactId(1),
            ..
        }
    )));
}

/// The `complete` of a contact restored in wrap-up whose operator is no longer known (their
/// account was removed), given when it was connected and when its wrap-up began, `down_ms`
/// after the wrap-up began; the server stopped `stopped_ms` into the wrap-up, if that is known.
fn restored_wrap_up_complete(
    talk_ms: i64,
    down_ms: i64,
    stopped_ms: Option<i64>,
    wrapped_at_known: bool,
) -> Event {
    let mut s = one_queue_sim();
    let wrapped = s.now - down_ms;
    let ev = s.e.restore(
        s.ts(),
        stopped_ms.map(|ms| Timestamp(wrapped + ms)),
        vec![RestoredContact {
            contact: contact(1, "general", Channel::Chat, RiskLevel::None),
            entered_at: Timestamp(wrapped - talk_ms - 5_000),
            queued_at: Timestamp(wrapped - talk_ms - 5_000),
            visited: Vec::new(),
            state: ContactState::Wrapping,
            operator: Some(OperatorId(99)),
            connected_at: Some(Timestamp(wrapped - talk_ms)),
            wrapped_at: wrapped_at_known.then_some(Timestamp(wrapped)),
            ended_at: None,
            operator_lost: false,
            participants: Vec::new(),
        }],
    );
    assert!(s.e.contact(ContactId(1)).is_none(), "completed at once");
    let completes: Vec<Event> = ev
        .into_iter()
        .filter(|e| matches!(e, Event::Complete { .. }))
        .collect();
    assert_eq!(completes.len(), 1, "{completes:?}");
    completes.into_iter().next().unwrap()
}

fn handled_ms(complete: &Event) -> i64 {
    match complete {
        Event::Complete { handled_ms, .. } => *handled_ms,
        other => panic!("not a complete: {other:?}"),
    }
}

/// A wrap-up restored without its operator counts what the log knows: the talk, and the wrap-up
/// up to the restart but never more than a wrap-up may last — exactly what the engine would have
/// recorded had it run on and ended the wrap-up at its maximum.
#[test]
fn a_wrap_up_restored_without_its_operator_keeps_its_handle_time() {
    let max = config().wrap_up_max_ms;
    // What the engine records when nobody finishes a wrap-up before its maximum.
    let mut live = one_queue_sim();
    live.op(profile(1, &[], &["zh"], 1, 0));
    live.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    live.accept(1, 1);
    live.advance(95_000);
    live.cmd(Command::End {
        contact: ContactId(1),
        by: EndedBy::Operator,
    });
    let ran_on = live.advance(max);
    let complete = ran_on
        .iter()
        .find(|e| matches!(e, Event::Complete { .. }))
        .expect("ended at its maximum");
    assert_eq!(handled_ms(complete), 95_000 + max);

    let restored = restored_wrap_up_complete(95_000, 3_600_000, None, true);
    assert_eq!(
        restored,
        Event::Complete {
            contact: ContactId(1),
            operator: OperatorId(99),
            handled_ms: 95_000 + max,
        },
        "down an hour: the wrap-up counts its maximum, not the hour"
    );
    assert_eq!(
        handled_ms(&restored_wrap_up_complete(95_000, 10_000, None, true)),
        105_000,
        "restarted within the wrap-up"
    );
    assert_eq!(
        handled_ms(&restored_wrap_up_complete(95_000, 10_000, None, false)),
        105_000,
        "without the wrap-up's time, up to the restart"
    );
}

/// Nobody writes notes through a stopped server: a wrap-up restored without its operator ends
/// when the server stopped (or at its maximum, if that came first), not at the restart.
#[test]
fn a_wrap_up_restored_without_its_operator_ends_when_the_server_stopped() {
    let max = config().wrap_up_max_ms;
    assert_eq!(
        handled_ms(&restored_wrap_up_complete(
            95_000,
            3_600_000,
            Some(10_000),
            true
        )),
        105_000,
        "stopped 10 s into the wrap-up, down an hour: 10 s of wrap-up"
    );
    assert_eq!(
        handled_ms(&restored_wrap_up_complete(
            95_000,
            3_600_000,
            Some(max + 60_000),
            true
        )),
        95_000 + max,
        "stopped after the wrap-up's maximum: its maximum"
    );
    assert_eq!(
        handled_ms(&restored_wrap_up_complete(
            95_000,
            3_600_000,
            Some(10_000),
            false
        )),
        105_000,
        "without the wrap-up's time, up to the stop"
    );
    assert_eq!(
        handled_ms(&restored_wrap_up_complete(
            95_000,
            10_000,
            Some(20_000),
            true
        )),
        105_000,
        "a stop after the restart (a clock set back) is no downtime: up to the restart"
    );
}

/// A contact held again by its operator after a restart counts the talk and wrap-up before the
/// stop and after the restart, never the time in between.
#[test]
fn a_contact_held_across_a_restart_does_not_count_the_downtime() {
    // Connected `talk_ms` before the stop (its wrap-up begun `wrapped_ms` before the stop, if
    // given), restored after `down_ms`, then ended 30 s and finished 10 s after the restart.
    let handled = |talk_ms: i64, wrapped_ms: Option<i64>, down_ms: i64, known: bool| {
        let mut s = one_queue_sim();
        s.cmd(Command::UpsertOperator(profile(1, &[], &["zh"], 1, 0)));
        let stopped = s.now - down_ms;
        s.e.restore(
            s.ts(),
            known.then_some(Timestamp(stopped)),
            vec![RestoredContact {
                contact: contact(1, "general", Channel::Chat, RiskLevel::None),
                entered_at: Timestamp(stopped - talk_ms - 5_000),
                queued_at: Timestamp(stopped - talk_ms - 5_000),
                visited: Vec::new(),
                state: if wrapped_ms.is_some() {
                    ContactState::Wrapping
                } else {
                    ContactState::Assigned
                },
                operator: Some(OperatorId(1)),
                connected_at: Some(Timestamp(stopped - talk_ms)),
                wrapped_at: wrapped_ms.map(|ms| Timestamp(stopped - ms)),
                ended_at: None,
                operator_lost: false,
                participants: Vec::new(),
            }],
        );
        s.cmd(Command::OperatorConnected {
            operator: OperatorId(1),
        });
        if wrapped_ms.is_none() {
            s.advance(30_000);
            s.cmd(Command::End {
                contact: ContactId(1),
                by: EndedBy::Operator,
            });
        }
        s.advance(10_000);
        let ev = s.cmd(Command::FinishWrapUp {
            operator: OperatorId(1),
            contact: ContactId(1),
        });
        let complete = ev
            .iter()
            .find(|e| matches!(e, Event::Complete { .. }))
            .expect("completed");
        handled_ms(complete)
    };
    assert_eq!(
        handled(100_000, None, 300_000, true),
        100_000 + 30_000 + 10_000,
        "talk before the stop and after the restart, not the 5 minutes down"
    );
    assert_eq!(
        handled(100_000, Some(5_000), 300_000, true),
        100_000 + 10_000,
        "restored in wrap-up: the wrap-up after the restart, not the 5 minutes down"
    );
    assert_eq!(
        handled(100_000, None, 0, true),
        100_000 + 30_000 + 10_000,
        "stopped just now"
    );
    assert_eq!(
        handled(100_000, None, 300_000, false),
        100_000 + 300_000 + 30_000 + 10_000,
        "when the stop is unknown, the downtime counts as before"
    );
}

/// A wrap-up held again by its operator after a restart goes on for what was left of it when the
/// server stopped, not for a fresh maximum: the downtime gave nobody time to write notes, and
/// without the restart it would have ended at its maximum.
#[test]
fn a_wrap_up_restored_with_its_operator_keeps_what_was_left_of_it() {
    let max = config().wrap_up_max_ms;
    // Wrapping up for `wrapped_ms` when the server stopped, restored 5 minutes later with the
    // operator back at once: the events of the first `ms` after the restart.
    let after_restart = |wrapped_ms: i64, known: bool, ms: i64| {
        let mut s = one_queue_sim();
        s.cmd(Command::UpsertOperator(profile(1, &[], &["zh"], 1, 0)));
        let stopped = s.now - 300_000;
        s.e.restore(
            s.ts(),
            Some(Timestamp(stopped)),
            vec![RestoredContact {
                contact: contact(1, "general", Channel::Chat, RiskLevel::None),
                entered_at: Timestamp(stopped - 130_000),
                queued_at: Timestamp(stopped - 130_000),
                visited: Vec::new(),
                state: ContactState::Wrapping,
                operator: Some(OperatorId(1)),
                connected_at: Some(Timestamp(stopped - 120_000)),
                wrapped_at: known.then_some(Timestamp(stopped - wrapped_ms)),
                ended_at: None,
                operator_lost: false,
                participants: Vec::new(),
            }],
        );
        s.cmd(Command::OperatorConnected {
            operator: OperatorId(1),
        });
        s.advance(ms)
    };
    let completed = |ev: &[Event]| {
        ev.iter()
            .find(|e| matches!(e, Event::Complete { .. }))
            .map(handled_ms)
    };
    let left = max - 10_000;
    assert_eq!(
        completed(&after_restart(10_000, true, left - 1)),
        None,
        "still wrapping up"
    );
    assert_eq!(
        completed(&after_restart(10_000, true, left)),
        Some(120_000 + left),
        "10 s of it had run: it ends {left} ms after the restart, its talk and wrap-up counted"
    );
    assert_eq!(
        completed(&after_restart(max + 5_000, true, 0)),
        Some(120_000),
        "past its maximum when the server stopped: it ends at once"
    );
    assert_eq!(
        completed(&after_restart(10_000, false, max - 1)),
        None,
        "when it began is unknown: all of it"
    );
    assert!(completed(&after_restart(10_000, false, max)).is_some());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// Whatever the talk and however long the server was down, the restored handle time is the
    /// talk plus the wrap-up up to the stop (the restart, when the stop is unknown), capped at
    /// the wrap-up maximum: never 0 for a contact that talked, never more than a wrap-up could
    /// have lasted.
    #[test]
    fn a_restored_wrap_up_counts_its_talk_and_at_most_its_maximum(
        talk_ms in 1i64..7_200_000,
        down_ms in 0i64..86_400_000,
        stopped in proptest::option::of(0.0f64..=1.0),
    ) {
        let max = config().wrap_up_max_ms;
        // When the server stopped, somewhere between the wrap-up's start and the restart.
        let stopped_ms = stopped.map(|f| (down_ms as f64 * f) as i64);
        let handled = handled_ms(&restored_wrap_up_complete(talk_ms, down_ms, stopped_ms, true));
        prop_assert_eq!(handled, talk_ms + stopped_ms.unwrap_or(down_ms).min(max));
        prop_assert!(handled >= talk_ms);
        prop_assert!(handled <= talk_ms + max);
    }
}

/// After a restart a waiting contact's stay in its queue goes on from when it began there, not
/// from when it first entered: it does not move on to the next backup queue early.
#[test]
fn restore_keeps_a_contact_in_the_queue_it_overflowed_to() {
    let queues = || {
        vec![
            QueueConfig {
                overflow_to: Some(qid("b")),
                max_wait_ms: Some(60_000),
                ..queue("a")
            },
            QueueConfig {
                overflow_to: Some(qid("c")),
                max_wait_ms: Some(60_000),
                ..queue("b")
            },
            queue("c"),
        ]
    };
    let setup = |s: &mut Sim| {
        for q in queues().into_iter().rev() {
            s.cmd(Command::UpsertQueue(q));
        }
        s.op(profile(1, &[], &["zh"], 1, 0));
        s.cmd(Command::SetPresence {
            operator: OperatorId(1),
            presence: Presence::Break {
                reason: BreakReason::Meal,
            },
        });
    };
    let mut live = Sim::new(config());
    setup(&mut live);
    live.enqueue(contact(1, "a", Channel::Chat, RiskLevel::None));
    live.advance(60_000);
    assert_eq!(live.e.contact(ContactId(1)).unwrap().queue, qid("b"));
    live.advance(10_000);
    assert_eq!(live.e.contact(ContactId(1)).unwrap().queue, qid("b"));

    let mut restarted = Sim::new(config());
    restarted.now = live.now;
    setup(&mut restarted);
    let ev = restarted.e.restore(
        restarted.ts(),
        None,
        vec![RestoredContact {
            contact: contact(1, "b", Channel::Chat, RiskLevel::None),
            entered_at: Timestamp(T0),
            queued_at: Timestamp(T0 + 60_000),
            visited: vec![qid("a")],
            state: ContactState::Waiting,
            operator: None,
            connected_at: None,
            wrapped_at: None,
            ended_at: None,
            operator_lost: false,
            participants: Vec::new(),
        }],
    );
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Overflow { .. })),
        "the restart moved it on: {ev:?}"
    );
    assert_eq!(restarted.e.contact(ContactId(1)).unwrap().queue, qid("b"));
    // And it moves on when it would have without the restart.
    let overflow = Event::Overflow {
        contact: ContactId(1),
        from: qid("b"),
        to: qid("c"),
        reason: OverflowReason::MaxWait,
    };
    for s in [&mut live, &mut restarted] {
        assert!(!s.advance(49_999).contains(&overflow));
        assert!(s.advance(1).contains(&overflow));
    }
}

/// After a restart a contact requeued after a conversation relaxes as long after its requeue as
/// it would have without the restart, not at once.
#[test]
fn restore_does_not_relax_a_requeued_contact_at_once() {
    let skilled_queue = || QueueConfig {
        required_skills: vec![req("youth", 3)],
        relaxation: vec![RelaxStep {
            after_ms: 60_000,
            max_proficiency: None,
            drop_skills: true,
        }],
        ..queue("general")
    };
    let mut live = Sim::new(config());
    live.cmd(Command::UpsertQueue(skilled_queue()));
    live.op(profile(1, &[("youth", 3)], &["zh"], 1, 0));
    live.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    live.accept(1, 1);
    live.advance(600_000);
    live.cmd(Command::OperatorDisconnected {
        operator: OperatorId(1),
    });
    live.op(profile(2, &[], &["zh"], 1, 0));
    let ev = live.advance(20_000);
    assert!(ev.contains(&Event::Requeue {
        contact: ContactId(1),
        queue: qid("general"),
        reason: RequeueReason::OperatorLost
    }));
    let requeued_at = live.now;
    assert!(offers(&ev).is_empty(), "not relaxed yet: {ev:?}");
    live.advance(1_000);
    assert_eq!(live.state(1), Some(ContactState::Waiting));

    let mut restarted = Sim::new(config());
    restarted.now = live.now;
    restarted.cmd(Command::UpsertQueue(skilled_queue()));
    restarted.cmd(Command::UpsertOperator(profile(
        1,
        &[("youth", 3)],
        &["zh"],
        1,
        0,
    )));
    restarted.op(profile(2, &[], &["zh"], 1, 0));
    let ev = restarted.e.restore(
        restarted.ts(),
        None,
        vec![RestoredContact {
            contact: contact(1, "general", Channel::Chat, RiskLevel::None),
            entered_at: Timestamp(T0),
            queued_at: Timestamp(requeued_at),
            visited: Vec::new(),
            state: ContactState::Waiting,
            operator: None,
            connected_at: Some(Timestamp(T0)),
            wrapped_at: None,
            ended_at: None,
            operator_lost: true,
            participants: Vec::new(),
        }],
    );
    assert!(
        offers(&ev).is_empty(),
        "relaxed at once by the restart, offered to an operator without the skill: {ev:?}"
    );
    // It relaxes, and goes to the operator without the skill, when it would have anyway.
    for s in [&mut live, &mut restarted] {
        assert!(offers(&s.advance(58_999)).is_empty());
        assert_eq!(offers(&s.advance(1)), vec![(1, 2)]);
    }
}

/// After a restart a contact still never overflows back into a queue it overflowed out of.
#[test]
fn restore_does_not_overflow_back_to_a_queue_it_left() {
    let setup = |s: &mut Sim| {
        s.cmd(Command::UpsertQueue(queue("a")));
        s.cmd(Command::UpsertQueue(QueueConfig {
            overflow_to: Some(qid("a")),
            max_wait_ms: Some(60_000),
            ..queue("b")
        }));
        s.cmd(Command::UpsertQueue(QueueConfig {
            overflow_to: Some(qid("b")),
            max_wait_ms: Some(60_000),
            ..queue("a")
        }));
        s.op(profile(1, &[], &["zh"], 1, 0));
        s.cmd(Command::SetPresence {
            operator: OperatorId(1),
            presence: Presence::Break {
                reason: BreakReason::Meal,
            },
        });
    };
    let mut live = Sim::new(config());
    setup(&mut live);
    live.enqueue(contact(1, "a", Channel::Chat, RiskLevel::None));
    live.advance(60_000);
    live.advance(70_000);
    assert_eq!(live.e.contact(ContactId(1)).unwrap().queue, qid("b"));

    let mut restarted = Sim::new(config());
    restarted.now = live.now;
    setup(&mut restarted);
    let ev = restarted.e.restore(
        restarted.ts(),
        None,
        vec![RestoredContact {
            contact: contact(1, "b", Channel::Chat, RiskLevel::None),
            entered_at: Timestamp(T0),
            queued_at: Timestamp(T0 + 60_000),
            visited: vec![qid("a")],
            state: ContactState::Waiting,
            operator: None,
            connected_at: None,
            wrapped_at: None,
            ended_at: None,
            operator_lost: false,
            participants: Vec::new(),
        }],
    );
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Overflow { .. })),
        "overflowed back: {ev:?}"
    );
    assert_eq!(restarted.e.contact(ContactId(1)).unwrap().queue, qid("b"));
    let ev = restarted.advance(600_000);
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Overflow { .. })),
        "overflowed back later: {ev:?}"
    );
}

#[test]
fn queue_places_estimate_and_waiting_summary() {
    let mut s = one_queue_sim();
    s.op(profile(1, &[], &["zh"], 0, 1));
    s.op(profile(2, &[], &["zh"], 0, 1));
    for id in 1..=2 {
        s.enqueue(contact(id, "general", Channel::Voice, RiskLevel::None));
        let holder = s.holder(id).unwrap();
        s.accept(holder.0, id);
    }
    s.enqueue(contact(3, "general", Channel::Voice, RiskLevel::None));
    s.enqueue(contact(4, "general", Channel::Voice, RiskLevel::High));
    s.enqueue(contact(5, "general", Channel::Chat, RiskLevel::None));
    let places = s.e.queue_places(s.ts(), &qid("general"));
    // default handle 300 s, two voice servers; nobody serves chat (counted as 1). The chat
    // caller is first of its channel: the voice callers ahead do not wait for chat slots.
    let est: Vec<(i64, u32, i64)> = places
        .iter()
        .map(|p| (p.contact.0, p.position, p.estimated_wait_ms))
        .collect();
    assert_eq!(est, vec![(4, 1, 150_000), (3, 2, 300_000), (5, 1, 300_000)]);
    let summary = s.e.waiting_summary();
    assert_eq!(summary.len(), 5);
    let none = summary.iter().find(|w| w.risk == RiskLevel::None).unwrap();
    assert_eq!(
        (none.waiting, none.oldest_waiting_since),
        (2, Some(Timestamp(T0)))
    );
    let imminent = summary
        .iter()
        .find(|w| w.risk == RiskLevel::Imminent)
        .unwrap();
    assert_eq!((imminent.waiting, imminent.oldest_waiting_since), (0, None));
    assert_eq!(s.e.queue_ids(), vec![qid("general")]);
}

#[test]
fn upsert_operator_takes_effect_at_once() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("crisis", 3)],
        ..queue("crisis")
    }));
    s.op(profile(1, &[("crisis", 2)], &["zh"], 0, 1));
    s.enqueue(contact(1, "crisis", Channel::Voice, RiskLevel::None));
    assert_eq!(s.state(1), Some(ContactState::Waiting));
    let ev = s.cmd(Command::UpsertOperator(profile(
        1,
        &[("crisis", 4)],
        &["zh"],
        0,
        1,
    )));
    assert_eq!(offers(&ev), vec![(1, 1)]);
    // Skill lapses while the offer rings: the offer is rescinded, the contact waits again.
    let ev = s.cmd(Command::UpsertOperator(profile(1, &[], &["zh"], 0, 1)));
    assert!(ev.contains(&Event::OfferRescinded {
        contact: ContactId(1),
        operator: OperatorId(1)
    }));
    assert_eq!(s.state(1), Some(ContactState::Waiting));
    assert_eq!(
        s.try_cmd(Command::Accept {
            operator: OperatorId(1),
            contact: ContactId(1)
        }),
        Err(EngineError::NotOffered)
    );
    // No decline was counted: with the skill back it rings for them again at once.
    let ev = s.cmd(Command::UpsertOperator(profile(
        1,
        &[("crisis", 3)],
        &["zh"],
        0,
        1,
    )));
    assert_eq!(offers(&ev), vec![(1, 1)]);
    // A profile change that still fits leaves the offer ringing.
    let ev = s.cmd(Command::UpsertOperator(profile(
        1,
        &[("crisis", 5)],
        &["zh", "en"],
        2,
        1,
    )));
    assert!(!ev.iter().any(|e| matches!(e, Event::OfferRescinded { .. })));
    s.accept(1, 1);
}

#[test]
fn a_ringing_offer_the_operator_no_longer_fits_is_rescinded_and_keeps_its_place() {
    let mut s = Sim::new(config());
    s.cmd(Command::UpsertQueue(queue("general")));
    s.op(profile(1, &[("youth", 2)], &["zh"], 2, 1));
    s.enqueue(contact(1, "general", Channel::Chat, RiskLevel::None));
    s.enqueue(contact(2, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(s.holder(1), Some(OperatorId(1)));
    // The queue now asks for more than operator 1 has: the ringing offer goes, and contact 1
    // is still first in line, ahead of contact 2.
    let ev = s.cmd(Command::UpsertQueue(QueueConfig {
        required_skills: vec![req("youth", 3)],
        ..queue("general")
    }));
    assert!(ev.contains(&Event::OfferRescinded {
        contact: ContactId(1),
        operator: OperatorId(1)
    }));
    assert!(offers(&ev).is_empty(), "{ev:?}");
    let ev = s.op(profile(2, &[("youth", 3)], &["zh"], 1, 0));
    assert_eq!(offers(&ev), vec![(1, 2)]);

    // A capacity lowered below what the operator holds takes back the ringing offer only.
    s.cmd(Command::UpsertQueue(queue("general")));
    assert_eq!(s.holder(2), Some(OperatorId(1)));
    s.accept(1, 2);
    s.enqueue(contact(3, "general", Channel::Chat, RiskLevel::None));
    assert_eq!(s.holder(3), Some(OperatorId(1)));
    let ev = s.cmd(Command::UpsertOperator(profile(
        1,
        &[("youth", 2)],
        &["zh"],
        1,
        1,
    )));
    assert!(ev.contains(&Event::OfferRescinded {
        contact: ContactId(3),
        operator: OperatorId(1)
    }));
    assert_eq!(s.state(2), Some(ContactState::Assigned));
    assert_eq!(s.state(3), Some(ContactState::Waiting));

    // A transfer offer to a named person keeps ringing through a profile change.
    s.accept(2, 1);
    s.op(profile(3, &[], &["zh"], 1, 0));
    assert_eq!(s.holder(3), Some(OperatorId(3)));
    s.accept(3, 3);
    s.cmd(Command::End {
        contact: ContactId(3),
        by: EndedBy::Operator,
    });
    s.cmd(Command::FinishWrapUp {
        operator: OperatorId(3),
        contact: ContactId(3),
    });
    let ev = s.cmd(Command::Transfer {
        contact: ContactId(1),
        by: OperatorId(2),
        target: TransferTarget::Operator {
            operator: OperatorId(3),
        },
    });
    assert_eq!(offers(&ev), vec![(1, 3)]);
    let ev = s.cmd(Command::UpsertOperator(profile(3, &[], &["en"], 1, 0)));
    assert!(!ev.iter().any(|e| matches!(e, Event::OfferRescinded { .. })));
    s.accept(3, 1);
}

#[test]
fn the_engine_is_deterministic() {
    let run = || {
        let mut s = one_queue_sim();
        for op in 1..=4 {
            s.op(profile(op, &[], &["zh"], 2, 1));
        }
        for id in 1..=12 {
            let ch = if id % 3 == 0 {
                Channel::Voice
            } else {
                Channel::Chat
            };
            s.enqueue(contact(
                id,
                "general",
                ch,
                RiskLevel::ALL[(id % 5) as usize],
            ));
            s.advance(700);
        }
        s.advance(40_000);
        s.log
    };
    assert_eq!(run(), run());
}
