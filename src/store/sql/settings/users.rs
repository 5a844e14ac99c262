//! Users: unique per account by folded e-mail; one of them owns the
//! account.

use const_format::concatcp;

use super::delete_owned;
use crate::domain::settings::User;
use crate::domain::{PublicId, Timestamp, fold_case};
use crate::store::sql::db::{Db, Param, params, row_struct};
use crate::store::sql::unique_means;
use crate::store::{AccountId, NewUser, StoreError, StoreResult, UserChanges};

row_struct! {
    struct UserRow {
        id: i64,
        uuid: PublicId,
        email: String,
        name: String,
        is_owner: bool,
        created_at: Timestamp,
    }
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            uuid: row.uuid,
            email: row.email,
            name: row.name,
            owner: row.is_owner,
            created_at: row.created_at,
        }
    }
}

pub(in crate::store::sql) fn all(db: &mut dyn Db, account: AccountId) -> StoreResult<Vec<User>> {
    let rows: Vec<UserRow> = db.all(
        concatcp!(
            "SELECT ",
            UserRow::COLUMNS,
            " FROM users WHERE account_id = $1 ORDER BY id"
        ),
        &params![account.0],
    )?;
    Ok(rows.into_iter().map(User::from).collect())
}

fn read(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<User> {
    let row: UserRow = db.one(
        concatcp!(
            "SELECT ",
            UserRow::COLUMNS,
            " FROM users WHERE account_id = $1 AND uuid = $2"
        ),
        &params![account.0, uuid.to_string().as_str()],
    )?;
    Ok(row.into())
}

fn taken(email: &str) -> impl FnOnce(StoreError) -> StoreError {
    unique_means(
        "user_exists",
        format!("a user with e-mail '{email}' already exists"),
    )
}

/// Also what account creation and imports use; returns the row id.
pub(in crate::store::sql) fn insert(
    db: &mut dyn Db,
    account: AccountId,
    user: &User,
) -> StoreResult<i64> {
    db.one(
        "INSERT INTO users (uuid, account_id, email, email_key, name, is_owner, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &params![
            user.uuid.to_string().as_str(),
            account.0,
            &user.email,
            fold_case(&user.email).as_str(),
            &user.name,
            user.owner,
            user.created_at
        ],
    )
    .map_err(taken(&user.email))
}

pub(super) fn create(db: &mut dyn Db, account: AccountId, user: &NewUser) -> StoreResult<User> {
    let user = User {
        id: 0,
        uuid: user.uuid,
        email: user.email.clone(),
        name: user.name.clone(),
        owner: false,
        created_at: Timestamp::now(),
    };
    insert(db, account, &user)?;
    read(db, account, user.uuid)
}

pub(super) fn update(
    db: &mut dyn Db,
    account: AccountId,
    uuid: PublicId,
    changes: &UserChanges,
) -> StoreResult<User> {
    let user = read(db, account, uuid)?;
    if let Some(email) = &changes.email {
        db.execute(
            "UPDATE users SET email = $1, email_key = $2 WHERE id = $3",
            &params![email, fold_case(email).as_str(), user.id],
        )
        .map_err(taken(email))?;
    }
    if let Some(name) = &changes.name {
        db.execute(
            "UPDATE users SET name = $1 WHERE id = $2",
            &params![name, user.id],
        )?;
    }
    read(db, account, uuid)
}

/// Unassigns the user's contacts; the owner cannot be deleted.
pub(super) fn delete(db: &mut dyn Db, account: AccountId, uuid: PublicId) -> StoreResult<()> {
    let user = read(db, account, uuid)?;
    if user.owner {
        return Err(StoreError::conflict(
            "owner_user",
            "the account owner cannot be deleted",
        ));
    }
    // Their contacts become unassigned (ON DELETE SET NULL) and their team
    // memberships go (ON DELETE CASCADE).
    delete_owned(
        db,
        "DELETE FROM users WHERE account_id = $1 AND uuid = $2",
        account,
        Param::from(uuid.to_string().as_str()),
    )
}
