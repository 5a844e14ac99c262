//! `bellbook import`: contacts from NDJSON (each line the body of a
//! `POST /contacts`) or CSV (a header row naming the columns, each row one
//! such body), validated exactly as the API validates that request, and
//! written many to a transaction. A line that does not validate is
//! reported with its number and the API's error and stops nothing; a line
//! whose identifier its channel already has (from an earlier run, or
//! earlier in the file) is skipped, or with `upsert` updates that contact,
//! so an interrupted import run again adds only what is missing. The
//! formats and options are described in docs/import-export.md.

use std::io::BufRead;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::api::contacts::{CreateContactRequest, FRENCH_ALIASES, UpdateContactRequest};
use crate::api::extract::{parse_fields, parse_object};
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::domain::contact::{ContactChanges, NewContact};
use crate::domain::settings::AccountSettings;
use crate::domain::{CustomFieldType, PublicId, Timestamp};
use crate::error::ApiError;
use crate::export::from_spreadsheet;
use crate::store::{AccountId, Imported, NewCustomField, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    Csv,
    Ndjson,
}

/// What an import does beyond creating contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    pub format: ImportFormat,
    /// Create the tags and custom fields (type `text`) that lines name and
    /// the account lacks, instead of rejecting those lines (NDJSON) or
    /// stopping before anything is written (CSV columns).
    pub create_missing: bool,
    /// Update a contact whose identifier its channel has, as
    /// `PATCH /contacts/:uuid` would with the line's fields.
    pub upsert: bool,
}

/// A tag or custom field an import created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatedSetting {
    Tag(String),
    CustomField(String),
}

/// Contacts written per transaction.
const CONTACTS_PER_BATCH: usize = 20_000;

/// How far an import has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read, blank ones included.
    pub lines: u64,
    pub bytes: u64,
    pub imported: u64,
    /// Existing contacts updated (with `upsert`).
    pub updated: u64,
    /// Lines whose contact existed already.
    pub duplicates: u64,
    pub rejected: u64,
}

/// A line that could not be imported, and the API's reason.
#[derive(Debug)]
pub struct Rejection {
    /// 1-based.
    pub line: u64,
    pub error: ApiError,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("reading the input after line {line}: {source}")]
    Read {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    /// The CSV header names columns that are neither contact fields nor
    /// custom fields of the account (and `create_missing` is off).
    #[error(
        "unknown column(s) {}: no such contact field or custom field; nothing was imported \
         (--create-missing creates them as text fields)",
        .0.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ")
    )]
    UnknownColumns(Vec<String>),
    #[error("the CSV header {0}; nothing was imported")]
    Header(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What the reading thread sends the writing side, in input order.
enum FromReader {
    Batch(Parsed),
    /// Tags and custom fields a line names that the account lacks: the
    /// writing side creates them and answers with the settings after.
    Missing {
        tags: Vec<String>,
        fields: Vec<String>,
        reply: oneshot::Sender<Arc<AccountSettings>>,
    },
}

/// One batch from the reading thread.
#[derive(Default)]
struct Parsed {
    rows: Vec<Row>,
    rejections: Vec<Rejection>,
    lines: u64,
    bytes: u64,
}

/// A line that validated: the contact it creates and, with `upsert`, the
/// changes it makes to the contact that has its identifier already.
struct Row {
    line: u64,
    contact: NewContact,
    changes: Option<ContactChanges>,
}

/// Imports every line of `input` into `account`. Lines are read and
/// validated on a thread of their own while earlier batches are written.
/// `rejected` hears of each line refused, `created` of each tag or field
/// made, `progress` of each batch done.
pub async fn import<R: BufRead + Send + 'static>(
    store: &dyn Store,
    account: AccountId,
    input: R,
    options: ImportOptions,
    mut rejected: impl FnMut(Rejection),
    mut created: impl FnMut(CreatedSetting),
    mut progress: impl FnMut(&ImportReport),
) -> Result<ImportReport, ImportError> {
    let settings = store.settings(account).await?;
    let (sender, mut received) = mpsc::channel(2);
    let reader = tokio::task::spawn_blocking(move || {
        let reader = Reader {
            settings,
            options,
            sender,
            batch: Parsed::default(),
        };
        match options.format {
            ImportFormat::Ndjson => reader.read_ndjson(input),
            ImportFormat::Csv => reader.read_csv(input),
        }
    });
    let mut report = ImportReport::default();
    while let Some(message) = received.recv().await {
        let batch = match message {
            FromReader::Missing {
                tags,
                fields,
                reply,
            } => {
                create_missing(store, account, tags, fields, &mut created).await?;
                // The reader may have stopped meanwhile; then nobody asks.
                let _ = reply.send(store.settings(account).await?);
                continue;
            }
            FromReader::Batch(batch) => batch,
        };
        report.lines = batch.lines;
        report.bytes = batch.bytes;
        for rejection in batch.rejections {
            report.rejected += 1;
            rejected(rejection);
        }
        if batch.rows.is_empty() {
            progress(&report);
            continue;
        }
        let (contacts, updates): (Vec<_>, Vec<_>) = batch
            .rows
            .into_iter()
            .map(|row| (row.contact, (row.line, row.changes)))
            .unzip();
        let outcomes = store.import_contacts(account, contacts).await?;
        for (outcome, (line, changes)) in outcomes.into_iter().zip(updates) {
            match (outcome, changes) {
                (Imported::Created, _) => report.imported += 1,
                (Imported::Duplicate(holder), Some(changes)) => {
                    let holder = holder.parse::<PublicId>().map_err(|_| {
                        StoreError::other(format!("a duplicate's holder '{holder}' is no uuid"))
                    })?;
                    match store
                        .update_contact(account, holder, &changes, Timestamp::now())
                        .await
                    {
                        Ok(_) => report.updated += 1,
                        Err(error @ StoreError::Other(_)) => return Err(error.into()),
                        // Say, an assignee deleted since the line was read.
                        Err(error) => {
                            report.rejected += 1;
                            rejected(Rejection {
                                line,
                                error: error.into(),
                            });
                        }
                    }
                }
                (Imported::Duplicate(_), None) => report.duplicates += 1,
            }
        }
        progress(&report);
    }
    reader
        .await
        .map_err(|e| ImportError::Store(StoreError::Other(Box::new(e))))??;
    Ok(report)
}

/// Creates the tags, and the custom fields as `text`, that are missing;
/// one made meanwhile by someone else is taken as it is.
async fn create_missing(
    store: &dyn Store,
    account: AccountId,
    tags: Vec<String>,
    fields: Vec<String>,
    created: &mut impl FnMut(CreatedSetting),
) -> Result<(), ImportError> {
    for name in tags {
        match store.create_tag(account, &name).await {
            Ok(tag) => created(CreatedSetting::Tag(tag.name)),
            Err(StoreError::Conflict(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    for name in fields {
        let field = NewCustomField {
            name,
            kind: CustomFieldType::Text,
            options: Vec::new(),
        };
        match store.create_custom_field(account, &field).await {
            Ok(field) => created(CreatedSetting::CustomField(field.name)),
            Err(StoreError::Conflict(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// The reading thread: lines in, validated batches out.
struct Reader {
    settings: Arc<AccountSettings>,
    options: ImportOptions,
    sender: mpsc::Sender<FromReader>,
    batch: Parsed,
}

/// How a CSV column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    /// A field of the `POST /contacts` body (or `uuid`, `created_at`).
    Contact(&'static str),
    /// A custom field, by its name in the account.
    CustomField(String),
}

/// The names of the contact fields a CSV header may use (any case), and
/// the body field each one fills.
const CSV_HEADERS: [(&str, &str); 12] = [
    ("uuid", "uuid"),
    ("created_at", "created_at"),
    ("name", "name"),
    ("identifier", "identifier"),
    ("phone", "identifier"),
    ("source", "source"),
    ("channel_uuid", "channel_uuid"),
    ("team_uuid", "team_uuid"),
    ("tags", "tags"),
    ("assigned_user", "assigned_user"),
    ("note", "note"),
    ("bot_status", "bot_status"),
];

impl Reader {
    /// Sends the batch when it is full (or `force`d); false when the
    /// writing side has given up (and says why).
    fn send_batch(&mut self, force: bool) -> bool {
        let full = self.batch.rows.len() >= CONTACTS_PER_BATCH
            || self.batch.rejections.len() >= CONTACTS_PER_BATCH;
        if !force && !full {
            return true;
        }
        let next = Parsed {
            lines: self.batch.lines,
            bytes: self.batch.bytes,
            ..Parsed::default()
        };
        let batch = std::mem::replace(&mut self.batch, next);
        self.sender.blocking_send(FromReader::Batch(batch)).is_ok()
    }

    /// Has the writing side create `tags` and `fields`, after the lines
    /// before them, and goes on with the settings that have them.
    fn create(&mut self, tags: Vec<String>, fields: Vec<String>) -> bool {
        if !self.send_batch(true) {
            return false;
        }
        let (reply, answer) = oneshot::channel();
        let asked = FromReader::Missing {
            tags,
            fields,
            reply,
        };
        if self.sender.blocking_send(asked).is_err() {
            return false;
        }
        match answer.blocking_recv() {
            Ok(settings) => {
                self.settings = settings;
                true
            }
            Err(_) => false,
        }
    }

    /// A line's body, validated; with `create_missing`, the tags and
    /// fields it names are made first. False when the writing side gave up.
    fn take(&mut self, line: u64, body: Result<Map<String, Value>, ApiError>) -> bool {
        let body = match body {
            Ok(body) if self.options.create_missing => {
                let (tags, fields) = missing_settings(&body, &self.settings);
                let nothing_missing = tags.is_empty() && fields.is_empty();
                if !nothing_missing && !self.create(tags, fields) {
                    return false;
                }
                Ok(body)
            }
            other => other,
        };
        match body.and_then(|body| row_of(line, body, &self.settings, self.options.upsert)) {
            Ok(row) => self.batch.rows.push(row),
            Err(error) => self.batch.rejections.push(Rejection { line, error }),
        }
        self.send_batch(false)
    }

    fn read_ndjson(mut self, mut input: impl BufRead) -> Result<(), ImportError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = input
                .read_until(b'\n', &mut line)
                .map_err(|source| ImportError::Read {
                    line: self.batch.lines,
                    source,
                })?;
            if read == 0 {
                break;
            }
            self.batch.lines += 1;
            self.batch.bytes += read as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let body = if line.len() > DEFAULT_MAX_BODY_BYTES {
                Err(ApiError::payload_too_large(DEFAULT_MAX_BODY_BYTES))
            } else {
                parse_object(&line)
            };
            if !self.take(self.batch.lines, body) {
                return Ok(());
            }
        }
        self.send_batch(true);
        Ok(())
    }

    fn read_csv(mut self, mut input: impl BufRead) -> Result<(), ImportError> {
        let read_error = |source| ImportError::Read { line: 0, source };
        // A byte order mark is no part of the first column's name.
        if input
            .fill_buf()
            .map_err(read_error)?
            .starts_with(b"\xEF\xBB\xBF")
        {
            input.consume(3);
        }
        let first_line = input.fill_buf().map_err(read_error)?;
        let first_line = first_line.split(|b| *b == b'\n').next().unwrap_or_default();
        let semicolons = first_line.iter().filter(|b| **b == b';').count();
        let commas = first_line.iter().filter(|b| **b == b',').count();
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(if semicolons > commas { b';' } else { b',' })
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut record = csv::ByteRecord::new();
        let csv_error = |line: u64, error: csv::Error| ImportError::Read {
            line,
            source: std::io::Error::other(error),
        };
        if !csv
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(0, e))?
        {
            return Err(ImportError::Header("is missing: the file is empty".into()));
        }
        let columns = self.columns(&record)?;
        self.batch.lines = 1;
        loop {
            let line = csv.position().line();
            let more = csv
                .read_byte_record(&mut record)
                .map_err(|e| csv_error(line, e))?;
            if !more {
                break;
            }
            let line = record.position().map_or(line, csv::Position::line);
            self.batch.lines = csv.position().line().saturating_sub(1).max(line);
            self.batch.bytes = csv.position().byte();
            if record
                .iter()
                .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            let body = csv_body(&record, &columns, &self.settings);
            if !self.take(line, body) {
                return Ok(());
            }
        }
        self.send_batch(true);
        Ok(())
    }

    /// What each column of the header is; unknown ones stop the import
    /// before anything is written, or are created with `create_missing`.
    fn columns(&mut self, header: &csv::ByteRecord) -> Result<Vec<Column>, ImportError> {
        let mut columns = Vec::with_capacity(header.len());
        let mut unknown = Vec::new();
        for cell in header {
            let name = std::str::from_utf8(cell)
                .map_err(|_| ImportError::Header("is not valid UTF-8".into()))?;
            let name = from_spreadsheet(name.trim()).trim();
            if name.is_empty() {
                return Err(ImportError::Header("has a column without a name".into()));
            }
            let column = match CSV_HEADERS
                .iter()
                .find(|(header, _)| header.eq_ignore_ascii_case(name))
            {
                Some((_, field)) => Column::Contact(field),
                None => match self.settings.custom_field_named(name) {
                    Some(field) => Column::CustomField(field.name.clone()),
                    None => {
                        unknown.push(name.to_owned());
                        Column::CustomField(name.to_owned())
                    }
                },
            };
            if columns.contains(&column) {
                return Err(ImportError::Header(format!(
                    "names the column '{name}' twice"
                )));
            }
            columns.push(column);
        }
        if !unknown.is_empty() {
            if !self.options.create_missing {
                return Err(ImportError::UnknownColumns(unknown));
            }
            if !self.create(Vec::new(), unknown) {
                return Ok(columns);
            }
        }
        Ok(columns)
    }
}

/// A CSV row as the body of a `POST /contacts`: each non-empty cell its
/// column's field, custom field cells in the form their type takes.
fn csv_body(
    record: &csv::ByteRecord,
    columns: &[Column],
    settings: &AccountSettings,
) -> Result<Map<String, Value>, ApiError> {
    if record.as_slice().len() > DEFAULT_MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(DEFAULT_MAX_BODY_BYTES));
    }
    if record.len() != columns.len() {
        return Err(ApiError::bad_request(
            "invalid_row",
            format!(
                "the row has {} cell(s); the header names {} column(s)",
                record.len(),
                columns.len()
            ),
        ));
    }
    let mut body = Map::new();
    let mut fields = Map::new();
    for (cell, column) in record.iter().zip(columns) {
        let name = match column {
            Column::Contact(name) => *name,
            Column::CustomField(name) => name.as_str(),
        };
        let Ok(cell) = std::str::from_utf8(cell) else {
            return Err(ApiError::invalid_field(
                name,
                "invalid_encoding",
                format!("the '{name}' cell is not valid UTF-8"),
            ));
        };
        let cell = from_spreadsheet(cell);
        if cell.trim().is_empty() {
            continue;
        }
        match column {
            Column::Contact(field) => {
                body.insert((*field).to_owned(), cell.into());
            }
            Column::CustomField(name) => {
                let checkbox = settings
                    .custom_field_named(name)
                    .is_some_and(|f| f.kind == CustomFieldType::Checkbox);
                fields.insert(name.clone(), field_value(cell, checkbox));
            }
        }
    }
    if !fields.is_empty() {
        body.insert("custom_fields".into(), Value::Object(fields));
    }
    // A spreadsheet of phone numbers seldom says where they chat.
    body.entry("source")
        .or_insert_with(|| DEFAULT_CSV_SOURCE.into());
    Ok(body)
}

/// The source of a CSV row without one.
const DEFAULT_CSV_SOURCE: &str = "whatsapp";

/// A custom field cell as the API takes it: a checkbox's options as the
/// JSON array an export writes, or separated by commas; anything else as
/// text (a number field takes a string holding a number).
fn field_value(cell: &str, checkbox: bool) -> Value {
    if !checkbox {
        return cell.into();
    }
    if let Ok(Value::Array(options)) = serde_json::from_str::<Value>(cell) {
        return Value::Array(options);
    }
    Value::Array(
        cell.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(Value::from)
            .collect(),
    )
}

/// The tags and custom fields `body` names that the account lacks (only
/// names that could be created: non-blank, no commas in tags).
fn missing_settings(
    body: &Map<String, Value>,
    settings: &AccountSettings,
) -> (Vec<String>, Vec<String>) {
    let tags = match body.get("tags") {
        Some(Value::String(list)) => list.split(',').map(str::to_owned).collect(),
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let mut missing_tags: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim();
        if !tag.is_empty()
            && !tag.contains(',')
            && tag.chars().count() <= MAX_CREATED_NAME_CHARS
            && settings.tag_named(tag).is_none()
            && !missing_tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
        {
            missing_tags.push(tag.to_owned());
        }
    }
    let fields = [
        "custom_fields",
        "champs_personnalisés",
        "champs_personnalises",
    ]
    .iter()
    .filter_map(|key| body.get(*key)?.as_object())
    .flat_map(|fields| fields.keys())
    .map(|name| name.trim())
    .filter(|name| !name.is_empty() && name.chars().count() <= MAX_CREATED_NAME_CHARS)
    .filter(|name| settings.custom_field_named(name).is_none())
    .map(str::to_owned)
    .collect();
    (missing_tags, fields)
}

/// The longest tag or custom field name an import creates (the settings
/// API's limit); a longer one stays unknown and its line is rejected.
const MAX_CREATED_NAME_CHARS: usize = 255;

/// A line as `POST /contacts` would take it: the same fields, the same
/// checks against the account; besides them `uuid` and `created_at` (what
/// an export writes), kept when given and valid.
fn row_of(
    line: u64,
    mut body: Map<String, Value>,
    settings: &AccountSettings,
    upsert: bool,
) -> Result<Row, ApiError> {
    let uuid = match body.remove("uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().parse::<PublicId>().is_ok() => {
            text.trim().parse::<PublicId>().ok()
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "uuid",
                "invalid_uuid",
                "'uuid' must be a contact uuid (32 hex characters)",
            ));
        }
    };
    let created_at = match body.remove("created_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if Timestamp::parse(text.trim()).is_some() => {
            Timestamp::parse(text.trim())
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "created_at",
                "invalid_timestamp",
                "'created_at' must be a time such as 2020-11-13T21:08:53Z",
            ));
        }
    };
    let changes = if upsert {
        let (request, errors) = parse_fields::<UpdateContactRequest>(body.clone(), &FRENCH_ALIASES);
        Some(
            request
                .validate(settings, errors)
                .map_err(ApiError::validation)?,
        )
    } else {
        None
    };
    let (request, errors) = parse_fields::<CreateContactRequest>(body, &FRENCH_ALIASES);
    let mut contact = request
        .validate(settings, errors)
        .map_err(ApiError::validation)?;
    if let Some(uuid) = uuid {
        contact.uuid = uuid;
        contact.uuid_given = true;
    }
    if let Some(created_at) = created_at {
        contact.created_at = created_at;
    }
    Ok(Row {
        line,
        contact,
        changes,
    })
}

/// The errors file's line for a rejection: the API's error body with the
/// line number beside it.
pub fn rejection_json(rejection: Rejection) -> String {
    let mut value =
        serde_json::to_value(rejection.error.into_body()).unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("line".to_owned(), rejection.line.into());
    }
    value.to_string()
}
