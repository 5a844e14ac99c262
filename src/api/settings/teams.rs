//! Teams: groups of users; every contact belongs to one, the default team
//! unless another is chosen.

use crate::api::json::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PageQuery, PathParam, Query, parse_fields, path_id};
use crate::api::openapi::NonBlankText;
use crate::api::views::{PageMeta, Status, TeamView, page_of};
use crate::auth::Caller;
use crate::domain::settings::AccountSettings;
use crate::domain::{FieldError, FieldErrors, PublicId};
use crate::error::{ApiError, ApiResult, ErrorBody, NotFoundAs};
use crate::store::{NewTeam, TeamChanges};

/// Teams per page of `GET /teams`.
pub const PAGE_SIZE: u32 = 100;

/// `POST /teams`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CreateTeamRequest {
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = r"\S"
    )]
    pub name: Option<String>,
    /// Make it the account's default team (the old one stops being it).
    pub default: Option<bool>,
    /// Users by uuid or e-mail.
    #[schema(value_type = Option<Vec<NonBlankText>>)]
    pub members: Option<Vec<String>>,
}

/// `PATCH /teams/:uuid`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct UpdateTeamRequest {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<String>,
    /// `true` makes it the default team; an account always has one, so
    /// `false` is refused on the default team.
    pub default: Option<bool>,
    /// Users by uuid or e-mail; replaces the member list.
    #[schema(value_type = Option<Vec<NonBlankText>>)]
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamList {
    pub teams: Vec<TeamView>,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamEnvelope {
    pub team: TeamView,
}

fn member_ids(
    settings: &AccountSettings,
    errors: &mut FieldErrors,
    members: &[String],
) -> Vec<i64> {
    let mut ids = Vec::with_capacity(members.len());
    for (index, member) in members.iter().enumerate() {
        let user = match member.parse::<PublicId>() {
            Ok(uuid) => settings.users.iter().find(|u| u.uuid == uuid),
            Err(()) => settings.user_with_email(member),
        };
        match user {
            Some(user) if !ids.contains(&user.id) => ids.push(user.id),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("members[{index}]"),
                "unknown_user",
                format!("no user '{member}' in this account"),
            )),
        }
    }
    ids
}

#[utoipa::path(
    get,
    path = "/teams",
    tag = "teams",
    params(PageQuery),
    responses((status = 200, description = "Every team of the account", body = TeamList))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<TeamList>> {
    let page = query.number();
    let settings = app.store.settings(caller.account).await?;
    let (teams, meta) = page_of(&settings.teams, page, PAGE_SIZE);
    Ok(Json(TeamList {
        teams: teams.iter().map(TeamView::from).collect(),
        meta,
    }))
}

#[utoipa::path(
    post,
    path = "/teams",
    tag = "teams",
    request_body = CreateTeamRequest,
    responses(
        (status = 200, description = "The created team", body = TeamEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<TeamEnvelope>> {
    let (request, mut errors) = parse_fields::<CreateTeamRequest>(body, &[]);
    let settings = app.store.settings(caller.account).await?;
    let name = text_field(&mut errors, "name", request.name, true);
    let members = member_ids(&settings, &mut errors, &request.members.unwrap_or_default());
    let Some(name) = name else {
        return Err(ApiError::validation(errors.into_vec()));
    };
    errors.finish(()).map_err(ApiError::validation)?;
    let team = NewTeam {
        uuid: PublicId::random(),
        name,
        is_default: request.default == Some(true),
        member_ids: members,
    };
    let created = app.store.create_team(caller.account, &team).await?;
    Ok(Json(TeamEnvelope {
        team: TeamView::from(&created),
    }))
}

#[utoipa::path(
    get,
    path = "/teams/{uuid}",
    tag = "teams",
    params(("uuid" = PublicId, Path, description = "The team")),
    responses((status = 200, description = "The team", body = TeamEnvelope))
)]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<TeamEnvelope>> {
    let id: PublicId = path_id(&uuid, "team")?;
    let settings = app.store.settings(caller.account).await?;
    let team = settings.team(id).ok_or_else(|| {
        ApiError::not_found(format!("team '{uuid}' does not exist in this account"))
    })?;
    Ok(Json(TeamEnvelope {
        team: TeamView::from(team),
    }))
}

#[utoipa::path(
    patch,
    path = "/teams/{uuid}",
    tag = "teams",
    params(("uuid" = PublicId, Path, description = "The team")),
    request_body = UpdateTeamRequest,
    responses(
        (status = 200, description = "The updated team", body = TeamEnvelope),
        (status = 409, description = "It conflicts with an existing one", body = ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<TeamEnvelope>> {
    let id: PublicId = path_id(&uuid, "team")?;
    let (request, mut errors) = parse_fields::<UpdateTeamRequest>(body, &[]);
    let settings = app.store.settings(caller.account).await?;
    let name = text_field(&mut errors, "name", request.name, false);
    let member_ids = request
        .members
        .map(|m| member_ids(&settings, &mut errors, &m));
    if request.default == Some(false) && settings.team(id).is_some_and(|t| t.is_default) {
        errors.push(FieldError::new(
            "default",
            "default_team_required",
            "an account always has one default team; make another team the default instead",
        ));
    }
    errors.finish(()).map_err(ApiError::validation)?;
    let changes = TeamChanges {
        name,
        make_default: request.default == Some(true),
        member_ids,
    };
    let team = app
        .store
        .update_team(caller.account, id, &changes)
        .await
        .not_found_as("team", &uuid)?;
    Ok(Json(TeamEnvelope {
        team: TeamView::from(&team),
    }))
}

#[utoipa::path(
    delete,
    path = "/teams/{uuid}",
    tag = "teams",
    params(("uuid" = PublicId, Path, description = "The team")),
    responses(
        (status = 200, description = "`{\"status\": \"team was destroyed\"}`", body = Status),
        (status = 409, description = "The default team, or a team contacts belong to (`default_team`, `team_in_use`)", body = ErrorBody),
    )
)]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
) -> ApiResult<Json<Status>> {
    let id: PublicId = path_id(&uuid, "team")?;
    app.store
        .delete_team(caller.account, id)
        .await
        .not_found_as("team", &uuid)?;
    Ok(destroyed("team was destroyed"))
}
