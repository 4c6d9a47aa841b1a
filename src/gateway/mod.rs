//! The gateway: HTTP and WebSocket endpoints, one task per connection, protocol decode/encode,
//! and the mapping to engine commands through the router task (the engine's only owner).
//!
//! Never: block a connection task on another peer, deliver a message before it is durable,
//! panic on anything a client sends.

pub mod caller;
pub mod hub;
pub mod protocol;
pub mod public;
pub mod router;
pub mod staff;
pub mod transcript;

pub use hub::Hub;
pub use router::{RouterError, RouterHandle, RouterTask, StoreHealth};
pub use transcript::TranscriptWriter;

use std::time::{Duration, Instant};

use axum::extract::ws::Message as WsMessage;
use axum::http::HeaderMap;
use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::auth::random_token;
use crate::config::ServerSettings;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::StoreError;
use protocol::ErrorFrame;

/// Largest frame accepted from any peer; larger ones get `too_large`.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// Largest frame a socket reads at all (its `max_message_size`). One over it cannot be read: it is
/// answered with `too_large` and the connection is closed with [`CLOSE_TOO_BIG`].
pub const MAX_READ_BYTES: usize = MAX_FRAME_BYTES * 4;

/// Read buffer of each socket. tungstenite's default (128 KiB, zero-filled, so all resident) made
/// an idle connection cost ~129 KiB; chat frames are small, and larger ones are read in pieces.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// WebSocket upgrades from browsers must come from an allowed origin (or the same host).
/// Requests without an `Origin` header are not from a browser page and cannot be forged by one.
pub fn check_origin(headers: &HeaderMap, settings: &ServerSettings) -> Result<(), ApiError> {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if settings.allowed_origins.iter().any(|o| o == origin) {
        return Ok(());
    }
    let host = headers.get("host").and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    match (host, origin_host) {
        (Some(h), Some(o)) if h.eq_ignore_ascii_case(o) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

/// Decodes one text frame into a request, with a code for every way it can be wrong.
pub fn decode<T: DeserializeOwned>(text: &str, max_bytes: usize) -> Result<T, ErrorFrame> {
    if text.len() > max_bytes {
        return Err(ErrorFrame::new(
            "too_large",
            format!("frames are limited to {max_bytes} bytes"),
        ));
    }
    if holds_nul(text) {
        return Err(ErrorFrame::new(
            "invalid",
            "text may not hold the NUL character (U+0000)",
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| ErrorFrame::new("bad_frame", "frames must be JSON objects"))?;
    if !value.get("type").is_some_and(|t| t.is_string()) {
        return Err(ErrorFrame::new(
            "bad_frame",
            "frames need a string \"type\"",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("unknown variant") {
            ErrorFrame::new("unknown_type", "unknown frame type")
        } else {
            ErrorFrame::new("invalid", msg)
        }
    })
}

/// Whether a JSON text holds the NUL character, which no database here stores (and PostgreSQL
/// refuses, failing the whole batch it is in). In JSON it can only be the escape `\u0000`: a
/// `u0000` after an odd run of backslashes (after an even run it is literal text).
fn holds_nul(json: &str) -> bool {
    let mut from = 0;
    while let Some(i) = json[from..].find("u0000") {
        let at = from + i;
        let slashes = json.as_bytes()[..at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if slashes % 2 == 1 {
            return true;
        }
        from = at + 5;
    }
    false
}

/// Counts frames in a sliding window; a peer over the limit is closed as abusive (policy violation).
pub struct FloodGuard {
    limit: u32,
    window: Duration,
    started: Instant,
    count: u32,
}

impl FloodGuard {
    pub fn new(limit: u32, window: Duration) -> Self {
        FloodGuard {
            limit,
            window,
            started: Instant::now(),
            count: 0,
        }
    }

    /// False when this frame is over the limit.
    pub fn admit(&mut self) -> bool {
        if self.started.elapsed() >= self.window {
            self.started = Instant::now();
            self.count = 0;
        }
        self.count += 1;
        self.count <= self.limit
    }
}

/// WebSocket close code for abusive peers (RFC 6455 "policy violation").
pub const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code for an ordinary end (a caller's conversation taken over by another window).
pub const CLOSE_NORMAL: u16 = 1000;
/// WebSocket close code when the server goes down ("going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code for a frame too large to read (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;

/// A close code and its reason.
pub type Close = (u16, &'static str);

/// What a failed read from a peer's socket calls for. A frame over [`MAX_READ_BYTES`] is answered
/// with `too_large` and the connection is closed with [`CLOSE_TOO_BIG`] through [`farewell`], like
/// any close the server makes. (axum's socket reads nothing after a failed read, so the peer's
/// answering close frame is not waited for; ours is sent and flushed first.) `None` for any other
/// failure: the connection is lost or broken, and nobody is left to tell.
pub fn oversized_frame(e: axum::Error, metrics: &Metrics) -> Option<(ErrorFrame, Close)> {
    use axum_tungstenite::error::{CapacityError, Error};
    let too_large = matches!(
        e.into_inner().downcast::<Error>().map(|e| *e),
        Ok(Error::Capacity(CapacityError::MessageTooLong { .. }))
    );
    if !too_large {
        return None;
    }
    metrics
        .frames_rejected
        .with_label_values(&["too_large"])
        .inc();
    let error = ErrorFrame::new(
        "too_large",
        format!("frames are limited to {MAX_FRAME_BYTES} bytes; this connection is closed"),
    );
    Some((error, (CLOSE_TOO_BIG, "frame too large")))
}

/// Waits for the next notice; pends forever while there is no inbox yet.
pub async fn recv_inbox<T>(inbox: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// How long writing to a peer may take before the peer counts as gone. A peer that stays
/// connected but has stopped reading (a frozen tab) would otherwise hold its connection task —
/// and the engine would think it present — for as long as TCP keeps the connection open.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends frames as JSON text, written out together (one flush, so usually one system call).
/// Fails if the peer has not taken them within [`SEND_TIMEOUT`].
pub async fn send_frames<S, T>(
    sink: &mut S,
    frames: impl IntoIterator<Item = T>,
) -> Result<(), axum::Error>
where
    S: futures_util::Sink<WsMessage, Error = axum::Error> + Unpin,
    T: serde::Serialize,
{
    let write = async {
        let mut any = false;
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap_or_default();
            sink.feed(WsMessage::Text(text.into())).await?;
            any = true;
        }
        if any { sink.flush().await } else { Ok(()) }
    };
    tokio::time::timeout(SEND_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(axum::Error::new("the peer has stopped reading")))
}

/// How long a closing connection waits for the peer's close frame (the closing handshake), so
/// that the peer reads the close frame before the socket goes — not a reset.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Sends what is still queued for a peer, then, if the server is the one ending the connection,
/// a close frame with its code and reason, and waits briefly for the peer's answer.
pub async fn farewell<S, R, T>(sink: &mut S, stream: &mut R, out: Vec<T>, close: Option<Close>)
where
    S: futures_util::Sink<WsMessage, Error = axum::Error> + Unpin,
    R: futures_util::Stream<Item = Result<WsMessage, axum::Error>> + Unpin,
    T: serde::Serialize,
{
    if send_frames(sink, out).await.is_err() {
        return;
    }
    if let Some((code, reason)) = close {
        let close = WsMessage::Close(Some(axum::extract::ws::CloseFrame {
            code,
            reason: axum::extract::ws::Utf8Bytes::from_static(reason),
        }));
        let sent = tokio::time::timeout(CLOSE_WAIT, sink.send(close)).await;
        if matches!(sent, Ok(Ok(()))) {
            // Whatever the peer still sends is dropped; its close frame (or end) ends the wait.
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(frame)) = stream.next().await {
                    if matches!(frame, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

/// Logs a store failure with an id and gives the peer only the id.
pub fn store_error_frame(e: StoreError) -> ErrorFrame {
    if let StoreError::Unstorable = e {
        return ErrorFrame::new("invalid", "a value cannot be stored");
    }
    let id = random_token(9);
    tracing::error!(error_id = %id, error = %e, "store error on a WebSocket connection");
    ErrorFrame {
        error_id: Some(id.clone()),
        ..ErrorFrame::new(
            "internal",
            format!("something went wrong (ref {id}); please try again"),
        )
    }
}

pub fn router_error_frame(e: RouterError) -> ErrorFrame {
    match e {
        RouterError::Engine(e) => ErrorFrame::new(e.code(), e.to_string()),
        RouterError::Stopped => {
            ErrorFrame::new("unavailable", "the service is restarting; please retry")
        }
        RouterError::Store => ErrorFrame::new(
            "unavailable",
            "the service cannot save right now; please retry in a moment",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{CallerEvent, CallerRequest};

    #[test]
    fn a_store_failure_gives_the_peer_only_its_log_id() {
        let frame = store_error_frame(StoreError::Corrupt("contacts row 7".into()));
        assert_eq!(frame.code, "internal");
        let id = frame.error_id.expect("an error id");
        assert!(frame.message.contains(&id), "{}", frame.message);
        assert!(!frame.message.contains("contacts row"), "{}", frame.message);
    }

    #[test]
    fn decode_gives_a_code_for_each_mistake() {
        let code = |t: &str| decode::<CallerRequest>(t, 100).unwrap_err().code;
        assert_eq!(code("not json"), "bad_frame");
        assert_eq!(code("{\"no\":1}"), "bad_frame");
        assert_eq!(code("{\"type\":\"dance\"}"), "unknown_type");
        assert_eq!(code("{\"type\":\"say\"}"), "invalid");
        assert_eq!(
            code(&format!(
                "{{\"type\":\"say\",\"text\":\"{}\"}}",
                "x".repeat(200)
            )),
            "too_large"
        );
        assert!(decode::<CallerRequest>("{\"type\":\"ping\"}", 100).is_ok());
        // The NUL character is refused; the text "\u0000" is not.
        assert_eq!(code(r#"{"type":"say","text":"a\u0000b"}"#), "invalid");
        assert_eq!(code(r#"{"type":"say","text":"a\\\u0000"}"#), "invalid");
        let literal =
            decode::<CallerRequest>(r#"{"type":"say","text":"a\\u0000","client_id":"c"}"#, 100);
        assert!(
            matches!(literal, Ok(CallerRequest::Say { ref text, .. }) if text == "a\\u0000"),
            "{literal:?}"
        );
    }

    /// A sink whose peer never takes anything.
    struct Stuck;

    impl futures_util::Sink<WsMessage> for Stuck {
        type Error = axum::Error;
        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), axum::Error>> {
            std::task::Poll::Pending
        }
        fn start_send(self: std::pin::Pin<&mut Self>, _: WsMessage) -> Result<(), axum::Error> {
            Ok(())
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), axum::Error>> {
            std::task::Poll::Pending
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), axum::Error>> {
            std::task::Poll::Pending
        }
    }

    /// In paused time: the clock jumps ahead while everything waits.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fails_the_write_in_time() {
        let started = tokio::time::Instant::now();
        assert!(send_frames(&mut Stuck, [CallerEvent::Pong]).await.is_err());
        assert_eq!(started.elapsed(), SEND_TIMEOUT);
        // Nothing to send is no write at all.
        let none: [CallerEvent; 0] = [];
        assert!(send_frames(&mut Stuck, none).await.is_ok());
    }

    #[test]
    fn only_a_frame_over_the_limit_reads_as_oversized() {
        use axum_tungstenite::error::{CapacityError, Error};
        let metrics = Metrics::new();
        let too_long = Error::Capacity(CapacityError::MessageTooLong {
            size: MAX_READ_BYTES + 1,
            max_size: MAX_READ_BYTES,
        });
        let (error, close) =
            oversized_frame(axum::Error::new(too_long), &metrics).expect("oversized");
        assert_eq!(error.code, "too_large");
        assert_eq!(close.0, CLOSE_TOO_BIG);
        // A lost or broken connection is not.
        for other in [
            Error::ConnectionClosed,
            Error::Io(std::io::ErrorKind::ConnectionReset.into()),
        ] {
            assert!(oversized_frame(axum::Error::new(other), &metrics).is_none());
        }
        assert!(
            oversized_frame(axum::Error::new("the peer has stopped reading"), &metrics).is_none()
        );
    }

    #[test]
    fn flood_guard_limits_a_window() {
        let mut g = FloodGuard::new(3, Duration::from_secs(60));
        assert!(g.admit() && g.admit() && g.admit());
        assert!(!g.admit());
    }

    #[test]
    fn origin_must_match_host_or_list() {
        let mut h = HeaderMap::new();
        h.insert("host", "hotline.example:8080".parse().unwrap());
        let s = ServerSettings::default();
        assert!(check_origin(&h, &s).is_ok());
        h.insert("origin", "http://hotline.example:8080".parse().unwrap());
        assert!(check_origin(&h, &s).is_ok());
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(check_origin(&h, &s).is_err());
        let s = ServerSettings {
            allowed_origins: vec!["http://evil.example".into()],
            ..s
        };
        assert!(check_origin(&h, &s).is_ok());
    }
}
