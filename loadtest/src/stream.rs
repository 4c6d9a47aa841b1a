//! The windowed frame stream, shared by the echo baseline and the hotline relay so that both are
//! measured by the same client code.
//!
//! A *lane* is one sender socket with a window of `W` frames in flight. The sender task takes a
//! window slot for every frame it sends; a slot comes back when the frame is *delivered* — for the
//! echo server when the echo arrives on the same socket, for the relay when the operator's console
//! receives the `message` frame. Frames of one lane are delivered in order (one TCP connection for
//! the echo; for the relay, one caller's lines are made durable and fanned out in order), so the
//! send time of a delivered frame is the front of the lane's queue and its latency is exact.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{Sink, SinkExt as _};
use hdrhistogram::Histogram;
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The chat line every benchmark sends: ordinary Chinese and English text that matches no term of
/// the risk lexicon (so the relay does not also raise risk).
pub const CHAT_TEXT: &str =
    "最近考试压力很大，晚上总是睡不好，想找人聊一聊。I have been feeling stressed about my exams.";

/// A caller's `say` frame. The client id has a fixed width so every frame has the same size.
pub fn say_frame(lane: usize, seq: u64) -> String {
    serde_json::json!({
        "type": "say",
        "text": CHAT_TEXT,
        "client_id": format!("c{lane:05}-{seq:010}"),
    })
    .to_string()
}

/// One sender socket's window and the send times of its frames in flight.
pub struct Lane {
    window: Semaphore,
    in_flight: Mutex<VecDeque<Instant>>,
}

impl Lane {
    pub fn new(window: usize) -> Arc<Lane> {
        Arc::new(Lane {
            window: Semaphore::new(window),
            in_flight: Mutex::new(VecDeque::with_capacity(window)),
        })
    }

    /// A frame of this lane arrived where it was going (at `at`): count it and free its slot.
    pub fn delivered(&self, meter: &Meter, at: Instant) {
        let sent = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        meter.delivered(sent.map(|s| at.saturating_duration_since(s)));
        self.window.add_permits(1);
    }
}

/// Counts deliveries and their latencies, only while measuring.
pub struct Meter {
    measuring: AtomicBool,
    stopped: AtomicBool,
    stop: Notify,
    sent: AtomicU64,
    delivered_total: AtomicU64,
    delivered_measured: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Meter {
    pub fn new() -> Arc<Meter> {
        Arc::new(Meter {
            measuring: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            sent: AtomicU64::new(0),
            delivered_total: AtomicU64::new(0),
            delivered_measured: AtomicU64::new(0),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")),
        })
    }

    fn delivered(&self, latency: Option<Duration>) {
        self.delivered_total.fetch_add(1, Ordering::Relaxed);
        if self.measuring.load(Ordering::Relaxed) {
            self.delivered_measured.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = latency {
                let us = u64::try_from(l.as_micros()).unwrap_or(u64::MAX).max(1);
                let _ = self
                    .latency_us
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(us);
            }
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn delivered_total(&self) -> u64 {
        self.delivered_total.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop.notify_waiters();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// Sends frames on `sink` for as long as the meter runs, keeping at most the lane's window in
/// flight. Frames that are ready together are written together and flushed once.
pub async fn send_loop<S>(
    mut sink: S,
    lane: Arc<Lane>,
    meter: Arc<Meter>,
    mut frame: impl FnMut(u64) -> String,
) -> Result<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    let mut seq = 0u64;
    loop {
        let stopped = meter.stop.notified();
        if meter.is_stopped() {
            break;
        }
        let permit = tokio::select! {
            permit = lane.window.acquire() => permit?,
            _ = stopped => break,
        };
        permit.forget();
        let mut ready = 1;
        while let Ok(p) = lane.window.try_acquire() {
            p.forget();
            ready += 1;
        }
        for _ in 0..ready {
            seq += 1;
            let text = frame(seq);
            lane.in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push_back(Instant::now());
            sink.feed(Message::text(text)).await?;
        }
        sink.flush().await?;
        meter.sent.fetch_add(ready, Ordering::Relaxed);
    }
    Ok(sink)
}

/// What one measured stream achieved.
#[derive(Debug, Clone)]
pub struct StreamResult {
    pub seconds: f64,
    pub delivered: u64,
    pub per_second: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Frames sent in the whole run (warm-up and drain included) and how many were delivered.
    pub sent_total: u64,
    pub delivered_total: u64,
}

/// Lets the senders run `warmup`, measures for `duration`, then stops them and waits (at most
/// `drain`) for the frames still in flight.
pub async fn measure(
    meter: &Meter,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
) -> StreamResult {
    tokio::time::sleep(warmup).await;
    meter.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    meter.measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    meter.stop();
    let deadline = Instant::now() + drain;
    while meter.delivered_total() < meter.sent() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = meter.delivered_measured.load(Ordering::Relaxed);
    let h = meter.latency_us.lock().unwrap_or_else(|p| p.into_inner());
    StreamResult {
        seconds,
        delivered,
        per_second: delivered as f64 / seconds,
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
        sent_total: meter.sent(),
        delivered_total: meter.delivered_total(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_frames_have_one_size() {
        let a = say_frame(0, 1);
        let b = say_frame(99_999, 9_999_999_999);
        assert_eq!(a.len(), b.len());
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["type"], "say");
        assert_eq!(v["text"], CHAT_TEXT);
    }

    #[tokio::test]
    async fn window_limits_frames_in_flight_and_delivery_frees_it() {
        let lane = Lane::new(3);
        let meter = Meter::new();
        let sink = futures_util::sink::drain::<Message>()
            .sink_map_err(|never: std::convert::Infallible| -> WsError { match never {} });
        // The sink never blocks; only the window does.
        let sender = tokio::spawn(send_loop(sink, lane.clone(), meter.clone(), |s| {
            s.to_string()
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(meter.sent(), 3);
        lane.delivered(&meter, Instant::now());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(meter.sent(), 4);
        meter.stop();
        drop(sender.await.unwrap().unwrap());
    }
}
