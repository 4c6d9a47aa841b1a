//! The registry of live connections and who is in which contact, and the fan-out to them.
//!
//! Each connection task owns its socket and a bounded inbox; the hub holds the sending ends.
//! A peer too slow to drain its inbox is dropped (its sender removed, so its task closes the
//! socket): a slow browser never blocks the router or other people's chats. Its task still
//! reports the connection gone when it ends ([`Hub::unregister_staff`] and
//! [`Hub::unregister_caller`] say it was still theirs), so the engine starts the grace period.
//! The lock is a `std::sync::Mutex` held for a few lines, never across `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::domain::{ContactId, JoinMode, OperatorId, Role};
use crate::store::{Message, Sender, Visibility};

use super::protocol::{CallerEvent, ContactSummary, StaffEvent, StaffLine, TranscriptLine};

/// Inbox depth of one connection. A peer this far behind is dropped.
pub const INBOX: usize = 256;

/// What a staff connection task is told to do. Some notices need a store read (transcripts), which
/// the connection task does itself so the router never waits on it.
#[derive(Debug, Clone)]
pub enum StaffNotice {
    Frame(StaffEvent),
    Offer {
        contact: ContactSummary,
        expires_at: crate::domain::Timestamp,
    },
    Assigned {
        contact: ContactSummary,
        /// Who has joined the contact (supervisors, crisis leads) and how.
        participants: Vec<(OperatorId, JoinMode)>,
    },
    Joined {
        contact: ContactSummary,
        mode: JoinMode,
        /// Who has joined the contact, the one told included, and how.
        participants: Vec<(OperatorId, JoinMode)>,
    },
}

#[derive(Debug, Clone)]
pub enum CallerNotice {
    Frame(CallerEvent),
}

struct StaffConn {
    conn: u64,
    role: Role,
    tx: mpsc::Sender<StaffNotice>,
}

struct CallerConn {
    conn: u64,
    tx: mpsc::Sender<CallerNotice>,
    /// Known to have no transcript yet (joined on this connection, nothing written since by the
    /// caller or by staff), so an offer of it needs no read of the store.
    quiet: bool,
}

/// An account as colleagues see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
}

impl Person {
    pub fn of(account: &crate::store::Account) -> Self {
        Person {
            name: account.display_name.clone(),
            role: account.role,
            disabled: account.disabled,
        }
    }
}

/// Who takes part in a live contact, besides the caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Members {
    /// The operator holding the contact (assigned or wrapping).
    pub operator: Option<OperatorId>,
    pub participants: Vec<(OperatorId, JoinMode)>,
    /// The conversation is over (wrap-up): its people may read it, nobody writes to it.
    pub ended: bool,
}

#[derive(Default)]
struct Inner {
    next_conn: u64,
    staff: HashMap<OperatorId, StaffConn>,
    callers: HashMap<ContactId, CallerConn>,
    members: HashMap<ContactId, Members>,
    /// Connections dropped as too slow whose tasks have not ended yet.
    dropped: HashSet<u64>,
    /// Staff connections closed because their person signed out or their account changed,
    /// whose tasks have not ended yet (a subset of `dropped`).
    signed_out: HashSet<u64>,
    /// Every account's display name and role, for callers ("you are talking with …"),
    /// wallboards and the staff directory.
    people: HashMap<OperatorId, Person>,
}

impl Inner {
    /// Whether connection `conn`, now ending, was its person's (or contact's) last: it is the one
    /// registered (`current`), or the hub dropped it as too slow and none has registered since.
    fn was_last(&mut self, conn: u64, current: Option<u64>) -> bool {
        let dropped = self.dropped.remove(&conn);
        self.signed_out.remove(&conn);
        match current {
            Some(current) => current == conn,
            None => dropped,
        }
    }

    /// Drops a staff connection (its task sees its inbox closed), remembering it was dropped.
    fn drop_staff(&mut self, id: OperatorId) {
        if let Some(c) = self.staff.remove(&id) {
            self.dropped.insert(c.conn);
        }
    }
}

/// Why a staff console's inbox was closed (see [`Hub::why_staff_closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffClosed {
    Replaced,
    SignedOut,
    TooSlow,
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

/// Counts of live connections, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnectionCounts {
    pub callers: usize,
    pub operators: usize,
    pub crisis_leads: usize,
    pub supervisors: usize,
    pub admins: usize,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that matters
        // more than losing the whole hub would, so a poisoned lock is recovered.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a staff console, replacing (and so closing) any earlier one of the same person.
    /// Returns the connection number to pass to [`Hub::unregister_staff`].
    pub fn register_staff(&self, id: OperatorId, role: Role, tx: mpsc::Sender<StaffNotice>) -> u64 {
        let mut inner = self.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        inner.staff.insert(id, StaffConn { conn, role, tx });
        conn
    }

    /// Closes a person's console (its task sees its inbox closed and the person goes, as after
    /// a lost connection): their account was disabled or changed, or they signed out. A console
    /// still allowed in connects again with its session and what the account is now.
    pub fn sign_out_staff(&self, id: OperatorId) {
        let mut inner = self.lock();
        if let Some(conn) = inner.staff.get(&id).map(|c| c.conn) {
            inner.signed_out.insert(conn);
        }
        inner.drop_staff(id);
    }

    /// Why the hub closed staff connection `conn`'s inbox: the console must stop only when a
    /// newer console of the same person took its place; after a sign-out or an account change
    /// it connects again (and is refused if its session has ended), and after being too slow it
    /// simply connects again.
    pub fn why_staff_closed(&self, id: OperatorId, conn: u64) -> StaffClosed {
        let inner = self.lock();
        if inner.signed_out.contains(&conn) {
            StaffClosed::SignedOut
        } else if inner.staff.get(&id).is_some_and(|c| c.conn != conn) {
            StaffClosed::Replaced
        } else {
            StaffClosed::TooSlow
        }
    }

    /// Removes the registration if it is still this connection's. True if it was, or if the hub
    /// dropped this connection as too slow and no newer one has registered since: either way the
    /// person is gone, and the engine must be told. False if a newer connection took over.
    pub fn unregister_staff(&self, id: OperatorId, conn: u64) -> bool {
        let mut inner = self.lock();
        let current = inner.staff.get(&id).map(|c| c.conn);
        if current == Some(conn) {
            inner.staff.remove(&id);
        }
        inner.was_last(conn, current)
    }

    pub fn register_caller(&self, contact: ContactId, tx: mpsc::Sender<CallerNotice>) -> u64 {
        self.register(contact, tx, false)
    }

    /// Registers the connection of a contact that has just been created: it has no transcript.
    pub fn register_new_caller(&self, contact: ContactId, tx: mpsc::Sender<CallerNotice>) -> u64 {
        self.register(contact, tx, true)
    }

    fn register(&self, contact: ContactId, tx: mpsc::Sender<CallerNotice>, quiet: bool) -> u64 {
        let mut inner = self.lock();
        inner.next_conn += 1;
        let conn = inner.next_conn;
        inner
            .callers
            .insert(contact, CallerConn { conn, tx, quiet });
        conn
    }

    /// A line is being written into `contact` (by the caller or by staff, whispers included): it
    /// is no longer known to have no transcript.
    pub fn spoke(&self, contact: ContactId) {
        if let Some(c) = self.lock().callers.get_mut(&contact) {
            c.quiet = false;
        }
    }

    /// True only if `contact` is known to have no transcript (else its transcript must be read).
    pub fn is_quiet(&self, contact: ContactId) -> bool {
        self.lock().callers.get(&contact).is_some_and(|c| c.quiet)
    }

    /// True if another connection of `contact` has taken the place of `conn` (the conversation
    /// was resumed elsewhere), as opposed to `conn` having been dropped as too slow.
    pub fn caller_replaced(&self, contact: ContactId, conn: u64) -> bool {
        self.lock()
            .callers
            .get(&contact)
            .is_some_and(|c| c.conn != conn)
    }

    /// As [`Hub::unregister_staff`], for a caller's connection.
    pub fn unregister_caller(&self, contact: ContactId, conn: u64) -> bool {
        let mut inner = self.lock();
        let current = inner.callers.get(&contact).map(|c| c.conn);
        if current == Some(conn) {
            inner.callers.remove(&contact);
        }
        inner.was_last(conn, current)
    }

    pub fn set_person(&self, id: OperatorId, person: Person) {
        self.lock().people.insert(id, person);
    }

    pub fn person(&self, id: OperatorId) -> Option<Person> {
        self.lock().people.get(&id).cloned()
    }

    pub fn staff_name(&self, id: OperatorId) -> Option<String> {
        self.lock().people.get(&id).map(|p| p.name.clone())
    }

    /// Everyone, ordered by id.
    pub fn people(&self) -> Vec<(OperatorId, Person)> {
        let mut all: Vec<_> = self
            .lock()
            .people
            .iter()
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    pub fn is_caller_connected(&self, contact: ContactId) -> bool {
        self.lock().callers.contains_key(&contact)
    }

    /// Sets (or with `None`, forgets) who is in a contact. Called by the router after each batch.
    pub fn set_members(&self, contact: ContactId, members: Option<Members>) {
        let mut inner = self.lock();
        match members {
            Some(m) => inner.members.insert(contact, m),
            None => inner.members.remove(&contact),
        };
    }

    pub fn members(&self, contact: ContactId) -> Option<Members> {
        self.lock().members.get(&contact).cloned()
    }

    /// Queues a notice for a person's console; false when no console of theirs is connected
    /// (or it was too slow and has just been dropped).
    pub fn to_staff(&self, id: OperatorId, notice: StaffNotice) -> bool {
        let mut inner = self.lock();
        let Some(c) = inner.staff.get(&id) else {
            return false;
        };
        if c.tx.try_send(notice).is_err() {
            tracing::warn!(operator = %id, "staff connection too slow or gone; dropping it");
            inner.drop_staff(id);
            return false;
        }
        true
    }

    pub fn to_caller(&self, contact: ContactId, notice: CallerNotice) {
        let mut inner = self.lock();
        if let Some(c) = inner.callers.get(&contact)
            && c.tx.try_send(notice).is_err()
        {
            tracing::warn!(contact = %contact, "caller connection too slow or gone; dropping it");
            if let Some(c) = inner.callers.remove(&contact) {
                inner.dropped.insert(c.conn);
            }
        }
    }

    /// Sends a frame to every connected supervisor, crisis lead and admin (wallboards).
    pub fn to_floor_watchers(&self, frame: &StaffEvent) {
        let mut inner = self.lock();
        let mut slow = Vec::new();
        for (id, c) in &inner.staff {
            if c.role.may_join_contacts()
                && c.tx.try_send(StaffNotice::Frame(frame.clone())).is_err()
            {
                slow.push(*id);
            }
        }
        for id in slow {
            tracing::warn!(operator = %id, "staff connection too slow or gone; dropping it");
            inner.drop_staff(id);
        }
    }

    /// Delivers a durable transcript line to everyone in the contact who should see it,
    /// except its author. Whispers (visibility `Operators`) never reach the caller.
    pub fn deliver_message(&self, message: &Message) {
        let Some(members) = self.members(message.contact) else {
            return;
        };
        if message.sender != Sender::Caller && message.visibility == Visibility::All {
            self.to_caller(
                message.contact,
                CallerNotice::Frame(CallerEvent::Message {
                    line: TranscriptLine::from(message),
                }),
            );
        }
        let line = StaffLine::from(message);
        let staff = members
            .operator
            .into_iter()
            .chain(members.participants.iter().map(|(id, _)| *id));
        for id in staff {
            if Some(id) != message.author {
                self.to_staff(
                    id,
                    StaffNotice::Frame(StaffEvent::Message { line: line.clone() }),
                );
            }
        }
    }

    /// Relays a typing indicator from one side of a contact to the other.
    pub fn relay_typing(&self, contact: ContactId, from_caller: bool, author: Option<OperatorId>) {
        if from_caller {
            if let Some(members) = self.members(contact) {
                let staff = members
                    .operator
                    .into_iter()
                    .chain(members.participants.iter().map(|(id, _)| *id));
                for id in staff {
                    self.to_staff(id, StaffNotice::Frame(StaffEvent::Typing { contact }));
                }
            }
        } else if author.is_some() {
            self.to_caller(contact, CallerNotice::Frame(CallerEvent::Typing));
        }
    }

    pub fn connection_counts(&self) -> ConnectionCounts {
        let inner = self.lock();
        let mut counts = ConnectionCounts {
            callers: inner.callers.len(),
            ..Default::default()
        };
        for c in inner.staff.values() {
            match c.role {
                Role::Operator => counts.operators += 1,
                Role::CrisisLead => counts.crisis_leads += 1,
                Role::Supervisor => counts.supervisors += 1,
                Role::Admin => counts.admins += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> StaffNotice {
        StaffNotice::Frame(StaffEvent::Pong)
    }

    /// Fills a staff inbox until the hub drops the connection as too slow.
    fn overflow(hub: &Hub, id: OperatorId) {
        for _ in 0..INBOX {
            assert!(hub.to_staff(id, frame()));
        }
        assert!(!hub.to_staff(id, frame()), "the full inbox is dropped");
    }

    #[test]
    fn a_connection_dropped_as_too_slow_is_still_reported_gone_by_its_task() {
        let hub = Hub::default();
        let id = OperatorId(7);
        let (tx, _rx) = mpsc::channel(INBOX);
        let conn = hub.register_staff(id, Role::Operator, tx);
        overflow(&hub, id);
        assert!(
            hub.unregister_staff(id, conn),
            "the engine must hear it is gone"
        );
        assert!(!hub.unregister_staff(id, conn), "told once");

        let contact = ContactId(3);
        let (tx, _rx) = mpsc::channel(1);
        let conn = hub.register_caller(contact, tx);
        hub.to_caller(contact, CallerNotice::Frame(CallerEvent::Pong));
        hub.to_caller(contact, CallerNotice::Frame(CallerEvent::Pong));
        assert!(!hub.is_caller_connected(contact));
        assert!(hub.unregister_caller(contact, conn));
    }

    #[test]
    fn a_dropped_connection_replaced_by_a_newer_one_is_not_reported_gone() {
        let hub = Hub::default();
        let id = OperatorId(7);
        let (tx, _old) = mpsc::channel(INBOX);
        let old = hub.register_staff(id, Role::Operator, tx);
        overflow(&hub, id);
        let (tx, _new) = mpsc::channel(INBOX);
        let new = hub.register_staff(id, Role::Operator, tx);
        assert!(
            !hub.unregister_staff(id, old),
            "the person is back on a newer console"
        );
        assert!(hub.unregister_staff(id, new));
    }

    #[test]
    fn a_console_is_told_why_it_was_closed() {
        let hub = Hub::default();
        let id = OperatorId(7);
        let (tx, _a) = mpsc::channel(INBOX);
        let a = hub.register_staff(id, Role::Operator, tx);
        let (tx, _b) = mpsc::channel(INBOX);
        let b = hub.register_staff(id, Role::Operator, tx);
        assert_eq!(hub.why_staff_closed(id, a), StaffClosed::Replaced);
        overflow(&hub, id);
        assert_eq!(hub.why_staff_closed(id, b), StaffClosed::TooSlow);
        assert!(hub.unregister_staff(id, b));
        assert!(!hub.unregister_staff(id, a));

        let (tx, _c) = mpsc::channel(INBOX);
        let c = hub.register_staff(id, Role::Operator, tx);
        hub.sign_out_staff(id);
        assert_eq!(hub.why_staff_closed(id, c), StaffClosed::SignedOut);
        assert!(hub.unregister_staff(id, c));
        assert!(
            hub.lock().signed_out.is_empty(),
            "forgotten when its task ends"
        );
    }
}
