//! Load through wrk: the request shapes and their Lua scripts; and the
//! setup requests, made with reqwest (captured bodies, the search count,
//! the walk to the deep cursor).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::progress;
use crate::seed::{API_KEY, Sampled};

const COMMON_LUA: &str = include_str!("../lua/common.lua");
const STATIC_LUA: &str = include_str!("../lua/static.lua");
const POST_LUA: &str = include_str!("../lua/post.lua");
const SAMPLED_LUA: &str = include_str!("../lua/sampled.lua");
const SEARCHES_LUA: &str = include_str!("../lua/searches.lua");

/// Contacts per page of `GET /v1/contacts`.
const PAGE_SIZE: u64 = 20;
/// How long the walk to the deep cursor may take.
const CURSOR_WALK_LIMIT: Duration = Duration::from_secs(30);
/// wrk threads: one core's worth of load generator.
const WRK_THREADS: u32 = 2;
/// wrk's request timeout. Its default, 2 s, drops the latency of every
/// slower answer and counts it as a socket error instead: a slow shape's
/// p99 would read as under 2 s.
const WRK_TIMEOUT: &str = "30s";

/// How wrk is run, the same for every shape and raw HTTP limit.
pub struct Wrk {
    duration: u32,
    connections: u32,
    repeat: u32,
    scripts: PathBuf,
}

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct WrkRun {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub socket_errors: u64,
    pub non2xx: u64,
}

/// The repeats of one shape.
#[derive(Debug, Clone)]
pub struct Measured {
    pub runs: Vec<WrkRun>,
}

impl Measured {
    /// The run with the median req/s (the lower one of the middle two).
    pub fn median(&self) -> WrkRun {
        let mut runs = self.runs.clone();
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        runs.get(runs.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default()
    }

    pub fn non2xx(&self) -> u64 {
        self.runs.iter().map(|r| r.non2xx).sum()
    }

    pub fn socket_errors(&self) -> u64 {
        self.runs.iter().map(|r| r.socket_errors).sum()
    }

    pub fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }
}

/// Which Lua script drives a shape, with its arguments.
#[derive(Debug, Clone)]
pub enum Script {
    /// The URL's own request, again and again.
    Static,
    /// A new contact each request.
    Post,
    /// Requests about random sample contacts.
    Sampled(Ask),
    /// Searches for surnames picked at random from this file.
    Searches(PathBuf),
}

/// What the sampled script asks about its contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Uuid,
    Phone,
    Patch,
}

impl Ask {
    /// How sampled.lua names it.
    fn as_arg(self) -> &'static str {
        match self {
            Ask::Uuid => "uuid",
            Ask::Phone => "phone",
            Ask::Patch => "patch",
        }
    }
}

impl Script {
    fn file_name(&self) -> &'static str {
        match self {
            Script::Static => "static.lua",
            Script::Post => "post.lua",
            Script::Sampled(_) => "sampled.lua",
            Script::Searches(_) => "searches.lua",
        }
    }
}

/// Which raw limit a shape is read against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    Insert,
    Lookup,
    Page,
}

/// One row of the results table: a request shape and its load.
#[derive(Debug, Clone)]
pub struct Shape {
    /// How the table names it (Markdown).
    pub label: String,
    /// Path and query wrk requests (for the static shapes).
    pub path: String,
    pub script: Script,
    pub ceiling: Ceiling,
}

impl Wrk {
    /// Writes the Lua scripts into `dir`.
    pub fn new(dir: &Path, duration: u32, connections: u32, repeat: u32) -> Result<Wrk> {
        let scripts = dir.join("lua");
        std::fs::create_dir_all(&scripts)?;
        for (name, body) in [
            ("static.lua", STATIC_LUA),
            ("post.lua", POST_LUA),
            ("sampled.lua", SAMPLED_LUA),
            ("searches.lua", SEARCHES_LUA),
        ] {
            let path = scripts.join(name);
            std::fs::write(&path, format!("{COMMON_LUA}\n{body}"))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(Wrk {
            duration,
            connections,
            repeat,
            scripts,
        })
    }

    /// The wrk command line, as the report shows it.
    pub fn command_line(&self) -> String {
        format!(
            "taskset -c 1 wrk -t{WRK_THREADS} -c{} -d{}s --timeout {WRK_TIMEOUT} --latency \
             -s SCRIPT URL -- API_KEY [ARGS]",
            self.connections, self.duration
        )
    }

    /// Runs `url` `repeat` times back to back with `script`; `args` gives
    /// each repeat's script arguments after the API key (the POST script
    /// needs the repeat's number).
    pub fn measure(
        &self,
        name: &str,
        url: &str,
        script: &Script,
        args: &dyn Fn(u32) -> Vec<String>,
    ) -> Result<Measured> {
        let mut runs = Vec::new();
        for repeat in 0..self.repeat {
            let run = self.run_once(url, script, &args(repeat))?;
            progress!(
                "  {name} run {}/{}: {:.0} req/s, p50 {}, p99 {}{}",
                repeat + 1,
                self.repeat,
                run.rps,
                crate::report::micros(run.p50_us),
                crate::report::micros(run.p99_us),
                problems(&run)
            );
            runs.push(run);
        }
        Ok(Measured { runs })
    }

    fn run_once(&self, url: &str, script: &Script, args: &[String]) -> Result<WrkRun> {
        let script_path = self.scripts.join(script.file_name());
        let mut command = Command::new("taskset");
        command
            .args(["-c", "1", "wrk"])
            .arg(format!("-t{WRK_THREADS}"))
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.duration))
            .args(["--timeout", WRK_TIMEOUT])
            .arg("--latency")
            .arg("-s")
            .arg(&script_path)
            .arg(url)
            .arg("--")
            .arg(API_KEY)
            .args(args);
        let timeout = Duration::from_secs(u64::from(self.duration) + 90);
        let output = crate::process::run_bounded(&mut command, timeout)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "wrk failed ({}): {}{}",
                output.status,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let line = stdout
            .lines()
            .find(|l| l.starts_with("BENCH "))
            .ok_or_else(|| anyhow!("wrk printed no BENCH line:\n{stdout}"))?;
        parse_bench_line(line)
    }
}

fn problems(run: &WrkRun) -> String {
    let mut text = String::new();
    if run.non2xx > 0 {
        text.push_str(&format!(" — {} non-2xx!", run.non2xx));
    }
    if run.socket_errors > 0 {
        text.push_str(&format!(" — {} socket errors!", run.socket_errors));
    }
    text
}

fn parse_bench_line(line: &str) -> Result<WrkRun> {
    let mut run = WrkRun::default();
    for pair in line.split_whitespace().skip(1) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("bad BENCH field {pair:?}"))?;
        let number: f64 = value
            .parse()
            .with_context(|| format!("bad BENCH value {pair:?}"))?;
        match key {
            "requests" => run.requests = number as u64,
            "rps" => run.rps = number,
            "p50_us" => run.p50_us = number,
            "p99_us" => run.p99_us = number,
            "socket_errors" => run.socket_errors = number as u64,
            "non2xx" => run.non2xx = number as u64,
            _ => {}
        }
    }
    Ok(run)
}

/// What the setup requests found out, for the shapes and the raw limits.
pub struct Prepared {
    /// A real `GET /v1/contacts/{uuid}` body.
    pub one_body: Vec<u8>,
    /// A real `GET /v1/contacts` page body.
    pub page_body: Vec<u8>,
    /// The surname searched for and about how many contacts it matches.
    pub surname: String,
    pub surname_matches: u64,
}

/// A blocking client of the server under test.
pub struct Api {
    client: reqwest::blocking::Client,
    base: String,
}

impl Api {
    pub fn new(base: &str) -> Result<Api> {
        Ok(Api {
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.to_owned(),
        })
    }

    fn get(&self, path_and_query: &str) -> Result<Vec<u8>> {
        let url = format!("{}{path_and_query}", self.base);
        let response = self
            .client
            .get(&url)
            .bearer_auth(API_KEY)
            .send()
            .with_context(|| format!("GET {url}"))?;
        let status = response.status();
        let body = response.bytes()?.to_vec();
        if !status.is_success() {
            bail!(
                "GET {url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }

    fn get_json(&self, path_and_query: &str) -> Result<Value> {
        let body = self.get(path_and_query)?;
        serde_json::from_slice(&body).with_context(|| format!("GET {path_and_query}: not JSON"))
    }
}

/// Captures response bodies and counts the search's matches.
pub fn prepare(api: &Api, sample: &[Sampled], surname: &str) -> Result<Prepared> {
    let first = sample.first().context("empty sample")?;
    let one_body = api.get(&format!("/v1/contacts/{}", first.uuid))?;
    let page_body = api.get("/v1/contacts")?;

    let search = api.get_json(&format!("/v1/contacts?q={}", percent_encode(surname)))?;
    let pages = search["meta"]["pages"]
        .as_u64()
        .context("no meta.pages in the search answer")?;
    Ok(Prepared {
        one_body,
        page_body,
        surname: surname.to_owned(),
        surname_matches: pages * PAGE_SIZE,
    })
}

/// Where a walk along `meta.next` got to.
pub struct Walk {
    pub cursor: String,
    /// Contacts before the cursor's page.
    pub depth: u64,
    /// Pages requested on the way.
    pub pages: u64,
}

/// From page 500 on, follows `meta.next` until about `target` contacts
/// deep or 30 s, whichever comes first.
pub fn walk_to_deep_cursor(api: &Api, target: u64) -> Result<Walk> {
    let started = Instant::now();
    let mut answer = api.get_json("/v1/contacts?page=500")?;
    let mut walk = Walk {
        cursor: next_cursor(&answer)?
            .context("page 500 has no meta.next: too few contacts for the deep cursor shape")?,
        depth: 0,
        pages: 1,
    };
    loop {
        let page = answer["meta"]["page"]
            .as_u64()
            .context("no meta.page in a listing")?;
        // The cursor leads to the page after this one.
        walk.depth = page * PAGE_SIZE;
        if walk.depth >= target || started.elapsed() >= CURSOR_WALK_LIMIT {
            return Ok(walk);
        }
        answer = api.get_json(&format!(
            "/v1/contacts?after={}",
            percent_encode(&walk.cursor)
        ))?;
        walk.pages += 1;
        match next_cursor(&answer)? {
            Some(next) => walk.cursor = next,
            // The end of the listing: the cursor that led here is the deepest.
            None => return Ok(walk),
        }
    }
}

fn next_cursor(answer: &Value) -> Result<Option<String>> {
    match &answer["meta"]["next"] {
        Value::Null => Ok(None),
        Value::String(next) => Ok(Some(next.clone())),
        other => bail!("meta.next is neither null nor a string: {other}"),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The shapes up to the deep cursor, in the order they run.
pub fn shapes_before_cursor() -> Vec<Shape> {
    vec![
        Shape {
            label: "`POST /v1/contacts`".into(),
            path: "/v1/contacts".into(),
            script: Script::Post,
            ceiling: Ceiling::Insert,
        },
        sampled("`GET /v1/contacts/{uuid}`", Ask::Uuid),
        sampled("`GET /v1/contacts/phone/{digits}`", Ask::Phone),
        sampled("`PATCH /v1/contacts/{uuid}`", Ask::Patch),
        listing("`GET /v1/contacts`".into(), "/v1/contacts".into()),
        listing(
            "`GET /v1/contacts?tags=lead`".into(),
            "/v1/contacts?tags=lead".into(),
        ),
        listing(
            "`GET /v1/contacts?tags=hot`".into(),
            "/v1/contacts?tags=hot".into(),
        ),
        listing(
            "`GET /v1/contacts?page=400`".into(),
            "/v1/contacts?page=400".into(),
        ),
    ]
}

/// The deep cursor shape and the searches, which run last: one search
/// asked again and again (after the first time answered from the matches
/// the server remembers), and a different surname from `surnames` each
/// time (each search's first time, nearly always).
pub fn shapes_from_cursor(
    walk: &Walk,
    prepared: &Prepared,
    surnames: &Path,
    surname_count: usize,
) -> Vec<Shape> {
    vec![
        listing(
            format!(
                "`GET /v1/contacts?after=…` ({} deep)",
                crate::report::count(walk.depth)
            ),
            format!("/v1/contacts?after={}", percent_encode(&walk.cursor)),
        ),
        listing(
            format!(
                "`GET /v1/contacts?q={}` (~{} matches)",
                prepared.surname,
                crate::report::count(prepared.surname_matches)
            ),
            format!("/v1/contacts?q={}", percent_encode(&prepared.surname)),
        ),
        Shape {
            label: format!(
                "`GET /v1/contacts?q=…` (one of {} surnames at random, ~{} matches each)",
                crate::report::count(surname_count as u64),
                crate::report::count(prepared.surname_matches)
            ),
            path: "/".into(),
            script: Script::Searches(surnames.to_owned()),
            ceiling: Ceiling::Page,
        },
    ]
}

fn sampled(label: &str, ask: Ask) -> Shape {
    Shape {
        label: label.to_owned(),
        // The script makes every request's path; wrk only needs the host.
        path: "/".into(),
        script: Script::Sampled(ask),
        ceiling: Ceiling::Lookup,
    }
}

fn listing(label: String, path: String) -> Shape {
    Shape {
        label,
        path,
        script: Script::Static,
        ceiling: Ceiling::Page,
    }
}

/// Runs every shape against the server at `base`.
pub fn run_shapes(
    wrk: &Wrk,
    base: &str,
    shapes: &[Shape],
    sample_file: &Path,
) -> Result<Vec<Measured>> {
    let sample = sample_file.display().to_string();
    let mut results = Vec::with_capacity(shapes.len());
    for shape in shapes {
        progress!("load: {}", shape.label.replace('`', ""));
        let url = format!("{base}{}", shape.path);
        let args = |repeat: u32| -> Vec<String> {
            match &shape.script {
                Script::Static => Vec::new(),
                Script::Post => vec![repeat.to_string()],
                Script::Sampled(ask) => vec![ask.as_arg().to_owned(), sample.clone()],
                Script::Searches(surnames) => vec![surnames.display().to_string()],
            }
        };
        results.push(wrk.measure(&shape.label.replace('`', ""), &url, &shape.script, &args)?);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lua_summary() {
        let run = parse_bench_line(
            "BENCH requests=1200 duration_us=2000000 rps=600.0 p50_us=812 p99_us=4100 socket_errors=0 non2xx=3",
        )
        .expect("parses");
        assert_eq!(run.requests, 1200);
        assert_eq!(run.non2xx, 3);
        assert!((run.p99_us - 4100.0).abs() < 1e-9);
    }

    #[test]
    fn median_is_the_middle_run() {
        let run = |rps| WrkRun {
            rps,
            ..WrkRun::default()
        };
        let measured = Measured {
            runs: vec![run(3.0), run(1.0), run(2.0)],
        };
        assert_eq!(measured.median().rps, 2.0);
    }

    #[test]
    fn cursors_are_encoded() {
        assert_eq!(percent_encode("a.b-c_d+e/="), "a.b-c_d%2Be%2F%3D");
    }
}
