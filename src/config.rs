//! Settings: built-in defaults, overridden by `BELLBOOK_*` environment
//! variables, overridden by command-line flags (clap does the layering).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::server::{self, ConnectionLimits};
use crate::webhooks::{AddressPolicy, WebhookSettings};

/// Where the database is when nothing says otherwise: a file beside you.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./bellbook.db";

/// The largest request body accepted unless configured otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Seconds a client has for a request body, and a request for everything,
/// unless configured otherwise (README, "Timeouts and connections").
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 90;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// sqlite://PATH or postgres://USER@HOST/DB
    #[arg(long, env = "BELLBOOK_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BELLBOOK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Base of the `href` links in responses [default: http://<listen address>].
    #[arg(long, env = "BELLBOOK_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Load the demo account the Callbell documentation examples run against.
    #[arg(long)]
    pub demo: bool,

    /// Requests per second allowed per account; 0 disables the limit.
    #[arg(long, env = "BELLBOOK_RATE_LIMIT_RPS", default_value_t = 300)]
    pub rate_limit_rps: u32,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "BELLBOOK_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Seconds a client may take to send a request head, from its first
    /// byte (slow senders are disconnected).
    #[arg(long, env = "BELLBOOK_HEADER_TIMEOUT_SECS", default_value_t = server::DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout_secs: u64,

    /// Seconds a client may take to send a request body (408 past it).
    #[arg(long, env = "BELLBOOK_BODY_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_TIMEOUT_SECS)]
    pub body_timeout_secs: u64,

    /// Seconds a request may take in all, body included (503 past it);
    /// above 60, the longest `GET /v1/events?wait=` long poll.
    #[arg(long, env = "BELLBOOK_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS)]
    pub request_timeout_secs: u64,

    /// Seconds a keep-alive connection may sit idle between requests.
    #[arg(long, env = "BELLBOOK_IDLE_TIMEOUT_SECS", default_value_t = server::DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,

    /// Connections served at once; further ones wait to be accepted.
    /// Keep it under the process's open-file limit (`ulimit -n`).
    #[arg(long, env = "BELLBOOK_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Keep the rate limit in Redis (redis://HOST:PORT), shared by every
    /// process on the same database; without it each process limits alone.
    #[arg(long, env = "BELLBOOK_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Let webhooks reach loopback, private, link-local and other internal
    /// addresses (refused by default).
    #[arg(long, env = "BELLBOOK_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,

    /// How long a webhook delivery is retried before it is recorded as
    /// failed, in hours.
    #[arg(long, env = "BELLBOOK_WEBHOOK_RETRY_HOURS", default_value_t = 24)]
    pub webhook_retry_hours: u64,

    /// How long one webhook delivery attempt may take, in seconds.
    #[arg(long, env = "BELLBOOK_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,

    /// How long events are kept for the change feed (`GET /v1/events`), in days.
    #[arg(long, env = "BELLBOOK_EVENT_RETENTION_DAYS", default_value_t = 7)]
    pub event_retention_days: u64,

    /// Require `Authorization: Bearer <token>` on `GET /metrics` (open
    /// without it).
    #[arg(long, env = "BELLBOOK_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Do not deliver webhooks from this process (another one does).
    #[arg(long, env = "BELLBOOK_NO_WEBHOOK_WORKER")]
    pub no_webhook_worker: bool,
}

/// What the server needs to start, however it was configured.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub public_url: Option<String>,
    pub demo: bool,
    pub rate_limit_rps: u32,
    pub max_body_bytes: usize,
    pub redis_url: Option<String>,
    pub webhooks: WebhookSettings,
    /// Whether `serve` runs the webhook delivery worker.
    pub deliver_webhooks: bool,
    /// The bearer token `GET /metrics` requires, if any.
    pub metrics_token: Option<String>,
    /// Time for a request's body, and for the whole request.
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub connections: ConnectionLimits,
}

impl Settings {
    /// Defaults for a given database, as a fresh `serve` would run.
    pub fn new(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: database_url.into(),
            public_url: None,
            demo: false,
            rate_limit_rps: 300,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            redis_url: None,
            webhooks: WebhookSettings::default(),
            deliver_webhooks: true,
            metrics_token: None,
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            connections: ConnectionLimits::default(),
        }
    }
}

impl From<&ServeArgs> for Settings {
    fn from(args: &ServeArgs) -> Self {
        Settings {
            database_url: args.database.database_url.clone(),
            public_url: args.public_url.clone(),
            demo: args.demo,
            rate_limit_rps: args.rate_limit_rps,
            max_body_bytes: args.max_body_bytes,
            redis_url: args.redis_url.clone(),
            webhooks: WebhookSettings {
                policy: AddressPolicy {
                    allow_private: args.allow_private_webhooks,
                },
                timeout: Duration::from_secs(args.webhook_timeout_secs.max(1)),
                retry_for: Duration::from_secs(args.webhook_retry_hours.saturating_mul(3600)),
                retention: Duration::from_secs(args.event_retention_days.saturating_mul(86_400)),
                ..WebhookSettings::default()
            },
            deliver_webhooks: !args.no_webhook_worker,
            metrics_token: args.metrics_token.clone(),
            body_timeout: seconds(args.body_timeout_secs),
            request_timeout: seconds(args.request_timeout_secs),
            connections: ConnectionLimits {
                header_timeout: seconds(args.header_timeout_secs),
                idle_timeout: seconds(args.idle_timeout_secs),
                max_connections: args.max_connections.max(1),
            },
        }
    }
}

/// A timeout flag's seconds; zero would refuse everything, so it means one.
fn seconds(value: u64) -> Duration {
    Duration::from_secs(value.max(1))
}
