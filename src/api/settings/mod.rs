//! The account settings API of SPEC §2: tags, custom fields, users, teams,
//! channels, bots and funnels, each with list, create, get, update, delete.

pub mod bots;
pub mod channels;
pub mod custom_fields;
pub mod funnels;
pub mod tags;
pub mod teams;
pub mod users;

use crate::api::json::Json;

use super::views::Status;
use crate::domain::{FieldError, FieldErrors};

/// Longest name, title or e-mail a setting accepts.
pub const MAX_NAME_CHARS: usize = 255;

/// A text field of a settings request, trimmed: blank or overlong values
/// are recorded as errors, and so is a missing one when `required`.
pub fn text_field(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    required: bool,
) -> Option<String> {
    match value {
        None if required => errors.require(field, None),
        None => None,
        Some(value) => {
            let trimmed = value.trim();
            if trimmed.is_empty() {
                errors.push(FieldError::new(
                    field,
                    "blank",
                    format!("'{field}' must not be empty"),
                ));
                None
            } else if trimmed.chars().count() > MAX_NAME_CHARS {
                errors.push(FieldError::new(
                    field,
                    "too_long",
                    format!("'{field}' may be at most {MAX_NAME_CHARS} characters long"),
                ));
                None
            } else {
                Some(trimmed.to_owned())
            }
        }
    }
}

/// `{"status": "<what> was destroyed"}`, as `DELETE /contacts/:uuid` says it.
pub fn destroyed(status: &'static str) -> Json<Status> {
    Json(Status { status })
}
