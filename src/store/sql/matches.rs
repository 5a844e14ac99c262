//! What searches matched, remembered (docs/storage.md, "`q`: substrings
//! through trigrams").
//!
//! A search's page needs its exact total, so every match is found and
//! checked, whichever page is asked for: with a thousand matches among a
//! million contacts that is most of a search's cost, paid again for page
//! 2, 3, … of the same search and for the same search asked again. Its
//! matches, though, change only when the account's contacts do: a create
//! takes a new `contact_seq`; a delete, a rename or a team change bumps
//! `listing_version`; a settings change bumps `settings_version` — each in
//! its writer's transaction, on every backend. So each process keeps the
//! matches (id and place in the newest-first order, sorted) of the
//! searches it answered, for the version it read them at, and serves a
//! search again from them only when it reads that same version in the
//! transaction it pages in: a change made by any process is seen by the
//! next read that begins after it committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::anchors::Version;
use crate::domain::{Source, Timestamp};
use crate::store::AccountId;

/// Searches whose matches are remembered; past this the memory starts
/// over. Each holds at most `SEARCH_LOOKUPS` (2 000) matches of 24 bytes.
const SEARCHES: usize = 128;

/// A search of an account's contacts without tags (the searches whose
/// matches are found through the trigram index and sorted in Rust).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Searched {
    pub account: AccountId,
    pub source: Option<Source>,
    pub team_id: Option<i64>,
    /// The `LIKE` patterns the matches were checked against.
    pub name_pattern: String,
    pub digits_pattern: Option<String>,
}

/// A match: the contact's id and its place in the order, `created_at` and
/// `seq`.
pub(super) type Match = (i64, Timestamp, i64);

#[derive(Default)]
pub struct SearchMatches {
    searches: Mutex<HashMap<Searched, Remembered>>,
}

/// Every match of a search, newest first, and the version it was read at.
struct Remembered {
    version: Version,
    matches: Arc<[Match]>,
}

impl SearchMatches {
    /// The matches of `searched` remembered at exactly this version,
    /// newest first.
    pub(super) fn get(&self, searched: &Searched, version: Version) -> Option<Arc<[Match]>> {
        let searches = self.searches.lock().ok()?;
        let kept = searches.get(searched)?;
        (kept.version == version).then(|| Arc::clone(&kept.matches))
    }

    /// Remembers every match of `searched` at this version, newest first.
    /// Only what a read transaction saw may be remembered: a write
    /// transaction may still roll back.
    pub(super) fn remember(&self, searched: Searched, version: Version, matches: Arc<[Match]>) {
        let Ok(mut searches) = self.searches.lock() else {
            return;
        };
        // A read in an older snapshot than the kept matches' must not
        // replace them with its own.
        if searches
            .get(&searched)
            .is_some_and(|kept| kept.version > version)
        {
            return;
        }
        if searches.len() >= SEARCHES && !searches.contains_key(&searched) {
            searches.clear();
        }
        searches.insert(searched, Remembered { version, matches });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searched(name: &str) -> Searched {
        Searched {
            account: AccountId(1),
            source: None,
            team_id: None,
            name_pattern: format!("%{name}%"),
            digits_pattern: None,
        }
    }

    fn matches(seqs: &[i64]) -> Arc<[Match]> {
        seqs.iter()
            .map(|&seq| (seq, Timestamp::from_unix(seq), seq))
            .collect()
    }

    #[test]
    fn matches_are_answered_only_for_the_version_they_were_read_at() {
        let memory = SearchMatches::default();
        memory.remember(searched("rossi"), (10, 0, 0), matches(&[9, 4]));
        assert_eq!(
            memory.get(&searched("rossi"), (10, 0, 0)).as_deref(),
            Some(&matches(&[9, 4])[..])
        );
        for changed in [(11, 0, 0), (10, 1, 0), (10, 0, 1)] {
            assert!(memory.get(&searched("rossi"), changed).is_none());
        }
        assert!(memory.get(&searched("bianchi"), (10, 0, 0)).is_none());
        let other_team = Searched {
            team_id: Some(3),
            ..searched("rossi")
        };
        assert!(memory.get(&other_team, (10, 0, 0)).is_none());
    }

    #[test]
    fn a_newer_version_replaces_the_matches_and_an_older_one_does_not() {
        let memory = SearchMatches::default();
        memory.remember(searched("rossi"), (10, 0, 1), matches(&[9]));
        memory.remember(searched("rossi"), (10, 0, 0), matches(&[9, 4]));
        assert_eq!(
            memory.get(&searched("rossi"), (10, 0, 1)).as_deref(),
            Some(&matches(&[9])[..])
        );
        memory.remember(searched("rossi"), (11, 0, 1), matches(&[11, 9]));
        assert!(memory.get(&searched("rossi"), (10, 0, 1)).is_none());
        assert_eq!(
            memory.get(&searched("rossi"), (11, 0, 1)).as_deref(),
            Some(&matches(&[11, 9])[..])
        );
    }

    #[test]
    fn memory_is_bounded() {
        let memory = SearchMatches::default();
        for n in 0..=SEARCHES {
            memory.remember(searched(&n.to_string()), (1, 0, 0), matches(&[1]));
        }
        let kept = memory.searches.lock().map(|s| s.len()).unwrap_or_default();
        assert!(kept <= SEARCHES, "{kept} searches kept");
        assert!(
            memory
                .get(&searched(&SEARCHES.to_string()), (1, 0, 0))
                .is_some()
        );
    }
}
