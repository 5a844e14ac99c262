//! How common each trigram is in SQLite's search index: statistics for
//! choosing which trigrams a `q` asks the index for (docs/storage.md, "`q`:
//! substrings through trigrams").
//!
//! Intersecting trigram lists costs about the length of the shorter ones,
//! so a search is fastest through its rarest trigrams. FTS5 keeps no such
//! counts (its vocabulary table counts a trigram by reading its whole
//! list), so this process counts a trigram the first time a search needs
//! it, up to a bound, and keeps the count for a while. The counts only
//! steer the choice: a stale one makes a search slower, never wrong.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::db::{Db, params};
use crate::store::StoreResult;

/// Contacts counted per trigram at most: enough to tell rare from common,
/// few enough that counting one costs a few milliseconds.
const COUNTED_UP_TO: i64 = 50_000;
/// How long a count is kept.
const KEPT_FOR: Duration = Duration::from_secs(600);
/// Trigrams kept at most; past this the statistics start over.
const CAPACITY: usize = 20_000;

#[derive(Default)]
pub struct TrigramStats {
    counts: Mutex<HashMap<String, (i64, Instant)>>,
}

impl TrigramStats {
    /// How many contacts have `trigram` (an FTS5 term, quoted), up to
    /// [`COUNTED_UP_TO`]: kept, or counted now.
    pub fn contacts_with(&self, db: &mut dyn Db, trigram: &str) -> StoreResult<i64> {
        if let Some(count) = self.kept(trigram) {
            return Ok(count);
        }
        let count: i64 = db.one(
            "SELECT count(*) FROM (SELECT rowid FROM contacts_search
             WHERE contacts_search MATCH $1 LIMIT $2) counted",
            &params![trigram, COUNTED_UP_TO],
        )?;
        if let Ok(mut counts) = self.counts.lock() {
            if counts.len() >= CAPACITY {
                counts.clear();
            }
            counts.insert(trigram.to_owned(), (count, Instant::now()));
        }
        Ok(count)
    }

    fn kept(&self, trigram: &str) -> Option<i64> {
        let counts = self.counts.lock().ok()?;
        let (count, counted_at) = counts.get(trigram)?;
        (counted_at.elapsed() < KEPT_FOR).then_some(*count)
    }
}
