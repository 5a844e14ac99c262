//! Signing in and out, the session cookie, and CSRF tokens
//! (docs/dashboard.md, "Sessions").
//!
//! A session is a row keyed by the SHA-256 of a random token; the browser
//! holds the token in an `HttpOnly`, `SameSite=Lax` cookie. Every form of a
//! signed-in page carries the session's CSRF token, derived from the
//! token (so it is never stored); the sign-in form, before any session
//! exists, carries one it also sets as a cookie (double submit).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::form::Form;
use super::{PageError, PageResult, render, see_other};
use crate::api::AppState;
use crate::auth::{Caller, authenticate, hash_key, verify_password};
use crate::domain::Timestamp;
use crate::store::{NewSession, SessionRecord};

const SESSION_COOKIE: &str = "bellbook_session";
/// The sign-in form's own CSRF token, before there is a session.
const SIGN_IN_COOKIE: &str = "bellbook_signin";
/// A session nobody used for this long is over.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// How stale `last_seen_at` may get before a request writes it again: a
/// write per page view would be wasted on a timeout counted in hours.
const TOUCH_AFTER_SECS: i64 = 60;

/// A new random token: 32 bytes, hex.
fn new_token() -> Result<String, PageError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| PageError::Internal)?;
    Ok(hex::encode(bytes))
}

/// The CSRF token of the session whose cookie holds `token`.
fn csrf_of(token: &str) -> String {
    hex::encode(Sha256::digest(format!("bellbook csrf:{token}").as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The value of the cookie `name`, if the request sent it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u32>) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    // Names and values are hex or fixed: always a valid header.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A signed-in request: the session, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: SessionRecord,
    pub csrf: String,
    token_hash: String,
}

impl Signed {
    /// The session as the API's caller, for the API handlers pages call.
    pub fn caller(&self) -> Caller {
        Caller {
            account: self.session.account,
            key_prefix: "dashboard".to_owned(),
        }
    }

    async fn from_headers(
        app: &AppState,
        headers: &HeaderMap,
    ) -> Result<Option<Signed>, PageError> {
        let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| t.len() == 64) else {
            return Ok(None);
        };
        let token_hash = hash_key(token);
        let now = Timestamp::now();
        let idle = i64::try_from(IDLE_TIMEOUT.as_secs()).unwrap_or(i64::MAX);
        let idle_since = Timestamp::from_unix(now.unix().saturating_sub(idle));
        let Some(session) = app.store.session(&token_hash, idle_since).await? else {
            return Ok(None);
        };
        if now.unix() - session.last_seen_at.unix() >= TOUCH_AFTER_SECS {
            app.store.touch_session(&token_hash, now).await?;
        }
        Ok(Some(Signed {
            session,
            csrf: csrf_of(token),
            token_hash,
        }))
    }
}

/// Where a signed-out browser is sent: the sign-in page, which brings it
/// back to the page it asked for (a path of this site only). A form sent
/// from a page whose session ended is not sent again: the browser comes
/// back to the page the form was on.
fn to_sign_in(parts: &Parts) -> Response {
    let back = match parts.method {
        axum::http::Method::GET => parts
            .uri
            .path_and_query()
            .map_or("/contacts", |p| p.as_str()),
        _ => page_of_form(parts.uri.path()),
    };
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/signin?next={next}")).into_response()
}

/// The page a form's address belongs to: `/chat/{uuid}` for
/// `/chat/{uuid}/note`, `/settings/tags` for `/settings/tags/{name}`.
fn page_of_form(path: &str) -> &str {
    let mut segments = path.trim_start_matches('/').split('/');
    let page = match (segments.next(), segments.next()) {
        (Some(first), Some(second)) => first.len() + second.len() + 2,
        _ => return "/contacts",
    };
    &path[..page.min(path.len())]
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        match Signed::from_headers(app, &parts.headers).await {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(to_sign_in(parts)),
            Err(error) => Err(error.into_response()),
        }
    }
}

/// A form sent from a signed-in page, with the session's CSRF token; a
/// form without it is refused (403) before anything else is read.
pub struct SignedForm {
    pub signed: Signed,
    pub form: Form,
}

impl FromRequest<AppState> for SignedForm {
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, app).await?;
        let form = Form::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(IntoResponse::into_response)?;
        match form.get("csrf") {
            Some(sent) if same(sent, &signed.csrf) => Ok(SignedForm { signed, form }),
            _ => Err(PageError::Forgery.into_response()),
        }
    }
}

/// Failed sign-ins, by e-mail (or by client address for API keys): after
/// a few, each further try must wait, twice as long each time.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl SignInThrottle {
    /// Tries allowed before waits begin.
    const FREE_TRIES: u32 = 3;
    const LONGEST_WAIT: Duration = Duration::from_secs(60);
    /// Failures this old are forgotten.
    const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long `key` must still wait before it may try again.
    pub fn wait_left(&self, key: &str) -> Option<Duration> {
        let failures = *self.failures().get(key)?;
        if failures.count < Self::FREE_TRIES {
            return None;
        }
        let doublings = (failures.count - Self::FREE_TRIES).min(6);
        let wait = Duration::from_secs(1 << doublings).min(Self::LONGEST_WAIT);
        wait.checked_sub(failures.last.elapsed())
            .filter(|left| !left.is_zero())
    }

    pub fn failed(&self, key: &str) {
        let mut failures = self.failures();
        if failures.len() > 10_000 {
            failures.retain(|_, f| f.last.elapsed() < Self::FORGET_AFTER);
        }
        let now = Instant::now();
        let entry = failures.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if entry.last.elapsed() >= Self::FORGET_AFTER {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last = now;
    }

    pub fn succeeded(&self, key: &str) {
        self.failures().remove(key);
    }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    problem: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Only a path on this site: `/x`, never `//host` or `/\host`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.contains(['\r', '\n']) =>
        {
            path
        }
        _ => "/contacts",
    }
}

fn sign_in_form(
    app: &AppState,
    status: StatusCode,
    next: &str,
    email: &str,
    problem: Option<&str>,
) -> PageResult {
    let csrf = new_token()?;
    let mut response = render(
        status,
        &SignInPage {
            csrf: &csrf,
            next,
            email,
            problem,
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &csrf, app.dashboard.secure_cookies, None),
    );
    Ok(response)
}

/// `GET /signin`.
pub async fn sign_in_page(
    State(app): State<AppState>,
    Query(query): Query<SignInQuery>,
) -> PageResult {
    sign_in_form(
        &app,
        StatusCode::OK,
        safe_next(query.next.as_deref()),
        "",
        None,
    )
}

/// `POST /signin`: an e-mail and password, or an API key.
pub async fn sign_in(State(app): State<AppState>, request: Request) -> PageResult {
    let (parts, body) = request.into_parts();
    let client = crate::api::client_ip(&parts.extensions);
    let expected = cookie(&parts.headers, SIGN_IN_COOKIE).map(str::to_owned);
    let form = Form::from_request(Request::from_parts(parts, body), &app).await?;
    match (expected, form.get("csrf")) {
        (Some(expected), Some(sent)) if same(&expected, sent) => {}
        _ => return Err(PageError::Forgery),
    }
    let next = safe_next(form.get("next")).to_owned();
    let email = form.get("email").unwrap_or_default().trim().to_owned();
    let key = form.get("key").map(str::trim).filter(|k| !k.is_empty());
    let throttle_key = match key {
        Some(_) => format!("key from {client}"),
        None => crate::domain::fold_case(&email),
    };
    if let Some(left) = app.dashboard.sign_ins.wait_left(&throttle_key) {
        let message = format!(
            "Too many failed sign-ins. Wait {} s and try again.",
            left.as_secs().max(1)
        );
        return sign_in_form(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &email,
            Some(&message),
        );
    }
    let found = match key {
        Some(key) => by_key(&app, key).await?,
        None => by_password(&app, &email, form.get("password").unwrap_or_default()).await?,
    };
    let Some(session) = found else {
        app.dashboard.sign_ins.failed(&throttle_key);
        let message = match key {
            Some(_) => "That API key is unknown or revoked.",
            None => "That e-mail and password do not match a user.",
        };
        return sign_in_form(&app, StatusCode::UNAUTHORIZED, &next, &email, Some(message));
    };
    app.dashboard.sign_ins.succeeded(&throttle_key);
    let token = new_token()?;
    app.store
        .start_session(&NewSession {
            token_hash: hash_key(&token),
            ..session
        })
        .await?;
    let secure = app.dashboard.secure_cookies;
    let mut response = see_other(&next);
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, secure, None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, "", secure, Some(0)),
    );
    Ok(response)
}

/// The session an API key opens: the account's owner, for as long as the
/// key is not revoked.
async fn by_key(app: &AppState, key: &str) -> Result<Option<NewSession>, PageError> {
    let Some(caller) = authenticate(app.store.as_ref(), key).await? else {
        return Ok(None);
    };
    let settings = app.store.settings(caller.account).await?;
    let Some(owner) = settings.users.iter().find(|u| u.owner) else {
        return Ok(None);
    };
    Ok(Some(NewSession {
        token_hash: String::new(),
        account: caller.account,
        user_id: owner.id,
        api_key_hash: Some(hash_key(key)),
        at: Timestamp::now(),
    }))
}

/// A hash of a password nobody has, checked when no user has the e-mail,
/// so that a wrong e-mail takes as long to refuse as a wrong password.
const NOBODY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8dTmdTq7nTHK0p9MGpQbPc7Qr1fWkW8k6Nhn4bpHzjE";

async fn by_password(
    app: &AppState,
    email: &str,
    password: &str,
) -> Result<Option<NewSession>, PageError> {
    let candidates = app.store.password_candidates(email).await?;
    let password = password.to_owned();
    // argon2 takes tens of milliseconds of CPU: not on an async thread.
    let matched = tokio::task::spawn_blocking(move || {
        if candidates.is_empty() {
            verify_password(&password, NOBODY);
            return None;
        }
        candidates
            .into_iter()
            .find(|c| verify_password(&password, &c.hash))
    })
    .await
    .map_err(|_| PageError::Internal)?;
    Ok(matched.map(|candidate| NewSession {
        token_hash: String::new(),
        account: candidate.account,
        user_id: candidate.user_id,
        api_key_hash: None,
        at: Timestamp::now(),
    }))
}

/// `POST /signout`.
pub async fn sign_out(State(app): State<AppState>, form: SignedForm) -> PageResult {
    app.store.end_session(&form.signed.token_hash).await?;
    let mut response = see_other("/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", app.dashboard.secure_cookies, Some(0)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/contacts/abc?q=1")), "/contacts/abc?q=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/contacts");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/contacts");
        assert_eq!(safe_next(Some("https://evil.example/")), "/contacts");
        assert_eq!(safe_next(Some("javascript:alert(1)")), "/contacts");
        assert_eq!(safe_next(None), "/contacts");
    }

    #[test]
    fn a_form_sent_signed_out_comes_back_to_its_page() {
        assert_eq!(page_of_form("/chat/abc/note"), "/chat/abc");
        assert_eq!(page_of_form("/settings/tags/vip/delete"), "/settings/tags");
        assert_eq!(page_of_form("/contacts/abc"), "/contacts/abc");
        assert_eq!(page_of_form("/contacts"), "/contacts");
        assert_eq!(page_of_form("/signout"), "/contacts");
    }

    #[test]
    fn failed_sign_ins_wait_longer_and_longer() {
        let throttle = SignInThrottle::default();
        for _ in 0..SignInThrottle::FREE_TRIES {
            assert_eq!(throttle.wait_left("a@b.c"), None);
            throttle.failed("a@b.c");
        }
        let first = throttle.wait_left("a@b.c").expect("a wait");
        throttle.failed("a@b.c");
        let second = throttle.wait_left("a@b.c").expect("a longer wait");
        assert!(second > first);
        assert_eq!(throttle.wait_left("other@b.c"), None);
        throttle.succeeded("a@b.c");
        assert_eq!(throttle.wait_left("a@b.c"), None);
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        assert!(argon2::password_hash::phc::PasswordHash::new(NOBODY).is_ok());
        assert!(!verify_password("", NOBODY));
    }

    #[test]
    fn csrf_tokens_differ_from_the_stored_hash() {
        let token = "ab".repeat(32);
        assert_ne!(csrf_of(&token), hash_key(&token));
        assert_eq!(csrf_of(&token), csrf_of(&token));
    }
}
