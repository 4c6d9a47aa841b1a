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

use std::error::Error as _;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
