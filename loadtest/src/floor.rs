//! Scripted operator consoles: set themselves available, accept every offer at once, and either
//! keep the contact (relay) or end it and finish wrap-up right away (enqueue). What they see is
//! recorded in one shared [`Floor`]; every frame's arrival time is taken as soon as it is read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::Result;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;

use crate::stream::{Lane, Meter};
use crate::ws::{self, Ws};

/// What an operator does with a contact once it is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAssigned {
    /// Keep it (the relay benchmark chats on it).
    Keep,
    /// `end` it at once, then `finish_wrap_up` when the wrap-up starts (frees the slot).
    EndAndFinish,
}

/// Shared record of the operators' side.
pub struct Floor {
    pub on_assigned: OnAssigned,
    /// When each contact's offer reached its operator.
    pub offers: Mutex<HashMap<i64, Instant>>,
    /// Contacts that reached `assigned`, in order, with the operator's index.
    pub assigned: mpsc::UnboundedSender<(i64, usize)>,
    pub completed: AtomicU64,
    /// Error frames by code, and how sockets were closed (by the server).
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub closes: Mutex<Vec<String>>,
    /// Relay: the lane of each contact, set before any line is sent.
    pub lanes: OnceLock<HashMap<i64, Arc<Lane>>>,
    pub meter: Arc<Meter>,
    pub stop: Notify,
}

impl Floor {
    pub fn new(
        on_assigned: OnAssigned,
        meter: Arc<Meter>,
    ) -> (Arc<Floor>, mpsc::UnboundedReceiver<(i64, usize)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let floor = Arc::new(Floor {
            on_assigned,
            offers: Mutex::new(HashMap::new()),
            assigned: tx,
            completed: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            closes: Mutex::new(Vec::new()),
            lanes: OnceLock::new(),
            meter,
            stop: Notify::new(),
        });
        (floor, rx)
    }

    pub fn count_error(&self, frame: &Value) {
        let code = frame["code"].as_str().unwrap_or("?").to_owned();
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn closes(&self) -> Vec<String> {
        self.closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Makes the console available and waits for its `state` answer.
pub async fn go_available(ws: &mut Ws) -> Result<()> {
    ws::send_json(
        ws,
        &json!({"type": "set_presence", "presence": {"status": "available"}}),
    )
    .await?;
    ws::expect(ws, "state").await?;
    Ok(())
}

/// Runs one operator console until the floor stops or the server closes it.
pub async fn operator(mut ws: Ws, index: usize, floor: Arc<Floor>) {
    loop {
        let stopped = floor.stop.notified();
        let next = tokio::select! {
            next = ws.next() => next,
            _ = stopped => break,
        };
        let at = Instant::now();
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let why = format!("operator {index} closed by the server: {frame:?}");
                floor
                    .closes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(why);
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                let why = format!("operator {index} socket error: {e}");
                floor
                    .closes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(why);
                return;
            }
            None => {
                let why = format!("operator {index} socket ended");
                floor
                    .closes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(why);
                return;
            }
        };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let reply = match frame["type"].as_str().unwrap_or_default() {
            "message" => {
                let contact = frame["line"]["contact"].as_i64().unwrap_or_default();
                if let Some(lane) = floor.lanes.get().and_then(|l| l.get(&contact)) {
                    lane.delivered(&floor.meter, at);
                }
                None
            }
            "offer" => {
                let contact = frame["contact"]["id"].as_i64().unwrap_or_default();
                floor
                    .offers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(contact, at);
                Some(json!({"type": "accept", "contact": contact}))
            }
            "assigned" => {
                let contact = frame["contact"]["summary"]["id"]
                    .as_i64()
                    .unwrap_or_default();
                let _ = floor.assigned.send((contact, index));
                match floor.on_assigned {
                    OnAssigned::Keep => None,
                    OnAssigned::EndAndFinish => Some(json!({"type": "end", "contact": contact})),
                }
            }
            "wrap_up" => {
                let contact = frame["contact"].as_i64().unwrap_or_default();
                Some(json!({"type": "finish_wrap_up", "contact": contact}))
            }
            "completed" => {
                floor.completed.fetch_add(1, Ordering::Relaxed);
                None
            }
            "error" => {
                floor.count_error(&frame);
                None
            }
            _ => None,
        };
        if let Some(reply) = reply
            && ws.send(Message::text(reply.to_string())).await.is_err()
        {
            return;
        }
    }
    let _ = ws.close(None).await;
}
