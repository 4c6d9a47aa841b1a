//! Indices: queues, classes of contacts, operators' eligibility and room, timers, state diffs.

use super::route::Returned;
use super::*;
use crate::domain::QueueId;

/// Merged requirements of a queue and a contact's extra skills at a relaxation step.
/// Relaxation is cumulative: steps `0..=step` all apply (see the module note). The crisis
/// skill, when required, is never dropped (a proficiency cap still applies to it).
pub(crate) fn requirements(
    cfg: &QueueConfig,
    extra: &[(Skill, Proficiency)],
    step: Option<usize>,
    crisis_skill: Option<&Skill>,
) -> Vec<(Skill, Proficiency)> {
    let mut merged: BTreeMap<Skill, Proficiency> = BTreeMap::new();
    let all = cfg
        .required_skills
        .iter()
        .map(|r| (&r.skill, r.min_proficiency))
        .chain(extra.iter().map(|(s, p)| (s, *p)));
    for (skill, level) in all {
        let entry = merged.entry(skill.clone()).or_insert(level);
        *entry = (*entry).max(level);
    }
    if let Some(step) = step
        && !cfg.never_relax
        && !cfg.relaxation.is_empty()
    {
        let applied = &cfg.relaxation[..=step.min(cfg.relaxation.len() - 1)];
        if applied.iter().any(|s| s.drop_skills) {
            merged.retain(|skill, _| Some(skill) == crisis_skill);
        }
        if let Some(cap) = applied.iter().filter_map(|s| s.max_proficiency).min() {
            for level in merged.values_mut() {
                *level = (*level).min(cap);
            }
        }
    }
    merged.into_iter().collect()
}

/// The relaxation step reached after waiting `waited_ms` in a queue: the last step whose
/// `after_ms` has passed.
pub(crate) fn relax_step_at(cfg: &QueueConfig, waited_ms: i64) -> Option<usize> {
    if cfg.never_relax {
        return None;
    }
    cfg.relaxation.iter().rposition(|s| s.after_ms <= waited_ms)
}

/// Milliseconds after joining the queue at which the next step after `step` is reached.
pub(crate) fn next_relax_after(cfg: &QueueConfig, step: Option<usize>) -> Option<i64> {
    if cfg.never_relax {
        return None;
    }
    let from = step.map_or(0, |s| s + 1);
    cfg.relaxation.get(from..)?.iter().map(|s| s.after_ms).min()
}

/// The most relaxed step a queue ever reaches.
pub(crate) fn full_relax_step(cfg: &QueueConfig) -> Option<usize> {
    if cfg.never_relax || cfg.relaxation.is_empty() {
        None
    } else {
        Some(cfg.relaxation.len() - 1)
    }
}

pub(crate) fn capacity(profile: &OperatorProfile, channel: usize) -> u16 {
    u16::from(if channel == VOICE {
        profile.voice_capacity
    } else {
        profile.chat_capacity
    })
}

/// Static eligibility: channel capacity, language (the operator's and the queue's), skills.
pub(crate) fn fits(
    profile: &OperatorProfile,
    cfg: &QueueConfig,
    channel: usize,
    language: &Language,
    reqs: &[(Skill, Proficiency)],
) -> bool {
    capacity(profile, channel) > 0
        && profile.languages.contains(language)
        && (cfg.languages.is_empty() || cfg.languages.contains(language))
        && reqs
            .iter()
            .all(|(skill, min)| profile.skills.get(skill).is_some_and(|have| have >= min))
}

/// Normalised extra skills: sorted, one entry per skill at its highest level.
pub(crate) fn normalise_extra(
    extra: &[crate::routing::SkillRequirement],
) -> Vec<(Skill, Proficiency)> {
    let mut merged: BTreeMap<Skill, Proficiency> = BTreeMap::new();
    for r in extra {
        let entry = merged.entry(r.skill.clone()).or_insert(r.min_proficiency);
        *entry = (*entry).max(r.min_proficiency);
    }
    merged.into_iter().collect()
}

impl Op {
    /// Whether a contact held on the other channel keeps this one closed (voice excludes chat,
    /// and chat voice, when the operator's profile says so).
    pub(crate) fn kept_off(&self, channel: usize) -> bool {
        self.profile.voice_excludes_chat && self.used[1 - channel] > 0
    }
}

impl Engine {
    // ----- timers -----------------------------------------------------------------------

    pub(crate) fn set_ctimer(&mut self, id: ContactId, kind: CTimer, at: Option<Timestamp>) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        let slot = &mut c.deadlines[kind as usize];
        if let Some(old) = slot.take() {
            self.timers.remove(&(old, TimerRef::Contact(kind, id)));
        }
        if let Some(at) = at {
            *slot = Some(at);
            self.timers.insert((at, TimerRef::Contact(kind, id)));
        }
    }

    pub(crate) fn clear_ctimers(&mut self, id: ContactId) {
        for kind in [
            CTimer::Offer,
            CTimer::WrapUp,
            CTimer::CallerGrace,
            CTimer::ResumeEnd,
            CTimer::Relax,
            CTimer::MaxWait,
            CTimer::DeclineEnd,
        ] {
            self.set_ctimer(id, kind, None);
        }
    }

    pub(crate) fn set_grace_timer(&mut self, op: usize, at: Option<Timestamp>) {
        let id = self.ops[op].profile.id;
        if let Some(old) = self.ops[op].grace_at.take() {
            self.timers.remove(&(old, TimerRef::OperatorGrace(id)));
        }
        if let Some(at) = at {
            self.ops[op].grace_at = Some(at);
            self.timers.insert((at, TimerRef::OperatorGrace(id)));
        }
    }

    // ----- queues -------------------------------------------------------------------------

    pub(crate) fn queue_index(&self, id: &QueueId) -> Option<usize> {
        self.queue_ix.get(id).copied()
    }

    /// Adds a queue, or replaces its configuration at once: waiting contacts are re-placed
    /// (same keys) under the new requirements, relaxation steps and overflow settings.
    pub(crate) fn upsert_queue(&mut self, now: Timestamp, cfg: QueueConfig) {
        let Some(qi) = self.queue_index(&cfg.id) else {
            let qi = self.queues.len();
            self.queue_ix.insert(cfg.id.clone(), qi);
            self.queues.push(Queue {
                cfg,
                bases: Vec::new(),
                members: BTreeSet::new(),
                handle_ewma: self.config.default_handle_ms as f64,
            });
            return;
        };
        // Take the waiting contacts out of their classes.
        let mut waiting: Vec<Key> = Vec::new();
        for &b in &self.queues[qi].bases {
            for &cl in self.bases[b].classes.iter().flatten() {
                waiting.extend(std::mem::take(&mut self.classes[cl].set));
            }
        }
        for key in &waiting {
            if let Some(c) = self.contacts.get_mut(&key.id) {
                c.class = None;
            }
        }
        self.queues[qi].cfg = cfg;
        // Recompute requirements and eligibility of every class of the queue.
        let bases = self.queues[qi].bases.clone();
        for b in bases {
            let levels = self.queues[qi].cfg.relaxation.len() + 1;
            if self.bases[b].classes.len() < levels {
                self.bases[b].classes.resize(levels, None);
            }
            self.recompute_base(b);
        }
        for op in 0..self.ops.len() {
            self.rebuild_op_classes(op);
        }
        waiting.sort();
        for key in waiting {
            self.enter_waiting(now, key.id);
        }
        let ringing: Vec<ContactId> = self.queues[qi].members.iter().map(|k| k.id).collect();
        for id in ringing {
            self.rescind_if_unfit(now, id);
        }
        for op in 0..self.ops.len() {
            self.mark_dirty(op);
        }
        self.sweep_needed = true;
        self.recheck_declined = true;
    }

    /// Forgets a queue by its id. Its slot (and its empty classes) stay, so that no index held
    /// elsewhere moves; a queue created again under the same id gets a new slot.
    pub(crate) fn remove_queue(&mut self, id: &QueueId) -> Result<(), EngineError> {
        let qi = self.queue_index(id).ok_or(EngineError::UnknownQueue)?;
        let in_use = self.contacts.values().any(|c| c.queue == qi)
            || self.queue_ix.iter().any(|(other, &q)| {
                other != id && self.queues[q].cfg.overflow_to.as_ref() == Some(id)
            });
        if in_use {
            return Err(EngineError::QueueInUse);
        }
        self.queue_ix.remove(id);
        Ok(())
    }

    /// Recomputes a base's full-relaxation bits and its classes' requirements and bits.
    fn recompute_base(&mut self, b: usize) {
        let base = &self.bases[b];
        let cfg = &self.queues[base.queue].cfg;
        let crisis = self.config.crisis_skill.as_ref();
        let full = requirements(cfg, &base.extra, full_relax_step(cfg), crisis);
        let mut ever = Bits::default();
        for op in &self.ops {
            ever.set(
                op.idx,
                fits(&op.profile, cfg, base.channel, &base.language, &full),
            );
        }
        let class_ids: Vec<usize> = base.classes.iter().flatten().copied().collect();
        self.bases[b].ever = ever;
        for cl in class_ids {
            let base = &self.bases[b];
            let cfg = &self.queues[base.queue].cfg;
            let reqs = requirements(cfg, &base.extra, self.classes[cl].step, crisis);
            let mut bits = Bits::default();
            for op in &self.ops {
                bits.set(
                    op.idx,
                    fits(&op.profile, cfg, base.channel, &base.language, &reqs),
                );
            }
            self.classes[cl].reqs = reqs;
            self.classes[cl].bits = bits;
        }
    }

    /// The base of (queue, channel, language, extra skills), created on first use.
    pub(crate) fn base_for(
        &mut self,
        queue: usize,
        channel: usize,
        language: &Language,
        extra: &[(Skill, Proficiency)],
    ) -> usize {
        let key: BaseKey = (queue, channel, language.clone(), extra.to_vec());
        if let Some(&b) = self.base_ix.get(&key) {
            return b;
        }
        let b = self.bases.len();
        let levels = self.queues[queue].cfg.relaxation.len() + 1;
        self.bases.push(Base {
            queue,
            channel,
            language: language.clone(),
            extra: extra.to_vec(),
            classes: vec![None; levels],
            ever: Bits::default(),
        });
        self.base_ix.insert(key, b);
        self.queues[queue].bases.push(b);
        self.recompute_base(b);
        b
    }

    /// The class of a base at a relaxation step, created on first use.
    pub(crate) fn class_for(&mut self, b: usize, step: Option<usize>) -> usize {
        let level = step.map_or(0, |s| s + 1);
        if self.bases[b].classes.len() <= level {
            self.bases[b].classes.resize(level + 1, None);
        }
        if let Some(cl) = self.bases[b].classes[level] {
            return cl;
        }
        let base = &self.bases[b];
        let cfg = &self.queues[base.queue].cfg;
        let crisis = self.config.crisis_skill.as_ref();
        let reqs = requirements(cfg, &base.extra, step, crisis);
        let cl = self.classes.len();
        let mut bits = Bits::default();
        for op in &mut self.ops {
            let ok = fits(&op.profile, cfg, base.channel, &base.language, &reqs);
            bits.set(op.idx, ok);
            if ok {
                op.classes[base.channel].push(cl);
            }
        }
        let channel = base.channel;
        self.classes.push(Class {
            base: b,
            step,
            channel,
            reqs,
            bits,
            set: BTreeSet::new(),
        });
        self.bases[b].classes[level] = Some(cl);
        cl
    }

    /// Whether any logged-in operator could ever take contacts of this base here.
    pub(crate) fn ever_possible(&self, b: usize) -> bool {
        self.bases[b].ever.intersects(&self.logged_in)
    }

    // ----- operators ----------------------------------------------------------------------

    pub(crate) fn op_index(&self, id: OperatorId) -> Result<usize, EngineError> {
        self.op_ix
            .get(&id)
            .copied()
            .ok_or(EngineError::UnknownOperator)
    }

    /// Adds an operator (Offline, not connected) or replaces their profile at once.
    pub(crate) fn upsert_operator(&mut self, now: Timestamp, profile: OperatorProfile) {
        let op = match self.op_ix.get(&profile.id) {
            Some(&op) => {
                self.ops[op].profile = profile;
                op
            }
            None => {
                let op = self.ops.len();
                self.op_ix.insert(profile.id, op);
                self.ops.push(Op {
                    idx: op,
                    profile,
                    connected: false,
                    presence: Presence::Offline,
                    pending: None,
                    used: [0, 0],
                    wrapping: 0,
                    contacts: BTreeSet::new(),
                    idle_since: now,
                    no_answer: 0,
                    grace_at: None,
                    free_key: [None, None],
                    classes: [Vec::new(), Vec::new()],
                    declined: Vec::new(),
                    last_state: OperatorState::Offline,
                });
                op
            }
        };
        self.recompute_op_bits(op);
        self.rebuild_op_classes(op);
        if let Some(id) = self.ops[op].pending {
            self.rescind_if_unfit(now, id);
        }
        self.mark_dirty(op);
        self.sweep_needed = true;
        self.recheck_declined = true;
    }

    /// Rescinds a ringing queue offer whose operator no longer fits it after a profile or queue
    /// change: a skill removed or lapsed, a language dropped, a requirement raised, a capacity
    /// lowered below what the operator holds. The contact goes back to its place, and no decline
    /// is counted against the operator. An offer that transfers a contact to a named person is
    /// left ringing: that person was chosen, not routed to.
    fn rescind_if_unfit(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get(&id) else {
            return;
        };
        if c.state != ContactState::Offered || c.targeted {
            return;
        }
        let Some(&op) = c.operator.as_ref().and_then(|o| self.op_ix.get(o)) else {
            return;
        };
        let (base, step, channel) = (c.base, c.relax_step, ch_ix(c.channel));
        // The class it waited in, whose eligible operators the change has just recomputed.
        let class = self.class_for(base, step);
        let o = &self.ops[op];
        let holds = self.classes[class].bits.get(op)
            && o.used[channel] <= capacity(&o.profile, channel)
            && !o.kept_off(channel);
        if !holds {
            self.return_offer(now, id, Returned::Rescind);
        }
    }

    fn recompute_op_bits(&mut self, op: usize) {
        let profile = &self.ops[op].profile;
        let crisis = self.config.crisis_skill.as_ref();
        for base in &mut self.bases {
            let cfg = &self.queues[base.queue].cfg;
            let full = requirements(cfg, &base.extra, full_relax_step(cfg), crisis);
            base.ever
                .set(op, fits(profile, cfg, base.channel, &base.language, &full));
        }
        for class in &mut self.classes {
            let base = &self.bases[class.base];
            let cfg = &self.queues[base.queue].cfg;
            class.bits.set(
                op,
                fits(profile, cfg, base.channel, &base.language, &class.reqs),
            );
        }
    }

    fn rebuild_op_classes(&mut self, op: usize) {
        let mut lists = [Vec::new(), Vec::new()];
        for (cl, class) in self.classes.iter().enumerate() {
            if class.bits.get(op) {
                lists[class.channel].push(cl);
            }
        }
        self.ops[op].classes = lists;
    }

    /// Whether the operator could take a new offer on this channel now.
    pub(crate) fn has_room(&self, op: usize, channel: usize) -> bool {
        let o = &self.ops[op];
        o.connected
            && o.presence == Presence::Available
            && o.pending.is_none()
            && o.used[channel] < capacity(&o.profile, channel)
            && !o.kept_off(channel)
    }

    /// Whether some slot is free, ignoring a ringing offer (for the Busy/WrapUp states).
    fn has_free_slot(&self, op: usize) -> bool {
        let o = &self.ops[op];
        (0..2).any(|ch| o.used[ch] < capacity(&o.profile, ch) && !o.kept_off(ch))
    }

    /// Brings the room index and logged-in bit up to date after any change to an operator,
    /// and schedules a state diff. Does not mark the operator for routing.
    pub(crate) fn refresh_op(&mut self, op: usize) {
        for ch in [CHAT, VOICE] {
            let key = self.has_room(op, ch).then(|| {
                let o = &self.ops[op];
                let occupancy = if ch == CHAT {
                    u8::try_from(o.used[CHAT]).unwrap_or(u8::MAX)
                } else {
                    0
                };
                (occupancy, o.idle_since, o.profile.id, op as u32)
            });
            let old = self.ops[op].free_key[ch];
            if old != key {
                if let Some(old) = old {
                    self.free[ch].remove(&old);
                }
                if let Some(new) = key {
                    self.free[ch].insert(new);
                }
                self.free_bits[ch].set(op, key.is_some());
                self.ops[op].free_key[ch] = key;
            }
        }
        let o = &self.ops[op];
        let logged_in = o.presence != Presence::Offline;
        let available = o.connected && o.presence == Presence::Available;
        self.logged_in.set(op, logged_in);
        if self.available.get(op) && !available {
            // Someone others were waiting for is gone: declined contacts may go back.
            self.recheck_declined = true;
        }
        self.available.set(op, available);
        self.state_dirty.push(op);
    }

    /// Refresh, and look for work for this operator in the next routing pass.
    pub(crate) fn mark_dirty(&mut self, op: usize) {
        self.refresh_op(op);
        self.dirty_ops.push(op);
    }

    pub(crate) fn derived_state(&self, op: usize) -> OperatorState {
        let o = &self.ops[op];
        match o.presence {
            Presence::Offline => OperatorState::Offline,
            _ if !o.connected => OperatorState::Away,
            Presence::Break { reason } => OperatorState::Break { reason },
            Presence::Available => {
                if self.has_free_slot(op) {
                    OperatorState::Available
                } else if o.wrapping > 0 {
                    OperatorState::WrapUp
                } else {
                    OperatorState::Busy
                }
            }
        }
    }

    /// Emits an `OperatorState` event for every operator whose derived state changed.
    pub(crate) fn flush_states(&mut self) {
        let mut dirty = std::mem::take(&mut self.state_dirty);
        dirty.sort_by_key(|&op| self.ops[op].profile.id);
        dirty.dedup();
        for op in dirty {
            let state = self.derived_state(op);
            if state != self.ops[op].last_state {
                self.ops[op].last_state = state;
                self.out.push(Event::OperatorState {
                    operator: self.ops[op].profile.id,
                    state,
                });
            }
        }
    }
}
