//! The engine's state and decisions. See the module note in `routing/mod.rs`.
//!
//! # Model
//! - **Contacts** live in a map by id. A *waiting* contact also sits in exactly one *class*:
//!   the contacts of one queue that share channel, language, extra skills and relaxation step,
//!   and therefore exactly the same eligible operators. A class keeps its contacts in a
//!   `BTreeSet` ordered by the priority key `(tier, effective_since, id)`; every queue also keeps
//!   its waiting and offered contacts in one such set (`members`) for positions and wallboards.
//! - **Operators** live in a vector (a dense index per operator); each class holds a bitset of
//!   the operators statically eligible for it (languages, skills after relaxation, channel
//!   capacity), and each operator the list of classes it is eligible for. Operators that could
//!   take a new offer right now ("room") are indexed per channel in the routing strategy's order:
//!   voice by longest idle, chat by fewest used chat slots, then longest idle, then id.
//! - **Deadlines** are one ordered set of `(time, timer)`; each contact or operator remembers its
//!   own timers, so a timer is removed as soon as it is no longer wanted and never fires stale.
//!
//! # Routing
//! After every `handle`, `tick` and `restore` the engine routes until this holds: *no waiting
//! contact has an eligible operator with room*. Only what changed is looked at: operators that
//! gained room or eligibility ("dirty operators") and contacts that started waiting or became
//! eligible for more operators ("dirty contacts").
//! 1. Each dirty operator (longest idle first) takes the best-keyed waiting contact among the
//!    classes it is eligible for. No other operator with room can be eligible for that contact
//!    (the invariant held before the call), except operators freed in the same call.
//! 2. Each dirty contact, best key first, goes to the best operator with room by the channel's
//!    strategy, found by walking the room index and testing the class's eligibility bit.
//!
//! Each decision costs O(classes the operator is eligible for) or O(operators with room on that
//! channel skipped as ineligible), never a scan of all waiting contacts.
//!
//! # Policy choices (where the brief was silent)
//! - **Declines.** An operator who rejects or misses an offer is not offered *that* contact
//!   again during its current stay in the queue while any other operator who is connected,
//!   Available (busy or not) and eligible for it has not declined it too — it waits for them.
//!   When nobody else could take it, it comes back to those who declined it once a one-ring
//!   cooldown (`offer_timeout_ms`) since their decline has passed: on a crisis line a contact must
//!   never be stranded because the only person who can take it missed one ring. (`max_no_answer`
//!   puts operators who keep missing on break.) An operator who transfers a contact to a queue
//!   has declined it for its stay there. Declines are forgotten when the contact is connected,
//!   abandoned, overflows, is transferred to a queue (all but the transferring operator's) or
//!   requeued after its operator was lost.
//! - **Relaxation** is measured from when the contact joined its *current* queue (enqueue,
//!   overflow, transfer, requeue) and is cumulative: at step *s* the lowest `max_proficiency`
//!   of steps `0..=s` caps every requirement and any `drop_skills` among them drops them all, so
//!   relaxation never tightens. Languages are never relaxed. `max_wait_ms` is measured from the
//!   same moment. A Relax event is emitted each time a waiting contact reaches a higher step.
//! - **Time only moves in `tick`.** `handle` applies its command at `now` but fires no deadline
//!   (an `Err` must change nothing); the owner calls `tick` when `next_deadline()` is due. An
//!   offer accepted after its expiry but before the tick that expires it is still accepted.
//! - **NoEligibleOperator overflow** looks at operators whose presence is not Offline (on break or
//!   in their grace period count), ignoring capacity and declines, with full relaxation. It is
//!   checked when a contact starts waiting in a queue and again whenever an operator goes offline
//!   or a profile or queue changes. After `restore` it is suspended for `operator_grace_ms` so
//!   the floor can reconnect before anything is moved away.
//! - **Break** stops new offers and rescinds a ringing offer; contacts already held are kept.
//!   **Offline** (chosen, or after the grace period) rescinds the ringing offer, requeues live
//!   contacts first in line (`RequeueReason::OperatorLost`, tier 1) and completes wrap-ups.
//! - **Profile and queue changes** apply to ringing offers too: an operator who no longer fits
//!   a contact offered from a queue (a skill removed or lapsed, a language dropped, a queue's
//!   requirement raised, a capacity lowered below what they hold) has the offer rescinded, and
//!   the contact goes back to its place with no decline counted. A transfer offer to a named
//!   person keeps ringing. A rise in risk does not rescind: the contact is not kept waiting for
//!   a crisis-skilled operator while someone is about to answer.
//! - **Idle time** (`idle_since`) restarts when an operator's last contact (offer, live or wrap-up)
//!   goes, and when they become Available.
//! - **Connections.** A new operator is Offline and not connected. `OperatorConnected` never
//!   changes presence (the console then sends `SetPresence`). A disconnected operator is Away,
//!   keeping presence and contacts, for `operator_grace_ms`; their ringing offer is rescinded at
//!   once. Reconnecting in time resumes as before; after that they are Offline (see above).
//! - **Participants** must be known operators (supervisors and crisis leads are upserted like
//!   anyone else, with zero capacity if they take no contacts); the contact's own operator cannot
//!   join it (`TargetUnavailable`). Participants leave (a `Leave` event each) when the contact
//!   ends, is transferred or is requeued, and when their own connection stays lost for
//!   `operator_grace_ms` (whatever their presence; also after a restart).
//! - **Abandoned** contacts are kept, outside every queue, until their resume window ends; a
//!   resumed contact keeps its key, its stay and its relaxation. `contact()` shows them,
//!   `contacts()` does not.
//! - **Risk** can be raised on any live contact; only a waiting or offered contact's place
//!   changes, a live contact's new key matters if it is ever requeued.
//! - Idempotent no-ops return `Ok(vec![])`: raising risk to a level not above the current one,
//!   a second disconnect/connect, `CallerLeft` or `CallerDisconnected` on a contact in wrap-up or
//!   abandoned, `Leave` by someone not in the contact, `Join` again with the same mode.

mod index;
mod lifecycle;
mod route;
mod views;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::{
    Command, ContactState, EngineConfig, EngineError, Event, OperatorProfile, OperatorState,
    QueueConfig, RestoredContact,
};
use crate::domain::{
    Channel, ContactId, JoinMode, Language, OperatorId, Presence, Proficiency, Skill, Timestamp,
    Topic,
};

pub(crate) const CHAT: usize = 0;
pub(crate) const VOICE: usize = 1;

pub(crate) fn ch_ix(channel: Channel) -> usize {
    match channel {
        Channel::Chat => CHAT,
        Channel::Voice => VOICE,
    }
}

/// Priority key: ascending is better. `tier` 0 = imminent, 1 = requeued after its operator was
/// lost, 2 = everyone else; `since` = entered_at − risk bonus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub tier: u8,
    pub since: i64,
    pub id: ContactId,
}

/// A contact's timers; the discriminant indexes `Contact::deadlines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum CTimer {
    Offer = 0,
    WrapUp = 1,
    CallerGrace = 2,
    ResumeEnd = 3,
    Relax = 4,
    MaxWait = 5,
    DeclineEnd = 6,
}
pub(crate) const CTIMERS: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerRef {
    Contact(CTimer, ContactId),
    OperatorGrace(OperatorId),
    OverflowResume,
}

/// An operator who rejected or missed a contact during its current stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decline {
    pub operator: OperatorId,
    /// End of the one-ring cooldown.
    pub until: Timestamp,
    /// The cooldown has not been fired by `tick` yet.
    pub cooling: bool,
}

/// Entry of the per-channel index of operators with room:
/// (used chat slots or 0 for voice, idle since, id, dense index).
pub(crate) type FreeKey = (u8, Timestamp, OperatorId, u32);

/// A fast, deterministic hasher for integer ids (no random state: the engine is replayable).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u64(&mut self, n: u64) {
        self.write_i64(n as i64);
    }
}

pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A small fixed-width bitset over operators' dense indices.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub fn set(&mut self, i: usize, on: bool) {
        let w = i / 64;
        if on {
            if self.0.len() <= w {
                self.0.resize(w + 1, 0);
            }
            self.0[w] |= 1 << (i % 64);
        } else if let Some(word) = self.0.get_mut(w) {
            *word &= !(1 << (i % 64));
        }
    }
    pub fn intersects(&self, other: &Bits) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }
    /// Indices set in both, ascending.
    pub fn common<'a>(&'a self, other: &'a Bits) -> impl Iterator<Item = usize> + 'a {
        self.0
            .iter()
            .zip(&other.0)
            .enumerate()
            .flat_map(|(w, (a, b))| {
                let mut m = a & b;
                std::iter::from_fn(move || {
                    (m != 0).then(|| {
                        let bit = m.trailing_zeros() as usize;
                        m &= m - 1;
                        w * 64 + bit
                    })
                })
            })
    }
}

pub(crate) struct Queue {
    pub cfg: QueueConfig,
    pub bases: Vec<usize>,
    /// Waiting and offered contacts (not targeted transfer offers), in routing order.
    pub members: BTreeSet<Key>,
    /// Exponentially weighted mean handle time (talk + wrap-up) in ms.
    pub handle_ewma: f64,
}

/// (queue, channel, language, extra skills): contacts with the same static requirements.
pub(crate) type BaseKey = (usize, usize, Language, Vec<(Skill, Proficiency)>);

pub(crate) struct Base {
    pub queue: usize,
    pub channel: usize,
    pub language: Language,
    pub extra: Vec<(Skill, Proficiency)>,
    /// Class per relaxation level: index 0 = not relaxed, `s + 1` = relaxation step `s`.
    pub classes: Vec<Option<usize>>,
    /// Operators eligible with full relaxation (for NoEligibleOperator overflow).
    pub ever: Bits,
}

pub(crate) struct Class {
    pub base: usize,
    pub step: Option<usize>,
    pub channel: usize,
    pub reqs: Vec<(Skill, Proficiency)>,
    pub bits: Bits,
    pub set: BTreeSet<Key>,
}

pub(crate) struct Op {
    pub idx: usize,
    pub profile: OperatorProfile,
    pub connected: bool,
    pub presence: Presence,
    /// The one offer ringing for this operator, if any.
    pub pending: Option<ContactId>,
    /// Slots used per channel (offers + live + wrap-up).
    pub used: [u16; 2],
    pub wrapping: u16,
    pub contacts: BTreeSet<ContactId>,
    pub idle_since: Timestamp,
    pub no_answer: u32,
    pub grace_at: Option<Timestamp>,
    pub free_key: [Option<FreeKey>; 2],
    pub classes: [Vec<usize>; 2],
    /// Contacts this operator declined during their current stay (see the module note).
    pub declined: Vec<ContactId>,
    pub last_state: OperatorState,
}

pub(crate) struct Contact {
    pub id: ContactId,
    pub queue: usize,
    pub channel: Channel,
    pub language: Language,
    pub topic: Option<Topic>,
    pub extra: Vec<(Skill, Proficiency)>,
    pub risk: crate::domain::RiskLevel,
    pub state: ContactState,
    pub entered_at: Timestamp,
    /// When its current wait for an operator began: `entered_at`, or when its last operator let
    /// it go (a transfer, a requeue). Overflows and a resume do not start a new wait.
    pub waiting_since: Timestamp,
    /// When it joined its current queue (relaxation and max wait count from here).
    pub queued_at: Timestamp,
    /// Requeued after its operator was lost: tier 1.
    pub lost: bool,
    pub key: Key,
    pub base: usize,
    /// The class whose set holds it, while waiting.
    pub class: Option<usize>,
    pub relax_step: Option<usize>,
    pub in_members: bool,
    pub operator: Option<OperatorId>,
    /// The current offer is a transfer to a named person.
    pub targeted: bool,
    pub connected_at: Timestamp,
    pub participants: Vec<(OperatorId, JoinMode)>,
    pub caller_away: bool,
    /// Queues it overflowed out of; it never overflows back into them.
    pub visited: Vec<usize>,
    /// Operators who declined it during this stay in its queue.
    pub declined: Vec<Decline>,
    pub deadlines: [Option<Timestamp>; CTIMERS],
}

/// The routing engine. Owned by one task; never shared. Deterministic: the same calls with the
/// same arguments always produce the same events.
pub struct Engine {
    config: EngineConfig,
    queues: Vec<Queue>,
    queue_ix: BTreeMap<crate::domain::QueueId, usize>,
    bases: Vec<Base>,
    base_ix: BTreeMap<BaseKey, usize>,
    classes: Vec<Class>,
    ops: Vec<Op>,
    op_ix: IdMap<OperatorId, usize>,
    contacts: IdMap<ContactId, Contact>,
    /// Operators with room, per channel, in strategy order.
    free: [BTreeSet<FreeKey>; 2],
    /// The same operators as bitsets, to skip a scan when none of them is eligible.
    free_bits: [Bits; 2],
    /// Operators whose presence is not Offline.
    logged_in: Bits,
    /// Operators connected with presence Available (busy or not).
    available: Bits,
    /// Waiting or offered contacts with at least one decline in their current stay.
    declined_contacts: BTreeSet<ContactId>,
    /// Availability fell or eligibility changed: declined contacts must be routed again.
    recheck_declined: bool,
    timers: BTreeSet<(Timestamp, TimerRef)>,
    overflow_suspended_until: Option<Timestamp>,
    sweep_needed: bool,
    dirty_ops: Vec<usize>,
    dirty_contacts: Vec<ContactId>,
    state_dirty: Vec<usize>,
    out: Vec<Event>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            config,
            queues: Vec::new(),
            queue_ix: BTreeMap::new(),
            bases: Vec::new(),
            base_ix: BTreeMap::new(),
            classes: Vec::new(),
            ops: Vec::new(),
            op_ix: IdMap::default(),
            contacts: IdMap::default(),
            free: [BTreeSet::new(), BTreeSet::new()],
            free_bits: [Bits::default(), Bits::default()],
            logged_in: Bits::default(),
            available: Bits::default(),
            declined_contacts: BTreeSet::new(),
            recheck_declined: false,
            timers: BTreeSet::new(),
            overflow_suspended_until: None,
            sweep_needed: false,
            dirty_ops: Vec::new(),
            dirty_contacts: Vec::new(),
            state_dirty: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Apply one command at time `now`, then route. Err changes nothing.
    ///
    /// Deadlines due at or before `now` are *not* fired here: call [`Engine::tick`] first when
    /// [`Engine::next_deadline`] is due.
    pub fn handle(&mut self, now: Timestamp, cmd: Command) -> Result<Vec<Event>, EngineError> {
        debug_assert!(self.out.is_empty());
        let result = match cmd {
            Command::UpsertQueue(cfg) => {
                self.upsert_queue(now, cfg);
                Ok(())
            }
            Command::RemoveQueue { queue } => self.remove_queue(&queue),
            Command::UpsertOperator(profile) => {
                self.upsert_operator(now, profile);
                Ok(())
            }
            Command::OperatorConnected { operator } => self.operator_connected(now, operator),
            Command::OperatorDisconnected { operator } => self.operator_disconnected(now, operator),
            Command::SetPresence { operator, presence } => {
                self.set_presence(now, operator, presence)
            }
            Command::Enqueue(contact) => self.enqueue(now, contact),
            Command::RaiseRisk { contact, risk } => self.raise_risk(now, contact, risk),
            Command::Accept { operator, contact } => self.accept(now, operator, contact),
            Command::Reject { operator, contact } => self.reject(now, operator, contact),
            Command::End { contact, by } => self.end(now, contact, by),
            Command::FinishWrapUp { operator, contact } => {
                self.finish_wrap_up(now, operator, contact)
            }
            Command::CallerLeft { contact } => self.caller_left(now, contact),
            Command::CallerDisconnected { contact } => self.caller_disconnected(now, contact),
            Command::CallerReturned { contact } => self.caller_returned(now, contact),
            Command::Transfer {
                contact,
                by,
                target,
            } => self.transfer(now, contact, by, target),
            Command::Join {
                contact,
                participant,
                mode,
            } => self.join(contact, participant, mode),
            Command::Leave {
                contact,
                participant,
            } => self.leave(contact, participant),
            Command::LeaveAll { participant } => {
                // Someone the engine does not know has joined nothing.
                self.leave_all(participant);
                Ok(())
            }
        };
        match result {
            Ok(()) => Ok(self.finish(now)),
            Err(e) => {
                debug_assert!(self.out.is_empty(), "a refused command emitted events");
                self.out.clear();
                Err(e)
            }
        }
    }

    /// Fire every deadline due at `now` (offer timeouts, wrap-up max, operator/caller grace,
    /// resume-window expiry, relaxation steps, max-wait overflow, decline cooldowns), then route.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, timer));
            self.fire(now, at, timer);
        }
        self.finish(now)
    }

    /// The earliest time `tick` has something to do, so the owner task can sleep until then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// After a restart, before any routing: put back non-terminal contacts.
    ///
    /// - Waiting and offered contacts wait again with their original `entered_at` (their
    ///   place); relaxation and max wait count from `queued_at`, the start of their current
    ///   stay in their queue, and they never overflow back into a queue in `visited`, exactly
    ///   as without the restart.
    /// - Assigned and wrapping contacts go back to their operator, whose connection is
    ///   considered lost as of `now`: the grace period starts (a restored operator who was
    ///   Offline is taken as Available, so that reconnecting resumes work). Handle time counts
    ///   from `connected_at` (from `now` if it is unknown) but not the time the server was
    ///   down: `down_since` is when it stopped (its last durable activity), and `connected_at`
    ///   moves forward by `now − down_since`, never past `now`. A wrap-up goes on for what
    ///   was left of its `wrap_up_max_ms` when the server stopped (ended at once if nothing
    ///   was). An assigned contact whose operator is unknown is requeued first in line; a
    ///   wrap-up whose operator is unknown is completed, with its talk and its wrap-up
    ///   up to when the server stopped, at most `wrap_up_max_ms` of it, as its handle time
    ///   (from `connected_at` and `wrapped_at`). With `down_since` unknown (`None`) the downtime
    ///   counts as handle time, up to `now`; one after `now` (clock skew) means no downtime.
    /// - A contact whose queue is no longer configured gets an unrestricted queue of that id,
    ///   so that it is never lost.
    /// - Terminal contacts and duplicate ids are ignored.
    /// - NoEligibleOperator overflow is suspended for `operator_grace_ms` (operators have not
    ///   reconnected yet).
    pub fn restore(
        &mut self,
        now: Timestamp,
        down_since: Option<Timestamp>,
        contacts: Vec<RestoredContact>,
    ) -> Vec<Event> {
        self.restore_contacts(now, down_since, contacts);
        self.finish(now)
    }

    /// Route, emit operator state changes, hand out the events.
    fn finish(&mut self, now: Timestamp) -> Vec<Event> {
        self.route(now);
        self.flush_states();
        std::mem::take(&mut self.out)
    }
}
