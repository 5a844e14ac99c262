//! The totals listings read (`contact_count` per account, channel, team
//! and tag; docs/storage.md, "Totals are counted as they change"): how a
//! write moves them.
//!
//! A write gathers its moves in a [`Counts`] and queues it on the
//! connection ([`Db::defer_counts`]); the commit adds up everything queued
//! and applies it once, in one order. A group commit of 64 creates then
//! updates each counter row once instead of 64 times, and concurrent
//! PostgreSQL sessions lock those rows in the same order, at the end of
//! their transactions.
//!
//! The same update bumps the account's `listing_version`, which tells the
//! remembered page starts ([`super::anchors`]) and search matches
//! ([`super::matches`]) that a listing changed.

use std::collections::BTreeMap;

use super::db::{Db, params};
use crate::store::{AccountId, StoreResult};

/// Moves of the counters, by row id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Counts {
    /// Every account whose listings changed, even where the moves cancel
    /// out (a contact created and deleted in one group commit).
    accounts: BTreeMap<i64, i64>,
    channels: BTreeMap<i64, i64>,
    teams: BTreeMap<i64, i64>,
    tags: BTreeMap<i64, i64>,
}

impl Counts {
    /// A contact with these memberships comes (`delta` 1) or goes (-1).
    pub(super) fn contact(
        &mut self,
        account: AccountId,
        channel_id: i64,
        team_id: Option<i64>,
        tag_ids: &[i64],
        delta: i64,
    ) {
        *self.accounts.entry(account.0).or_default() += delta;
        *self.channels.entry(channel_id).or_default() += delta;
        if let Some(team_id) = team_id {
            self.team(team_id, delta);
        }
        for tag_id in tag_ids {
            self.tag(*tag_id, delta);
        }
    }

    /// A contact of the account changed its place in some listing without
    /// coming or going (its tags, team or name changed).
    pub(super) fn listings_changed(&mut self, account: AccountId) {
        self.accounts.entry(account.0).or_default();
    }

    pub(super) fn team(&mut self, team_id: i64, delta: i64) {
        *self.teams.entry(team_id).or_default() += delta;
    }

    pub(super) fn tag(&mut self, tag_id: i64, delta: i64) {
        *self.tags.entry(tag_id).or_default() += delta;
    }

    /// How much this moves a team's count.
    pub(super) fn of_team(&self, team_id: i64) -> i64 {
        self.teams.get(&team_id).copied().unwrap_or_default()
    }

    /// How much this moves a channel's count.
    pub(super) fn of_channel(&self, channel_id: i64) -> i64 {
        self.channels.get(&channel_id).copied().unwrap_or_default()
    }

    /// Adds `other`'s moves to these.
    pub(super) fn merge(&mut self, other: Counts) {
        let pairs = [
            (&mut self.accounts, other.accounts),
            (&mut self.channels, other.channels),
            (&mut self.teams, other.teams),
            (&mut self.tags, other.tags),
        ];
        for (mine, theirs) in pairs {
            for (id, delta) in theirs {
                *mine.entry(id).or_default() += delta;
            }
        }
    }

    /// Updates the counter rows: table by table, each in id order. The
    /// account rows also hand out the numbers of `events` (how many each
    /// account's commit writes): one pass over them in id order, so that
    /// concurrent PostgreSQL sessions lock them in the same order. Answers
    /// the first event number of each account that has events.
    pub(super) fn apply(
        self,
        db: &mut dyn Db,
        events: &BTreeMap<i64, i64>,
    ) -> StoreResult<BTreeMap<i64, i64>> {
        let mut accounts: BTreeMap<i64, (Option<i64>, i64)> = BTreeMap::new();
        for (id, delta) in self.accounts {
            accounts.entry(id).or_default().0 = Some(delta);
        }
        for (id, count) in events {
            accounts.entry(*id).or_default().1 = *count;
        }
        let mut first_seqs = BTreeMap::new();
        for (id, (delta, count)) in accounts {
            if count == 0 {
                db.execute(
                    "UPDATE accounts SET contact_count = contact_count + $1,
                     listing_version = listing_version + 1 WHERE id = $2",
                    &params![delta.unwrap_or_default(), id],
                )?;
                continue;
            }
            // Only a listing change moves listing_version: a PATCH of a
            // custom field or a note keeps the remembered page starts and
            // search matches.
            let last: i64 = db.one(
                "UPDATE accounts SET contact_count = contact_count + $1,
                 listing_version = listing_version + $2, event_seq = event_seq + $3
                 WHERE id = $4 RETURNING event_seq",
                &params![
                    delta.unwrap_or_default(),
                    i64::from(delta.is_some()),
                    count,
                    id
                ],
            )?;
            first_seqs.insert(id, last - count + 1);
        }
        let tables: [(&str, BTreeMap<i64, i64>); 3] = [
            (
                "UPDATE channels SET contact_count = contact_count + $1 WHERE id = $2",
                self.channels,
            ),
            (
                "UPDATE teams SET contact_count = contact_count + $1 WHERE id = $2",
                self.teams,
            ),
            (
                "UPDATE tags SET contact_count = contact_count + $1 WHERE id = $2",
                self.tags,
            ),
        ];
        for (sql, moves) in tables {
            for (id, delta) in moves {
                if delta != 0 {
                    db.execute(sql, &params![delta, id])?;
                }
            }
        }
        Ok(first_seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_moves_add_up_and_cancel() {
        let mut created = Counts::default();
        created.contact(AccountId(1), 7, Some(3), &[10, 11], 1);
        let mut moved = Counts::default();
        moved.team(3, -1);
        moved.team(4, 1);
        moved.tag(11, -1);
        created.merge(moved);
        assert_eq!(created.of_team(3), 0);
        assert_eq!(created.of_team(4), 1);
        assert_eq!(created.of_channel(7), 1);
        assert_eq!(created.of_channel(8), 0);
        assert_eq!(created.tags.get(&10), Some(&1));
        assert_eq!(created.tags.get(&11), Some(&0));
    }

    /// Moves queued in a transaction count for the checks later in it (a
    /// team a contact joined earlier in the same group commit cannot be
    /// deleted), are dropped with a savepoint rolled back, and reach the
    /// counter rows at the commit.
    #[test]
    fn queued_moves_count_before_the_commit_and_land_at_it() {
        use super::super::settings::teams;
        use super::super::sqlite::{Role, SqliteDb};
        use crate::domain::PublicId;
        use crate::store::{NewTeam, StoreError};

        let (_dir, location) = super::super::demo_database();
        let mut writer = SqliteDb::open(&location, Role::Writer).expect("writer");
        let db: &mut dyn Db = &mut writer;
        let account = AccountId(
            db.one("SELECT min(id) FROM accounts", &[])
                .expect("account"),
        );
        let count = |db: &mut dyn Db, id: i64| -> i64 {
            db.one(
                "SELECT contact_count FROM teams WHERE id = $1",
                &params![id],
            )
            .expect("count")
        };

        db.begin_write().expect("begin");
        let team = teams::create(
            db,
            account,
            &NewTeam {
                uuid: PublicId::random(),
                name: "Night shift".to_owned(),
                is_default: false,
                member_ids: Vec::new(),
            },
        )
        .expect("team");
        let mut joined = Counts::default();
        joined.team(team.id, 1);
        db.defer_counts(joined);
        assert_eq!(
            count(db, team.id),
            0,
            "nothing is applied before the commit"
        );
        match teams::delete(db, account, team.uuid) {
            Err(StoreError::Conflict(conflict)) => assert_eq!(conflict.code, "team_in_use"),
            other => panic!("deleting a team a contact just joined: {other:?}"),
        }

        let mark = db.queue_mark();
        let mut undone = Counts::default();
        undone.team(team.id, 5);
        db.defer_counts(undone);
        db.forget_queued_after(mark);
        db.commit().expect("commit");
        assert_eq!(count(db, team.id), 1, "the kept move, once");
    }
}
