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
        let written = sonic_rs::to_writer(&mut body, &self.0).map_err(|e| e.to_string());
        respond(written.map(|()| body))
    }
}

/// A JSON answer holding `serde_json` values (the OpenAPI document),
/// written by serde_json itself: with its `arbitrary_precision` (which keeps
/// request numbers exact, `domain::decimal`) a `serde_json::Number`
/// serializes as a private struct that only serde_json writes as a number.
/// Bodies served through [`Json`] hold no `serde_json::Value`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SerdeJson<T>(pub T);

impl<T: Serialize> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        respond(serde_json::to_vec(&self.0).map_err(|e| e.to_string()))
    }
}

fn respond(body: Result<Vec<u8>, String>) -> Response {
    match body {
        Ok(body) => (
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients compare bodies byte for byte with what Callbell sends;
    /// switching serializers must not change a byte.
    #[tokio::test]
    async fn bodies_are_byte_for_byte_what_serde_json_writes() {
        // A sonic_rs value: what responses hold where a body carries
        // free-form JSON (webhook payloads), with numbers as sonic writes them.
        let value: sonic_rs::Value = sonic_rs::from_str(
            r#"{"name": "a\"b\\c\u0001\u001f\t\n\r\b\f/é😀<>&\u2028\u007f",
                "nested": {"list": [1, -2, 3000000000, 1.5, true, false, null], "empty": {}},
                "zipCode": "01234", "": []}"#,
        )
        .expect("json");
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

    /// With `arbitrary_precision`, serde_json values keep the literal of
    /// every number; SerdeJson writes them back as numbers, not as the
    /// private struct they serialize through.
    #[tokio::test]
    async fn serde_json_numbers_are_written_as_numbers() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{"maxLength": 255, "big": 18446744073709551616, "e": 1.5e-3}"#)
                .expect("json");
        let response = SerdeJson(&value).into_response();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"maxLength":255,"big":18446744073709551616,"e":1.5e-3}"#
        );
    }
}
