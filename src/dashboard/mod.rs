//! The dashboard (docs/dashboard.md): server-rendered pages behind every
//! `href` and `conversationHref`, for people rather than programs.
//!
//! Pages hold no rule of their own. Each form is turned into the JSON body
//! the API takes and handed to the API's own handler, so a page and a
//! client get the same validation, the same store calls and the same
//! messages; a page only decides how to show the answer.

pub mod chat;
pub mod contacts;

pub mod docs;
pub mod form;
pub mod session;
pub mod settings;

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::domain::FieldError;
use crate::error::ApiError;
use crate::store::StoreError;
pub use session::{SignInThrottle, Signed};

/// What the dashboard needs beside the API's state.
pub struct DashboardConfig {
    /// Cookies carry `Secure` (the public URL is https).
    pub secure_cookies: bool,
    pub sign_ins: SignInThrottle,
}

impl DashboardConfig {
    pub fn new(public_url: &str) -> Self {
        DashboardConfig {
            secure_cookies: public_url.starts_with("https://"),
            sign_ins: SignInThrottle::default(),
        }
    }
}

/// The policy of every page: this server's own stylesheet and forms and
/// nothing else; no script at all, no frames, no plugins, no inline style.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Puts the security headers on every dashboard response (docs/dashboard.md,
/// "Security"). A page that needs a looser policy (`/docs`) sets its own.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// The shell every page is drawn in: who is signed in, and the CSRF token
/// its forms carry.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub account_name: String,
    pub user_email: String,
    pub csrf: String,
    /// Which part of the navigation is highlighted.
    pub section: &'static str,
}

impl Chrome {
    pub fn new(signed: &Signed, section: &'static str) -> Self {
        Chrome {
            account_name: signed.session.account_name.clone(),
            user_email: signed.session.user_email.clone(),
            csrf: signed.csrf.clone(),
            section,
        }
    }
}

/// The problems of a form the API refused: each beside its field, and
/// what belongs to no field of the form on top.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub summary: Option<String>,
    pub fields: Vec<FieldError>,
    /// The API's status for the refusal (422, 409, ...).
    pub status: Option<StatusCode>,
}

impl Problems {
    pub fn of(error: &ApiError) -> Problems {
        Problems {
            summary: Some(error.message().to_owned()),
            fields: error.details().to_vec(),
            status: Some(error.status()),
        }
    }

    /// The status of the page that shows these problems.
    pub fn page_status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::OK)
    }

    /// The API's message about `field`, if it has one.
    pub fn about(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// The contact another problem points at (`contact_exists`).
    pub fn existing(&self) -> Option<&str> {
        self.fields.iter().find_map(|e| e.uuid.as_deref())
    }

    pub fn any(&self) -> bool {
        self.summary.is_some()
    }
}

/// Renders a page with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a dashboard template failed to render");
            PageError::Internal.into_response()
        }
    }
}

/// `303 See Other` to `to`: where a form that succeeded sends the browser.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not in this account, or not at all: the same answer either way.
    NotFound,
    /// A form without a valid CSRF token.
    Forgery,
    /// The database is busy or unreachable, or its disk is full.
    Unavailable,
    /// The API refused the request (a body too large, say): its status
    /// and message.
    Refused(StatusCode, String),
    Internal,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here in this account.",
            ),
            PageError::Forgery => (
                StatusCode::FORBIDDEN,
                "Form refused",
                "The form did not carry this session's token, so nothing was changed. \
                 Go back, reload the page and send it again.",
            ),
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The database is unavailable for a moment; nothing was changed.",
            ),
            PageError::Refused(status, message) => (*status, "Refused", message.as_str()),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not answer; the problem has been logged.",
            ),
        };
        match (ErrorPage { title, message }).render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, title.to_owned()).into_response(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => PageError::NotFound,
            StoreError::Unavailable(_) | StoreError::Full(_) => PageError::Unavailable,
            error => {
                tracing::error!(%error, "a dashboard page failed");
                PageError::Internal
            }
        }
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        match error.status() {
            StatusCode::NOT_FOUND => PageError::NotFound,
            StatusCode::SERVICE_UNAVAILABLE => PageError::Unavailable,
            status if status.is_client_error() => {
                PageError::Refused(status, error.message().to_owned())
            }
            _ => PageError::Internal,
        }
    }
}

pub type PageResult = Result<Response, PageError>;

/// `/`: the contacts.
pub async fn home() -> Response {
    see_other("/contacts")
}

/// `GET /favicon.ico`, which browsers ask every page for: no icon, and no
/// error either.
pub async fn no_icon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /assets/style.css`: the one stylesheet, compiled in.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/style.css"),
    )
        .into_response()
}
