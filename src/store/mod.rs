//! Persistence behind one trait. Handlers hold an `Arc<dyn Store>` and never
//! learn which database is underneath; [`connect`] picks it by URL scheme.

pub mod snapshot;
pub(crate) mod sql;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::contact::{ContactChanges, ContactRecord, NewContact};
use crate::domain::settings::{
    AccountSettings, Bot, Channel, CustomField, Funnel, Tag, Team, User,
};
use crate::domain::{Conflict, CustomFieldType, EventName, FunnelId, PublicId, Source, Timestamp};

pub use snapshot::{AccountSnapshot, ContactSnapshot};
pub use sql::{Backend, CopyError, CopyProgress, CopySummary, Imported, SqlStore, StoreStats};

/// Opens the database named by `url` (`sqlite://…` or `postgres://…`) and
/// brings its schema up to date.
pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    SqlStore::connect(url).await
}

/// Why a store operation did not happen. Whatever the reason, it changed
/// nothing: every operation is one transaction.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist in this account (or at all).
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference rule forbids the change.
    #[error("conflict: {}", .0.message)]
    Conflict(Conflict),
    /// The database cannot be reached or is busy; the caller may retry.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The disk holding the database is full (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`); the same write succeeds once space is
    /// freed.
    #[error("storage full: {0}")]
    Full(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict(Conflict::new(code, message))
    }

    pub fn other(message: impl Into<String>) -> Self {
        StoreError::Other(message.into().into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The internal id of an account; every account-scoped operation takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: AccountId,
    pub uuid: PublicId,
    pub name: String,
    pub created_at: Timestamp,
}

/// An API key as stored: the secret itself is never kept, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub uuid: PublicId,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub uuid: PublicId,
    pub account_id: AccountId,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A new account with what every account starts with: an owner, a main
/// WhatsApp channel, a default team "General", and one API key.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub uuid: PublicId,
    pub name: String,
    pub created_at: Timestamp,
    pub owner_email: String,
    pub owner_name: String,
    pub key: NewApiKey,
}

#[derive(Debug, Clone)]
pub struct NewCustomField {
    pub name: String,
    pub kind: CustomFieldType,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomFieldChanges {
    pub name: Option<String>,
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub uuid: PublicId,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewTeam {
    pub uuid: PublicId,
    pub name: String,
    pub is_default: bool,
    pub member_ids: Vec<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct TeamChanges {
    pub name: Option<String>,
    /// Makes this the account's default team (the old one stops being it).
    pub make_default: bool,
    /// Replaces the member list.
    pub member_ids: Option<Vec<i64>>,
}

#[derive(Debug, Clone)]
pub struct NewChannel {
    pub uuid: PublicId,
    pub title: String,
    pub kind: Source,
    /// `None`: main when the account has no active main channel of this type.
    pub main: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelChanges {
    pub title: Option<String>,
    /// Makes this the main channel of its type (the old one stops being it).
    pub make_main: bool,
    /// `Some(Some(at))` discards (keeping an earlier time), `Some(None)`
    /// brings a discarded channel back.
    pub discard: Option<Option<Timestamp>>,
}

#[derive(Debug, Clone)]
pub struct NewBot {
    pub uuid: PublicId,
    pub name: String,
    pub enabled: bool,
    pub version: i64,
}

#[derive(Debug, Clone, Default)]
pub struct BotChanges {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewFunnel {
    pub uuid: FunnelId,
    pub name: String,
    pub emoji: Option<String>,
    /// `None`: after the last funnel.
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct FunnelChanges {
    pub name: Option<String>,
    pub emoji: Option<Option<String>>,
    pub position: Option<i64>,
}

/// Which contacts a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactFilter {
    pub source: Option<Source>,
    /// Tag names, case-insensitive.
    pub tags: Vec<String>,
    pub tags_mode: TagsMode,
    pub team: Option<PublicId>,
    /// Case-insensitive substring of the name, or digits of the phone number.
    pub q: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TagsMode {
    /// A contact matches when it has every tag.
    #[default]
    All,
    /// A contact matches when it has at least one tag.
    Any,
}

/// A place in the newest-first order of an account's contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactPosition {
    pub created_at: Timestamp,
    pub seq: i64,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart {
    /// The n-th page (1-based) of the listing as it is now.
    Number(u32),
    /// Right after `position`, among contacts that existed when the walk
    /// began (`seq <= watermark`), so later ones never show up in it.
    After {
        position: ContactPosition,
        watermark: i64,
    },
}

#[derive(Debug, Clone)]
pub struct ContactPage {
    pub contacts: Vec<ContactRecord>,
    /// How many contacts match the filter in all.
    pub total: i64,
    /// The newest contact sequence number this walk can see.
    pub watermark: i64,
    /// Where the next page starts, when there is one.
    pub next: Option<ContactPosition>,
}

/// A stretch of an export walk (`ContactStore::export_contacts`).
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// In the order they were created.
    pub contacts: Vec<ContactRecord>,
    /// Where the walk goes on (the `after` of the next stretch), or `None`
    /// when it is over.
    pub last: Option<i64>,
    /// The last contact the walk can see: pass it back with `last`.
    pub watermark: i64,
}

/// A page of a contact's messages.
#[derive(Debug, Clone)]
pub struct MessagePage {
    pub contact: ContactRecord,
    pub messages: Vec<MessageRecord>,
    pub total: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A note written through the API.
    Note,
    /// Something bellbook recorded: an assignment, team, funnel or
    /// open/close change.
    Event,
}

impl MessageKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Note => "note",
            MessageKind::Event => "event",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub uuid: PublicId,
    pub kind: MessageKind,
    pub text: String,
    pub created_at: Timestamp,
}

/// Accounts, keys and whole-account imports: what the CLI and start-up use.
#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn count_accounts(&self) -> StoreResult<i64>;
    async fn create_account(&self, account: &NewAccount) -> StoreResult<AccountRecord>;
    async fn list_accounts(&self) -> StoreResult<Vec<AccountRecord>>;
    /// By uuid, or by name when exactly one account has it.
    async fn find_account(&self, uuid_or_name: &str) -> StoreResult<AccountRecord>;
    async fn add_api_key(&self, account: AccountId, key: &NewApiKey) -> StoreResult<ApiKeyRecord>;
    async fn list_api_keys(&self, account: AccountId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// By key uuid or prefix; revoking twice keeps the first time.
    async fn revoke_api_key(
        &self,
        account: AccountId,
        uuid_or_prefix: &str,
        at: Timestamp,
    ) -> StoreResult<ApiKeyRecord>;
    /// Candidates for authenticating a presented key.
    async fn api_keys_with_prefix(&self, prefix: &str) -> StoreResult<Vec<ApiKeyRecord>>;
    /// A secret shared by every process on this database, created on first
    /// use from `fresh` (only one process's value ever wins).
    async fn shared_secret(&self, name: &str, fresh: String) -> StoreResult<String>;
    /// Writes a whole account in one transaction. Returns `false`, changing
    /// nothing, when an account with that uuid already exists.
    async fn import_account(&self, snapshot: &AccountSnapshot) -> StoreResult<bool>;
    /// Whether the database answers (a read, and a write through the
    /// writer) and holds every migration this build knows.
    async fn check_ready(&self) -> StoreResult<()>;
}

/// The settings of SPEC §2.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The account's settings as they are now (shared, cached until they
    /// change).
    async fn settings(&self, account: AccountId) -> StoreResult<Arc<AccountSettings>>;

    async fn create_tag(&self, account: AccountId, name: &str) -> StoreResult<Tag>;
    async fn rename_tag(&self, account: AccountId, tag_id: i64, name: &str) -> StoreResult<Tag>;
    /// Also removes the tag from every contact.
    async fn delete_tag(&self, account: AccountId, tag_id: i64) -> StoreResult<()>;

    async fn create_custom_field(
        &self,
        account: AccountId,
        field: &NewCustomField,
    ) -> StoreResult<CustomField>;
    async fn update_custom_field(
        &self,
        account: AccountId,
        field_id: i64,
        changes: &CustomFieldChanges,
    ) -> StoreResult<CustomField>;
    /// Also removes the field's values from every contact.
    async fn delete_custom_field(&self, account: AccountId, field_id: i64) -> StoreResult<()>;

    async fn create_user(&self, account: AccountId, user: &NewUser) -> StoreResult<User>;
    async fn update_user(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &UserChanges,
    ) -> StoreResult<User>;
    /// Unassigns the user's contacts; the owner cannot be deleted.
    async fn delete_user(&self, account: AccountId, uuid: PublicId) -> StoreResult<()>;

    async fn create_team(&self, account: AccountId, team: &NewTeam) -> StoreResult<Team>;
    async fn update_team(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &TeamChanges,
    ) -> StoreResult<Team>;
    /// Refused for the default team and for teams contacts still belong to.
    async fn delete_team(&self, account: AccountId, uuid: PublicId) -> StoreResult<()>;
    /// Who is in which team: `(team id, user id)` pairs of the account.
    async fn team_memberships(&self, account: AccountId) -> StoreResult<Vec<(i64, i64)>>;

    async fn create_channel(
        &self,
        account: AccountId,
        channel: &NewChannel,
    ) -> StoreResult<Channel>;
    async fn update_channel(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &ChannelChanges,
    ) -> StoreResult<Channel>;
    /// Refused while contacts use the channel (discard it instead).
    async fn delete_channel(&self, account: AccountId, uuid: PublicId) -> StoreResult<()>;

    async fn create_bot(&self, account: AccountId, bot: &NewBot) -> StoreResult<Bot>;
    async fn update_bot(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &BotChanges,
    ) -> StoreResult<Bot>;
    /// Contacts running the bot are left without one.
    async fn delete_bot(&self, account: AccountId, uuid: PublicId) -> StoreResult<()>;

    async fn create_funnel(&self, account: AccountId, funnel: &NewFunnel) -> StoreResult<Funnel>;
    async fn update_funnel(
        &self,
        account: AccountId,
        uuid: FunnelId,
        changes: &FunnelChanges,
    ) -> StoreResult<Funnel>;
    /// Contacts in the funnel are left without one.
    async fn delete_funnel(&self, account: AccountId, uuid: FunnelId) -> StoreResult<()>;
}

/// Contacts, their conversation and its messages (SPEC §3–§4).
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Refused with `contact_exists` when the channel already has a contact
    /// with the same identifier key.
    async fn insert_contact(
        &self,
        account: AccountId,
        contact: &NewContact,
    ) -> StoreResult<ContactRecord>;
    /// Applies `changes` atomically and records the events they cause.
    async fn update_contact(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &ContactChanges,
        at: Timestamp,
    ) -> StoreResult<ContactRecord>;
    async fn contact(&self, account: AccountId, uuid: PublicId) -> StoreResult<ContactRecord>;
    async fn contact_by_phone(
        &self,
        account: AccountId,
        channel_id: i64,
        digits: &str,
    ) -> StoreResult<ContactRecord>;
    async fn contact_by_bsuid(&self, account: AccountId, bsuid: &str)
    -> StoreResult<ContactRecord>;
    /// The contact whose conversation has this uuid.
    async fn contact_by_conversation(
        &self,
        account: AccountId,
        conversation: PublicId,
    ) -> StoreResult<ContactRecord>;
    async fn list_contacts(
        &self,
        account: AccountId,
        filter: &ContactFilter,
        start: PageStart,
        page_size: u32,
    ) -> StoreResult<ContactPage>;
    /// Up to `limit` contacts matching `filter`, oldest first, after the
    /// sequence number `after` (0 to begin) and up to `watermark` (`None`
    /// to begin: the walk sees the contacts that exist now).
    async fn export_contacts(
        &self,
        account: AccountId,
        filter: &ContactFilter,
        after: i64,
        watermark: Option<i64>,
        limit: u32,
    ) -> StoreResult<ExportPage>;
    /// Creates many contacts in one transaction, skipping (and naming the
    /// holder of) each whose identifier its channel already has.
    async fn import_contacts(
        &self,
        account: AccountId,
        contacts: Vec<NewContact>,
    ) -> StoreResult<Vec<Imported>>;
    /// Removes the contact with its conversation and messages.
    async fn delete_contact(&self, account: AccountId, uuid: PublicId) -> StoreResult<()>;
    /// Closes the conversation; closing a closed one keeps the first time.
    async fn close_conversation(
        &self,
        account: AccountId,
        uuid: PublicId,
        at: Timestamp,
    ) -> StoreResult<ContactRecord>;
    async fn open_conversation(
        &self,
        account: AccountId,
        uuid: PublicId,
        at: Timestamp,
    ) -> StoreResult<ContactRecord>;
    async fn set_funnel(
        &self,
        account: AccountId,
        uuid: PublicId,
        funnel_id: Option<i64>,
        at: Timestamp,
    ) -> StoreResult<ContactRecord>;
    async fn add_note(
        &self,
        account: AccountId,
        uuid: PublicId,
        text: &str,
        at: Timestamp,
    ) -> StoreResult<MessageRecord>;
    async fn list_messages(
        &self,
        account: AccountId,
        uuid: PublicId,
        page: u32,
        page_size: u32,
    ) -> StoreResult<MessagePage>;
}

/// How the payload of each event is written (the API's own JSON shapes,
/// with links on the public address): given to the store by whoever
/// serves the API ([`SqlStore::record_events_with`]).
pub trait EventPayloads: Send + Sync {
    /// The Contact object.
    fn contact(&self, contact: &ContactRecord) -> serde_json::Result<String>;
    /// `{source, href, contact, createdAt, closedAt, closingReason}`.
    fn conversation(&self, contact: &ContactRecord) -> serde_json::Result<String>;
    /// `{uuid, deleted}`.
    fn deleted(&self, uuid: PublicId) -> serde_json::Result<String>;
}

/// An account's webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub url: String,
    pub subscriptions: Vec<EventName>,
    /// The HMAC key deliveries are signed with.
    pub secret: String,
    pub created_at: Timestamp,
}

/// An event as the change feed lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub seq: i64,
    pub name: EventName,
    /// JSON text.
    pub payload: String,
    pub created_at: Timestamp,
}

/// One delivery attempt, as `GET /webhooks/events` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The event's sequence number in its account.
    pub seq: i64,
    pub event: EventName,
    /// JSON text.
    pub payload: String,
    /// `None` when no answer came.
    pub code: Option<i64>,
    /// A JSON object.
    pub headers: String,
    pub body: String,
    pub success: bool,
    pub created_at: Timestamp,
}

/// Which attempts `GET /webhooks/events` lists.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub success: Option<bool>,
    /// Only these events (all when empty).
    pub events: Vec<EventName>,
}

#[derive(Debug, Clone)]
pub struct AttemptPage {
    pub attempts: Vec<AttemptRecord>,
    pub total: i64,
}

/// A delivery a worker has claimed: the event, where it goes, and the
/// claim that lets it record the outcome.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub account: AccountId,
    pub account_uuid: PublicId,
    pub seq: i64,
    pub name: EventName,
    pub payload: String,
    pub created_at: Timestamp,
    /// Attempts made before this one.
    pub attempts: i64,
    pub url: String,
    pub secret: String,
    pub claim: String,
}

/// What came of one attempt, and what happens next.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub code: Option<i64>,
    pub headers: String,
    pub body: String,
    pub success: bool,
    pub at: Timestamp,
    /// `Some(unix ms)`: try again then; `None`: the delivery is over
    /// (succeeded, or failed for good).
    pub retry_at_ms: Option<i64>,
}

/// An account's deliveries not yet done, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookBacklog {
    pub account_uuid: PublicId,
    pub account_name: String,
    pub pending: i64,
    /// Pending deliveries that have failed at least once.
    pub failing: i64,
    /// When the oldest pending event was committed.
    pub oldest: Option<Timestamp>,
}

/// Webhooks, their deliveries and the change feed (docs/webhooks.md).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates or replaces the account's webhook. Deliveries already
    /// pending go to it as it now is.
    async fn subscribe(&self, account: AccountId, webhook: &WebhookRecord) -> StoreResult<()>;
    /// Removes the webhook and the deliveries still pending for it.
    async fn unsubscribe(&self, account: AccountId) -> StoreResult<()>;
    async fn webhook(&self, account: AccountId) -> StoreResult<Option<WebhookRecord>>;
    /// Makes the delivery of event `seq` due now: a pending one at once, one
    /// that failed for good from a first attempt again (the dashboard's
    /// retry button); `NotFound` when the event is no longer kept or the
    /// account has no webhook.
    async fn retry_delivery(&self, account: AccountId, seq: i64, now_ms: i64) -> StoreResult<()>;
    /// Newest first.
    async fn webhook_attempts(
        &self,
        account: AccountId,
        filter: &AttemptFilter,
        page: u32,
        items: u32,
    ) -> StoreResult<AttemptPage>;
    /// The account's events after `after`, in commit order.
    async fn events_after(
        &self,
        account: AccountId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<EventRecord>>;
    /// Resolves when this process has committed events, or after
    /// `timeout` (events committed by other processes are seen by asking
    /// again).
    async fn wait_for_events(&self, timeout: std::time::Duration);
    /// Accounts that have a webhook.
    async fn webhook_accounts(&self) -> StoreResult<Vec<AccountId>>;
    /// Claims up to `limit` of the account's due deliveries until
    /// `claimed_until_ms`, each the earliest pending one of its contact.
    async fn claim_deliveries(
        &self,
        account: AccountId,
        now_ms: i64,
        claimed_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Records an attempt of a claimed delivery and what follows it.
    async fn finish_delivery(
        &self,
        delivery: &Delivery,
        outcome: &AttemptOutcome,
    ) -> StoreResult<()>;
    /// Deletes events committed before `before` whose deliveries are done,
    /// with their attempts; answers how many.
    async fn purge_events(&self, before: Timestamp) -> StoreResult<u64>;
    async fn webhook_backlog(&self) -> StoreResult<Vec<WebhookBacklog>>;
}

/// A write's `Idempotency-Key`, as the account sent it, with what the
/// request was (README, "Retry-safe writes").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub account: AccountId,
    pub key: String,
    /// SHA-256 (hex) of the method, path with query, and body.
    pub fingerprint: String,
    pub now: Timestamp,
    /// Keys older than this count as never sent.
    pub expired_before: Timestamp,
    /// How long the request now starting holds the key.
    pub lease_until: Timestamp,
}

/// The answer kept for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// What sending a key finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key is this request's now: run it, then keep or release it.
    Started,
    /// The same request got this answer before.
    Replay(StoredAnswer),
    /// The same key came with another method, path or body.
    Mismatch,
    /// The first request with the key is still running.
    InProgress,
}

/// Idempotency keys: one row per (account, key), shared by every process.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn begin_idempotent(&self, claim: &IdempotencyClaim) -> StoreResult<IdempotencyBegin>;
    /// Keeps `answer` for the key a [`IdempotencyBegin::Started`] request held.
    async fn finish_idempotent(
        &self,
        claim: &IdempotencyClaim,
        answer: &StoredAnswer,
    ) -> StoreResult<()>;
    /// Lets go of the key without an answer (the request changed nothing
    /// and may be sent again as it was).
    async fn release_idempotent(&self, claim: &IdempotencyClaim) -> StoreResult<()>;
    /// Deletes keys sent before `before`; answers how many.
    async fn purge_idempotency_keys(&self, before: Timestamp) -> StoreResult<u64>;
}

/// A user who may sign in to the dashboard with a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCandidate {
    pub account: AccountId,
    pub user_id: i64,
    /// argon2id, as a PHC string.
    pub hash: String,
}

/// A dashboard session about to start (docs/dashboard.md, "Sessions").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// SHA-256 (hex) of the cookie's token.
    pub token_hash: String,
    pub account: AccountId,
    pub user_id: i64,
    /// The hash of the API key the owner signed in with; `None` for a
    /// password.
    pub api_key_hash: Option<String>,
    pub at: Timestamp,
}

/// A signed-in session, with who it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub account: AccountId,
    pub account_name: String,
    pub user_uuid: PublicId,
    pub user_email: String,
    pub user_name: String,
    pub last_seen_at: Timestamp,
}

/// Dashboard passwords and sessions, shared by every process.
#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Sets (or replaces) a user's password and ends the sessions it
    /// opened before.
    async fn set_password(
        &self,
        account: AccountId,
        user: PublicId,
        hash: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Whether the user has a password.
    async fn has_password(&self, account: AccountId, user: PublicId) -> StoreResult<bool>;
    /// The users, in any account, with this e-mail and a password.
    async fn password_candidates(&self, email: &str) -> StoreResult<Vec<PasswordCandidate>>;
    /// Starts a session; `NotFound` when an API key named is gone.
    async fn start_session(&self, session: &NewSession) -> StoreResult<()>;
    /// The session whose token hashes to `token_hash`, if it was seen at
    /// or after `idle_since` (and its API key, if any, is not revoked).
    async fn session(
        &self,
        token_hash: &str,
        idle_since: Timestamp,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Records that the session was used at `at`.
    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> StoreResult<()>;
    async fn end_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Deletes sessions last seen before `before`; answers how many.
    async fn purge_sessions(&self, before: Timestamp) -> StoreResult<u64>;
}

/// Everything bellbook keeps.
pub trait Store:
    AdminStore + SettingsStore + ContactStore + WebhookStore + IdempotencyStore + DashboardStore
{
}

impl<
    T: AdminStore + SettingsStore + ContactStore + WebhookStore + IdempotencyStore + DashboardStore,
> Store for T
{
}
