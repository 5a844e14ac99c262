//! Where numbered pages of a listing begin, remembered (docs/storage.md,
//! "Numbered pages").
//!
//! `?page=n` is an `OFFSET`: SQLite and PostgreSQL step over every contact
//! before the page, 8 000 index entries for page 400 of 20. A page that
//! instead starts right after a known contact is a keyset page, as cheap as
//! the first. So each listing remembers, for the offsets it has served,
//! the place in the order of the contact just before them, and the next
//! page's too: a client walking `page=1, 2, 3, …` (what Callbell's
//! pagination asks of it) never steps over anything, and a repeated deep
//! page steps over its contacts once.
//!
//! A remembered place is only right while nothing before it in the
//! listing changed. Every write that adds a contact to, removes one from,
//! or moves one within any listing of an account (a search's too) bumps
//! the account's `listing_version` in its own transaction (or takes a new
//! contact sequence number); every settings change bumps
//! `settings_version`. A
//! listing reads the three in the transaction it pages in, and the places
//! kept for other versions are never used: a change made by any process is
//! seen by the next read that begins after it committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::domain::Source;
use crate::store::{AccountId, ContactPosition, TagsMode};

/// Listings whose pages are remembered; past this the memory starts over.
const LISTINGS: usize = 1_000;
/// Page starts remembered per listing; past this its starts start over.
const STARTS: usize = 10_000;

/// A listing of an account, as far as where its pages start depends on it:
/// the filter without `q` (a search's pages come from its remembered
/// matches, `matches.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Listing {
    pub account: AccountId,
    pub source: Option<Source>,
    pub team_id: Option<i64>,
    /// Sorted.
    pub tags: Vec<i64>,
    pub tags_mode: TagsMode,
}

/// What the account's contacts and settings were when a place was read:
/// `contact_seq`, `settings_version`, `listing_version`.
pub(super) type Version = (i64, i64, i64);

#[derive(Default)]
pub struct PageAnchors {
    listings: Mutex<HashMap<Listing, Starts>>,
}

struct Starts {
    version: Version,
    /// By offset (the number of contacts before the page, at least 1): the
    /// place of the contact right before it.
    before: BTreeMap<i64, ContactPosition>,
}

impl PageAnchors {
    /// The remembered start nearest to `offset` without passing it: its
    /// offset and the place of the contact right before it.
    pub(super) fn nearest(
        &self,
        listing: &Listing,
        version: Version,
        offset: i64,
    ) -> Option<(i64, ContactPosition)> {
        let listings = self.listings.lock().ok()?;
        let starts = listings.get(listing).filter(|s| s.version == version)?;
        let (start, before) = starts.before.range(..=offset).next_back()?;
        Some((*start, *before))
    }

    /// Remembers that in this version of the listing, `before` is the
    /// contact right before `offset`. Only what a read transaction saw may
    /// be remembered: a write transaction may still roll back.
    pub(super) fn remember(
        &self,
        listing: &Listing,
        version: Version,
        offset: i64,
        before: ContactPosition,
    ) {
        let Ok(mut listings) = self.listings.lock() else {
            return;
        };
        // Looked up before inserting: every first page remembers where the
        // second begins, and `entry` would clone the key each time.
        if !listings.contains_key(listing) {
            if listings.len() >= LISTINGS {
                listings.clear();
            }
            let fresh = Starts {
                version,
                before: BTreeMap::new(),
            };
            listings.insert(listing.clone(), fresh);
        }
        let Some(starts) = listings.get_mut(listing) else {
            return;
        };
        if starts.version != version {
            // A read in an older snapshot than the kept places' must not
            // replace them with its own; a newer one does.
            if starts.version > version {
                return;
            }
            starts.version = version;
            starts.before.clear();
        }
        if starts.before.len() >= STARTS {
            starts.before.clear();
        }
        starts.before.insert(offset, before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn listing() -> Listing {
        Listing {
            account: AccountId(1),
            source: None,
            team_id: None,
            tags: vec![3],
            tags_mode: TagsMode::All,
        }
    }

    fn place(seq: i64) -> ContactPosition {
        ContactPosition {
            created_at: Timestamp::from_unix(seq),
            seq,
        }
    }

    #[test]
    fn the_nearest_start_before_an_offset_of_the_same_version_is_found() {
        let anchors = PageAnchors::default();
        let listing = listing();
        anchors.remember(&listing, (10, 0, 0), 20, place(9));
        anchors.remember(&listing, (10, 0, 0), 60, place(5));
        assert_eq!(anchors.nearest(&listing, (10, 0, 0), 19), None);
        assert_eq!(
            anchors.nearest(&listing, (10, 0, 0), 20),
            Some((20, place(9)))
        );
        assert_eq!(
            anchors.nearest(&listing, (10, 0, 0), 59),
            Some((20, place(9)))
        );
        assert_eq!(
            anchors.nearest(&listing, (10, 0, 0), 80),
            Some((60, place(5)))
        );
        let other = Listing {
            tags: vec![4],
            ..listing.clone()
        };
        assert_eq!(anchors.nearest(&other, (10, 0, 0), 80), None);
    }

    #[test]
    fn starts_of_another_version_are_never_used() {
        let anchors = PageAnchors::default();
        let listing = listing();
        anchors.remember(&listing, (10, 0, 0), 20, place(9));
        for changed in [(11, 0, 0), (10, 1, 0), (10, 0, 1)] {
            assert_eq!(anchors.nearest(&listing, changed, 20), None);
        }
        // A newer version replaces the starts; an older read keeps them.
        anchors.remember(&listing, (10, 0, 1), 40, place(7));
        anchors.remember(&listing, (10, 0, 0), 60, place(5));
        assert_eq!(anchors.nearest(&listing, (10, 0, 0), 20), None);
        assert_eq!(anchors.nearest(&listing, (10, 0, 1), 20), None);
        assert_eq!(
            anchors.nearest(&listing, (10, 0, 1), 60),
            Some((40, place(7)))
        );
    }
}
