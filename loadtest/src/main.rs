//! `hotline-loadtest`: load generator and benchmarks for the hotline server. See BENCHMARKS.md.
//!
//! Every benchmark starts what it measures as child processes on 127.0.0.1 (the hotline server
//! with a fresh data directory; the echo baseline) and stops them at the end; runs are bounded
//! in time.

mod echo;
mod enqueue;
mod floor;
mod idle;
mod prom;
mod relay;
mod server;
mod stream;
mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hotline-loadtest",
    about = "Load generator and benchmarks for the hotline server"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// A raw tokio-tungstenite echo server (the relay's baseline).
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
        /// tungstenite's read buffer per connection, in bytes [default: the library's, 128 KiB].
        #[arg(long)]
        read_buffer_size: Option<usize>,
    },
    /// Chat relay caller → operator (durable) vs. the echo server, same client, same run.
    Relay {
        /// Caller connections (and echo connections).
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Frames in flight per connection.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Seconds measured, for each of the two.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of warm-up before each measurement.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Chat capacity of each operator; operators = ceil(connections / capacity). At most 8.
        #[arg(long, default_value_t = 8)]
        chat_capacity: u8,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Enqueue → offer latency at a steady arrival rate.
    Enqueue {
        /// Joins per second.
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Seconds measured.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds of arrivals before the measurement (same rate, not counted).
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// Operators online and available.
        #[arg(long, default_value_t = 200)]
        operators: usize,
        /// Chat capacity of each operator (at most 8).
        #[arg(long, default_value_t = 2)]
        chat_capacity: u8,
        /// Operators keep their contacts instead of ending them at once.
        #[arg(long)]
        hold: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Server memory per idle caller WebSocket.
    Idle {
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Seconds to let the server settle before each RSS reading.
        #[arg(long, default_value_t = 1)]
        settle: u64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// The hotline binary [default: $CARGO_TARGET_DIR/release/hotline, else target/release/hotline].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the server's temporary data directory (database, server.log) for inspection.
    #[arg(long)]
    keep_data: bool,
    /// An empty database for the server, e.g. a fresh PostgreSQL database
    /// [default: a new SQLite file in the temporary directory].
    #[arg(long)]
    database_url: Option<String>,
}

impl ServerArgs {
    fn config(self) -> server::ServerConfig {
        server::ServerConfig {
            bin: self.server_bin.unwrap_or_else(server::default_server_bin),
            accounts: Vec::new(),
            env: abuse_limits_raised(),
            keep_data: self.keep_data,
            database_url: self.database_url,
        }
    }
}

/// The server's abuse limits, raised so they do not throttle a benchmark (all traffic comes from
/// one address, 127.0.0.1, and far faster than a person types).
fn abuse_limits_raised() -> Vec<(String, String)> {
    [
        ("HOTLINE__CALLER__FRAMES_PER_10S", "1000000000"),
        ("HOTLINE__CALLER__JOINS_PER_MINUTE", "1000000000"),
        ("HOTLINE__AUTH__LOGINS_PER_MINUTE", "1000000"),
        ("HOTLINE__SERVER__SHUTDOWN_GRACE_MS", "3000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Cmd::EchoServer { .. }) {
        // Thousands of sockets; children (the servers) inherit the limit.
        server::raise_nofile_limit()?;
    }
    match cli.command {
        Cmd::EchoServer {
            listen,
            read_buffer_size,
        } => echo::serve(listen, read_buffer_size).await,
        Cmd::Relay {
            connections,
            window,
            duration,
            warmup,
            chat_capacity,
            server,
        } => {
            relay::run(relay::RelayOptions {
                connections,
                window,
                warmup: Duration::from_secs(warmup),
                duration: Duration::from_secs(duration),
                chat_capacity,
                server: server.config(),
            })
            .await
        }
        Cmd::Enqueue {
            rate,
            duration,
            warmup,
            operators,
            chat_capacity,
            hold,
            server,
        } => {
            enqueue::run(enqueue::EnqueueOptions {
                rate,
                warmup: Duration::from_secs(warmup),
                duration: Duration::from_secs(duration),
                operators,
                chat_capacity,
                hold,
                server: server.config(),
            })
            .await
        }
        Cmd::Idle {
            connections,
            settle,
            server,
        } => {
            idle::run(idle::IdleOptions {
                connections,
                settle: Duration::from_secs(settle),
                server: server.config(),
            })
            .await
        }
    }
}
