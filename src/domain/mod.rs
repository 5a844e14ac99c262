//! Validated domain types. Nothing here knows about HTTP or SQL: request
//! parsing produces these types, the store persists them.

pub mod contact;
pub mod custom_field;
pub mod decimal;
pub mod email;
pub mod event;
pub mod identifier;
pub mod ids;
pub mod settings;
pub mod source;
pub mod time;

pub use custom_field::{CustomFieldType, CustomFieldValue};
pub use event::EventName;
pub use identifier::Identifier;
pub use ids::{FunnelId, PublicId};
pub use source::Source;
pub use time::Timestamp;

/// One offending field of a request: where it is, a stable code, and a
/// sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
    /// The id of an existing object the problem is about (the contact that
    /// already has an identifier, say).
    pub uuid: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
            uuid: None,
        }
    }

    pub fn required(field: &str) -> Self {
        FieldError::new(field, "required", format!("'{field}' is required"))
    }
}

/// Everything wrong with one request, gathered before answering so the client
/// can fix all of it at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        FieldErrors(Vec::new())
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }

    /// Records `field` as missing when `value` is absent, unless the field
    /// was there with the wrong shape (already reported); passes `value` on.
    pub fn require<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.has_field(field) {
            self.push(FieldError::required(field));
        }
        value
    }

    /// `Ok(value)` when nothing was recorded, else all recorded errors.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// A uniqueness or reference rule that the current state of the account
/// forbids (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub code: &'static str,
    pub message: String,
    pub details: Vec<FieldError>,
}

impl Conflict {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Conflict {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_detail(mut self, detail: FieldError) -> Self {
        self.details.push(detail);
        self
    }
}

/// Trims a required text value; `None` when nothing but white space is left.
pub fn non_blank(value: &str) -> Option<&str> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// Case folding used for every case-insensitive name in an account (tags,
/// custom fields, e-mails, options). Done in Rust, not SQL, so SQLite and
/// PostgreSQL fold identically.
pub fn fold_case(value: &str) -> String {
    value.trim().to_lowercase()
}

/// Deserializes a type from a string through its `FromStr`, with an error
/// that says what is accepted (`must be one of …`).
macro_rules! deserialize_from_str {
    ($type:ty, $expected:expr) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text =
                    <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)
                        .map_err(|_| serde::de::Error::custom(format!("must be {}", $expected)))?;
                text.parse()
                    .map_err(|_| serde::de::Error::custom(format!("must be {}", $expected)))
            }
        }
    };
}

deserialize_from_str!(Source, Source::EXPECTED);
deserialize_from_str!(CustomFieldType, CustomFieldType::EXPECTED);
deserialize_from_str!(contact::BotCommand, contact::BotCommand::EXPECTED);
