//! Routing decisions, waiting in a queue (relaxation, overflow), and deadlines.

use super::index::{next_relax_after, relax_step_at};
use super::*;
use crate::routing::{EndedBy, OverflowReason};

impl Engine {
    /// Routes until no waiting contact has an eligible operator with room (see the module note).
    pub(crate) fn route(&mut self, now: Timestamp) {
        if self.sweep_needed && self.overflow_suspended_until.is_none_or(|t| now >= t) {
            self.sweep_needed = false;
            self.sweep_no_eligible(now);
        }
        if std::mem::take(&mut self.recheck_declined) {
            let waiting: Vec<ContactId> = self
                .declined_contacts
                .iter()
                .copied()
                .filter(|id| {
                    self.contacts
                        .get(id)
                        .is_some_and(|c| c.state == ContactState::Waiting)
                })
                .collect();
            self.dirty_contacts.extend(waiting);
        }
        loop {
            if !self.dirty_ops.is_empty() {
                let mut ops = std::mem::take(&mut self.dirty_ops);
                ops.sort_by_key(|&op| (self.ops[op].idle_since, self.ops[op].profile.id));
                ops.dedup();
                for op in ops {
                    self.route_operator(now, op);
                }
                continue;
            }
            if !self.dirty_contacts.is_empty() {
                let ids = std::mem::take(&mut self.dirty_contacts);
                let mut keys: Vec<Key> = ids
                    .iter()
                    .filter_map(|id| self.contacts.get(id))
                    .filter(|c| c.state == ContactState::Waiting)
                    .map(|c| c.key)
                    .collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    self.route_contact(now, key.id);
                }
                continue;
            }
            break;
        }
    }

    /// A freed (or newly eligible) operator takes the best waiting contact it is eligible for.
    fn route_operator(&mut self, now: Timestamp, op: usize) {
        let room = [self.has_room(op, CHAT), self.has_room(op, VOICE)];
        if !room[CHAT] && !room[VOICE] {
            return;
        }
        let o = &self.ops[op];
        let operator = o.profile.id;
        let mut best: Option<Key> = None;
        for ch in [CHAT, VOICE] {
            if !room[ch] {
                continue;
            }
            for &cl in &o.classes[ch] {
                let head = self.classes[cl].set.iter().find(|k| {
                    !o.declined.contains(&k.id)
                        || self
                            .contacts
                            .get(&k.id)
                            .is_some_and(|c| !self.blocked(c, operator))
                });
                if let Some(&k) = head
                    && best.is_none_or(|b| k < b)
                {
                    best = Some(k);
                }
            }
        }
        if let Some(key) = best {
            self.offer(now, key.id, op, false);
        }
    }

    /// A contact that (re)started waiting goes to the best eligible operator with room.
    fn route_contact(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get(&id) else {
            return;
        };
        let Some(cl) = c.class else {
            return;
        };
        let class = &self.classes[cl];
        if !class.bits.intersects(&self.free_bits[class.channel]) {
            return;
        }
        let mut others: Option<bool> = None;
        let found = self.free[class.channel]
            .iter()
            .map(|&(_, _, _, op)| op as usize)
            .find(|&op| {
                if !class.bits.get(op) {
                    return false;
                }
                let id = self.ops[op].profile.id;
                match c.declined.iter().find(|d| d.operator == id) {
                    None => true,
                    Some(d) if d.cooling => false,
                    Some(_) => !*others.get_or_insert_with(|| self.others_available(c)),
                }
            });
        if let Some(op) = found {
            self.offer(now, id, op, false);
        }
    }

    /// Offers a waiting contact (or, `targeted`, a contact being transferred) to an operator.
    pub(crate) fn offer(&mut self, now: Timestamp, id: ContactId, op: usize, targeted: bool) {
        let operator = self.ops[op].profile.id;
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        if let Some(cl) = c.class.take() {
            self.classes[cl].set.remove(&c.key);
        }
        c.state = ContactState::Offered;
        c.operator = Some(operator);
        c.targeted = targeted;
        let ch = ch_ix(c.channel);
        let o = &mut self.ops[op];
        o.pending = Some(id);
        o.used[ch] += 1;
        o.contacts.insert(id);
        self.refresh_op(op);
        let expires_at = now.plus_ms(self.config.offer_timeout_ms);
        self.set_ctimer(id, CTimer::Relax, None);
        self.set_ctimer(id, CTimer::MaxWait, None);
        self.set_ctimer(id, CTimer::Offer, Some(expires_at));
        self.out.push(Event::Offer {
            contact: id,
            operator,
            expires_at,
        });
    }

    /// A contact in state Waiting, in its queue's `members`, but in no class: place it.
    /// Overflows first when due, then finds its relaxation step and class, arms its deadlines
    /// and marks it for routing.
    pub(crate) fn enter_waiting(&mut self, now: Timestamp, id: ContactId) {
        while let Some((to, reason)) = self.overflow_due(now, id) {
            self.overflow(now, id, to, reason);
        }
        let Some(c) = self.contacts.get(&id) else {
            return;
        };
        let cfg = &self.queues[c.queue].cfg;
        let step = relax_step_at(cfg, now.since(c.queued_at));
        let relax_at = next_relax_after(cfg, step).map(|after| c.queued_at.plus_ms(after));
        // In the future: were it due, `overflow_due` would have moved the contact.
        let max_wait_at = match cfg.max_wait_ms {
            Some(max) if self.overflow_target(c).is_some() => Some(c.queued_at.plus_ms(max)),
            _ => None,
        };
        let (base, key, previous) = (c.base, c.key, c.relax_step);
        if step > previous
            && let Some(s) = step
        {
            self.out.push(Event::Relax {
                contact: id,
                step: s,
            });
        }
        if let Some(c) = self.contacts.get_mut(&id) {
            c.state = ContactState::Waiting;
            c.relax_step = step;
        }
        let cl = self.class_for(base, step);
        self.classes[cl].set.insert(key);
        if let Some(c) = self.contacts.get_mut(&id) {
            c.class = Some(cl);
        }
        self.set_ctimer(id, CTimer::Relax, relax_at);
        self.set_ctimer(id, CTimer::MaxWait, max_wait_at);
        self.dirty_contacts.push(id);
    }

    /// Takes a waiting contact out of its class and places it again (after a deadline or a
    /// configuration change).
    pub(crate) fn reenter(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        if c.state != ContactState::Waiting {
            return;
        }
        if let Some(cl) = c.class.take() {
            self.classes[cl].set.remove(&c.key);
        }
        self.enter_waiting(now, id);
    }

    /// The backup queue this contact may still overflow to: configured, known, not its own
    /// queue and not a queue it already overflowed out of.
    fn overflow_target(&self, c: &Contact) -> Option<usize> {
        let cfg = &self.queues[c.queue].cfg;
        let to = self.queue_index(cfg.overflow_to.as_ref()?)?;
        (to != c.queue && !c.visited.contains(&to)).then_some(to)
    }

    /// The queue this contact should overflow to now, and why.
    fn overflow_due(&self, now: Timestamp, id: ContactId) -> Option<(usize, OverflowReason)> {
        let c = self.contacts.get(&id)?;
        let cfg = &self.queues[c.queue].cfg;
        let to = self.overflow_target(c)?;
        if cfg
            .max_wait_ms
            .is_some_and(|max| now.since(c.queued_at) >= max)
        {
            return Some((to, OverflowReason::MaxWait));
        }
        let checking = self.overflow_suspended_until.is_none_or(|t| now >= t);
        if checking && !self.ever_possible(c.base) {
            return Some((to, OverflowReason::NoEligibleOperator));
        }
        None
    }

    /// Moves a waiting contact (in no class) to another queue, keeping its key.
    fn overflow(&mut self, now: Timestamp, id: ContactId, to: usize, reason: OverflowReason) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        let from = c.queue;
        self.out.push(Event::Overflow {
            contact: id,
            from: self.queues[from].cfg.id.clone(),
            to: self.queues[to].cfg.id.clone(),
            reason,
        });
        c.visited.push(from);
        self.move_to_queue(now, id, to);
    }

    /// Puts a contact (not in any class) in another queue's members, starting a new stay there.
    pub(crate) fn move_to_queue(&mut self, now: Timestamp, id: ContactId, to: usize) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        if c.in_members {
            self.queues[c.queue].members.remove(&c.key);
        }
        c.queue = to;
        c.in_members = true;
        self.queues[to].members.insert(c.key);
        let (channel, language, extra) = (ch_ix(c.channel), c.language.clone(), c.extra.clone());
        let base = self.base_for(to, channel, &language, &extra);
        if let Some(c) = self.contacts.get_mut(&id) {
            c.base = base;
        }
        self.start_stay(now, id);
    }

    /// A new stay in the current queue: relaxation and max wait count from `now`, declines
    /// are forgotten.
    pub(crate) fn start_stay(&mut self, now: Timestamp, id: ContactId) {
        if let Some(c) = self.contacts.get_mut(&id) {
            c.queued_at = now;
            c.relax_step = None;
        }
        self.clear_declines(id);
    }

    pub(crate) fn clear_declines(&mut self, id: ContactId) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        for d in std::mem::take(&mut c.declined) {
            if let Some(&op) = self.op_ix.get(&d.operator) {
                self.ops[op].declined.retain(|&x| x != id);
            }
        }
        self.declined_contacts.remove(&id);
        self.set_ctimer(id, CTimer::DeclineEnd, None);
    }

    /// Whether a waiting contact must not go to this operator because they declined it
    /// (see the module note): during the cooldown, or while someone else could take it.
    pub(crate) fn blocked(&self, c: &Contact, operator: OperatorId) -> bool {
        match c.declined.iter().find(|d| d.operator == operator) {
            None => false,
            Some(d) => d.cooling || self.others_available(c),
        }
    }

    /// Whether an operator who has not declined this waiting contact is connected, Available
    /// (busy or not) and eligible for it.
    fn others_available(&self, c: &Contact) -> bool {
        let Some(cl) = c.class else {
            return false;
        };
        self.classes[cl].bits.common(&self.available).any(|op| {
            let id = self.ops[op].profile.id;
            !c.declined.iter().any(|d| d.operator == id)
        })
    }

    /// Contacts nobody logged in could ever take go to their backup queue.
    fn sweep_no_eligible(&mut self, now: Timestamp) {
        let mut b = 0;
        while b < self.bases.len() {
            let has_backup = self.queues[self.bases[b].queue].cfg.overflow_to.is_some();
            if has_backup && !self.ever_possible(b) {
                let mut keys: Vec<Key> = Vec::new();
                for &cl in self.bases[b].classes.iter().flatten() {
                    keys.extend(self.classes[cl].set.iter().copied());
                }
                for key in keys {
                    let can_move = self
                        .contacts
                        .get(&key.id)
                        .is_some_and(|c| self.overflow_target(c).is_some());
                    if can_move {
                        self.reenter(now, key.id);
                    }
                }
            }
            b += 1;
        }
    }

    // ----- deadlines ------------------------------------------------------------------------

    pub(crate) fn fire(&mut self, now: Timestamp, at: Timestamp, timer: TimerRef) {
        match timer {
            TimerRef::OverflowResume => {
                if self.overflow_suspended_until == Some(at) {
                    self.overflow_suspended_until = None;
                    self.sweep_needed = true;
                }
            }
            TimerRef::OperatorGrace(operator) => {
                let Some(&op) = self.op_ix.get(&operator) else {
                    return;
                };
                if self.ops[op].grace_at != Some(at) {
                    return;
                }
                self.ops[op].grace_at = None;
                if !self.ops[op].connected {
                    self.connection_lost(now, op);
                }
            }
            TimerRef::Contact(kind, id) => {
                let Some(c) = self.contacts.get_mut(&id) else {
                    return;
                };
                if c.deadlines[kind as usize] != Some(at) {
                    return;
                }
                c.deadlines[kind as usize] = None;
                let state = c.state;
                match kind {
                    CTimer::Offer => {
                        if state == ContactState::Offered {
                            self.return_offer(now, id, Returned::Timeout);
                        }
                    }
                    CTimer::WrapUp => {
                        if state == ContactState::Wrapping {
                            self.complete(now, id);
                        }
                    }
                    CTimer::CallerGrace => {
                        if !c.caller_away {
                            return;
                        }
                        c.caller_away = false;
                        match state {
                            ContactState::Waiting | ContactState::Offered => {
                                self.abandon(now, id);
                            }
                            ContactState::Assigned => {
                                self.end_assigned(now, id, EndedBy::CallerLost);
                            }
                            _ => {}
                        }
                    }
                    CTimer::ResumeEnd => {
                        if state == ContactState::Abandoned {
                            self.drop_contact(id);
                        }
                    }
                    CTimer::Relax | CTimer::MaxWait => self.reenter(now, id),
                    CTimer::DeclineEnd => self.expire_declines(now, id),
                }
            }
        }
    }

    /// One-ring cooldowns that have passed end (the declines themselves last for the stay).
    fn expire_declines(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        for d in &mut c.declined {
            if d.cooling && d.until <= now {
                d.cooling = false;
            }
        }
        let next = c
            .declined
            .iter()
            .filter(|d| d.cooling)
            .map(|d| d.until)
            .min();
        let waiting = c.state == ContactState::Waiting;
        self.set_ctimer(id, CTimer::DeclineEnd, next);
        if waiting {
            self.dirty_contacts.push(id);
        }
    }
}

/// How an offer ended without being accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Returned {
    Reject,
    Timeout,
    Rescind,
}
