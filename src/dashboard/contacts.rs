//! `/contacts` (the list, with search and filters, and the create form)
//! and `/contacts/{uuid}` (a contact's `href`: every field, the edit form,
//! delete).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::form::{Form, comma_list};
use super::session::{Signed, SignedForm};
use super::{Chrome, PageError, PageResult, Problems, render, see_other};
use crate::api::AppState;
use crate::api::contacts::{ContactListQuery, list_contacts};
use crate::api::extract::{FromQuery, JsonObject, PathParam, QueryParams};
use crate::api::views::ContactView;
use crate::domain::contact::ContactRecord;
use crate::domain::custom_field::decode_checked;
use crate::domain::settings::{AccountSettings, Funnel};
use crate::domain::{CustomFieldType, FieldError, PublicId, Source};
use crate::error::ApiError;

/// Choices the forms offer, from the account's settings.
struct Choices {
    tags: Vec<String>,
    teams: Vec<(String, String)>,
    users: Vec<(String, String)>,
    funnels: Vec<(String, String)>,
    sources: Vec<&'static str>,
}

impl Choices {
    fn of(settings: &AccountSettings) -> Choices {
        Choices {
            tags: settings.tags.iter().map(|t| t.name.clone()).collect(),
            teams: settings
                .teams
                .iter()
                .map(|t| (t.uuid.to_string(), t.name.clone()))
                .collect(),
            users: settings
                .users
                .iter()
                .map(|u| (u.email.clone(), format!("{} <{}>", u.name, u.email)))
                .collect(),
            funnels: settings
                .funnels
                .iter()
                .map(|f| (f.uuid.to_string(), funnel_label(f)))
                .collect(),
            sources: Source::ALL.iter().map(|s| s.as_str()).collect(),
        }
    }
}

/// A funnel as people read it: its emoji, then its name.
fn funnel_label(funnel: &Funnel) -> String {
    match &funnel.emoji {
        Some(emoji) => format!("{emoji} {}", funnel.name),
        None => funnel.name.clone(),
    }
}

/// What the create form holds (empty, or as sent when it was refused).
#[derive(Debug, Default)]
struct NewContactForm {
    name: String,
    identifier: String,
    source: String,
    tags: String,
    team_uuid: String,
}

#[derive(Template)]
#[template(path = "contacts.html")]
struct ListPage {
    chrome: Chrome,
    choices: Choices,
    contacts: Vec<ContactView>,
    total: i64,
    /// The filters as given, to fill the search form again.
    q: String,
    tags: String,
    tags_mode: String,
    source: String,
    team_uuid: String,
    /// Where the next page is, when there is one.
    next: Option<String>,
    /// Why the filters could not be applied.
    filter_problem: Option<String>,
    create: NewContactForm,
    problems: Problems,
}

/// The query string's non-empty parameters (an empty filter input means
/// "no filter", not a filter by "").
fn given(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn list_page(
    app: &AppState,
    signed: &Signed,
    pairs: Vec<(String, String)>,
    create: NewContactForm,
    problems: Problems,
) -> PageResult {
    let settings = app.store.settings(signed.session.account).await?;
    let value = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let mut page = ListPage {
        chrome: Chrome::new(signed, "contacts"),
        choices: Choices::of(&settings),
        contacts: Vec::new(),
        total: 0,
        q: value("q"),
        tags: value("tags"),
        tags_mode: value("tags_mode"),
        source: value("source"),
        team_uuid: value("team_uuid"),
        next: None,
        filter_problem: None,
        create,
        problems,
    };
    // The API's own query parsing and listing: the same limits, the same
    // messages, the same index-backed pages.
    let listed = match QueryParams::checked(pairs.clone())
        .and_then(|params| ContactListQuery::from_query(&params))
    {
        Ok(query) => list_contacts(app, signed.session.account, &query).await,
        Err(error) => Err(error),
    };
    match listed {
        Ok(listed) => {
            page.total = listed.page.total;
            page.contacts = listed
                .page
                .contacts
                .into_iter()
                .map(|c| app.links.contact(c, false))
                .collect();
            page.next = listed.next.map(|cursor| {
                let mut next = form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs.iter().filter(|(k, _)| k != "after" && k != "page") {
                    next.append_pair(k, v);
                }
                next.append_pair("after", &cursor);
                format!("/contacts?{}", next.finish())
            });
        }
        Err(error) if error.status().is_client_error() => {
            page.filter_problem = Some(error.message().to_owned());
        }
        Err(error) => return Err(error.into()),
    }
    let status = match (&page.filter_problem, page.problems.any()) {
        (_, true) => page.problems.page_status(),
        (Some(_), false) => StatusCode::BAD_REQUEST,
        (None, false) => StatusCode::OK,
    };
    Ok(render(status, &page))
}

/// `GET /contacts`.
pub async fn list(
    State(app): State<AppState>,
    signed: Signed,
    RawQuery(query): RawQuery,
) -> PageResult {
    list_page(
        &app,
        &signed,
        given(query.as_deref()),
        NewContactForm::default(),
        Problems::default(),
    )
    .await
}

/// `POST /contacts`: `POST /v1/contacts` from a form.
pub async fn create(State(app): State<AppState>, sent: SignedForm) -> PageResult {
    let SignedForm { signed, form } = sent;
    let mut body = Map::new();
    for name in ["name", "identifier", "source", "team_uuid"] {
        form.copy_text(&mut body, name);
    }
    let tags = form.get("tags").unwrap_or_default();
    body.insert("tags".to_owned(), Value::Array(comma_list(tags)));
    let answer =
        crate::api::contacts::create(State(app.clone()), signed.caller(), JsonObject(body)).await;
    match answer {
        Ok(created) => match created.0.contact.first() {
            Some(contact) => Ok(see_other(&format!("/contacts/{}", contact.uuid))),
            None => Err(PageError::Internal),
        },
        Err(error) if error.status().is_client_error() => {
            let refused = NewContactForm {
                name: form.get("name").unwrap_or_default().to_owned(),
                identifier: form.get("identifier").unwrap_or_default().to_owned(),
                source: form.get("source").unwrap_or_default().to_owned(),
                tags: tags.to_owned(),
                team_uuid: form.get("team_uuid").unwrap_or_default().to_owned(),
            };
            list_page(&app, &signed, Vec::new(), refused, Problems::of(&error)).await
        }
        Err(error) => Err(error.into()),
    }
}

/// One custom field's input on the contact form.
#[derive(Debug, Clone)]
struct FieldInput {
    /// The form name of its input: `field:` and the field's name.
    input: String,
    /// Its element id (names may hold spaces, which ids cannot).
    id: String,
    /// The API's name of the value (`custom_fields.<name>`), for errors.
    path: String,
    name: String,
    kind: CustomFieldType,
    options: Vec<String>,
    /// The value as text (every type but checkbox).
    value: String,
    /// The checked options (checkbox).
    checked: Vec<String>,
}

impl FieldInput {
    fn html_type(&self) -> &'static str {
        // A number is typed as text: a number input would refuse the exact
        // decimals the API keeps (`12.50`, `1e3`) and any wrong value the
        // API should explain.
        match self.kind {
            CustomFieldType::Date => "date",
            CustomFieldType::Email => "email",
            _ => "text",
        }
    }

    fn is_checked(&self, option: &str) -> bool {
        self.checked.iter().any(|c| c == option)
    }
}

/// The contact form's values: as stored, or as sent when refused.
#[derive(Debug, Clone)]
struct ContactForm {
    name: String,
    tags: Vec<String>,
    fields: Vec<FieldInput>,
    assigned_user: String,
    team_uuid: String,
    funnel: String,
    note: String,
    bsuid: String,
}

impl ContactForm {
    fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    fn stored(record: &ContactRecord, settings: &AccountSettings) -> ContactForm {
        let fields = settings
            .custom_fields
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let value = record
                    .custom_fields
                    .iter()
                    .find(|v| v.name == field.name)
                    .map(|v| v.value.as_str().to_owned())
                    .unwrap_or_default();
                let checked = match field.kind {
                    CustomFieldType::Checkbox => decode_checked(&value),
                    _ => Vec::new(),
                };
                FieldInput {
                    input: format!("field:{}", field.name),
                    id: format!("field-{index}"),
                    path: format!("custom_fields.{}", field.name),
                    name: field.name.clone(),
                    kind: field.kind,
                    options: field.options.clone(),
                    value,
                    checked,
                }
            })
            .collect();
        ContactForm {
            name: record.name.clone(),
            tags: record.tags.clone(),
            fields,
            assigned_user: record.assigned_user.clone().unwrap_or_default(),
            team_uuid: record
                .team
                .as_ref()
                .map(|t| t.uuid.to_string())
                .unwrap_or_default(),
            funnel: record.funnel.map(|f| f.to_string()).unwrap_or_default(),
            note: record.note.clone().unwrap_or_default(),
            bsuid: record.bsuid.clone().unwrap_or_default(),
        }
    }

    /// The form as sent, over the stored one (whose field list it keeps).
    fn sent(mut self, form: &Form) -> ContactForm {
        let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
        self.name = text("name");
        self.tags = form.all("tags");
        for field in &mut self.fields {
            match field.kind {
                CustomFieldType::Checkbox => field.checked = form.all(&field.input),
                _ => field.value = text(&field.input),
            }
        }
        self.assigned_user = text("assigned_user");
        self.team_uuid = text("team_uuid");
        self.funnel = text("funnel");
        self.note = text("note");
        self.bsuid = text("bsuid");
        self
    }

    /// The `PATCH /v1/contacts/{uuid}` body that makes the stored contact
    /// what the form says: only what changed, so that saving an untouched
    /// form records no event.
    fn patch(&self, stored: &ContactForm) -> Map<String, Value> {
        let mut body = Map::new();
        let string = |s: &str| Value::String(s.to_owned());
        if self.name != stored.name {
            body.insert("name".into(), string(&self.name));
        }
        if !same_names(&self.tags, &stored.tags) {
            body.insert(
                "tags".into(),
                Value::Array(self.tags.iter().map(|t| string(t)).collect()),
            );
        }
        let mut fields = Map::new();
        for (sent, old) in self.fields.iter().zip(&stored.fields) {
            let value = match sent.kind {
                CustomFieldType::Checkbox if same_names(&sent.checked, &old.checked) => continue,
                CustomFieldType::Checkbox if sent.checked.is_empty() => Value::Null,
                CustomFieldType::Checkbox => {
                    Value::Array(sent.checked.iter().map(|c| string(c)).collect())
                }
                _ if sent.value == old.value => continue,
                _ if sent.value.trim().is_empty() => Value::Null,
                _ => string(&sent.value),
            };
            fields.insert(sent.name.clone(), value);
        }
        if !fields.is_empty() {
            body.insert("custom_fields".into(), Value::Object(fields));
        }
        if self.assigned_user != stored.assigned_user {
            if self.assigned_user.is_empty() {
                body.insert("unassign_user".into(), Value::Bool(true));
            } else {
                body.insert("assigned_user".into(), string(&self.assigned_user));
            }
        }
        if self.team_uuid != stored.team_uuid && !self.team_uuid.is_empty() {
            body.insert("team_uuid".into(), string(&self.team_uuid));
        }
        if self.note != stored.note {
            body.insert("note".into(), string(&self.note));
        }
        if self.bsuid != stored.bsuid {
            let bsuid = match self.bsuid.trim() {
                "" => Value::Null,
                _ => string(&self.bsuid),
            };
            body.insert("bsuid".into(), bsuid);
        }
        body
    }
}

/// Whether two lists of tag or option names hold the same names, in any
/// order and case: checkboxes come back in the page's order, which need
/// not be the order the contact's were set in.
fn same_names(a: &[String], b: &[String]) -> bool {
    let folded = |names: &[String]| {
        let mut names: Vec<String> = names.iter().map(|n| crate::domain::fold_case(n)).collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    folded(a) == folded(b)
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    chrome: Chrome,
    choices: Choices,
    contact: ContactView,
    bot: String,
    /// The funnel's emoji and name.
    funnel: Option<String>,
    form: ContactForm,
    problems: Problems,
    /// The contact was just saved.
    saved: bool,
}

fn contact_id(uuid: &str) -> Result<PublicId, PageError> {
    uuid.parse().map_err(|_| PageError::NotFound)
}

async fn contact_page(
    app: &AppState,
    signed: &Signed,
    record: ContactRecord,
    sent: Option<(&Form, Problems)>,
    saved: bool,
) -> PageResult {
    let settings = app.store.settings(signed.session.account).await?;
    let stored = ContactForm::stored(&record, &settings);
    let (form, problems) = match sent {
        Some((form, problems)) => (stored.sent(form), problems),
        None => (stored, Problems::default()),
    };
    let status = problems.page_status();
    let bot = match &record.bot {
        Some(bot) => format!(
            "{} ({})",
            bot.bot.name,
            bot.public_status(record.closed_at.is_none())
        ),
        None => "none".to_owned(),
    };
    let funnel = record
        .funnel
        .and_then(|f| settings.funnel(f))
        .map(funnel_label);
    let page = ContactPage {
        chrome: Chrome::new(signed, "contacts"),
        funnel,
        choices: Choices::of(&settings),
        contact: app.links.contact(record, false),
        bot,
        form,
        problems,
        saved,
    };
    Ok(render(status, &page))
}

#[derive(Debug, serde::Deserialize, Default)]
pub struct ShowQuery {
    saved: Option<String>,
}

/// `GET /contacts/{uuid}`.
pub async fn show(
    State(app): State<AppState>,
    signed: Signed,
    PathParam(uuid): PathParam,
    axum::extract::Query(query): axum::extract::Query<ShowQuery>,
) -> PageResult {
    let record = app
        .store
        .contact(signed.session.account, contact_id(&uuid)?)
        .await?;
    contact_page(&app, &signed, record, None, query.saved.is_some()).await
}

/// `POST /contacts/{uuid}`: the edit form, as one `PATCH /v1/contacts` (all
/// of it is saved, or none of it), then the funnel and the bot.
pub async fn save(
    State(app): State<AppState>,
    PathParam(uuid): PathParam,
    sent: SignedForm,
) -> PageResult {
    let SignedForm { signed, form } = sent;
    let account = signed.session.account;
    let id = contact_id(&uuid)?;
    let record = app.store.contact(account, id).await?;
    let settings = app.store.settings(account).await?;
    let stored = ContactForm::stored(&record, &settings);
    let wanted = stored.clone().sent(&form);
    let mut body = wanted.patch(&stored);
    if let Some(command) = form.get("bot_status").filter(|c| !c.is_empty()) {
        body.insert("bot_status".into(), Value::String(command.to_owned()));
    }
    // The funnel is set by its own request: it is checked first, so a
    // funnel that is gone refuses the whole form before anything is saved.
    let funnel_changed = wanted.funnel != stored.funnel;
    if funnel_changed && !wanted.funnel.is_empty() {
        let known = wanted
            .funnel
            .parse()
            .ok()
            .and_then(|f| settings.funnel(f))
            .is_some();
        if !known {
            let problems = Problems::of(&ApiError::validation(vec![FieldError::new(
                "funnel",
                "unknown_funnel",
                "not a funnel of this account",
            )]));
            return contact_page(&app, &signed, record, Some((&form, problems)), false).await;
        }
    }
    if !body.is_empty() {
        let answer = crate::api::contacts::update(
            State(app.clone()),
            signed.caller(),
            PathParam(uuid.clone()),
            JsonObject(body),
        )
        .await;
        match answer {
            Ok(_) => {}
            Err(error) if error.status() == StatusCode::NOT_FOUND => {
                return Err(PageError::NotFound);
            }
            Err(error) if error.status().is_client_error() => {
                let problems = Problems::of(&error);
                return contact_page(&app, &signed, record, Some((&form, problems)), false).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    if funnel_changed {
        let funnel = match wanted.funnel.as_str() {
            "" => Value::Null,
            uuid => Value::String(uuid.to_owned()),
        };
        let mut body = Map::new();
        body.insert("funnel_id".into(), funnel);
        crate::api::conversations::update_funnel_post(
            State(app.clone()),
            signed.caller(),
            PathParam(uuid.clone()),
            JsonObject(body),
        )
        .await?;
    }
    Ok(see_other(&format!("/contacts/{uuid}?saved=1")))
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmDelete {
    chrome: Chrome,
    contact: ContactView,
}

/// `GET /contacts/{uuid}/delete`: are you sure?
pub async fn confirm_delete(
    State(app): State<AppState>,
    signed: Signed,
    PathParam(uuid): PathParam,
) -> PageResult {
    let record = app
        .store
        .contact(signed.session.account, contact_id(&uuid)?)
        .await?;
    Ok(render(
        StatusCode::OK,
        &ConfirmDelete {
            chrome: Chrome::new(&signed, "contacts"),
            contact: app.links.contact(record, false),
        },
    ))
}

/// `POST /contacts/{uuid}/delete`.
pub async fn delete(
    State(app): State<AppState>,
    PathParam(uuid): PathParam,
    sent: SignedForm,
) -> PageResult {
    contact_id(&uuid)?;
    crate::api::contacts::delete(State(app.clone()), sent.signed.caller(), PathParam(uuid)).await?;
    Ok(see_other("/contacts"))
}
