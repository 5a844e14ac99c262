//! Users of an account: who contacts are assigned to and teams are made of.

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, parse_fields, path_id};
use crate::api::openapi::EmailAddress;
use crate::api::views::{Status, UserView};
use crate::auth::Caller;
use crate::domain::email::is_valid_email;
use crate::domain::{FieldError, FieldErrors, PublicId};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};
use crate::store::{NewUser, UserChanges};

/// `POST /users`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateUserRequest {
    /// Unique in the account, case-insensitively.
    #[schema(required = true, nullable = false, value_type = Option<EmailAddress>)]
    pub email: Option<String>,
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub name: Option<String>,
}

/// `PATCH /users/:uuid`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateUserRequest {
    #[schema(value_type = Option<EmailAddress>)]
    pub email: Option<String>,
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserEnvelope {
    pub user: UserView,
}

fn email_field(errors: &mut FieldErrors, email: Option<String>, required: bool) -> Option<String> {
    let email = text_field(errors, "email", email, required)?;
    if !is_valid_email(&email) {
        errors.push(FieldError::new(
            "email",
            "invalid_email",
            format!("'{email}' is not a valid e-mail address"),
        ));
        return None;
    }
    Some(email)
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    responses((status = 200, description = "Every user of the account", body = UserList))
)]
pub async fn list(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<UserList>> {
    let settings = app.store.settings(caller.account).await?;
    Ok(Json(UserList {
        users: settings.users.iter().map(UserView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = CreateUserRequest,
    responses(
        (status = 200, description = "The created user", body = UserEnvelope),
        (status = 409, description = "A user with this e-mail exists (`user_exists`)", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<UserEnvelope>> {
    let (request, mut errors) = parse_fields::<CreateUserRequest>(body, &[]);
    let email = email_field(&mut errors, request.email, true);
    let name = text_field(&mut errors, "name", request.name, true);
    let (Some(email), Some(name)) = (email, name) else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let user = app
        .store
        .create_user(
            caller.account,
            &NewUser {
                uuid: PublicId::random(),
                email,
                name,
            },
        )
        .await?;
    Ok(Json(UserEnvelope {
        user: UserView::from(&user),
    }))
}

#[utoipa::path(
    get,
    path = "/users/{uuid}",
    tag = "users",
    params(("uuid" = PublicId, Path, description = "The user")),
    responses((status = 200, description = "The user", body = UserEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<UserEnvelope>> {
    let id: PublicId = path_id(&uuid, "user")?;
    let settings = app.store.settings(caller.account).await?;
    let user = settings
        .users
        .iter()
        .find(|u| u.uuid == id)
        .ok_or_else(|| {
            ApiError::not_found(format!("user '{uuid}' does not exist in this account"))
        })?;
    Ok(Json(UserEnvelope {
        user: UserView::from(user),
    }))
}

#[utoipa::path(
    patch,
    path = "/users/{uuid}",
    tag = "users",
    params(("uuid" = PublicId, Path, description = "The user")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The updated user", body = UserEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<UserEnvelope>> {
    let id: PublicId = path_id(&uuid, "user")?;
    let (request, mut errors) = parse_fields::<UpdateUserRequest>(body, &[]);
    let changes = UserChanges {
        email: email_field(&mut errors, request.email, false),
        name: text_field(&mut errors, "name", request.name, false),
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let user = app
        .store
        .update_user(caller.account, id, &changes)
        .await
        .not_found_as("user", &uuid)?;
    Ok(Json(UserEnvelope {
        user: UserView::from(&user),
    }))
}

#[utoipa::path(
    delete,
    path = "/users/{uuid}",
    tag = "users",
    params(("uuid" = PublicId, Path, description = "The user")),
    responses(
        (status = 200, description = "`{\"status\": \"user was destroyed\"}`", body = Status),
        (status = 409, description = "The account owner cannot be deleted (`owner_user`)", body = ErrorBody),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<Status>> {
    let id: PublicId = path_id(&uuid, "user")?;
    app.store
        .delete_user(caller.account, id)
        .await
        .not_found_as("user", &uuid)?;
    Ok(destroyed("user was destroyed"))
}
