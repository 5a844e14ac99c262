//! Bots: the oldest enabled one answers conversations.

use const_format::concatcp;

use super::delete_owned;
use crate::domain::settings::Bot;
use crate::domain::{PublicId, Timestamp};
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::{AccountId, BotChanges, NewBot, StoreResult};

row_struct! {
    struct BotRow {
        id: i64,
        uuid: PublicId,
        name: String,
        enabled: bool,
        version: i64,
        created_at: Timestamp,
    }
}

impl From<BotRow> for Bot {
    fn from(row: BotRow) -> Self {
        Bot {
            id: row.id,
            uuid: row.uuid,
            name: row.name,
            enabled: row.enabled,
            version: row.version,
            created_at: row.created_at,
        }
    }
}

pub(in crate::store::sql) fn all(db: &mut dyn Db, account: AccountId) -> StoreResult<Vec<Bot>> {
    let rows: Vec<BotRow> = db.all(
        concatcp!(
            "SELECT ",
            BotRow::COLUMNS,
            " FROM bots WHERE account_id = $1 ORDER BY id"
        ),
        &params![account.0],
    )?;
    Ok(rows.into_iter().map(Bot::from).collect())
}

fn read(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<Bot> {
    let row: BotRow = db.one(
        concatcp!(
            "SELECT ",
            BotRow::COLUMNS,
            " FROM bots WHERE account_id = $1 AND uuid = $2"
        ),
        &params![account.0, uuid.to_string().as_str()],
    )?;
    Ok(row.into())
}

/// Also what imports use.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    bot: &Bot,
) -> StoreResult<()> {
    db.execute(
        "INSERT INTO bots (uuid, account_id, name, enabled, version, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &params![
            bot.uuid.to_string().as_str(),
            account.0,
            &bot.name,
            bot.enabled,
            bot.version,
            bot.created_at
        ],
    )?;
    Ok(())
}

pub(super) fn create(db: &mut dyn Db, account: AccountId, bot: &NewBot) -> StoreResult<Bot> {
    insert(
        db,
        account,
        &Bot {
            id: 0,
            uuid: bot.uuid,
            name: bot.name.clone(),
            enabled: bot.enabled,
            version: bot.version,
            created_at: Timestamp::now(),
        },
    )?;
    read(db, account, bot.uuid)
}

pub(super) fn update(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
    changes: &BotChanges,
) -> StoreResult<Bot> {
    let bot = read(db, account, uuid)?;
    db.execute(
        "UPDATE bots SET name = $1, enabled = $2, version = $3 WHERE id = $4",
        &params![
            changes.name.as_ref().unwrap_or(&bot.name),
            changes.enabled.unwrap_or(bot.enabled),
            changes.version.unwrap_or(bot.version),
            bot.id
        ],
    )?;
    read(db, account, uuid)
}

/// Contacts running the bot are left without one.
pub(super) fn delete(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<()> {
    let bot = read(db, account, uuid)?;
    db.execute(
        "UPDATE contacts SET bot_id = NULL, bot_status = NULL WHERE bot_id = $1",
        &params![bot.id],
    )?;
    delete_owned(
        db,
        "DELETE FROM bots WHERE account_id = $1 AND uuid = $2",
        account,
        Param::from(uuid.to_string().as_str()),
    )
}
