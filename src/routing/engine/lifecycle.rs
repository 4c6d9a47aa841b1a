//! Commands: contact lifecycle, presence, transfers, participants, restore.
//!
//! Every command checks everything it needs *before* changing anything, so that a refusal
//! changes nothing.

use super::index::normalise_extra;
use super::route::Returned;
use super::*;
use crate::domain::RiskLevel;
use crate::routing::{EndedBy, NewContact, RequeueReason, TransferTarget};

/// Weight of the newest sample in the handle-time average.
const HANDLE_EWMA_ALPHA: f64 = 0.2;

impl Engine {
    fn contact_ref(&self, id: ContactId) -> Result<&Contact, EngineError> {
        self.contacts.get(&id).ok_or(EngineError::UnknownContact)
    }

    /// The priority key of a contact with this risk, history and arrival.
    pub(crate) fn key_for(&self, c: &Contact, risk: RiskLevel) -> Key {
        let tier = if risk == RiskLevel::Imminent {
            0
        } else if c.lost {
            1
        } else {
            2
        };
        let bonus = self.config.risk_bonus_ms[risk.index()];
        Key {
            tier,
            since: c.entered_at.0.saturating_sub(bonus),
            id: c.id,
        }
    }

    // ----- operators ----------------------------------------------------------------------

    pub(crate) fn operator_connected(
        &mut self,
        _now: Timestamp,
        operator: OperatorId,
    ) -> Result<(), EngineError> {
        let op = self.op_index(operator)?;
        if self.ops[op].connected {
            return Ok(());
        }
        self.ops[op].connected = true;
        self.set_grace_timer(op, None);
        self.mark_dirty(op);
        Ok(())
    }

    pub(crate) fn operator_disconnected(
        &mut self,
        now: Timestamp,
        operator: OperatorId,
    ) -> Result<(), EngineError> {
        let op = self.op_index(operator)?;
        if !self.ops[op].connected {
            return Ok(());
        }
        self.ops[op].connected = false;
        // Whoever has joined a contact (a supervisor or a lead is usually Offline: they take no
        // contacts) gets the same time to come back before they leave it.
        if self.ops[op].presence != Presence::Offline || !self.joined_by(operator).is_empty() {
            self.set_grace_timer(op, Some(now.plus_ms(self.config.operator_grace_ms)));
        }
        self.refresh_op(op);
        if let Some(id) = self.ops[op].pending {
            self.return_offer(now, id, Returned::Rescind);
        }
        Ok(())
    }

    pub(crate) fn set_presence(
        &mut self,
        now: Timestamp,
        operator: OperatorId,
        presence: Presence,
    ) -> Result<(), EngineError> {
        let op = self.op_index(operator)?;
        if presence == Presence::Available {
            self.ops[op].no_answer = 0;
        }
        if self.ops[op].presence == presence {
            return Ok(());
        }
        match presence {
            Presence::Available => {
                let o = &mut self.ops[op];
                o.presence = presence;
                o.idle_since = now;
                self.mark_dirty(op);
            }
            Presence::Break { .. } => {
                self.ops[op].presence = presence;
                self.refresh_op(op);
                if let Some(id) = self.ops[op].pending {
                    self.return_offer(now, id, Returned::Rescind);
                }
            }
            Presence::Offline => self.go_offline(now, op),
        }
        Ok(())
    }

    /// Offline at once: ringing offer rescinded, live contacts requeued first in line,
    /// wrap-ups completed.
    pub(crate) fn go_offline(&mut self, now: Timestamp, op: usize) {
        self.ops[op].presence = Presence::Offline;
        self.ops[op].no_answer = 0;
        self.set_grace_timer(op, None);
        self.refresh_op(op);
        if let Some(id) = self.ops[op].pending {
            self.return_offer(now, id, Returned::Rescind);
        }
        let held: Vec<ContactId> = self.ops[op].contacts.iter().copied().collect();
        for id in held {
            match self.contacts.get(&id).map(|c| c.state) {
                Some(ContactState::Assigned) => self.requeue_lost(now, id),
                Some(ContactState::Wrapping) => self.complete(now, id),
                _ => {}
            }
        }
        self.sweep_needed = true;
    }

    /// The grace period of a dropped connection is over: the operator goes offline (if they were
    /// not), and leaves every contact they had joined, so that nobody is shown as listening in
    /// who is not there.
    pub(crate) fn connection_lost(&mut self, now: Timestamp, op: usize) {
        if self.ops[op].presence != Presence::Offline {
            self.go_offline(now, op);
        }
        self.leave_all(self.ops[op].profile.id);
    }

    /// `operator` leaves every contact they joined.
    pub(crate) fn leave_all(&mut self, operator: OperatorId) {
        for id in self.joined_by(operator) {
            let _ = self.leave(id, operator);
        }
    }

    /// The contacts `operator` has joined as a participant, in id order.
    fn joined_by(&self, operator: OperatorId) -> Vec<ContactId> {
        let mut joined: Vec<ContactId> = self
            .contacts
            .values()
            .filter(|c| c.participants.iter().any(|p| p.0 == operator))
            .map(|c| c.id)
            .collect();
        joined.sort_unstable();
        joined
    }

    /// Frees the slot a contact held with an operator.
    fn release(&mut self, now: Timestamp, operator: OperatorId, id: ContactId, wrapping: bool) {
        let Some(&op) = self.op_ix.get(&operator) else {
            return;
        };
        let Some(channel) = self.contacts.get(&id).map(|c| ch_ix(c.channel)) else {
            return;
        };
        let o = &mut self.ops[op];
        if !o.contacts.remove(&id) {
            return;
        }
        o.used[channel] = o.used[channel].saturating_sub(1);
        if wrapping {
            o.wrapping = o.wrapping.saturating_sub(1);
        }
        if o.pending == Some(id) {
            o.pending = None;
        }
        if o.contacts.is_empty() {
            o.idle_since = now;
        }
        self.mark_dirty(op);
    }

    // ----- contacts -----------------------------------------------------------------------

    pub(crate) fn enqueue(&mut self, now: Timestamp, new: NewContact) -> Result<(), EngineError> {
        if self.contacts.contains_key(&new.id) {
            return Err(EngineError::DuplicateContact);
        }
        let qi = self
            .queue_index(&new.queue)
            .ok_or(EngineError::UnknownQueue)?;
        let id = new.id;
        self.insert_contact(now, new, qi, now);
        self.out.push(Event::EnterQueue {
            contact: id,
            queue: self.queues[qi].cfg.id.clone(),
            channel: self.contacts[&id].channel,
            risk: self.contacts[&id].risk,
        });
        self.join_members(id);
        self.enter_waiting(now, id);
        Ok(())
    }

    /// Creates a contact in state Waiting, in no queue structure yet.
    fn insert_contact(
        &mut self,
        now: Timestamp,
        new: NewContact,
        qi: usize,
        entered_at: Timestamp,
    ) {
        let extra = self.skills_at(normalise_extra(&new.extra_skills), new.risk);
        let base = self.base_for(qi, ch_ix(new.channel), &new.language, &extra);
        let mut c = Contact {
            id: new.id,
            queue: qi,
            channel: new.channel,
            language: new.language,
            topic: new.topic,
            extra,
            risk: new.risk,
            state: ContactState::Waiting,
            entered_at,
            waiting_since: entered_at,
            queued_at: entered_at,
            lost: false,
            key: Key {
                tier: 2,
                since: 0,
                id: new.id,
            },
            base,
            class: None,
            relax_step: None,
            in_members: false,
            operator: None,
            targeted: false,
            connected_at: now,
            participants: Vec::new(),
            caller_away: false,
            visited: Vec::new(),
            declined: Vec::new(),
            deadlines: [None; CTIMERS],
        };
        c.key = self.key_for(&c, c.risk);
        self.contacts.insert(new.id, c);
    }

    /// Puts a contact (in no queue structure) into its queue's members.
    fn join_members(&mut self, id: ContactId) {
        if let Some(c) = self.contacts.get_mut(&id)
            && !c.in_members
        {
            c.in_members = true;
            self.queues[c.queue].members.insert(c.key);
        }
    }

    pub(crate) fn raise_risk(
        &mut self,
        now: Timestamp,
        id: ContactId,
        risk: RiskLevel,
    ) -> Result<(), EngineError> {
        let c = self.contact_ref(id)?;
        if c.state == ContactState::Abandoned {
            return Err(EngineError::WrongState("abandoned"));
        }
        if risk <= c.risk {
            return Ok(());
        }
        let from = c.risk;
        let old = c.key;
        let new = self.key_for(c, risk);
        let Some(c) = self.contacts.get_mut(&id) else {
            return Ok(());
        };
        c.risk = risk;
        c.key = new;
        if let Some(cl) = c.class {
            self.classes[cl].set.remove(&old);
            self.classes[cl].set.insert(new);
        }
        if c.in_members {
            let members = &mut self.queues[c.queue].members;
            members.remove(&old);
            members.insert(new);
        }
        if c.state == ContactState::Waiting {
            self.dirty_contacts.push(id);
        }
        self.out.push(Event::RiskChange {
            contact: id,
            from,
            to: risk,
        });
        self.require_crisis_skill(now, id);
        Ok(())
    }

    /// The contact's extra skills as its risk calls for them: with the crisis skill at high risk
    /// or above, when one is configured.
    fn skills_at(
        &self,
        mut extra: Vec<(Skill, Proficiency)>,
        risk: RiskLevel,
    ) -> Vec<(Skill, Proficiency)> {
        if risk >= RiskLevel::High
            && let Some(skill) = &self.config.crisis_skill
            && !extra.iter().any(|(s, _)| s == skill)
        {
            extra.push((skill.clone(), Proficiency::MIN));
            extra.sort();
        }
        extra
    }

    /// After a rise in risk: a contact that now needs the crisis skill is routed by it from now
    /// on (a waiting one keeps its place; an offer or a conversation under way goes on).
    fn require_crisis_skill(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get(&id) else {
            return;
        };
        let extra = self.skills_at(c.extra.clone(), c.risk);
        if extra == c.extra {
            return;
        }
        let (queue, channel, language, waiting) = (
            c.queue,
            ch_ix(c.channel),
            c.language.clone(),
            c.state == ContactState::Waiting,
        );
        let base = self.base_for(queue, channel, &language, &extra);
        if let Some(c) = self.contacts.get_mut(&id) {
            c.extra = extra;
            c.base = base;
        }
        if waiting {
            self.reenter(now, id);
        }
    }

    fn offered_to(&self, operator: OperatorId, id: ContactId) -> Result<(), EngineError> {
        self.op_index(operator)?;
        let c = self.contact_ref(id)?;
        if c.state != ContactState::Offered || c.operator != Some(operator) {
            return Err(EngineError::NotOffered);
        }
        Ok(())
    }

    pub(crate) fn accept(
        &mut self,
        now: Timestamp,
        operator: OperatorId,
        id: ContactId,
    ) -> Result<(), EngineError> {
        self.offered_to(operator, id)?;
        let op = self.op_index(operator)?;
        let Some(c) = self.contacts.get_mut(&id) else {
            return Err(EngineError::UnknownContact);
        };
        c.state = ContactState::Assigned;
        c.connected_at = now;
        c.targeted = false;
        if c.in_members {
            c.in_members = false;
            self.queues[c.queue].members.remove(&c.key);
        }
        let queue = self.queues[c.queue].cfg.id.clone();
        let waited_ms = now.since(c.waiting_since);
        self.set_ctimer(id, CTimer::Offer, None);
        self.clear_declines(id);
        let o = &mut self.ops[op];
        o.pending = None;
        o.no_answer = 0;
        self.mark_dirty(op);
        self.out.push(Event::Accept {
            contact: id,
            operator,
        });
        self.out.push(Event::Connect {
            contact: id,
            operator,
            queue,
            waited_ms,
        });
        Ok(())
    }

    pub(crate) fn reject(
        &mut self,
        now: Timestamp,
        operator: OperatorId,
        id: ContactId,
    ) -> Result<(), EngineError> {
        self.offered_to(operator, id)?;
        self.return_offer(now, id, Returned::Reject);
        Ok(())
    }

    /// An offer ended without acceptance: the contact goes back to its place (a targeted
    /// transfer goes back into its queue: `Requeue{TransferNotTaken}`).
    pub(crate) fn return_offer(&mut self, now: Timestamp, id: ContactId, how: Returned) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        if c.state != ContactState::Offered {
            return;
        }
        let Some(operator) = c.operator.take() else {
            return;
        };
        let targeted = std::mem::take(&mut c.targeted);
        c.state = ContactState::Waiting;
        self.set_ctimer(id, CTimer::Offer, None);
        self.release(now, operator, id, false);
        self.out.push(match how {
            Returned::Reject => Event::Reject {
                contact: id,
                operator,
            },
            Returned::Timeout => Event::OfferTimeout {
                contact: id,
                operator,
            },
            Returned::Rescind => Event::OfferRescinded {
                contact: id,
                operator,
            },
        });
        if how != Returned::Rescind {
            self.add_decline(now, id, operator);
        }
        if how == Returned::Reject
            && let Some(&op) = self.op_ix.get(&operator)
        {
            // A reject is an answer: only offers missed one after another count.
            self.ops[op].no_answer = 0;
        }
        if how == Returned::Timeout
            && let Some(&op) = self.op_ix.get(&operator)
        {
            let o = &mut self.ops[op];
            o.no_answer += 1;
            if self.config.max_no_answer > 0
                && o.no_answer >= self.config.max_no_answer
                && o.presence == Presence::Available
            {
                o.presence = Presence::Break {
                    reason: crate::domain::BreakReason::NoAnswer,
                };
                self.refresh_op(op);
            }
        }
        if targeted {
            let queue = self.contacts.get(&id).map(|c| c.queue).unwrap_or_default();
            self.out.push(Event::Requeue {
                contact: id,
                queue: self.queues[queue].cfg.id.clone(),
                reason: RequeueReason::TransferNotTaken,
            });
            if let Some(c) = self.contacts.get_mut(&id) {
                c.queued_at = now;
                c.relax_step = None;
            }
            self.join_members(id);
        }
        self.enter_waiting(now, id);
    }

    fn add_decline(&mut self, now: Timestamp, id: ContactId, operator: OperatorId) {
        let until = now.plus_ms(self.config.offer_timeout_ms);
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        c.declined.retain(|d| d.operator != operator);
        c.declined.push(Decline {
            operator,
            until,
            cooling: true,
        });
        let next = c
            .declined
            .iter()
            .filter(|d| d.cooling)
            .map(|d| d.until)
            .min();
        if let Some(&op) = self.op_ix.get(&operator)
            && !self.ops[op].declined.contains(&id)
        {
            self.ops[op].declined.push(id);
        }
        self.declined_contacts.insert(id);
        self.set_ctimer(id, CTimer::DeclineEnd, next);
    }

    /// Withdraws a ringing offer for good (the contact is leaving).
    fn withdraw_offer(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        let Some(operator) = c.operator.take() else {
            return;
        };
        c.targeted = false;
        self.set_ctimer(id, CTimer::Offer, None);
        self.release(now, operator, id, false);
        self.out.push(Event::OfferRescinded {
            contact: id,
            operator,
        });
    }

    /// A waiting or offered contact is abandoned; it is kept for the resume window.
    pub(crate) fn abandon(&mut self, now: Timestamp, id: ContactId) {
        let Some(state) = self.contacts.get(&id).map(|c| c.state) else {
            return;
        };
        if state == ContactState::Offered {
            self.withdraw_offer(now, id);
        }
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        if let Some(cl) = c.class.take() {
            self.classes[cl].set.remove(&c.key);
        }
        if c.in_members {
            c.in_members = false;
            self.queues[c.queue].members.remove(&c.key);
        }
        c.state = ContactState::Abandoned;
        c.caller_away = false;
        c.participants.clear();
        let queue = self.queues[c.queue].cfg.id.clone();
        let waited_ms = now.since(c.waiting_since);
        self.clear_ctimers(id);
        self.clear_declines(id);
        self.out.push(Event::Abandon {
            contact: id,
            queue,
            waited_ms,
        });
        if self.config.resume_window_ms > 0 {
            let until = now.plus_ms(self.config.resume_window_ms);
            self.set_ctimer(id, CTimer::ResumeEnd, Some(until));
        } else {
            self.drop_contact(id);
        }
    }

    /// Forgets a terminal contact.
    pub(crate) fn drop_contact(&mut self, id: ContactId) {
        self.clear_ctimers(id);
        self.clear_declines(id);
        if let Some(c) = self.contacts.remove(&id) {
            if let Some(cl) = c.class {
                self.classes[cl].set.remove(&c.key);
            }
            if c.in_members {
                self.queues[c.queue].members.remove(&c.key);
            }
        }
    }

    fn emit_leaves(&mut self, id: ContactId) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        for (participant, _) in std::mem::take(&mut c.participants) {
            self.out.push(Event::Leave {
                contact: id,
                participant,
            });
        }
    }

    /// A live contact ends: participants leave, the operator wraps up.
    pub(crate) fn end_assigned(&mut self, now: Timestamp, id: ContactId, by: EndedBy) {
        self.emit_leaves(id);
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        let Some(operator) = c.operator else {
            return;
        };
        c.state = ContactState::Wrapping;
        c.caller_away = false;
        self.set_ctimer(id, CTimer::CallerGrace, None);
        let until = now.plus_ms(self.config.wrap_up_max_ms);
        self.set_ctimer(id, CTimer::WrapUp, Some(until));
        if let Some(&op) = self.op_ix.get(&operator) {
            self.ops[op].wrapping += 1;
            self.refresh_op(op);
        }
        self.out.push(Event::WrapUp {
            contact: id,
            operator,
            by,
        });
    }

    /// Wrap-up done (or its maximum reached): the contact is complete and forgotten.
    pub(crate) fn complete(&mut self, now: Timestamp, id: ContactId) {
        let Some(c) = self.contacts.get(&id) else {
            return;
        };
        let Some(operator) = c.operator else {
            return;
        };
        let handled_ms = now.since(c.connected_at);
        let qi = c.queue;
        self.release(now, operator, id, true);
        self.out.push(Event::Complete {
            contact: id,
            operator,
            handled_ms,
        });
        let q = &mut self.queues[qi];
        q.handle_ewma += HANDLE_EWMA_ALPHA * (handled_ms as f64 - q.handle_ewma);
        self.drop_contact(id);
    }

    /// A live contact whose operator was lost goes back to its queue, first in line (tier 1).
    fn requeue_lost(&mut self, now: Timestamp, id: ContactId) {
        self.emit_leaves(id);
        let Some(c) = self.contacts.get(&id) else {
            return;
        };
        let Some(operator) = c.operator else {
            return;
        };
        self.release(now, operator, id, false);
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        c.operator = None;
        c.state = ContactState::Waiting;
        c.waiting_since = now;
        let queue = self.queues[c.queue].cfg.id.clone();
        self.mark_lost(id);
        self.out.push(Event::Requeue {
            contact: id,
            queue,
            reason: RequeueReason::OperatorLost,
        });
        self.join_members(id);
        self.start_stay(now, id);
        self.enter_waiting(now, id);
    }

    pub(crate) fn end(
        &mut self,
        now: Timestamp,
        id: ContactId,
        by: EndedBy,
    ) -> Result<(), EngineError> {
        match self.contact_ref(id)?.state {
            ContactState::Waiting | ContactState::Offered => self.abandon(now, id),
            ContactState::Assigned => self.end_assigned(now, id, by),
            other => return Err(EngineError::WrongState(other.as_str())),
        }
        Ok(())
    }

    pub(crate) fn finish_wrap_up(
        &mut self,
        now: Timestamp,
        operator: OperatorId,
        id: ContactId,
    ) -> Result<(), EngineError> {
        self.op_index(operator)?;
        let c = self.contact_ref(id)?;
        if c.state != ContactState::Wrapping || c.operator != Some(operator) {
            return Err(EngineError::NotWrapping);
        }
        self.complete(now, id);
        Ok(())
    }

    pub(crate) fn caller_left(&mut self, now: Timestamp, id: ContactId) -> Result<(), EngineError> {
        match self.contact_ref(id)?.state {
            ContactState::Waiting | ContactState::Offered => self.abandon(now, id),
            ContactState::Assigned => self.end_assigned(now, id, EndedBy::Caller),
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn caller_disconnected(
        &mut self,
        now: Timestamp,
        id: ContactId,
    ) -> Result<(), EngineError> {
        let c = self.contact_ref(id)?;
        let live = matches!(
            c.state,
            ContactState::Waiting | ContactState::Offered | ContactState::Assigned
        );
        if !live || c.caller_away {
            return Ok(());
        }
        if let Some(c) = self.contacts.get_mut(&id) {
            c.caller_away = true;
        }
        let until = now.plus_ms(self.config.caller_grace_ms);
        self.set_ctimer(id, CTimer::CallerGrace, Some(until));
        self.out.push(Event::CallerAway { contact: id });
        Ok(())
    }

    pub(crate) fn caller_returned(
        &mut self,
        now: Timestamp,
        id: ContactId,
    ) -> Result<(), EngineError> {
        let c = self.contact_ref(id)?;
        if c.state == ContactState::Abandoned {
            let within = c.deadlines[CTimer::ResumeEnd as usize].is_some_and(|end| now < end);
            if !within {
                return Err(EngineError::WrongState("abandoned"));
            }
            self.set_ctimer(id, CTimer::ResumeEnd, None);
            self.out.push(Event::Resume { contact: id });
            self.join_members(id);
            self.enter_waiting(now, id);
            return Ok(());
        }
        if !c.caller_away {
            return Err(EngineError::WrongState(c.state.as_str()));
        }
        if let Some(c) = self.contacts.get_mut(&id) {
            c.caller_away = false;
        }
        self.set_ctimer(id, CTimer::CallerGrace, None);
        self.out.push(Event::CallerBack { contact: id });
        Ok(())
    }

    pub(crate) fn transfer(
        &mut self,
        now: Timestamp,
        id: ContactId,
        by: OperatorId,
        target: TransferTarget,
    ) -> Result<(), EngineError> {
        let from = self.op_index(by)?;
        let c = self.contact_ref(id)?;
        if c.state != ContactState::Assigned || c.operator != Some(by) {
            return Err(EngineError::NotAssigned);
        }
        let channel = ch_ix(c.channel);
        enum To {
            Queue(usize),
            Operator(usize),
        }
        let to = match &target {
            TransferTarget::Queue { queue } => {
                To::Queue(self.queue_index(queue).ok_or(EngineError::UnknownQueue)?)
            }
            TransferTarget::Operator { operator } => {
                let t = self.op_index(*operator)?;
                if t == from || !self.has_room(t, channel) {
                    return Err(EngineError::TargetUnavailable);
                }
                To::Operator(t)
            }
        };
        self.emit_leaves(id);
        self.release(now, by, id, false);
        if let Some(c) = self.contacts.get_mut(&id) {
            c.operator = None;
            c.state = ContactState::Waiting;
            c.waiting_since = now;
        }
        self.out.push(Event::Transfer {
            contact: id,
            from: by,
            target,
        });
        match to {
            To::Queue(qi) => {
                self.move_to_queue(now, id, qi);
                // Handed on on purpose: it goes to a colleague, not back to the one who let it go
                // (unless nobody else can take it, after the one-ring cooldown, as any decline).
                self.add_decline(now, id, by);
                self.enter_waiting(now, id);
            }
            To::Operator(t) => self.offer(now, id, t, true),
        }
        Ok(())
    }

    pub(crate) fn join(
        &mut self,
        id: ContactId,
        participant: OperatorId,
        mode: JoinMode,
    ) -> Result<(), EngineError> {
        let c = self.contact_ref(id)?;
        self.op_index(participant)?;
        if c.state != ContactState::Assigned {
            return Err(EngineError::WrongState(c.state.as_str()));
        }
        if c.operator == Some(participant) {
            return Err(EngineError::TargetUnavailable);
        }
        if c.participants.contains(&(participant, mode)) {
            return Ok(());
        }
        let Some(c) = self.contacts.get_mut(&id) else {
            return Err(EngineError::UnknownContact);
        };
        match c.participants.iter_mut().find(|p| p.0 == participant) {
            Some(p) => p.1 = mode,
            None => c.participants.push((participant, mode)),
        }
        self.out.push(Event::Join {
            contact: id,
            participant,
            mode,
        });
        Ok(())
    }

    pub(crate) fn leave(
        &mut self,
        id: ContactId,
        participant: OperatorId,
    ) -> Result<(), EngineError> {
        self.contact_ref(id)?;
        self.op_index(participant)?;
        let Some(c) = self.contacts.get_mut(&id) else {
            return Err(EngineError::UnknownContact);
        };
        let Some(pos) = c.participants.iter().position(|p| p.0 == participant) else {
            return Ok(());
        };
        c.participants.remove(pos);
        self.out.push(Event::Leave {
            contact: id,
            participant,
        });
        Ok(())
    }

    // ----- restore --------------------------------------------------------------------------

    pub(crate) fn restore_contacts(
        &mut self,
        now: Timestamp,
        down_since: Option<Timestamp>,
        contacts: Vec<RestoredContact>,
    ) {
        // When the server stopped, and how long it was down: a clock that went back since
        // means no downtime.
        let stopped = down_since.map_or(now, |t| t.min(now));
        let down_ms = now.since(stopped);
        let until = now.plus_ms(self.config.operator_grace_ms);
        if let Some(old) = self.overflow_suspended_until.take() {
            self.timers.remove(&(old, TimerRef::OverflowResume));
        }
        self.overflow_suspended_until = Some(until);
        self.timers.insert((until, TimerRef::OverflowResume));

        let window = self.config.resume_window_ms;
        let resumable_until = |rc: &RestoredContact| {
            rc.ended_at
                .map(|t| t.plus_ms(window))
                .filter(|until| window > 0 && now < *until)
        };
        let (held, waiting): (Vec<_>, Vec<_>) = contacts
            .into_iter()
            .filter(|rc| {
                !rc.state.is_terminal()
                    || (rc.state == ContactState::Abandoned && resumable_until(rc).is_some())
            })
            .partition(|rc| matches!(rc.state, ContactState::Assigned | ContactState::Wrapping));
        for rc in held.into_iter().chain(waiting) {
            let id = rc.contact.id;
            if self.contacts.contains_key(&id) {
                continue;
            }
            let qi = match self.queue_index(&rc.contact.queue) {
                Some(qi) => qi,
                None => {
                    self.upsert_queue(
                        now,
                        QueueConfig {
                            id: rc.contact.queue.clone(),
                            required_skills: Vec::new(),
                            languages: Vec::new(),
                            relaxation: Vec::new(),
                            never_relax: false,
                            overflow_to: None,
                            max_wait_ms: None,
                        },
                    );
                    match self.queue_index(&rc.contact.queue) {
                        Some(qi) => qi,
                        None => continue,
                    }
                }
            };
            let holder = rc.operator.and_then(|o| self.op_ix.get(&o).copied());
            let resume_until = resumable_until(&rc);
            let participants = rc.participants;
            // A queue the engine no longer knows is no overflow target anyway.
            let visited: Vec<usize> = rc
                .visited
                .iter()
                .filter_map(|q| self.queue_index(q))
                .collect();
            self.insert_contact(now, rc.contact, qi, rc.entered_at);
            if let Some(c) = self.contacts.get_mut(&id) {
                // Its stay and its overflow history go on from where the log left them, so
                // relaxation, max wait and overflow carry on as if there had been no restart.
                c.queued_at = rc.queued_at;
                // Waiting again after an operator (it has talked): its wait began when its
                // stay in this queue did, as far as the log tells.
                if rc.connected_at.is_some() {
                    c.waiting_since = rc.queued_at;
                }
                c.visited = visited;
                // Nobody talked or wrote through a stopped server: a contact held again counts
                // its handle time as if it had connected `down_ms` later (never after `now`).
                if let Some(at) = rc.connected_at {
                    c.connected_at = at.plus_ms(down_ms).min(now);
                }
            }
            if rc.operator_lost {
                self.mark_lost(id);
            }
            match (rc.state, holder) {
                (ContactState::Abandoned, _) => {
                    // Left before the restart: kept, out of the queue, for the rest of its
                    // resume window; its key (its place) is the one it had.
                    if let Some(c) = self.contacts.get_mut(&id) {
                        c.state = ContactState::Abandoned;
                    }
                    self.set_ctimer(id, CTimer::ResumeEnd, resume_until);
                }
                (ContactState::Assigned, Some(op)) => {
                    self.restore_held(now, id, op, None);
                    self.restore_participants(now, id, participants);
                }
                (ContactState::Wrapping, Some(op)) => {
                    let left = wrap_up_left_ms(stopped, rc.wrapped_at, self.config.wrap_up_max_ms);
                    self.restore_held(now, id, op, Some(now.plus_ms(left)));
                }
                (ContactState::Assigned, None) => {
                    self.mark_lost(id);
                    self.out.push(Event::Requeue {
                        contact: id,
                        queue: self.queues[qi].cfg.id.clone(),
                        reason: RequeueReason::OperatorLost,
                    });
                    self.join_members(id);
                    self.start_stay(now, id);
                    self.enter_waiting(now, id);
                }
                (ContactState::Wrapping, None) => {
                    self.contacts.remove(&id);
                    if let Some(operator) = rc.operator {
                        self.out.push(Event::Complete {
                            contact: id,
                            operator,
                            handled_ms: restored_handle_ms(
                                stopped,
                                rc.connected_at,
                                rc.wrapped_at,
                                self.config.wrap_up_max_ms,
                            ),
                        });
                    }
                }
                _ => {
                    self.join_members(id);
                    self.enter_waiting(now, id);
                }
            }
        }
    }

    /// First in line from now on (tier 1): it lost its operator.
    fn mark_lost(&mut self, id: ContactId) {
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        c.lost = true;
        let c = &self.contacts[&id];
        let key = self.key_for(c, c.risk);
        if let Some(c) = self.contacts.get_mut(&id) {
            c.key = key;
        }
    }

    /// Puts back who had joined a restored live contact (each once, as the log's joins and
    /// leaves left them): people the engine knows, other than the operator holding it.
    /// Like the holder, each has the grace period to reconnect before they leave it.
    fn restore_participants(
        &mut self,
        now: Timestamp,
        id: ContactId,
        participants: Vec<(OperatorId, JoinMode)>,
    ) {
        let Some(holder) = self.contacts.get(&id).map(|c| c.operator) else {
            return;
        };
        let known: Vec<_> = participants
            .into_iter()
            .filter(|(p, _)| self.op_ix.contains_key(p) && holder != Some(*p))
            .collect();
        for (p, _) in &known {
            let op = self.op_ix[p];
            if !self.ops[op].connected && self.ops[op].grace_at.is_none() {
                self.set_grace_timer(op, Some(now.plus_ms(self.config.operator_grace_ms)));
            }
        }
        if let Some(c) = self.contacts.get_mut(&id) {
            c.participants = known;
        }
    }

    /// Gives a contact back to its operator: live, or wrapping up until `wrap_up_until`.
    fn restore_held(
        &mut self,
        now: Timestamp,
        id: ContactId,
        op: usize,
        wrap_up_until: Option<Timestamp>,
    ) {
        let wrapping = wrap_up_until.is_some();
        let operator = self.ops[op].profile.id;
        let Some(c) = self.contacts.get_mut(&id) else {
            return;
        };
        c.state = if wrapping {
            ContactState::Wrapping
        } else {
            ContactState::Assigned
        };
        c.operator = Some(operator);
        let channel = ch_ix(c.channel);
        let o = &mut self.ops[op];
        o.contacts.insert(id);
        o.used[channel] = o.used[channel].saturating_add(1);
        if wrapping {
            o.wrapping += 1;
        }
        if o.presence == Presence::Offline {
            o.presence = Presence::Available;
        }
        if !o.connected && o.grace_at.is_none() {
            self.set_grace_timer(op, Some(now.plus_ms(self.config.operator_grace_ms)));
        }
        self.set_ctimer(id, CTimer::WrapUp, wrap_up_until);
        self.refresh_op(op);
    }
}

/// What is left of a wrap-up restored with its operator: `wrap_up_max_ms` less the part of it that
/// ran before the server stopped at `stopped` (nobody could write notes through a stopped server,
/// and without the restart it would have ended at its maximum). All of it without a wrap-up time.
pub(crate) fn wrap_up_left_ms(
    stopped: Timestamp,
    wrapped_at: Option<Timestamp>,
    wrap_up_max_ms: i64,
) -> i64 {
    wrapped_at.map_or(wrap_up_max_ms, |w| {
        wrap_up_max_ms.saturating_sub(stopped.since(w)).max(0)
    })
}

/// The handle time of a wrap-up restored without its operator: its talk (connect to wrap-up) as
/// the log has it, then its wrap-up up to `stopped`, when the server stopped (nobody wrote notes
/// through a stopped server), but, like any wrap-up, never more than `wrap_up_max_ms` (without
/// the restart it would have been ended then). Without a wrap-up time, up to `stopped`. Without
/// a connect time (every contact in wrap-up has one) there is nothing to count: 0.
pub(crate) fn restored_handle_ms(
    stopped: Timestamp,
    connected_at: Option<Timestamp>,
    wrapped_at: Option<Timestamp>,
    wrap_up_max_ms: i64,
) -> i64 {
    let Some(connected_at) = connected_at else {
        return 0;
    };
    let ended = wrapped_at.map_or(stopped, |w| stopped.min(w.plus_ms(wrap_up_max_ms)));
    ended.since(connected_at)
}
