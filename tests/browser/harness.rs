//! What the walk stands on: the `bellbook` server and chromedriver as
//! child processes that die with the test, a browser session with short
//! explicit waits, screenshots, the browser's console, and the JSON API.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_bellbook");
pub const DEMO_KEY: &str = "test_gshuPaZoeEG6ovbc8M79w0QyM";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long one step may wait for the page to be what it should.
pub const STEP: Duration = Duration::from_secs(10);
/// How long the processes get to come up.
const START: Duration = Duration::from_secs(20);

#[path = "../common/environment.rs"]
mod environment;
use environment::ENVIRONMENT;

/// A port nobody listens on at the moment (a child may still lose it to
/// another process: callers retry).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

/// Calls `probe` until it gives a value, for at most `timeout`.
async fn poll<T>(timeout: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process in a process group of its own, killed with its whole
/// group (chromedriver's browsers too) when this goes away, panic or not.
pub struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command, log: PathBuf) -> Process {
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Process { name, child, log }
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The last lines it wrote.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- the last lines of {} ({}) ---\n{}",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bellbook serve --demo` on a SQLite file of its own.
pub struct Server {
    /// Killed when the server goes away.
    _process: Process,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
}

impl Server {
    pub async fn start(dir: &Path) -> Server {
        let http = reqwest::Client::new();
        for attempt in 1..=3 {
            let port = free_port();
            let database = format!("sqlite://{}/b{attempt}.db", dir.display());
            let mut command = Command::new(BIN);
            command
                .args(["serve", "--demo", "--database-url", &database, "--listen"])
                .arg(format!("127.0.0.1:{port}"));
            for name in ENVIRONMENT {
                command.env_remove(name);
            }
            let log = dir.join(format!("bellbook-{attempt}.log"));
            let mut process = Process::spawn("bellbook", &mut command, log);
            let origin = format!("http://127.0.0.1:{port}");
            let healthz = format!("{origin}/healthz");
            let up = poll(START, async || {
                if process.exited() {
                    return Some(false);
                }
                let answer = http.get(&healthz).send().await.ok()?;
                (answer.status() == 200).then_some(true)
            })
            .await;
            match up {
                Some(true) => {
                    return Server {
                        _process: process,
                        origin,
                    };
                }
                // Most likely the port was taken in the meantime.
                Some(false) if attempt < 3 => continue,
                _ => panic!(
                    "bellbook did not answer 200 on {healthz} within {START:?}:\n{}",
                    process.log_tail(40)
                ),
            }
        }
        unreachable!()
    }
}

/// A path to one of the browser's programs, or a failure that says how
/// to install it: a browser test that skips itself proves nothing.
fn program(path: &str, env: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| path.to_owned());
    assert!(
        Path::new(&path).is_file(),
        "the browser test needs {path}, which is not installed: \
         run `apt-get install chromium chromium-driver` (or set {env} to where it is)"
    );
    path
}

/// chromedriver, ready for sessions.
pub struct Driver {
    pub process: Process,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    chromium: String,
}

impl Driver {
    pub async fn start(dir: &Path) -> Driver {
        let chromium = program(CHROMIUM, "BELLBOOK_TEST_CHROMIUM");
        let chromedriver = program(CHROMEDRIVER, "BELLBOOK_TEST_CHROMEDRIVER");
        let http = reqwest::Client::new();
        for attempt in 1..=3 {
            let port = free_port();
            let mut command = Command::new(&chromedriver);
            command.arg(format!("--port={port}"));
            let log = dir.join(format!("chromedriver-{attempt}.log"));
            let mut process = Process::spawn("chromedriver", &mut command, log);
            let url = format!("http://127.0.0.1:{port}");
            let status = format!("{url}/status");
            let up = poll(START, async || {
                if process.exited() {
                    return Some(false);
                }
                let answer = http.get(&status).send().await.ok()?;
                let body: Value = answer.json().await.ok()?;
                (body["value"]["ready"] == true).then_some(true)
            })
            .await;
            match up {
                Some(true) => {
                    return Driver {
                        process,
                        url,
                        chromium,
                    };
                }
                Some(false) if attempt < 3 => continue,
                _ => panic!(
                    "chromedriver was not ready on {status} within {START:?}:\n{}",
                    process.log_tail(40)
                ),
            }
        }
        unreachable!()
    }

    /// A new headless Chromium session.
    pub async fn session(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": self.chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--window-size=1280,1000",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start Chromium: {e}\n{}",
                    self.process.log_tail(40)
                )
            })
    }
}

/// One line of the browser's console.
#[derive(Debug, Clone)]
pub struct ConsoleLine {
    pub page: String,
    pub level: String,
    pub message: String,
}

/// The browser, with the site's origin, waits that say what they waited
/// for and where, and numbered screenshots.
pub struct Browser {
    pub client: Client,
    pub origin: String,
    driver_url: String,
    session: String,
    http: reqwest::Client,
    shots: PathBuf,
    taken: Cell<u32>,
    pub console: RefCell<Vec<ConsoleLine>>,
}

impl Browser {
    pub async fn new(client: Client, origin: &str, driver: &Driver, shots: PathBuf) -> Browser {
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        // Screenshots of an earlier run would mislead.
        for entry in std::fs::read_dir(&shots)
            .expect("screenshot folder")
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "png") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Browser {
            client,
            origin: origin.to_owned(),
            driver_url: driver.url.clone(),
            session,
            http: reqwest::Client::new(),
            shots,
            taken: Cell::new(0),
            console: RefCell::new(Vec::new()),
        }
    }

    /// Stops the walk, saying what went wrong, where, and what the page
    /// showed.
    pub async fn fail(&self, message: &str) -> ! {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(no URL: {e})"),
        };
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let text: String = text.chars().take(2000).collect();
        let _ = self.shot_as("failure").await;
        panic!("{message}\n  at {url}\n  the page said:\n{text}\n");
    }

    /// Waits up to [`STEP`] for `probe` to give a value.
    pub async fn wait<T>(&self, what: &str, probe: impl AsyncFnMut() -> Option<T>) -> T {
        match poll(STEP, probe).await {
            Some(value) => value,
            None => self.fail(&format!("waited {STEP:?} for {what}")).await,
        }
    }

    pub async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.origin);
        if let Err(e) = self.client.goto(&url).await {
            self.fail(&format!("could not open {url}: {e}")).await
        }
    }

    /// Waits until the browser is at `path` (query left aside), and
    /// returns the whole URL.
    pub async fn wait_path(&self, path: &str) -> url::Url {
        self.wait(&format!("the browser to be at {path}"), async || {
            let url = self.client.current_url().await.ok()?;
            (url.path() == path).then_some(url)
        })
        .await
    }

    /// The first element `css` finds, once there is one.
    pub async fn element(&self, css: &str) -> Element {
        self.wait(&format!("an element {css}"), async || {
            self.client.find(Locator::Css(css)).await.ok()
        })
        .await
    }

    /// The text of the first element `css` finds, once `good` holds of it.
    pub async fn text_where(&self, css: &str, what: &str, good: impl Fn(&str) -> bool) -> String {
        self.wait(&format!("{css} to {what}"), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            let text = element.text().await.ok()?;
            good(&text).then_some(text)
        })
        .await
    }

    /// Replaces what the input `css` holds with `text`, typed.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.element(css).await;
        if let Err(e) = input.clear().await {
            self.fail(&format!("could not clear {css}: {e}")).await
        }
        if let Err(e) = input.send_keys(text).await {
            self.fail(&format!("could not type into {css}: {e}")).await
        }
    }

    /// Clicks the submit button of the form `css`.
    pub async fn submit(&self, css: &str) {
        self.element(css).await;
        let form = match self.client.form(Locator::Css(css)).await {
            Ok(form) => form,
            Err(e) => self.fail(&format!("no form {css}: {e}")).await,
        };
        if let Err(e) = form.submit().await {
            self.fail(&format!("could not submit {css}: {e}")).await
        }
    }

    pub async fn click(&self, element: &Element, what: &str) {
        if let Err(e) = element.click().await {
            self.fail(&format!("could not click {what}: {e}")).await
        }
    }

    pub async fn script(&self, script: &str) -> Value {
        match self.client.execute(script, Vec::new()).await {
            Ok(value) => value,
            Err(e) => {
                self.fail(&format!("the script failed: {e}\n{script}"))
                    .await
            }
        }
    }

    /// A screenshot of the whole page, numbered in walk order:
    /// `NN-name.png`.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let n = self.taken.get() + 1;
        self.taken.set(n);
        self.picture(&format!("{n:02}-{name}"), true).await
    }

    /// A screenshot of what the window shows (for pages far too long to
    /// take whole), numbered in walk order.
    pub async fn shot_window(&self, name: &str) -> PathBuf {
        let n = self.taken.get() + 1;
        self.taken.set(n);
        self.picture(&format!("{n:02}-{name}"), false).await
    }

    /// A screenshot of the whole page as `name.png`.
    pub async fn shot_as(&self, name: &str) -> PathBuf {
        self.picture(name, true).await
    }

    /// A screenshot as `name.png`, of the whole page or of the window; the
    /// browser's console so far is kept, marked with `name`.
    async fn picture(&self, name: &str, whole: bool) -> PathBuf {
        let (width, height) = self.client.get_window_size().await.expect("window size");
        // The window as tall as the page (plus what of the window is not
        // page), for the one picture, then back.
        let needed = self
            .client
            .execute(
                "return Math.ceil(document.documentElement.scrollHeight \
                 + window.outerHeight - window.innerHeight)",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(height);
        let tall = whole && needed > height;
        if tall {
            let _ = self
                .client
                .set_window_size(width as u32, needed.min(8000) as u32)
                .await;
        }
        let png = self.client.screenshot().await;
        if tall {
            let _ = self
                .client
                .set_window_size(width as u32, height as u32)
                .await;
        }
        let png = png.unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        self.keep_console(name).await;
        path
    }

    /// What the browser's console said since last asked.
    async fn keep_console(&self, page: &str) {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session);
        let Ok(answer) = self
            .http
            .post(&url)
            .json(&json!({"type": "browser"}))
            .send()
            .await
        else {
            return;
        };
        let Ok(body) = answer.json::<Value>().await else {
            return;
        };
        let lines = body["value"].as_array().cloned().unwrap_or_default();
        self.console
            .borrow_mut()
            .extend(lines.into_iter().map(|line| ConsoleLine {
                page: page.to_owned(),
                level: line["level"].as_str().unwrap_or("?").to_owned(),
                message: line["message"].as_str().unwrap_or("").to_owned(),
            }));
    }
}

/// The JSON API, with the demo key unless told otherwise.
pub struct Api {
    http: reqwest::Client,
    base: String,
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Api {
    pub fn new(origin: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("{origin}/v1"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let answer = request.send().await.expect("the API answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("the API's body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn get_with(&self, key: &str, path: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(url).bearer_auth(key)).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(DEMO_KEY, path).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(url).bearer_auth(DEMO_KEY).json(body))
            .await
    }

    /// `GET /v1/contacts/{uuid}`: the contact (an object, or the one
    /// element of an array).
    pub async fn contact(&self, uuid: &str) -> Value {
        let answer = self.get(&format!("/contacts/{uuid}")).await;
        assert_eq!(
            answer.status, 200,
            "GET /v1/contacts/{uuid}: {}",
            answer.text
        );
        match &answer.body["contact"] {
            Value::Array(contacts) if contacts.len() == 1 => contacts[0].clone(),
            contact @ Value::Object(_) => contact.clone(),
            _ => panic!("GET /v1/contacts/{uuid}: no contact in {}", answer.text),
        }
    }
}
