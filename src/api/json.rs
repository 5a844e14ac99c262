//! JSON response bodies, serialized into one buffer sized for a contact.
//! (axum's own `Json` writes through a small growing buffer token by
//! token, which showed in every listing.)

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// Room for one contact's JSON with its envelope; a listing grows it a few
/// times at most.
const INITIAL_CAPACITY: usize = 4096;

/// A JSON answer: `200` alone, or the body of `(status, Json(..))`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=utf-8"),
                )],
                body,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(%error, "a response could not be serialized");
                ApiError::internal().into_response()
            }
        }
    }
}
