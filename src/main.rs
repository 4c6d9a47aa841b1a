//! The `hotline` command: parse the command line, load settings, and hand over to the library.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hotline::config::Settings;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "hotline",
    version,
    about = "7×24 psychological-assistance hotline server"
)]
struct Cli {
    /// Settings file (default: ./hotline.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://data/hotline.db (default) or postgres://…
    #[arg(long, global = true, env = "HOTLINE_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Create or update the database schema, then exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Seed sample queues, skills and accounts, and print their logins.
    Demo,
    /// Write the protocol contract (JSON Schema, OpenAPI) into a folder.
    Proto {
        #[arg(long, default_value = "proto")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account; the password is read from standard input.
    Add {
        #[arg(long)]
        name: String,
        /// operator, crisis_lead, supervisor or admin
        #[arg(long)]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Languages the person speaks, comma-separated (contacts are routed by language).
        #[arg(long, value_delimiter = ',', default_value = "zh")]
        languages: Vec<String>,
    },
}

/// JSON logs on standard error (see [`hotline::logs`]), written by a thread of their own: a
/// connection or the router never waits for a log line to reach the disk (a write to a file can
/// stall behind the store's fsyncs). Nothing is dropped — under a flood of lines the writers wait
/// rather than lose them. The guard flushes what is queued when `main` returns.
fn init_tracing() -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let directives = std::env::var("HOTLINE_LOG").ok();
    match hotline::logs::subscriber(directives.as_deref(), writer.clone()) {
        Ok(subscriber) => subscriber.init(),
        Err(e) => {
            hotline::logs::subscriber(None, writer)
                .expect("the default filter is valid")
                .init();
            tracing::warn!(error = %e, "HOTLINE_LOG cannot be read; logging with the default filter");
        }
    }
    guard
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _logs = init_tracing();
    let mut settings = Settings::load(cli.config.as_deref()).context("loading settings")?;
    if let Some(url) = cli.database_url {
        settings.database.url = url;
    }
    match cli.command.unwrap_or(Command::Serve { listen: None }) {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                settings.server.listen = listen;
            }
            let listener = tokio::net::TcpListener::bind(settings.server.listen)
                .await
                .with_context(|| format!("listening on {}", settings.server.listen))?;
            println!("hotline is listening on http://{}", listener.local_addr()?);
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            hotline::run(listener, settings, shutdown).await
        }
        Command::Migrate => {
            hotline::store::connect(&settings.database.url).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    role,
                    display_name,
                    languages,
                },
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            let account =
                hotline::cli::add_user(&settings, &name, &role, display_name, &languages, password)
                    .await?;
            println!("added {} ({})", account.name, account.role.as_str());
            Ok(())
        }
        Command::Demo => {
            for line in hotline::cli::seed_demo(&settings).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Proto { out } => {
            hotline::proto::write(&out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    shutdown.cancel();
}
