//! Channels: at most one active main channel per type; a channel contacts
//! use can be discarded but not deleted.

use const_format::concatcp;

use super::delete_owned;
use crate::domain::settings::Channel;
use crate::domain::{PublicId, Source, Timestamp};
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::sql::lock_account;
use crate::store::{AccountId, ChannelChanges, NewChannel, StoreError, StoreResult};

row_struct! {
    struct ChannelRow {
        id: i64,
        uuid: PublicId,
        title: String,
        kind: Source = "type",
        is_main: bool,
        discarded_at: Option<Timestamp>,
        created_at: Timestamp,
    }
}

impl From<ChannelRow> for Channel {
    fn from(row: ChannelRow) -> Self {
        Channel {
            id: row.id,
            uuid: row.uuid,
            title: row.title,
            kind: row.kind,
            main: row.is_main,
            discarded_at: row.discarded_at,
            created_at: row.created_at,
        }
    }
}

pub(in crate::store::sql) fn all(db: &mut dyn Db, account: AccountId) -> StoreResult<Vec<Channel>> {
    let rows: Vec<ChannelRow> = db.all(
        concatcp!(
            "SELECT ",
            ChannelRow::COLUMNS,
            " FROM channels WHERE account_id = $1 ORDER BY id"
        ),
        &params![account.0],
    )?;
    Ok(rows.into_iter().map(Channel::from).collect())
}

fn read(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<Channel> {
    let row: ChannelRow = db.one(
        concatcp!(
            "SELECT ",
            ChannelRow::COLUMNS,
            " FROM channels WHERE account_id = $1 AND uuid = $2"
        ),
        &params![account.0, uuid.to_string().as_str()],
    )?;
    Ok(row.into())
}

/// Also what account creation and imports use; returns the row id.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    channel: &Channel,
) -> StoreResult<i64> {
    db.one(
        "INSERT INTO channels (uuid, account_id, title, type, is_main, discarded_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &params![
            channel.uuid.to_string().as_str(),
            account.0,
            &channel.title,
            channel.kind.as_str(),
            channel.main,
            channel.discarded_at,
            channel.created_at
        ],
    )
}

fn clear_main(db: &mut dyn Db, account: AccountId, kind: Source) -> StoreResult<()> {
    db.execute(
        "UPDATE channels SET is_main = 0 WHERE account_id = $1 AND type = $2 AND is_main = 1",
        &params![account.0, kind.as_str()],
    )?;
    Ok(())
}

pub(super) fn create(
    db: &mut dyn Db,
    account: AccountId,
    channel: &NewChannel,
) -> StoreResult<Channel> {
    if channel.main != Some(false) {
        lock_account(db, account)?;
    }
    let main = match channel.main {
        Some(true) => {
            clear_main(db, account, channel.kind)?;
            true
        }
        Some(false) => false,
        None => {
            let mains: i64 = db.one(
                "SELECT count(*) FROM channels WHERE account_id = $1 AND type = $2 AND is_main = 1",
                &params![account.0, channel.kind.as_str()],
            )?;
            mains == 0
        }
    };
    insert(
        db,
        account,
        &Channel {
            id: 0,
            uuid: channel.uuid,
            title: channel.title.clone(),
            kind: channel.kind,
            main,
            discarded_at: None,
            created_at: Timestamp::now(),
        },
    )?;
    read(db, account, channel.uuid)
}

pub(super) fn update(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
    changes: &ChannelChanges,
) -> StoreResult<Channel> {
    if changes.make_main {
        lock_account(db, account)?;
    }
    let channel = read(db, account, uuid)?;
    if let Some(title) = &changes.title {
        db.execute(
            "UPDATE channels SET title = $1 WHERE id = $2",
            &params![title, channel.id],
        )?;
    }
    match changes.discard {
        // A discarded channel is never the main one.
        Some(Some(at)) => {
            db.execute(
                "UPDATE channels SET discarded_at = COALESCE(discarded_at, $1), is_main = 0
                 WHERE id = $2",
                &params![at, channel.id],
            )?;
        }
        Some(None) => {
            db.execute(
                "UPDATE channels SET discarded_at = NULL WHERE id = $1",
                &params![channel.id],
            )?;
        }
        None => {}
    }
    if changes.make_main {
        let discarded = matches!(changes.discard, Some(Some(_)))
            || (channel.discarded_at.is_some() && changes.discard.is_none());
        if discarded {
            return Err(StoreError::conflict(
                "channel_discarded",
                "a discarded channel cannot be the main channel",
            ));
        }
        clear_main(db, account, channel.kind)?;
        db.execute(
            "UPDATE channels SET is_main = 1 WHERE id = $1",
            &params![channel.id],
        )?;
    }
    read(db, account, uuid)
}

/// Refused while contacts use the channel (discard it instead).
pub(super) fn delete(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<()> {
    let channel = read(db, account, uuid)?;
    // Counting the contacts this transaction's earlier writes moved too.
    let stored: i64 = db.one(
        "SELECT contact_count FROM channels WHERE id = $1",
        &params![channel.id],
    )?;
    let used = stored + db.queued_moves(|counts| counts.of_channel(channel.id));
    if used > 0 {
        return Err(StoreError::conflict(
            "channel_in_use",
            format!(
                "{used} contact(s) use channel '{}'; discard it instead with PATCH {{\"discarded\": true}}",
                channel.title
            ),
        ));
    }
    delete_owned(
        db,
        "DELETE FROM channels WHERE account_id = $1 AND uuid = $2",
        account,
        Param::from(uuid.to_string().as_str()),
    )
}
