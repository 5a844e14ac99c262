//! Custom fields, addressed by name (case-insensitive, URL-encoded).

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{MAX_NAME_CHARS, destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, parse_fields};
use crate::api::openapi::NonBlankText;
use crate::api::views::{CustomFieldView, Status};
use crate::auth::Caller;
use crate::domain::settings::{AccountSettings, CustomField};
use crate::domain::{CustomFieldType, FieldError, FieldErrors, fold_case};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};
use crate::store::{CustomFieldChanges, NewCustomField};

/// `POST /custom_fields`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateCustomFieldRequest {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub name: Option<String>,
    #[serde(rename = "type")]
    #[schema(required = true, nullable = false)]
    pub kind: Option<CustomFieldType>,
    /// Required, non-empty and distinct for dropdown and checkbox fields;
    /// refused for the others.
    #[schema(value_type = Option<Vec<NonBlankText>>)]
    pub options: Option<Vec<String>>,
}

/// `PATCH /custom_fields/:name`: rename, or change the options. The type
/// is fixed (a different one is refused).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateCustomFieldRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<CustomFieldType>,
    #[schema(value_type = Option<Vec<NonBlankText>>)]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomFieldList {
    pub custom_fields: Vec<CustomFieldView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomFieldEnvelope {
    pub custom_field: CustomFieldView,
}

fn find<'s>(settings: &'s AccountSettings, name: &str) -> ApiResult<&'s CustomField> {
    settings.custom_field_named(name).ok_or_else(|| {
        ApiError::not_found(format!(
            "custom field '{name}' does not exist in this account"
        ))
    })
}

/// Options of a dropdown or checkbox: at least one, none blank, no two
/// alike (they match case-insensitively).
fn valid_options(errors: &mut FieldErrors, options: Vec<String>) -> Vec<String> {
    if options.is_empty() {
        errors.push(FieldError::new(
            "options",
            "options_required",
            "dropdown and checkbox fields need at least one option",
        ));
    }
    let mut seen = Vec::with_capacity(options.len());
    let mut valid = Vec::with_capacity(options.len());
    for (index, option) in options.iter().enumerate() {
        let field = format!("options[{index}]");
        let trimmed = option.trim();
        if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS {
            errors.push(FieldError::new(
                field,
                "invalid_option",
                format!("options must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        } else if seen.contains(&fold_case(trimmed)) {
            errors.push(FieldError::new(
                field,
                "duplicate_option",
                format!("option '{trimmed}' is listed twice"),
            ));
        } else {
            seen.push(fold_case(trimmed));
            valid.push(trimmed.to_owned());
        }
    }
    valid
}

fn options_not_allowed(kind: CustomFieldType) -> FieldError {
    FieldError::new(
        "options",
        "options_not_allowed",
        format!("a {kind} field has no options; only dropdown and checkbox fields do"),
    )
}

#[utoipa::path(
    get,
    path = "/custom_fields",
    tag = "custom_fields",
    responses((status = 200, description = "Every custom field of the account", body = CustomFieldList))
)]
pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<CustomFieldList>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(CustomFieldList {
        custom_fields: settings
            .custom_fields
            .iter()
            .map(CustomFieldView::from)
            .collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/custom_fields",
    tag = "custom_fields",
    request_body = CreateCustomFieldRequest,
    responses(
        (status = 200, description = "The created custom field", body = CustomFieldEnvelope),
        (status = 409, description = "A custom field with this name exists (`custom_field_exists`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<CustomFieldEnvelope>> {
    let (request, mut errors) = parse_fields::<CreateCustomFieldRequest>(body, &[]);
    let name = text_field(&mut errors, "name", request.name, true);
    errors.require("type", request.kind);
    let options = match (request.kind, request.options) {
        (Some(kind), options) if kind.has_options() => {
            valid_options(&mut errors, options.unwrap_or_default())
        }
        (Some(kind), Some(options)) if !options.is_empty() => {
            errors.push(options_not_allowed(kind));
            Vec::new()
        }
        _ => Vec::new(),
    };
    let (Some(name), Some(kind)) = (name, request.kind) else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let field = app
        .store
        .create_custom_field(
            caller.account,
            &NewCustomField {
                name,
                kind,
                options,
            },
        )
        .await?;
    Ok(Json(CustomFieldEnvelope {
        custom_field: CustomFieldView::from(&field),
    }))
}

#[utoipa::path(
    get,
    path = "/custom_fields/{name}",
    tag = "custom_fields",
    params(("name" = String, Path, description = "The custom field name (case-insensitive, URL-encoded)")),
    responses((status = 200, description = "The custom field", body = CustomFieldEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(name): PathParam,
) -> ApiResult<Json<CustomFieldEnvelope>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(CustomFieldEnvelope {
        custom_field: CustomFieldView::from(find(&settings, &name)?),
    }))
}

/// Renames a field or changes its options; its type is fixed, since the
/// values contacts hold were checked against it.
#[utoipa::path(
    patch,
    path = "/custom_fields/{name}",
    tag = "custom_fields",
    params(("name" = String, Path, description = "The custom field name (case-insensitive, URL-encoded)")),
    request_body = UpdateCustomFieldRequest,
    responses(
        (status = 200, description = "The updated custom field", body = CustomFieldEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(name): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<CustomFieldEnvelope>> {
    let (request, mut errors) = parse_fields::<UpdateCustomFieldRequest>(body, &[]);
    let settings = app.store.settings(caller.account).await?;
    let field = find(&settings, &name)?;
    let new_name = text_field(&mut errors, "name", request.name, false);
    if request.kind.is_some_and(|kind| kind != field.kind) {
        errors.push(FieldError::new(
            "type",
            "type_immutable",
            "the type of a custom field cannot change; create a new field instead",
        ));
    }
    let options = match request.options {
        Some(options) if field.kind.has_options() => Some(valid_options(&mut errors, options)),
        Some(options) if !options.is_empty() => {
            errors.push(options_not_allowed(field.kind));
            None
        }
        _ => None,
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let changes = CustomFieldChanges {
        name: new_name,
        options,
    };
    let updated = app
        .store
        .update_custom_field(caller.account, field.id, &changes)
        .await
        .not_found_as("custom field", &name)?;
    Ok(Json(CustomFieldEnvelope {
        custom_field: CustomFieldView::from(&updated),
    }))
}

#[utoipa::path(
    delete,
    path = "/custom_fields/{name}",
    tag = "custom_fields",
    params(("name" = String, Path, description = "The custom field name (case-insensitive, URL-encoded)")),
    responses(
        (status = 200, description = "`{\"status\": \"custom field was destroyed\"}`", body = Status),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(name): PathParam,
) -> ApiResult<Json<Status>> {
    let settings = app.store.settings(caller.account).await?;
    let field = find(&settings, &name)?;
    app.store
        .delete_custom_field(caller.account, field.id)
        .await
        .not_found_as("custom field", &name)?;
    Ok(destroyed("custom field was destroyed"))
}
