//! The HTTP error type: a stable code and a message for the client; internal failures are logged
//! with an id and the client sees only that id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domain::InvalidValue;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(String),
    /// A form refused field by field.
    #[error("some fields need attention")]
    InvalidFields(Vec<crate::notes::form::FieldError>),
    #[error("sign in first")]
    Unauthorized,
    #[error("your role may not do this")]
    Forbidden,
    /// The account's password was set by someone else (first start, a reset): it must be
    /// changed before anything else.
    #[error("change your password first")]
    PasswordChangeRequired,
    #[error("not found")]
    NotFound,
    #[error("this address does not take that method")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again shortly")]
    RateLimited,
    /// The request could not be carried out now; the message says what did not happen.
    #[error("{0}")]
    Unavailable(String),
    #[error("the request body is too large")]
    TooLarge,
    #[error("send the body as JSON, with Content-Type: application/json")]
    UnsupportedMediaType,
    /// A plain request to an address that takes only WebSocket connections.
    #[error("this address takes WebSocket connections only")]
    UpgradeRequired,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The body of every error answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: invalid, invalid_fields, unauthorized, forbidden,
    /// password_change_required, not_found, method_not_allowed, conflict, rate_limited, unavailable, too_large,
    /// unsupported_media_type, upgrade_required, internal.
    pub code: &'static str,
    pub message: String,
    /// For internal errors: quote it to an administrator; it is in the server log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// For `invalid_fields`: each refused field with its message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<crate::notes::form::FieldError>,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid",
            ApiError::InvalidFields(_) => "invalid_fields",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::PasswordChangeRequired => "password_change_required",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::RateLimited => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooLarge => "too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::UpgradeRequired => "upgrade_required",
            ApiError::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::InvalidFields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::PasswordChangeRequired => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict => ApiError::Conflict("already exists".into()),
            StoreError::Unstorable => ApiError::Invalid(
                "a value cannot be stored (text may not hold NUL characters)".into(),
            ),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<InvalidValue> for ApiError {
    fn from(e: InvalidValue) -> Self {
        ApiError::Invalid(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let error_id = match &self {
            ApiError::Internal(e) => {
                let id = crate::auth::random_token(9);
                tracing::error!(error_id = %id, error = %format!("{e:#}"), "internal error");
                Some(id)
            }
            _ => None,
        };
        let message = match &self {
            ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let code = self.code();
        // A 426 names the protocol to upgrade to (RFC 9110, 15.5.22).
        let upgrade = matches!(self, ApiError::UpgradeRequired)
            .then_some([(axum::http::header::UPGRADE, "websocket")]);
        let fields = match self {
            ApiError::InvalidFields(fields) => fields,
            _ => Vec::new(),
        };
        let body = ErrorBody {
            code,
            message,
            error_id,
            fields,
        };
        (status, upgrade, axum::Json(body)).into_response()
    }
}

/// The answer to a request whose handler panicked (the HTTP router's last safety net): a logged
/// internal error, so the client gets a JSON 500 with code `internal` rather than a dropped
/// connection.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    ApiError::Internal(anyhow::anyhow!("request handler panicked: {what}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_answers_a_json_internal_error() {
        for panic in [
            Box::new("boom") as Box<dyn std::any::Any + Send>,
            Box::new(String::from("boom")),
            Box::new(42),
        ] {
            let response = panic_response(panic);
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["code"], "internal");
            assert_eq!(body["message"], "internal error");
            assert!(body["error_id"].is_string());
        }
    }
}
