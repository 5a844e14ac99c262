//! bellbook-bench: bellbook at N contacts under load and, in the same run
//! on the same machine, the raw limits of this box for the same work, so
//! that every result reads as a ratio.
//!
//! `cargo run --release -p bellbook-bench -- [flags]`; the report (Markdown)
//! goes to stdout, progress to stderr.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

mod load;
mod process;
mod raw;
mod report;
mod seed;

/// Prints a progress line on stderr, stamped with the time since start.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {
        $crate::log_progress(format_args!($($arg)*))
    };
}

static STARTED: OnceLock<Instant> = OnceLock::new();

pub fn log_progress(message: fmt::Arguments<'_>) {
    let seconds = STARTED.get_or_init(Instant::now).elapsed().as_secs();
    eprintln!("[{:>2}:{:02}] {message}", seconds / 60, seconds % 60);
}

#[derive(Debug, Parser)]
#[command(
    name = "bellbook-bench",
    about = "Measures bellbook at N contacts beside this machine's raw limits, in one run",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    helper: Option<Helper>,
    #[command(flatten)]
    flags: Flags,
}

#[derive(Debug, Args)]
struct Flags {
    /// The bellbook binary to measure [default: `cargo build --release -p
    /// bellbook` in this workspace, then its target/release/bellbook]
    #[arg(long, value_name = "PATH")]
    bellbook: Option<PathBuf>,
    /// Contacts to import before the load.
    #[arg(long, default_value_t = 1_000_000)]
    contacts: u64,
    /// Seconds of each load run and of each raw limit measurement.
    #[arg(long, default_value_t = 10)]
    duration: u32,
    /// Open connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Runs of each shape and raw limit; the median one is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Run on PostgreSQL instead of SQLite: a fresh database is created
    /// through this admin URL (and dropped at the end), and PostgreSQL's
    /// raw limits are measured too.
    #[arg(long, value_name = "ADMIN_URL")]
    postgres: Option<String>,
    /// Keep the temporary directory (databases, NDJSON, request log, Lua
    /// scripts) and the PostgreSQL bench database at the end.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Subcommand)]
enum Helper {
    /// The raw HTTP server: answers GET /one and GET /page with these
    /// files' bytes (started by the bench itself).
    #[command(hide = true)]
    ServeStatic {
        #[arg(long)]
        one: PathBuf,
        #[arg(long)]
        page: PathBuf,
    },
}

/// Seeds the generated population, so every run imports the same contacts.
const POPULATION_SEED: u64 = 0xbe11_b00c;
/// How long building bellbook may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.helper {
        Some(Helper::ServeStatic { one, page }) => raw::serve_static(&one, &page),
        None => run(&cli.flags),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bellbook-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: &Flags) -> Result<()> {
    STARTED.get_or_init(Instant::now);
    if flags.repeat == 0 || flags.duration == 0 || flags.contacts == 0 {
        bail!("--repeat, --duration and --contacts must be at least 1");
    }
    if flags.connections < 2 {
        bail!("--connections must be at least 2 (wrk runs 2 threads)");
    }
    // Read first, before the bench loads the machine itself.
    let load_before = load_average();
    let root = workspace_root()?;
    let (bellbook, provenance) = match &flags.bellbook {
        Some(path) => {
            if !path.is_file() {
                bail!("--bellbook {}: no such file", path.display());
            }
            let repository = commit(&root).unwrap_or_else(|| "unknown".to_owned());
            (
                path.clone(),
                format!(
                    "{} (given with --bellbook; the repository is at {repository})",
                    path.display()
                ),
            )
        }
        None => {
            let built = build_bellbook(&root)?;
            let repository = commit(&root).unwrap_or_else(|| "an unknown commit".to_owned());
            (built, format!("built from {repository}"))
        }
    };
    // From here on (the build is done): whatever else keeps the CPUs busy.
    let cpu_before = CpuTimes::now();
    let work = tempfile::Builder::new()
        .prefix("bellbook-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    progress!("working in {}", work.path().display());
    let outcome = bench(
        flags,
        &root,
        &bellbook,
        &provenance,
        work.path(),
        &load_before,
    )
    .map(|report| format!("{report}{}\n", cpu_before.others_since()));
    if flags.keep {
        let kept = work.keep();
        eprintln!("kept the working directory {}", kept.display());
    }
    println!("{}", outcome?);
    Ok(())
}

/// One whole run: seed, serve, load, raw limits; answers the report.
fn bench(
    flags: &Flags,
    root: &Path,
    bellbook: &Path,
    provenance: &str,
    work: &Path,
    load_before: &str,
) -> Result<String> {
    let mut database = seed::Database::create(work, flags.postgres.as_deref())?;
    if let seed::Database::Postgres(pg) = &mut database {
        pg.keep = flags.keep;
    }
    progress!("database: {}", database.url());

    progress!("seed: bellbook serve --demo, once");
    seed::load_demo(bellbook, &database, &work.join("demo-server.log"))?;
    let mut population = seed::Population::new(POPULATION_SEED);
    let ndjson = work.join("contacts.ndjson");
    progress!(
        "seed: writing {} contacts to {}",
        report::count(flags.contacts),
        ndjson.display()
    );
    seed::write_ndjson(&ndjson, flags.contacts, &mut population)?;
    progress!("seed: bellbook import");
    let import = seed::import(bellbook, &database, &ndjson, flags.contacts)?;
    progress!(
        "seed: imported in {:.1} s ({:.0} contacts/s)",
        import.as_secs_f64(),
        flags.contacts as f64 / import.as_secs_f64()
    );
    if flags.postgres.is_some() {
        progress!("seed: ANALYZE");
        seed::analyze(&database)?;
    }
    let sample = seed::sample(&database)?;
    let sample_file = work.join("sample.txt");
    seed::write_sample(&sample_file, &sample)?;
    progress!("seed: sampled {} contacts", sample.len());

    let server_args = [
        "serve",
        "--database-url",
        &database.url(),
        "--listen",
        "127.0.0.1:0",
        "--rate-limit-rps",
        "0",
        "--public-url",
        "http://bench.local",
    ];
    let mut command = Command::new("taskset");
    command.args(["-c", &raw::SERVER_CORE.to_string()]);
    command.arg(bellbook).args(server_args);
    let server_log = work.join("server.log");
    let server = process::Server::start(command, "bellbook serve", &server_log)?;
    let rss_at_start_kib = server.peak_rss_kib()?;
    progress!(
        "serve: {} (pid {}), request log in {}",
        server.url(),
        server.pid(),
        server_log.display()
    );

    let api = load::Api::new(&server.url())?;
    progress!("setup: capturing bodies, counting a search's matches");
    let prepared = load::prepare(&api, &sample, population.searched_surname())?;
    progress!(
        "setup: q={} matches ~{}",
        prepared.surname,
        prepared.surname_matches
    );
    let wrk = load::Wrk::new(work, flags.duration, flags.connections, flags.repeat)?;
    let mut shapes = load::shapes_before_cursor();
    let mut measured = load::run_shapes(&wrk, &server.url(), &shapes, &sample_file)?;
    // Walked only now, after the POST shape: every page of a walk counts
    // the contacts created since the walk began, so a cursor taken before
    // the POST shape would measure that count more than a deep page.
    progress!("setup: walking to a deep cursor (30 s at most)");
    let walk = load::walk_to_deep_cursor(&api, flags.contacts / 2)?;
    progress!(
        "setup: cursor {} contacts deep after {} page requests",
        report::count(walk.depth),
        walk.pages
    );
    let surnames_file = work.join("surnames.txt");
    std::fs::write(&surnames_file, population.surnames().join("\n"))
        .with_context(|| format!("writing {}", surnames_file.display()))?;
    let later = load::shapes_from_cursor(
        &walk,
        &prepared,
        &surnames_file,
        population.surnames().len(),
    );
    measured.extend(load::run_shapes(&wrk, &server.url(), &later, &sample_file)?);
    shapes.extend(later);
    let rss_peak_kib = server.peak_rss_kib()?;
    progress!("serve: peak RSS {} MB; stopping", rss_peak_kib / 1024);
    server.stop()?;

    let plan = raw::Plan {
        root,
        work,
        duration: Duration::from_secs(u64::from(flags.duration)),
        repeat: flags.repeat,
        sample: &sample,
        sqlite_bench: match &database {
            seed::Database::Sqlite { path } => Some(path.as_path()),
            seed::Database::Postgres(_) => None,
        },
        postgres: match (&database, flags.postgres.as_deref()) {
            (seed::Database::Postgres(pg), Some(admin)) => Some((admin, pg.url.as_str())),
            _ => None,
        },
    };
    let limits = raw::measure(&plan, &wrk, &prepared.one_body, &prepared.page_body)?;

    let report = report::Report {
        contacts: flags.contacts,
        backend: database.backend(),
        shapes: &shapes,
        measured: &measured,
        limits: &limits,
        rss_at_start_kib,
        rss_peak_kib,
        import,
        cursor_walk_pages: walk.pages,
        duration: flags.duration,
        repeat: flags.repeat,
        wrk_command: wrk.command_line(),
        server_command: format!(
            "taskset -c {} bellbook {}",
            raw::SERVER_CORE,
            server_args.join(" ")
        ),
        bellbook: provenance.to_owned(),
        machine: format!(
            "{}; load average before the run {load_before}",
            machine(work)
        ),
        date: utc_now(),
    };
    progress!("done");
    Ok(report.render())
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("the bench package has no parent directory")
}

/// `cargo build --release -p bellbook`; answers the binary it made.
fn build_bellbook(root: &Path) -> Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        // Relative to where we were started, as cargo would read it.
        Some(dir) => std::path::absolute(dir).context("CARGO_TARGET_DIR")?,
        None => root.join("target"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    progress!(
        "build: cargo build --release -p bellbook (target {})",
        target.display()
    );
    let mut child = Command::new(cargo)
        .args(["build", "--release", "-p", "bellbook"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .spawn()
        .context("cannot run cargo")?;
    let status = process::wait_bounded(&mut child, BUILD_TIMEOUT).context("cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p bellbook failed ({status})");
    }
    let binary = target.join("release").join("bellbook");
    if !binary.is_file() {
        bail!("cargo build succeeded but {} is missing", binary.display());
    }
    Ok(binary)
}

/// The repository's commit, noting uncommitted changes to what the server
/// is built from.
fn commit(root: &Path) -> Option<String> {
    // Optional locks off: git status would otherwise refresh the index,
    // and the bench leaves the repository alone.
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let changes = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "src",
        "migrations",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .unwrap_or_default();
    Some(if changes.is_empty() {
        format!("commit {head}")
    } else {
        format!("commit {head} with uncommitted changes in src/migrations/Cargo")
    })
}

/// Cores, CPU model, memory, and the file system the databases live on.
fn machine(work: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or_else(
            || "unknown".to_owned(),
            |kib| format!("{:.0}", kib / 1024.0 / 1024.0),
        );
    format!(
        "nproc {cores}, {model}, {memory_gib} GiB RAM; temporary directory (SQLite files) on {}",
        file_system(work)
    )
}

/// The type of the file system holding `path` (tmpfs would make every
/// "durable" number meaningless).
fn file_system(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = fields.next()?;
            let kind = fields.next()?;
            path.starts_with(mount_point)
                .then(|| (mount_point.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "an unknown file system".to_owned(), |(_, kind)| kind)
}

/// CPU time spent on the whole machine and by this process with its
/// children: the difference is what other processes took from the run.
struct CpuTimes {
    at: Instant,
    machine_busy: Duration,
    steal: Duration,
    ours: Duration,
}

impl CpuTimes {
    fn now() -> CpuTimes {
        let (machine_busy, steal) = machine_cpu();
        CpuTimes {
            at: Instant::now(),
            machine_busy,
            steal,
            ours: own_cpu(),
        }
    }

    /// A report line: CPU used by other processes (and stolen by the
    /// hypervisor) since `self`.
    fn others_since(&self) -> String {
        let later = CpuTimes::now();
        let wall = later.at - self.at;
        let others = (later.machine_busy.saturating_sub(self.machine_busy))
            .saturating_sub(later.ours.saturating_sub(self.ours));
        let steal = later.steal.saturating_sub(self.steal);
        format!(
            "- CPU taken by processes outside the bench (PostgreSQL's included) during \
             its {:.0} s: {:.0} s ({:.0} % of one core); stolen by the hypervisor: {:.1} s",
            wall.as_secs_f64(),
            others.as_secs_f64(),
            100.0 * others.as_secs_f64() / wall.as_secs_f64(),
            steal.as_secs_f64()
        )
    }
}

/// Busy and stolen time of all CPUs, from /proc/stat (zero if unreadable).
fn machine_cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let field = |i: usize| ticks.get(i).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6);
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let as_duration = |ticks: u64| Duration::from_secs_f64(ticks as f64 / per_second);
    (as_duration(busy), as_duration(field(7)))
}

/// CPU time of this process and of its children that have been waited for.
fn own_cpu() -> Duration {
    let usage = |who: libc::c_int| -> Duration {
        // SAFETY: rusage is plain data (all zeroes is valid), which
        // getrusage only fills in.
        let (result, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            (libc::getrusage(who, &mut usage), usage)
        };
        if result != 0 {
            return Duration::ZERO;
        }
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

/// The 1, 5 and 15 minute load averages: other work on the machine
/// shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Now, as `2026-01-31 14:05 UTC`.
fn utc_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (days, in_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02} UTC",
        in_day / 3600,
        in_day % 3600 / 60
    )
}
