//! `GET /metrics`: the server's counters in Prometheus' text format
//! (README, "Metrics"). Requests are counted by route template, so a
//! contact's uuid never becomes a label.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{SqlStore, WebhookStore};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's template (`/v1/contacts/:uuid`), or `unmatched`:
    /// shared, so counting a request allocates nothing.
    pub route: Arc<String>,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Arc<String>,
    pub method: &'static str,
}

/// A request method as a label: the standard ones by name, any other as
/// `other` (a client's inventions must not grow the labels).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `in_use` or `idle`.
    pub state: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric the server exports, and the registry that writes them.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: LatencyFamily,
    pub rate_limited: Counter,
    pub webhook_failures: Counter,
    /// The route label of requests no route matched.
    pub unmatched: Arc<String>,
    pool: Family<PoolLabels, Gauge>,
    webhook_pending: Gauge,
    webhook_failing: Gauge,
}

impl Metrics {
    /// The metrics of a server on `store`, whose own (write batches, pool
    /// waits) are registered with them.
    pub fn new(store: &SqlStore) -> Metrics {
        let mut registry = Registry::with_prefix("bellbook");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template and method",
            latency.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limit_refusals",
            "Requests refused with 429 by the rate limit",
            rate_limited.clone(),
        );
        let stats = store.stats();
        registry.register(
            "write_batch_size",
            "Writes committed together by one group commit (one transaction, one sync)",
            stats.batch_sizes.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Pooled read connections, by state",
            pool.clone(),
        );
        registry.register(
            "db_pool_waiting",
            "Requests waiting for a pooled read connection",
            stats.pool_waiting.clone(),
        );
        let webhook_pending = Gauge::default();
        registry.register(
            "webhook_deliveries_pending",
            "Webhook deliveries not yet done, in every account",
            webhook_pending.clone(),
        );
        let webhook_failing = Gauge::default();
        registry.register(
            "webhook_deliveries_failing",
            "Pending webhook deliveries that have failed at least once",
            webhook_failing.clone(),
        );
        let webhook_failures = Counter::default();
        registry.register(
            "webhook_attempt_failures",
            "Webhook delivery attempts by this process that did not succeed",
            webhook_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            rate_limited,
            webhook_failures,
            unmatched: Arc::new("unmatched".to_owned()),
            pool,
            webhook_pending,
            webhook_failing,
        }
    }

    /// The text exposition, with the values read at scrape time (the pool,
    /// the webhook backlog) brought up to date first.
    pub async fn render(&self, store: &SqlStore) -> String {
        let (connections, idle) = store.pool_state();
        self.pool
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(connections.saturating_sub(idle)));
        self.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(idle));
        match store.webhook_backlog().await {
            Ok(backlog) => {
                self.webhook_pending
                    .set(backlog.iter().map(|b| b.pending).sum());
                self.webhook_failing
                    .set(backlog.iter().map(|b| b.failing).sum());
            }
            Err(error) => tracing::warn!(%error, "the webhook backlog could not be read"),
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("the metrics could not be written");
        }
        text
    }
}
