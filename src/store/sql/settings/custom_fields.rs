//! Custom fields: typed, unique per account by folded name. A contact's
//! values live in `contact_field_values` and, for reading in one row, in
//! the contact's own `field_values`; both change together.

use std::collections::HashMap;

use const_format::concatcp;

use super::delete_owned;
use crate::domain::custom_field::decode_checked;
use crate::domain::settings::CustomField;
use crate::domain::{CustomFieldType, CustomFieldValue, Timestamp, fold_case};
use crate::store::sql::contacts::edit_field_values;
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::sql::unique_means;
use crate::store::{AccountId, CustomFieldChanges, NewCustomField, StoreError, StoreResult};

row_struct! {
    struct FieldRow {
        id: i64,
        name: String,
        kind: String = "type",
        /// A JSON array of option labels (dropdown and checkbox).
        options: Option<String>,
        created_at: Timestamp,
    }
}

impl TryFrom<FieldRow> for CustomField {
    type Error = StoreError;

    fn try_from(row: FieldRow) -> StoreResult<Self> {
        let kind = row
            .kind
            .parse::<CustomFieldType>()
            .map_err(|_| StoreError::other("custom_fields.type holds an unknown type"))?;
        let options = match row.options {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| StoreError::Other(Box::new(e)))?
            }
            None => Vec::new(),
        };
        Ok(CustomField {
            id: row.id,
            name: row.name,
            kind,
            options,
            created_at: row.created_at,
        })
    }
}

pub(in crate::store::sql) fn all(
    db: &mut dyn Db,
    account: AccountId,
) -> StoreResult<Vec<CustomField>> {
    let rows: Vec<FieldRow> = db.all(
        concatcp!(
            "SELECT ",
            FieldRow::COLUMNS,
            " FROM custom_fields WHERE account_id = $1 ORDER BY id"
        ),
        &params![account.0],
    )?;
    rows.into_iter().map(CustomField::try_from).collect()
}

fn read(db: &mut dyn Db, account: AccountId, field_id: i64) -> StoreResult<CustomField> {
    let row: FieldRow = db.one(
        concatcp!(
            "SELECT ",
            FieldRow::COLUMNS,
            " FROM custom_fields WHERE account_id = $1 AND id = $2"
        ),
        &params![account.0, field_id],
    )?;
    row.try_into()
}

fn options_json(kind: CustomFieldType, options: &[String]) -> Option<String> {
    kind.has_options()
        .then(|| serde_json::Value::from(options.to_vec()).to_string())
}

fn taken(name: &str) -> impl FnOnce(StoreError) -> StoreError {
    unique_means(
        "custom_field_exists",
        format!("a custom field named '{name}' already exists"),
    )
}

/// Also what imports use; returns the new field's id.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    name: &str,
    kind: CustomFieldType,
    options: &[String],
    created_at: Timestamp,
) -> StoreResult<i64> {
    let options = options_json(kind, options);
    db.one(
        "INSERT INTO custom_fields (account_id, name, name_key, type, options, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &params![
            account.0,
            name,
            fold_case(name).as_str(),
            kind.as_str(),
            &options,
            created_at
        ],
    )
    .map_err(taken(name))
}

pub(super) fn create(
    db: &mut dyn Db,
    account: AccountId,
    field: &NewCustomField,
) -> StoreResult<CustomField> {
    let id = insert(
        db,
        account,
        &field.name,
        field.kind,
        &field.options,
        Timestamp::now(),
    )?;
    read(db, account, id)
}

pub(super) fn update(
    db: &mut dyn Db,
    account: AccountId,
    field_id: i64,
    changes: &CustomFieldChanges,
) -> StoreResult<CustomField> {
    let field = read(db, account, field_id)?;
    if let Some(name) = &changes.name {
        db.execute(
            "UPDATE custom_fields SET name = $1, name_key = $2 WHERE id = $3",
            &params![name, fold_case(name).as_str(), field.id],
        )
        .map_err(taken(name))?;
    }
    if let Some(options) = &changes.options {
        remap_option_values(db, &field, options)?;
        db.execute(
            "UPDATE custom_fields SET options = $1 WHERE id = $2",
            &params![&options_json(field.kind, options), field.id],
        )?;
    }
    read(db, account, field_id)
}

/// Rewrites a field's stored values for a new option list: labels follow
/// a change of spelling; a value that uses a removed option makes the
/// change a conflict.
fn remap_option_values(
    db: &mut dyn Db,
    field: &CustomField,
    new_options: &[String],
) -> StoreResult<()> {
    let stored: Vec<(i64, String)> = db.all(
        "SELECT contact_id, value FROM contact_field_values WHERE field_id = $1",
        &params![field.id],
    )?;
    let by_key: HashMap<String, &String> = new_options.iter().map(|o| (fold_case(o), o)).collect();
    for (contact_id, value) in stored {
        let labels = match field.kind {
            CustomFieldType::Checkbox => decode_checked(&value),
            _ => vec![value.clone()],
        };
        let mut relabelled = Vec::with_capacity(labels.len());
        for label in &labels {
            match by_key.get(&fold_case(label)) {
                Some(option) => relabelled.push(serde_json::Value::String((*option).clone())),
                None => {
                    return Err(StoreError::conflict(
                        "option_in_use",
                        format!(
                            "option '{label}' of '{}' is still used by contacts",
                            field.name
                        ),
                    ));
                }
            }
        }
        let relabelled = match field.kind {
            CustomFieldType::Checkbox => serde_json::Value::Array(relabelled),
            _ => relabelled
                .into_iter()
                .next()
                .unwrap_or(serde_json::Value::Null),
        };
        let rewritten = CustomFieldValue::parse(field.kind, new_options, &relabelled)
            .map_err(|problem| {
                StoreError::other(format!("stored value no longer parses: {problem}"))
            })?
            .into_string();
        if rewritten != value {
            db.execute(
                "UPDATE contact_field_values SET value = $1 WHERE contact_id = $2 AND field_id = $3",
                &params![rewritten.as_str(), contact_id, field.id],
            )?;
            edit_field_values(db, contact_id, |values| {
                values.insert(field.id, rewritten);
            })?;
        }
    }
    Ok(())
}

/// Also removes the field's values from every contact.
pub(super) fn delete(db: &mut dyn Db, account: AccountId, field_id: i64) -> StoreResult<()> {
    let holders: Vec<i64> = db.all(
        "SELECT contact_id FROM contact_field_values WHERE field_id = $1",
        &params![field_id],
    )?;
    for contact_id in holders {
        edit_field_values(db, contact_id, |values| {
            values.remove(&field_id);
        })?;
    }
    // The normalised values go with the field (ON DELETE CASCADE).
    delete_owned(
        db,
        "DELETE FROM custom_fields WHERE account_id = $1 AND id = $2",
        account,
        Param::from(field_id),
    )
}
