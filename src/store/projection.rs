//! How the event log projects onto the `contacts` table: one pure function from an [`Event`] to
//! the change it makes to its contact's row, shared by both SQL dialects (which turn a
//! [`ContactChange`] into one `UPDATE`) and by anything that keeps a [`ContactRecord`] in memory.
//!
//! A change never depends on the row it applies to: replaying the log from the start gives the
//! same row as applying it live. What it must never do: IO, or decide anything the engine did
//! not already decide.

use crate::domain::{ContactId, OperatorId, QueueId, RiskLevel, Timestamp};
use crate::routing::{ContactState, Event, TransferTarget};

use super::ContactRecord;

/// What one event changes in its contact's row. `None` leaves a column as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactChange {
    pub state: Option<ContactState>,
    /// `Some(None)` clears the operator.
    pub operator: Option<Option<OperatorId>>,
    pub queue: Option<QueueId>,
    pub risk: Option<RiskLevel>,
    /// Set only if the contact was never connected before: `connected_at` is the first
    /// connection (what "answered within" KPIs need), not the latest transfer.
    pub connected_at: Option<Timestamp>,
    /// `Some(None)` clears the end (a resumed contact is open again).
    pub ended_at: Option<Option<Timestamp>>,
}

impl ContactChange {
    /// Applies the change to an in-memory row, exactly as the SQL `UPDATE` does.
    pub fn apply(&self, row: &mut ContactRecord) {
        if let Some(state) = self.state {
            row.state = state;
        }
        if let Some(operator) = self.operator {
            row.operator = operator;
        }
        if let Some(queue) = &self.queue {
            row.queue = queue.clone();
        }
        if let Some(risk) = self.risk {
            row.risk = risk;
        }
        if row.connected_at.is_none() {
            row.connected_at = self.connected_at;
        }
        if let Some(ended_at) = self.ended_at {
            row.ended_at = ended_at;
        }
    }
}

impl ContactChange {
    /// This change followed by `later`, as one change: applying the result equals applying the
    /// two in order (later values win, except `connected_at`, where the first connection does).
    pub fn then(self, later: ContactChange) -> ContactChange {
        ContactChange {
            state: later.state.or(self.state),
            operator: later.operator.or(self.operator),
            queue: later.queue.or(self.queue),
            risk: later.risk.or(self.risk),
            connected_at: self.connected_at.or(later.connected_at),
            ended_at: later.ended_at.or(self.ended_at),
        }
    }
}

/// The net change of a batch of events to each contact they touch, in ascending contact id: one
/// row update per contact instead of one per event.
pub fn project_batch(events: &[Event], at: Timestamp) -> Vec<(ContactId, ContactChange)> {
    let mut changes: Vec<(ContactId, ContactChange)> = Vec::new();
    for (contact, change) in events.iter().filter_map(|e| project(e, at)) {
        match changes.iter_mut().find(|(c, _)| *c == contact) {
            Some((_, earlier)) => *earlier = std::mem::take(earlier).then(change),
            None => changes.push((contact, change)),
        }
    }
    // Rows are updated (and on PostgreSQL locked) in ascending id, as the transcript writer's
    // do, so that two transactions never wait on each other's rows in opposite orders.
    changes.sort_by_key(|(contact, _)| *contact);
    changes
}

/// The contact an event changes and how, or `None` when it leaves every contact row as it is
/// (relaxation, caller away/back, joins, operator states…). `at` is when the event happened.
pub fn project(event: &Event, at: Timestamp) -> Option<(ContactId, ContactChange)> {
    use ContactState::*;

    let waiting_in = |queue: Option<&QueueId>| ContactChange {
        state: Some(Waiting),
        operator: Some(None),
        queue: queue.cloned(),
        ..ContactChange::default()
    };
    let held_by = |state: ContactState, operator: OperatorId| ContactChange {
        state: Some(state),
        operator: Some(Some(operator)),
        ..ContactChange::default()
    };
    let state_only = |state: ContactState| ContactChange {
        state: Some(state),
        ..ContactChange::default()
    };

    let change = match event {
        Event::EnterQueue { .. } => state_only(Waiting),
        Event::Offer { operator, .. } => held_by(Offered, *operator),
        Event::Accept { operator, .. } => held_by(Assigned, *operator),
        Event::Connect { operator, .. } => ContactChange {
            connected_at: Some(at),
            ..held_by(Assigned, *operator)
        },
        Event::Reject { .. } | Event::OfferTimeout { .. } | Event::OfferRescinded { .. } => {
            waiting_in(None)
        }
        Event::RiskChange { to, .. } => ContactChange {
            risk: Some(*to),
            ..ContactChange::default()
        },
        Event::Overflow { to, .. } => ContactChange {
            queue: Some(to.clone()),
            ..ContactChange::default()
        },
        Event::Transfer { target, .. } => match target {
            TransferTarget::Queue { queue } => waiting_in(Some(queue)),
            TransferTarget::Operator { operator } => held_by(Offered, *operator),
        },
        Event::Requeue { queue, .. } => waiting_in(Some(queue)),
        Event::Abandon { .. } => ContactChange {
            ended_at: Some(Some(at)),
            ..state_only(Abandoned)
        },
        Event::Resume { .. } => ContactChange {
            ended_at: Some(None),
            ..state_only(Waiting)
        },
        Event::WrapUp { .. } => state_only(Wrapping),
        Event::Complete { .. } => ContactChange {
            ended_at: Some(Some(at)),
            ..state_only(Completed)
        },
        Event::Relax { .. }
        | Event::CallerAway { .. }
        | Event::CallerBack { .. }
        | Event::Join { .. }
        | Event::Leave { .. }
        | Event::OperatorState { .. } => return None,
    };
    Some((event.contact()?, change))
}

#[cfg(test)]
mod tests {

    /// Folding a batch gives the row that applying its events one by one gives.
    #[test]
    fn a_folded_batch_equals_its_events_in_order() {
        use crate::domain::{Channel, Language, QueueId, RiskLevel};
        use crate::routing::{EndedBy, Event, OverflowReason};
        let (c, op) = (ContactId(7), OperatorId(3));
        let q = |s: &str| QueueId::parse(s).unwrap();
        let events = vec![
            Event::EnterQueue {
                contact: c,
                queue: q("general"),
                channel: Channel::Chat,
                risk: RiskLevel::Low,
            },
            Event::RiskChange {
                contact: c,
                from: RiskLevel::Low,
                to: RiskLevel::High,
            },
            Event::Overflow {
                contact: c,
                from: q("general"),
                to: q("crisis"),
                reason: OverflowReason::MaxWait,
            },
            Event::Offer {
                contact: c,
                operator: op,
                expires_at: Timestamp(50),
            },
            Event::Reject {
                contact: c,
                operator: op,
            },
            Event::Offer {
                contact: c,
                operator: op,
                expires_at: Timestamp(60),
            },
            Event::Accept {
                contact: c,
                operator: op,
            },
            Event::Connect {
                contact: c,
                operator: op,
                queue: q("crisis"),
                waited_ms: 9,
            },
            Event::WrapUp {
                contact: c,
                operator: op,
                by: EndedBy::Caller,
            },
            Event::Complete {
                contact: c,
                operator: op,
                handled_ms: 5,
            },
        ];
        let row = || ContactRecord {
            id: c,
            queue: q("general"),
            channel: Channel::Chat,
            language: Language::parse("zh").unwrap(),
            topic: None,
            age_group: None,
            risk: RiskLevel::Low,
            state: ContactState::Waiting,
            operator: None,
            caller_key_hash: None,
            resume_token_hash: "x".into(),
            entered_at: Timestamp(1),
            connected_at: None,
            ended_at: None,
        };
        for split in 0..=events.len() {
            let (before, batch) = events.split_at(split);
            let mut one_by_one = row();
            let mut folded = row();
            for e in before {
                if let Some((_, ch)) = project(e, Timestamp(10)) {
                    ch.apply(&mut one_by_one);
                    ch.apply(&mut folded);
                }
            }
            for e in batch {
                if let Some((_, ch)) = project(e, Timestamp(20)) {
                    ch.apply(&mut one_by_one);
                }
            }
            for (contact, ch) in project_batch(batch, Timestamp(20)) {
                assert_eq!(contact, c);
                ch.apply(&mut folded);
            }
            assert_eq!(folded, one_by_one, "split at {split}");
        }
    }

    use super::*;
    use crate::domain::{Channel, JoinMode, Language};
    use crate::routing::{EndedBy, OperatorState, OverflowReason, RequeueReason};

    const C: ContactId = ContactId(7);
    const OP: OperatorId = OperatorId(3);
    const AT: Timestamp = Timestamp(1_000);

    fn q(id: &str) -> QueueId {
        QueueId::parse(id).unwrap()
    }

    fn row() -> ContactRecord {
        ContactRecord {
            id: C,
            queue: q("general"),
            channel: Channel::Chat,
            language: Language::parse("zh").unwrap(),
            topic: None,
            age_group: None,
            risk: RiskLevel::Low,
            state: ContactState::Waiting,
            operator: None,
            caller_key_hash: None,
            resume_token_hash: "r".into(),
            entered_at: Timestamp(0),
            connected_at: None,
            ended_at: None,
        }
    }

    /// Applies events in order, each at its own time, like `record_events` does batch by batch.
    fn replay(events: &[(i64, Event)]) -> ContactRecord {
        let mut r = row();
        for (at, e) in events {
            if let Some((id, change)) = project(e, Timestamp(*at)) {
                assert_eq!(id, C);
                change.apply(&mut r);
            }
        }
        r
    }

    #[test]
    fn offer_reject_offer_connect_wrap_up_complete() {
        let offer = Event::Offer {
            contact: C,
            operator: OP,
            expires_at: Timestamp(99),
        };
        let r = replay(&[(1, offer.clone())]);
        assert_eq!((r.state, r.operator), (ContactState::Offered, Some(OP)));

        let rejected = [
            (1, offer.clone()),
            (
                2,
                Event::Reject {
                    contact: C,
                    operator: OP,
                },
            ),
        ];
        let r = replay(&rejected);
        assert_eq!((r.state, r.operator), (ContactState::Waiting, None));

        let mut life = rejected.to_vec();
        life.extend([
            (3, offer),
            (
                4,
                Event::Accept {
                    contact: C,
                    operator: OP,
                },
            ),
            (
                5,
                Event::Connect {
                    contact: C,
                    operator: OP,
                    queue: q("general"),
                    waited_ms: 5,
                },
            ),
        ]);
        let r = replay(&life);
        assert_eq!((r.state, r.operator), (ContactState::Assigned, Some(OP)));
        assert_eq!(r.connected_at, Some(Timestamp(5)));
        assert_eq!(r.ended_at, None);

        life.push((
            6,
            Event::WrapUp {
                contact: C,
                operator: OP,
                by: EndedBy::Caller,
            },
        ));
        assert_eq!(replay(&life).state, ContactState::Wrapping);

        life.push((
            7,
            Event::Complete {
                contact: C,
                operator: OP,
                handled_ms: 2,
            },
        ));
        let r = replay(&life);
        assert_eq!(r.state, ContactState::Completed);
        assert_eq!(
            r.operator,
            Some(OP),
            "the handling operator stays on record"
        );
        assert_eq!(r.ended_at, Some(Timestamp(7)));
        assert_eq!(r.connected_at, Some(Timestamp(5)));
    }

    #[test]
    fn timeouts_and_rescinds_return_to_waiting() {
        for e in [
            Event::OfferTimeout {
                contact: C,
                operator: OP,
            },
            Event::OfferRescinded {
                contact: C,
                operator: OP,
            },
        ] {
            let (_, change) = project(&e, AT).unwrap();
            assert_eq!(change.state, Some(ContactState::Waiting));
            assert_eq!(change.operator, Some(None));
            assert_eq!(change.queue, None);
        }
    }

    #[test]
    fn connected_at_keeps_the_first_connection() {
        let connect = |op| Event::Connect {
            contact: C,
            operator: OperatorId(op),
            queue: q("general"),
            waited_ms: 0,
        };
        let r = replay(&[(10, connect(1)), (20, connect(2))]);
        assert_eq!(r.connected_at, Some(Timestamp(10)));
        assert_eq!(r.operator, Some(OperatorId(2)));
    }

    #[test]
    fn risk_overflow_transfer_requeue() {
        let r = replay(&[(
            1,
            Event::RiskChange {
                contact: C,
                from: RiskLevel::Low,
                to: RiskLevel::Imminent,
            },
        )]);
        assert_eq!(r.risk, RiskLevel::Imminent);

        let r = replay(&[(
            1,
            Event::Overflow {
                contact: C,
                from: q("general"),
                to: q("backup"),
                reason: OverflowReason::MaxWait,
            },
        )]);
        assert_eq!((r.queue, r.state), (q("backup"), ContactState::Waiting));

        let assigned = (
            1,
            Event::Accept {
                contact: C,
                operator: OP,
            },
        );
        let r = replay(&[
            assigned.clone(),
            (
                2,
                Event::Transfer {
                    contact: C,
                    from: OP,
                    target: TransferTarget::Queue { queue: q("crisis") },
                },
            ),
        ]);
        assert_eq!(
            (r.state, r.operator, r.queue),
            (ContactState::Waiting, None, q("crisis"))
        );

        let r = replay(&[
            assigned.clone(),
            (
                2,
                Event::Transfer {
                    contact: C,
                    from: OP,
                    target: TransferTarget::Operator {
                        operator: OperatorId(9),
                    },
                },
            ),
        ]);
        assert_eq!(
            (r.state, r.operator, r.queue),
            (ContactState::Offered, Some(OperatorId(9)), q("general"))
        );

        let r = replay(&[
            assigned,
            (
                2,
                Event::Requeue {
                    contact: C,
                    queue: q("youth"),
                    reason: RequeueReason::OperatorLost,
                },
            ),
        ]);
        assert_eq!(
            (r.state, r.operator, r.queue),
            (ContactState::Waiting, None, q("youth"))
        );
    }

    #[test]
    fn abandon_then_resume() {
        let abandon = (
            4,
            Event::Abandon {
                contact: C,
                queue: q("general"),
                waited_ms: 4,
            },
        );
        let r = replay(std::slice::from_ref(&abandon));
        assert_eq!(
            (r.state, r.ended_at),
            (ContactState::Abandoned, Some(Timestamp(4)))
        );
        let r = replay(&[abandon, (5, Event::Resume { contact: C })]);
        assert_eq!((r.state, r.ended_at), (ContactState::Waiting, None));
    }

    #[test]
    fn events_that_leave_the_row_alone() {
        let untouched = [
            Event::Relax {
                contact: C,
                step: 0,
            },
            Event::CallerAway { contact: C },
            Event::CallerBack { contact: C },
            Event::Join {
                contact: C,
                participant: OP,
                mode: JoinMode::Monitor,
            },
            Event::Leave {
                contact: C,
                participant: OP,
            },
            Event::OperatorState {
                operator: OP,
                state: OperatorState::Available,
            },
        ];
        for e in untouched {
            assert_eq!(project(&e, AT), None, "{}", e.kind());
        }
    }

    #[test]
    fn enter_queue_is_waiting_and_touches_nothing_else() {
        let (id, change) = project(
            &Event::EnterQueue {
                contact: C,
                queue: q("general"),
                channel: Channel::Voice,
                risk: RiskLevel::High,
            },
            AT,
        )
        .unwrap();
        assert_eq!(id, C);
        assert_eq!(
            change,
            ContactChange {
                state: Some(ContactState::Waiting),
                ..ContactChange::default()
            }
        );
    }
}
