//! The one error type of the API, rendered as the error body of SPEC §1:
//! `{"error": {"status", "code", "message", "details"}}`.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Conflict, FieldError};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    details: Vec<FieldError>,
    retry_after: Option<u32>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<Box<str>>,
    /// Offending fields left out of `details` (past [`MAX_DETAILS`]).
    details_omitted: u32,
}

/// `Retry-After` of a 503 `storage_unavailable`: a busy database or a
/// lost connection is usually back within a second.
const UNAVAILABLE_RETRY_AFTER_SECS: u32 = 1;
/// `Retry-After` of a 503 `storage_full`: space is freed by a person, so
/// retrying at once only adds load.
const FULL_RETRY_AFTER_SECS: u32 = 30;

/// Most entries `details` lists; the body counts the rest.
pub const MAX_DETAILS: usize = 100;
/// Problems a 422's message spells out before "and N more".
const MESSAGES_IN_SUMMARY: usize = 10;

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            challenge: None,
            details_omitted: 0,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 401 with its `WWW-Authenticate: Bearer realm="bellbook"`
    /// challenge; `error` is RFC 6750's code, for credentials that were
    /// sent but are not valid (none when there were none).
    pub fn unauthorized(error: Option<&'static str>, message: impl Into<String>) -> Self {
        let message = message.into();
        let challenge = match error {
            // The message holds no quote or backslash: safe in a quoted string.
            Some(error) => format!(
                "Bearer realm=\"bellbook\", error=\"{error}\", error_description=\"{}\"",
                message.replace(['"', '\\'], "'")
            ),
            None => "Bearer realm=\"bellbook\"".to_owned(),
        };
        ApiError {
            challenge: Some(challenge.into_boxed_str()),
            ..ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the request body as JSON with 'Content-Type: application/json'",
        )
    }

    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        ApiError {
            retry_after: Some(u32::try_from(retry_after_seconds).unwrap_or(u32::MAX)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests for this account; retry in {retry_after_seconds} s"),
            )
        }
    }

    /// 422 with every offending field. The code is the fields' common code
    /// when they share one (`unknown_tag`), else `validation_failed`.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let code: Cow<'static, str> = match details.first() {
            Some(first) if details.iter().all(|d| d.code == first.code) => first.code.into(),
            _ => "validation_failed".into(),
        };
        let message = match details.as_slice() {
            [only] => only.message.clone(),
            _ => {
                let shown: Vec<&str> = details
                    .iter()
                    .take(MESSAGES_IN_SUMMARY)
                    .map(|d| d.message.as_str())
                    .collect();
                let rest = details.len().saturating_sub(MESSAGES_IN_SUMMARY);
                let more = if rest > 0 {
                    format!("; and {rest} more")
                } else {
                    String::new()
                };
                format!("{} problems: {}{more}", details.len(), shown.join("; "))
            }
        };
        let mut details = details;
        let omitted = u32::try_from(details.len().saturating_sub(MAX_DETAILS)).unwrap_or(u32::MAX);
        details.truncate(MAX_DETAILS);
        ApiError {
            details,
            details_omitted: omitted,
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    /// One field of a request is wrong (422).
    pub fn invalid_field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::validation(vec![FieldError::new(field, code, message)])
    }

    pub fn conflict(conflict: Conflict) -> Self {
        ApiError {
            details: conflict.details,
            ..ApiError::new(StatusCode::CONFLICT, conflict.code, conflict.message)
        }
    }

    /// The handler did not finish in time. A write it was doing may still
    /// be committed: only a retry with the same `Idempotency-Key` is sure
    /// not to do it twice (README, "Timeouts and connections").
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request did not finish within {} s; a write may still have been applied, so retry it with the same Idempotency-Key",
                    limit.as_secs()
                ),
            )
        }
    }

    /// A retry came while the first request with its key still runs.
    pub fn idempotency_in_progress() -> Self {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running; retry once it has answered",
            )
        }
    }

    /// The client did not send its whole body in time; nothing was done.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} s; the request changed nothing",
                limit.as_secs()
            ),
        )
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; the request changed nothing",
        )
    }

    pub fn unavailable() -> Self {
        ApiError {
            retry_after: Some(UNAVAILABLE_RETRY_AFTER_SECS),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "storage is unavailable or busy; the request changed nothing and can be retried",
            )
        }
    }

    /// The disk under the database is full: reads still work, writes do
    /// again once an operator frees space (no restart needed).
    pub fn storage_full() -> Self {
        ApiError {
            retry_after: Some(FULL_RETRY_AFTER_SECS),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_full",
                "the server's storage is full; the request changed nothing and can be retried once space is freed",
            )
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }
}

/// Turns a store's "not found" into a 404 that names what was looked for;
/// every other store error converts as `From` says.
pub trait NotFoundAs<T> {
    fn not_found_as(self, what: &str, id: &str) -> ApiResult<T>;
}

impl<T> NotFoundAs<T> for Result<T, StoreError> {
    fn not_found_as(self, what: &str, id: &str) -> ApiResult<T> {
        self.map_err(|error| match error {
            StoreError::NotFound => {
                ApiError::not_found(format!("{what} '{id}' does not exist in this account"))
            }
            other => ApiError::from(other),
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => {
                ApiError::not_found("the requested object does not exist in this account")
            }
            StoreError::Conflict(conflict) => ApiError::conflict(conflict),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %ErrorChain(cause.as_ref()), "storage unavailable");
                ApiError::unavailable()
            }
            StoreError::Full(cause) => {
                // Someone has to free space: as loud as a failure.
                tracing::error!(error = %ErrorChain(cause.as_ref()), "storage full");
                ApiError::storage_full()
            }
            StoreError::Other(cause) => {
                tracing::error!(error = %ErrorChain(cause.as_ref()), "storage failure");
                ApiError::internal()
            }
        }
    }
}

/// Displays an error with all its causes, for the log (never for clients).
pub struct ErrorChain<'e>(pub &'e (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// What went wrong with an outgoing request that got no whole answer (a
/// webhook delivery, a request of `bellbook pull`): the kind of failure,
/// then every cause. Without the URL, which the caller names if it may.
pub fn describe_request_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer's body was cut off"
    } else {
        "request failed"
    };
    match std::error::Error::source(error) {
        Some(cause) => format!("{kind}: {}", ErrorChain(cause)),
        None => kind.to_owned(),
    }
}

/// The body of every error response (SPEC §1).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// The HTTP status, repeated.
    pub status: u16,
    /// A stable snake_case identifier of the problem.
    #[schema(example = "unknown_tag")]
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
    /// One entry per offending field, at most 100; absent when there are
    /// none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false, max_items = 100)]
    pub details: Vec<ErrorDetail>,
    /// How many offending fields `details` leaves out; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub details_omitted: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Where the problem is: `name`, `tags[1]`, `custom_fields.VAT`.
    pub field: String,
    pub code: String,
    pub message: String,
    /// The existing object the problem is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub uuid: Option<String>,
}

impl ApiError {
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending fields of a 422, each with its message.
    pub fn details(&self) -> &[FieldError] {
        &self.details
    }

    /// The error as SPEC §1's body.
    pub fn into_body(self) -> ErrorBody {
        ErrorBody {
            error: ErrorObject {
                status: self.status.as_u16(),
                code: self.code.into_owned(),
                message: self.message,
                details: self
                    .details
                    .into_iter()
                    .map(|d| ErrorDetail {
                        field: d.field,
                        code: d.code.to_owned(),
                        message: d.message,
                        uuid: d.uuid,
                    })
                    .collect(),
                details_omitted: (self.details_omitted > 0).then_some(self.details_omitted),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after = self.retry_after;
        let challenge = self.challenge.clone();
        let mut response = (status, crate::api::json::Json(self.into_body())).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_code_is_shared_code_or_generic() {
        let same = ApiError::validation(vec![
            FieldError::new(
                "tags[0]",
                "unknown_tag",
                "tag 'Foo' does not exist in this account",
            ),
            FieldError::new(
                "tags[2]",
                "unknown_tag",
                "tag 'Bar' does not exist in this account",
            ),
        ]);
        assert_eq!(same.code(), "unknown_tag");
        let mixed = ApiError::validation(vec![
            FieldError::required("name"),
            FieldError::new("tags[0]", "unknown_tag", "x"),
        ]);
        assert_eq!(mixed.code(), "validation_failed");
        assert_eq!(mixed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
