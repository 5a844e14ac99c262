//! `/docs`: the OpenAPI document (`/v1/openapi.json`) rendered for people
//! by Redoc, whose standalone bundle is compiled into the binary
//! (`assets/redoc/`, refreshed by `scripts/update-redoc.sh`): nothing is
//! fetched from elsewhere when the page is shown.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::render;

/// Redoc draws with styles it writes at run time and searches in a worker
/// it starts from a blob: the one page whose policy allows those. Still no
/// script but this server's, no frames, nothing fetched from elsewhere.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage;

/// `GET /docs`.
pub async fn reference() -> Response {
    let mut response = render(StatusCode::OK, &DocsPage);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_POLICY),
    );
    response
}

/// `GET /docs/redoc.standalone.js`.
pub async fn renderer() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/redoc/redoc.standalone.js"),
    )
        .into_response()
}
