//! An HTML form as it arrives (`application/x-www-form-urlencoded`), and
//! the JSON body of the API request it stands for.

use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use super::PageError;
use crate::api::extract::{BodyLimit, QueryParams, read_body};

/// A submitted form: every name with every value, in order; read as a
/// query string is (`get`, `all`, `has`).
#[derive(Debug, Default)]
pub struct Form(QueryParams);

impl std::ops::Deref for Form {
    type Target = QueryParams;

    fn deref(&self) -> &QueryParams {
        &self.0
    }
}

impl Form {
    /// `name`'s value into `body` as a JSON string, when it was sent and is
    /// not empty (an empty input means "not given").
    pub fn copy_text(&self, body: &mut Map<String, Value>, name: &str) {
        if let Some(value) = self.get(name).filter(|v| !v.is_empty()) {
            body.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = PageError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, PageError> {
        let limit = BodyLimit::of(request.extensions());
        let bytes = read_body(limit, request.into_body())
            .await
            .map_err(PageError::from)?;
        Ok(Form(QueryParams::from_urlencoded(&bytes)))
    }
}

/// `"a, b"` and `["a", "b"]` alike as the list of names they hold.
pub fn comma_list(text: &str) -> Vec<Value> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Value::String(t.to_owned()))
        .collect()
}
