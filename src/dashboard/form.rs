//! An HTML form as it arrives (`application/x-www-form-urlencoded`), and
//! the JSON body of the API request it stands for.

use axum::extract::{FromRequest, Request};
use serde_json::{Map, Value};

use super::PageError;
use crate::api::extract::{BodyLimit, read_body};

/// A submitted form: every name with every value, in order (a group of
/// checkboxes sends one name many times).
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value sent for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value sent for `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether `name` was sent at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

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
        Ok(Form::parse(&bytes))
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
