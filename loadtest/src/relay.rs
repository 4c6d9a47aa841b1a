//! Chat relay, caller → operator, with the transcript durable — against a raw tokio-tungstenite
//! echo server, both measured in one run by the same client code (`stream.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::echo::EchoChild;
use crate::floor::{self, Floor, OnAssigned};
use crate::server::{self, CpuMeter, Hotline, ServerConfig};
use crate::stream::{self, Lane, Meter, StreamResult};
use crate::ws;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    pub connections: usize,
    pub window: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub chat_capacity: u8,
    pub server: ServerConfig,
}

/// Frames that may be in a staff console's inbox at once stay under the server's inbox depth
/// (256; a console further behind is dropped): at most chat_capacity × window are in flight.
const STAFF_INBOX: usize = 256;

pub async fn run(options: RelayOptions) -> Result<()> {
    let n = options.connections;
    let w = options.window;
    let capacity = usize::from(options.chat_capacity);
    ensure!(
        n > 0 && w > 0 && capacity > 0,
        "connections, window and capacity must be > 0"
    );
    ensure!(
        capacity * w < STAFF_INBOX,
        "chat capacity × window must stay below the server's staff inbox ({STAFF_INBOX})"
    );
    let operators = n.div_ceil(capacity);
    let names: Vec<String> = (1..=operators).map(|i| format!("bench.op{i:04}")).collect();
    let mut config = options.server.clone();
    config.accounts = std::iter::once((server::ADMIN.to_owned(), "admin"))
        .chain(names.iter().map(|n| (n.clone(), "operator")))
        .collect();

    println!(
        "== relay: {n} connections, window {w}, {} s (after {} s warm-up) ==",
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64()
    );
    println!(
        "   frame: {} bytes of JSON (a caller's `say`)",
        stream::say_frame(0, 0).len()
    );
    let hotline = Hotline::start(&config).await?;
    hotline
        .prepare_operators(&names, options.chat_capacity)
        .await?;
    let echo = EchoChild::start(None).await?;

    // (a) The echo baseline.
    let echo_cpu = CpuMeter::start(echo.pid());
    let client_cpu = CpuMeter::start(None);
    let echo_result = echo_stream(&echo, &options).await?;
    let (echo_server_cpu, echo_client_cpu) = (echo_cpu.percent(), client_cpu.percent());
    echo.stop().await?;

    // (b) The hotline relay.
    let metrics_before = hotline.metrics().await?;
    let relay = relay_stream(&hotline, &names, &options).await;
    let metrics_after = hotline.metrics().await.unwrap_or_default();
    let relay = match relay {
        Ok(r) => r,
        Err(e) => {
            let _ = hotline.stop().await;
            return Err(e);
        }
    };

    println!();
    print_stream("echo baseline (tokio-tungstenite)", &echo_result);
    println!(
        "    CPU: echo server {echo_server_cpu:.0}%, client {echo_client_cpu:.0}% (of {} cores × 100%)",
        cores()
    );
    print_stream("hotline relay (caller → operator, durable)", &relay.stream);
    println!(
        "    CPU: hotline {:.0}%, client {:.0}%; {} operators × chat capacity {}",
        relay.server_cpu, relay.client_cpu, operators, capacity
    );
    println!(
        "    `said` acks: {} of {} lines sent; every caller's last seq = its lines sent: {}",
        relay.said, relay.stream.sent_total, relay.seqs_match
    );
    if !relay.errors.is_empty() {
        println!("    error frames: {:?}", relay.errors);
    }
    for close in &relay.closes {
        println!("    {close}");
    }
    let ratio = relay.stream.per_second / echo_result.per_second;
    println!();
    println!(
        "relay / echo = {:.0} / {:.0} frames/s = {:.1}%  → target ≥ 50%: {}",
        relay.stream.per_second,
        echo_result.per_second,
        ratio * 100.0,
        if ratio >= 0.5 { "MET" } else { "NOT MET" }
    );
    println!();
    println!("server-side, during the relay (from /metrics):");
    for name in ["hotline_routing_seconds", "hotline_store_write_seconds"] {
        for line in crate::prom::report(&metrics_before, &metrics_after, name) {
            println!("    {line}");
        }
    }
    hotline.stop().await?;
    Ok(())
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn print_stream(title: &str, r: &StreamResult) {
    println!("  {title}");
    println!(
        "    {:.0} frames/s ({} delivered in {:.2} s); latency send→delivery p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        r.per_second, r.delivered, r.seconds, r.p50_us, r.p90_us, r.p99_us, r.max_us
    );
    if r.delivered_total != r.sent_total {
        println!(
            "    NOTE: {} frames sent, {} delivered after the drain",
            r.sent_total, r.delivered_total
        );
    }
}

async fn echo_stream(echo: &EchoChild, options: &RelayOptions) -> Result<StreamResult> {
    let meter = Meter::new();
    let url = format!("ws://{}/", echo.addr);
    let mut tasks = JoinSet::new();
    let mut senders = JoinSet::new();
    for i in 0..options.connections {
        let ws = ws::connect(&url, None).await?;
        let (sink, mut read) = ws.split();
        let lane = Lane::new(options.window);
        let (rx_lane, rx_meter) = (lane.clone(), meter.clone());
        // The same work per delivered frame as an operator console: parse it, look at its type.
        tasks.spawn(async move {
            while let Some(Ok(message)) = read.next().await {
                let at = Instant::now();
                if let Message::Text(text) = message
                    && let Ok(frame) = serde_json::from_str::<Value>(text.as_str())
                    && frame["type"] == "say"
                {
                    rx_lane.delivered(&rx_meter, at);
                }
            }
        });
        senders.spawn(stream::send_loop(sink, lane, meter.clone(), move |seq| {
            stream::say_frame(i, seq)
        }));
    }
    let result = stream::measure(
        &meter,
        options.warmup,
        options.duration,
        Duration::from_secs(10),
    )
    .await;
    while let Some(sink) = senders.join_next().await {
        drop(sink??);
    }
    tasks.abort_all();
    Ok(result)
}

struct RelayResult {
    stream: StreamResult,
    said: u64,
    seqs_match: bool,
    errors: BTreeMap<String, u64>,
    closes: Vec<String>,
    server_cpu: f64,
    client_cpu: f64,
}

async fn relay_stream(
    hotline: &Hotline,
    names: &[String],
    options: &RelayOptions,
) -> Result<RelayResult> {
    let n = options.connections;
    let meter = Meter::new();
    let (floor, mut assigned) = Floor::new(OnAssigned::Keep, meter.clone());

    let setup = Instant::now();
    let mut operator_tasks = JoinSet::new();
    for (index, name) in names.iter().enumerate() {
        let mut ws = hotline.staff(name).await?;
        floor::go_available(&mut ws).await?;
        operator_tasks.spawn(floor::operator(ws, index, floor.clone()));
    }

    // Callers join, one after another; each is offered, accepted and connected.
    let mut callers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut ws = hotline.caller().await?;
        ws::send_json(
            &mut ws,
            &json!({"type": "join", "queue": "general", "language": "zh", "topic": "study",
                    "screening": "no", "accepted_confidentiality": true}),
        )
        .await?;
        let joined = ws::expect(&mut ws, "joined").await?;
        let contact = joined["contact"]
            .as_i64()
            .context("joined without a contact")?;
        callers.push((contact, ws));
    }
    let mut lanes = HashMap::new();
    let mut caller_lanes = Vec::with_capacity(n);
    for (contact, ws) in &mut callers {
        ws::expect(ws, "connected")
            .await
            .with_context(|| format!("contact {contact} was not connected to an operator"))?;
        let lane = Lane::new(options.window);
        lanes.insert(*contact, lane.clone());
        caller_lanes.push(lane);
    }
    let mut per_operator: BTreeMap<usize, usize> = BTreeMap::new();
    while let Ok((_, op)) = assigned.try_recv() {
        *per_operator.entry(op).or_default() += 1;
    }
    if floor.lanes.set(lanes).is_err() {
        bail!("lanes set twice");
    }
    println!(
        "   set-up: {} operators, {n} callers joined and connected in {:.1} s; contacts per operator: {}..={}",
        names.len(),
        setup.elapsed().as_secs_f64(),
        per_operator.values().min().copied().unwrap_or(0),
        per_operator.values().max().copied().unwrap_or(0),
    );

    let said = Arc::new(AtomicU64::new(0));
    let caller_errors: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let caller_closes: Arc<Mutex<Vec<String>>> = Arc::default();
    let last_seqs: Vec<Arc<AtomicI64>> = (0..n).map(|_| Arc::new(AtomicI64::new(0))).collect();
    let mut readers = JoinSet::new();
    let mut senders = JoinSet::new();
    let server_cpu = CpuMeter::start(Some(hotline.pid()?));
    let client_cpu = CpuMeter::start(None);
    for (i, ((_, ws), lane)) in callers.into_iter().zip(caller_lanes).enumerate() {
        let (sink, mut read) = ws.split();
        let (said, errors, closes, last_seq) = (
            said.clone(),
            caller_errors.clone(),
            caller_closes.clone(),
            last_seqs[i].clone(),
        );
        readers.spawn(async move {
            while let Some(message) = read.next().await {
                let text = match message {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(frame)) => {
                        closes
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("caller {i} closed by the server: {frame:?}"));
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        closes
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("caller {i} socket error: {e}"));
                        return;
                    }
                };
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                match frame["type"].as_str() {
                    Some("said") => {
                        said.fetch_add(1, Ordering::Relaxed);
                        last_seq.fetch_max(frame["seq"].as_i64().unwrap_or(0), Ordering::Relaxed);
                    }
                    Some("error") => {
                        let code = frame["code"].as_str().unwrap_or("?").to_owned();
                        *errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(code)
                            .or_default() += 1;
                    }
                    _ => {}
                }
            }
        });
        senders.spawn(stream::send_loop(sink, lane, meter.clone(), move |seq| {
            stream::say_frame(i, seq)
        }));
    }
    let result = stream::measure(
        &meter,
        options.warmup,
        options.duration,
        Duration::from_secs(10),
    )
    .await;
    let (server_cpu, client_cpu) = (server_cpu.percent(), client_cpu.percent());
    // The senders hand their sinks back; they stay open until the last acks are in.
    let mut sinks = Vec::new();
    while let Some(sink) = senders.join_next().await {
        sinks.push(sink??);
    }
    // Wait (bounded) for the last acks.
    let deadline = Instant::now() + Duration::from_secs(5);
    while said.load(Ordering::Relaxed) < result.sent_total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let said_total = said.load(Ordering::Relaxed);
    // Each caller's seqs are 1..=lines it wrote (no line was written before the stream).
    let seqs: i64 = last_seqs.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    let seqs_match = u64::try_from(seqs).ok() == Some(said_total);
    drop(sinks);
    readers.abort_all();
    floor.stop.notify_waiters();
    operator_tasks.abort_all();

    let mut errors = floor.errors();
    for (code, count) in caller_errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        *errors.entry(format!("caller:{code}")).or_default() += count;
    }
    let mut closes = floor.closes();
    closes.extend(
        caller_closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned(),
    );
    Ok(RelayResult {
        stream: result,
        said: said_total,
        seqs_match,
        errors,
        closes,
        server_cpu,
        client_cpu,
    })
}
