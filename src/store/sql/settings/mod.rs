//! Tags, custom fields, users, teams, channels, bots and funnels: one file
//! per entity, as in `src/api/settings/`. Every change here bumps the
//! account's settings version in the same transaction (see
//! [`super::cache`]).

pub(super) mod bots;
pub(super) mod channels;
pub(super) mod custom_fields;
pub(super) mod funnels;
pub(super) mod tags;
pub(super) mod teams;
pub(super) mod users;

use std::sync::Arc;

use async_trait::async_trait;

use super::cache::{Seen, settings_version};
use super::db::{Db, params};
use super::{SqlStore, in_read_transaction};
use crate::domain::settings::{
    AccountSettings, Bot, Channel, CustomField, Funnel, Tag, Team, User,
};
use crate::domain::{FunnelId, PublicId};
use crate::store::{
    AccountId, BotChanges, ChannelChanges, CustomFieldChanges, FunnelChanges, NewBot, NewChannel,
    NewCustomField, NewFunnel, NewTeam, NewUser, SettingsStore, StoreResult, TeamChanges,
    UserChanges,
};

/// Everything the account has configured, as the current transaction sees
/// it.
pub(super) fn read_settings(db: &mut dyn Db, account: AccountId) -> StoreResult<AccountSettings> {
    Ok(AccountSettings::new(
        tags::all(db, account)?,
        custom_fields::all(db, account)?,
        users::all(db, account)?,
        teams::all(db, account)?,
        channels::all(db, account)?,
        bots::all(db, account)?,
        funnels::all(db, account)?,
    ))
}

/// Marks the account's settings as changed, for every process's cache.
pub(super) fn bump_settings_version(db: &mut dyn Db, account: AccountId) -> StoreResult<()> {
    db.execute(
        "UPDATE accounts SET settings_version = settings_version + 1 WHERE id = $1",
        &params![account.0],
    )?;
    Ok(())
}

impl SqlStore {
    /// Runs a settings change in the next group commit, with the version
    /// bump every settings change needs.
    async fn change_settings<T, F>(&self, account: AccountId, change: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Db) -> StoreResult<T> + Send + 'static,
    {
        self.write(move |db, _| {
            let changed = change(db)?;
            bump_settings_version(db, account)?;
            Ok(changed)
        })
        .await
    }
}

#[async_trait]
impl SettingsStore for SqlStore {
    async fn settings(&self, account: AccountId) -> StoreResult<Arc<AccountSettings>> {
        // One statement outside a transaction finds the version; only
        // settings that are not cached are read in one.
        let cache = self.cache.clone();
        self.read_statement(
            move |db| match cache.cached(account, settings_version(db, account)?) {
                Some(settings) => Ok(settings),
                None => in_read_transaction(db, |db| cache.current(db, account, Seen::Committed)),
            },
        )
        .await
    }

    async fn create_tag(&self, account: AccountId, name: &str) -> StoreResult<Tag> {
        let name = name.to_owned();
        self.change_settings(account, move |db| tags::create(db, account, &name))
            .await
    }

    async fn rename_tag(&self, account: AccountId, tag_id: i64, name: &str) -> StoreResult<Tag> {
        let name = name.to_owned();
        self.change_settings(account, move |db| tags::rename(db, account, tag_id, &name))
            .await
    }

    async fn delete_tag(&self, account: AccountId, tag_id: i64) -> StoreResult<()> {
        self.change_settings(account, move |db| tags::delete(db, account, tag_id))
            .await
    }

    async fn create_custom_field(
        &self,
        account: AccountId,
        field: &NewCustomField,
    ) -> StoreResult<CustomField> {
        let field = field.clone();
        self.change_settings(account, move |db| {
            custom_fields::create(db, account, &field)
        })
        .await
    }

    async fn update_custom_field(
        &self,
        account: AccountId,
        field_id: i64,
        changes: &CustomFieldChanges,
    ) -> StoreResult<CustomField> {
        let changes = changes.clone();
        self.change_settings(account, move |db| {
            custom_fields::update(db, account, field_id, &changes)
        })
        .await
    }

    async fn delete_custom_field(&self, account: AccountId, field_id: i64) -> StoreResult<()> {
        self.change_settings(account, move |db| {
            custom_fields::delete(db, account, field_id)
        })
        .await
    }

    async fn create_user(&self, account: AccountId, user: &NewUser) -> StoreResult<User> {
        let user = user.clone();
        self.change_settings(account, move |db| users::create(db, account, &user))
            .await
    }

    async fn update_user(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &UserChanges,
    ) -> StoreResult<User> {
        let changes = changes.clone();
        self.change_settings(account, move |db| {
            users::update(db, account, uuid, &changes)
        })
        .await
    }

    async fn delete_user(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        self.change_settings(account, move |db| users::delete(db, account, uuid))
            .await
    }

    async fn create_team(&self, account: AccountId, team: &NewTeam) -> StoreResult<Team> {
        let team = team.clone();
        self.change_settings(account, move |db| teams::create(db, account, &team))
            .await
    }

    async fn update_team(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &TeamChanges,
    ) -> StoreResult<Team> {
        let changes = changes.clone();
        self.change_settings(account, move |db| {
            teams::update(db, account, uuid, &changes)
        })
        .await
    }

    async fn delete_team(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        self.change_settings(account, move |db| teams::delete(db, account, uuid))
            .await
    }

    async fn team_memberships(&self, account: AccountId) -> StoreResult<Vec<(i64, i64)>> {
        self.read_statement(move |db| teams::memberships(db, account))
            .await
    }

    async fn create_channel(
        &self,
        account: AccountId,
        channel: &NewChannel,
    ) -> StoreResult<Channel> {
        let channel = channel.clone();
        self.change_settings(account, move |db| channels::create(db, account, &channel))
            .await
    }

    async fn update_channel(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &ChannelChanges,
    ) -> StoreResult<Channel> {
        let changes = changes.clone();
        self.change_settings(account, move |db| {
            channels::update(db, account, uuid, &changes)
        })
        .await
    }

    async fn delete_channel(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        self.change_settings(account, move |db| channels::delete(db, account, uuid))
            .await
    }

    async fn create_bot(&self, account: AccountId, bot: &NewBot) -> StoreResult<Bot> {
        let bot = bot.clone();
        self.change_settings(account, move |db| bots::create(db, account, &bot))
            .await
    }

    async fn update_bot(
        &self,
        account: AccountId,
        uuid: PublicId,
        changes: &BotChanges,
    ) -> StoreResult<Bot> {
        let changes = changes.clone();
        self.change_settings(account, move |db| bots::update(db, account, uuid, &changes))
            .await
    }

    async fn delete_bot(&self, account: AccountId, uuid: PublicId) -> StoreResult<()> {
        self.change_settings(account, move |db| bots::delete(db, account, uuid))
            .await
    }

    async fn create_funnel(&self, account: AccountId, funnel: &NewFunnel) -> StoreResult<Funnel> {
        let funnel = funnel.clone();
        self.change_settings(account, move |db| funnels::create(db, account, &funnel))
            .await
    }

    async fn update_funnel(
        &self,
        account: AccountId,
        uuid: FunnelId,
        changes: &FunnelChanges,
    ) -> StoreResult<Funnel> {
        let changes = changes.clone();
        self.change_settings(account, move |db| {
            funnels::update(db, account, uuid, &changes)
        })
        .await
    }

    async fn delete_funnel(&self, account: AccountId, uuid: FunnelId) -> StoreResult<()> {
        self.change_settings(account, move |db| funnels::delete(db, account, uuid))
            .await
    }
}

/// Deletes one row of an account-owned table; none deleted means not found.
pub(super) fn delete_owned(
    db: &mut dyn Db,
    sql: &'static str,
    account: AccountId,
    key: super::db::Param<'_>,
) -> StoreResult<()> {
    let deleted = db.execute(sql, &[super::db::Param::from(account.0), key])?;
    if deleted == 0 {
        return Err(crate::store::StoreError::NotFound);
    }
    Ok(())
}
