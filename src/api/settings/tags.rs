//! Tags, addressed by name (case-insensitive, URL-encoded).

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, parse_fields};
use crate::api::views::{Status, TagView};
use crate::auth::Caller;
use crate::domain::settings::{AccountSettings, Tag};
use crate::domain::{FieldError, FieldErrors};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};

/// `POST /tags` and `PATCH /tags/:name` (a rename).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TagRequest {
    /// No commas: they separate tag names in lists.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"^[^,]*[^,\s][^,]*$"
    )]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagList {
    pub tags: Vec<TagView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TagEnvelope {
    pub tag: TagView,
}

fn find<'s>(settings: &'s AccountSettings, name: &str) -> ApiResult<&'s Tag> {
    settings
        .tag_named(name)
        .ok_or_else(|| ApiError::not_found(format!("tag '{name}' does not exist in this account")))
}

/// A tag name: present, not blank, and without commas, which separate tag
/// names wherever a list is given as one string.
fn valid_name(request: TagRequest, mut errors: FieldErrors) -> ApiResult<String> {
    let name = text_field(&mut errors, "name", request.name, true);
    if name.as_deref().is_some_and(|n| n.contains(',')) {
        errors.push(FieldError::new(
            "name",
            "invalid_tag_name",
            "tag names cannot contain commas, which separate tags in lists",
        ));
    }
    errors
        .finish(name)
        .map_err(ApiError::validation)?
        .ok_or_else(|| ApiError::invalid_field("name", "required", "'name' is required"))
}

#[utoipa::path(
    get,
    path = "/tags",
    tag = "tags",
    responses((status = 200, description = "Every tag of the account", body = TagList))
)]
pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<TagList>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(TagList {
        tags: settings.tags.iter().map(TagView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/tags",
    tag = "tags",
    request_body = TagRequest,
    responses(
        (status = 200, description = "The created tag", body = TagEnvelope),
        (status = 409, description = "A tag with this name exists (`tag_exists`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<TagEnvelope>> {
    let (request, errors) = parse_fields::<TagRequest>(body, &[]);
    let name = valid_name(request, errors)?;
    let tag = app.store.create_tag(caller.account, &name).await?;
    Ok(Json(TagEnvelope {
        tag: TagView::from(&tag),
    }))
}

#[utoipa::path(
    get,
    path = "/tags/{name}",
    tag = "tags",
    params(("name" = String, Path, description = "The tag name (case-insensitive, URL-encoded)")),
    responses((status = 200, description = "The tag", body = TagEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(name): PathParam,
) -> ApiResult<Json<TagEnvelope>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(TagEnvelope {
        tag: TagView::from(find(&settings, &name)?),
    }))
}

#[utoipa::path(
    patch,
    path = "/tags/{name}",
    tag = "tags",
    params(("name" = String, Path, description = "The tag name (case-insensitive, URL-encoded)")),
    request_body = TagRequest,
    responses(
        (status = 200, description = "The updated tag", body = TagEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(name): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<TagEnvelope>> {
    let (request, errors) = parse_fields::<TagRequest>(body, &[]);
    let new_name = valid_name(request, errors)?;
    let settings = app.store.settings(caller.account).await?;
    let tag = find(&settings, &name)?;
    let renamed = app
        .store
        .rename_tag(caller.account, tag.id, &new_name)
        .await
        .not_found_as("tag", &name)?;
    Ok(Json(TagEnvelope {
        tag: TagView::from(&renamed),
    }))
}

#[utoipa::path(
    delete,
    path = "/tags/{name}",
    tag = "tags",
    params(("name" = String, Path, description = "The tag name (case-insensitive, URL-encoded)")),
    responses(
        (status = 200, description = "`{\"status\": \"tag was destroyed\"}`", body = Status),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(name): PathParam,
) -> ApiResult<Json<Status>> {
    let settings = app.store.settings(caller.account).await?;
    let tag = find(&settings, &name)?;
    app.store
        .delete_tag(caller.account, tag.id)
        .await
        .not_found_as("tag", &name)?;
    Ok(destroyed("tag was destroyed"))
}
