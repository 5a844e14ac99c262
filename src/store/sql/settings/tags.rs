//! Tags: unique per account by folded name; contacts refer to them by id.

use const_format::concatcp;

use super::delete_owned;
use crate::domain::settings::Tag;
use crate::domain::{Timestamp, fold_case};
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::sql::unique_means;
use crate::store::{AccountId, StoreError, StoreResult};

row_struct! {
    struct TagRow { id: i64, name: String, created_at: Timestamp }
}

impl From<TagRow> for Tag {
    fn from(row: TagRow) -> Self {
        Tag {
            id: row.id,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

pub(in crate::store::sql) fn all(db: &mut dyn Db, account: AccountId) -> StoreResult<Vec<Tag>> {
    let rows: Vec<TagRow> = db.all(
        concatcp!(
            "SELECT ",
            TagRow::COLUMNS,
            " FROM tags WHERE account_id = $1 ORDER BY id"
        ),
        &params![account.0],
    )?;
    Ok(rows.into_iter().map(Tag::from).collect())
}

fn taken(name: &str) -> impl FnOnce(StoreError) -> StoreError {
    unique_means("tag_exists", format!("a tag named '{name}' already exists"))
}

/// Also what imports use.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    name: &str,
    created_at: Timestamp,
) -> StoreResult<Tag> {
    let row: TagRow = db
        .one(
            concatcp!(
                "INSERT INTO tags (account_id, name, name_key, created_at) VALUES ($1, $2, $3, $4)
                 RETURNING ",
                TagRow::COLUMNS
            ),
            &params![account.0, name, fold_case(name).as_str(), created_at],
        )
        .map_err(taken(name))?;
    Ok(row.into())
}

pub(super) fn create(db: &mut dyn Db, account: AccountId, name: &str) -> StoreResult<Tag> {
    insert(db, account, name, Timestamp::now())
}

pub(super) fn rename(
    db: &mut dyn Db,
    account: AccountId,
    tag_id: i64,
    name: &str,
) -> StoreResult<Tag> {
    let row: TagRow = db
        .one(
            concatcp!(
                "UPDATE tags SET name = $1, name_key = $2 WHERE account_id = $3 AND id = $4
                 RETURNING ",
                TagRow::COLUMNS
            ),
            &params![name, fold_case(name).as_str(), account.0, tag_id],
        )
        .map_err(taken(name))?;
    Ok(row.into())
}

/// Also removes the tag from every contact: the memberships go with the
/// tag (ON DELETE CASCADE), and the contacts' own lists lose its id here.
pub(super) fn delete(db: &mut dyn Db, account: AccountId, tag_id: i64) -> StoreResult<()> {
    let id = tag_id.to_string();
    db.execute(
        "UPDATE contacts
         SET tag_ids = ltrim(rtrim(replace(',' || tag_ids || ',', ',' || $1 || ',', ','), ','), ',')
         WHERE id IN (SELECT contact_id FROM contact_tags WHERE tag_id = $2)",
        &params![id.as_str(), tag_id],
    )?;
    delete_owned(
        db,
        "DELETE FROM tags WHERE account_id = $1 AND id = $2",
        account,
        Param::from(tag_id),
    )
}
