//! Shared by the test binaries that start `bellbook` as a child process
//! (`tests/api`, `tests/browser`).

/// Settings from the environment that would change what a child does:
/// cleared before it starts, so the tests' own environment cannot leak in.
pub const ENVIRONMENT: &[&str] = &[
    "BELLBOOK_LISTEN",
    "BELLBOOK_DATABASE_URL",
    "BELLBOOK_PUBLIC_URL",
    "BELLBOOK_RATE_LIMIT_RPS",
    "BELLBOOK_MAX_BODY_BYTES",
    "BELLBOOK_REDIS_URL",
    "BELLBOOK_ALLOW_PRIVATE_WEBHOOKS",
    "BELLBOOK_WEBHOOK_RETRY_HOURS",
    "BELLBOOK_WEBHOOK_TIMEOUT_SECS",
    "BELLBOOK_EVENT_RETENTION_DAYS",
    "BELLBOOK_NO_WEBHOOK_WORKER",
    "BELLBOOK_LOG_FORMAT",
    "BELLBOOK_PULL_TOKEN",
    "RUST_LOG",
];
