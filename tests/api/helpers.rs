// Shared by every test file; not each file uses every helper.
#![allow(dead_code)]

//! Starting the real server for a test, on a fresh database of either
//! backend, and talking HTTP to it.

use std::sync::Arc;
use std::time::Duration;

use bellbook::store::{NewAccount, Store};
use bellbook::{App, Settings};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use bellbook::demo::DEMO_API_KEY;

/// The PostgreSQL server tests create their databases on. Tests fail,
/// rather than skip, when it cannot be reached.
pub fn redis_url() -> String {
    std::env::var("BELLBOOK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn postgres_admin_url() -> String {
    std::env::var("BELLBOOK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn(Backend)` as two tests, `sqlite::<name>` and
/// `postgres::<name>`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// A database that exists for one test.
pub enum TestDatabase {
    Sqlite(tempfile::TempDir),
    Postgres(PostgresDatabase),
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> (TestDatabase, String) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bellbook.db").display());
                (TestDatabase::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let database = PostgresDatabase::create().await;
                let url = database.url();
                (TestDatabase::Postgres(database), url)
            }
        }
    }
}

/// A connection to the PostgreSQL server's admin database, driven by a
/// task of the current runtime until the client is dropped.
async fn postgres_admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A fresh PostgreSQL database, dropped when this goes away.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    pub async fn create() -> PostgresDatabase {
        let admin_url = postgres_admin_url();
        let name = format!("bellbook_test_{}", uuid::Uuid::new_v4().simple());
        let admin = postgres_admin(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed for the tests: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        PostgresDatabase { admin_url, name }
    }

    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a thread with its own runtime can.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(admin) = postgres_admin(&admin_url).await {
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = admin.batch_execute(&drop).await;
                    }
                });
            }
        });
        let _ = dropper.join();
    }
}

/// The server, running in the test's runtime on a port of its own.
pub struct TestApp {
    pub base: String,
    /// The key of the account created on first start (or the demo key).
    pub key: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    /// The webhook worker; tests that turn `deliver_webhooks` off drive it
    /// with `run_step`.
    pub webhooks: Arc<bellbook::webhooks::Worker>,
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// Owned by the first server on it, dropped after the test.
    _database: Option<TestDatabase>,
}

impl TestApp {
    /// A server on an empty database: its first-run account's key is `key`.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// A server with the demo account; `key` is the demo key.
    pub async fn spawn_demo(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |s| s.demo = true).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let (database, url) = TestDatabase::create(backend).await;
        TestApp::start(Some(database), url, None, configure).await
    }

    /// Another server on this one's database, as a second process of the
    /// same deployment would be; it acts with the same key.
    pub async fn sibling(&self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::start(
            None,
            self.database_url.clone(),
            Some(self.key.clone()),
            configure,
        )
        .await
    }

    /// A server on a database that already exists (and outlives it).
    pub async fn spawn_on(
        database_url: &str,
        key: &str,
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        TestApp::start(
            None,
            database_url.to_owned(),
            Some(key.to_owned()),
            configure,
        )
        .await
    }

    async fn start(
        database: Option<TestDatabase>,
        url: String,
        key: Option<String>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut settings = Settings::new(url.clone());
        configure(&mut settings);
        let demo = settings.demo;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app = App::build(settings, listener).await.expect("server starts");
        let port = app.port();
        let key = match (app.first_run(), key) {
            (Some(first), _) => first.api_key.clone(),
            (None, Some(key)) => key,
            (None, None) if demo => DEMO_API_KEY.to_owned(),
            (None, None) => panic!("a fresh database creates a first account"),
        };
        let store = app.store();
        let webhooks = app.webhooks();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        TestApp {
            base: format!("http://127.0.0.1:{port}/v1"),
            key,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            store,
            webhooks,
            database_url: url,
            shutdown: Some(shutdown),
            server: Some(server),
            _database: database,
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with this app's key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        send(self.request(Method::PATCH, path).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        send(self.request(Method::PUT, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        send(self.request(Method::DELETE, path)).await
    }

    /// The same API, as another key.
    pub fn as_key(&self, key: &str) -> Caller {
        Caller::new(self.client.clone(), &self.base, key)
    }

    /// Makes another account and returns its API key.
    pub async fn create_account(&self, name: &str) -> String {
        let key = bellbook::auth::issue_key("default").expect("randomness");
        self.store
            .create_account(&NewAccount {
                uuid: bellbook::domain::PublicId::random(),
                name: name.to_owned(),
                created_at: bellbook::domain::Timestamp::now(),
                owner_email: format!("owner@{name}.example.com"),
                owner_name: format!("{name} owner"),
                key: key.record,
            })
            .await
            .expect("account created");
        key.secret
    }

    /// Creates a contact and returns it, failing the test on anything but 200.
    pub async fn create_contact(&self, body: Value) -> Value {
        self.as_key(&self.key).create_contact(body).await
    }
}

/// Requests made with one key, to a server in this process (see
/// [`TestApp::as_key`]) or a child process.
pub struct Caller {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Caller {
    /// `base` is `http://HOST:PORT/v1`.
    pub fn new(client: reqwest::Client, base: &str, key: &str) -> Caller {
        Caller {
            client,
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    pub async fn get(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        send(self.request(Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        send(self.request(Method::DELETE, path)).await
    }

    /// Creates a contact and returns it, failing the test on anything but 200.
    pub async fn create_contact(&self, body: Value) -> Value {
        let reply = self.post("/contacts", body).await;
        reply.assert_status(200);
        reply.contact().clone()
    }

    /// Every contact of the listing `path` asks for, newest first, by
    /// following `meta.next` to the end.
    pub async fn every_contact(&self, path: &str) -> Vec<Value> {
        let mut contacts = Vec::new();
        let mut reply = self.get(path).await;
        loop {
            reply.assert_status(200);
            contacts.extend(
                reply.body["contacts"]
                    .as_array()
                    .expect("contacts")
                    .iter()
                    .cloned(),
            );
            let Some(next) = reply.body["meta"]["next"].as_str() else {
                return contacts;
            };
            reply = self.get(&format!("/contacts?after={next}")).await;
        }
    }
}

/// The `uuid` of each contact, in order.
pub fn uuids(contacts: &[Value]) -> Vec<String> {
    contacts
        .iter()
        .map(|c| c["uuid"].as_str().expect("uuid").to_owned())
        .collect()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

/// Sends a request and reads the whole response, which must agree with
/// the OpenAPI document (see `conformance`).
pub async fn send(request: RequestBuilder) -> Reply {
    try_send(request).await.expect("a whole response")
}

/// [`send`] for a server that may go away or stop answering: `Err` when
/// no whole response came (refused, cut off, timed out).
pub async fn try_send(request: RequestBuilder) -> Result<Reply, reqwest::Error> {
    let (client, request) = request.build_split();
    let request = request.expect("request builds");
    let method = request.method().to_string();
    let path = request.url().path().to_owned();
    let response = client.execute(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    crate::conformance::check(&method, &path, status, &body, &text);
    Ok(Reply {
        status,
        headers,
        text,
        body,
    })
}

impl Reply {
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts an error response of SPEC §1 with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        let error = &self.body["error"];
        assert_eq!(error["status"], status, "error.status; body: {}", self.text);
        assert_eq!(error["code"], code, "error.code; body: {}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error.message; body: {}",
            self.text
        );
        self
    }

    /// The `field`s of `error.details`, in order.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["error"]["details"]
            .as_array()
            .map(|details| {
                details
                    .iter()
                    .filter_map(|d| d["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The contact of a `{"contact": [C]}` or `{"contact": C}` body.
    #[track_caller]
    pub fn contact(&self) -> &Value {
        match &self.body["contact"] {
            Value::Array(contacts) => {
                assert_eq!(
                    contacts.len(),
                    1,
                    "one contact in the array; body: {}",
                    self.text
                );
                &contacts[0]
            }
            Value::Object(_) => &self.body["contact"],
            _ => panic!("no contact in body: {}", self.text),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
