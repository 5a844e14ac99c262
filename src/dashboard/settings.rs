//! `/settings/{section}`: tags, custom fields, users (and their passwords),
//! teams and their members, channels, bots, funnels, API keys and the
//! webhook. Each form becomes the body of the API request that does the
//! same (`POST /v1/tags`, `PATCH /v1/teams/{uuid}`, ...).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::form::{Form, comma_list};
use super::session::{Signed, SignedForm};
use super::{Chrome, PageError, PageResult, Problems, render, see_other};
use crate::api::AppState;
use crate::api::extract::{JsonObject, PathParam};
use crate::api::settings as api;
use crate::auth::{Caller, hash_password, issue_key, password_problem};
use crate::domain::settings::AccountSettings;
use crate::domain::{CustomFieldType, EventName, FieldError, PublicId, Source, Timestamp};
use crate::error::ApiError;
use crate::store::{ApiKeyRecord, AttemptFilter, AttemptRecord, WebhookRecord};

/// A settings page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Tags,
    CustomFields,
    Users,
    Teams,
    Channels,
    Bots,
    Funnels,
    Keys,
    Webhook,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Tags,
        Section::CustomFields,
        Section::Users,
        Section::Teams,
        Section::Channels,
        Section::Bots,
        Section::Funnels,
        Section::Keys,
        Section::Webhook,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Section::Tags => "tags",
            Section::CustomFields => "custom-fields",
            Section::Users => "users",
            Section::Teams => "teams",
            Section::Channels => "channels",
            Section::Bots => "bots",
            Section::Funnels => "funnels",
            Section::Keys => "keys",
            Section::Webhook => "webhook",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::Tags => "Tags",
            Section::CustomFields => "Custom fields",
            Section::Users => "Users",
            Section::Teams => "Teams",
            Section::Channels => "Channels",
            Section::Bots => "Bots",
            Section::Funnels => "Funnels",
            Section::Keys => "API keys",
            Section::Webhook => "Webhook",
        }
    }

    /// The inputs of the section's create form, as the body of the API's
    /// create request.
    fn create_inputs(self) -> &'static [Input] {
        use Input::*;
        match self {
            Section::Tags | Section::Keys => &[Text("name")],
            Section::CustomFields => &[Text("name"), Text("type"), List("options")],
            Section::Users => &[Text("email"), Text("name")],
            Section::Teams => &[Text("name"), Many("members"), Tick("default")],
            Section::Channels => &[Text("title"), Text("type"), Tick("main")],
            Section::Bots => &[Text("name"), Tick("enabled")],
            Section::Funnels => &[Text("name"), Nullable("emoji")],
            Section::Webhook => &[Text("url"), Many("subscriptions")],
        }
    }

    /// The inputs of an object's edit form, as the body of the API's
    /// update request (keys and the webhook have none).
    fn update_inputs(self) -> &'static [Input] {
        use Input::*;
        match self {
            Section::Tags => &[Text("name")],
            Section::CustomFields => &[Text("name"), List("options")],
            Section::Users => &[Text("email"), Text("name")],
            Section::Teams => &[Text("name"), Many("members"), Tick("default")],
            Section::Channels => &[Text("title"), Tick("main"), Bool("discarded")],
            Section::Bots => &[Text("name"), Bool("enabled")],
            Section::Funnels => &[Text("name"), Nullable("emoji")],
            Section::Keys | Section::Webhook => &[],
        }
    }

    fn parse(slug: &str) -> Result<Section, PageError> {
        Section::ALL
            .into_iter()
            .find(|s| s.slug() == slug)
            .ok_or(PageError::NotFound)
    }
}

/// How one input of a settings form goes into the API's JSON body.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// A string, left out when empty.
    Text(&'static str),
    /// A string; empty means `null` (no value).
    Nullable(&'static str),
    /// A comma-separated list, as an array.
    List(&'static str),
    /// Every value sent under the name (checkboxes), as an array.
    Many(&'static str),
    /// A checkbox: `true` when ticked, left out when not.
    Tick(&'static str),
    /// A select of `true` and `false`.
    Bool(&'static str),
}

fn body_of(form: &Form, inputs: &[Input]) -> Map<String, Value> {
    let mut body = Map::new();
    for input in inputs {
        match *input {
            Input::Text(name) => form.copy_text(&mut body, name),
            Input::Nullable(name) => {
                let value = match form.get(name).map(str::trim) {
                    None | Some("") => Value::Null,
                    Some(text) => Value::String(text.to_owned()),
                };
                body.insert(name.to_owned(), value);
            }
            Input::List(name) => {
                if let Some(text) = form.get(name) {
                    body.insert(name.to_owned(), Value::Array(comma_list(text)));
                }
            }
            Input::Many(name) => {
                let values = form.all(name).into_iter().map(Value::String).collect();
                body.insert(name.to_owned(), Value::Array(values));
            }
            Input::Tick(name) => {
                if form.has(name) {
                    body.insert(name.to_owned(), Value::Bool(true));
                }
            }
            Input::Bool(name) => match form.get(name) {
                Some("true") => drop(body.insert(name.to_owned(), Value::Bool(true))),
                Some("false") => drop(body.insert(name.to_owned(), Value::Bool(false))),
                _ => {}
            },
        }
    }
    body
}

/// A secret shown once, right after it was made.
#[derive(Debug)]
struct Revealed {
    what: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    section: Section,
    sections: [Section; 9],
    settings: Arc<AccountSettings>,
    /// `(team id, user id)` pairs.
    memberships: Vec<(i64, i64)>,
    keys: Vec<ApiKeyRecord>,
    webhook: Option<WebhookRecord>,
    attempts: Vec<AttemptRecord>,
    events: Vec<&'static str>,
    sources: Vec<&'static str>,
    field_types: Vec<&'static str>,
    /// Which form the problems are about: `new`, or an object's id.
    failed: String,
    problems: Problems,
    revealed: Option<Revealed>,
}

impl SettingsPage {
    fn is_member(&self, team: &i64, user: &i64) -> bool {
        self.memberships.contains(&(*team, *user))
    }

    fn subscribed(&self, event: &str) -> bool {
        self.webhook
            .as_ref()
            .is_some_and(|w| w.subscriptions.iter().any(|e| e.as_str() == event))
    }

    /// The problem about `field` of the form `form`.
    fn problem(&self, form: &str, field: &str) -> Option<&str> {
        (self.failed == form)
            .then(|| self.problems.about(field))
            .flatten()
    }

    /// What went wrong with the form `form` (`new`, or an object's id).
    fn summary(&self, form: impl AsRef<str>) -> Option<&str> {
        (self.failed == form.as_ref())
            .then_some(self.problems.summary.as_deref())
            .flatten()
    }
}

/// Attempts the webhook page lists.
const ATTEMPTS_SHOWN: u32 = 50;

async fn settings_page(
    app: &AppState,
    signed: &Signed,
    section: Section,
    failed: &str,
    problems: Problems,
    revealed: Option<Revealed>,
) -> PageResult {
    let account = signed.session.account;
    let settings = app.store.settings(account).await?;
    let memberships = match section {
        Section::Teams => app.store.team_memberships(account).await?,
        _ => Vec::new(),
    };
    let keys = match section {
        Section::Keys => app.store.list_api_keys(account).await?,
        _ => Vec::new(),
    };
    let (webhook, attempts) = match section {
        Section::Webhook => (
            app.store.webhook(account).await?,
            app.store
                .webhook_attempts(account, &AttemptFilter::default(), 1, ATTEMPTS_SHOWN)
                .await?
                .attempts,
        ),
        _ => (None, Vec::new()),
    };
    let status = problems.page_status();
    let page = SettingsPage {
        chrome: Chrome::new(signed, "settings"),
        section,
        sections: Section::ALL,
        settings,
        memberships,
        keys,
        webhook,
        attempts,
        events: EventName::ALL.iter().map(|e| e.as_str()).collect(),
        sources: Source::ALL.iter().map(|s| s.as_str()).collect(),
        field_types: CustomFieldType::ALL.iter().map(|t| t.as_str()).collect(),
        failed: failed.to_owned(),
        problems,
        revealed,
    };
    Ok(render(status, &page))
}

/// `GET /settings`.
pub async fn index(_signed: Signed) -> PageResult {
    Ok(see_other("/settings/tags"))
}

/// `GET /settings/{section}`.
pub async fn show(
    State(app): State<AppState>,
    signed: Signed,
    PathParam(section): PathParam,
) -> PageResult {
    let section = Section::parse(&section)?;
    settings_page(&app, &signed, section, "", Problems::default(), None).await
}

/// What came of a settings form: done (back to the page), refused (the
/// page again, the problems beside the form), or a secret to show once.
enum Outcome {
    Done,
    Refused(ApiError),
    Reveal(Revealed),
}

fn outcome<T>(answer: Result<T, ApiError>) -> Result<Outcome, PageError> {
    match answer {
        Ok(_) => Ok(Outcome::Done),
        Err(error) if error.status() == StatusCode::NOT_FOUND => Err(PageError::NotFound),
        Err(error) if error.status().is_client_error() => Ok(Outcome::Refused(error)),
        Err(error) => Err(error.into()),
    }
}

async fn finish(
    app: &AppState,
    signed: &Signed,
    section: Section,
    form_id: &str,
    outcome: Outcome,
) -> PageResult {
    match outcome {
        Outcome::Done => Ok(see_other(&format!("/settings/{}", section.slug()))),
        Outcome::Refused(error) => {
            settings_page(app, signed, section, form_id, Problems::of(&error), None).await
        }
        Outcome::Reveal(revealed) => {
            settings_page(
                app,
                signed,
                section,
                "",
                Problems::default(),
                Some(revealed),
            )
            .await
        }
    }
}

/// `POST /settings/{section}`: the create form.
pub async fn create(
    State(app): State<AppState>,
    PathParam(section): PathParam,
    sent: SignedForm,
) -> PageResult {
    let section = Section::parse(&section)?;
    let SignedForm { signed, form } = sent;
    let caller = signed.caller();
    let state = State(app.clone());
    let body = JsonObject(body_of(&form, section.create_inputs()));
    let done = match section {
        Section::Tags => outcome(api::tags::create(state, caller, body).await)?,
        Section::CustomFields => outcome(api::custom_fields::create(state, caller, body).await)?,
        Section::Users => outcome(api::users::create(state, caller, body).await)?,
        Section::Teams => outcome(api::teams::create(state, caller, body).await)?,
        Section::Channels => outcome(api::channels::create(state, caller, body).await)?,
        Section::Bots => outcome(api::bots::create(state, caller, body).await)?,
        Section::Funnels => outcome(api::funnels::create(state, caller, body).await)?,
        Section::Keys => create_key(&app, &caller, form.get("name").unwrap_or_default()).await?,
        Section::Webhook => match crate::api::webhooks::subscribe(state, caller, body).await {
            Ok(webhook) => Outcome::Reveal(Revealed {
                what: "The webhook's signing secret".to_owned(),
                secret: webhook.0.webhook.secret,
            }),
            Err(error) => outcome(Err::<(), _>(error))?,
        },
    };
    finish(&app, &signed, section, "new", done).await
}

/// A new API key, shown once.
async fn create_key(app: &AppState, caller: &Caller, name: &str) -> Result<Outcome, PageError> {
    let name = match name.trim() {
        "" => "dashboard",
        name => name,
    };
    if name.chars().count() > 255 {
        return Ok(Outcome::Refused(ApiError::validation(vec![
            FieldError::new(
                "name",
                "too_long",
                "a key's name is at most 255 characters long",
            ),
        ])));
    }
    let key = issue_key(name).map_err(|_| PageError::Internal)?;
    let stored = app.store.add_api_key(caller.account, &key.record).await?;
    Ok(Outcome::Reveal(Revealed {
        what: format!("The new API key '{}'", stored.name),
        secret: key.secret,
    }))
}

/// `POST /settings/{section}/{id}`: an object's edit form.
pub async fn update(
    State(app): State<AppState>,
    axum::extract::Path((section, id)): axum::extract::Path<(String, String)>,
    sent: SignedForm,
) -> PageResult {
    let section = Section::parse(&section)?;
    let SignedForm { signed, form } = sent;
    let caller = signed.caller();
    let state = State(app.clone());
    let body = JsonObject(body_of(&form, section.update_inputs()));
    let path = PathParam(id.clone());
    let done = match section {
        Section::Tags => outcome(api::tags::update(state, caller, path, body).await)?,
        Section::CustomFields => {
            outcome(api::custom_fields::update(state, caller, path, body).await)?
        }
        Section::Users => outcome(api::users::update(state, caller, path, body).await)?,
        Section::Teams => outcome(api::teams::update(state, caller, path, body).await)?,
        Section::Channels => outcome(api::channels::update(state, caller, path, body).await)?,
        Section::Bots => outcome(api::bots::update(state, caller, path, body).await)?,
        Section::Funnels => outcome(api::funnels::update(state, caller, path, body).await)?,
        Section::Keys | Section::Webhook => return Err(PageError::NotFound),
    };
    finish(&app, &signed, section, &id, done).await
}

/// `POST /settings/{section}/{id}/delete`: delete an object (revoke a key).
pub async fn delete(
    State(app): State<AppState>,
    axum::extract::Path((section, id)): axum::extract::Path<(String, String)>,
    sent: SignedForm,
) -> PageResult {
    let section = Section::parse(&section)?;
    let signed = sent.signed;
    let caller = signed.caller();
    let state = State(app.clone());
    let path = PathParam(id.clone());
    let done = match section {
        Section::Tags => outcome(api::tags::delete(state, caller, path).await)?,
        Section::CustomFields => outcome(api::custom_fields::delete(state, caller, path).await)?,
        Section::Users => outcome(api::users::delete(state, caller, path).await)?,
        Section::Teams => outcome(api::teams::delete(state, caller, path).await)?,
        Section::Channels => outcome(api::channels::delete(state, caller, path).await)?,
        Section::Bots => outcome(api::bots::delete(state, caller, path).await)?,
        Section::Funnels => outcome(api::funnels::delete(state, caller, path).await)?,
        Section::Keys => {
            // By uuid only: a prefix typed into the address does nothing.
            let uuid: PublicId = id.parse().map_err(|_| PageError::NotFound)?;
            app.store
                .revoke_api_key(caller.account, &uuid.to_string(), Timestamp::now())
                .await?;
            Outcome::Done
        }
        Section::Webhook => outcome(crate::api::webhooks::unsubscribe(state, caller).await)?,
    };
    finish(&app, &signed, section, &id, done).await
}

/// `POST /settings/users/{uuid}/password`: set a user's password.
pub async fn set_password(
    State(app): State<AppState>,
    PathParam(uuid): PathParam,
    sent: SignedForm,
) -> PageResult {
    let SignedForm { signed, form } = sent;
    let user: PublicId = uuid.parse().map_err(|_| PageError::NotFound)?;
    let settings = app.store.settings(signed.session.account).await?;
    if !settings.users.iter().any(|u| u.uuid == user) {
        return Err(PageError::NotFound);
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    if let Some(problem) = password_problem(&password) {
        let error = ApiError::validation(vec![FieldError::new(
            "password",
            "invalid_password",
            problem,
        )]);
        return finish(
            &app,
            &signed,
            Section::Users,
            &uuid,
            Outcome::Refused(error),
        )
        .await;
    }
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| PageError::Internal)?
        .map_err(|_| PageError::Internal)?;
    app.store
        .set_password(signed.session.account, user, &hash, Timestamp::now())
        .await?;
    finish(&app, &signed, Section::Users, &uuid, Outcome::Done).await
}

/// `POST /settings/webhook/deliveries/{seq}/retry`: deliver an event again.
pub async fn retry_delivery(
    State(app): State<AppState>,
    PathParam(seq): PathParam,
    sent: SignedForm,
) -> PageResult {
    let seq: i64 = seq.parse().map_err(|_| PageError::NotFound)?;
    app.store
        .retry_delivery(
            sent.signed.session.account,
            seq,
            crate::store::sql::unix_ms(),
        )
        .await?;
    Ok(see_other("/settings/webhook"))
}
