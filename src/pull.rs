//! `bellbook pull`: copies an account off Callbell, or any server speaking
//! the same API, through that API alone: channels, teams and funnels
//! first, then every contact (with the tags, typed custom fields and users
//! it refers to), and with `--with-messages` each contact's notes.
//!
//! Everything it writes goes through the validation the API applies
//! (`CreateContactRequest` / `UpdateContactRequest`), and everything is
//! matched before it is written (by uuid, then by name or identifier), so
//! a run that stopped half-way is simply run again: it adds what is new,
//! updates what changed, and doubles nothing.
//!
//! The source is asked no faster than `--rps` requests a second; a 429 is
//! waited out for as long as its `Retry-After` says; 5xx answers,
//! connection errors and timeouts are retried with capped exponential
//! backoff, a bounded number of times.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::api::contacts::{CreateContactRequest, UpdateContactRequest};
use crate::api::extract::parse_fields;
use crate::domain::contact::ContactRecord;
use crate::domain::email::is_valid_email;
use crate::domain::settings::{AccountSettings, Channel, Funnel, Team, User};
use crate::domain::{
    CustomFieldType, CustomFieldValue, FieldError, FunnelId, PublicId, Source, Timestamp, fold_case,
};
use crate::error::{ApiError, describe_request_error};
use crate::store::snapshot::{AccountSnapshot, TeamSnapshot};
use crate::store::{
    AccountId, ApiKeyRecord, ChannelChanges, CustomFieldChanges, FunnelChanges, NewAccount,
    NewChannel, NewCustomField, NewFunnel, NewTeam, NewUser, Store, StoreError, TeamChanges,
};

/// The deepest `page` of `GET /contacts` a source serves (SPEC §4): a
/// source without cursors cannot be walked further.
const MAX_CONTACT_PAGE: u32 = 500;
/// Most pages of a settings list (`GET /teams`, `GET /channels`) read.
const MAX_SETTINGS_PAGES: u32 = 1000;
/// Most pages of one contact's messages read.
const MAX_MESSAGE_PAGES: u32 = 10_000;
/// The first wait after a failure; it doubles per failure up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Longest `Retry-After` honoured as given; longer ones are waited this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// 429s tolerated for one request before the source counts as unusable.
const MAX_THROTTLED: u32 = 100;
/// Target messages read per page when looking for notes already copied.
const TARGET_MESSAGES_PAGE: u32 = 100;

/// What `bellbook pull` was asked to do.
pub struct PullOptions {
    /// The source's API base, e.g. `https://api.callbell.eu/v1`.
    pub from: String,
    /// The source's API key. Never logged nor printed (see `Debug`).
    pub token: String,
    pub with_messages: bool,
    /// Requests a second the source is sent at most.
    pub rps: u32,
    /// Attempts of one request (the first one included) before giving up.
    pub attempts: u32,
    /// How long one request may take.
    pub timeout: Duration,
}

impl fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("from", &self.from)
            .field("token", &"<redacted>")
            .field("with_messages", &self.with_messages)
            .field("rps", &self.rps)
            .field("attempts", &self.attempts)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where the pulled account goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Into this existing account.
    Account(AccountId),
    /// Into a new account of this name, made with the source's teams,
    /// channels, funnels and users (uuids and all): the database has none.
    NewAccount { name: String },
}

/// How many objects of one kind were created, updated, or found as the
/// source has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl Tally {
    fn count(&mut self, change: Change) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    fn from_changed(changed: bool) -> Change {
        if changed {
            Change::Updated
        } else {
            Change::Unchanged
        }
    }

    /// A setting the target had already, or one the pull made.
    fn from_existed(existed: bool) -> Change {
        if existed {
            Change::Unchanged
        } else {
            Change::Created
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone, Default)]
pub struct PullReport {
    pub channels: Tally,
    pub teams: Tally,
    pub funnels: Tally,
    pub users: Tally,
    pub tags: Tally,
    pub custom_fields: Tally,
    pub contacts: Tally,
    /// Notes copied (`created`) or found copied already (`unchanged`).
    pub notes: Tally,
    /// Contacts the walk has met so far.
    pub contacts_seen: u64,
    /// Contacts the target refused (each was reported with its reason).
    pub contacts_rejected: u64,
    /// Messages that are not notes (sent and received ones): bellbook
    /// sends no messages, so it keeps none.
    pub messages_skipped: u64,
}

impl PullReport {
    /// One line per kind, for the summary printed at the end.
    pub fn summary_lines(&self) -> Vec<String> {
        let kinds = [
            ("channels", self.channels),
            ("teams", self.teams),
            ("funnels", self.funnels),
            ("users", self.users),
            ("tags", self.tags),
            ("custom fields", self.custom_fields),
            ("contacts", self.contacts),
            ("notes", self.notes),
        ];
        let mut lines: Vec<String> = kinds
            .iter()
            .map(|(kind, t)| {
                format!(
                    "{kind}: {} created, {} updated, {} unchanged",
                    t.created, t.updated, t.unchanged
                )
            })
            .collect();
        if self.contacts_rejected > 0 {
            lines.push(format!(
                "contacts rejected: {} (see the reasons above)",
                self.contacts_rejected
            ));
        }
        if self.messages_skipped > 0 {
            lines.push(format!(
                "messages skipped: {} (not notes: bellbook keeps notes only)",
                self.messages_skipped
            ));
        }
        lines
    }
}

/// What a pull tells whoever runs it, as it goes.
#[derive(Debug)]
pub enum PullEvent<'a> {
    /// The target account was made for this pull; its key is shown now,
    /// once, so a pull that fails later does not lose it.
    AccountCreated {
        name: &'a str,
        uuid: PublicId,
        api_key: &'a str,
    },
    /// A step begins.
    Phase(&'a str),
    /// The contact walk begins; at most about this many contacts.
    Walking { estimated: u64 },
    /// A contact was handled.
    Progress(&'a PullReport),
    /// The target refused a contact; the pull goes on.
    Rejected { contact: &'a str, reason: &'a str },
    /// Something worth knowing that stops nothing.
    Notice(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("--from must be an http:// or https:// URL, not '{0}'")]
    BadUrl(String),
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
    #[error(
        "GET {url} failed {attempts} times, giving up (last: {last}); run the pull again once the source answers: it continues where it stopped"
    )]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    #[error("GET {url} was answered {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("GET {url} answered something other than {expected}: {reason}")]
    Unexpected {
        url: String,
        expected: &'static str,
        reason: String,
    },
    #[error("cannot make the target account: {0}")]
    Randomness(#[from] getrandom::Error),
    #[error("target database: {0}")]
    Store(#[from] StoreError),
}

/// Copies the source's account into `destination`.
pub async fn pull_account(
    store: &dyn Store,
    destination: Destination,
    options: &PullOptions,
    mut events: impl FnMut(PullEvent<'_>),
) -> Result<PullReport, PullError> {
    let source = SourceApi::new(options)?;
    let mut report = PullReport::default();
    events(PullEvent::Phase(
        "reading the source's channels, teams, funnels and users",
    ));
    let listed = SourceSettings::read(&source, &mut events).await?;
    let (account, born_with) = match destination {
        Destination::Account(account) => (account, None),
        Destination::NewAccount { name } => {
            create_account(store, &name, &listed, &mut events).await?
        }
    };
    let mut target = Target::new(store, account, &listed).await?;
    let mut scratch = PullReport::default();
    let settings_report = match born_with {
        // What the account was made with counts as created; the sync below
        // only finds it there.
        Some(born) => {
            report.channels.created = born.channels.len() as u64;
            report.teams.created = born.teams.len() as u64;
            report.funnels.created = born.funnels.len() as u64;
            report.users.created = born.users.len() as u64;
            target.seen_users = born.users.iter().map(|u| fold_case(&u.email)).collect();
            &mut scratch
        }
        None => &mut report,
    };
    events(PullEvent::Phase("copying channels, teams and funnels"));
    for channel in &listed.channels {
        target.sync_channel(channel, settings_report).await?;
    }
    for team in &listed.teams {
        target.sync_team(team, settings_report).await?;
    }
    for funnel in &listed.funnels {
        target.sync_funnel(funnel, settings_report).await?;
    }
    events(PullEvent::Phase("copying contacts"));
    walk_contacts(&source, &mut target, options, &mut report, &mut events).await?;
    target.discard_channels(&mut events).await?;
    Ok(report)
}

// ---------------------------------------------------------------------------
// The source: paced, retried GETs.

/// The source API, asked through one client, paced, with retries.
struct SourceApi {
    client: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    pacer: Pacer,
    attempts: u32,
}

/// Spaces requests at least `interval` apart (and so never more than the
/// rate in any second), whoever sends them.
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rps: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rps.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// What a GET came back with.
enum Answer {
    Json(Value),
    /// The source does not offer this (404, 403, 405, 501).
    Absent,
}

impl SourceApi {
    fn new(options: &PullOptions) -> Result<SourceApi, PullError> {
        let bad_url = || PullError::BadUrl(options.from.clone());
        let mut base = Url::parse(options.from.trim()).map_err(|_| bad_url())?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad_url());
        }
        // `https://host` means its API at `https://host/v1`.
        if base.path() == "/" || base.path().is_empty() {
            base.set_path("/v1");
        }
        base.set_query(None);
        base.set_fragment(None);
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", options.token.trim()))
            .map_err(|_| PullError::Client("the token holds characters a header cannot".into()))?;
        // Kept out of any debug output reqwest or hyper may write.
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("bellbook-pull/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PullError::Client(e.to_string()))?;
        Ok(SourceApi {
            client,
            base,
            authorization,
            pacer: Pacer::new(options.rps),
            attempts: options.attempts.max(1),
        })
    }

    /// `base/segments…?query`, each segment escaped.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The JSON answer of a GET the source must offer.
    async fn get(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Value, PullError> {
        let url = self.url(segments, query);
        match self.fetch(&url, false).await? {
            Answer::Json(value) => Ok(value),
            Answer::Absent => Err(PullError::Refused {
                url: url.to_string(),
                status: 404,
                message: "not found".into(),
            }),
        }
    }

    /// The JSON answer of a GET the source may not offer (`None` then).
    async fn get_optional(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, PullError> {
        let url = self.url(segments, query);
        Ok(match self.fetch(&url, true).await? {
            Answer::Json(value) => Some(value),
            Answer::Absent => None,
        })
    }

    async fn fetch(&self, url: &Url, optional: bool) -> Result<Answer, PullError> {
        let mut failures = 0u32;
        let mut throttled = 0u32;
        loop {
            self.pacer.wait().await;
            let sent = self
                .client
                .get(url.clone())
                .header(AUTHORIZATION, self.authorization.clone())
                .send()
                .await;
            let (last, wait) = match sent {
                Err(error) => (describe_request_error(&error), None),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        throttled += 1;
                        if throttled > MAX_THROTTLED {
                            return Err(PullError::GaveUp {
                                url: url.to_string(),
                                attempts: throttled,
                                last: "429 Too Many Requests, every time".into(),
                            });
                        }
                        // Not a failure: the source asked to wait, and how long.
                        tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
                        continue;
                    }
                    if status.is_success() {
                        match response.bytes().await {
                            Ok(body) => match serde_json::from_slice::<Value>(&body) {
                                Ok(value) => return Ok(Answer::Json(value)),
                                // Cut off mid-way, most likely: worth another try.
                                Err(error) => (format!("a body that is not JSON ({error})"), None),
                            },
                            Err(error) => (describe_request_error(&error), None),
                        }
                    } else if status.is_server_error() {
                        (format!("HTTP {status}"), retry_after)
                    } else if optional && matches!(status.as_u16(), 403 | 404 | 405 | 501) {
                        return Ok(Answer::Absent);
                    } else {
                        let message = match status {
                            StatusCode::UNAUTHORIZED => {
                                "the source refused the token; check --token".to_owned()
                            }
                            _ => error_message(response).await,
                        };
                        return Err(PullError::Refused {
                            url: url.to_string(),
                            status: status.as_u16(),
                            message,
                        });
                    }
                }
            };
            failures += 1;
            if failures >= self.attempts {
                return Err(PullError::GaveUp {
                    url: url.to_string(),
                    attempts: failures,
                    last,
                });
            }
            tracing::debug!(%url, failures, reason = %last, "retrying");
            tokio::time::sleep(wait.unwrap_or_else(|| backoff(failures))).await;
        }
    }
}

/// `FIRST_BACKOFF · 2^(failures-1)`, capped, plus up to a quarter more at
/// random so that many pulls after one outage do not return in step.
fn backoff(failures: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16));
    let wait = doubled.min(MAX_BACKOFF);
    let jitter = getrandom::u32().unwrap_or(0) % 1000;
    wait + wait / 4 * jitter / 1000
}

/// A 429's or 503's `Retry-After`, in seconds (capped).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The `error.message` of a Callbell-shaped error body, else its start.
async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let message = parsed.as_ref().and_then(|body| {
        body.pointer("/error/message")
            .or_else(|| body.get("message"))
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    message.unwrap_or_else(|| text.chars().take(200).collect())
}

// ---------------------------------------------------------------------------
// The source's objects, read leniently: what bellbook needs, nothing more.

/// `null` read as the type's default (Callbell sends `"tags": null` at times).
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
struct SourceChannel {
    uuid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    main: bool,
    /// `true`/`false` in bellbook and Callbell's examples, a time or `null`
    /// elsewhere.
    #[serde(default, rename = "discardedAt")]
    discarded_at: Value,
}

impl SourceChannel {
    fn discarded(&self) -> bool {
        match &self.discarded_at {
            Value::Bool(discarded) => *discarded,
            Value::String(at) => !at.is_empty(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct SourceTeam {
    uuid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    default: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct SourceFunnel {
    uuid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default)]
    emoji: Option<String>,
    #[serde(default)]
    position: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
struct SourceUser {
    #[serde(default)]
    uuid: Option<String>,
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    owner: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceContact {
    uuid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    phone_number: String,
    source: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    funnel_id: Option<String>,
    #[serde(default)]
    closed_at: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tags: Vec<String>,
    #[serde(default)]
    assigned_user: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    custom_fields: Map<String, Value>,
    #[serde(default)]
    custom_fields_metadata: Option<Map<String, Value>>,
    #[serde(default)]
    team: Option<SourceTeam>,
    #[serde(default)]
    channel: Option<SourceChannel>,
    #[serde(default)]
    bsuid: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceMessage {
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// The `key` array of a listing, each item read as `T`.
fn items<T: DeserializeOwned>(
    body: &Value,
    key: &str,
    url: &Url,
    expected: &'static str,
) -> Result<Vec<T>, PullError> {
    let unexpected = |reason: String| PullError::Unexpected {
        url: url.to_string(),
        expected,
        reason,
    };
    let list = body
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| unexpected(format!("no '{key}' array")))?;
    list.iter()
        .map(|item| serde_json::from_value(item.clone()).map_err(|e| unexpected(e.to_string())))
        .collect()
}

/// `meta.pages` of a listing (1 when absent).
fn page_total(body: &Value) -> u32 {
    body.pointer("/meta/pages")
        .and_then(Value::as_u64)
        .map_or(1, |p| u32::try_from(p).unwrap_or(u32::MAX))
}

/// What the source has configured, as far as its API tells.
struct SourceSettings {
    channels: Vec<SourceChannel>,
    teams: Vec<SourceTeam>,
    funnels: Vec<SourceFunnel>,
    /// From `GET /users`, when the source answers it.
    users: Vec<SourceUser>,
    /// The owner's e-mail and name, from `GET /auth/me`.
    owner: Option<(String, String)>,
}

impl SourceSettings {
    async fn read(
        source: &SourceApi,
        events: &mut impl FnMut(PullEvent<'_>),
    ) -> Result<SourceSettings, PullError> {
        let channels = read_pages(source, "channels", "a channel list").await?;
        let teams = read_pages(source, "teams", "a team list").await?;
        let funnels_url = source.url(&["funnels"], &[]);
        let mut funnels: Vec<SourceFunnel> = match source.get_optional(&["funnels"], &[]).await? {
            Some(body) => items(&body, "funnels", &funnels_url, "a funnel list")?,
            None => Vec::new(),
        };
        funnels.sort_by_key(|f| f.position.unwrap_or(i64::MAX));
        let users_url = source.url(&["users"], &[]);
        let users = match source.get_optional(&["users"], &[]).await? {
            Some(body) => items(&body, "users", &users_url, "a user list")?,
            None => {
                events(PullEvent::Notice(
                    "the source has no GET /users: users are named after their e-mail addresses",
                ));
                Vec::new()
            }
        };
        let owner = source
            .get_optional(&["auth", "me"], &[])
            .await?
            .and_then(|me| {
                let email = me.get("user_email")?.as_str()?.trim().to_owned();
                let name = me
                    .get("user_name")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map_or_else(|| name_from_email(&email), str::to_owned);
                is_valid_email(&email).then_some((email, name))
            });
        Ok(SourceSettings {
            channels,
            teams,
            funnels,
            users,
            owner,
        })
    }
}

/// Every page of `GET /{what}` (`{what: [...], meta: {pages}}`).
async fn read_pages<T: DeserializeOwned>(
    source: &SourceApi,
    what: &'static str,
    expected: &'static str,
) -> Result<Vec<T>, PullError> {
    let mut all = Vec::new();
    let mut page = 1u32;
    loop {
        let number = page.to_string();
        let query = [("page", number.as_str())];
        let body = source.get(&[what], &query).await?;
        let found: Vec<T> = items(&body, what, &source.url(&[what], &query), expected)?;
        let empty = found.is_empty();
        all.extend(found);
        if empty || page >= page_total(&body).min(MAX_SETTINGS_PAGES) {
            return Ok(all);
        }
        page += 1;
    }
}

/// `john.doe@x` → "John Doe": a readable name for a user the source does
/// not name.
fn name_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let words: Vec<String> = local
        .split(['.', '_', '-', '+'])
        .filter(|w| !w.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect();
    if words.is_empty() {
        email.to_owned()
    } else {
        words.join(" ")
    }
}

// ---------------------------------------------------------------------------
// A new target account, made with the source's settings.

/// Makes the account, with the source's teams (the default one too),
/// channels (the main ones too), funnels and users under their own uuids,
/// and an API key shown once; answers it with what it was made with. If a
/// uuid is taken in this database by another account, the account is made
/// the ordinary way instead (answered with `None`) and the settings come
/// along one by one.
async fn create_account(
    store: &dyn Store,
    name: &str,
    listed: &SourceSettings,
    events: &mut impl FnMut(PullEvent<'_>),
) -> Result<(AccountId, Option<AccountSnapshot>), PullError> {
    let key = crate::auth::issue_key("default")?;
    let now = Timestamp::now();
    let (owner_email, owner_name) = listed.owner.clone().unwrap_or_else(|| {
        listed
            .users
            .iter()
            .find(|u| u.owner && is_valid_email(u.email.trim()))
            .map_or_else(
                || {
                    (
                        "admin@bellbook.local".to_owned(),
                        "Administrator".to_owned(),
                    )
                },
                |u| (u.email.trim().to_owned(), user_name(u)),
            )
    });
    let snapshot = account_snapshot(name, &key.record, listed, (&owner_email, &owner_name));
    let (account, born_with) = match store.import_account(&snapshot).await {
        Ok(true) => (
            store.find_account(&snapshot.uuid.to_string()).await?,
            Some(snapshot),
        ),
        Ok(false) | Err(StoreError::Conflict(_)) => {
            events(PullEvent::Notice(
                "some of the source's uuids are taken in this database: the account is made \
                 with its own default team and channel, and the source's settings added to it",
            ));
            let account = store
                .create_account(&NewAccount {
                    uuid: PublicId::random(),
                    name: name.to_owned(),
                    created_at: now,
                    owner_email,
                    owner_name,
                    key: key.record.clone(),
                })
                .await?;
            (account, None)
        }
        Err(other) => return Err(other.into()),
    };
    events(PullEvent::AccountCreated {
        name: &account.name,
        uuid: account.uuid,
        api_key: &key.secret,
    });
    Ok((account.id, born_with))
}

fn account_snapshot(
    name: &str,
    key: &crate::store::NewApiKey,
    listed: &SourceSettings,
    (owner_email, owner_name): (&str, &str),
) -> AccountSnapshot {
    let now = Timestamp::now();
    let mut emails = HashSet::new();
    let mut users: Vec<User> = Vec::new();
    let mut uuids = HashSet::new();
    let mut fresh_uuid = |wanted: Option<&str>| {
        let id = wanted
            .and_then(|w| w.parse::<PublicId>().ok())
            .filter(|id| !uuids.contains(id))
            .unwrap_or_else(PublicId::random);
        uuids.insert(id);
        id
    };
    let owner = User {
        id: 0,
        uuid: fresh_uuid(
            listed
                .users
                .iter()
                .find(|u| fold_case(&u.email) == fold_case(owner_email))
                .and_then(|u| u.uuid.as_deref()),
        ),
        email: owner_email.to_owned(),
        name: owner_name.to_owned(),
        owner: true,
        created_at: now,
    };
    emails.insert(fold_case(owner_email));
    users.push(owner);
    for user in &listed.users {
        let email = user.email.trim();
        if is_valid_email(email) && emails.insert(fold_case(email)) {
            users.push(User {
                id: 0,
                uuid: fresh_uuid(user.uuid.as_deref()),
                email: email.to_owned(),
                name: user_name(user),
                owner: false,
                created_at: now,
            });
        }
    }
    let mut teams: Vec<TeamSnapshot> = Vec::new();
    for team in &listed.teams {
        let name = team.name.trim();
        if name.is_empty()
            || teams
                .iter()
                .any(|t| fold_case(&t.team.name) == fold_case(name))
        {
            continue;
        }
        let is_default = team.default && !teams.iter().any(|t| t.team.is_default);
        teams.push(TeamSnapshot {
            team: Team {
                id: 0,
                uuid: fresh_uuid(Some(&team.uuid)),
                name: name.to_owned(),
                is_default,
                members: 0,
                created_at: now,
            },
            members: Vec::new(),
        });
    }
    match teams.iter_mut().find(|t| t.team.is_default) {
        Some(_) => {}
        None => match teams.first_mut() {
            Some(first) => first.team.is_default = true,
            None => teams.push(TeamSnapshot {
                team: Team {
                    id: 0,
                    uuid: PublicId::random(),
                    name: "General".to_owned(),
                    is_default: true,
                    members: 0,
                    created_at: now,
                },
                members: Vec::new(),
            }),
        },
    }
    let mut channels: Vec<Channel> = Vec::new();
    for channel in &listed.channels {
        let Ok(kind) = channel.kind.parse::<Source>() else {
            continue;
        };
        let main = channel.main && !channels.iter().any(|c| c.kind == kind && c.main);
        channels.push(Channel {
            id: 0,
            uuid: fresh_uuid(Some(&channel.uuid)),
            title: channel_title(channel, kind),
            kind,
            main,
            // Discarded ones are discarded after the walk: their contacts
            // could not be created on them otherwise.
            discarded_at: None,
            created_at: now,
        });
    }
    if !channels
        .iter()
        .any(|c| c.kind == Source::Whatsapp && c.main)
    {
        channels.push(Channel::default_whatsapp(now));
    }
    let mut funnel_ids = HashSet::new();
    let funnels = listed
        .funnels
        .iter()
        .filter(|f| !f.name.trim().is_empty())
        .zip(1..)
        .map(|(funnel, position)| Funnel {
            id: 0,
            uuid: funnel
                .uuid
                .parse::<FunnelId>()
                .ok()
                .filter(|id| funnel_ids.insert(*id))
                .unwrap_or_else(FunnelId::random),
            name: funnel.name.trim().to_owned(),
            emoji: funnel.emoji.clone().filter(|e| !e.is_empty()),
            position: funnel.position.unwrap_or(position),
            created_at: now,
        })
        .collect();
    AccountSnapshot {
        id: None,
        uuid: PublicId::random(),
        name: name.to_owned(),
        created_at: now,
        contact_seq: 0,
        api_keys: vec![ApiKeyRecord {
            uuid: key.uuid,
            account_id: AccountId(0),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            secret_hash: key.secret_hash.clone(),
            created_at: key.created_at,
            revoked_at: None,
        }],
        users,
        teams,
        channels,
        bots: Vec::new(),
        funnels,
        tags: Vec::new(),
        custom_fields: Vec::new(),
        contacts: Vec::new(),
    }
}

fn user_name(user: &SourceUser) -> String {
    user.name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| name_from_email(user.email.trim()), str::to_owned)
}

fn channel_title(channel: &SourceChannel, kind: Source) -> String {
    match channel.title.trim() {
        "" => kind.as_str().to_owned(),
        title => title.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// The target account: settings made to match, then contacts.

/// Creates with `preferred` as the new object's uuid when given, and with a
/// fresh one when that uuid is taken in the database (by another account:
/// uuids are unique database-wide).
async fn keeping_uuid<Id: Copy, T, F, Fut>(
    preferred: Option<Id>,
    random: fn() -> Id,
    create: F,
) -> Result<T, StoreError>
where
    F: Fn(Id) -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    if let Some(id) = preferred {
        match create(id).await {
            Err(StoreError::Conflict(_)) => {}
            other => return other,
        }
    }
    create(random()).await
}

struct Target<'s> {
    store: &'s dyn Store,
    account: AccountId,
    settings: Arc<AccountSettings>,
    /// Source uuid → target uuid.
    channels: HashMap<String, PublicId>,
    teams: HashMap<String, PublicId>,
    funnels: HashMap<String, FunnelId>,
    /// Channels the source has discarded: discarded at the end.
    to_discard: Vec<PublicId>,
    /// Source users by folded e-mail, for their names and uuids.
    source_users: HashMap<String, SourceUser>,
    /// Folded names (e-mails) already counted in the report.
    seen_tags: HashSet<String>,
    seen_fields: HashSet<String>,
    seen_users: HashSet<String>,
}

/// What a source contact asks of its target contact, in target terms.
struct Wanted {
    uuid: Option<PublicId>,
    created_at: Option<Timestamp>,
    name: String,
    identifier: String,
    source: Source,
    channel: Option<PublicId>,
    team: Option<PublicId>,
    tags: Vec<String>,
    /// Field name → value as a request sends it.
    fields: Vec<(String, Value)>,
    assigned_user: Option<String>,
    note: Option<String>,
    bsuid: Option<String>,
    funnel: Option<FunnelId>,
    closed_at: Option<Timestamp>,
}

/// What became of one contact.
enum Outcome {
    Done(Change, PublicId),
    Rejected(String),
}

/// A store refusal that concerns this contact alone (it goes on the
/// rejected list) or one that stops the pull (storage trouble).
fn refusal(error: StoreError) -> Result<String, PullError> {
    match error {
        StoreError::Conflict(conflict) => Ok(conflict.message),
        StoreError::NotFound => Ok("it was deleted in the target meanwhile".to_owned()),
        other => Err(other.into()),
    }
}

/// A validation failure as one line: the API's message and each detail.
fn validation_message(details: Vec<FieldError>) -> String {
    let parts: Vec<String> = details
        .iter()
        .map(|d| format!("{}: {}", d.field, d.message))
        .collect();
    let error = ApiError::validation(details);
    format!("{} ({})", error.message(), parts.join("; "))
}

impl<'s> Target<'s> {
    async fn new(
        store: &'s dyn Store,
        account: AccountId,
        listed: &SourceSettings,
    ) -> Result<Target<'s>, PullError> {
        Ok(Target {
            store,
            account,
            settings: store.settings(account).await?,
            channels: HashMap::new(),
            teams: HashMap::new(),
            funnels: HashMap::new(),
            to_discard: Vec::new(),
            source_users: listed
                .users
                .iter()
                .map(|u| (fold_case(&u.email), u.clone()))
                .collect(),
            seen_tags: HashSet::new(),
            seen_fields: HashSet::new(),
            seen_users: HashSet::new(),
        })
    }

    /// After making a setting: one made meanwhile by someone else (a
    /// conflict) is as good; either way the settings are read again.
    async fn made<T>(&mut self, created: Result<T, StoreError>) -> Result<(), PullError> {
        match created {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(other) => return Err(other.into()),
        }
        self.refresh().await?;
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), StoreError> {
        // Cached by the store until something changes: cheap when nothing did.
        self.settings = self.store.settings(self.account).await?;
        Ok(())
    }

    /// The target channel for the source's, made or brought in line.
    async fn sync_channel(
        &mut self,
        wanted: &SourceChannel,
        report: &mut PullReport,
    ) -> Result<Option<PublicId>, PullError> {
        if let Some(uuid) = self.channels.get(&wanted.uuid) {
            return Ok(Some(*uuid));
        }
        let Ok(kind) = wanted.kind.parse::<Source>() else {
            return Ok(None);
        };
        let title = channel_title(wanted, kind);
        let preferred = wanted.uuid.parse::<PublicId>().ok();
        let found = preferred
            .and_then(|id| self.settings.channel(id))
            .map(|c| (c, true))
            .or_else(|| {
                self.settings
                    .channels
                    .iter()
                    .find(|c| c.kind == kind && fold_case(&c.title) == fold_case(&title))
                    .map(|c| (c, false))
            });
        let uuid = match found {
            Some((channel, by_uuid)) => {
                let changes = ChannelChanges {
                    title: (by_uuid && channel.title != title).then(|| title.clone()),
                    make_main: wanted.main && !channel.main && channel.is_active(),
                    discard: None,
                };
                let changed = changes.title.is_some() || changes.make_main;
                if changed {
                    self.store
                        .update_channel(self.account, channel.uuid, &changes)
                        .await?;
                }
                report.channels.count(Change::from_changed(changed));
                channel.uuid
            }
            None => {
                let (store, account) = (self.store, self.account);
                let created = keeping_uuid(preferred, PublicId::random, |uuid| {
                    let channel = NewChannel {
                        uuid,
                        title: title.clone(),
                        kind,
                        main: Some(wanted.main),
                    };
                    async move { store.create_channel(account, &channel).await }
                })
                .await?;
                report.channels.count(Change::Created);
                created.uuid
            }
        };
        if wanted.discarded() {
            self.to_discard.push(uuid);
        }
        self.channels.insert(wanted.uuid.clone(), uuid);
        self.refresh().await?;
        Ok(Some(uuid))
    }

    async fn sync_team(
        &mut self,
        wanted: &SourceTeam,
        report: &mut PullReport,
    ) -> Result<Option<PublicId>, PullError> {
        if let Some(uuid) = self.teams.get(&wanted.uuid) {
            return Ok(Some(*uuid));
        }
        let name = wanted.name.trim();
        if name.is_empty() {
            return Ok(None);
        }
        let preferred = wanted.uuid.parse::<PublicId>().ok();
        let found = preferred
            .and_then(|id| self.settings.team(id))
            .map(|t| (t, true))
            .or_else(|| {
                self.settings
                    .teams
                    .iter()
                    .find(|t| fold_case(&t.name) == fold_case(name))
                    .map(|t| (t, false))
            });
        let uuid = match found {
            Some((team, by_uuid)) => {
                let changes = TeamChanges {
                    name: (by_uuid && team.name != name).then(|| name.to_owned()),
                    make_default: wanted.default && !team.is_default,
                    member_ids: None,
                };
                let changed = changes.name.is_some() || changes.make_default;
                if changed {
                    self.store
                        .update_team(self.account, team.uuid, &changes)
                        .await?;
                }
                report.teams.count(Change::from_changed(changed));
                team.uuid
            }
            None => {
                let (store, account) = (self.store, self.account);
                let created = keeping_uuid(preferred, PublicId::random, |uuid| {
                    let team = NewTeam {
                        uuid,
                        name: name.to_owned(),
                        is_default: wanted.default,
                        member_ids: Vec::new(),
                    };
                    async move { store.create_team(account, &team).await }
                })
                .await?;
                report.teams.count(Change::Created);
                created.uuid
            }
        };
        self.teams.insert(wanted.uuid.clone(), uuid);
        self.refresh().await?;
        Ok(Some(uuid))
    }

    async fn sync_funnel(
        &mut self,
        wanted: &SourceFunnel,
        report: &mut PullReport,
    ) -> Result<(), PullError> {
        let name = wanted.name.trim();
        if name.is_empty() || self.funnels.contains_key(&wanted.uuid) {
            return Ok(());
        }
        let emoji = wanted.emoji.clone().filter(|e| !e.is_empty());
        let preferred = wanted.uuid.parse::<FunnelId>().ok();
        let found = preferred
            .and_then(|id| self.settings.funnel(id))
            .map(|f| (f, true))
            .or_else(|| {
                self.settings
                    .funnels
                    .iter()
                    .find(|f| fold_case(&f.name) == fold_case(name))
                    .map(|f| (f, false))
            });
        let uuid = match found {
            Some((funnel, by_uuid)) => {
                let changes = FunnelChanges {
                    name: (by_uuid && funnel.name != name).then(|| name.to_owned()),
                    emoji: (funnel.emoji != emoji).then(|| emoji.clone()),
                    position: None,
                };
                let changed = changes.name.is_some() || changes.emoji.is_some();
                if changed {
                    self.store
                        .update_funnel(self.account, funnel.uuid, &changes)
                        .await?;
                }
                report.funnels.count(Change::from_changed(changed));
                funnel.uuid
            }
            None => {
                let (store, account) = (self.store, self.account);
                let created = keeping_uuid(preferred, FunnelId::random, |uuid| {
                    let funnel = NewFunnel {
                        uuid,
                        name: name.to_owned(),
                        emoji: emoji.clone(),
                        position: None,
                    };
                    async move { store.create_funnel(account, &funnel).await }
                })
                .await?;
                report.funnels.count(Change::Created);
                created.uuid
            }
        };
        self.funnels.insert(wanted.uuid.clone(), uuid);
        self.refresh().await?;
        Ok(())
    }

    async fn ensure_tag(&mut self, name: &str, report: &mut PullReport) -> Result<(), PullError> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(());
        }
        let key = fold_case(name);
        let exists = self.settings.tag_named(name).is_some();
        if !exists {
            let created = self.store.create_tag(self.account, name).await;
            self.made(created).await?;
        }
        if self.seen_tags.insert(key) {
            report.tags.count(Change::from_existed(exists));
        }
        Ok(())
    }

    /// A custom field of this name, with at least `options` when it
    /// chooses from a list.
    async fn ensure_field(
        &mut self,
        name: &str,
        kind: CustomFieldType,
        options: &[String],
        report: &mut PullReport,
    ) -> Result<(), PullError> {
        let key = fold_case(name);
        let change = match self.settings.custom_field_named(name) {
            Some(field) => {
                let missing: Vec<String> = options
                    .iter()
                    .filter(|o| !field.options.iter().any(|f| fold_case(f) == fold_case(o)))
                    .cloned()
                    .collect();
                if field.kind.has_options() && !missing.is_empty() {
                    let mut all = field.options.clone();
                    all.extend(missing);
                    let changes = CustomFieldChanges {
                        name: None,
                        options: Some(all),
                    };
                    self.store
                        .update_custom_field(self.account, field.id, &changes)
                        .await?;
                    self.refresh().await?;
                    Change::Updated
                } else {
                    Change::Unchanged
                }
            }
            None => {
                if kind.has_options() && options.is_empty() {
                    // Nothing to choose from and no value: nothing to make.
                    return Ok(());
                }
                let field = NewCustomField {
                    name: name.trim().to_owned(),
                    kind,
                    options: if kind.has_options() {
                        options.to_vec()
                    } else {
                        Vec::new()
                    },
                };
                let created = self.store.create_custom_field(self.account, &field).await;
                self.made(created).await?;
                Change::Created
            }
        };
        // Options added later count once more; a plain re-sighting does not.
        if self.seen_fields.insert(key) || change == Change::Updated {
            report.custom_fields.count(change);
        }
        Ok(())
    }

    async fn ensure_user(&mut self, email: &str, report: &mut PullReport) -> Result<(), PullError> {
        let email = email.trim();
        let key = fold_case(email);
        if !is_valid_email(email) {
            // The contact's validation names the problem.
            return Ok(());
        }
        let exists = self.settings.user_with_email(email).is_some();
        if !exists {
            let known = self.source_users.get(&key);
            let name = known.map_or_else(|| name_from_email(email), user_name);
            let preferred = known
                .and_then(|u| u.uuid.as_deref())
                .and_then(|u| u.parse::<PublicId>().ok());
            let (store, account) = (self.store, self.account);
            let created = keeping_uuid(preferred, PublicId::random, |uuid| {
                let user = NewUser {
                    uuid,
                    email: email.to_owned(),
                    name: name.clone(),
                };
                async move { store.create_user(account, &user).await }
            })
            .await;
            self.made(created).await?;
        }
        if self.seen_users.insert(key) {
            report.users.count(Change::from_existed(exists));
        }
        Ok(())
    }

    /// Makes the settings the contact refers to, and says what the
    /// contact should be in target terms (or why it cannot be).
    async fn wanted(
        &mut self,
        contact: &SourceContact,
        report: &mut PullReport,
        events: &mut impl FnMut(PullEvent<'_>),
    ) -> Result<Result<Wanted, String>, PullError> {
        let Ok(source) = contact.source.parse::<Source>() else {
            return Ok(Err(format!("unknown source '{}'", contact.source)));
        };
        let channel = match &contact.channel {
            Some(channel) => match self.sync_channel(channel, report).await? {
                Some(uuid) => Some(uuid),
                None => {
                    return Ok(Err(format!(
                        "its channel '{}' is of unknown type '{}'",
                        channel.uuid, channel.kind
                    )));
                }
            },
            None => None,
        };
        let team = match &contact.team {
            Some(team) => self.sync_team(team, report).await?,
            None => None,
        };
        for tag in &contact.tags {
            self.ensure_tag(tag, report).await?;
        }
        let fields = self.wanted_fields(contact, report).await?;
        if let Some(email) = contact.assigned_user.as_deref().filter(|e| !e.is_empty()) {
            self.ensure_user(email, report).await?;
        }
        let funnel = match contact.funnel_id.as_deref() {
            None | Some("") => None,
            Some(id) => match self.funnels.get(id) {
                Some(uuid) => Some(*uuid),
                None => {
                    let notice = format!(
                        "contact {}: its funnel {id} is not among the source's funnels; left out",
                        contact.uuid
                    );
                    events(PullEvent::Notice(&notice));
                    None
                }
            },
        };
        let name = match contact.name.trim() {
            // Callbell keeps nameless contacts; bellbook needs a name.
            "" => contact.phone_number.trim().to_owned(),
            name => name.to_owned(),
        };
        Ok(Ok(Wanted {
            uuid: contact.uuid.parse().ok(),
            created_at: contact.created_at.as_deref().and_then(Timestamp::parse),
            name,
            identifier: contact.phone_number.clone(),
            source,
            channel,
            team,
            tags: contact
                .tags
                .iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
            fields,
            assigned_user: contact
                .assigned_user
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
            note: contact.note.clone().filter(|n| !n.is_empty()),
            bsuid: contact
                .bsuid
                .as_deref()
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
            funnel,
            closed_at: contact.closed_at.as_deref().and_then(Timestamp::parse),
        }))
    }

    /// The contact's custom field values as requests send them, after
    /// making each field (with the type and options the source gives).
    async fn wanted_fields(
        &mut self,
        contact: &SourceContact,
        report: &mut PullReport,
    ) -> Result<Vec<(String, Value)>, PullError> {
        let metadata = contact.custom_fields_metadata.clone().unwrap_or_default();
        let mut names: Vec<&String> = contact.custom_fields.keys().collect();
        names.extend(
            metadata
                .keys()
                .filter(|k| !contact.custom_fields.contains_key(*k)),
        );
        let mut fields = Vec::with_capacity(names.len());
        for name in names {
            let described = metadata.get(name);
            let kind = described
                .and_then(|m| m.get("type"))
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<CustomFieldType>().ok())
                .unwrap_or(CustomFieldType::Text);
            let value = match described.and_then(|m| m.get("value")) {
                Some(value) => value.clone(),
                None => contact
                    .custom_fields
                    .get(name)
                    .cloned()
                    .unwrap_or(Value::Null),
            };
            let value = match value {
                // The plain view's checkbox spelling, `"[\"A\"]"`, as the array.
                Value::String(text) if kind == CustomFieldType::Checkbox => {
                    serde_json::from_str::<Vec<String>>(&text)
                        .map_or(Value::String(text), |list| list.into())
                }
                other => other,
            };
            if value.is_null() {
                continue;
            }
            let mut options: Vec<String> = described
                .and_then(|m| m.get("options"))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let used: Vec<String> = match &value {
                Value::String(one) if kind == CustomFieldType::Dropdown => vec![one.clone()],
                Value::Array(many) => many
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            for option in used {
                if !options.iter().any(|o| fold_case(o) == fold_case(&option)) {
                    options.push(option);
                }
            }
            options.retain(|o| !o.trim().is_empty());
            self.ensure_field(name, kind, &options, report).await?;
            fields.push((name.clone(), value));
        }
        Ok(fields)
    }

    /// Creates the contact, or brings the one the target has in line.
    async fn sync_contact(
        &mut self,
        contact: &SourceContact,
        report: &mut PullReport,
        events: &mut impl FnMut(PullEvent<'_>),
    ) -> Result<Outcome, PullError> {
        let wanted = match self.wanted(contact, report, events).await? {
            Ok(wanted) => wanted,
            Err(reason) => return Ok(Outcome::Rejected(reason)),
        };
        if let Some(uuid) = wanted.uuid {
            match self.store.contact(self.account, uuid).await {
                Ok(existing) => return self.bring_in_line(existing, &wanted, false).await,
                Err(StoreError::NotFound) => {}
                Err(other) => return Err(other.into()),
            }
        }
        let (request, errors) = parse_fields::<CreateContactRequest>(create_body(&wanted), &[]);
        let mut new = match request.validate(&self.settings, errors) {
            Ok(new) => new,
            Err(details) => return Ok(Outcome::Rejected(validation_message(details))),
        };
        if let Some(at) = wanted.created_at {
            new.created_at = at;
        }
        let mut tries = [wanted.uuid, Some(PublicId::time_ordered())]
            .into_iter()
            .flatten();
        let inserted = loop {
            let Some(uuid) = tries.next() else {
                return Ok(Outcome::Rejected(
                    "its uuid collides with another object in the target database".into(),
                ));
            };
            new.uuid = uuid;
            match self.store.insert_contact(self.account, &new).await {
                Ok(record) => break record,
                Err(StoreError::Conflict(conflict)) if conflict.code == "contact_exists" => {
                    // The channel has this identifier under another uuid:
                    // that contact is the one to update.
                    let holder = conflict
                        .details
                        .iter()
                        .find_map(|d| d.uuid.as_deref()?.parse::<PublicId>().ok());
                    let Some(holder) = holder else {
                        return Ok(Outcome::Rejected(conflict.message));
                    };
                    return match self.store.contact(self.account, holder).await {
                        Ok(existing) => self.bring_in_line(existing, &wanted, false).await,
                        Err(error) => Ok(Outcome::Rejected(refusal(error)?)),
                    };
                }
                // The uuid is another account's: the next try has a fresh one.
                Err(StoreError::Conflict(_)) => {}
                Err(other) => return Err(other.into()),
            }
        };
        self.bring_in_line(inserted, &wanted, true).await
    }

    /// Changes what differs between `existing` and `wanted`, as PATCH,
    /// update_funnel, open and close would.
    async fn bring_in_line(
        &mut self,
        existing: ContactRecord,
        wanted: &Wanted,
        created: bool,
    ) -> Result<Outcome, PullError> {
        let uuid = existing.uuid;
        let patch = self.patch_body(&existing, wanted);
        let mut changed = false;
        if !patch.is_empty() {
            let (request, errors) = parse_fields::<UpdateContactRequest>(patch, &[]);
            let changes = match request.validate(&self.settings, errors) {
                Ok(changes) => changes,
                Err(details) => return Ok(Outcome::Rejected(validation_message(details))),
            };
            if let Err(error) = self
                .store
                .update_contact(self.account, uuid, &changes, Timestamp::now())
                .await
            {
                return Ok(Outcome::Rejected(refusal(error)?));
            }
            changed = true;
        }
        if existing.funnel != wanted.funnel {
            let funnel_id = wanted
                .funnel
                .and_then(|f| self.settings.funnel(f))
                .map(|f| f.id);
            if let Err(error) = self
                .store
                .set_funnel(self.account, uuid, funnel_id, Timestamp::now())
                .await
            {
                return Ok(Outcome::Rejected(refusal(error)?));
            }
            changed = true;
        }
        if existing.closed_at != wanted.closed_at {
            // Closing keeps the first closing time: a different one needs
            // the conversation opened first.
            let result = async {
                if existing.closed_at.is_some() {
                    self.store
                        .open_conversation(self.account, uuid, Timestamp::now())
                        .await?;
                }
                if let Some(at) = wanted.closed_at {
                    self.store
                        .close_conversation(self.account, uuid, at)
                        .await?;
                }
                Ok::<_, StoreError>(())
            }
            .await;
            if let Err(error) = result {
                return Ok(Outcome::Rejected(refusal(error)?));
            }
            changed = true;
        }
        let change = if created {
            Change::Created
        } else {
            Change::from_changed(changed)
        };
        Ok(Outcome::Done(change, uuid))
    }

    /// A PATCH body holding what differs, nothing else (so an unchanged
    /// contact records no event).
    fn patch_body(&self, existing: &ContactRecord, wanted: &Wanted) -> Map<String, Value> {
        let mut patch = Map::new();
        if existing.name != wanted.name {
            patch.insert("name".into(), wanted.name.clone().into());
        }
        let folded = |tags: &[String]| tags.iter().map(|t| fold_case(t)).collect::<Vec<_>>();
        if folded(&existing.tags) != folded(&wanted.tags) {
            patch.insert("tags".into(), wanted.tags.clone().into());
        }
        let mut fields = Map::new();
        for (name, value) in &wanted.fields {
            let current = existing
                .custom_fields
                .iter()
                .find(|f| fold_case(&f.name) == fold_case(name))
                .map(|f| f.value.as_str());
            let canonical = self
                .settings
                .custom_field_named(name)
                .and_then(|f| CustomFieldValue::parse(f.kind, &f.options, value).ok());
            if canonical.is_none() || canonical.as_ref().map(CustomFieldValue::as_str) != current {
                fields.insert(name.clone(), value.clone());
            }
        }
        for field in &existing.custom_fields {
            if !wanted
                .fields
                .iter()
                .any(|(name, _)| fold_case(name) == fold_case(&field.name))
            {
                fields.insert(field.name.clone(), Value::Null);
            }
        }
        if !fields.is_empty() {
            patch.insert("custom_fields".into(), fields.into());
        }
        match (&existing.assigned_user, &wanted.assigned_user) {
            (Some(_), None) => {
                patch.insert("unassign_user".into(), true.into());
            }
            (current, Some(email))
                if current.as_deref().map(fold_case) != Some(fold_case(email)) =>
            {
                patch.insert("assigned_user".into(), email.clone().into());
            }
            _ => {}
        }
        if let Some(team) = wanted.team
            && existing.team.as_ref().map(|t| t.uuid) != Some(team)
        {
            patch.insert("team_uuid".into(), team.to_string().into());
        }
        if existing.note != wanted.note {
            patch.insert(
                "note".into(),
                wanted.note.clone().unwrap_or_default().into(),
            );
        }
        if existing.bsuid != wanted.bsuid {
            patch.insert(
                "bsuid".into(),
                wanted.bsuid.clone().map_or(Value::Null, Value::String),
            );
        }
        patch
    }

    /// Copies the contact's notes that the target has not got yet: a
    /// note counts as there when the target holds a message with its
    /// text and time (notes and bellbook's own records alike).
    async fn copy_notes(
        &mut self,
        source: &SourceApi,
        source_uuid: &str,
        target_uuid: PublicId,
        report: &mut PullReport,
    ) -> Result<(), PullError> {
        let mut notes: Vec<(Timestamp, String)> = Vec::new();
        let mut page = 1u32;
        loop {
            let number = page.to_string();
            let query = [("page", number.as_str())];
            let segments = ["contacts", source_uuid, "messages"];
            let Some(body) = source.get_optional(&segments, &query).await? else {
                // Deleted on the source since it was listed, or the source
                // keeps no messages: nothing to copy.
                break;
            };
            let url = source.url(&segments, &query);
            let messages: Vec<SourceMessage> = items(&body, "messages", &url, "a message list")?;
            let empty = messages.is_empty();
            for message in messages {
                let is_note = message
                    .status
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("note"));
                let at = message.created_at.as_deref().and_then(Timestamp::parse);
                match (is_note, at, message.text) {
                    (true, Some(at), Some(text)) if !text.trim().is_empty() => {
                        notes.push((at, text));
                    }
                    _ => report.messages_skipped += 1,
                }
            }
            if empty || page >= page_total(&body).min(MAX_MESSAGE_PAGES) {
                break;
            }
            page += 1;
        }
        if notes.is_empty() {
            return Ok(());
        }
        let mut present: HashMap<(Timestamp, String), u32> = HashMap::new();
        let mut page = 1u32;
        loop {
            let listed = self
                .store
                .list_messages(self.account, target_uuid, page, TARGET_MESSAGES_PAGE)
                .await?;
            let empty = listed.messages.is_empty();
            for message in listed.messages {
                *present
                    .entry((message.created_at, message.text))
                    .or_default() += 1;
            }
            let read = i64::from(page) * i64::from(TARGET_MESSAGES_PAGE);
            if empty || read >= listed.total {
                break;
            }
            page += 1;
        }
        // Oldest first, as they were written.
        notes.sort_by_key(|(at, _)| *at);
        for (at, text) in notes {
            match present.get_mut(&(at, text.clone())) {
                Some(count) if *count > 0 => {
                    *count -= 1;
                    report.notes.count(Change::Unchanged);
                }
                _ => {
                    self.store
                        .add_note(self.account, target_uuid, &text, at)
                        .await?;
                    report.notes.count(Change::Created);
                }
            }
        }
        Ok(())
    }

    async fn discard_channels(
        &mut self,
        events: &mut impl FnMut(PullEvent<'_>),
    ) -> Result<(), PullError> {
        self.refresh().await?;
        for uuid in std::mem::take(&mut self.to_discard) {
            if self.settings.channel(uuid).is_some_and(Channel::is_active) {
                let changes = ChannelChanges {
                    discard: Some(Some(Timestamp::now())),
                    ..ChannelChanges::default()
                };
                self.store
                    .update_channel(self.account, uuid, &changes)
                    .await?;
                let notice = format!("channel {uuid} discarded, as it is in the source");
                events(PullEvent::Notice(&notice));
            }
        }
        Ok(())
    }
}

/// The `POST /contacts` body for a contact.
fn create_body(wanted: &Wanted) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("identifier".into(), wanted.identifier.clone().into());
    body.insert("source".into(), wanted.source.as_str().into());
    body.insert("name".into(), wanted.name.clone().into());
    body.insert("tags".into(), wanted.tags.clone().into());
    let fields: Map<String, Value> = wanted.fields.iter().cloned().collect();
    body.insert("custom_fields".into(), fields.into());
    if let Some(email) = &wanted.assigned_user {
        body.insert("assigned_user".into(), email.clone().into());
    }
    if let Some(team) = wanted.team {
        body.insert("team_uuid".into(), team.to_string().into());
    }
    if let Some(channel) = wanted.channel {
        body.insert("channel_uuid".into(), channel.to_string().into());
    }
    if let Some(note) = &wanted.note {
        body.insert("note".into(), note.clone().into());
    }
    body
}

// ---------------------------------------------------------------------------
// The walk.

/// Every contact of the source, by its `meta.next` cursor when it offers
/// one (no depth limit), else page by page up to page 500.
async fn walk_contacts(
    source: &SourceApi,
    target: &mut Target<'_>,
    options: &PullOptions,
    report: &mut PullReport,
    events: &mut impl FnMut(PullEvent<'_>),
) -> Result<(), PullError> {
    let mut after: Option<String> = None;
    let mut page = 1u32;
    loop {
        let number = page.to_string();
        let mut query = vec![("include_field_types", "true")];
        match &after {
            Some(cursor) => query.push(("after", cursor.as_str())),
            None => query.push(("page", number.as_str())),
        }
        let body = source.get(&["contacts"], &query).await?;
        let url = source.url(&["contacts"], &query);
        let listed = body
            .get("contacts")
            .and_then(Value::as_array)
            .ok_or_else(|| PullError::Unexpected {
                url: url.to_string(),
                expected: "a contact list",
                reason: "no 'contacts' array".into(),
            })?;
        if page == 1 && after.is_none() {
            events(PullEvent::Walking {
                estimated: u64::from(page_total(&body)) * 20,
            });
        }
        for item in listed {
            report.contacts_seen += 1;
            let contact = match serde_json::from_value::<SourceContact>(item.clone()) {
                Ok(contact) => contact,
                Err(error) => {
                    report.contacts_rejected += 1;
                    let who = item.get("uuid").and_then(Value::as_str).unwrap_or("?");
                    let reason = format!("the source's contact is not readable: {error}");
                    events(PullEvent::Rejected {
                        contact: who,
                        reason: &reason,
                    });
                    continue;
                }
            };
            match target.sync_contact(&contact, report, events).await? {
                Outcome::Done(change, uuid) => {
                    report.contacts.count(change);
                    if options.with_messages {
                        target
                            .copy_notes(source, &contact.uuid, uuid, report)
                            .await?;
                    }
                }
                Outcome::Rejected(reason) => {
                    report.contacts_rejected += 1;
                    events(PullEvent::Rejected {
                        contact: &contact.uuid,
                        reason: &reason,
                    });
                }
            }
            events(PullEvent::Progress(report));
        }
        match body.pointer("/meta/next") {
            Some(Value::String(next)) if !next.is_empty() && !listed.is_empty() => {
                after = Some(next.clone());
                page += 1;
            }
            // The cursor says this was the last page.
            Some(Value::Null | Value::String(_)) => return Ok(()),
            // No cursor on offer: page numbers, as far as they go.
            _ => {
                if listed.is_empty() || after.is_some() || page >= page_total(&body) {
                    return Ok(());
                }
                if page >= MAX_CONTACT_PAGE {
                    events(PullEvent::Notice(
                        "the source offers no cursor and serves no page after 500: \
                         contacts beyond the first 10 000 were not reached",
                    ));
                    return Ok(());
                }
                page += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_email_addresses() {
        assert_eq!(name_from_email("john.doe@email.com"), "John Doe");
        assert_eq!(name_from_email("ann_marie-x@e.io"), "Ann Marie X");
        assert_eq!(name_from_email("@odd"), "@odd");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert!(backoff(1) >= FIRST_BACKOFF && backoff(1) < FIRST_BACKOFF * 2);
        assert!(backoff(2) >= FIRST_BACKOFF * 2);
        assert!(backoff(40) <= MAX_BACKOFF + MAX_BACKOFF / 4);
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let options = PullOptions {
            from: "https://api.callbell.eu/v1".into(),
            token: "secret-token-123".into(),
            with_messages: false,
            rps: 250,
            attempts: 3,
            timeout: Duration::from_secs(5),
        };
        assert!(!format!("{options:?}").contains("secret-token-123"));
    }

    #[test]
    fn urls_escape_segments_and_default_to_v1() {
        let options = PullOptions {
            from: "http://127.0.0.1:9".into(),
            token: "t".into(),
            with_messages: false,
            rps: 1,
            attempts: 1,
            timeout: Duration::from_secs(1),
        };
        let api = SourceApi::new(&options).expect("client");
        assert_eq!(
            api.url(&["contacts", "a/b", "messages"], &[("page", "2")])
                .as_str(),
            "http://127.0.0.1:9/v1/contacts/a%2Fb/messages?page=2"
        );
        assert!(
            SourceApi::new(&PullOptions {
                from: "ftp://x".into(),
                ..options
            })
            .is_err()
        );
    }
}
