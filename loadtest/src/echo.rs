//! The baseline: a raw tokio-tungstenite echo server, exactly the library's own example
//! (`examples/echo-server.rs`: text and binary frames forwarded back), on a multi-threaded runtime
//! like the hotline server's. Like the hotline server (axum 0.8 `serve`), it leaves Nagle's
//! algorithm on for accepted sockets.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{StreamExt as _, TryStreamExt as _, future};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// `read_buffer_size`: tungstenite's read buffer per connection (its default is 128 KiB).
pub async fn serve(listen: SocketAddr, read_buffer_size: Option<usize>) -> Result<()> {
    let config = read_buffer_size.map(|size| WebSocketConfig::default().read_buffer_size(size));
    let listener = TcpListener::bind(listen).await?;
    println!("echo server listening on ws://{}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                tokio::spawn(echo(stream, config));
            }
            _ = term.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn echo(stream: TcpStream, config: Option<WebSocketConfig>) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, config).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}

/// This program's `echo-server` subcommand as a child process.
pub struct EchoChild {
    pub child: Child,
    pub addr: SocketAddr,
}

impl EchoChild {
    pub async fn start(read_buffer_size: Option<usize>) -> Result<EchoChild> {
        let port = crate::server::free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["echo-server", "--listen", &addr.to_string()]);
        if let Some(size) = read_buffer_size {
            command.args(["--read-buffer-size", &size.to_string()]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(EchoChild { child, addr });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the echo server did not start")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) -> Result<()> {
        crate::server::stop_child(&mut self.child, "echo server").await
    }
}
