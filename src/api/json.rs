//! JSON response bodies, serialized into one buffer sized for a contact.
//! (axum's own `Json` writes through a small growing buffer token by
//! token, which showed in every listing.) The serializer is sonic-rs's:
//! the same JSON as serde_json's, but it escapes strings with SIMD instead
//! of a byte at a time, which was a sixth of every listing's instructions
//! (BENCHMARKS.md).

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
        match sonic_rs::to_writer(&mut body, &self.0) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Clients compare bodies byte for byte with what Callbell sends;
    /// switching serializers must not change a byte.
    #[tokio::test]
    async fn bodies_are_byte_for_byte_what_serde_json_writes() {
        let value = json!({
            "name": "a\"b\\c\u{1}\u{1f}\t\n\r\u{8}\u{c}/é😀<>&\u{2028}\u{7f}",
            "nested": {"list": [1, -2, 3_000_000_000_i64, true, false, null], "empty": {}},
            "zipCode": "01234",
            "": [],
        });
        let response = Json(&value).into_response();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let expected = serde_json::to_vec(&value).expect("json");
        assert_eq!(
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&expected)
        );
    }
}
