//! Memory per idle WebSocket connection: the server's RSS before and after opening N caller
//! sockets that were greeted (`hello`) and then say nothing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

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
    println!("== idle: {n} caller sockets (open-file limit {limit}) ==");
    let hotline = Hotline::start(&options.server).await?;
    let outcome = measure(&hotline, &options).await;
    hotline.stop().await?;
    outcome
}

async fn measure(hotline: &Hotline, options: &IdleOptions) -> Result<()> {
    let n = options.connections;
    let pid = hotline.pid()?;
    // Warm the server up (first connections allocate runtime and allocator structures once).
    let warm = open(hotline, 50).await?;
    drop(warm);
    tokio::time::sleep(options.settle).await;
    let before = server::rss_bytes(pid)?;
    println!("  server RSS before: {:.1} MiB", before as f64 / MIB);

    let mut sockets: Vec<Ws> = Vec::with_capacity(n);
    let steps = [n / 4, n / 2, n];
    for step in steps {
        if step <= sockets.len() {
            continue;
        }
        sockets.extend(open(hotline, step - sockets.len()).await?);
        tokio::time::sleep(options.settle).await;
        let rss = server::rss_bytes(pid)?;
        println!(
            "  {:>6} idle callers: RSS {:.1} MiB, +{:.1} MiB, {:.1} KiB per connection",
            sockets.len(),
            rss as f64 / MIB,
            rss.saturating_sub(before) as f64 / MIB,
            rss.saturating_sub(before) as f64 / sockets.len() as f64 / 1024.0
        );
    }
    let after = server::rss_bytes(pid)?;
    let connections = hotline.metrics().await?;
    let per = after.saturating_sub(before) as f64 / n as f64;
    drop(sockets);
    tokio::time::sleep(options.settle * 2).await;
    let closed = server::rss_bytes(pid)?;
    println!(
        "  after closing them all: RSS {:.1} MiB (+{:.1} MiB over the start)",
        closed as f64 / MIB,
        closed.saturating_sub(before) as f64 / MIB
    );
    let gauge = connections
        .lines()
        .find(|l| l.starts_with("hotline_connections{role=\"caller\"}"))
        .unwrap_or("hotline_connections{role=\"caller\"} (absent: callers count only once they join)");
    println!("  /metrics while open: {gauge}");
    println!();
    println!(
        "memory per idle caller connection: {:.1} KiB ({per:.0} bytes; {n} connections, RSS {:.1} → {:.1} MiB)",
        per / 1024.0,
        before as f64 / MIB,
        after as f64 / MIB
    );
    Ok(())
}

async fn open(hotline: &Hotline, n: usize) -> Result<Vec<Ws>> {
    let gate = Arc::new(Semaphore::new(32));
    let url = hotline.ws_url("/ws/caller");
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (gate, url) = (gate.clone(), url.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire().await?;
            let mut ws = ws::connect(&url, None).await?;
            ws::expect(&mut ws, "hello").await?;
            anyhow::Ok(ws)
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        out.push(done??);
    }
    Ok(out)
}
