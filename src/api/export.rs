//! `GET /contacts/export` (a bellbook extension, docs/import-export.md):
//! every contact matching the list filters as NDJSON, oldest first, each
//! line what `bellbook import` reads back, streamed as it is read.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use utoipa::IntoParams;

use super::AppState;
use super::contacts::ContactListQuery;
use super::extract::{FromQuery, Query, QueryParams};
use crate::auth::Caller;
use crate::domain::{PublicId, Source};
use crate::error::{ApiError, ApiResult};
use crate::export::{ExportEncoder, ExportFormat, ExportWalk};
use crate::store::{ContactFilter, TagsMode};

/// Encoded stretches of contacts waiting for a slow client: what an export
/// holds in memory beyond the stretch being read.
const STRETCHES_BUFFERED: usize = 4;

/// The filters of `GET /contacts`, which an export takes as they are.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only contacts from this source.
    pub source: Option<Source>,
    /// Comma-separated tag names (case-insensitive); a contact matches when
    /// it has all of them (any of them with `tags_mode=any`).
    pub tags: Option<String>,
    pub tags_mode: Option<TagsMode>,
    /// Only contacts of this team.
    pub team_uuid: Option<PublicId>,
    /// Case-insensitive part of the name, or digits of the phone number.
    pub q: Option<String>,
}

impl ExportQuery {
    pub fn filter(self) -> ContactFilter {
        ContactListQuery {
            source: self.source,
            tags: self.tags,
            tags_mode: self.tags_mode,
            team_uuid: self.team_uuid,
            q: self.q,
            ..ContactListQuery::default()
        }
        .filter()
    }
}

impl FromQuery for ExportQuery {
    fn from_query(query: &QueryParams) -> ApiResult<Self> {
        for name in ["page", "after"] {
            if query.has(name) {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!(
                        "query parameter '{name}' does not apply: an export is every matching contact"
                    ),
                ));
            }
        }
        let list = ContactListQuery::from_query(query)?;
        Ok(ExportQuery {
            source: list.source,
            tags: list.tags,
            tags_mode: list.tags_mode,
            team_uuid: list.team_uuid,
            q: list.q,
        })
    }
}

#[utoipa::path(
    get,
    path = "/contacts/export",
    tag = "contacts",
    params(ExportQuery),
    responses((
        status = 200,
        description = "NDJSON (`application/x-ndjson`), one line per contact, oldest first: the \
            body of a `POST /contacts` that recreates it, with its `uuid` and `created_at`",
        content_type = "application/x-ndjson",
        body = String
    ))
)]
pub async fn export(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let settings = app.store.settings(caller.account).await?;
    let encoder = ExportEncoder::new(ExportFormat::Ndjson, &settings);
    let mut walk = ExportWalk::new(caller.account, query.filter());
    // The first stretch is read before answering, so that a failure to
    // read anything is an error response rather than a cut-off body.
    let first = walk.next(app.store.as_ref()).await?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(STRETCHES_BUFFERED);
    tokio::spawn(async move {
        let mut stretch = first;
        while let Some(contacts) = stretch {
            let encoded = encoder.encode(&contacts).map(Bytes::from);
            let failed = encoded.is_err();
            if sender.send(encoded).await.is_err() || failed {
                // The client went away, or the line could not be written.
                return;
            }
            stretch = match walk.next(app.store.as_ref()).await {
                Ok(next) => next,
                Err(error) => {
                    // Too late for an error response: the body is cut
                    // short, which the client sees as a broken transfer.
                    tracing::error!(%error, "an export stopped half-way");
                    let _ = sender.send(Err(std::io::Error::other(error))).await;
                    return;
                }
            };
        }
    });
    let body = Body::from_stream(ReceiverStream::new(receiver));
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        body,
    )
        .into_response())
}
