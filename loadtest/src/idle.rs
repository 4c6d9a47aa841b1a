//! Memory per idle WebSocket connection: a server's RSS before and after opening N sockets that
//! then say nothing. For hotline they are caller sockets that received `hello`; for comparison the
//! same is measured on the raw tokio-tungstenite echo server, with tungstenite's default read
//! buffer (128 KiB) and with a 4 KiB one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::echo::EchoChild;
use crate::server::{self, Hotline, ServerConfig};
use crate::ws::{self, Ws};

#[derive(Debug, Clone)]
pub struct IdleOptions {
    pub connections: usize,
    pub settle: Duration,
    pub server: ServerConfig,
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(options: IdleOptions) -> Result<()> {
    let n = options.connections;
    ensure!(n > 0, "connections must be > 0");
    let limit = server::raise_nofile_limit()?;
    // Each connection is a socket here and one in the server (a child: same limit).
    ensure!(
        limit > n as u64 + 256,
        "open-file limit {limit} is too low for {n} connections: raise it (ulimit -n {})",
        n + 1024
    );
    println!("== idle: {n} connections (open-file limit {limit}) ==");

    let hotline = Hotline::start(&options.server).await?;
    let target = Target {
        pid: hotline.pid()?,
        url: hotline.ws_url("/ws/caller"),
        hello: true,
    };
    println!("  hotline, idle caller sockets (each greeted with `hello`, no `join`):");
    let outcome = measure(&target, &options, true).await;
    if let Ok(metrics) = hotline.metrics().await
        && let Some(line) = metrics
            .lines()
            .find(|l| l.starts_with("hotline_connections{role=\"caller\"}"))
    {
        println!("    /metrics afterwards: {line} (callers count once they join)");
    }
    hotline.stop().await?;
    let hotline_per = outcome?;

    let mut baselines = Vec::new();
    for (label, read_buffer) in [
        ("default config (128 KiB read buffer)", None),
        ("read_buffer_size = 4 KiB", Some(4096)),
    ] {
        let echo = EchoChild::start(read_buffer).await?;
        let target = Target {
            pid: echo
                .pid()
                .ok_or_else(|| anyhow::anyhow!("echo server exited"))?,
            url: format!("ws://{}/", echo.addr),
            hello: false,
        };
        println!("  tokio-tungstenite echo server, {label}:");
        let per = measure(&target, &options, false).await;
        echo.stop().await?;
        baselines.push((label, per?));
    }

    println!();
    println!(
        "memory per idle connection: hotline {:.1} KiB ({hotline_per:.0} bytes, {n} caller sockets)",
        hotline_per / 1024.0
    );
    for (label, per) in baselines {
        println!("  baseline: echo server, {label}: {:.1} KiB", per / 1024.0);
    }
    Ok(())
}

struct Target {
    pid: u32,
    url: String,
    /// Wait for the server's `hello` on each socket.
    hello: bool,
}

/// RSS per connection (bytes) with all `n` open.
async fn measure(target: &Target, options: &IdleOptions, reopen: bool) -> Result<f64> {
    let n = options.connections;
    // Warm up (the first connections allocate runtime and allocator structures once).
    drop(open(target, 50).await?);
    tokio::time::sleep(options.settle).await;
    let before = server::rss_bytes(target.pid)?;
    println!("    RSS before: {:.1} MiB", before as f64 / MIB);

    let mut sockets: Vec<Ws> = Vec::with_capacity(n);
    for step in [n / 4, n / 2, n] {
        if step <= sockets.len() {
            continue;
        }
        sockets.extend(open(target, step - sockets.len()).await?);
        tokio::time::sleep(options.settle).await;
        let rss = server::rss_bytes(target.pid)?;
        println!(
            "    {:>6} open: RSS {:.1} MiB, +{:.1} MiB, {:.1} KiB per connection",
            sockets.len(),
            rss as f64 / MIB,
            rss.saturating_sub(before) as f64 / MIB,
            rss.saturating_sub(before) as f64 / sockets.len() as f64 / 1024.0
        );
    }
    let after = server::rss_bytes(target.pid)?;
    drop(sockets);
    tokio::time::sleep(options.settle * 2).await;
    let closed = server::rss_bytes(target.pid)?;
    println!(
        "    all closed: RSS {:.1} MiB (+{:.1} MiB over the start)",
        closed as f64 / MIB,
        closed.saturating_sub(before) as f64 / MIB
    );
    if reopen {
        // Memory kept after closing is either reused by the next connections or leaked.
        let again = open(target, n).await?;
        tokio::time::sleep(options.settle).await;
        let rss = server::rss_bytes(target.pid)?;
        println!(
            "    {n} opened again: RSS {:.1} MiB (+{:.1} MiB over the first round's peak)",
            rss as f64 / MIB,
            (rss as f64 - after as f64) / MIB
        );
        drop(again);
    }
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

async fn open(target: &Target, n: usize) -> Result<Vec<Ws>> {
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (gate, url, hello) = (gate.clone(), target.url.clone(), target.hello);
        tasks.spawn(async move {
            let _permit = gate.acquire().await?;
            let mut ws = ws::connect(&url, None).await?;
            if hello {
                ws::expect(&mut ws, "hello").await?;
            }
            anyhow::Ok(ws)
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        out.push(done??);
    }
    Ok(out)
}
