//! `bellbook import`: contacts from NDJSON, each line the body of a
//! `POST /contacts`, validated exactly as the API validates that request,
//! and written many to a transaction. A line that does not validate is
//! reported with its number and the API's error and stops nothing; a line
//! whose identifier its channel already has (from an earlier run, or
//! earlier in the file) is skipped, so an interrupted import run again
//! adds only what is missing.

use std::io::BufRead;

use tokio::sync::mpsc;

use crate::api::contacts::{CreateContactRequest, FRENCH_ALIASES};
use crate::api::extract::{parse_fields, parse_object};
use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::domain::contact::NewContact;
use crate::domain::settings::AccountSettings;
use crate::error::ApiError;
use crate::store::{AccountId, Imported, Store, StoreError};

/// Contacts written per transaction.
const CONTACTS_PER_BATCH: usize = 20_000;

/// How far an import has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read, blank ones included.
    pub lines: u64,
    pub bytes: u64,
    pub imported: u64,
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
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// One batch from the reading thread.
#[derive(Default)]
struct Parsed {
    contacts: Vec<NewContact>,
    rejections: Vec<Rejection>,
    lines: u64,
    bytes: u64,
}

/// Imports every line of `input` into `account`. Lines are read and
/// validated on a thread of their own while earlier batches are written.
/// `rejected` hears of each line refused, `progress` of each batch done.
pub async fn import_ndjson<R: BufRead + Send + 'static>(
    store: &dyn Store,
    account: AccountId,
    input: R,
    mut rejected: impl FnMut(Rejection),
    mut progress: impl FnMut(&ImportReport),
) -> Result<ImportReport, ImportError> {
    let settings = store.settings(account).await?;
    let (batches, mut parsed) = mpsc::channel(2);
    let reader = tokio::task::spawn_blocking(move || read_lines(input, &settings, &batches));
    let mut report = ImportReport::default();
    while let Some(batch) = parsed.recv().await {
        report.lines = batch.lines;
        report.bytes = batch.bytes;
        for rejection in batch.rejections {
            report.rejected += 1;
            rejected(rejection);
        }
        if !batch.contacts.is_empty() {
            for outcome in store.import_contacts(account, batch.contacts).await? {
                match outcome {
                    Imported::Created => report.imported += 1,
                    Imported::Duplicate(_) => report.duplicates += 1,
                }
            }
        }
        progress(&report);
    }
    reader
        .await
        .map_err(|e| ImportError::Store(StoreError::Other(Box::new(e))))??;
    Ok(report)
}

fn read_lines(
    mut input: impl BufRead,
    settings: &AccountSettings,
    batches: &mpsc::Sender<Parsed>,
) -> Result<(), ImportError> {
    let mut batch = Parsed::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|source| ImportError::Read {
                line: batch.lines,
                source,
            })?;
        if read == 0 {
            break;
        }
        batch.lines += 1;
        batch.bytes += read as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match contact_of(&line, settings) {
            Ok(contact) => batch.contacts.push(contact),
            Err(error) => batch.rejections.push(Rejection {
                line: batch.lines,
                error,
            }),
        }
        if batch.contacts.len() >= CONTACTS_PER_BATCH
            || batch.rejections.len() >= CONTACTS_PER_BATCH
        {
            let next = Parsed {
                lines: batch.lines,
                bytes: batch.bytes,
                ..Parsed::default()
            };
            if batches
                .blocking_send(std::mem::replace(&mut batch, next))
                .is_err()
            {
                // The writing side gave up (and says why).
                return Ok(());
            }
        }
    }
    let _ = batches.blocking_send(batch);
    Ok(())
}

/// A line as `POST /contacts` would take it: the same body rules (and size
/// limit), the same fields, the same checks against the account.
fn contact_of(line: &[u8], settings: &AccountSettings) -> Result<NewContact, ApiError> {
    if line.len() > DEFAULT_MAX_BODY_BYTES {
        return Err(ApiError::payload_too_large(DEFAULT_MAX_BODY_BYTES));
    }
    let body = parse_object(line)?;
    let (request, errors) = parse_fields::<CreateContactRequest>(body, &FRENCH_ALIASES);
    request
        .validate(settings, errors)
        .map_err(ApiError::validation)
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
