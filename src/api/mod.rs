//! THE route table (every path of the API, in one place) and the layers
//! every request passes: request log, body limit, API key, rate limit.

pub mod account;
pub mod batch;
pub mod contacts;
pub mod conversations;
pub mod export;
pub mod extract;
pub mod idempotency;
pub mod json;
pub mod openapi;
pub mod probes;
pub mod settings;
pub mod views;
pub mod webhooks;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::{Credentials, authenticate, bearer_token, refusal};
use crate::cursor::CursorSigner;
use crate::dashboard;
use crate::error::ApiError;
use crate::ratelimit::{RateKey, RateLimiter};
use crate::store::Store;
use extract::BodyLimit;
use views::Links;

/// What every handler can reach.
pub struct AppContext {
    pub store: Arc<dyn Store>,
    pub links: Links,
    pub cursors: CursorSigner,
    pub limiter: RateLimiter,
    /// Which webhook URLs subscribe accepts.
    pub webhook_policy: crate::webhooks::AddressPolicy,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The store as what it is, for what `GET /metrics` reads of it.
    pub sql_store: Arc<crate::store::SqlStore>,
    /// The bearer token `GET /metrics` requires, if any.
    pub metrics_token: Option<String>,
    pub dashboard: crate::dashboard::DashboardConfig,
}

pub type AppState = Arc<AppContext>;

/// Declares the routes once, as data ([`ROUTES`], which the OpenAPI test
/// checks against) and as the router that serves them.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every route under `/v1`: HTTP method and path.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// The routes, at their full paths: one router, not one nested in
        /// another, saves every request a second routing.
        fn routes() -> Router<AppState> {
            Router::new()$(.route(concat!("/v1", $path), axum::routing::$method($handler)))*
        }
    };
}

route_table! {
    get    "/auth/me"                                   => account::me;

    get    "/contacts"                                  => contacts::list;
    post   "/contacts"                                  => contacts::create;
    post   "/contacts/batch"                            => batch::upsert;
    get    "/contacts/export"                           => export::export;
    get    "/contacts/phone/{number}"                   => contacts::by_phone;
    get    "/contacts/bsuid/{bsuid}"                    => contacts::by_bsuid;
    get    "/contacts/{uuid}"                           => contacts::get;
    patch  "/contacts/{uuid}"                           => contacts::update;
    delete "/contacts/{uuid}"                           => contacts::delete;
    post   "/contacts/{uuid}/conversation/open"         => conversations::open;
    post   "/contacts/{uuid}/conversation/close"        => conversations::close;
    post   "/contacts/{uuid}/conversation/note"         => conversations::note;
    put    "/contacts/{uuid}/conversation/update_funnel" => conversations::update_funnel_put;
    post   "/contacts/{uuid}/messages/update_funnel"    => conversations::update_funnel_post;
    get    "/contacts/{uuid}/messages"                  => conversations::messages;
    get    "/contacts/{uuid}/bot"                       => conversations::bot;
    post   "/contacts/{uuid}/bot"                       => conversations::set_bot;

    get    "/tags"                                      => settings::tags::list;
    post   "/tags"                                      => settings::tags::create;
    get    "/tags/{name}"                               => settings::tags::get;
    patch  "/tags/{name}"                               => settings::tags::update;
    delete "/tags/{name}"                               => settings::tags::delete;

    get    "/custom_fields"                             => settings::custom_fields::list;
    post   "/custom_fields"                             => settings::custom_fields::create;
    get    "/custom_fields/{name}"                      => settings::custom_fields::get;
    patch  "/custom_fields/{name}"                      => settings::custom_fields::update;
    delete "/custom_fields/{name}"                      => settings::custom_fields::delete;

    get    "/users"                                     => settings::users::list;
    post   "/users"                                     => settings::users::create;
    get    "/users/{uuid}"                              => settings::users::get;
    patch  "/users/{uuid}"                              => settings::users::update;
    delete "/users/{uuid}"                              => settings::users::delete;

    get    "/teams"                                     => settings::teams::list;
    post   "/teams"                                     => settings::teams::create;
    get    "/teams/{uuid}"                              => settings::teams::get;
    patch  "/teams/{uuid}"                              => settings::teams::update;
    delete "/teams/{uuid}"                              => settings::teams::delete;

    get    "/channels"                                  => settings::channels::list;
    post   "/channels"                                  => settings::channels::create;
    get    "/channels/{uuid}"                           => settings::channels::get;
    patch  "/channels/{uuid}"                           => settings::channels::update;
    delete "/channels/{uuid}"                           => settings::channels::delete;

    get    "/bots"                                      => settings::bots::list;
    post   "/bots"                                      => settings::bots::create;
    get    "/bots/{uuid}"                               => settings::bots::get;
    patch  "/bots/{uuid}"                               => settings::bots::update;
    delete "/bots/{uuid}"                               => settings::bots::delete;

    get    "/funnels"                                   => settings::funnels::list;
    post   "/funnels"                                   => settings::funnels::create;
    get    "/funnels/{uuid}"                            => settings::funnels::get;
    patch  "/funnels/{uuid}"                            => settings::funnels::update;
    delete "/funnels/{uuid}"                            => settings::funnels::delete;

    post   "/webhooks/subscribe"                        => webhooks::subscribe;
    delete "/webhooks/unsubscribe"                      => webhooks::unsubscribe;
    get    "/webhooks/events"                           => webhooks::events;
    get    "/events"                                    => webhooks::feed;
}

/// Declares the dashboard's pages (docs/dashboard.md): as data
/// ([`PAGES`]) and as the router that serves them.
macro_rules! page_table {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every page of the dashboard: HTTP method and path.
        pub const PAGES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn pages() -> Router<AppState> {
            Router::new()$(.route($path, axum::routing::$method($handler)))*
        }
    };
}

page_table! {
    get    "/"                                          => dashboard::home;
    get    "/assets/style.css"                          => dashboard::stylesheet;
    get    "/favicon.ico"                               => dashboard::no_icon;
    get    "/signin"                                    => dashboard::session::sign_in_page;
    post   "/signin"                                    => dashboard::session::sign_in;
    post   "/signout"                                   => dashboard::session::sign_out;

    get    "/contacts"                                  => dashboard::contacts::list;
    post   "/contacts"                                  => dashboard::contacts::create;
    get    "/contacts/{uuid}"                           => dashboard::contacts::show;
    post   "/contacts/{uuid}"                           => dashboard::contacts::save;
    get    "/contacts/{uuid}/delete"                    => dashboard::contacts::confirm_delete;
    post   "/contacts/{uuid}/delete"                    => dashboard::contacts::delete;

    get    "/chat/{uuid}"                               => dashboard::chat::show;
    post   "/chat/{uuid}/note"                          => dashboard::chat::note;
    post   "/chat/{uuid}/close"                         => dashboard::chat::close;
    post   "/chat/{uuid}/open"                          => dashboard::chat::open;

    get    "/settings"                                  => dashboard::settings::index;
    get    "/settings/{section}"                        => dashboard::settings::show;
    post   "/settings/{section}"                        => dashboard::settings::create;
    post   "/settings/{section}/{id}"                   => dashboard::settings::update;
    post   "/settings/{section}/{id}/delete"            => dashboard::settings::delete;
    post   "/settings/users/{uuid}/password"            => dashboard::settings::set_password;
    post   "/settings/webhook/deliveries/{seq}/retry"   => dashboard::settings::retry_delivery;

    get    "/docs"                                      => dashboard::docs::reference;
    get    "/docs/redoc.standalone.js"                  => dashboard::docs::renderer;
}

/// What one request may take: body size, and time for the body and for
/// the whole request (README, "Timeouts and connections").
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
}

/// The whole HTTP application.
pub fn router(state: AppState, limits: RequestLimits) -> Router {
    // The guard runs for the routes above (and their 405s) only: not for
    // the document, which describes the API to anyone and needs no key,
    // nor for paths that are no route; those are only metered.
    let labels = Arc::new(RouteLabels::new());
    let probes = Router::new()
        .route("/healthz", axum::routing::get(probes::healthz))
        .route("/readyz", axum::routing::get(probes::readyz))
        .route("/metrics", axum::routing::get(probes::metrics))
        .with_state(state.clone());
    routes()
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(
            limits.request_timeout,
            time_limit,
        ))
        .with_state(state.clone())
        .merge(
            pages()
                .layer(middleware::from_fn(crate::dashboard::security_headers))
                .layer(middleware::from_fn_with_state(
                    limits.request_timeout,
                    time_limit,
                ))
                .with_state(state.clone()),
        )
        .route(
            "/v1/openapi.json",
            axum::routing::get(openapi::openapi_json).fallback(method_not_allowed),
        )
        .merge(probes)
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), labels.clone()),
            count_request,
        ))
        .fallback_service(axum::routing::any(route_not_found).layer(
            middleware::from_fn_with_state((state.clone(), labels), count_request),
        ))
        .layer(middleware::from_fn_with_state(state, meter))
        // A bug that panics still answers with the error body, not a
        // dropped connection.
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked");
                ApiError::internal().into_response()
            },
        ))
        .layer(Extension(BodyLimit {
            bytes: limits.max_body_bytes,
            timeout: limits.body_timeout,
        }))
        .layer(middleware::from_fn(log_request))
}

/// Answers 503 `request_timeout` for a request that takes longer than
/// `limit`, dropping its handler (a keyed write goes on: `idempotency`).
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::request_timeout(limit).into_response(),
    }
}

/// Authenticates the API key, applies the rate limit, and puts the
/// `X-RateLimit-*` headers on the response whatever its status.
async fn guard(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let credentials = Credentials::read(header);
    let caller = match credentials {
        Credentials::Token(token) => match authenticate(app.store.as_ref(), token).await {
            Ok(caller) => caller,
            Err(error) => return ApiError::from(error).into_response(),
        },
        _ => None,
    };
    let key = match &caller {
        Some(caller) => RateKey::Account(caller.account),
        None => RateKey::Client(client_address(&request)),
    };
    let decision = app.limiter.check(key).await;
    let mut response = match caller {
        _ if decision.is_some_and(|d| !d.allowed) => {
            app.metrics.rate_limited.inc();
            ApiError::rate_limited(decision.map_or(1, |d| d.retry_after_secs)).into_response()
        }
        None => refusal(credentials).into_response(),
        Some(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
    };
    if let Some(decision) = decision {
        rate_limit_headers(&mut response, decision);
    }
    response
}

fn rate_limit_headers(response: &mut Response, decision: crate::ratelimit::Decision) {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
}

/// The rate limit for the `/v1` responses no route's guard answered (the
/// OpenAPI document, `route_not_found`): counted like any request (by the
/// key's account when a valid key came, else by the client's address),
/// with the same headers, so that every `/v1` response carries them.
async fn meter(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if !app.limiter.is_enabled() || !request.uri().path().starts_with("/v1") {
        return next.run(request).await;
    }
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let client = client_address(&request);
    let mut response = next.run(request).await;
    // The guard counted it already (its headers are on every response it
    // answers while limiting is on).
    if response.headers().contains_key("x-ratelimit-limit") {
        return response;
    }
    let token = bearer_token(authorization.as_ref().and_then(|v| v.to_str().ok()));
    let account = match token {
        Some(token) => authenticate(app.store.as_ref(), token)
            .await
            .ok()
            .flatten()
            .map(|caller| caller.account),
        None => None,
    };
    let key = account.map_or(RateKey::Client(client), RateKey::Account);
    if let Some(decision) = app.limiter.check(key).await {
        if !decision.allowed {
            app.metrics.rate_limited.inc();
            response = ApiError::rate_limited(decision.retry_after_secs).into_response();
        }
        rate_limit_headers(&mut response, decision);
    }
    response
}

fn client_address(request: &Request) -> IpAddr {
    client_ip(request.extensions())
}

/// The address the request came from (unspecified when the server was
/// not told, as in tests that build requests by hand).
pub fn client_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

/// One line per request: method, path, status, latency and request id.
/// Never headers, so never the API key.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request_id(&request);
    let started = Instant::now();
    let mut response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "bellbook::http",
        %method,
        %path,
        status = response.status().as_u16(),
        latency_ms = format_args!("{latency_ms:.2}"),
        request_id = %request_id,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

const REQUEST_ID: &str = "x-request-id";

/// Every route's template as a metrics label, made once: braces inside a
/// label value trip up some Prometheus text parsers, so `{uuid}` is
/// written `:uuid`.
#[derive(Debug, Default)]
struct RouteLabels(std::collections::HashMap<String, Arc<String>>);

impl RouteLabels {
    fn new() -> RouteLabels {
        let paths = ROUTES
            .iter()
            .map(|(_, path)| format!("/v1{path}"))
            .chain(["/v1/openapi.json", "/healthz", "/readyz", "/metrics"].map(str::to_owned));
        RouteLabels(
            paths
                .map(|path| {
                    let label = RouteLabels::label(&path);
                    (path, label)
                })
                .collect(),
        )
    }

    fn label(template: &str) -> Arc<String> {
        Arc::new(template.replace('{', ":").replace('}', ""))
    }

    fn of(&self, matched: Option<&axum::extract::MatchedPath>) -> Option<Arc<String>> {
        let matched = matched?.as_str();
        Some(
            self.0
                .get(matched)
                .cloned()
                .unwrap_or_else(|| RouteLabels::label(matched)),
        )
    }
}

/// Counts the request and its latency by route template: for the routes
/// (inside routing, where the template is known) and, as `unmatched`, for
/// paths that are no route (a client's typos must not grow the labels).
async fn count_request(
    State((app, labels)): State<(AppState, Arc<RouteLabels>)>,
    request: Request,
    next: Next,
) -> Response {
    let method = crate::metrics::method_label(request.method());
    let route = labels
        .of(request.extensions().get::<axum::extract::MatchedPath>())
        .unwrap_or_else(|| app.metrics.unmatched.clone());
    let started = Instant::now();
    let response = next.run(request).await;
    app.metrics
        .latency
        .get_or_create(&crate::metrics::RouteLabels {
            route: route.clone(),
            method,
        })
        .observe(started.elapsed().as_secs_f64());
    app.metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The client's `X-Request-Id` when it is one a log line can hold (1 to
/// 128 visible ASCII characters), else a new one.
fn request_id(request: &Request) -> String {
    match request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
    {
        Some(given)
            if (1..=128).contains(&given.len()) && given.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            given.to_owned()
        }
        _ => crate::domain::PublicId::random().to_string(),
    }
}

async fn route_not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "route_not_found",
        format!(
            "there is no route {method} {}; the API lives under /v1",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not support {method}", uri.path()),
    )
}
