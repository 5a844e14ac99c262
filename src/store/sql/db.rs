//! The narrow connection interface every statement of the store runs
//! through, on SQLite (rusqlite) and PostgreSQL (postgres) alike:
//! statements with bound parameters, rows read by position, transaction
//! control, and a bulk insert for copies.
//!
//! Calls are synchronous. SQLite answers in microseconds, so its reads run
//! on the calling thread; PostgreSQL's run on blocking threads; writes of
//! both go through the group-commit writer ([`super::writer`]).

use super::Backend;
use super::counts::Counts;
use crate::domain::{FunnelId, PublicId, Source, Timestamp};
use crate::store::{StoreError, StoreResult};

/// A bound parameter. A null keeps its type, so PostgreSQL prepares a
/// statement with the same parameter types every time it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(Some(value))
    }
}

impl From<Option<i64>> for Param<'_> {
    fn from(value: Option<i64>) -> Self {
        Param::Int(value)
    }
}

impl From<bool> for Param<'_> {
    fn from(value: bool) -> Self {
        Param::Int(Some(i64::from(value)))
    }
}

impl From<Timestamp> for Param<'_> {
    fn from(value: Timestamp) -> Self {
        Param::Int(Some(value.unix()))
    }
}

impl From<Option<Timestamp>> for Param<'_> {
    fn from(value: Option<Timestamp>) -> Self {
        Param::Int(value.map(Timestamp::unix))
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(Some(value))
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a Option<String>> for Param<'a> {
    fn from(value: &'a Option<String>) -> Self {
        Param::Text(value.as_deref())
    }
}

/// `params![a, b]`: an array of [`Param`]s, each converted with `From`.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::sql::db::Param::from($value)),*]
    };
}
pub(crate) use params;

/// An owned column value, for copying rows between databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl Value {
    pub fn as_param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Text(None),
            Value::Int(v) => Param::Int(Some(*v)),
            Value::Text(v) => Param::Text(Some(v)),
        }
    }
}

/// One row of a result, read by column position.
pub trait Row {
    fn int(&self, index: usize) -> StoreResult<Option<i64>>;
    fn text(&self, index: usize) -> StoreResult<Option<&str>>;
    fn value(&self, index: usize) -> StoreResult<Value>;
}

/// A row read from its `by`-th column on: for a statement that puts other
/// columns before a [`row_struct!`]'s.
pub struct Shifted<'r> {
    pub row: &'r dyn Row,
    pub by: usize,
}

impl Row for Shifted<'_> {
    fn int(&self, index: usize) -> StoreResult<Option<i64>> {
        self.row.int(index + self.by)
    }
    fn text(&self, index: usize) -> StoreResult<Option<&str>> {
        self.row.text(index + self.by)
    }
    fn value(&self, index: usize) -> StoreResult<Value> {
        self.row.value(index + self.by)
    }
}

/// A change of SQLite's full-text index of contacts (`q`), kept for the end
/// of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchChange {
    Add {
        id: i64,
        name_key: String,
        identifier_digits: String,
    },
    /// Takes out what was indexed, which must be given as it was.
    Remove {
        id: i64,
        name_key: String,
        identifier_digits: String,
    },
}

/// A database connection, SQLite or PostgreSQL.
pub trait Db: Send {
    fn backend(&self) -> Backend;

    /// Runs one statement that returns no rows; answers how many rows it
    /// changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64>;

    /// Runs a statement, handing each row to `each` as it is read.
    fn for_each(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<()>,
    ) -> StoreResult<()>;

    /// Runs an `INSERT` (without `RETURNING`) into a table with an `id`
    /// column and answers the new row's id, or `None` when an `ON CONFLICT
    /// DO NOTHING` skipped it. SQLite reads the id off the connection,
    /// which spares it the buffering a `RETURNING` clause costs.
    fn insert_id(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<Option<i64>>;

    /// Runs statements that take no parameters: transaction control and
    /// migrations.
    fn batch(&mut self, sql: &str) -> StoreResult<()>;

    /// Appends rows to `table` as fast as the backend allows (`COPY` on
    /// PostgreSQL). Every row has a value for each of `columns`.
    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> StoreResult<()>;

    /// Whether the connection is beyond use (a lost PostgreSQL session).
    fn is_broken(&self) -> bool {
        false
    }

    /// Whether a transaction is open, where the driver can tell without a
    /// round trip (SQLite); `None` where it cannot.
    fn in_transaction(&self) -> Option<bool> {
        None
    }

    /// What the open write transaction has queued for its commit.
    fn queued(&mut self) -> &mut Queued;
}

/// What a write transaction does at its commit instead of at once.
///
/// - Changes of SQLite's search index: FTS5 flushes its pending index at
///   each statement between other writes, so changes made there cost
///   several times what the same changes cost made in one run just before
///   the commit. (PostgreSQL's trigram indexes follow the table by
///   themselves; nothing is queued there.)
/// - Moves of the counters ([`Counts`]): a group commit updates each
///   counter row once for all its writes.
/// - Events ([`super::events`]): numbered at the commit, under the account
///   row's lock, so their order is commit order.
#[derive(Debug, Default)]
pub struct Queued {
    searches: Vec<SearchChange>,
    counts: Vec<Counts>,
    events: Vec<NewEvent>,
}

/// An event to write with the transaction that caused it.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account: i64,
    pub name: crate::domain::EventName,
    pub contact_uuid: PublicId,
    pub payload: String,
    pub created_at: Timestamp,
}

/// How much was queued when a savepoint began: what to keep if it is
/// rolled back.
#[derive(Debug, Clone, Copy)]
pub struct QueueMark {
    searches: usize,
    counts: usize,
    events: usize,
}

impl dyn Db + '_ {
    pub fn all<T: FromRow>(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<Vec<T>> {
        let mut rows = Vec::new();
        self.for_each(sql, params, &mut |row| {
            rows.push(T::from_row(row)?);
            Ok(())
        })?;
        Ok(rows)
    }

    /// The first row, if there is one.
    pub fn optional<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
    ) -> StoreResult<Option<T>> {
        let mut first = None;
        self.for_each(sql, params, &mut |row| {
            if first.is_none() {
                first = Some(T::from_row(row)?);
            }
            Ok(())
        })?;
        Ok(first)
    }

    /// The first row; [`StoreError::NotFound`] when there is none.
    pub fn one<T: FromRow>(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<T> {
        self.optional(sql, params)?.ok_or(StoreError::NotFound)
    }

    /// Starts a transaction that will write. SQLite takes the write lock up
    /// front (`IMMEDIATE`): a deferred transaction that reads first can fail
    /// to upgrade when another process wrote in between.
    pub fn begin_write(&mut self) -> StoreResult<()> {
        self.batch(match self.backend() {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        })
    }

    /// Starts a transaction whose reads all see one snapshot.
    pub fn begin_read(&mut self) -> StoreResult<()> {
        self.batch(match self.backend() {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })
    }

    /// Queues a change of the search index for the commit (SQLite only).
    pub fn defer_search(&mut self, change: SearchChange) {
        if self.backend() == Backend::Sqlite {
            self.queued().searches.push(change);
        }
    }

    /// Queues moves of the counters for the commit.
    pub(super) fn defer_counts(&mut self, counts: Counts) {
        self.queued().counts.push(counts);
    }

    /// Queues an event for the commit.
    pub fn defer_event(&mut self, event: NewEvent) {
        self.queued().events.push(event);
    }

    /// How much is queued: where a savepoint begins.
    pub fn queue_mark(&mut self) -> QueueMark {
        let queued = self.queued();
        QueueMark {
            searches: queued.searches.len(),
            counts: queued.counts.len(),
            events: queued.events.len(),
        }
    }

    /// Drops what was queued after `mark` (its savepoint rolled back).
    pub fn forget_queued_after(&mut self, mark: QueueMark) {
        let queued = self.queued();
        queued.searches.truncate(mark.searches);
        queued.counts.truncate(mark.counts);
        queued.events.truncate(mark.events);
    }

    /// How much the queued moves change counts: `of` picks one counter's
    /// move out of each (a write that checks a counter adds this to what
    /// the row holds).
    pub(super) fn queued_moves(&mut self, of: impl Fn(&Counts) -> i64) -> i64 {
        self.queued().counts.iter().map(of).sum()
    }

    /// Commits, with what was queued for it.
    pub fn commit(&mut self) -> StoreResult<()> {
        let Queued {
            searches,
            counts,
            events,
        } = std::mem::take(self.queued());
        for change in searches {
            self.change_search_index(change)?;
        }
        let mut total = Counts::default();
        for moves in counts {
            total.merge(moves);
        }
        let first_seqs = total.apply(self, &super::events::per_account(&events))?;
        super::events::write(self, events, &first_seqs)?;
        self.batch("COMMIT")
    }

    /// Ends the open transaction, changing nothing. One that SQLite has
    /// already rolled back by itself (as it does when a write finds the
    /// disk full) is ended too.
    pub fn rollback(&mut self) -> StoreResult<()> {
        *self.queued() = Queued::default();
        if self.in_transaction() == Some(false) {
            return Ok(());
        }
        self.batch("ROLLBACK")
    }

    /// Makes one change of SQLite's full-text index of contacts.
    fn change_search_index(&mut self, change: SearchChange) -> StoreResult<u64> {
        match change {
            SearchChange::Add {
                id,
                name_key,
                identifier_digits,
            } => self.execute(
                "INSERT INTO contacts_search (rowid, name_key, identifier_digits)
                 VALUES ($1, $2, $3)",
                &params![id, name_key.as_str(), identifier_digits.as_str()],
            ),
            SearchChange::Remove {
                id,
                name_key,
                identifier_digits,
            } => self.execute(
                "INSERT INTO contacts_search (contacts_search, rowid, name_key, identifier_digits)
                 VALUES ('delete', $1, $2, $3)",
                &params![id, name_key.as_str(), identifier_digits.as_str()],
            ),
        }
    }
}

/// A value that can be read from one column.
pub trait Column: Sized {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self>;
}

fn null_column(index: usize) -> StoreError {
    StoreError::other(format!("column {index} is unexpectedly NULL"))
}

fn parse_column<T: std::str::FromStr>(index: usize, text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| StoreError::other(format!("column {index} holds an unexpected value")))
}

impl Column for i64 {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        row.int(index)?.ok_or_else(|| null_column(index))
    }
}

impl Column for Option<i64> {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        row.int(index)
    }
}

/// Flags are stored as 0/1 integers.
impl Column for bool {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        Ok(i64::read(row, index)? != 0)
    }
}

impl Column for String {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        row.text(index)?
            .map(str::to_owned)
            .ok_or_else(|| null_column(index))
    }
}

impl Column for Option<String> {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        Ok(row.text(index)?.map(str::to_owned))
    }
}

impl Column for Timestamp {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        Ok(Timestamp::from_unix(i64::read(row, index)?))
    }
}

impl Column for Option<Timestamp> {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        Ok(row.int(index)?.map(Timestamp::from_unix))
    }
}

impl Column for PublicId {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        let text = row.text(index)?.ok_or_else(|| null_column(index))?;
        parse_column(index, text)
    }
}

impl Column for FunnelId {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        let text = row.text(index)?.ok_or_else(|| null_column(index))?;
        parse_column(index, text)
    }
}

impl Column for Source {
    fn read(row: &dyn Row, index: usize) -> StoreResult<Self> {
        let text = row.text(index)?.ok_or_else(|| null_column(index))?;
        parse_column(index, text)
    }
}

/// A value built from a whole row.
pub trait FromRow: Sized {
    fn from_row(row: &dyn Row) -> StoreResult<Self>;
}

impl<T: Column> FromRow for T {
    fn from_row(row: &dyn Row) -> StoreResult<Self> {
        T::read(row, 0)
    }
}

impl<A: Column, B: Column> FromRow for (A, B) {
    fn from_row(row: &dyn Row) -> StoreResult<Self> {
        Ok((A::read(row, 0)?, B::read(row, 1)?))
    }
}

impl<A: Column, B: Column, C: Column> FromRow for (A, B, C) {
    fn from_row(row: &dyn Row) -> StoreResult<Self> {
        Ok((A::read(row, 0)?, B::read(row, 1)?, C::read(row, 2)?))
    }
}

/// Declares a struct read from a row whose columns are its fields, in
/// order, and `COLUMNS`: that column list for a `SELECT`. A field is named
/// after its column, or names it (`kind: Source = "type"`), so the list and
/// the struct cannot drift apart.
macro_rules! row_struct {
    ($(#[$meta:meta])* $vis:vis struct $name:ident $(in $alias:literal)? {
        $(#[$first_meta:meta])* $first:ident : $first_type:ty $(= $first_column:literal)?
        $(, $(#[$field_meta:meta])* $field:ident : $type:ty $(= $column:literal)?)* $(,)?
    }) => {
        $(#[$meta])*
        $vis struct $name {
            $(#[$first_meta])* pub $first: $first_type,
            $($(#[$field_meta])* pub $field: $type,)*
        }

        impl $name {
            /// The struct's columns, in the order it reads them.
            #[allow(dead_code)]
            pub const COLUMNS: &'static str = concat!(
                $crate::store::sql::db::column_name!($first $($first_column)?)
                $(, ", ", $crate::store::sql::db::column_name!($field $($column)?))*
            );
            $crate::store::sql::db::qualified_columns!(
                $($alias)?; $first $(= $first_column)? $(, $field $(= $column)?)*
            );
        }

        impl $crate::store::sql::db::FromRow for $name {
            #[allow(unused_assignments)]
            fn from_row(
                row: &dyn $crate::store::sql::db::Row,
            ) -> $crate::store::StoreResult<Self> {
                use $crate::store::sql::db::Column;
                let mut index = 0;
                let $first = <$first_type>::read(row, index)?;
                $(
                    index += 1;
                    let $field = <$type>::read(row, index)?;
                )*
                Ok($name { $first $(, $field)* })
            }
        }
    };
}

/// `QUALIFIED`, `alias.column, alias.column, …`, of a [`row_struct!`]
/// given an alias (`struct Row in "c"`), for joins.
macro_rules! qualified_columns {
    (; $($rest:tt)*) => {};
    ($alias:literal; $first:ident $(= $first_column:literal)? $(, $field:ident $(= $column:literal)?)*) => {
        /// The columns, each qualified by the table's alias, for joins.
        #[allow(dead_code)]
        pub const QUALIFIED: &'static str = concat!(
            $alias, ".", $crate::store::sql::db::column_name!($first $($first_column)?)
            $(, ", ", $alias, ".", $crate::store::sql::db::column_name!($field $($column)?))*
        );
    };
}
pub(crate) use qualified_columns;

/// The column a [`row_struct!`] field reads: its own name, or the one given.
macro_rules! column_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $column:literal) => {
        $column
    };
}
pub(crate) use column_name;
pub(crate) use row_struct;

/// Builds a statement whose shape depends on the request (filters, lists
/// of ids) from fixed fragments, keeping every value a bound parameter.
#[derive(Debug, Default)]
pub struct SqlBuilder<'a> {
    sql: String,
    params: Vec<Param<'a>>,
}

impl<'a> SqlBuilder<'a> {
    pub fn new(sql: &'static str) -> Self {
        SqlBuilder {
            sql: sql.to_owned(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: &'static str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends `$n` bound to `value`.
    pub fn param(&mut self, value: impl Into<Param<'a>>) -> &mut Self {
        self.params.push(value.into());
        self.sql.push('$');
        self.sql.push_str(&self.params.len().to_string());
        self
    }

    /// `$a, $b, …` for `values`, padded with `padding` to the next length
    /// in 1, 2, 4, 8…: lists of different lengths then share a handful of
    /// statements instead of making one each. Only for `IN (…)` lists,
    /// where a repeated value changes nothing.
    pub fn padded_ints(&mut self, values: &[i64], padding: i64) -> &mut Self {
        let length = values.len().max(1).next_power_of_two();
        for i in 0..length {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.param(values.get(i).copied().unwrap_or(padding));
        }
        self
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn params(&self) -> &[Param<'a>] {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    row_struct! {
        #[allow(dead_code)]
        struct Example in "e" { id: i64, kind: String = "type", note: Option<String> }
    }

    #[test]
    fn row_structs_list_their_columns_in_order() {
        assert_eq!(Example::COLUMNS, "id, type, note");
        assert_eq!(Example::QUALIFIED, "e.id, e.type, e.note");
    }

    #[test]
    fn builder_numbers_placeholders_and_pads_lists() {
        let mut sql = SqlBuilder::new("SELECT 1 WHERE a = ");
        sql.param(1)
            .push(" AND b IN (")
            .padded_ints(&[2, 3, 4], -1)
            .push(") AND c = ")
            .param("x");
        assert_eq!(
            sql.sql(),
            "SELECT 1 WHERE a = $1 AND b IN ($2, $3, $4, $5) AND c = $6"
        );
        assert_eq!(sql.params()[4], Param::Int(Some(-1)));
    }
}
