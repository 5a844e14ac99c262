//! Funnels: ordered by position; the one resource with dashed uuids.

use const_format::concatcp;

use super::delete_owned;
use crate::domain::settings::Funnel;
use crate::domain::{FunnelId, Timestamp};
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::{AccountId, FunnelChanges, NewFunnel, StoreResult};

row_struct! {
    struct FunnelRow {
        id: i64,
        uuid: FunnelId,
        name: String,
        emoji: Option<String>,
        position: i64,
        created_at: Timestamp,
    }
}

impl From<FunnelRow> for Funnel {
    fn from(row: FunnelRow) -> Self {
        Funnel {
            id: row.id,
            uuid: row.uuid,
            name: row.name,
            emoji: row.emoji,
            position: row.position,
            created_at: row.created_at,
        }
    }
}

pub(in crate::store::sql) fn all(db: &mut dyn Db, account: AccountId) -> StoreResult<Vec<Funnel>> {
    let rows: Vec<FunnelRow> = db.all(
        concatcp!(
            "SELECT ",
            FunnelRow::COLUMNS,
            " FROM funnels WHERE account_id = $1 ORDER BY position, id"
        ),
        &params![account.0],
    )?;
    Ok(rows.into_iter().map(Funnel::from).collect())
}

fn read(db: &mut dyn Db, account: AccountId, uuid: FunnelId) -> StoreResult<Funnel> {
    let row: FunnelRow = db.one(
        concatcp!(
            "SELECT ",
            FunnelRow::COLUMNS,
            " FROM funnels WHERE account_id = $1 AND uuid = $2"
        ),
        &params![account.0, uuid.to_string().as_str()],
    )?;
    Ok(row.into())
}

/// Also what imports use.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    funnel: &Funnel,
) -> StoreResult<()> {
    db.execute(
        "INSERT INTO funnels (uuid, account_id, name, emoji, position, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &params![
            funnel.uuid.to_string().as_str(),
            account.0,
            &funnel.name,
            &funnel.emoji,
            funnel.position,
            funnel.created_at
        ],
    )?;
    Ok(())
}

pub(super) fn create(
    db: &mut dyn Db,
    account: AccountId,
    funnel: &NewFunnel,
) -> StoreResult<Funnel> {
    let position = match funnel.position {
        Some(position) => position,
        None => {
            let last: Option<i64> = db.one(
                "SELECT max(position) FROM funnels WHERE account_id = $1",
                &params![account.0],
            )?;
            last.map_or(1, |p| p.saturating_add(1))
        }
    };
    insert(
        db,
        account,
        &Funnel {
            id: 0,
            uuid: funnel.uuid,
            name: funnel.name.clone(),
            emoji: funnel.emoji.clone(),
            position,
            created_at: Timestamp::now(),
        },
    )?;
    read(db, account, funnel.uuid)
}

pub(super) fn update(
    db: &mut dyn Db,
    account: AccountId,
    uuid: FunnelId,
    changes: &FunnelChanges,
) -> StoreResult<Funnel> {
    let funnel = read(db, account, uuid)?;
    db.execute(
        "UPDATE funnels SET name = $1, emoji = $2, position = $3 WHERE id = $4",
        &params![
            changes.name.as_ref().unwrap_or(&funnel.name),
            changes.emoji.as_ref().unwrap_or(&funnel.emoji),
            changes.position.unwrap_or(funnel.position),
            funnel.id
        ],
    )?;
    read(db, account, uuid)
}

/// Contacts in the funnel are left without one (ON DELETE SET NULL).
pub(super) fn delete(db: &mut dyn Db, account: AccountId, uuid: FunnelId) -> StoreResult<()> {
    delete_owned(
        db,
        "DELETE FROM funnels WHERE account_id = $1 AND uuid = $2",
        account,
        Param::from(uuid.to_string().as_str()),
    )
}
