//! Teams: exactly one is the account's default; members are users.

use super::delete_owned;
use crate::domain::settings::Team;
use crate::domain::{PublicId, Timestamp};
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::sql::lock_account;
use crate::store::{AccountId, NewTeam, StoreError, StoreResult, TeamChanges};

row_struct! {
    struct TeamRow {
        id: i64,
        uuid: PublicId,
        name: String,
        is_default: bool,
        created_at: Timestamp,
        members: i64,
    }
}

/// `members` is counted, not stored.
const SELECT: &str = "SELECT t.id, t.uuid, t.name, t.is_default, t.created_at,
        (SELECT count(*) FROM team_members m WHERE m.team_id = t.id)
    FROM teams t";

impl From<TeamRow> for Team {
    fn from(row: TeamRow) -> Self {
        Team {
            id: row.id,
            uuid: row.uuid,
            name: row.name,
            is_default: row.is_default,
            members: row.members,
            created_at: row.created_at,
        }
    }
}

pub(in crate::store::sql) fn all(db: &mut dyn Db, account: AccountId) -> StoreResult<Vec<Team>> {
    let rows: Vec<TeamRow> = db.all(
        const_format::concatcp!(SELECT, " WHERE t.account_id = $1 ORDER BY t.id"),
        &params![account.0],
    )?;
    Ok(rows.into_iter().map(Team::from).collect())
}

pub(in crate::store::sql) fn memberships(
    db: &mut dyn Db,
    account: AccountId,
) -> StoreResult<Vec<(i64, i64)>> {
    db.all(
        "SELECT m.team_id, m.user_id FROM team_members m JOIN teams t ON t.id = m.team_id
         WHERE t.account_id = $1 ORDER BY m.team_id, m.user_id",
        &params![account.0],
    )
}

fn read(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<Team> {
    let row: TeamRow = db.one(
        const_format::concatcp!(SELECT, " WHERE t.account_id = $1 AND t.uuid = $2"),
        &params![account.0, uuid.to_string().as_str()],
    )?;
    Ok(row.into())
}

/// Also what account creation and imports use; returns the row id.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
    name: &str,
    is_default: bool,
    created_at: Timestamp,
) -> StoreResult<i64> {
    db.one(
        "INSERT INTO teams (uuid, account_id, name, is_default, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &params![
            uuid.to_string().as_str(),
            account.0,
            name,
            is_default,
            created_at
        ],
    )
}

pub(in crate::store::sql) fn add_member(
    db: &mut dyn Db,
    team_id: i64,
    user_id: i64,
) -> StoreResult<()> {
    db.execute(
        "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)",
        &params![team_id, user_id],
    )?;
    Ok(())
}

fn replace_members(db: &mut dyn Db, team_id: i64, member_ids: &[i64]) -> StoreResult<()> {
    db.execute(
        "DELETE FROM team_members WHERE team_id = $1",
        &params![team_id],
    )?;
    for user_id in member_ids {
        add_member(db, team_id, *user_id)?;
    }
    Ok(())
}

fn clear_default(db: &mut dyn Db, account: AccountId) -> StoreResult<()> {
    db.execute(
        "UPDATE teams SET is_default = 0 WHERE account_id = $1 AND is_default = 1",
        &params![account.0],
    )?;
    Ok(())
}

pub(in crate::store::sql) fn create(
    db: &mut dyn Db,
    account: AccountId,
    team: &NewTeam,
) -> StoreResult<Team> {
    if team.is_default {
        lock_account(db, account)?;
        clear_default(db, account)?;
    }
    let id = insert(
        db,
        account,
        team.uuid,
        &team.name,
        team.is_default,
        Timestamp::now(),
    )?;
    replace_members(db, id, &team.member_ids)?;
    read(db, account, team.uuid)
}

pub(super) fn update(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
    changes: &TeamChanges,
) -> StoreResult<Team> {
    if changes.make_default {
        lock_account(db, account)?;
    }
    let team = read(db, account, uuid)?;
    if let Some(name) = &changes.name {
        db.execute(
            "UPDATE teams SET name = $1 WHERE id = $2",
            &params![name, team.id],
        )?;
    }
    if changes.make_default && !team.is_default {
        clear_default(db, account)?;
        db.execute(
            "UPDATE teams SET is_default = 1 WHERE id = $1",
            &params![team.id],
        )?;
    }
    if let Some(member_ids) = &changes.member_ids {
        replace_members(db, team.id, member_ids)?;
    }
    read(db, account, uuid)
}

/// Refused for the default team and for teams contacts still belong to.
pub(in crate::store::sql) fn delete(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<()> {
    let team = read(db, account, uuid)?;
    if team.is_default {
        return Err(StoreError::conflict(
            "default_team",
            "the default team cannot be deleted; make another team the default first",
        ));
    }
    // Counting the contacts this transaction's earlier writes moved too.
    let stored: i64 = db.one(
        "SELECT contact_count FROM teams WHERE id = $1",
        &params![team.id],
    )?;
    let used = stored + db.queued_moves(|counts| counts.of_team(team.id));
    if used > 0 {
        return Err(StoreError::conflict(
            "team_in_use",
            format!(
                "{used} contact(s) still belong to team '{}'; move them first",
                team.name
            ),
        ));
    }
    delete_owned(
        db,
        "DELETE FROM teams WHERE account_id = $1 AND uuid = $2",
        account,
        Param::from(uuid.to_string().as_str()),
    )
}
