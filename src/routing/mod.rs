//! The routing engine: contacts, offers, presence, queues, skills, priority, relaxation, overflow.
//!
//! It is **pure**: no IO, no clock, no randomness. Every entry point takes the current time as a
//! [`Timestamp`] and returns the [`Event`]s it decided, in order. The owner task (see `gateway`)
//! makes those events durable before anyone is told about them. This is what makes the engine
//! testable with property tests and simulation in virtual time, and what cluster mode replicates.
//!
//! Priority: imminent-risk contacts go strictly first; everyone else is ordered by an ageing score
//! (time waited + a per-risk bonus), so nobody starves. Because every contact ages at the same
//! rate, that order never changes with time and is kept as a sorted key:
//! `effective_since = entered_at - risk_bonus(risk)`.
//!
//! Invariants (held by property tests in `tests/routing_props.rs`):
//! - a contact is never offered or assigned to two operators at once;
//! - no operator is ever over capacity (offers count against capacity);
//! - every contact is waiting, offered, assigned, wrapping, or in exactly one terminal state;
//! - after any call returns, no imminent contact waits while an eligible operator has room.

mod engine;
pub mod lexicon;
mod model;

pub use engine::Engine;
pub use model::*;
