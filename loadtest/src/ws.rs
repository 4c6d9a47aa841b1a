//! WebSocket client helpers: connect (with or without a session cookie) and JSON frames.

use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long setup steps wait for an expected frame.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Opens a WebSocket with Nagle's algorithm off (every client of every benchmark does the same).
pub async fn connect(url: &str, cookie: Option<&str>) -> Result<Ws> {
    let mut request = url.into_client_request()?;
    if let Some(cookie) = cookie {
        request.headers_mut().insert("cookie", cookie.parse()?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(ws)
}

pub async fn send_json(ws: &mut Ws, frame: &Value) -> Result<()> {
    ws.send(Message::text(frame.to_string())).await?;
    Ok(())
}

/// The next text frame as JSON, within `timeout`. A close is an error.
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Result<Value> {
    loop {
        let message = tokio::time::timeout(timeout, ws.next())
            .await
            .map_err(|_| anyhow!("no frame within {timeout:?}"))?
            .ok_or_else(|| anyhow!("the socket closed"))??;
        match message {
            Message::Text(text) => return Ok(serde_json::from_str(text.as_str())?),
            Message::Close(frame) => bail!("closed by the server: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads frames until one of type `kind` arrives (others are passed over); an `error` frame fails.
pub async fn expect(ws: &mut Ws, kind: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_json(ws, left)
            .await
            .with_context(|| format!("waiting for {kind}"))?;
        if frame["type"] == kind {
            return Ok(frame);
        }
        if frame["type"] == "error" {
            bail!("error frame while waiting for {kind}: {frame}");
        }
    }
}
