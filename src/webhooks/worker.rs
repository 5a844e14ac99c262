//! The delivery worker inside `serve` (docs/webhooks.md, "Delivery").
//!
//! Each step claims, for every account with a webhook, the deliveries that
//! are due (at most [`WebhookSettings::per_account`] in flight per account,
//! [`WebhookSettings::concurrency`] in all, each the earliest pending one of
//! its contact), and posts each on a task of its own; an answer is
//! recorded with the claim, so a process that dies mid-delivery only
//! delays it until its claim expires. A slow receiver holds its own
//! account's slots, never another account's, and no API request ever
//! waits for a delivery.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::address::AddressPolicy;
use super::payloads::delivery_body;
use super::sign::signature;
use crate::domain::Timestamp;
use crate::error::describe_request_error;
use crate::store::sql::unix_ms;
use crate::store::{AccountId, AttemptOutcome, Delivery, Store, StoreResult};

/// How much of an answer's body an attempt keeps.
const KEPT_BODY_BYTES: usize = 4096;
/// The shortest time between two rounds of claims.
const DISPATCH_GAP: Duration = Duration::from_millis(10);
/// How often the worker deletes events past their retention.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub policy: AddressPolicy,
    /// How long one attempt may take, answer included.
    pub timeout: Duration,
    /// The wait after the first failure; doubled after each further one.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// How long after its event a delivery is retried before it is
    /// recorded as failed for good.
    pub retry_for: Duration,
    /// Deliveries in flight in this process, in all.
    pub concurrency: usize,
    /// Deliveries in flight in this process, per account.
    pub per_account: usize,
    /// How often the worker looks for due deliveries when nothing wakes it
    /// (retries coming due, events committed by other processes).
    pub poll: Duration,
    /// How long events are kept for the change feed.
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            policy: AddressPolicy::default(),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(600),
            retry_for: Duration::from_secs(24 * 3600),
            concurrency: 64,
            per_account: 8,
            poll: Duration::from_secs(1),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl WebhookSettings {
    /// How long a claim lasts: well past an attempt's timeout and the
    /// write that records it, so that a delivery is in flight in one
    /// process at a time; a process that dies holding claims delays those
    /// deliveries by this much.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }
}

pub struct Worker {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    settings: WebhookSettings,
    in_flight: Mutex<HashMap<AccountId, usize>>,
    slots: Arc<Semaphore>,
    /// Woken when a delivery ends (its account has a free slot again).
    finished: Notify,
    /// Attempts that did not succeed (`GET /metrics`).
    failures: prometheus_client::metrics::counter::Counter,
}

/// Resolves names for deliveries and refuses internal addresses, at the
/// moment of connecting: what was checked is what is connected to.
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        settings: WebhookSettings,
        failures: prometheus_client::metrics::counter::Counter,
    ) -> Result<Worker, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("bellbook/", env!("CARGO_PKG_VERSION")))
            .timeout(settings.timeout)
            // A redirect could lead anywhere; a 3xx is a failed attempt.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: settings.policy,
            }))
            .build()?;
        Ok(Worker {
            store,
            client,
            slots: Arc::new(Semaphore::new(settings.concurrency)),
            settings,
            in_flight: Mutex::new(HashMap::new()),
            finished: Notify::new(),
            failures,
        })
    }

    /// Delivers what is due now and resolves once every attempt started is
    /// recorded; answers how many were made. Tests drive the worker with
    /// it instead of waiting for the background loop.
    pub async fn run_step(self: &Arc<Self>) -> StoreResult<usize> {
        let (_, started) = self.dispatch_all().await?;
        let count = started.len();
        for attempt in started {
            let _ = attempt.await;
        }
        Ok(count)
    }

    /// Runs until `shutdown` resolves. Deliveries in flight then are cut
    /// off; their claims expire and they are made again later (at least
    /// once, as promised).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_purge: Option<Instant> = None;
        loop {
            // A busy server commits events thousands of times a second:
            // claims are made at most this often, each taking what came.
            tokio::time::sleep(DISPATCH_GAP).await;
            let webhooks = match self.dispatch_all().await {
                Ok((webhooks, _)) => webhooks,
                Err(error) => {
                    tracing::warn!(%error, "webhook deliveries could not be claimed");
                    0
                }
            };
            if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                last_purge = Some(Instant::now());
                self.purge().await;
            }
            if webhooks == 0 {
                // Nobody to deliver to: committed events need not wake the
                // worker (a busy server commits thousands a second).
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(self.settings.poll) => {}
                }
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.store.wait_for_events(self.settings.poll) => {}
                () = self.finished.notified() => {}
            }
        }
    }

    async fn purge(&self) {
        let retention = i64::try_from(self.settings.retention.as_secs()).unwrap_or(i64::MAX);
        let before = Timestamp::from_unix(Timestamp::now().unix().saturating_sub(retention));
        match self.store.purge_events(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "events past their retention deleted"),
            Err(error) => tracing::warn!(%error, "old events could not be deleted"),
        }
    }

    /// Claims what is due, within the limits, and starts delivering it;
    /// answers how many accounts have a webhook, and the deliveries started.
    async fn dispatch_all(self: &Arc<Self>) -> StoreResult<(usize, Vec<JoinHandle<()>>)> {
        let mut started = Vec::new();
        let accounts = self.store.webhook_accounts().await?;
        for &account in &accounts {
            let busy = self.busy(account);
            let free = self
                .settings
                .per_account
                .saturating_sub(busy)
                .min(self.slots.available_permits());
            if free == 0 {
                continue;
            }
            let now = unix_ms();
            let lease = i64::try_from(self.settings.lease().as_millis()).unwrap_or(i64::MAX);
            let claimed = self
                .store
                .claim_deliveries(
                    account,
                    now,
                    now.saturating_add(lease),
                    u32::try_from(free).unwrap_or(u32::MAX),
                )
                .await?;
            for delivery in claimed {
                // Counted above: the wait is for a slot freed just now.
                let Ok(slot) = self.slots.clone().acquire_owned().await else {
                    break;
                };
                self.count(account, 1);
                let worker = self.clone();
                started.push(tokio::spawn(async move {
                    worker.deliver(&delivery).await;
                    worker.count(delivery.account, -1);
                    drop(slot);
                    worker.finished.notify_one();
                }));
            }
        }
        Ok((accounts.len(), started))
    }

    fn busy(&self, account: AccountId) -> usize {
        self.in_flight
            .lock()
            .map_or(0, |map| map.get(&account).copied().unwrap_or(0))
    }

    fn count(&self, account: AccountId, delta: isize) {
        if let Ok(mut map) = self.in_flight.lock() {
            let entry = map.entry(account).or_default();
            *entry = entry.saturating_add_signed(delta);
            if *entry == 0 {
                map.remove(&account);
            }
        }
    }

    /// Makes one attempt and records it.
    async fn deliver(&self, delivery: &Delivery) {
        let mut outcome = self.attempt(delivery).await;
        if !outcome.success {
            self.failures.inc();
        }
        outcome.retry_at_ms = self.next_attempt(delivery, outcome.success);
        if let Err(error) = self.store.finish_delivery(delivery, &outcome).await {
            // The claim runs out and the delivery is made again.
            tracing::warn!(%error, seq = delivery.seq, "a webhook attempt could not be recorded");
        }
    }

    async fn attempt(&self, delivery: &Delivery) -> AttemptOutcome {
        let at = Timestamp::now();
        let failed = |reason: String| AttemptOutcome {
            code: None,
            headers: "{}".to_owned(),
            body: reason,
            success: false,
            at,
            retry_at_ms: None,
        };
        // Literal addresses never reach the resolver: checked here.
        if let Err(refused) = self.settings.policy.check_url(&delivery.url) {
            return failed(refused.to_string());
        }
        let body = delivery_body(delivery.name, &delivery.payload);
        let event_id = format!("{}-{}", delivery.account_uuid, delivery.seq);
        let sent = self
            .client
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                "X-Bellbook-Signature",
                signature(&delivery.secret, at.unix(), body.as_bytes()),
            )
            .header("X-Bellbook-Event-Id", event_id)
            .header("X-Bellbook-Event", delivery.name.as_str())
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return failed(describe_request_error(&error)),
        };
        let code = i64::from(response.status().as_u16());
        let mut headers = serde_json::Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(serde_json::Value::String(joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), value.into());
                }
            }
        }
        // Only the first 4 KiB are read: a receiver cannot make the worker
        // hold more.
        let mut kept = Vec::new();
        while kept.len() < KEPT_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = KEPT_BODY_BYTES - kept.len();
                    kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        AttemptOutcome {
            code: Some(code),
            headers: serde_json::Value::Object(headers).to_string(),
            body: String::from_utf8_lossy(&kept).into_owned(),
            success: response.status().is_success(),
            at,
            retry_at_ms: None,
        }
    }

    /// When to try again after this attempt, or `None` when the delivery
    /// is over: it succeeded, or it has been retried for long enough.
    fn next_attempt(&self, delivery: &Delivery, success: bool) -> Option<i64> {
        if success {
            return None;
        }
        let retry_for = i64::try_from(self.settings.retry_for.as_secs()).unwrap_or(i64::MAX);
        if Timestamp::now().unix() - delivery.created_at.unix() >= retry_for {
            return None;
        }
        let exponent = u32::try_from(delivery.attempts.clamp(0, 30)).unwrap_or(30);
        let wait = self
            .settings
            .retry_base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.settings.retry_max);
        // Full jitter over the second half of the wait: receivers coming
        // back are not hit by every retry at once.
        let half = wait / 2;
        let wait = half + half.mul_f64(random_fraction());
        let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        Some(unix_ms().saturating_add(wait))
    }
}

/// A number in [0, 1).
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // 53 random bits: every value a f64 in [0, 1) can hold evenly.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
