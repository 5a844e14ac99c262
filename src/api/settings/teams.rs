//! Teams: groups of users; every contact belongs to one, the default team
//! unless another is chosen.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{destroyed, text_field};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam, QueryParams, parse_fields, path_id};
use crate::api::views::{PageMeta, Status, TeamView, page_count};
use crate::auth::Caller;
use crate::domain::settings::AccountSettings;
use crate::domain::{FieldError, FieldErrors, PublicId};
use crate::error::{ApiError, ApiResult, NotFoundAs};
use crate::store::{NewTeam, TeamChanges};

/// Teams per page of `GET /teams`.
pub const PAGE_SIZE: u32 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TeamRequest {
    pub name: Option<String>,
    pub default: Option<bool>,
    /// Users by uuid or e-mail; replaces the member list.
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct TeamList {
    pub teams: Vec<TeamView>,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize)]
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

pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    query: QueryParams,
) -> ApiResult<Json<TeamList>> {
    let page = query.page()?;
    let settings = app.store.settings(caller.account).await?;
    let skip = (page as usize - 1).saturating_mul(PAGE_SIZE as usize);
    Ok(Json(TeamList {
        teams: settings
            .teams
            .iter()
            .skip(skip)
            .take(PAGE_SIZE as usize)
            .map(TeamView::from)
            .collect(),
        meta: PageMeta {
            page,
            pages: page_count(settings.teams.len() as i64, PAGE_SIZE),
        },
    }))
}

pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<TeamEnvelope>> {
    let (request, mut errors) = parse_fields::<TeamRequest>(body, &[]);
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

pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    PathParam(uuid): PathParam,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<TeamEnvelope>> {
    let id: PublicId = path_id(&uuid, "team")?;
    let (request, mut errors) = parse_fields::<TeamRequest>(body, &[]);
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
