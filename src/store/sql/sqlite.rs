//! [`Db`] over rusqlite: a file in WAL mode, every commit synced
//! (`synchronous = FULL`), statements prepared once per connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Statement};

use super::Backend;
use super::db::{Db, Param, Queued, Row, Value};
use crate::store::{StoreError, StoreResult};

/// Statements kept prepared per connection: every fixed statement of the
/// store plus the listing shapes in use.
const STATEMENT_CACHE: usize = 512;

/// Where a `sqlite://` URL points, and whether the file may be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteLocation {
    pub path: PathBuf,
    pub create: bool,
    pub read_only: bool,
}

impl SqliteLocation {
    /// `sqlite://./bellbook.db`, `sqlite:///abs/path.db`, `sqlite:x.db`,
    /// with an optional `?mode=ro|rw|rwc` (default `rwc`: created when
    /// missing).
    pub fn parse(url: &str) -> StoreResult<SqliteLocation> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::other("a SQLite URL starts with sqlite://"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path.contains(":memory:") {
            return Err(StoreError::other(
                "bellbook keeps its data in a file: use sqlite://PATH",
            ));
        }
        let mut location = SqliteLocation {
            path: PathBuf::from(path),
            create: true,
            read_only: false,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair {
                "mode=rwc" => {}
                "mode=rw" => location.create = false,
                "mode=ro" => {
                    location.create = false;
                    location.read_only = true;
                }
                _ => {
                    return Err(StoreError::other(format!(
                        "unsupported SQLite URL option '{pair}' (mode=ro, rw or rwc)"
                    )));
                }
            }
        }
        Ok(location)
    }
}

/// How a connection is used: the one writer, or one of many readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Reader,
}

pub struct SqliteDb {
    conn: Connection,
    /// What the open transaction does at its commit.
    queued: Queued,
}

impl SqliteDb {
    pub fn open(location: &SqliteLocation, role: Role) -> StoreResult<SqliteDb> {
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= if location.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        if location.create && role == Role::Writer {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(&location.path, flags)
            .map_err(|e| open_error(&location.path, e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Plans must not depend on the values bound: without this guarantee
        // SQLite re-plans a statement whenever a parameter it could use for
        // planning (an indexed equality, a LIMIT) is bound again, which for
        // a listing was most of its cost.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(sqlite_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sqlite_error)?;
        // WAL lets readers run beside the one writer; `synchronous = FULL`
        // makes every acknowledged commit durable even across power loss.
        // Statement journals and sorts stay in memory: written to a temp
        // file, the journal of each INSERT ... RETURNING cost a write
        // syscall per page it touched.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -8192;",
        )
        .map_err(sqlite_error)?;
        if role == Role::Reader {
            conn.execute_batch("PRAGMA query_only = ON")
                .map_err(sqlite_error)?;
        }
        Ok(SqliteDb {
            conn,
            queued: Queued::default(),
        })
    }

    fn statement(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> StoreResult<rusqlite::CachedStatement<'_>> {
        let mut statement = self.conn.prepare_cached(sql).map_err(sqlite_error)?;
        bind(&mut statement, params)?;
        Ok(statement)
    }
}

/// Binds `$1…$n` in order. SQLite numbers named parameters by first
/// appearance, so statements must use `$1` before `$2` and so on (a
/// parameter may repeat); debug builds check that they do.
fn bind(statement: &mut Statement<'_>, params: &[Param<'_>]) -> StoreResult<()> {
    if statement.parameter_count() != params.len() {
        return Err(StoreError::other(format!(
            "statement takes {} parameters, {} given",
            statement.parameter_count(),
            params.len()
        )));
    }
    for (i, param) in params.iter().enumerate() {
        let index = i + 1;
        debug_assert_eq!(
            statement.parameter_name(index),
            Some(format!("${index}").as_str()),
            "parameters must first appear in order"
        );
        match *param {
            Param::Int(value) => statement.raw_bind_parameter(index, value),
            Param::Text(value) => statement.raw_bind_parameter(index, value),
        }
        .map_err(sqlite_error)?;
    }
    Ok(())
}

struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl Row for SqliteRow<'_, '_> {
    fn int(&self, index: usize) -> StoreResult<Option<i64>> {
        match self.0.get_ref(index).map_err(sqlite_error)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(value) => Ok(Some(value)),
            _ => Err(StoreError::other(format!(
                "column {index} holds no integer"
            ))),
        }
    }

    fn text(&self, index: usize) -> StoreResult<Option<&str>> {
        match self.0.get_ref(index).map_err(sqlite_error)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| StoreError::other(format!("column {index} holds invalid UTF-8"))),
            _ => Err(StoreError::other(format!("column {index} holds no text"))),
        }
    }

    fn value(&self, index: usize) -> StoreResult<Value> {
        match self.0.get_ref(index).map_err(sqlite_error)? {
            ValueRef::Null => Ok(Value::Null),
            ValueRef::Integer(value) => Ok(Value::Int(value)),
            ValueRef::Text(_) => Ok(Value::Text(
                self.text(index)?.unwrap_or_default().to_owned(),
            )),
            _ => Err(StoreError::other(format!(
                "column {index} holds neither integer nor text"
            ))),
        }
    }
}

impl Db for SqliteDb {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
        let mut statement = self.statement(sql, params)?;
        let changed = statement.raw_execute().map_err(sqlite_error)?;
        Ok(changed as u64)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut statement = self.statement(sql, params)?;
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next().map_err(sqlite_error)? {
            each(&SqliteRow(row))?;
        }
        Ok(())
    }

    fn insert_id(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<Option<i64>> {
        let inserted = self.execute(sql, params)?;
        Ok((inserted > 0).then(|| self.conn.last_insert_rowid()))
    }

    fn batch(&mut self, sql: &str) -> StoreResult<()> {
        // Transaction control runs on every request: kept prepared.
        if !sql.contains(';') {
            let mut statement = self.conn.prepare_cached(sql).map_err(sqlite_error)?;
            return statement.raw_execute().map(|_| ()).map_err(sqlite_error);
        }
        self.conn.execute_batch(sql).map_err(sqlite_error)
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> StoreResult<()> {
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            placeholders.join(", ")
        );
        for row in rows {
            let params: Vec<Param<'_>> = row.iter().map(Value::as_param).collect();
            self.execute(&sql, &params)?;
        }
        Ok(())
    }

    fn in_transaction(&self) -> Option<bool> {
        Some(!self.conn.is_autocommit())
    }

    fn queued(&mut self) -> &mut Queued {
        &mut self.queued
    }
}

fn open_error(path: &Path, error: rusqlite::Error) -> StoreError {
    StoreError::other(format!(
        "cannot open the SQLite database {}: {error}",
        path.display()
    ))
}

/// Sorts SQLite failures into what the caller can do about them.
pub(super) fn sqlite_error(error: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    if let rusqlite::Error::SqliteFailure(failure, _) = &error {
        match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return super::unique_violation();
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return super::foreign_key_violation(),
            _ => {}
        }
        // Busy and locked, with their extended variants: another process
        // held the database longer than the busy timeout.
        if matches!(failure.extended_code & 0xff, 5 | 6) {
            return StoreError::Unavailable(Box::new(error));
        }
        // A write to the database, its WAL or a temporary file found the
        // disk full.
        if failure.extended_code & 0xff == ffi::SQLITE_FULL {
            return StoreError::Full(Box::new(error));
        }
    }
    StoreError::Other(Box::new(error))
}

/// Opens connections for the reader pool.
pub struct ReaderManager {
    pub location: SqliteLocation,
}

impl r2d2::ManageConnection for ReaderManager {
    type Connection = SqliteDb;
    type Error = StoreError;

    fn connect(&self) -> Result<SqliteDb, StoreError> {
        SqliteDb::open(&self.location, Role::Reader)
    }

    fn is_valid(&self, _conn: &mut SqliteDb) -> Result<(), StoreError> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut SqliteDb) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_files_and_modes() {
        let location = SqliteLocation::parse("sqlite://./bellbook.db").expect("url");
        assert_eq!(location.path, PathBuf::from("./bellbook.db"));
        assert!(location.create && !location.read_only);
        let location = SqliteLocation::parse("sqlite:///tmp/x.db?mode=ro").expect("url");
        assert_eq!(location.path, PathBuf::from("/tmp/x.db"));
        assert!(!location.create && location.read_only);
        assert!(SqliteLocation::parse("sqlite::memory:").is_err());
        assert!(SqliteLocation::parse("sqlite://x.db?cache=shared").is_err());
    }
}
