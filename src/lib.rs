//! bellbook: a self-hosted server that speaks the Callbell contacts REST API.
//!
//! [`App::build`] takes [`Settings`] and a bound listener, so tests can run
//! the real server on port 0; [`App::run_until`] serves until a shutdown
//! future completes, finishing requests already in flight.

pub mod api;
pub mod auth;
pub mod config;
pub mod copy;
pub mod cursor;
pub mod dashboard;
pub mod demo;
pub mod domain;
pub mod error;
pub mod export;
pub mod import;
pub mod logging;
pub mod metrics;
pub mod pull;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod webhooks;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Settings;
use store::{AccountRecord, AdminStore, NewAccount, SqlStore, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("no secure randomness available: {0}")]
    Randomness(#[from] getrandom::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("webhook client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The name of the shared value that tells deployments apart in Redis.
const DEPLOYMENT_ID: &str = "deployment_id";

/// The account made on first start, with its key (shown only this once).
#[derive(Debug, Clone)]
pub struct FirstRun {
    pub account: AccountRecord,
    pub api_key: String,
}

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    store: Arc<SqlStore>,
    first_run: Option<FirstRun>,
    public_url: String,
    webhooks: Arc<webhooks::Worker>,
    deliver_webhooks: bool,
    connections: server::ConnectionLimits,
}

impl App {
    /// Opens and migrates the database, loads the demo account if asked,
    /// and creates the first account on an empty database.
    pub async fn build(settings: Settings, listener: TcpListener) -> Result<App, StartError> {
        let store = Arc::new(store::connect(&settings.database_url).await?);
        if settings.demo {
            demo::install(store.as_ref()).await?;
        }
        let first_run = match store.count_accounts().await? {
            0 => Some(create_first_account(store.as_ref()).await?),
            _ => None,
        };
        let address = listener.local_addr()?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| default_public_url(address));
        let cursor_key = store
            .shared_secret(cursor::CURSOR_SECRET, random_hex(32)?)
            .await?;
        let limiter = match &settings.redis_url {
            Some(redis_url) => {
                // Every process on this database shares one namespace, and
                // no other deployment on the same Redis collides with it.
                let deployment = store.shared_secret(DEPLOYMENT_ID, random_hex(16)?).await?;
                ratelimit::RateLimiter::shared(settings.rate_limit_rps, redis_url, &deployment)
                    .await?
            }
            None => ratelimit::RateLimiter::local(settings.rate_limit_rps),
        };
        let links = api::views::Links::new(&public_url);
        store.record_events_with(Arc::new(webhooks::Payloads::new(links.clone())));
        let metrics = Arc::new(metrics::Metrics::new(&store));
        let webhooks = Arc::new(webhooks::Worker::new(
            store.clone(),
            settings.webhooks.clone(),
            metrics.webhook_failures.clone(),
        )?);
        let state = Arc::new(api::AppContext {
            store: store.clone(),
            links,
            cursors: cursor::CursorSigner::new(&cursor_key),
            limiter,
            webhook_policy: settings.webhooks.policy,
            metrics,
            sql_store: store.clone(),
            metrics_token: settings.metrics_token.clone(),
            dashboard: dashboard::DashboardConfig::new(&public_url),
        });
        Ok(App {
            listener,
            router: api::router(
                state,
                api::RequestLimits {
                    max_body_bytes: settings.max_body_bytes,
                    body_timeout: settings.body_timeout,
                    request_timeout: settings.request_timeout,
                },
            ),
            connections: settings.connections,
            store,
            first_run,
            public_url,
            webhooks,
            deliver_webhooks: settings.deliver_webhooks,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The account created because the database was empty, if it was.
    pub fn first_run(&self) -> Option<&FirstRun> {
        self.first_run.as_ref()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The webhook delivery worker (tests drive it with
    /// [`webhooks::Worker::run_step`]).
    pub fn webhooks(&self) -> Arc<webhooks::Worker> {
        self.webhooks.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets
    /// in-flight requests finish, and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // The worker stops with the server: shutdown is shared.
        let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = self.deliver_webhooks.then(|| {
            tokio::spawn(self.webhooks.clone().run(async {
                let _ = worker_stopped.await;
            }))
        });
        let purger = tokio::spawn(housekeeping(self.store.clone()));
        let served = server::serve(self.listener, self.router, self.connections, shutdown).await;
        purger.abort();
        let _ = stop_worker.send(());
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        self.store.close().await;
        served
    }
}

/// Deletes, now and then, idempotency keys past the 24 hours they are kept
/// and dashboard sessions idle past their timeout (every process does;
/// each pass is a few cheap statements).
async fn housekeeping(store: Arc<SqlStore>) {
    use store::{DashboardStore, IdempotencyStore};
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    let ago = |age: std::time::Duration| {
        let age = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
        domain::Timestamp::from_unix(domain::Timestamp::now().unix().saturating_sub(age))
    };
    loop {
        match store
            .purge_idempotency_keys(ago(api::idempotency::KEPT_FOR))
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys deleted"),
            Err(error) => tracing::warn!(%error, "expired idempotency keys could not be deleted"),
        }
        match store
            .purge_sessions(ago(dashboard::session::IDLE_TIMEOUT))
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "idle dashboard sessions deleted"),
            Err(error) => tracing::warn!(%error, "idle dashboard sessions could not be deleted"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// `http://<address>`, with a wildcard address shown as `localhost`.
fn default_public_url(address: SocketAddr) -> String {
    let host = match address.ip() {
        ip if ip.is_unspecified() => "localhost".to_owned(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", address.port())
}

async fn create_first_account(store: &dyn Store) -> Result<FirstRun, StartError> {
    let key = auth::issue_key("default")?;
    let account = store
        .create_account(&NewAccount {
            uuid: domain::PublicId::random(),
            name: "default".to_owned(),
            created_at: domain::Timestamp::now(),
            owner_email: "admin@bellbook.local".to_owned(),
            owner_name: "Administrator".to_owned(),
            key: key.record,
        })
        .await?;
    Ok(FirstRun {
        account,
        api_key: key.secret,
    })
}

fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)?;
    Ok(hex::encode(buffer))
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
///
/// The signal handlers are installed by this call, not when the future is
/// first polled: `serve` calls it before announcing "Listening on", so a
/// SIGTERM sent as soon as that line appears already stops the server
/// gracefully instead of killing it with the signal's default action.
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    async move {
        let interrupted = async {
            match interrupt.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let terminated = async {
            match terminate.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = interrupted => {}
            () = terminated => {}
        }
    }
}

/// Resolves when the process is asked to stop (Ctrl-C).
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_defaults_to_the_listen_address() {
        assert_eq!(
            default_public_url("127.0.0.1:8080".parse().expect("addr")),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            default_public_url("0.0.0.0:80".parse().expect("addr")),
            "http://localhost:80"
        );
        assert_eq!(
            default_public_url("[::1]:9".parse().expect("addr")),
            "http://[::1]:9"
        );
    }
}
