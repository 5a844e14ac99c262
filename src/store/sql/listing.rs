//! `GET /contacts`: a page of an account's contacts, newest first, found
//! by walking an index in that order, and its total read from the counters
//! kept by every write where one counter answers it (see
//! `docs/storage.md`).

use std::cmp::Reverse;
use std::sync::Arc;

use const_format::concatcp;

use super::Backend;
use super::anchors::{Listing, PageAnchors};
use super::cache::{Seen, SettingsCache};
use super::contacts::{ContactRow, render};
use super::db::{Column, Db, SqlBuilder, params, row_struct};
use super::matches::{Match, SearchMatches, Searched};
use super::trigrams::TrigramStats;
use crate::domain::identifier::digits_of;
use crate::domain::settings::AccountSettings;
use crate::domain::{Source, fold_case};
use crate::store::{
    AccountId, ContactFilter, ContactPage, ContactPosition, ExportPage, PageStart, StoreError,
    StoreResult, TagsMode,
};

/// Most matches of a search that are listed by looking each one up; a
/// search matching more walks the newest-first order instead, testing
/// each contact, which then soon finds a page.
const SEARCH_LOOKUPS: i64 = 2_000;
/// Fewest characters the trigram index can find.
const TRIGRAM: usize = 3;
/// Most trigrams of one part of a search ranked by how common they are.
const RANKED_TRIGRAMS: usize = 8;
/// Most trigrams of one part of a search the index is asked for.
const ASKED_TRIGRAMS: usize = 3;

/// What a listing's filter asks for, resolved against the account.
struct Plan {
    account: AccountId,
    source: Option<Source>,
    team_id: Option<i64>,
    /// Tag ids, without duplicates; the rarest first.
    tags: Vec<i64>,
    tags_mode: TagsMode,
    search: Option<Search>,
}

/// `q`: a case-insensitive part of the name, or of the phone digits, in
/// the forms the statements bind.
struct Search {
    /// `%q%` over the folded name, wildcards escaped.
    name_pattern: String,
    /// `%digits%`, when `q` looks like a phone number.
    digits_pattern: Option<String>,
    /// The folded name part and the digits part (empty when `q` is no
    /// phone number), as the trigram index has them.
    folded: String,
    digits: String,
    /// Whether the trigram index (FTS5, pg_trgm) can find the candidates:
    /// every part is three characters or more.
    trigrams: bool,
    /// The FTS5 query that finds the candidates (set by
    /// [`Search::choose_trigrams`]): the rarest few trigrams of each part,
    /// all of which every match has.
    candidates_query: String,
    /// The candidates' row ids as a JSON array, once the index was asked
    /// and found few enough to look up: the statements after it read them
    /// from here instead of asking again.
    candidate_ids: Option<String>,
}

impl Search {
    fn new(q: &str) -> Search {
        let folded = fold_case(q);
        let digits = looks_like_phone_number(q).then(|| digits_of(q));
        // FTS5 takes `%` and `_` in a quoted trigram as themselves; only
        // the check after it reads them as LIKE's, escaped.
        let indexable = |text: &str| text.chars().count() >= TRIGRAM;
        let digits_for_trigrams = digits.clone().unwrap_or_default();
        Search {
            trigrams: indexable(&folded) && digits.as_deref().is_none_or(indexable),
            name_pattern: format!("%{}%", escape_like(&folded)),
            digits_pattern: digits.map(|d| format!("%{d}%")),
            candidates_query: String::new(),
            candidate_ids: None,
            digits: digits_for_trigrams,
            folded,
        }
    }

    /// The contacts (of every account) the trigram index finds for this
    /// search: candidates, which the listing checks exactly.
    fn push_candidates<'p>(&'p self, sql: &mut SqlBuilder<'p>) {
        match &self.candidate_ids {
            Some(ids) => sql
                .push("SELECT value AS rowid FROM json_each(")
                .param(ids.as_str())
                .push(")"),
            None => sql
                .push("SELECT rowid FROM contacts_search WHERE contacts_search MATCH ")
                .param(self.candidates_query.as_str()),
        };
    }

    /// Asks the index for the candidates, up to one more than
    /// [`SEARCH_LOOKUPS`]; answers how many it found, and keeps them when
    /// they are no more than that.
    fn find_candidates(&mut self, db: &mut dyn Db) -> StoreResult<i64> {
        let mut ids: Vec<i64> = Vec::new();
        db.for_each(
            "SELECT rowid FROM contacts_search WHERE contacts_search MATCH $1 LIMIT $2",
            &params![self.candidates_query.as_str(), SEARCH_LOOKUPS + 1],
            &mut |row| {
                ids.push(i64::read(row, 0)?);
                Ok(())
            },
        )?;
        let found = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        if found <= SEARCH_LOOKUPS {
            self.candidate_ids = serde_json::to_string(&ids).ok();
        }
        Ok(found)
    }

    /// Builds the candidates' FTS5 query from the rarest few trigrams of
    /// each part, as `contacts_with` counts them. Asking the index for
    /// every trigram (as a `LIKE` through it does) reads the long lists of
    /// the common ones too; a match has all of them, so the rarest few
    /// find a small superset at a fraction of the cost, and the listing
    /// checks each candidate anyway.
    fn choose_trigrams(
        &mut self,
        contacts_with: &mut dyn FnMut(&str) -> StoreResult<i64>,
    ) -> StoreResult<()> {
        let mut parts = Vec::new();
        for text in [&self.folded, &self.digits] {
            let mut ranked = Vec::new();
            for trigram in spread_trigrams(text) {
                let quoted = format!("\"{}\"", trigram.replace('"', "\"\""));
                ranked.push((contacts_with(&quoted)?, ranked.len(), quoted));
            }
            if ranked.is_empty() {
                continue;
            }
            ranked.sort();
            let chosen: Vec<String> = ranked
                .into_iter()
                .take(ASKED_TRIGRAMS)
                .map(|(_, _, quoted)| quoted)
                .collect();
            parts.push(format!("({})", chosen.join(" AND ")));
        }
        self.candidates_query = parts.join(" OR ");
        Ok(())
    }
}

/// The distinct trigrams of `text` to rank: all of them, or as many as
/// [`RANKED_TRIGRAMS`] spread from its first to its last.
fn spread_trigrams(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < TRIGRAM {
        return Vec::new();
    }
    let starts = chars.len() - TRIGRAM + 1;
    let picked = starts.min(RANKED_TRIGRAMS);
    let mut trigrams: Vec<String> = Vec::with_capacity(picked);
    for i in 0..picked {
        let start = match picked {
            1 => 0,
            _ => i * (starts - 1) / (picked - 1),
        };
        let trigram: String = chars[start..start + TRIGRAM].iter().collect();
        if !trigrams.contains(&trigram) {
            trigrams.push(trigram);
        }
    }
    trigrams
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `+39 333-12 34`, `(555) 123.4567`: digits with phone punctuation only.
fn looks_like_phone_number(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

/// How the contacts of a page are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// The contacts table in newest-first order (by account, source or
    /// team, whichever index the filter allows).
    Contacts,
    /// The memberships of the first tag in newest-first order.
    Tag,
    /// Every membership of any of the tags, sorted.
    AnyTag,
    /// Every match of the trigram index, sorted.
    Trigrams,
}

/// Which contacts by sequence number a statement may see.
#[derive(Clone, Copy)]
enum Seqs {
    UpTo(i64),
    After(i64),
}

/// What listings keep in memory between requests, in each process.
#[derive(Default)]
pub struct ListingMemory {
    pub trigrams: TrigramStats,
    pub anchors: PageAnchors,
    pub matches: SearchMatches,
}

row_struct! {
    /// The account's row as a listing reads it, in its snapshot.
    struct AccountState {
        contact_seq: i64,
        contact_count: i64,
        settings_version: i64,
        listing_version: i64,
    }
}

fn account_state(db: &mut dyn Db, account: AccountId) -> StoreResult<AccountState> {
    db.one(
        concatcp!(
            "SELECT ",
            AccountState::COLUMNS,
            " FROM accounts WHERE id = $1"
        ),
        &params![account.0],
    )
}

pub(super) fn list(
    db: &mut dyn Db,
    cache: &SettingsCache,
    memory: &ListingMemory,
    account: AccountId,
    filter: &ContactFilter,
    start: PageStart,
    page_size: u32,
) -> StoreResult<ContactPage> {
    let state = account_state(db, account)?;
    let AccountState {
        contact_seq,
        contact_count,
        ..
    } = state;
    let settings = cache.at_version(db, account, state.settings_version, Seen::Committed)?;
    let watermark = match start {
        PageStart::After { watermark, .. } => watermark,
        PageStart::Number(_) => contact_seq,
    };
    let empty = ContactPage {
        contacts: Vec::new(),
        total: 0,
        watermark,
        next: None,
    };

    let Some(mut plan) = plan_of(&settings, account, filter) else {
        return Ok(empty);
    };
    let version = (contact_seq, state.settings_version, state.listing_version);
    // A search asked for before in this version of the account's contacts
    // is paged through the matches found then (see matches.rs).
    let searched = searched_of(&plan);
    if let Some(matches) = searched
        .as_ref()
        .and_then(|searched| memory.matches.get(searched, version))
    {
        return page_of_matches(db, &plan, &settings, &matches, start, page_size, watermark);
    }
    // On PostgreSQL a search's matches are found through `pg_trgm` with
    // every condition at once; when they are few they are remembered too.
    // A part shorter than a trigram cannot use the index: such a search
    // keeps to the newest-first walk.
    if db.backend() == Backend::Postgres
        && let Some(searched) = &searched
        && plan.search.as_ref().is_some_and(|search| search.trigrams)
        && let Some(matches) = search_matches(db, &plan, Walk::Contacts, contact_seq)?
    {
        memory
            .matches
            .remember(searched.clone(), version, Arc::clone(&matches));
        return page_of_matches(db, &plan, &settings, &matches, start, page_size, watermark);
    }
    let tag_counts = tag_counts(db, &mut plan)?;

    // The search's own matches, across accounts: how many there are tells
    // whether to look them up or to walk the order testing each contact.
    // Counted only as far as the choice needs; when few, the index is not
    // asked again.
    let trigram_matches = match (db.backend(), &mut plan.search) {
        (Backend::Sqlite, Some(search)) if search.trigrams => {
            search.choose_trigrams(&mut |trigram| memory.trigrams.contacts_with(db, trigram))?;
            Some(search.find_candidates(db)?)
        }
        _ => None,
    };
    let walk = match (&plan.tags[..], plan.tags_mode) {
        ([], _) if trigram_matches.is_some_and(|n| n <= SEARCH_LOOKUPS) => Walk::Trigrams,
        ([], _) => Walk::Contacts,
        ([_], _) | (_, TagsMode::All) => Walk::Tag,
        (_, TagsMode::Any) if tag_counts <= SEARCH_LOOKUPS => Walk::AnyTag,
        (_, TagsMode::Any) => Walk::Contacts,
    };

    // (With at most SEARCH_LOOKUPS candidates there are no more matches;
    // were there, the page would walk them below.)
    if walk == Walk::Trigrams
        && let Some(matches) = search_matches(db, &plan, Walk::Trigrams, contact_seq)?
    {
        if let Some(searched) = searched {
            memory
                .matches
                .remember(searched, version, Arc::clone(&matches));
        }
        return page_of_matches(db, &plan, &settings, &matches, start, page_size, watermark);
    }
    let join = join_keyword(db.backend());
    let mut page = SqlBuilder::new("");
    select(
        &mut page,
        &plan,
        walk,
        Seqs::UpTo(watermark),
        Select::Rows,
        join,
    );
    // How many contacts come before a numbered page; a listing without
    // `q` starts it from the nearest start remembered for this version of
    // the listing (see anchors.rs).
    let offset = match start {
        PageStart::Number(number) => i64::from(number.saturating_sub(1)) * i64::from(page_size),
        PageStart::After { .. } => 0,
    };
    let remembered = match start {
        PageStart::Number(_) if plan.search.is_none() => Some((listing_of(&plan), version)),
        _ => None,
    };
    let nearest = remembered
        .as_ref()
        .and_then(|(listing, version)| memory.anchors.nearest(listing, *version, offset));
    // The page: the contacts after `after` (a cursor, or a remembered
    // start), less the first `skip` of them.
    let (after, skip) = match (start, nearest) {
        (PageStart::After { position, .. }, _) => (Some(position), 0),
        (PageStart::Number(_), Some((start, before))) => (Some(before), offset - start),
        (PageStart::Number(_), None) => (None, offset),
    };
    // Stepping over contacts, the last one stepped over is read too: where
    // this page starts, remembered for the next time it is asked for.
    let reads_before = skip > 0 && remembered.is_some();
    let (created, seq) = order_columns(walk);
    if let Some(position) = after {
        page.push(" AND (")
            .push(created)
            .push(", ")
            .push(seq)
            .push(") < (")
            .param(position.created_at)
            .push(", ")
            .param(position.seq)
            .push(")");
    }
    page.push(" ORDER BY ")
        .push(created)
        .push(" DESC, ")
        .push(seq)
        .push(" DESC LIMIT ")
        .param(i64::from(page_size) + 1 + i64::from(reads_before));
    if skip > 0 {
        page.push(" OFFSET ").param(skip - i64::from(reads_before));
    }
    let mut rows: Vec<ContactRow> = db.all(page.sql(), page.params())?;
    if reads_before && !rows.is_empty() {
        let before = rows.remove(0);
        if let Some((listing, version)) = &remembered {
            memory
                .anchors
                .remember(listing, *version, offset, position_of(&before));
        }
    }
    let has_more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);

    let next = match rows.last() {
        Some(last) if has_more => Some(position_of(last)),
        _ => None,
    };
    if let (Some(next), Some((listing, version))) = (next, &remembered) {
        memory
            .anchors
            .remember(listing, *version, offset + i64::from(page_size), next);
    }
    let contacts = rows
        .into_iter()
        .map(|row| render(row, &settings))
        .collect::<StoreResult<Vec<_>>>()?;
    // A search is counted through its matches wherever the index has them.
    let counting = match walk {
        Walk::Contacts if plan.tags.is_empty() && trigram_matches.is_some() => Walk::Trigrams,
        other => other,
    };
    let total = total(
        db,
        &plan,
        counting,
        join,
        watermark,
        contact_seq,
        contact_count,
    )?;
    Ok(ContactPage {
        contacts,
        total,
        watermark,
        next,
    })
}

/// The plan of `filter` in this account, or `None` when it can match
/// nothing (an unknown tag or team).
fn plan_of(settings: &AccountSettings, account: AccountId, filter: &ContactFilter) -> Option<Plan> {
    let mut tags = Vec::new();
    for name in &filter.tags {
        match settings.tag_named(name) {
            Some(tag) if !tags.contains(&tag.id) => tags.push(tag.id),
            Some(_) => {}
            // An unknown tag matches nothing, even among others.
            None if filter.tags_mode == TagsMode::All => return None,
            None => {}
        }
    }
    if !filter.tags.is_empty() && tags.is_empty() {
        return None;
    }
    let team_id = match filter.team {
        Some(uuid) => Some(settings.team(uuid)?.id),
        None => None,
    };
    Some(Plan {
        account,
        source: filter.source,
        team_id,
        tags,
        tags_mode: filter.tags_mode,
        search: filter.q.as_deref().map(Search::new),
    })
}

/// The next contacts of an export walk: those matching `filter` with a
/// sequence number after `after` and up to `watermark` (the account's last
/// when `None`: the walk sees the contacts that existed when it began), in
/// sequence order, which is the order they were created in. Unlike a page
/// this walks the account's `(account_id, seq)` index and tests each
/// contact against the filter: an export reads them all anyway.
pub(super) fn export_page(
    db: &mut dyn Db,
    cache: &SettingsCache,
    account: AccountId,
    filter: &ContactFilter,
    after: i64,
    watermark: Option<i64>,
    limit: u32,
) -> StoreResult<ExportPage> {
    let state = account_state(db, account)?;
    let watermark = watermark.unwrap_or(state.contact_seq);
    let settings = cache.at_version(db, account, state.settings_version, Seen::Committed)?;
    let Some(plan) = plan_of(&settings, account, filter) else {
        return Ok(ExportPage {
            contacts: Vec::new(),
            last: None,
            watermark,
        });
    };
    let mut sql = SqlBuilder::new("");
    sql.push(concatcp!(
        "SELECT ",
        ContactRow::QUALIFIED,
        " FROM contacts c WHERE c.account_id = "
    ))
    .param(account.0)
    .push(" AND c.seq > ")
    .param(after)
    .push(" AND c.seq <= ")
    .param(watermark);
    push_conditions(&mut sql, &plan, Walk::Contacts);
    sql.push(" ORDER BY c.seq LIMIT ").param(i64::from(limit));
    let rows: Vec<ContactRow> = db.all(sql.sql(), sql.params())?;
    let last = match rows.last() {
        Some(row) if rows.len() == limit as usize => Some(row.seq),
        _ => None,
    };
    let contacts = rows
        .into_iter()
        .map(|row| render(row, &settings))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(ExportPage {
        contacts,
        last,
        watermark,
    })
}

/// The listing `plan` pages through, as the remembered page starts know it.
fn listing_of(plan: &Plan) -> Listing {
    let mut tags = plan.tags.clone();
    tags.sort_unstable();
    Listing {
        account: plan.account,
        source: plan.source,
        team_id: plan.team_id,
        tags,
        tags_mode: plan.tags_mode,
    }
}

fn position_of(row: &ContactRow) -> ContactPosition {
    ContactPosition {
        created_at: row.created_at,
        seq: row.seq,
    }
}

/// Every match of the plan's search, newest first, when there are at most
/// [`SEARCH_LOOKUPS`] (`None` when there are more: the newest-first walk
/// then pages through them), from one narrow statement: each match's id
/// and place in the order, sorted here. Sorting the matches' whole rows in
/// the database and counting them in a second statement took a third of a
/// search's instructions (BENCHMARKS.md). `walk` is the trigram walk on
/// SQLite (FTS5's candidates, already known to be few) or the contacts
/// table on PostgreSQL (whose `LIKE` `pg_trgm` serves). Every contact of
/// the snapshot (up to `contact_seq`) is seen, so that the matches serve
/// any watermark of this version.
fn search_matches(
    db: &mut dyn Db,
    plan: &Plan,
    walk: Walk,
    contact_seq: i64,
) -> StoreResult<Option<Arc<[Match]>>> {
    let mut matching = SqlBuilder::new("");
    select(
        &mut matching,
        plan,
        walk,
        Seqs::UpTo(contact_seq),
        Select::Keys,
        join_keyword(db.backend()),
    );
    matching.push(" LIMIT ").param(SEARCH_LOOKUPS + 1);
    let mut matches: Vec<Match> = db.all(matching.sql(), matching.params())?;
    if i64::try_from(matches.len()).unwrap_or(i64::MAX) > SEARCH_LOOKUPS {
        return Ok(None);
    }
    matches.sort_unstable_by_key(|&(_, created_at, seq)| Reverse((created_at, seq)));
    Ok(Some(matches.into()))
}

/// The search `plan` is, as its remembered matches are kept: a search
/// without tags, the one kind found through [`search_matches`].
fn searched_of(plan: &Plan) -> Option<Searched> {
    let search = plan.search.as_ref().filter(|_| plan.tags.is_empty())?;
    Some(Searched {
        account: plan.account,
        source: plan.source,
        team_id: plan.team_id,
        name_pattern: search.name_pattern.clone(),
        digits_pattern: search.digits_pattern.clone(),
    })
}

/// A page of a search's matches (newest first) and its total, counting
/// only the matches the walk can see (`seq <= watermark`); the page's rows
/// are read by id.
fn page_of_matches(
    db: &mut dyn Db,
    plan: &Plan,
    settings: &AccountSettings,
    matches: &[Match],
    start: PageStart,
    page_size: u32,
    watermark: i64,
) -> StoreResult<ContactPage> {
    let visible: Vec<Match> = matches
        .iter()
        .copied()
        .filter(|&(_, _, seq)| seq <= watermark)
        .collect();
    let total = i64::try_from(visible.len()).unwrap_or(i64::MAX);
    let skip = match start {
        PageStart::Number(number) => {
            usize::try_from(u64::from(number.saturating_sub(1)) * u64::from(page_size))
                .unwrap_or(usize::MAX)
        }
        PageStart::After { position, .. } => {
            let after = (position.created_at, position.seq);
            visible.partition_point(|&(_, created_at, seq)| (created_at, seq) >= after)
        }
    };
    let size = page_size as usize;
    let window = visible.get(skip..).unwrap_or_default();
    let has_more = window.len() > size;
    let ids: Vec<i64> = window.iter().take(size).map(|key| key.0).collect();
    let next = match ids.len().checked_sub(1).and_then(|last| window.get(last)) {
        Some(&(_, created_at, seq)) if has_more => Some(ContactPosition { created_at, seq }),
        _ => None,
    };
    let contacts = if ids.is_empty() {
        Vec::new()
    } else {
        let mut rows = rows_by_id(db, plan.account, &ids)?;
        rows.sort_unstable_by_key(|row| Reverse((row.created_at, row.seq)));
        rows.into_iter()
            .map(|row| render(row, settings))
            .collect::<StoreResult<Vec<_>>>()?
    };
    Ok(ContactPage {
        contacts,
        total,
        watermark,
        next,
    })
}

/// The rows of the account's contacts with these ids, in no order: on
/// SQLite through the ids as a JSON array (its `IN` list of 20, padded to
/// 32, cost a tenth more), on PostgreSQL through an `IN` list.
fn rows_by_id(db: &mut dyn Db, account: AccountId, ids: &[i64]) -> StoreResult<Vec<ContactRow>> {
    if db.backend() == Backend::Sqlite {
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Other(Box::new(e)))?;
        return db.all(
            concatcp!(
                "SELECT ",
                ContactRow::QUALIFIED,
                " FROM json_each($1) s CROSS JOIN contacts c ON c.id = s.value
                 WHERE c.account_id = $2"
            ),
            &params![ids.as_str(), account.0],
        );
    }
    let mut rows = SqlBuilder::new(concatcp!(
        "SELECT ",
        ContactRow::QUALIFIED,
        " FROM contacts c WHERE c.account_id = "
    ));
    rows.param(account.0)
        .push(" AND c.id IN (")
        .padded_ints(ids, -1)
        .push(")");
    db.all(rows.sql(), rows.params())
}

/// Orders the plan's tags rarest first and answers how many memberships
/// they have in all.
fn tag_counts(db: &mut dyn Db, plan: &mut Plan) -> StoreResult<i64> {
    if plan.tags.is_empty() {
        return Ok(0);
    }
    let mut sql = SqlBuilder::new("SELECT id, contact_count FROM tags WHERE id IN (");
    sql.padded_ints(&plan.tags, -1).push(")");
    let mut counts: Vec<(i64, i64)> = db.all(sql.sql(), sql.params())?;
    counts.sort_by_key(|&(id, count)| (count, id));
    plan.tags = counts.iter().map(|&(id, _)| id).collect();
    Ok(counts.iter().map(|&(_, count)| count).sum())
}

/// The columns of the walk's newest-first order.
fn order_columns(walk: Walk) -> (&'static str, &'static str) {
    match walk {
        Walk::Tag => ("ct.created_at", "ct.seq"),
        Walk::Contacts | Walk::Trigrams | Walk::AnyTag => ("c.created_at", "c.seq"),
    }
}

/// How the walk joins the contacts it finds: on SQLite `CROSS JOIN`, which
/// keeps the walk first (as written) whatever the planner would guess;
/// PostgreSQL's planner needs no such hint, and takes no `ON` after it.
fn join_keyword(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => " CROSS JOIN ",
        Backend::Postgres => " JOIN ",
    }
}

/// What a statement built by [`select`] returns for each contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    /// The whole row, as [`ContactRow`] reads it: a page.
    Rows,
    /// Its id only: for counting.
    Ids,
    /// Its id and its place in the newest-first order.
    Keys,
}

/// `SELECT … FROM … WHERE …` of the plan, open for more conditions.
fn select<'p>(
    sql: &mut SqlBuilder<'p>,
    plan: &'p Plan,
    walk: Walk,
    seqs: Seqs,
    what: Select,
    join: &'static str,
) {
    let (_, seq) = order_columns(walk);
    // Counting a tag's memberships needs no contact row unless filtered.
    let joined = walk != Walk::Tag || what == Select::Rows || needs_contact_row(plan);
    let columns = match (what, joined) {
        (Select::Rows, _) => ContactRow::QUALIFIED,
        (Select::Ids, true) => "c.id",
        (Select::Keys, _) => "c.id, c.created_at, c.seq",
        (Select::Ids, false) => "ct.contact_id",
    };
    // `+seq <= w` keeps SQLite from walking the (account, seq) index for
    // the watermark and sorting what it finds: the newest-first index is
    // the walk, the watermark only a check on each entry. Contacts newer
    // than it, though, are found through that index.
    let push_seqs = |sql: &mut SqlBuilder<'p>, seq: &'static str| {
        match seqs {
            Seqs::UpTo(watermark) => sql.push(" AND +").push(seq).push(" <= ").param(watermark),
            Seqs::After(watermark) => sql.push(" AND ").push(seq).push(" > ").param(watermark),
        };
    };
    sql.push("SELECT ").push(columns);
    match walk {
        Walk::Contacts => {
            sql.push(" FROM contacts c WHERE c.account_id = ")
                .param(plan.account.0);
            push_seqs(sql, seq);
        }
        Walk::Trigrams => {
            // SQLite only: the candidates first, each looked up by row id.
            sql.push(" FROM (");
            if let Some(search) = &plan.search {
                search.push_candidates(sql);
            }
            sql.push(") s CROSS JOIN contacts c ON c.id = s.rowid WHERE c.account_id = ")
                .param(plan.account.0);
            push_seqs(sql, seq);
        }
        Walk::Tag => {
            sql.push(" FROM contact_tags ct");
            if joined {
                sql.push(join).push("contacts c ON c.id = ct.contact_id");
            }
            sql.push(" WHERE ct.tag_id = ")
                .param(plan.tags.first().copied().unwrap_or(-1));
            push_seqs(sql, seq);
        }
        Walk::AnyTag => {
            // Every membership of the tags, each contact once, then sorted.
            sql.push(" FROM (SELECT DISTINCT contact_id FROM contact_tags WHERE tag_id IN (")
                .padded_ints(&plan.tags, -1)
                .push(")");
            push_seqs(sql, "seq");
            sql.push(") ct")
                .push(join)
                .push("contacts c ON c.id = ct.contact_id WHERE c.account_id = ")
                .param(plan.account.0);
        }
    }
    push_conditions(sql, plan, walk);
}

/// Whether a tag walk must also read each contact's own row.
fn needs_contact_row(plan: &Plan) -> bool {
    plan.source.is_some() || plan.team_id.is_some() || plan.search.is_some()
}

/// The filter's conditions that the walk itself does not apply.
fn push_conditions<'p>(sql: &mut SqlBuilder<'p>, plan: &'p Plan, walk: Walk) {
    if let Some(source) = plan.source {
        sql.push(" AND c.source = ").param(source.as_str());
    }
    if let Some(team_id) = plan.team_id {
        sql.push(" AND c.team_id = ").param(team_id);
    }
    let id = match walk {
        Walk::Tag => "ct.contact_id",
        Walk::Contacts | Walk::Trigrams | Walk::AnyTag => "c.id",
    };
    match (walk, plan.tags_mode, &plan.tags[..]) {
        (_, _, []) | (Walk::AnyTag, _, _) | (Walk::Tag, _, [_]) => {}
        (Walk::Tag, _, [_, others @ ..]) => {
            // Every other tag too: as many memberships among them as
            // there are tags.
            sql.push(" AND (SELECT count(*) FROM contact_tags x WHERE x.contact_id = ")
                .push(id)
                .push(" AND x.tag_id IN (")
                .padded_ints(others, -1)
                .push(")) = ")
                .param(i64::try_from(others.len()).unwrap_or(i64::MAX));
        }
        (_, TagsMode::All, tags) => {
            sql.push(" AND (SELECT count(*) FROM contact_tags x WHERE x.contact_id = ")
                .push(id)
                .push(" AND x.tag_id IN (")
                .padded_ints(tags, -1)
                .push(")) = ")
                .param(i64::try_from(tags.len()).unwrap_or(i64::MAX));
        }
        (_, TagsMode::Any, tags) => {
            sql.push(" AND EXISTS (SELECT 1 FROM contact_tags x WHERE x.contact_id = ")
                .push(id)
                .push(" AND x.tag_id IN (")
                .padded_ints(tags, -1)
                .push("))");
        }
    }
    // Also after the trigram index, which only finds candidates.
    if let Some(search) = &plan.search {
        sql.push(" AND (c.name_key LIKE ")
            .param(search.name_pattern.as_str())
            .push(" ESCAPE '\\'");
        if let Some(digits) = &search.digits_pattern {
            sql.push(" OR c.identifier_digits LIKE ")
                .param(digits.as_str());
        }
        sql.push(")");
    }
}

/// How many contacts the listing has in all, among those the walk can see
/// (`seq <= watermark`).
fn total(
    db: &mut dyn Db,
    plan: &Plan,
    walk: Walk,
    join: &'static str,
    watermark: i64,
    contact_seq: i64,
    contact_count: i64,
) -> StoreResult<i64> {
    let single_tag = plan.tags.len() == 1;
    let counted = match (&plan.source, plan.team_id, single_tag, &plan.search) {
        (None, None, false, None) if plan.tags.is_empty() => Some(contact_count),
        (Some(source), None, false, None) if plan.tags.is_empty() => Some(db.one::<i64>(
            "SELECT CAST(COALESCE(sum(contact_count), 0) AS BIGINT) FROM channels
             WHERE account_id = $1 AND type = $2",
            &params![plan.account.0, source.as_str()],
        )?),
        (None, Some(team_id), false, None) if plan.tags.is_empty() => Some(db.one::<i64>(
            "SELECT contact_count FROM teams WHERE id = $1",
            &params![team_id],
        )?),
        (None, None, true, None) => Some(db.one::<i64>(
            "SELECT contact_count FROM tags WHERE id = $1",
            &params![plan.tags[0]],
        )?),
        _ => None,
    };
    match counted {
        // The counters count every contact; those created after the walk
        // began are taken off, counted through the sequence index.
        Some(now) if watermark >= contact_seq => Ok(now),
        Some(now) => {
            let mut newer = SqlBuilder::new("SELECT count(*) FROM (");
            select(
                &mut newer,
                plan,
                Walk::Contacts,
                Seqs::After(watermark),
                Select::Ids,
                join,
            );
            newer.push(") newer");
            Ok(now - db.one::<i64>(newer.sql(), newer.params())?)
        }
        None => {
            let mut all = SqlBuilder::new("SELECT count(*) FROM (");
            select(
                &mut all,
                plan,
                walk,
                Seqs::UpTo(watermark),
                Select::Ids,
                join,
            );
            all.push(") matching");
            db.one(all.sql(), all.params())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn phone_numbers_are_told_from_names() {
        assert!(looks_like_phone_number("+39 333-12 34"));
        assert!(looks_like_phone_number("(555) 123.4567"));
        assert!(!looks_like_phone_number("Agent 007"));
        assert!(!looks_like_phone_number("+ -"));
    }

    #[test]
    fn searches_use_trigrams_only_when_they_can() {
        let search = Search::new(" Rossi ");
        assert!(search.trigrams);
        assert_eq!(search.name_pattern, "%rossi%");
        assert_eq!(search.digits_pattern, None);
        let phone = Search::new("+39 333");
        assert!(phone.trigrams);
        assert_eq!(phone.digits_pattern.as_deref(), Some("%39333%"));
        assert!(!Search::new("ro").trigrams);
        assert!(!Search::new("1-2").trigrams, "two digits are too few");
        let wild = Search::new("50%_off");
        assert!(wild.trigrams);
        assert_eq!(wild.name_pattern, "%50\\%\\_off%");
    }

    #[test]
    fn trigrams_are_ranked_spread_over_the_text() {
        assert_eq!(
            spread_trigrams("luranti"),
            ["lur", "ura", "ran", "ant", "nti"]
        );
        assert_eq!(spread_trigrams("abc"), ["abc"]);
        assert!(spread_trigrams("ab").is_empty());
        assert_eq!(spread_trigrams("aaaa"), ["aaa"], "each trigram once");
        let long = spread_trigrams("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(long.len(), RANKED_TRIGRAMS);
        assert_eq!(long.first().map(String::as_str), Some("abc"));
        assert_eq!(long.last().map(String::as_str), Some("xyz"));
    }

    #[test]
    fn the_index_is_asked_for_the_rarest_trigrams() {
        let counts: HashMap<&str, i64> = [
            ("\"lur\"", 19_000),
            ("\"ura\"", 50_000),
            ("\"ran\"", 20_000),
            ("\"ant\"", 19_000),
            ("\"nti\"", 50_000),
        ]
        .into();
        let mut contacts_with =
            |trigram: &str| -> StoreResult<i64> { Ok(counts.get(trigram).copied().unwrap_or(0)) };
        let mut search = Search::new("Luranti");
        search.choose_trigrams(&mut contacts_with).expect("chosen");
        assert_eq!(
            search.candidates_query, r#"("lur" AND "ant" AND "ran")"#,
            "rarest first; ties in the order of the text"
        );
        let mut short = Search::new("abc");
        short.choose_trigrams(&mut contacts_with).expect("chosen");
        assert_eq!(short.candidates_query, r#"("abc")"#);
        let mut phone = Search::new("+39 333");
        phone.choose_trigrams(&mut contacts_with).expect("chosen");
        assert_eq!(
            phone.candidates_query,
            r#"("+39" AND "39 " AND "9 3") OR ("393" AND "933" AND "333")"#
        );
        let mut quoted = Search::new(r#"a"bc"#);
        quoted.choose_trigrams(&mut contacts_with).expect("chosen");
        assert_eq!(quoted.candidates_query, r#"("a""b" AND """bc")"#);
    }

    /// Runs each statement's `EXPLAIN QUERY PLAN` before the statement.
    struct Explaining<D> {
        db: D,
        plans: Vec<(String, Vec<String>)>,
    }

    impl<D: Db> Db for Explaining<D> {
        fn backend(&self) -> Backend {
            self.db.backend()
        }
        fn execute(
            &mut self,
            sql: &str,
            params: &[super::super::db::Param<'_>],
        ) -> StoreResult<u64> {
            self.db.execute(sql, params)
        }
        fn for_each(
            &mut self,
            sql: &str,
            params: &[super::super::db::Param<'_>],
            each: &mut dyn FnMut(&dyn super::super::db::Row) -> StoreResult<()>,
        ) -> StoreResult<()> {
            let mut plan = Vec::new();
            self.db
                .for_each(&format!("EXPLAIN QUERY PLAN {sql}"), params, &mut |row| {
                    plan.push(String::read(row, 3)?);
                    Ok(())
                })?;
            self.plans.push((sql.to_owned(), plan));
            self.db.for_each(sql, params, each)
        }
        fn insert_id(
            &mut self,
            sql: &str,
            params: &[super::super::db::Param<'_>],
        ) -> StoreResult<Option<i64>> {
            self.db.insert_id(sql, params)
        }
        fn batch(&mut self, sql: &str) -> StoreResult<()> {
            self.db.batch(sql)
        }
        fn insert_rows(
            &mut self,
            table: &str,
            columns: &[&str],
            rows: &[Vec<super::super::db::Value>],
        ) -> StoreResult<()> {
            self.db.insert_rows(table, columns, rows)
        }
        fn queued(&mut self) -> &mut super::super::db::Queued {
            self.db.queued()
        }
    }

    /// Every listing shape walks an index in newest-first order on SQLite:
    /// no statement scans a table, and none sorts, but those that sort a
    /// bounded set on purpose (the trigram candidates, the memberships of
    /// a few tags). docs/storage.md, "Every listing walks an index".
    #[test]
    fn every_listing_shape_walks_an_index_on_sqlite() {
        use super::super::sqlite::{Role, SqliteDb};
        use crate::domain::Timestamp;

        let (_dir, location) = super::super::demo_database();
        let mut db = Explaining {
            db: SqliteDb::open(&location, Role::Reader).expect("reader"),
            plans: Vec::new(),
        };
        let raw: &mut dyn Db = &mut db.db;
        let account = AccountId(
            raw.one("SELECT min(id) FROM accounts", &[])
                .expect("account"),
        );
        let team: String = raw
            .one(
                "SELECT uuid FROM teams WHERE account_id = $1",
                &params![account.0],
            )
            .expect("team");
        let team = team.parse().expect("team uuid");
        let cache = SettingsCache::default();
        let filter = |tags: &[&str], mode, q: Option<&str>| ContactFilter {
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            tags_mode: mode,
            q: q.map(str::to_owned),
            ..ContactFilter::default()
        };
        let deep = PageStart::After {
            position: ContactPosition {
                created_at: Timestamp::now(),
                seq: 1,
            },
            watermark: i64::MAX,
        };
        let shapes: Vec<(&str, ContactFilter, PageStart, bool)> = vec![
            (
                "page 1",
                ContactFilter::default(),
                PageStart::Number(1),
                false,
            ),
            (
                "page 400",
                ContactFilter::default(),
                PageStart::Number(400),
                false,
            ),
            ("after", ContactFilter::default(), deep, false),
            (
                "tag",
                filter(&["lead"], TagsMode::All, None),
                PageStart::Number(1),
                false,
            ),
            (
                "tag after",
                filter(&["hot"], TagsMode::All, None),
                deep,
                false,
            ),
            (
                "tags all",
                filter(&["lead", "hot"], TagsMode::All, None),
                PageStart::Number(1),
                false,
            ),
            (
                "tags any",
                filter(&["lead", "hot"], TagsMode::Any, None),
                PageStart::Number(1),
                true,
            ),
            (
                "source",
                ContactFilter {
                    source: Some(Source::Whatsapp),
                    ..ContactFilter::default()
                },
                PageStart::Number(1),
                false,
            ),
            (
                "team",
                ContactFilter {
                    team: Some(team),
                    ..ContactFilter::default()
                },
                PageStart::Number(1),
                false,
            ),
            (
                "q",
                filter(&[], TagsMode::All, Some("Rossi")),
                PageStart::Number(1),
                true,
            ),
            (
                "q phone",
                filter(&[], TagsMode::All, Some("+39 333")),
                PageStart::Number(1),
                true,
            ),
            (
                "q with matches",
                filter(&[], TagsMode::All, Some("Doe")),
                PageStart::Number(1),
                false,
            ),
            (
                "q and tag",
                filter(&["lead"], TagsMode::All, Some("Doe")),
                PageStart::Number(1),
                false,
            ),
        ];
        for (shape, filter, start, may_sort) in shapes {
            db.plans.clear();
            list(
                &mut db,
                &cache,
                &ListingMemory::default(),
                account,
                &filter,
                start,
                20,
            )
            .expect(shape);
            assert!(!db.plans.is_empty(), "{shape}: no statement");
            for (sql, plan) in &db.plans {
                // The settings, read once into the cache, are a few rows
                // each: sorting them is no matter.
                let may_sort = may_sort || !sql.contains("contact");
                // Scanning a subquery's rows is no table scan.
                let subqueries: Vec<&str> = plan
                    .iter()
                    .filter_map(|step| {
                        step.strip_prefix("CO-ROUTINE ")
                            .or_else(|| step.strip_prefix("MATERIALIZE "))
                    })
                    .collect();
                for step in plan {
                    let scans_table = step.strip_prefix("SCAN ").is_some_and(|scanned| {
                        !scanned.contains(" USING ")
                            && !scanned.contains("VIRTUAL TABLE")
                            && !subqueries.contains(&scanned)
                    });
                    assert!(!scans_table, "{shape}: {step} in {plan:?} for {sql}");
                    assert!(
                        may_sort || !step.contains("TEMP B-TREE"),
                        "{shape}: {step} in {plan:?} for {sql}"
                    );
                }
            }
        }
        // A search's page of 20, read by id, looks each one up by id (an
        // `IN` list of 20 made SQLite walk the account's contacts instead,
        // a million of them in the bench).
        db.plans.clear();
        let ids: Vec<i64> = (1..=20).collect();
        rows_by_id(&mut db, account, &ids).expect("rows by id");
        for (sql, plan) in &db.plans {
            assert!(
                plan.iter()
                    .any(|step| step == "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)")
                    && !plan.iter().any(|step| step.contains("INDEX contacts_")),
                "{plan:?} for {sql}"
            );
        }
    }
}
