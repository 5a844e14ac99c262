//! `/chat/{uuid}`, a contact's `conversationHref`: the timeline of notes
//! and recorded events, newest first, a note form, open and close.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::session::{Signed, SignedForm};
use super::{Chrome, PageError, PageResult, Problems, render, see_other};
use crate::api::AppState;
use crate::api::conversations::MESSAGES_PAGE_SIZE;
use crate::api::extract::{JsonObject, PathParam};
use crate::api::views::{ContactView, page_count};
use crate::domain::PublicId;
use crate::domain::contact::ContactRecord;
use crate::store::MessageRecord;

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    chrome: Chrome,
    /// The conversation's uuid, for the forms' addresses.
    conversation: String,
    contact: ContactView,
    open: bool,
    messages: Vec<MessageRecord>,
    page: u32,
    pages: u32,
    note: String,
    problems: Problems,
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ChatQuery {
    page: Option<u32>,
}

/// The contact whose conversation `uuid` is, in the signed-in account.
async fn conversation(
    app: &AppState,
    signed: &Signed,
    uuid: &str,
) -> Result<ContactRecord, PageError> {
    let id: PublicId = uuid.parse().map_err(|_| PageError::NotFound)?;
    Ok(app
        .store
        .contact_by_conversation(signed.session.account, id)
        .await?)
}

async fn chat_page(
    app: &AppState,
    signed: &Signed,
    uuid: &str,
    page: u32,
    note: String,
    problems: Problems,
) -> PageResult {
    let contact = conversation(app, signed, uuid).await?;
    let page = page.max(1);
    let messages = app
        .store
        .list_messages(
            signed.session.account,
            contact.uuid,
            page,
            MESSAGES_PAGE_SIZE,
        )
        .await?;
    let status = problems.page_status();
    let chat = ChatPage {
        chrome: Chrome::new(signed, "contacts"),
        conversation: uuid.to_owned(),
        open: contact.closed_at.is_none(),
        contact: app.links.contact(contact, false),
        pages: page_count(messages.total, MESSAGES_PAGE_SIZE).max(1),
        messages: messages.messages,
        page,
        note,
        problems,
    };
    Ok(render(status, &chat))
}

/// `GET /chat/{uuid}`.
pub async fn show(
    State(app): State<AppState>,
    signed: Signed,
    PathParam(uuid): PathParam,
    Query(query): Query<ChatQuery>,
) -> PageResult {
    let page = query.page.unwrap_or(1);
    chat_page(
        &app,
        &signed,
        &uuid,
        page,
        String::new(),
        Problems::default(),
    )
    .await
}

/// `POST /chat/{uuid}/note`: `POST /v1/contacts/{uuid}/conversation/note`.
pub async fn note(
    State(app): State<AppState>,
    PathParam(uuid): PathParam,
    sent: SignedForm,
) -> PageResult {
    let SignedForm { signed, form } = sent;
    let contact = conversation(&app, &signed, &uuid).await?;
    let text = form.get("text").unwrap_or_default().to_owned();
    let mut body = Map::new();
    body.insert("text".into(), Value::String(text.clone()));
    let answer = crate::api::conversations::note(
        State(app.clone()),
        signed.caller(),
        PathParam(contact.uuid.to_string()),
        JsonObject(body),
    )
    .await;
    match answer {
        Ok(_) => Ok(see_other(&format!("/chat/{uuid}"))),
        Err(error) if error.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            chat_page(&app, &signed, &uuid, 1, text, Problems::of(&error)).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /chat/{uuid}/close`.
pub async fn close(
    State(app): State<AppState>,
    PathParam(uuid): PathParam,
    sent: SignedForm,
) -> PageResult {
    let contact = conversation(&app, &sent.signed, &uuid).await?;
    crate::api::conversations::close(
        State(app.clone()),
        sent.signed.caller(),
        PathParam(contact.uuid.to_string()),
    )
    .await?;
    Ok(see_other(&format!("/chat/{uuid}")))
}

/// `POST /chat/{uuid}/open`.
pub async fn open(
    State(app): State<AppState>,
    PathParam(uuid): PathParam,
    sent: SignedForm,
) -> PageResult {
    let contact = conversation(&app, &sent.signed, &uuid).await?;
    crate::api::conversations::open(
        State(app.clone()),
        sent.signed.caller(),
        PathParam(contact.uuid.to_string()),
    )
    .await?;
    Ok(see_other(&format!("/chat/{uuid}")))
}
