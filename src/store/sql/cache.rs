//! Account settings kept in memory. Every settings change bumps
//! `accounts.settings_version` in its own transaction, and whoever needs
//! the settings reads that version in the transaction it is in: the cache
//! answers only for the version found, so a change made by any process is
//! seen by the next transaction that begins after it committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::db::{Db, params};
use super::settings::read_settings;
use crate::domain::settings::AccountSettings;
use crate::store::{AccountId, StoreResult};

/// Accounts whose settings are kept; past this the cache starts over.
const CAPACITY: usize = 10_000;

/// The account's settings version, as the current transaction (or the
/// statement itself, outside one) sees it.
pub fn settings_version(db: &mut dyn Db, account: AccountId) -> StoreResult<i64> {
    db.one(
        "SELECT settings_version FROM accounts WHERE id = $1",
        &params![account.0],
    )
}

#[derive(Default)]
pub struct SettingsCache {
    entries: Mutex<HashMap<AccountId, (i64, Arc<AccountSettings>)>>,
}

/// Whether a transaction's reads may be kept for others: only what a read
/// transaction saw is committed; a write transaction may still roll back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Committed,
    Uncommitted,
}

impl SettingsCache {
    /// The account's settings as the current transaction sees them.
    pub fn current(
        &self,
        db: &mut dyn Db,
        account: AccountId,
        seen: Seen,
    ) -> StoreResult<Arc<AccountSettings>> {
        let version = settings_version(db, account)?;
        self.at_version(db, account, version, seen)
    }

    /// The settings at `version`, which the current transaction read.
    pub fn at_version(
        &self,
        db: &mut dyn Db,
        account: AccountId,
        version: i64,
        seen: Seen,
    ) -> StoreResult<Arc<AccountSettings>> {
        if let Some(settings) = self.cached(account, version) {
            return Ok(settings);
        }
        let settings = Arc::new(read_settings(db, account)?);
        if seen == Seen::Committed
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            let newer = entries.get(&account).is_some_and(|(v, _)| *v > version);
            if !newer {
                entries.insert(account, (version, settings.clone()));
            }
        }
        Ok(settings)
    }

    /// The settings last kept, at whatever version: for what no version
    /// changes (a channel's type).
    pub fn latest(&self, account: AccountId) -> Option<Arc<AccountSettings>> {
        let entries = self.entries.lock().ok()?;
        entries.get(&account).map(|(_, settings)| settings.clone())
    }

    /// The settings at `version`, if they are kept.
    pub fn cached(&self, account: AccountId, version: i64) -> Option<Arc<AccountSettings>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&account)
            .filter(|(v, _)| *v == version)
            .map(|(_, settings)| settings.clone())
    }
}
