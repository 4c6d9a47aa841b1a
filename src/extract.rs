//! The request extractors every handler uses: axum's `Json`, `Query`, `Path` and `Bytes`, whose
//! refusals answer like every other error, with an [`ApiError`] and its code, instead of axum's
//! plain text.
//!
//! - A body that is not JSON, or does not fit the request's type: 422 `invalid`.
//! - A body without `Content-Type: application/json`: 415 `unsupported_media_type`.
//! - A body over the size limit: 413 `too_large`.
//! - A query string that does not fit: 422 `invalid`.
//! - A path segment that does not fit (`/api/admin/accounts/abc`): 404 `not_found`, since the
//!   address names nothing.
//! - A plain request to a WebSocket address: 426 `upgrade_required` (405 `method_not_allowed`
//!   for a method other than GET; 422 `invalid` for a handshake with a bad header).
//!
//! `Json` is also the JSON response, so a handler module imports one `Json`.
//!
//! [`ClientAddress`] is the address every per-address limit counts a request under.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::config::{ForwardedHeader, TrustedProxies};
use crate::error::ApiError;

/// The longest part of a parser's complaint quoted back to the client.
const MAX_DETAIL_CHARS: usize = 200;

/// A parser's complaint, cut short: it may quote the input.
fn detail(e: &(dyn std::error::Error + 'static)) -> String {
    let text = e.to_string();
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What a refused body answers, from axum's status for the refusal and what was wrong with it.
fn body_refused(status: StatusCode, what: Option<String>) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        s if s.is_client_error() => ApiError::Invalid(format!(
            "body: {}",
            what.as_deref().unwrap_or("could not be read")
        )),
        s => ApiError::Internal(anyhow::anyhow!("request body refused with {s}")),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        let what = match (&e, e.source()) {
            (JsonRejection::JsonSyntaxError(_), Some(cause)) => {
                Some(format!("not valid JSON ({})", detail(cause)))
            }
            (JsonRejection::JsonDataError(_), Some(cause)) => Some(detail(cause)),
            _ => None,
        };
        body_refused(e.status(), what)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        body_refused(e.status(), None)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        match e.source() {
            Some(cause) => ApiError::Invalid(format!("query: {}", detail(cause))),
            None => ApiError::Invalid("query: does not fit this request".to_owned()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        if e.status().is_client_error() {
            ApiError::NotFound
        } else {
            ApiError::Internal(anyhow::anyhow!("path refused: {}", e.body_text()))
        }
    }
}

impl From<WebSocketUpgradeRejection> for ApiError {
    fn from(e: WebSocketUpgradeRejection) -> Self {
        use WebSocketUpgradeRejection as R;
        match e {
            R::MethodNotGet(_) | R::MethodNotConnect(_) => ApiError::MethodNotAllowed,
            R::InvalidConnectionHeader(_) | R::InvalidUpgradeHeader(_) => ApiError::UpgradeRequired,
            e if e.status().is_client_error() => {
                ApiError::Invalid(format!("WebSocket handshake: {}", e.body_text()))
            }
            e => ApiError::Internal(anyhow::anyhow!(
                "WebSocket upgrade refused: {}",
                e.body_text()
            )),
        }
    }
}

/// A WebSocket upgrade.
pub struct WebSocketUpgrade(pub axum::extract::ws::WebSocketUpgrade);

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let upgrade = axum::extract::ws::WebSocketUpgrade::from_request_parts(parts, state).await?;
        Ok(WebSocketUpgrade(upgrade))
    }
}

/// The address a request comes from, as per-address limits (new chats, sign-in) count it: the
/// peer's own, unless the peer is one of `server.trusted_proxies` — then the client address that
/// proxy forwarded (see [`client_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the server runs without peer addresses"))?;
        let server = &state.settings.server;
        Ok(ClientAddress(client_address(
            peer.ip(),
            &parts.headers,
            &server.trusted_proxies,
            server.forwarded_header,
        )))
    }
}

/// The client address of a request from `peer`. A peer that is not a trusted proxy is the client,
/// whatever its headers say (anyone can write them). Behind trusted proxies, the `header` they
/// write lists the hops, each proxy adding the address it was reached from on the right: the
/// client is the right-most address that is not itself a trusted proxy (further left is what the
/// client wrote, which proves nothing), or the left-most when every hop is one. A header that
/// cannot be read that far falls back to the peer's address: never an error to the client, and
/// never an address it chose.
pub fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    forwarded_client(headers, trusted, header).unwrap_or(peer)
}

fn forwarded_client(
    headers: &HeaderMap,
    trusted: &TrustedProxies,
    header: ForwardedHeader,
) -> Option<IpAddr> {
    // Several headers are one list, in order.
    let mut hops = Vec::new();
    for value in headers.get_all(header.name()) {
        let value = value.to_str().ok()?;
        match header {
            ForwardedHeader::XForwardedFor => hops.extend(value.split(',').map(str::to_owned)),
            ForwardedHeader::Forwarded => {
                for element in forwarded_elements(value) {
                    hops.push(forwarded_for(&element)?);
                }
            }
        }
    }
    let mut farthest = None;
    for hop in hops.iter().rev() {
        let address = forwarded_address(hop.trim())?;
        if !trusted.contains(address) {
            return Some(address);
        }
        farthest = Some(address);
    }
    farthest
}

/// The elements of an RFC 7239 `Forwarded` value: split at the commas outside quoted strings.
fn forwarded_elements(value: &str) -> Vec<String> {
    let mut elements = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                elements.push(String::new());
                continue;
            }
            _ => {}
        }
        elements.last_mut().expect("never empty").push(c);
    }
    elements
}

/// The `for` parameter of one `Forwarded` element (`for=192.0.2.60;proto=https`,
/// `for="[2001:db8:cafe::17]:4711"`), unquoted; none when it has none (the hop is then unknown).
fn forwarded_for(element: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        // No address holds a quote or a backslash, so a quoted one needs no unescaping: anything
        // escaped is not an address and is refused as one.
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some(unquoted.to_owned())
    })
}

/// One hop: an address, also as some proxies write it with a port
/// (`192.0.2.1:5000`, `[2001:db8::1]:443`) or in brackets.
fn forwarded_address(hop: &str) -> Option<IpAddr> {
    let address = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(hop)
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(address.to_canonical())
}

/// A JSON request body, or a JSON response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = <axum::Json<T> as FromRequest<S>>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

/// An optional JSON body: none without a content type.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let value = <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(value.map(|axum::Json(v)| Json(v)))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The query string.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// A query-string field read as text and then with `parse`: empty or blank is absent (as an HTML
/// form sends a field left empty), surrounding blanks are ignored, and `parse` refuses the rest.
pub fn query_field<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .transpose()
}

/// Reads a whole number for [`query_field`], or refuses it naming `field`.
pub fn whole_number(field: &'static str) -> impl Fn(&str) -> Result<i64, ApiError> {
    move |raw| {
        raw.parse()
            .map_err(|_| ApiError::Invalid(format!("{field}: must be a whole number")))
    }
}

/// The parameters of the route's path.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// The raw request body (within the size limit).
#[derive(Debug, Clone, Default)]
pub struct Bytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Bytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Bytes(axum::body::Bytes::from_request(req, state).await?))
    }
}

/// Reads a JSON value out of a raw body, refused like a [`Json`] body.
pub fn json_of<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Invalid(format!("body: {}", detail(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client address of a request from `peer` with these `X-Forwarded-For` headers, behind
    /// proxies in 10.0.0.0/8 and fd00::/8.
    fn client(peer: &str, forwarded: &[&str]) -> String {
        client_by(ForwardedHeader::XForwardedFor, peer, forwarded)
    }

    /// The same, the proxies writing `header`.
    fn client_by(header: ForwardedHeader, peer: &str, values: &[&str]) -> String {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8", "fd00::/8"]).unwrap();
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header.name(), value.parse().unwrap());
        }
        client_address(peer.parse().unwrap(), &headers, &trusted, header).to_string()
    }

    #[test]
    fn proxies_that_write_forwarded_name_the_client_in_its_for_parameters() {
        let by = |peer, values: &[&str]| client_by(ForwardedHeader::Forwarded, peer, values);
        assert_eq!(by("10.0.0.5", &["for=203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            by(
                "10.0.0.5",
                &["for=198.51.100.1;proto=https, For=203.0.113.9;by=10.0.0.5"]
            ),
            "203.0.113.9"
        );
        assert_eq!(
            by(
                "10.0.0.5",
                &["proto=https;for=\"[2001:db8:cafe::17]:4711\""]
            ),
            "2001:db8:cafe::17"
        );
        assert_eq!(
            by("10.0.0.5", &["for=\"203.0.113.9:5123\", for=10.0.0.7"]),
            "203.0.113.9"
        );
        // A comma inside a quoted value does not split an element.
        assert_eq!(
            by("10.0.0.5", &["for=203.0.113.9;note=\"a, b\""]),
            "203.0.113.9"
        );
        // Several headers are one list.
        assert_eq!(
            by("10.0.0.5", &["for=198.51.100.1", "for=203.0.113.9"]),
            "203.0.113.9"
        );
        // A hop the proxy does not know or hides, or an element without `for`: the proxy.
        assert_eq!(by("10.0.0.5", &["for=unknown"]), "10.0.0.5");
        assert_eq!(by("10.0.0.5", &["for=_hidden"]), "10.0.0.5");
        assert_eq!(by("10.0.0.5", &["proto=https"]), "10.0.0.5");
        assert_eq!(by("10.0.0.5", &["for=\"\\\"203.0.113.9\""]), "10.0.0.5");
        // Only the configured header is read: the other may be the client's own.
        assert_eq!(by("10.0.0.5", &[]), "10.0.0.5");
        let trusted = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("forwarded", "for=198.51.100.66".parse().unwrap());
        headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let read = |header| client_address(peer, &headers, &trusted, header).to_string();
        assert_eq!(read(ForwardedHeader::XForwardedFor), "203.0.113.9");
        assert_eq!(read(ForwardedHeader::Forwarded), "198.51.100.66");
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        assert_eq!(client("10.0.0.5", &["203.0.113.9"]), "203.0.113.9");
        assert_eq!(client("fd00::5", &["2001:db8::9"]), "2001:db8::9");
        // The right-most hop that is not a proxy: what the client wrote to the left proves nothing.
        assert_eq!(
            client("10.0.0.5", &["198.51.100.1, 203.0.113.9, 10.0.0.7"]),
            "203.0.113.9"
        );
        assert_eq!(client("10.0.0.5", &["garbage, 203.0.113.9"]), "203.0.113.9");
        // Several headers are one list; the last proxy's hop is the last one.
        assert_eq!(
            client("10.0.0.5", &["198.51.100.1", "203.0.113.9, 10.0.0.7"]),
            "203.0.113.9"
        );
        // Ports and brackets as some proxies write them; IPv4 written as IPv6.
        assert_eq!(client("10.0.0.5", &["203.0.113.9:5123"]), "203.0.113.9");
        assert_eq!(client("10.0.0.5", &["[2001:db8::9]:443"]), "2001:db8::9");
        assert_eq!(client("10.0.0.5", &["[2001:db8::9]"]), "2001:db8::9");
        assert_eq!(client("10.0.0.5", &["::ffff:203.0.113.9"]), "203.0.113.9");
        assert_eq!(client("::ffff:10.0.0.5", &["203.0.113.9"]), "203.0.113.9");
        // Every hop a proxy: the farthest one.
        assert_eq!(client("10.0.0.5", &["10.0.0.8, 10.0.0.7"]), "10.0.0.8");
    }

    #[test]
    fn anyone_else_is_the_client_whatever_the_headers_say() {
        assert_eq!(client("198.51.100.1", &["203.0.113.9"]), "198.51.100.1");
        assert_eq!(client("198.51.100.1", &["10.0.0.1"]), "198.51.100.1");
        assert_eq!(client("2001:db8::1", &["203.0.113.9"]), "2001:db8::1");
        let nobody = TrustedProxies::default();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            client_address(peer, &headers, &nobody, ForwardedHeader::XForwardedFor),
            peer
        );
    }

    #[test]
    fn a_header_that_cannot_be_read_falls_back_to_the_proxy() {
        assert_eq!(client("10.0.0.5", &[]), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &[""]), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &["203.0.113.9, nonsense"]), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &["203.0.113.9,"]), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &["unknown"]), "10.0.0.5");
        assert_eq!(client("10.0.0.5", &["203.0.113.999"]), "10.0.0.5");
        let trusted = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"203.0.113.9, \xff").unwrap(),
        );
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            client_address(peer, &headers, &trusted, ForwardedHeader::XForwardedFor),
            peer
        );
    }

    #[test]
    fn a_query_field_left_empty_is_absent_and_a_bad_one_is_named() {
        let read = |raw| query_field(raw, whole_number("before"));
        assert_eq!(read(None).unwrap(), None);
        assert_eq!(read(Some("")).unwrap(), None);
        assert_eq!(read(Some("  ")).unwrap(), None);
        assert_eq!(read(Some(" 42 ")).unwrap(), Some(42));
        let Err(ApiError::Invalid(message)) = read(Some("4x")) else {
            panic!("a bad number is invalid");
        };
        assert!(message.starts_with("before:"), "{message}");
    }
}
