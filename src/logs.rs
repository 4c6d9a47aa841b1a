//! Logs: JSON lines, chosen by `HOTLINE_LOG` (an `EnvFilter`, e.g. `debug` or
//! `info,hotline::paging=debug`), and the span every HTTP request is logged in.
//!
//! Logs never carry names, message text or keys, whatever `HOTLINE_LOG` says. Our own code logs
//! ids only. Two things from elsewhere would break that, and are closed here:
//! - tower-http's default request span records the whole URI, and a calendar feed's address holds
//!   its token (`/api/calendar-feeds/{token}/…`, otherwise kept only as a hash); a query string may
//!   hold anything. [`RouteSpan`] records the method and the route as declared (axum's
//!   `MatchedPath`, `{token}` and not the token), and the response event adds the status.
//! - Libraries log what passes through them at their finer levels. [`CAPS`] bounds those targets,
//!   below and apart from `HOTLINE_LOG`, so no directive can open them (`tungstenite=trace` or a
//!   more specific `tungstenite::protocol=trace` included).
//!
//! Looked at and left open: sqlx logs statements at debug (`sqlx::query`), but the statement's
//! text only, and every value this server writes or reads is a bound parameter, never part of
//! the text; hyper logs nothing unless built with `--cfg hyper_unstable_tracing`; hyper-util
//! logs pool keys (scheme and host) and peer addresses of outgoing connections (webhook, SMTP
//! relays), never paths or bodies; reqwest logs bytes only on a connection built with
//! `connection_verbose`, which no client here is; tower-http's own events, once the span is
//! ours, carry the status, the latency and a failure's class.

use axum::extract::MatchedPath;
use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::{Level, Span, Subscriber};
use tracing_subscriber::filter::{EnvFilter, FilterExt as _, ParseError, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer as _, Registry};

/// What is logged when `HOTLINE_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// The finest level each of these targets may ever log at, and why (a target covers the ones
/// under it: `tungstenite` covers `tungstenite::protocol`).
pub const CAPS: &[(&str, Level, &str)] = &[
    (
        "tungstenite",
        Level::INFO,
        "trace logs every frame and message read or written (chat lines, notes typed in a \
         console), debug the reason of every close frame, which the peer writes",
    ),
    (
        "tokio_tungstenite",
        Level::INFO,
        "the same connections as tungstenite; debug logs their errors' text",
    ),
    (
        "axum::rejection",
        Level::DEBUG,
        "trace logs the text of each refusal of a body, path or query, which quotes what the \
         client sent (a JSON error quotes the value it could not read)",
    ),
];

/// The subscriber `hotline` logs through: JSON lines into `writer`, filtered by `directives`
/// (`HOTLINE_LOG`; [`DEFAULT_FILTER`] when `None`) and, in any case, by [`CAPS`]. Refuses
/// directives that cannot be read.
pub fn subscriber<W>(
    directives: Option<&str>,
    writer: W,
) -> Result<impl Subscriber + Send + Sync + 'static, ParseError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let chosen = EnvFilter::builder().parse(directives.unwrap_or(DEFAULT_FILTER))?;
    let caps = CAPS.iter().fold(
        Targets::new().with_default(Level::TRACE),
        |caps, (target, level, _)| caps.with_target(*target, *level),
    );
    let lines = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_filter(chosen.and(caps));
    Ok(Registry::default().with(lines))
}

/// The span of each HTTP request: method and route (see [`RouteSpan`]).
pub fn http_trace_layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RouteSpan> {
    TraceLayer::new_for_http().make_span_with(RouteSpan)
}

/// Makes a request's span from its method and the route it matched as declared
/// (`/api/calendar-feeds/{token}/schedules/{id}/calendar.ics`), never from its URI: the path may
/// hold a token, the query anything. A request that matched no route has no route in its span.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteSpan;

impl<B> MakeSpan<B> for RouteSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        tracing::debug_span!("request", method = %request.method(), route)
    }
}
