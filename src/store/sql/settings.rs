//! Tags, custom fields, users, teams, channels, bots and funnels.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{RowExt, SqlStore, db_error, flag, lock_account, unique_means};
use crate::domain::custom_field::decode_checked;
use crate::domain::settings::{
    AccountSettings, Bot, Channel, CustomField, Funnel, Tag, Team, User,
};
use crate::domain::{
    CustomFieldType, CustomFieldValue, FunnelId, PublicId, Source, Timestamp, fold_case,
};
use crate::store::{
    AccountId, BotChanges, ChannelChanges, CustomFieldChanges, FunnelChanges, NewBot, NewChannel,
    NewCustomField, NewFunnel, NewTeam, NewUser, SettingsStore, StoreError, StoreResult,
    TeamChanges, UserChanges,
};

pub(super) fn tag_from_row(row: &AnyRow) -> StoreResult<Tag> {
    Ok(Tag {
        id: row.int("id")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn custom_field_from_row(row: &AnyRow) -> StoreResult<CustomField> {
    let kind = row
        .text("type")?
        .parse::<CustomFieldType>()
        .map_err(|_| StoreError::other("custom_fields.type holds an unknown type"))?;
    let options = match row.opt_text("options")? {
        Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Other(Box::new(e)))?,
        None => Vec::new(),
    };
    Ok(CustomField {
        id: row.int("id")?,
        name: row.text("name")?,
        kind,
        options,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: row.int("id")?,
        uuid: row.public_id("uuid")?,
        email: row.text("email")?,
        name: row.text("name")?,
        owner: row.flag("is_owner")?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn team_from_row(row: &AnyRow) -> StoreResult<Team> {
    Ok(Team {
        id: row.int("id")?,
        uuid: row.public_id("uuid")?,
        name: row.text("name")?,
        is_default: row.flag("is_default")?,
        members: row.int("members")?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn channel_from_row(row: &AnyRow) -> StoreResult<Channel> {
    Ok(Channel {
        id: row.int("id")?,
        uuid: row.public_id("uuid")?,
        title: row.text("title")?,
        kind: row.source("type")?,
        main: row.flag("is_main")?,
        discarded_at: row.opt_time("discarded_at")?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn bot_from_row(row: &AnyRow) -> StoreResult<Bot> {
    Ok(Bot {
        id: row.int("id")?,
        uuid: row.public_id("uuid")?,
        name: row.text("name")?,
        enabled: row.flag("enabled")?,
        version: row.int("version")?,
        created_at: row.time("created_at")?,
    })
}

pub(super) fn funnel_from_row(row: &AnyRow) -> StoreResult<Funnel> {
    Ok(Funnel {
        id: row.int("id")?,
        uuid: row.funnel_id("uuid")?,
        name: row.text("name")?,
        emoji: row.opt_text("emoji")?,
        position: row.int("position")?,
        created_at: row.time("created_at")?,
    })
}

async fn fetch_all(
    conn: &mut AnyConnection,
    sql: &'static str,
    account: AccountId,
) -> StoreResult<Vec<AnyRow>> {
    sqlx::query(sql)
        .bind(account.0)
        .fetch_all(conn)
        .await
        .map_err(db_error)
}

pub(super) async fn read_settings(
    conn: &mut AnyConnection,
    account: AccountId,
) -> StoreResult<AccountSettings> {
    let tags = fetch_all(
        conn,
        "SELECT id, name, created_at FROM tags WHERE account_id = $1 ORDER BY id",
        account,
    )
    .await?;
    let fields = fetch_all(
        conn,
        "SELECT id, name, type, options, created_at FROM custom_fields WHERE account_id = $1 ORDER BY id",
        account,
    )
    .await?;
    let users = fetch_all(
        conn,
        "SELECT id, uuid, email, name, is_owner, created_at FROM users WHERE account_id = $1 ORDER BY id",
        account,
    )
    .await?;
    let teams = fetch_all(
        conn,
        "SELECT t.id, t.uuid, t.name, t.is_default, t.created_at,
                (SELECT count(*) FROM team_members m WHERE m.team_id = t.id) AS members
         FROM teams t WHERE t.account_id = $1 ORDER BY t.id",
        account,
    )
    .await?;
    let channels = fetch_all(
        conn,
        "SELECT id, uuid, title, type, is_main, discarded_at, created_at
         FROM channels WHERE account_id = $1 ORDER BY id",
        account,
    )
    .await?;
    let bots = fetch_all(
        conn,
        "SELECT id, uuid, name, enabled, version, created_at FROM bots WHERE account_id = $1 ORDER BY id",
        account,
    )
    .await?;
    let funnels = fetch_all(
        conn,
        "SELECT id, uuid, name, emoji, position, created_at
         FROM funnels WHERE account_id = $1 ORDER BY position, id",
        account,
    )
    .await?;
    Ok(AccountSettings {
        tags: tags.iter().map(tag_from_row).collect::<StoreResult<_>>()?,
        custom_fields: fields
            .iter()
            .map(custom_field_from_row)
            .collect::<StoreResult<_>>()?,
        users: users
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<_>>()?,
        teams: teams
            .iter()
            .map(team_from_row)
            .collect::<StoreResult<_>>()?,
        channels: channels
            .iter()
            .map(channel_from_row)
            .collect::<StoreResult<_>>()?,
        bots: bots.iter().map(bot_from_row).collect::<StoreResult<_>>()?,
        funnels: funnels
            .iter()
            .map(funnel_from_row)
            .collect::<StoreResult<_>>()?,
    })
}

pub(super) async fn insert_user_row(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
    email: &str,
    name: &str,
    owner: bool,
    created_at: Timestamp,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO users (uuid, account_id, email, email_key, name, is_owner, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(uuid.to_string())
    .bind(account.0)
    .bind(email.to_owned())
    .bind(fold_case(email))
    .bind(name.to_owned())
    .bind(flag(owner))
    .bind(created_at.unix())
    .fetch_one(conn)
    .await
    .map_err(unique_means(
        "user_exists",
        format!("a user with e-mail '{email}' already exists"),
    ))
}

pub(super) async fn insert_team_row(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
    name: &str,
    is_default: bool,
    created_at: Timestamp,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO teams (uuid, account_id, name, is_default, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(uuid.to_string())
    .bind(account.0)
    .bind(name.to_owned())
    .bind(flag(is_default))
    .bind(created_at.unix())
    .fetch_one(conn)
    .await
    .map_err(db_error)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_channel_row(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
    title: &str,
    kind: Source,
    main: bool,
    discarded_at: Option<Timestamp>,
    created_at: Timestamp,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO channels (uuid, account_id, title, type, is_main, discarded_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(uuid.to_string())
    .bind(account.0)
    .bind(title.to_owned())
    .bind(kind.as_str())
    .bind(flag(main))
    .bind(discarded_at.map(Timestamp::unix))
    .bind(created_at.unix())
    .fetch_one(conn)
    .await
    .map_err(db_error)
}

pub(super) async fn insert_tag_row(
    conn: &mut AnyConnection,
    account: AccountId,
    name: &str,
    created_at: Timestamp,
) -> StoreResult<Tag> {
    let row = sqlx::query(
        "INSERT INTO tags (account_id, name, name_key, created_at) VALUES ($1, $2, $3, $4)
         RETURNING id, name, created_at",
    )
    .bind(account.0)
    .bind(name.to_owned())
    .bind(fold_case(name))
    .bind(created_at.unix())
    .fetch_one(conn)
    .await
    .map_err(unique_means(
        "tag_exists",
        format!("a tag named '{name}' already exists"),
    ))?;
    tag_from_row(&row)
}

pub(super) async fn insert_bot_row(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
    name: &str,
    enabled: bool,
    version: i64,
    created_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO bots (uuid, account_id, name, enabled, version, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid.to_string())
    .bind(account.0)
    .bind(name.to_owned())
    .bind(flag(enabled))
    .bind(version)
    .bind(created_at.unix())
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn insert_funnel_row(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: FunnelId,
    name: &str,
    emoji: Option<&str>,
    position: i64,
    created_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO funnels (uuid, account_id, name, emoji, position, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid.to_string())
    .bind(account.0)
    .bind(name.to_owned())
    .bind(emoji.map(str::to_owned))
    .bind(position)
    .bind(created_at.unix())
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(super) async fn insert_custom_field_row(
    conn: &mut AnyConnection,
    account: AccountId,
    name: &str,
    kind: CustomFieldType,
    options: &[String],
    created_at: Timestamp,
) -> StoreResult<i64> {
    sqlx::query_scalar(
        "INSERT INTO custom_fields (account_id, name, name_key, type, options, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(account.0)
    .bind(name.to_owned())
    .bind(fold_case(name))
    .bind(kind.as_str())
    .bind(options_json(kind, options))
    .bind(created_at.unix())
    .fetch_one(conn)
    .await
    .map_err(unique_means(
        "custom_field_exists",
        format!("a custom field named '{name}' already exists"),
    ))
}

fn options_json(kind: CustomFieldType, options: &[String]) -> Option<String> {
    kind.has_options()
        .then(|| serde_json::Value::from(options.to_vec()).to_string())
}

async fn read_one<T>(
    conn: &mut AnyConnection,
    sql: &'static str,
    account: AccountId,
    id: String,
    from_row: fn(&AnyRow) -> StoreResult<T>,
) -> StoreResult<T> {
    let row = sqlx::query(sql)
        .bind(account.0)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?
        .ok_or(StoreError::NotFound)?;
    from_row(&row)
}

async fn read_team(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<Team> {
    read_one(
        conn,
        "SELECT t.id, t.uuid, t.name, t.is_default, t.created_at,
                (SELECT count(*) FROM team_members m WHERE m.team_id = t.id) AS members
         FROM teams t WHERE t.account_id = $1 AND t.uuid = $2",
        account,
        uuid.to_string(),
        team_from_row,
    )
    .await
}

async fn read_channel(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<Channel> {
    read_one(
        conn,
        "SELECT id, uuid, title, type, is_main, discarded_at, created_at
         FROM channels WHERE account_id = $1 AND uuid = $2",
        account,
        uuid.to_string(),
        channel_from_row,
    )
    .await
}

async fn read_bot(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<Bot> {
    read_one(
        conn,
        "SELECT id, uuid, name, enabled, version, created_at FROM bots WHERE account_id = $1 AND uuid = $2",
        account,
        uuid.to_string(),
        bot_from_row,
    )
    .await
}

async fn read_funnel(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: FunnelId,
) -> StoreResult<Funnel> {
    read_one(
        conn,
        "SELECT id, uuid, name, emoji, position, created_at FROM funnels WHERE account_id = $1 AND uuid = $2",
        account,
        uuid.to_string(),
        funnel_from_row,
    )
    .await
}

async fn read_user(
    conn: &mut AnyConnection,
    account: AccountId,
    uuid: PublicId,
) -> StoreResult<User> {
    read_one(
        conn,
        "SELECT id, uuid, email, name, is_owner, created_at FROM users WHERE account_id = $1 AND uuid = $2",
        account,
        uuid.to_string(),
        user_from_row,
    )
    .await
}

async fn read_custom_field(
    conn: &mut AnyConnection,
    account: AccountId,
    id: i64,
) -> StoreResult<CustomField> {
    let row = sqlx::query(
        "SELECT id, name, type, options, created_at FROM custom_fields WHERE account_id = $1 AND id = $2",
    )
    .bind(account.0)
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(db_error)?
    .ok_or(StoreError::NotFound)?;
    custom_field_from_row(&row)
}

/// Deletes one row of an account-owned table by row id; none deleted means
/// not found.
async fn delete_by_id(
    conn: &mut AnyConnection,
    sql: &'static str,
    account: AccountId,
    id: i64,
) -> StoreResult<()> {
    let done = sqlx::query(sql)
        .bind(account.0)
        .bind(id)
        .execute(conn)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes one row of an account-owned table by public id; none deleted
/// means not found.
async fn delete_owned(
    conn: &mut AnyConnection,
    sql: &'static str,
    account: AccountId,
    key: String,
) -> StoreResult<()> {
    let done = sqlx::query(sql)
        .bind(account.0)
        .bind(key)
        .execute(conn)
        .await
        .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn replace_team_members(
    conn: &mut AnyConnection,
    team_id: i64,
    member_ids: &[i64],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM team_members WHERE team_id = $1")
        .bind(team_id)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    for user_id in member_ids {
        sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
            .bind(team_id)
            .bind(*user_id)
            .execute(&mut *conn)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Rewrites a custom field's stored values for a new option list: labels
/// follow a change of spelling; a value that uses a removed option makes
/// the change a conflict.
async fn remap_option_values(
    conn: &mut AnyConnection,
    field: &CustomField,
    new_options: &[String],
) -> StoreResult<()> {
    let rows =
        sqlx::query("SELECT contact_id, value FROM contact_field_values WHERE field_id = $1")
            .bind(field.id)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
    let by_key: HashMap<String, &String> = new_options.iter().map(|o| (fold_case(o), o)).collect();
    for row in rows {
        let stored = row.text("value")?;
        let labels = match field.kind {
            CustomFieldType::Checkbox => decode_checked(&stored),
            _ => vec![stored.clone()],
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
        let value = match field.kind {
            CustomFieldType::Checkbox => serde_json::Value::Array(relabelled),
            _ => relabelled
                .into_iter()
                .next()
                .unwrap_or(serde_json::Value::Null),
        };
        let rewritten =
            CustomFieldValue::parse(field.kind, new_options, &value).map_err(|problem| {
                StoreError::other(format!("stored value no longer parses: {problem}"))
            })?;
        if rewritten.as_str() != stored {
            sqlx::query("UPDATE contact_field_values SET value = $1 WHERE contact_id = $2 AND field_id = $3")
                .bind(rewritten.into_string())
                .bind(row.int("contact_id")?)
                .bind(field.id)
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
        }
    }
    Ok(())
}

#[async_trait]
impl SettingsStore for SqlStore {
    async fn settings(&self, account: AccountId) -> StoreResult<AccountSettings> {
        let mut tx = self.begin_read().await?;
        let settings = read_settings(&mut tx, account).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(settings)
    }

    async fn create_tag(&self, account: AccountId, name: &str) -> StoreResult<Tag> {
        let mut tx = self.begin_write().await?;
        let tag = insert_tag_row(tx.conn(), account, name, Timestamp::now()).await?;
        tx.commit().await?;
        Ok(tag)
    }

    async fn rename_tag(&self, account: AccountId, tag_id: i64, name: &str) -> StoreResult<Tag> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE tags SET name = $1, name_key = $2 WHERE account_id = $3 AND id = $4
             RETURNING id, name, created_at",
        )
        .bind(name.to_owned())
        .bind(fold_case(name))
        .bind(account.0)
        .bind(tag_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(unique_means(
            "tag_exists",
            format!("a tag named '{name}' already exists"),
        ))?
        .ok_or(StoreError::NotFound)?;
        let tag = tag_from_row(&row)?;
        tx.commit().await?;
        Ok(tag)
    }

    async fn delete_tag(&self, account: AccountId, tag_id: i64) -> StoreResult<()> {
        // contact_tags rows go with it (ON DELETE CASCADE).
        let mut tx = self.begin_write().await?;
        delete_by_id(
            tx.conn(),
            "DELETE FROM tags WHERE account_id = $1 AND id = $2",
            account,
            tag_id,
        )
        .await?;
        tx.commit().await
    }

    async fn create_custom_field(
        &self,
        account: AccountId,
        field: &NewCustomField,
    ) -> StoreResult<CustomField> {
        let mut tx = self.begin_write().await?;
        let id = insert_custom_field_row(
            tx.conn(),
            account,
            &field.name,
            field.kind,
            &field.options,
            Timestamp::now(),
        )
        .await?;
        let created = read_custom_field(tx.conn(), account, id).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_custom_field(
        &self,
        account: AccountId,
        field_id: i64,
        changes: &CustomFieldChanges,
    ) -> StoreResult<CustomField> {
        let mut tx = self.begin_write().await?;
        let field = read_custom_field(tx.conn(), account, field_id).await?;
        if let Some(name) = &changes.name {
            sqlx::query("UPDATE custom_fields SET name = $1, name_key = $2 WHERE id = $3")
                .bind(name.clone())
                .bind(fold_case(name))
                .bind(field.id)
                .execute(tx.conn())
                .await
                .map_err(unique_means(
                    "custom_field_exists",
                    format!("a custom field named '{name}' already exists"),
                ))?;
        }
        if let Some(options) = &changes.options {
            remap_option_values(tx.conn(), &field, options).await?;
            sqlx::query("UPDATE custom_fields SET options = $1 WHERE id = $2")
                .bind(options_json(field.kind, options))
                .bind(field.id)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
        }
        let updated = read_custom_field(tx.conn(), account, field_id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_custom_field(&self, account: AccountId, field_id: i64) -> StoreResult<()> {
        // Contacts' values go with it (ON DELETE CASCADE).
        let mut tx = self.begin_write().await?;
        delete_by_id(
            tx.conn(),
            "DELETE FROM custom_fields WHERE account_id = $1 AND id = $2",
            account,
            field_id,
        )
        .await?;
        tx.commit().await
    }

    async fn create_user(&self, account: AccountId, user: &NewUser) -> StoreResult<User> {
        let mut tx = self.begin_write().await?;
        insert_user_row(
            tx.conn(),
            account,
            user.uuid,
            &user.email,
            &user.name,
            false,
            Timestamp::now(),
        )
        .await?;
        let created = read_user(tx.conn(), account, user.uuid).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_user(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &UserChanges,
    ) -> StoreResult<User> {
        let mut tx = self.begin_write().await?;
        let user = read_user(tx.conn(), account, uuid).await?;
        if let Some(email) = &changes.email {
            sqlx::query("UPDATE users SET email = $1, email_key = $2 WHERE id = $3")
                .bind(email.clone())
                .bind(fold_case(email))
                .bind(user.id)
                .execute(tx.conn())
                .await
                .map_err(unique_means(
                    "user_exists",
                    format!("a user with e-mail '{email}' already exists"),
                ))?;
        }
        if let Some(name) = &changes.name {
            sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
                .bind(name.clone())
                .bind(user.id)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
        }
        let updated = read_user(tx.conn(), account, uuid).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_user(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let user = read_user(tx.conn(), account, uuid).await?;
        if user.owner {
            return Err(StoreError::conflict(
                "owner_user",
                "the account owner cannot be deleted",
            ));
        }
        // Their contacts become unassigned (ON DELETE SET NULL) and their
        // team memberships go (ON DELETE CASCADE).
        delete_owned(
            tx.conn(),
            "DELETE FROM users WHERE account_id = $1 AND uuid = $2",
            account,
            uuid.to_string(),
        )
        .await?;
        tx.commit().await
    }

    async fn create_team(&self, account: AccountId, team: &NewTeam) -> StoreResult<Team> {
        let mut tx = self.begin_write().await?;
        if team.is_default {
            lock_account(tx.conn(), account).await?;
            clear_default_team(tx.conn(), account).await?;
        }
        let id = insert_team_row(
            tx.conn(),
            account,
            team.uuid,
            &team.name,
            team.is_default,
            Timestamp::now(),
        )
        .await?;
        replace_team_members(tx.conn(), id, &team.member_ids).await?;
        let created = read_team(tx.conn(), account, team.uuid).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_team(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &TeamChanges,
    ) -> StoreResult<Team> {
        let mut tx = self.begin_write().await?;
        if changes.make_default {
            lock_account(tx.conn(), account).await?;
        }
        let team = read_team(tx.conn(), account, uuid).await?;
        if let Some(name) = &changes.name {
            sqlx::query("UPDATE teams SET name = $1 WHERE id = $2")
                .bind(name.clone())
                .bind(team.id)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
        }
        if changes.make_default && !team.is_default {
            clear_default_team(tx.conn(), account).await?;
            sqlx::query("UPDATE teams SET is_default = 1 WHERE id = $1")
                .bind(team.id)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
        }
        if let Some(member_ids) = &changes.member_ids {
            replace_team_members(tx.conn(), team.id, member_ids).await?;
        }
        let updated = read_team(tx.conn(), account, uuid).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_team(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let team = read_team(tx.conn(), account, uuid).await?;
        if team.is_default {
            return Err(StoreError::conflict(
                "default_team",
                "the default team cannot be deleted; make another team the default first",
            ));
        }
        let used = count_rows(
            tx.conn(),
            "SELECT count(*) FROM contacts WHERE team_id = $1",
            team.id,
        )
        .await?;
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
            tx.conn(),
            "DELETE FROM teams WHERE account_id = $1 AND uuid = $2",
            account,
            uuid.to_string(),
        )
        .await?;
        tx.commit().await
    }

    async fn create_channel(
        &self,
        account: AccountId,
        channel: &NewChannel,
    ) -> StoreResult<Channel> {
        let mut tx = self.begin_write().await?;
        if channel.main != Some(false) {
            lock_account(tx.conn(), account).await?;
        }
        let main = match channel.main {
            Some(true) => {
                clear_main_channel(tx.conn(), account, channel.kind).await?;
                true
            }
            Some(false) => false,
            None => {
                let mains: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM channels WHERE account_id = $1 AND type = $2 AND is_main = 1",
                )
                .bind(account.0)
                .bind(channel.kind.as_str())
                .fetch_one(tx.conn())
                .await
                .map_err(db_error)?;
                mains == 0
            }
        };
        insert_channel_row(
            tx.conn(),
            account,
            channel.uuid,
            &channel.title,
            channel.kind,
            main,
            None,
            Timestamp::now(),
        )
        .await?;
        let created = read_channel(tx.conn(), account, channel.uuid).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_channel(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &ChannelChanges,
    ) -> StoreResult<Channel> {
        let mut tx = self.begin_write().await?;
        if changes.make_main {
            lock_account(tx.conn(), account).await?;
        }
        let channel = read_channel(tx.conn(), account, uuid).await?;
        if let Some(title) = &changes.title {
            sqlx::query("UPDATE channels SET title = $1 WHERE id = $2")
                .bind(title.clone())
                .bind(channel.id)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
        }
        match changes.discard {
            // A discarded channel is never the main one.
            Some(Some(at)) => {
                sqlx::query("UPDATE channels SET discarded_at = COALESCE(discarded_at, $1), is_main = 0 WHERE id = $2")
                    .bind(at.unix())
                    .bind(channel.id)
                    .execute(tx.conn())
                    .await
                    .map_err(db_error)?;
            }
            Some(None) => {
                sqlx::query("UPDATE channels SET discarded_at = NULL WHERE id = $1")
                    .bind(channel.id)
                    .execute(tx.conn())
                    .await
                    .map_err(db_error)?;
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
            clear_main_channel(tx.conn(), account, channel.kind).await?;
            sqlx::query("UPDATE channels SET is_main = 1 WHERE id = $1")
                .bind(channel.id)
                .execute(tx.conn())
                .await
                .map_err(db_error)?;
        }
        let updated = read_channel(tx.conn(), account, uuid).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_channel(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let channel = read_channel(tx.conn(), account, uuid).await?;
        let used = count_rows(
            tx.conn(),
            "SELECT count(*) FROM contacts WHERE channel_id = $1",
            channel.id,
        )
        .await?;
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
            tx.conn(),
            "DELETE FROM channels WHERE account_id = $1 AND uuid = $2",
            account,
            uuid.to_string(),
        )
        .await?;
        tx.commit().await
    }

    async fn create_bot(&self, account: AccountId, bot: &NewBot) -> StoreResult<Bot> {
        let mut tx = self.begin_write().await?;
        insert_bot_row(
            tx.conn(),
            account,
            bot.uuid,
            &bot.name,
            bot.enabled,
            bot.version,
            Timestamp::now(),
        )
        .await?;
        let created = read_bot(tx.conn(), account, bot.uuid).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_bot(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &BotChanges,
    ) -> StoreResult<Bot> {
        let mut tx = self.begin_write().await?;
        let bot = read_bot(tx.conn(), account, uuid).await?;
        sqlx::query("UPDATE bots SET name = $1, enabled = $2, version = $3 WHERE id = $4")
            .bind(changes.name.clone().unwrap_or(bot.name))
            .bind(flag(changes.enabled.unwrap_or(bot.enabled)))
            .bind(changes.version.unwrap_or(bot.version))
            .bind(bot.id)
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        let updated = read_bot(tx.conn(), account, uuid).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_bot(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let bot = read_bot(tx.conn(), account, uuid).await?;
        sqlx::query("UPDATE contacts SET bot_id = NULL, bot_status = NULL WHERE bot_id = $1")
            .bind(bot.id)
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        delete_owned(
            tx.conn(),
            "DELETE FROM bots WHERE account_id = $1 AND uuid = $2",
            account,
            uuid.to_string(),
        )
        .await?;
        tx.commit().await
    }

    async fn create_funnel(&self, account: AccountId, funnel: &NewFunnel) -> StoreResult<Funnel> {
        let mut tx = self.begin_write().await?;
        let position = match funnel.position {
            Some(position) => position,
            None => {
                let last: Option<i64> =
                    sqlx::query_scalar("SELECT max(position) FROM funnels WHERE account_id = $1")
                        .bind(account.0)
                        .fetch_one(tx.conn())
                        .await
                        .map_err(db_error)?;
                last.map_or(1, |p| p.saturating_add(1))
            }
        };
        insert_funnel_row(
            tx.conn(),
            account,
            funnel.uuid,
            &funnel.name,
            funnel.emoji.as_deref(),
            position,
            Timestamp::now(),
        )
        .await?;
        let created = read_funnel(tx.conn(), account, funnel.uuid).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_funnel(
        &self,
        account: AccountId,
        uuid: FunnelId,
        changes: &FunnelChanges,
    ) -> StoreResult<Funnel> {
        let mut tx = self.begin_write().await?;
        let funnel = read_funnel(tx.conn(), account, uuid).await?;
        sqlx::query("UPDATE funnels SET name = $1, emoji = $2, position = $3 WHERE id = $4")
            .bind(changes.name.clone().unwrap_or(funnel.name))
            .bind(changes.emoji.clone().unwrap_or(funnel.emoji))
            .bind(changes.position.unwrap_or(funnel.position))
            .bind(funnel.id)
            .execute(tx.conn())
            .await
            .map_err(db_error)?;
        let updated = read_funnel(tx.conn(), account, uuid).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_funnel(&self, account: AccountId, uuid: FunnelId) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Contacts in it are left without a funnel (ON DELETE SET NULL).
        delete_owned(
            tx.conn(),
            "DELETE FROM funnels WHERE account_id = $1 AND uuid = $2",
            account,
            uuid.to_string(),
        )
        .await?;
        tx.commit().await
    }
}

async fn clear_default_team(conn: &mut AnyConnection, account: AccountId) -> StoreResult<()> {
    sqlx::query("UPDATE teams SET is_default = 0 WHERE account_id = $1 AND is_default = 1")
        .bind(account.0)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn clear_main_channel(
    conn: &mut AnyConnection,
    account: AccountId,
    kind: Source,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE channels SET is_main = 0 WHERE account_id = $1 AND type = $2 AND is_main = 1",
    )
    .bind(account.0)
    .bind(kind.as_str())
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn count_rows(conn: &mut AnyConnection, sql: &'static str, id: i64) -> StoreResult<i64> {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(conn)
        .await
        .map_err(db_error)
}
