//! Read-only views: contacts, operators, queue places, waiting summaries.

use super::index::{capacity, fits};
use super::*;
use crate::domain::{QueueId, RiskLevel};
use crate::routing::{ContactView, OperatorView, QueuePlace, WaitingSummary};

impl Engine {
    fn view_of(&self, c: &Contact) -> ContactView {
        ContactView {
            id: c.id,
            queue: self.queues[c.queue].cfg.id.clone(),
            channel: c.channel,
            language: c.language.clone(),
            topic: c.topic.clone(),
            risk: c.risk,
            state: c.state,
            entered_at: c.entered_at,
            operator: c.operator,
            participants: c.participants.clone(),
            caller_away: c.caller_away,
        }
    }

    /// One contact: any non-terminal contact, or an abandoned one still inside its resume window.
    pub fn contact(&self, id: ContactId) -> Option<ContactView> {
        self.contacts.get(&id).map(|c| self.view_of(c))
    }

    /// All non-terminal contacts, by id.
    pub fn contacts(&self) -> Vec<ContactView> {
        let mut all: Vec<ContactView> = self
            .contacts
            .values()
            .filter(|c| !c.state.is_terminal())
            .map(|c| self.view_of(c))
            .collect();
        all.sort_by_key(|v| v.id);
        all
    }

    fn op_view(&self, op: usize) -> OperatorView {
        let o = &self.ops[op];
        OperatorView {
            id: o.profile.id,
            presence: o.presence,
            state: self.derived_state(op),
            contacts: o.contacts.iter().copied().collect(),
            idle_since: o.idle_since,
        }
    }

    pub fn operator(&self, id: OperatorId) -> Option<OperatorView> {
        self.op_ix.get(&id).map(|&op| self.op_view(op))
    }

    /// All operators, by id.
    pub fn operators(&self) -> Vec<OperatorView> {
        let mut all: Vec<OperatorView> = (0..self.ops.len()).map(|op| self.op_view(op)).collect();
        all.sort_by_key(|v| v.id);
        all
    }

    pub fn queue_ids(&self) -> Vec<QueueId> {
        self.queue_ix.keys().cloned().collect()
    }

    /// Waiting (and offered) contacts of a queue in routing order, with 1-based position and
    /// an estimated wait.
    ///
    /// The position counts the queue's contacts on the *same channel* only (voice and chat are
    /// served by different slots, so a chat caller is not behind a voice caller), offered ones
    /// included until they are answered. The estimate is a plain queueing rule of thumb, shown
    /// to callers as a rough guide: `position × mean handle time ÷ servers`, the mean handle time is the queue's exponentially weighted mean of completed
    /// contacts' talk + wrap-up time (weight 0.2 for the newest, starting at
    /// `default_handle_ms`), and `servers` is the number of slots of that channel held by
    /// connected, Available operators who meet the queue's own language and (unrelaxed) skill
    /// requirements, at least 1. An offered contact's estimate is 0. `_now` is accepted for
    /// estimates that will account for time already waited.
    pub fn queue_places(&self, _now: Timestamp, queue: &QueueId) -> Vec<QueuePlace> {
        let Some(qi) = self.queue_index(queue) else {
            return Vec::new();
        };
        let q = &self.queues[qi];
        let mut servers = [0i64; 2];
        let reqs = super::index::requirements(&q.cfg, &[], None, None);
        for o in &self.ops {
            if !o.connected || o.presence != Presence::Available {
                continue;
            }
            for ch in [CHAT, VOICE] {
                let speaks = if q.cfg.languages.is_empty() {
                    o.profile.languages.first()
                } else {
                    q.cfg
                        .languages
                        .iter()
                        .find(|l| o.profile.languages.contains(l))
                };
                if let Some(lang) = speaks
                    && fits(&o.profile, &q.cfg, ch, lang, &reqs)
                {
                    servers[ch] += i64::from(capacity(&o.profile, ch));
                }
            }
        }
        let handle = q.handle_ewma.max(0.0);
        let mut ahead = [0i64; 2];
        let mut places = Vec::with_capacity(q.members.len());
        for key in &q.members {
            let Some(c) = self.contacts.get(&key.id) else {
                continue;
            };
            let ch = ch_ix(c.channel);
            ahead[ch] += 1;
            let estimated_wait_ms = if c.state == ContactState::Offered {
                0
            } else {
                (ahead[ch] as f64 * handle / servers[ch].max(1) as f64).round() as i64
            };
            places.push(QueuePlace {
                contact: key.id,
                position: u32::try_from(ahead[ch]).unwrap_or(u32::MAX),
                estimated_wait_ms,
            });
        }
        places
    }

    /// Per queue (by id) and risk level (lowest first): how many contacts wait (waiting or
    /// offered, not yet answered), and when the longest of their current waits began. Every
    /// queue gets all five levels, with zero counts, so gauges fall back to zero. O(waiting
    /// contacts).
    pub fn waiting_summary(&self) -> Vec<WaitingSummary> {
        let mut out = Vec::with_capacity(self.queue_ix.len() * RiskLevel::ALL.len());
        for (id, &qi) in &self.queue_ix {
            let mut count = [0usize; 5];
            let mut oldest: [Option<Timestamp>; 5] = [None; 5];
            for key in &self.queues[qi].members {
                if let Some(c) = self.contacts.get(&key.id) {
                    let r = c.risk.index();
                    count[r] += 1;
                    let since = c.waiting_since;
                    oldest[r] = Some(oldest[r].map_or(since, |o| o.min(since)));
                }
            }
            for risk in RiskLevel::ALL {
                out.push(WaitingSummary {
                    queue: id.clone(),
                    risk,
                    waiting: count[risk.index()],
                    oldest_waiting_since: oldest[risk.index()],
                });
            }
        }
        out
    }
}
