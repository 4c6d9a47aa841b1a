//! Enqueue → offer latency at a steady arrival rate.
//!
//! Caller sockets are opened (and greeted) before the clock starts, so connection set-up is not
//! counted. Caller `i` sends `join` at `t0 + i / rate` (open loop: the schedule does not wait for
//! answers). The latency of a contact is from the moment its `join` was written to the moment its
//! operator's console read the `offer` — both in this process, on one monotonic clock.
//!
//! Operators accept every offer, `end` the contact as soon as it is assigned and finish wrap-up
//! at once, so capacity is freed continuously; there are enough of them that one is always free
//! and none comes near the server's per-console frame limit (200 frames / 10 s, 3 frames a contact).
//! With `--hold` they keep every contact instead (one frame a contact, no wrap-up traffic), which
//! needs operators × chat capacity ≥ callers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::floor::{self, Floor, OnAssigned};
use crate::server::{self, CpuMeter, Hotline, ServerConfig};
use crate::stream::Meter;
use crate::ws::{self, Ws};

/// Frames a staff console may send per 10 s (the server's `STAFF_FRAMES_PER_10S`, not configurable).
const STAFF_FRAMES_PER_10S: f64 = 200.0;

#[derive(Debug, Clone)]
pub struct EnqueueOptions {
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub operators: usize,
    pub chat_capacity: u8,
    /// Operators keep every contact (no `end`): needs operators × capacity ≥ callers.
    pub hold: bool,
    pub server: ServerConfig,
}

/// What one caller saw.
#[derive(Debug)]
enum CallerReport {
    Joined {
        index: usize,
        scheduled: Instant,
        sent: Instant,
        joined: Instant,
        contact: i64,
        position: u64,
    },
    Failed {
        index: usize,
        why: String,
    },
}

pub async fn run(options: EnqueueOptions) -> Result<()> {
    ensure!(
        options.rate > 0.0 && options.operators > 0,
        "rate and operators must be > 0"
    );
    let warm = (options.rate * options.warmup.as_secs_f64()).round() as usize;
    let total = warm + (options.rate * options.duration.as_secs_f64()).round() as usize;
    let frames_per_contact = if options.hold { 1.0 } else { 3.0 };
    let per_console = frames_per_contact * options.rate * 10.0 / options.operators as f64;
    println!(
        "== enqueue: {} joins/s for {} s (after {} s warm-up): {total} callers; {} operators × chat capacity {} ==",
        options.rate,
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.operators,
        options.chat_capacity
    );
    println!(
        "   each console sends ≈{per_console:.0} frames / 10 s (server limit {STAFF_FRAMES_PER_10S})"
    );
    if per_console > 0.8 * STAFF_FRAMES_PER_10S {
        println!("   WARNING: too few operators: consoles may be closed for flooding (1008)");
    }
    let slots = options.operators * usize::from(options.chat_capacity);
    if options.hold {
        println!("   operators keep their contacts: {slots} chat slots for {total} callers");
        ensure!(
            slots >= total,
            "--hold needs operators × chat capacity ≥ {total}"
        );
    } else {
        println!("   operators accept, end and finish wrap-up at once: {slots} chat slots reused");
    }

    let names: Vec<String> = (1..=options.operators)
        .map(|i| format!("bench.op{i:04}"))
        .collect();
    let mut config = options.server.clone();
    config.accounts = std::iter::once((server::ADMIN.to_owned(), "admin"))
        .chain(names.iter().map(|n| (n.clone(), "operator")))
        .collect();
    let hotline = Hotline::start(&config).await?;
    let outcome = measure(&hotline, &names, &options, warm, total).await;
    hotline.stop().await?;
    outcome
}

async fn measure(
    hotline: &Hotline,
    names: &[String],
    options: &EnqueueOptions,
    warm: usize,
    total: usize,
) -> Result<()> {
    hotline
        .prepare_operators(names, options.chat_capacity)
        .await?;
    let on_assigned = if options.hold {
        OnAssigned::Keep
    } else {
        OnAssigned::EndAndFinish
    };
    let (floor, _assigned) = Floor::new(on_assigned, Meter::new());
    let setup = Instant::now();
    let mut operator_tasks = JoinSet::new();
    for (index, name) in names.iter().enumerate() {
        let mut ws = hotline.staff(name).await?;
        floor::go_available(&mut ws).await?;
        operator_tasks.spawn(floor::operator(ws, index, floor.clone()));
    }

    // Every caller's socket, open and greeted before the clock starts.
    let sockets = open_callers(hotline, total).await?;
    println!(
        "   set-up: {} consoles available and {total} caller sockets open in {:.1} s",
        names.len(),
        setup.elapsed().as_secs_f64()
    );

    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let period = Duration::from_secs_f64(1.0 / options.rate);
    let t0 = Instant::now() + Duration::from_millis(500);
    let mut callers = JoinSet::new();
    for (index, ws) in sockets.into_iter().enumerate() {
        let at = t0 + period * u32::try_from(index)?;
        callers.spawn(caller(ws, index, at, report_tx.clone(), stop_rx.clone()));
    }
    drop(report_tx);

    let server_cpu = CpuMeter::start(Some(hotline.pid()?));
    let client_cpu = CpuMeter::start(None);
    tokio::time::sleep_until((t0 + options.warmup).into()).await;
    let metrics_before = hotline.metrics().await?;
    let measured_from = Instant::now();
    let last_join = t0 + period * u32::try_from(total.saturating_sub(1))?;
    tokio::time::sleep_until(last_join.into()).await;
    // Let the last offers arrive (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while floor.offers.lock().unwrap_or_else(|p| p.into_inner()).len() < total
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let measured_for = measured_from.elapsed();
    let (server_cpu, client_cpu) = (server_cpu.percent(), client_cpu.percent());
    let metrics_after = hotline.metrics().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    floor.stop.notify_waiters();
    while callers.join_next().await.is_some() {}
    operator_tasks.abort_all();

    // Join what the callers and the operators saw.
    let offers = floor
        .offers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut join_offer = histogram();
    let mut join_joined = histogram();
    let mut lateness = histogram();
    let mut failures = BTreeMap::<String, u64>::new();
    // Per second of the schedule (warm-up included): join → offer, and the longest queue seen.
    let mut timeline = BTreeMap::<u64, (Histogram<u64>, u64)>::new();
    let (mut joined, mut offered, mut queued, mut first_sent, mut last_sent) =
        (0, 0, 0, None, None);
    while let Some(report) = reports.recv().await {
        match report {
            CallerReport::Joined {
                index,
                scheduled,
                sent,
                joined: joined_at,
                contact,
                position,
            } => {
                let second = (index as f64 / options.rate) as u64;
                let slot = timeline.entry(second).or_insert_with(|| (histogram(), 0));
                slot.1 = slot.1.max(position);
                if let Some(offer) = offers.get(&contact) {
                    record(&mut slot.0, offer.saturating_duration_since(sent));
                }
                if index < warm {
                    continue;
                }
                joined += 1;
                first_sent = first_sent.min(Some(sent)).or(Some(sent));
                last_sent = last_sent.max(Some(sent));
                record(&mut lateness, sent.saturating_duration_since(scheduled));
                record(&mut join_joined, joined_at.saturating_duration_since(sent));
                if position > 1 {
                    queued += 1;
                }
                if let Some(offer) = offers.get(&contact) {
                    offered += 1;
                    record(&mut join_offer, offer.saturating_duration_since(sent));
                }
            }
            CallerReport::Failed { index, why } => {
                if index >= warm {
                    *failures.entry(why).or_default() += 1;
                }
            }
        }
    }
    let measured = total - warm;
    let achieved = match (first_sent, last_sent) {
        (Some(a), Some(b)) if b > a => (joined as f64 - 1.0) / (b - a).as_secs_f64(),
        _ => 0.0,
    };
    println!();
    println!(
        "  {measured} joins measured ({joined} joined, {offered} offered); arrival rate achieved {achieved:.0}/s; \
         {queued} joined behind someone (position > 1)"
    );
    print_hist("join sent → offer read by the console", &join_offer);
    println!(
        "    per second of the schedule (join → offer; the highest `position` a caller was told):"
    );
    for (second, (h, position)) in &timeline {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "      s{second:<3} n={:<4} p50 {:>9.3} ms  p99 {:>9.3} ms  max {:>9.3} ms  position ≤ {position}{}",
            h.len(),
            ms(0.5),
            ms(0.99),
            h.max() as f64 / 1000.0,
            if (*second as f64) < options.warmup.as_secs_f64() {
                "  (warm-up)"
            } else {
                ""
            }
        );
    }
    print_hist("join sent → joined read by the caller", &join_joined);
    print_hist("client lateness (join sent − scheduled)", &lateness);
    println!(
        "    CPU over {:.1} s: hotline {server_cpu:.0}%, client {client_cpu:.0}% (of {} cores × 100%)",
        measured_for.as_secs_f64(),
        crate::relay::cores()
    );
    println!(
        "    completed contacts: {}",
        floor.completed.load(std::sync::atomic::Ordering::Relaxed)
    );
    if !failures.is_empty() {
        println!("    callers that failed: {failures:?}");
    }
    let errors = floor.errors();
    if !errors.is_empty() {
        println!("    error frames on consoles: {errors:?}");
    }
    for close in floor.closes() {
        println!("    {close}");
    }
    let p99_ms = join_offer.value_at_quantile(0.99) as f64 / 1000.0;
    println!();
    println!(
        "join → offer p99 = {p99_ms:.3} ms at {} arrivals/s → target < 2 ms: {}",
        options.rate,
        if offered == measured && p99_ms < 2.0 {
            "MET"
        } else {
            "NOT MET"
        }
    );
    println!();
    println!("server-side, measured phase (from /metrics):");
    for name in ["hotline_routing_seconds", "hotline_store_write_seconds"] {
        for line in crate::prom::report(&metrics_before, &metrics_after, name) {
            println!("    {line}");
        }
    }
    let delta = |name: &str| {
        crate::prom::total(&metrics_after, name) - crate::prom::total(&metrics_before, name)
    };
    let events = delta("hotline_events_total");
    let commits = delta("hotline_store_write_seconds_count");
    let commit_time = delta("hotline_store_write_seconds_sum");
    if commits > 0.0 {
        println!(
            "    {events} events in {commits} commits ({:.1} per commit); the router spent {commit_time:.2} s \
             of {:.2} s committing ({:.0}%)",
            events / commits,
            measured_for.as_secs_f64(),
            100.0 * commit_time / measured_for.as_secs_f64()
        );
    }
    Ok(())
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    let _ = h.record(us);
}

fn print_hist(title: &str, h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  {title}: n={} p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        h.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        h.max() as f64 / 1000.0
    );
}

async fn open_callers(hotline: &Hotline, n: usize) -> Result<Vec<Ws>> {
    let gate = Arc::new(Semaphore::new(32));
    let url = hotline.ws_url("/ws/caller");
    let mut tasks = JoinSet::new();
    for index in 0..n {
        let (gate, url) = (gate.clone(), url.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire().await?;
            let mut ws = ws::connect(&url, None).await?;
            ws::expect(&mut ws, "hello").await?;
            anyhow::Ok((index, ws))
        });
    }
    let mut sockets: Vec<Option<Ws>> = (0..n).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (index, ws) = done??;
        sockets[index] = Some(ws);
    }
    Ok(sockets.into_iter().flatten().collect())
}

async fn caller(
    mut ws: Ws,
    index: usize,
    scheduled: Instant,
    reports: mpsc::UnboundedSender<CallerReport>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::time::sleep_until(scheduled.into()).await;
    let join = json!({"type": "join", "queue": "general", "language": "zh", "topic": "study",
                      "screening": "no", "accepted_confidentiality": true})
    .to_string();
    let sent = Instant::now();
    if let Err(e) = futures_util::SinkExt::send(&mut ws, Message::text(join)).await {
        let _ = reports.send(CallerReport::Failed {
            index,
            why: format!("send: {e}"),
        });
        return;
    }
    let mut reported = false;
    loop {
        let next = tokio::select! {
            next = ws.next() => next,
            _ = stop.changed() => break,
        };
        let at = Instant::now();
        let text = match next {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                if !reported {
                    let _ = reports.send(CallerReport::Failed {
                        index,
                        why: format!("closed: {frame:?}"),
                    });
                }
                return;
            }
            Some(Ok(_)) => continue,
            _ => {
                if !reported {
                    let _ = reports.send(CallerReport::Failed {
                        index,
                        why: "socket ended".into(),
                    });
                }
                return;
            }
        };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        match frame["type"].as_str() {
            Some("joined") if !reported => {
                reported = true;
                let _ = reports.send(CallerReport::Joined {
                    index,
                    scheduled,
                    sent,
                    joined: at,
                    contact: frame["contact"].as_i64().unwrap_or_default(),
                    position: frame["position"].as_u64().unwrap_or(0),
                });
            }
            Some("error") if !reported => {
                reported = true;
                let code = frame["code"].as_str().unwrap_or("?");
                let _ = reports.send(CallerReport::Failed {
                    index,
                    why: format!("error {code}"),
                });
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}
