//! The `bellbook` command: the server and its admin tools.

use std::io::IsTerminal;
use std::process::ExitCode;

use bellbook::auth::issue_key;
use bellbook::config::{DatabaseArgs, ServeArgs};
use bellbook::domain::email::is_valid_email;
use bellbook::domain::{PublicId, Timestamp};
use bellbook::export::ExportFormat;
use bellbook::import::{ImportFormat, ImportOptions};
use bellbook::store::{AdminStore, DashboardStore, NewAccount, SettingsStore, SqlStore};
use bellbook::{App, Settings, shutdown_signal};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Every request allocates a few dozen small strings and buffers (rows,
/// bound parameters, JSON); mimalloc serves them in a fraction of the
/// instructions glibc's allocator takes, SQLite's own allocations included
/// (BENCHMARKS.md). Built without transparent huge pages (`no_thp`): with
/// them the peak RSS under PostgreSQL's load, where requests run on many
/// blocking threads, went from 25 MB to 80-215 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "bellbook",
    version,
    about = "A self-hosted server that speaks the Callbell contacts API"
)]
struct Cli {
    /// How log lines are written to stderr: `text` (one readable line) or
    /// `json` (one JSON object a line, for log collectors).
    #[arg(long, global = true, value_enum, env = "BELLBOOK_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Create and list accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Dashboard passwords of an account's users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Bring the database schema up to date, then exit.
    Migrate(DatabaseArgs),
    /// Copy everything from one database to another, empty one (SQLite to
    /// PostgreSQL and back).
    Copy {
        /// The database to copy from.
        #[arg(long)]
        from: String,
        /// The database to copy into; it must hold no accounts.
        #[arg(long)]
        to: String,
    },
    /// Import contacts from NDJSON (each line the JSON body of a
    /// POST /contacts) or CSV (a header row naming the columns;
    /// docs/import-export.md). Lines that fail validation are reported and
    /// skipped; contacts that exist already are skipped (or updated with
    /// --upsert), so running it again after an interruption imports only
    /// what is missing. Exits with 3 when some lines were rejected.
    Import {
        /// The file to read, or - for standard input.
        file: String,
        /// The file's format; by default from its extension (.csv is CSV,
        /// anything else NDJSON).
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// Create the tags, and the custom fields (type text), that the
        /// file names and the account lacks, listing them.
        #[arg(long)]
        create_missing: bool,
        /// Update a contact that exists already (same channel and
        /// identifier) with the line's fields instead of skipping it.
        #[arg(long)]
        upsert: bool,
        /// Account uuid or name; may be left out when there is one account.
        #[arg(long)]
        account: Option<String>,
        /// Also write every rejected line's number and error to this file
        /// (one JSON object per line).
        #[arg(long)]
        errors: Option<std::path::PathBuf>,
        /// Record a `contact_created` event for every imported contact, for
        /// the change feed and the account's webhook (off: an import is
        /// usually a migration, not news).
        #[arg(long)]
        emit_events: bool,
        /// Base of the `href` links in those events' payloads: the public
        /// address of the server that will deliver them.
        #[arg(
            long,
            env = "BELLBOOK_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Export contacts, oldest first, as CSV or NDJSON that `bellbook
    /// import` reads back (docs/import-export.md). The filters are those of
    /// GET /contacts.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
        /// Write to this file (created when the export is complete); else
        /// to standard output.
        #[arg(short = 'o', long)]
        output: Option<std::path::PathBuf>,
        /// Account uuid or name; may be left out when there is one account.
        #[arg(long)]
        account: Option<String>,
        /// Comma-separated tag names: contacts with all of them (any of
        /// them with --tags-mode any).
        #[arg(long)]
        tags: Option<String>,
        #[arg(long, value_parser = ["all", "any"])]
        tags_mode: Option<String>,
        /// whatsapp, instagram, messenger, telegram, ...
        #[arg(long)]
        source: Option<String>,
        /// Team uuid or name.
        #[arg(long)]
        team: Option<String>,
        /// Part of the name, or digits of the phone number.
        #[arg(long)]
        q: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Copy an account from Callbell, or any server speaking its API,
    /// through that API only: channels, teams, funnels, then every contact
    /// with its tags, typed custom fields, assignee and team (and with
    /// --with-messages its notes). Uuids are kept where the target has
    /// none such yet. Run it again to add what is new and update what
    /// changed; nothing is doubled. Into a database without accounts, it
    /// makes one and prints its API key once. Exits with 3 when the target
    /// refused some contacts.
    Pull {
        /// The source's API base, e.g. https://api.callbell.eu/v1.
        #[arg(long)]
        from: String,
        /// The source's API key (never printed).
        #[arg(long, env = "BELLBOOK_PULL_TOKEN", hide_env_values = true)]
        token: String,
        /// The target account (uuid or name); may be left out when the
        /// database has one account, or none (one is made).
        #[arg(long)]
        account: Option<String>,
        /// Also copy each contact's notes.
        #[arg(long)]
        with_messages: bool,
        /// Requests a second the source is sent at most.
        #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..))]
        rps: u32,
        /// Retries of a request that failed (5xx, connection error,
        /// timeout) before the pull gives up.
        #[arg(long, default_value_t = 8)]
        retries: u32,
        /// Seconds one request to the source may take.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Restore a backup made by `bellbook backup` into an empty database
    /// (SQLite or PostgreSQL). The backup is checked first and left as it
    /// is; stop the servers on the target while it runs.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Webhook deliveries (docs/webhooks.md).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Copy a SQLite database, consistent at one instant, to a new file.
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Create an account and print its first API key on standard output.
    Create {
        name: String,
        /// E-mail of the account owner (GET /auth/me reports it).
        #[arg(long, default_value = "admin@bellbook.local")]
        owner_email: String,
        #[arg(long, default_value = "Administrator")]
        owner_name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum WebhooksCommand {
    /// Per account: deliveries pending, how many of them have failed at
    /// least once, and the age of the oldest.
    Status {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key and print it on standard output (shown only once).
    Create {
        /// Account uuid or name.
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List an account's keys: names and prefixes, never secrets.
    List {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a key, by its uuid or prefix.
    Revoke {
        key: String,
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Set the password a user signs in to the dashboard with, read from a
    /// prompt (twice) on a terminal, else from the first line of standard
    /// input. Ends the sessions the old password opened.
    SetPassword {
        /// The user's e-mail.
        email: String,
        /// Account uuid or name.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Threads for blocking work (PostgreSQL's reads, which wait on a pool of
/// 16 connections anyway, and the admin commands): tokio's default of 512
/// would start one per waiting request under load (75 threads at 64
/// connections), each with its own stack and allocator arena.
const BLOCKING_THREADS: usize = 24;

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    // Log lines are formatted where they happen and written by a thread of
    // their own, in batches (one write per batch, not per line), so a line
    // per request costs requests nothing but its formatting. Nothing is
    // dropped: if the log ever fell 128 k lines behind, requests would wait.
    // The guard, held to the end of main, writes out what is left.
    let (log, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("bellbook-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log);
    match cli.log_format {
        LogFormat::Text => logs.event_format(bellbook::logging::LogLine).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let done = |outcome: CliResult| outcome.map(|()| ExitCode::SUCCESS);
    let outcome = match cli.command {
        Command::Serve(args) => done(serve(args).await),
        Command::Accounts(command) => done(accounts(command).await),
        Command::Keys(command) => done(keys(command).await),
        Command::Users(command) => done(users(command).await),
        Command::Migrate(database) => done(migrate(&database).await),
        Command::Copy { from, to } => done(copy(&from, &to).await),
        Command::Import {
            file,
            format,
            create_missing,
            upsert,
            account,
            errors,
            emit_events,
            public_url,
            database,
        } => {
            let events = emit_events.then_some(public_url.as_str());
            let format = format.unwrap_or(
                if std::path::Path::new(&file)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
                {
                    ImportFormat::Csv
                } else {
                    ImportFormat::Ndjson
                },
            );
            let options = ImportOptions {
                format,
                create_missing,
                upsert,
            };
            import(
                &file,
                options,
                account.as_deref(),
                errors.as_deref(),
                events,
                &database,
            )
            .await
        }
        Command::Export {
            format,
            output,
            account,
            tags,
            tags_mode,
            source,
            team,
            q,
            database,
        } => {
            let filters = [
                ("tags", tags),
                ("tags_mode", tags_mode),
                ("source", source),
                ("team", team),
                ("q", q),
            ];
            done(
                export(
                    format,
                    output.as_deref(),
                    account.as_deref(),
                    filters,
                    &database,
                )
                .await,
            )
        }
        Command::Webhooks(WebhooksCommand::Status { database }) => {
            done(webhook_status(&database).await)
        }
        Command::Backup { to, database } => done(backup(&database, &to).await),
        Command::Pull {
            from,
            token,
            account,
            with_messages,
            rps,
            retries,
            timeout,
            database,
        } => {
            let options = bellbook::pull::PullOptions {
                from,
                token,
                with_messages,
                rps,
                attempts: retries.saturating_add(1),
                timeout: std::time::Duration::from_secs(timeout),
            };
            pull(&options, account.as_deref(), &database).await
        }
        Command::Restore { from, database } => done(restore(&from, &database).await),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bellbook: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> CliResult {
    let listener = TcpListener::bind(args.listen).await?;
    let app = App::build(Settings::from(&args), listener).await?;
    // Before anything is announced: from here on SIGTERM stops gracefully.
    let shutdown = shutdown_signal();
    if let Some(first) = app.first_run() {
        println!(
            "Created account '{}' ({}).",
            first.account.name, first.account.uuid
        );
        println!("Its API key, shown only this once:");
        println!("{}", first.api_key);
    }
    if args.demo {
        println!(
            "Demo account loaded: API key {}",
            bellbook::demo::DEMO_API_KEY
        );
    }
    // On stdout, so scripts (and tests using port 0) can read the port.
    println!("Listening on http://{}:{}", args.listen.ip(), app.port());
    tracing::info!(
        port = app.port(),
        public_url = app.public_url(),
        "bellbook is listening"
    );
    app.run_until(shutdown).await?;
    tracing::info!("bellbook stopped");
    Ok(())
}

async fn webhook_status(database: &DatabaseArgs) -> CliResult {
    use bellbook::store::WebhookStore;

    let store = open(database).await?;
    let backlog = store.webhook_backlog().await?;
    store.close().await;
    if backlog.is_empty() {
        println!("no deliveries pending");
        return Ok(());
    }
    let now = Timestamp::now().unix();
    println!("account\tpending\tfailing\toldest pending (seconds ago)");
    for account in backlog {
        let age = account
            .oldest
            .map_or_else(|| "-".to_owned(), |t| (now - t.unix()).max(0).to_string());
        println!(
            "{} ({})\t{}\t{}\t{}",
            account.account_name, account.account_uuid, account.pending, account.failing, age
        );
    }
    Ok(())
}

async fn migrate(database: &DatabaseArgs) -> CliResult {
    // Connecting runs the migrations.
    let store = open(database).await?;
    store.close().await;
    eprintln!("database is up to date");
    Ok(())
}

async fn open(database: &DatabaseArgs) -> Result<SqlStore, bellbook::store::StoreError> {
    bellbook::store::connect(&database.database_url).await
}

async fn accounts(command: AccountsCommand) -> CliResult {
    match command {
        AccountsCommand::Create {
            name,
            owner_email,
            owner_name,
            database,
        } => {
            if name.trim().is_empty() {
                return Err("the account name must not be empty".into());
            }
            if !is_valid_email(&owner_email) {
                return Err(format!("'{owner_email}' is not a valid e-mail address").into());
            }
            let store = open(&database).await?;
            let key = issue_key("default")?;
            let account = store
                .create_account(&NewAccount {
                    uuid: PublicId::random(),
                    name: name.trim().to_owned(),
                    created_at: Timestamp::now(),
                    owner_email,
                    owner_name,
                    key: key.record,
                })
                .await?;
            eprintln!(
                "Created account '{}' ({}). Its API key, shown only this once:",
                account.name, account.uuid
            );
            println!("{}", key.secret);
            store.close().await;
        }
        AccountsCommand::List { database } => {
            let store = open(&database).await?;
            println!("{:<32}  {:<20}  name", "uuid", "created");
            for account in store.list_accounts().await? {
                println!("{}  {}  {}", account.uuid, account.created_at, account.name);
            }
            store.close().await;
        }
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::Create {
            account,
            name,
            database,
        } => {
            let store = open(&database).await?;
            let account = store
                .find_account(&account)
                .await
                .map_err(|e| no_account(&account, e))?;
            let key = issue_key(&name)?;
            let stored = store.add_api_key(account.id, &key.record).await?;
            eprintln!(
                "Created key '{}' ({}) for account '{}'. Shown only this once:",
                stored.name, stored.uuid, account.name
            );
            println!("{}", key.secret);
            store.close().await;
        }
        KeysCommand::List { account, database } => {
            let store = open(&database).await?;
            let account = store
                .find_account(&account)
                .await
                .map_err(|e| no_account(&account, e))?;
            println!(
                "{:<32}  {:<12}  {:<20}  {:<20}  name",
                "uuid", "prefix", "created", "revoked"
            );
            for key in store.list_api_keys(account.id).await? {
                let revoked = key
                    .revoked_at
                    .map_or_else(|| "-".to_owned(), |t| t.to_string());
                println!(
                    "{}  {:<12}  {}  {:<20}  {}",
                    key.uuid, key.prefix, key.created_at, revoked, key.name
                );
            }
            store.close().await;
        }
        KeysCommand::Revoke {
            key,
            account,
            database,
        } => {
            let store = open(&database).await?;
            let account = store
                .find_account(&account)
                .await
                .map_err(|e| no_account(&account, e))?;
            let revoked = store
                .revoke_api_key(account.id, &key, Timestamp::now())
                .await
                .map_err(|e| match e {
                    bellbook::store::StoreError::NotFound => {
                        format!("no key '{key}' in account '{}'", account.name).into()
                    }
                    other => Box::<dyn std::error::Error + Send + Sync>::from(other),
                })?;
            println!("Revoked key '{}' ({}).", revoked.name, revoked.prefix);
            store.close().await;
        }
    }
    Ok(())
}

async fn users(command: UsersCommand) -> CliResult {
    let UsersCommand::SetPassword {
        email,
        account,
        database,
    } = command;
    let password = read_password()?;
    if let Some(problem) = bellbook::auth::password_problem(&password) {
        return Err(problem.into());
    }
    let store = open(&database).await?;
    let account = store
        .find_account(&account)
        .await
        .map_err(|e| no_account(&account, e))?;
    let settings = store.settings(account.id).await?;
    let user = settings
        .user_with_email(&email)
        .ok_or_else(|| format!("no user '{email}' in account '{}'", account.name))?;
    let hash = tokio::task::spawn_blocking(move || bellbook::auth::hash_password(&password))
        .await?
        .map_err(|e| format!("the password could not be hashed: {e}"))?;
    store
        .set_password(account.id, user.uuid, &hash, Timestamp::now())
        .await?;
    eprintln!(
        "Password set for {} in account '{}'.",
        user.email, account.name
    );
    store.close().await;
    Ok(())
}

/// A new password: typed twice at a prompt, or a line of standard input.
fn read_password() -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    use std::io::BufRead;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            return Err("the two passwords differ; nothing was changed".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn no_account(
    name: &str,
    error: bellbook::store::StoreError,
) -> Box<dyn std::error::Error + Send + Sync> {
    match error {
        bellbook::store::StoreError::NotFound => format!("no account '{name}'").into(),
        other => other.into(),
    }
}

/// Writes `line` to stderr, above the progress bar when there is one.
fn say_above(bar: Option<&indicatif::ProgressBar>, line: &str) {
    match bar {
        Some(bar) => bar.println(line),
        None => eprintln!("{line}"),
    }
}

/// The account named by `--account`, or the only one when it is left out.
async fn account_to_use(
    store: &SqlStore,
    wanted: Option<&str>,
) -> Result<bellbook::store::AccountRecord, Box<dyn std::error::Error + Send + Sync>> {
    match wanted {
        Some(wanted) => store
            .find_account(wanted)
            .await
            .map_err(|e| no_account(wanted, e)),
        None => {
            let mut accounts = store.list_accounts().await?;
            if accounts.len() != 1 {
                return Err(format!(
                    "the database has {} accounts; say which with --account",
                    accounts.len()
                )
                .into());
            }
            Ok(accounts.remove(0))
        }
    }
}

async fn copy(from: &str, to: &str) -> CliResult {
    use bellbook::copy::CopyProgress;
    let summary = bellbook::copy::copy_database(from, to, |progress| match progress {
        CopyProgress::Account {
            number,
            accounts,
            name,
            contacts,
        } => eprintln!("account {number}/{accounts} '{name}': {contacts} contacts"),
        // A line when a table starts, per 100 000 rows, and when it is done.
        CopyProgress::Rows {
            table,
            copied,
            total,
        } if *copied == 0 || *copied == *total || copied % 100_000 == 0 => {
            eprintln!("{table}: {copied}/{total} rows");
        }
        CopyProgress::Rows { .. } => {}
        CopyProgress::Indexes { count } => eprintln!("building {count} indexes and foreign keys"),
    })
    .await?;
    eprintln!(
        "Copied {} account(s) and {} contact(s).",
        summary.accounts, summary.contacts
    );
    Ok(())
}

/// Rejected lines printed on the terminal; the rest go to `--errors` only.
const REJECTIONS_SHOWN: u64 = 100;

/// `events`: the public URL for the payloads of the events to record, or
/// `None` to record none.
async fn import(
    file: &str,
    options: ImportOptions,
    account: Option<&str>,
    errors: Option<&std::path::Path>,
    events: Option<&str>,
    database: &DatabaseArgs,
) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    use std::io::{BufReader, BufWriter, Write};

    use bellbook::import::{
        CreatedSetting, ImportReport, import as import_contacts, rejection_json,
    };
    use indicatif::{ProgressBar, ProgressStyle};

    let store = open(database).await?;
    if let Some(public_url) = events {
        store.record_events_with(std::sync::Arc::new(bellbook::webhooks::Payloads::new(
            bellbook::api::views::Links::new(public_url),
        )));
    }
    let account = account_to_use(&store, account).await?;
    let (input, size): (Box<dyn std::io::BufRead + Send>, Option<u64>) = if file == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        let opened = std::fs::File::open(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let size = opened.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, opened)), size)
    };
    let mut errors_file = match errors {
        Some(path) => Some(BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let bar = std::io::stderr().is_terminal().then(|| match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {elapsed_precise} (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    });
    let summary = |r: &ImportReport| {
        format!(
            "imported {}, updated {}, duplicates {}, rejected {} ({} lines)",
            r.imported, r.updated, r.duplicates, r.rejected, r.lines
        )
    };
    let (shown, mut write_error) = (std::cell::Cell::new(0u64), None);
    let rejections_bar = bar.clone();
    let progress_bar = bar.clone();
    let mut last_line = 0;
    let created_bar = bar.clone();
    let report = import_contacts(
        &store,
        account.id,
        input,
        options,
        |rejection| {
            if shown.get() < REJECTIONS_SHOWN {
                let line = format!("line {}: {}", rejection.line, rejection.error.message());
                say_above(rejections_bar.as_ref(), &line);
                shown.set(shown.get() + 1);
            }
            if let Some(file) = errors_file.as_mut()
                && let Err(error) = writeln!(file, "{}", rejection_json(rejection))
            {
                write_error.get_or_insert(error);
            }
        },
        |created| {
            let line = match created {
                CreatedSetting::Tag(name) => format!("created tag '{name}'"),
                CreatedSetting::CustomField(name) => {
                    format!("created custom field '{name}' (text)")
                }
            };
            say_above(created_bar.as_ref(), &line);
        },
        |report| match &progress_bar {
            Some(bar) => {
                bar.set_position(report.bytes);
                bar.set_message(summary(report));
            }
            // Without a terminal: a line per 100 000 lines read.
            None if report.lines / 100_000 > last_line / 100_000 => {
                last_line = report.lines;
                eprintln!("{}", summary(report));
            }
            None => {}
        },
    )
    .await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(mut file) = errors_file
        && let Err(error) = file.flush()
    {
        write_error.get_or_insert(error);
    }
    store.close().await;
    if let Some(error) = write_error {
        return Err(format!("writing the errors file: {error}").into());
    }
    if options.upsert {
        eprintln!(
            "Imported {} contact(s) into '{}'; updated {} existing one(s); rejected {} line(s).",
            report.imported, account.name, report.updated, report.rejected
        );
    } else {
        eprintln!(
            "Imported {} contact(s) into '{}'; skipped {} duplicate(s); rejected {} line(s).",
            report.imported, account.name, report.duplicates, report.rejected
        );
    }
    if report.rejected > REJECTIONS_SHOWN && errors.is_none() {
        eprintln!(
            "The first {REJECTIONS_SHOWN} rejections are shown; --errors FILE keeps them all."
        );
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `bellbook export`: the walk of [`bellbook::export`], written as it is
/// read, with a progress bar (or a line per 100 000 contacts) on stderr.
async fn export(
    format: ExportFormat,
    output: Option<&std::path::Path>,
    account: Option<&str>,
    filters: [(&str, Option<String>); 5],
    database: &DatabaseArgs,
) -> CliResult {
    use std::io::Write;

    use bellbook::api::export::ExportQuery;
    use bellbook::api::extract::{FromQuery, QueryParams};
    use bellbook::export::{ExportEncoder, ExportWalk};
    use bellbook::store::{ContactStore, PageStart};
    use indicatif::{ProgressBar, ProgressStyle};

    let store = open(database).await?;
    let account = account_to_use(&store, account).await?;
    let settings = store.settings(account.id).await?;
    // The filters are checked as GET /contacts checks its query; a team
    // may be named as well as given by uuid.
    let pairs = filters
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .map(|(name, value)| match name {
            "team" => {
                let uuid = settings
                    .teams
                    .iter()
                    .find(|t| t.name.eq_ignore_ascii_case(value.trim()))
                    .map_or(value, |t| t.uuid.to_string());
                ("team_uuid".to_owned(), uuid)
            }
            other => (other.to_owned(), value),
        })
        .collect();
    let query = QueryParams::checked(pairs)
        .and_then(|q| ExportQuery::from_query(&q))
        .map_err(|e| e.message().replace("query parameter", "option"))?;
    let filter = query.filter();
    let total = store
        .list_contacts(account.id, &filter, PageStart::Number(1), 1)
        .await?
        .total;
    // Written beside the output and renamed when complete, so that an
    // interrupted export is never taken for a whole one.
    let partial = output.map(|path| {
        let mut name = path.as_os_str().to_owned();
        name.push(".partial");
        std::path::PathBuf::from(name)
    });
    let mut out: Box<dyn Write> = match &partial {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        ProgressBar::new(u64::try_from(total).unwrap_or(0)).with_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} contacts {elapsed_precise} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    });
    let encoder = ExportEncoder::new(format, &settings);
    out.write_all(&encoder.start()?)?;
    let mut walk = ExportWalk::new(account.id, filter);
    let mut written = 0u64;
    while let Some(contacts) = walk.next(&store).await? {
        out.write_all(&encoder.encode(&contacts)?)?;
        let before = written;
        written += contacts.len() as u64;
        match &bar {
            Some(bar) => bar.set_position(written),
            None if written / 100_000 > before / 100_000 => {
                eprintln!("exported {written} of {total} contacts");
            }
            None => {}
        }
    }
    out.flush()?;
    drop(out);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    store.close().await;
    if let (Some(partial), Some(output)) = (&partial, output) {
        std::fs::rename(partial, output)
            .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    }
    eprintln!("Exported {written} contact(s) from '{}'.", account.name);
    Ok(())
}

async fn restore(from: &str, database: &DatabaseArgs) -> CliResult {
    let backup = std::path::Path::new(from);
    if !backup.is_file() {
        return Err(format!("{from} is not a file").into());
    }
    // Worked on in a copy: opening a database brings its schema up to date,
    // and the backup itself stays as it was taken.
    let scratch = tempfile::tempdir()?;
    let working = scratch.path().join("restoring.db");
    std::fs::copy(backup, &working).map_err(|e| format!("cannot read {from}: {e}"))?;
    let working_url = format!("sqlite://{}", working.display());
    let source = bellbook::store::connect(&working_url).await?;
    let checked = source.check_integrity().await;
    source.close().await;
    checked.map_err(|e| format!("{from} cannot be restored: {e}"))?;
    eprintln!("{from} is intact; restoring");
    copy(&working_url, &database.database_url).await
}

async fn backup(database: &DatabaseArgs, to: &str) -> CliResult {
    if std::path::Path::new(to).exists() {
        return Err(format!("{to} already exists; choose a new file").into());
    }
    let store = open(database).await?;
    store.backup_to(to).await?;
    store.close().await;
    eprintln!("Backed up to {to}");
    Ok(())
}

/// Contacts between two progress lines when stderr is not a terminal.
const PULL_LINE_EVERY: u64 = 1000;

async fn pull(
    options: &bellbook::pull::PullOptions,
    account: Option<&str>,
    database: &DatabaseArgs,
) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    use bellbook::pull::{Destination, PullEvent, pull_account};
    use indicatif::{ProgressBar, ProgressStyle};

    let store = open(database).await?;
    // As import and export choose, except that into a database without
    // accounts the pull makes one (named as asked, or "default").
    let destination = match account_to_use(&store, account).await {
        Ok(found) => Destination::Account(found.id),
        Err(_) if store.count_accounts().await? == 0 => Destination::NewAccount {
            name: account.unwrap_or("default").to_owned(),
        },
        Err(error) => return Err(error),
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} contacts {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    });
    let say = |line: &str| say_above(bar.as_ref(), line);
    let mut rejections_shown = 0u64;
    let outcome = pull_account(&store, destination, options, |event| match event {
        PullEvent::AccountCreated {
            name,
            uuid,
            api_key,
        } => {
            say(&format!(
                "Created account '{name}' ({uuid}). Its API key, shown only this once:"
            ));
            println!("{api_key}");
        }
        PullEvent::Phase(phase) => say(phase),
        PullEvent::Walking { estimated } => {
            if let Some(bar) = &bar {
                bar.set_length(estimated);
            }
        }
        PullEvent::Progress(report) => match &bar {
            Some(bar) => {
                bar.set_position(report.contacts_seen);
                bar.set_message(format!(
                    "{} created, {} updated, {} unchanged, {} rejected",
                    report.contacts.created,
                    report.contacts.updated,
                    report.contacts.unchanged,
                    report.contacts_rejected
                ));
            }
            None if report.contacts_seen % PULL_LINE_EVERY == 0 => eprintln!(
                "{} contacts: {} created, {} updated, {} unchanged, {} rejected",
                report.contacts_seen,
                report.contacts.created,
                report.contacts.updated,
                report.contacts.unchanged,
                report.contacts_rejected
            ),
            None => {}
        },
        PullEvent::Rejected { contact, reason } => {
            if rejections_shown < REJECTIONS_SHOWN {
                say(&format!("contact {contact}: {reason}"));
            }
            rejections_shown += 1;
        }
        PullEvent::Notice(notice) => say(notice),
    })
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    store.close().await;
    let report = outcome?;
    eprintln!(
        "Pulled {} contact(s) from {}.",
        report.contacts_seen, options.from
    );
    for line in report.summary_lines() {
        eprintln!("{line}");
    }
    Ok(if report.contacts_rejected > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
