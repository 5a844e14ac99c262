//! `Idempotency-Key` on `POST`, `PATCH` and `DELETE` (README, "Retry-safe
//! writes"), with Stripe's semantics: the first answer to a key is kept
//! for 24 hours and given again to a retry of the same request, which then
//! does nothing; the same key with another request is a 422; a retry while
//! the first still runs is a 409.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
use super::extract::{BodyLimit, read_body};
use crate::auth::Caller;
use crate::domain::Timestamp;
use crate::error::{ApiError, ApiResult};
use crate::store::{IdempotencyBegin, IdempotencyClaim, StoredAnswer};

pub const HEADER: &str = "idempotency-key";

/// On a replayed answer, as Stripe marks them.
pub const REPLAYED: &str = "idempotent-replayed";

/// How long a key and its answer are kept.
pub const KEPT_FOR: Duration = Duration::from_secs(24 * 3600);

/// How long a request holds its key. A process that dies mid-request
/// keeps the key from being used until then; a live one finishes well
/// before (its handler keeps going past the request timeout, but no
/// store call takes this long).
const LEASE: Duration = Duration::from_secs(300);

/// Longest key accepted (Stripe's limit).
pub const MAX_KEY_CHARS: usize = 255;

/// The layer: runs between the key check (it needs the account) and the
/// request timeout (a keyed request goes on when its client gives up, so
/// that its answer is kept for the retry).
pub async fn idempotency(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::DELETE
    );
    if !writes || !request.headers().contains_key(HEADER) {
        return next.run(request).await;
    }
    match keyed(app, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn keyed(app: AppState, request: Request, next: Next) -> Result<Response, Response> {
    let key = read_key(request.headers().get(HEADER)).map_err(IntoResponse::into_response)?;
    let account = request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.account)
        .ok_or_else(|| ApiError::internal().into_response())?;
    let (parts, body) = request.into_parts();
    let bytes = read_body(BodyLimit::of(&parts.extensions), body)
        .await
        .map_err(IntoResponse::into_response)?;
    let now = Timestamp::now();
    let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let claim = IdempotencyClaim {
        account,
        key,
        fingerprint: fingerprint(&parts.method, &parts.uri, &bytes),
        now,
        expired_before: Timestamp::from_unix(now.unix().saturating_sub(seconds(KEPT_FOR))),
        lease_until: Timestamp::from_unix(now.unix().saturating_add(seconds(LEASE))),
    };
    let begun = app
        .store
        .begin_idempotent(&claim)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    match begun {
        IdempotencyBegin::Replay(answer) => Ok(replay(answer)),
        IdempotencyBegin::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with another request (method, path or body); \
             use a new key for a new request",
        )
        .into_response()),
        IdempotencyBegin::InProgress => Err(ApiError::idempotency_in_progress().into_response()),
        IdempotencyBegin::Started => {
            let request = Request::from_parts(parts, Body::from(bytes));
            // Its own task: if the client disconnects or the request times
            // out, the write still finishes and its answer is kept.
            let run = tokio::spawn({
                let (app, claim) = (app.clone(), claim.clone());
                async move {
                    let response = next.run(request).await;
                    keep(&app, &claim, response).await
                }
            });
            match run.await {
                Ok(response) => Ok(response),
                // The handler panicked: nothing to keep, and the key must
                // not stay held until its lease ends.
                Err(_) => {
                    release(&app, &claim).await;
                    Err(ApiError::internal().into_response())
                }
            }
        }
    }
}

/// 1 to 255 visible ASCII characters (a UUID, typically).
fn read_key(value: Option<&HeaderValue>) -> ApiResult<String> {
    let key = value
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !visible {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!(
                "the Idempotency-Key header must be 1 to {MAX_KEY_CHARS} visible ASCII characters"
            ),
        ));
    }
    Ok(key.to_owned())
}

/// What makes two requests "the same": method, path with query, and body
/// byte for byte.
pub fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(uri.path_and_query().map_or("", |p| p.as_str()).as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

/// Keeps the answer for the key, or lets go of the key when the answer
/// says the request changed nothing and may simply be sent again: a 5xx
/// (SPEC §1: a failed request changes nothing), a 429, a 408. The answer
/// goes to the client either way.
async fn keep(app: &AppState, claim: &IdempotencyClaim, response: Response) -> Response {
    let status = response.status();
    let retryable = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if retryable {
        release(app, claim).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    // Answers are whole buffers already (api::json): this only takes it.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "an answer could not be read to keep it");
            release(app, claim).await;
            return ApiError::internal().into_response();
        }
    };
    let answer = StoredAnswer {
        status: status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    if let Err(error) = app.store.finish_idempotent(claim, &answer).await {
        // The write is done and the client gets its answer; a retry would
        // find the key held until the lease ends, then run again.
        tracing::error!(%error, "an idempotent answer could not be kept");
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn release(app: &AppState, claim: &IdempotencyClaim) {
    if let Err(error) = app.store.release_idempotent(claim).await {
        tracing::warn!(%error, "an idempotency key could not be released");
    }
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    if let Some(value) = answer
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        let key = |s: &str| read_key(HeaderValue::from_str(s).ok().as_ref());
        assert_eq!(key("3f2c9a1e-key").ok().as_deref(), Some("3f2c9a1e-key"));
        assert!(key("").is_err());
        assert!(key("has space").is_err());
        assert!(key(&"k".repeat(256)).is_err());
        assert!(key(&"k".repeat(255)).is_ok());
        assert!(read_key(None).is_err());
    }

    #[test]
    fn the_fingerprint_tells_method_path_query_and_body_apart() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().expect("uri");
        let base = fingerprint(&Method::POST, &uri("/v1/contacts"), b"{}");
        assert_eq!(
            base,
            fingerprint(&Method::POST, &uri("/v1/contacts"), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::PATCH, &uri("/v1/contacts"), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, &uri("/v1/contacts?x=1"), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, &uri("/v1/contacts"), b"{ }")
        );
    }
}
