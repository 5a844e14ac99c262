//! Exports: an account's contacts, oldest first, as NDJSON (each line the
//! body of a `POST /contacts` with the contact's `uuid` and `created_at`
//! beside it) or as CSV (the columns `bellbook import` reads), written a
//! stretch at a time so that memory stays flat however many there are.
//! `bellbook export` and `GET /v1/contacts/export` share it; what the
//! lines hold is described in docs/import-export.md.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::domain::contact::ContactRecord;
use crate::domain::settings::AccountSettings;
use crate::store::{AccountId, ContactFilter, Store, StoreResult};

/// Contacts read per statement.
const CONTACTS_PER_STRETCH: u32 = 500;

/// The columns of a CSV export before the custom fields, in order; all of
/// them `bellbook import` reads back.
pub const CSV_COLUMNS: [&str; 10] = [
    "uuid",
    "created_at",
    "name",
    "identifier",
    "source",
    "channel_uuid",
    "team_uuid",
    "tags",
    "assigned_user",
    "note",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

/// Where an export has got to: the walk over the account's contacts in
/// the order they were created, among those that existed when it began.
#[derive(Debug)]
pub struct ExportWalk {
    account: AccountId,
    filter: ContactFilter,
    after: i64,
    watermark: Option<i64>,
    done: bool,
}

impl ExportWalk {
    pub fn new(account: AccountId, filter: ContactFilter) -> Self {
        ExportWalk {
            account,
            filter,
            after: 0,
            watermark: None,
            done: false,
        }
    }

    /// The next contacts, or `None` once every one has been read.
    pub async fn next(&mut self, store: &dyn Store) -> StoreResult<Option<Vec<ContactRecord>>> {
        if self.done {
            return Ok(None);
        }
        let stretch = store
            .export_contacts(
                self.account,
                &self.filter,
                self.after,
                self.watermark,
                CONTACTS_PER_STRETCH,
            )
            .await?;
        self.watermark = Some(stretch.watermark);
        match stretch.last {
            Some(last) => self.after = last,
            None => self.done = true,
        }
        if stretch.contacts.is_empty() {
            return Ok(None);
        }
        Ok(Some(stretch.contacts))
    }
}

/// Turns contacts into the bytes of an export.
pub enum ExportEncoder {
    Ndjson,
    Csv {
        /// The account's custom fields when the export began: its columns.
        fields: Vec<String>,
    },
}

impl ExportEncoder {
    pub fn new(format: ExportFormat, settings: &AccountSettings) -> Self {
        match format {
            ExportFormat::Ndjson => ExportEncoder::Ndjson,
            ExportFormat::Csv => ExportEncoder::Csv {
                fields: settings
                    .custom_fields
                    .iter()
                    .map(|f| f.name.clone())
                    .collect(),
            },
        }
    }

    /// What comes before the first contact: the CSV header row.
    pub fn start(&self) -> std::io::Result<Vec<u8>> {
        match self {
            ExportEncoder::Ndjson => Ok(Vec::new()),
            ExportEncoder::Csv { fields } => {
                let mut writer = csv::Writer::from_writer(Vec::new());
                let header = CSV_COLUMNS
                    .iter()
                    .map(|c| Cow::Borrowed(*c))
                    .chain(fields.iter().map(|f| spreadsheet_safe(f)));
                writer.write_record(header.map(Cow::into_owned))?;
                finish(writer)
            }
        }
    }

    pub fn encode(&self, contacts: &[ContactRecord]) -> std::io::Result<Vec<u8>> {
        match self {
            ExportEncoder::Ndjson => {
                let mut out = Vec::with_capacity(contacts.len() * 512);
                for contact in contacts {
                    serde_json::to_writer(&mut out, &Value::Object(import_body(contact)))?;
                    out.push(b'\n');
                }
                Ok(out)
            }
            ExportEncoder::Csv { fields } => {
                let mut writer = csv::Writer::from_writer(Vec::with_capacity(contacts.len() * 256));
                for contact in contacts {
                    writer.write_record(csv_row(contact, fields))?;
                }
                finish(writer)
            }
        }
    }
}

fn finish(writer: csv::Writer<Vec<u8>>) -> std::io::Result<Vec<u8>> {
    writer.into_inner().map_err(|e| e.into_error())
}

/// The contact as the body of a `POST /contacts` that recreates it, with
/// its uuid and creation time (which `bellbook import` keeps). Custom
/// field values are written as the API shows them, checkboxes as the JSON
/// text of their options, which a checkbox field takes as well as an
/// array and a text field (an import's `--create-missing`) keeps as is. The channel
/// and team are left out when they are the account's main channel of the
/// source and its default team, so that the line lands in another account
/// (whose main channel and default team have other uuids) as it was.
pub fn import_body(contact: &ContactRecord) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("uuid".into(), contact.uuid.to_string().into());
    body.insert("created_at".into(), contact.created_at.to_string().into());
    body.insert("name".into(), contact.name.clone().into());
    body.insert("identifier".into(), contact.identifier.clone().into());
    body.insert("source".into(), contact.source.as_str().into());
    if let Some(channel) = channel_uuid(contact) {
        body.insert("channel_uuid".into(), channel.into());
    }
    if let Some(team) = team_uuid(contact) {
        body.insert("team_uuid".into(), team.into());
    }
    body.insert("tags".into(), contact.tags.clone().into());
    let fields = contact
        .custom_fields
        .iter()
        .map(|f| (f.name.clone(), f.value.as_str().into()))
        .collect();
    body.insert("custom_fields".into(), Value::Object(fields));
    if let Some(user) = &contact.assigned_user {
        body.insert("assigned_user".into(), user.clone().into());
    }
    if let Some(note) = &contact.note {
        body.insert("note".into(), note.clone().into());
    }
    body
}

fn channel_uuid(contact: &ContactRecord) -> Option<String> {
    (!contact.channel.main).then(|| contact.channel.uuid.to_string())
}

fn team_uuid(contact: &ContactRecord) -> Option<String> {
    contact
        .team
        .as_ref()
        .filter(|team| !team.is_default)
        .map(|team| team.uuid.to_string())
}

/// The contact's CSV row: [`CSV_COLUMNS`], then its value of each of
/// `fields` (empty when it has none); checkboxes as the JSON array the API
/// shows. Every cell is made [`spreadsheet_safe`].
fn csv_row(contact: &ContactRecord, fields: &[String]) -> Vec<String> {
    let mut row: Vec<String> = Vec::with_capacity(CSV_COLUMNS.len() + fields.len());
    row.push(contact.uuid.to_string());
    row.push(contact.created_at.to_string());
    row.push(contact.name.clone());
    row.push(contact.identifier.clone());
    row.push(contact.source.as_str().to_owned());
    row.push(channel_uuid(contact).unwrap_or_default());
    row.push(team_uuid(contact).unwrap_or_default());
    row.push(contact.tags.join(","));
    row.push(contact.assigned_user.clone().unwrap_or_default());
    row.push(contact.note.clone().unwrap_or_default());
    for field in fields {
        let value = contact
            .custom_fields
            .iter()
            .find(|f| &f.name == field)
            .map(|f| f.value.as_str())
            .unwrap_or_default();
        row.push(value.to_owned());
    }
    row.into_iter()
        .map(|cell| match spreadsheet_safe(&cell) {
            Cow::Borrowed(_) => cell,
            Cow::Owned(safe) => safe,
        })
        .collect()
}

/// Characters that make a spreadsheet read a cell as a formula (`=`, `+`,
/// `-`, `@`, and a tab or carriage return before them), and the quote that
/// marks a cell as escaped.
const FORMULA_STARTS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// A cell no spreadsheet runs as a formula: one starting with any of
/// [`FORMULA_STARTS`] gets a `'` in front (OWASP's advice), which
/// spreadsheets show as text and [`from_spreadsheet`] takes off again, so
/// a `+39…` phone number or `=HYPERLINK(…)` name round-trips exactly.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A cell as it was before [`spreadsheet_safe`]: a leading `'` is dropped
/// when what follows it would have been escaped. Any other cell, `'` and
/// all, is taken as written.
pub fn from_spreadsheet(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_are_escaped_and_come_back() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+39 333 1234567"), "'+39 333 1234567");
        assert_eq!(spreadsheet_safe("Ada"), "Ada");
        assert_eq!(spreadsheet_safe("'quoted"), "''quoted");
        assert_eq!(from_spreadsheet("'=1+1"), "=1+1");
        assert_eq!(from_spreadsheet("'plain"), "'plain");
        assert_eq!(from_spreadsheet("''quoted"), "'quoted");
    }

    proptest! {
        #[test]
        fn every_cell_round_trips(cell in ".*") {
            let safe = spreadsheet_safe(&cell);
            prop_assert!(!safe.starts_with(['=', '+', '-', '@', '\t', '\r']));
            prop_assert_eq!(from_spreadsheet(&safe), cell.as_str());
        }
    }
}
