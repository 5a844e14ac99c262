//! [`Db`] over the synchronous `postgres` client. Statements are prepared
//! once per connection with the parameter types the call sites bind, as
//! the SQL the store writes for both backends expects.

use std::collections::HashMap;
use std::time::Duration;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use super::Backend;
use super::db::{Db, Param, Queued, Row, Value};
use crate::store::{StoreError, StoreResult};

/// Prepared statements kept per connection before the cache starts over.
const STATEMENT_CACHE: usize = 512;
/// Longest an attempt to connect may take, unless the URL says otherwise
/// (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PgDb {
    /// Always there until dropped (see `Drop`).
    client: Option<Client>,
    statements: HashMap<String, (Vec<Type>, Statement)>,
    /// What the open transaction does at its commit.
    queued: Queued,
}

impl PgDb {
    pub fn connect(url: &str) -> StoreResult<PgDb> {
        let mut config: postgres::Config = url.parse().map_err(pg_error)?;
        // "relation already exists, skipping" and the like are no news.
        config.notice_callback(|notice| tracing::debug!("PostgreSQL: {}", notice.message()));
        // A server that does not answer (a host that is gone, a dropped
        // route) would otherwise hold the writer for the system's TCP
        // timeout, minutes.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let client = config.connect(NoTls).map_err(pg_error)?;
        Ok(PgDb {
            client: Some(client),
            statements: HashMap::new(),
            queued: Queued::default(),
        })
    }

    fn client(&mut self) -> StoreResult<&mut Client> {
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::other("the PostgreSQL connection is closed"))
    }

    fn statement(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<Statement> {
        let types: Vec<Type> = params
            .iter()
            .map(|p| match p {
                Param::Int(_) => Type::INT8,
                Param::Text(_) => Type::TEXT,
            })
            .collect();
        if let Some((known, statement)) = self.statements.get(sql)
            && *known == types
        {
            return Ok(statement.clone());
        }
        let statement = self
            .client()?
            .prepare_typed(sql, &types)
            .map_err(pg_error)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements
            .insert(sql.to_owned(), (types, statement.clone()));
        Ok(statement)
    }
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Int(value) => value.to_sql(ty, out),
            Param::Text(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => value.to_sql(ty, out),
            Value::Text(value) => value.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

struct PgRow<'r>(&'r postgres::Row);

impl Row for PgRow<'_> {
    fn int(&self, index: usize) -> StoreResult<Option<i64>> {
        let column = self
            .0
            .columns()
            .get(index)
            .ok_or_else(|| StoreError::other(format!("no column {index}")))?;
        // Literals and some functions answer with narrower integers.
        let value = match *column.type_() {
            Type::INT8 => self.0.try_get::<_, Option<i64>>(index),
            Type::INT4 => self
                .0
                .try_get::<_, Option<i32>>(index)
                .map(|v| v.map(i64::from)),
            Type::INT2 => self
                .0
                .try_get::<_, Option<i16>>(index)
                .map(|v| v.map(i64::from)),
            Type::BOOL => self
                .0
                .try_get::<_, Option<bool>>(index)
                .map(|v| v.map(i64::from)),
            _ => {
                return Err(StoreError::other(format!(
                    "column {index} holds no integer"
                )));
            }
        };
        value.map_err(pg_error)
    }

    fn text(&self, index: usize) -> StoreResult<Option<&str>> {
        self.0.try_get::<_, Option<&str>>(index).map_err(pg_error)
    }

    fn value(&self, index: usize) -> StoreResult<Value> {
        let column = self
            .0
            .columns()
            .get(index)
            .ok_or_else(|| StoreError::other(format!("no column {index}")))?;
        if matches!(*column.type_(), Type::INT8 | Type::INT4 | Type::INT2) {
            Ok(self.int(index)?.map_or(Value::Null, Value::Int))
        } else {
            Ok(self
                .text(index)?
                .map_or(Value::Null, |t| Value::Text(t.to_owned())))
        }
    }
}

impl Db for PgDb {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
        let statement = self.statement(sql, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.client()?.execute(&statement, &refs).map_err(pg_error)
    }

    fn for_each(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&dyn Row) -> StoreResult<()>,
    ) -> StoreResult<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let statement = self.statement(sql, params)?;
        let mut rows = self
            .client()?
            .query_raw(&statement, params.iter())
            .map_err(pg_error)?;
        while let Some(row) = rows.next().map_err(pg_error)? {
            each(&PgRow(&row))?;
        }
        Ok(())
    }

    fn insert_id(&mut self, sql: &str, params: &[Param<'_>]) -> StoreResult<Option<i64>> {
        let mut id = None;
        self.for_each(&format!("{sql} RETURNING id"), params, &mut |row| {
            id = row.int(0)?;
            Ok(())
        })?;
        Ok(id)
    }

    fn batch(&mut self, sql: &str) -> StoreResult<()> {
        self.client()?.batch_execute(sql).map_err(pg_error)
    }

    fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let list = columns.join(", ");
        // The column types, as the table declares them.
        let client = self.client()?;
        let probe = client
            .prepare(&format!("SELECT {list} FROM {table} LIMIT 0"))
            .map_err(pg_error)?;
        let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
        let sink = client
            .copy_in(&format!("COPY {table} ({list}) FROM STDIN BINARY"))
            .map_err(pg_error)?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for row in rows {
            let values: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as _).collect();
            writer.write(&values).map_err(pg_error)?;
        }
        writer.finish().map_err(pg_error)?;
        Ok(())
    }

    fn is_broken(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    fn queued(&mut self) -> &mut Queued {
        &mut self.queued
    }
}

impl Drop for PgDb {
    /// Closing a client blocks on its own runtime, which must not happen on
    /// a thread that drives asynchronous tasks (a pool dropped by a server
    /// task, say): such a client is closed on a thread of its own.
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(client));
        }
    }
}

/// Sorts PostgreSQL failures into what the caller can do about them.
pub(super) fn pg_error(error: postgres::Error) -> StoreError {
    let Some(code) = error.code() else {
        // No SQL state: the connection itself failed (or a decoding bug,
        // which retrying will not fix but does no harm either).
        return StoreError::Unavailable(Box::new(error));
    };
    match code.code() {
        "23505" => super::unique_violation(),
        "23503" => super::foreign_key_violation(),
        // disk_full: the server could not extend a file.
        "53100" => StoreError::Full(Box::new(error)),
        code if is_transient_postgres_code(code) => StoreError::Unavailable(Box::new(error)),
        _ => StoreError::Other(Box::new(error)),
    }
}

/// Serialization failures, deadlocks, shutdowns and connection exhaustion:
/// after these the same request may well succeed.
fn is_transient_postgres_code(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
    )
}

/// Opens connections for the reader pool.
pub struct PgManager {
    pub url: String,
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgDb;
    type Error = StoreError;

    fn connect(&self) -> Result<PgDb, StoreError> {
        PgDb::connect(&self.url)
    }

    fn is_valid(&self, conn: &mut PgDb) -> Result<(), StoreError> {
        conn.batch("")
    }

    fn has_broken(&self, conn: &mut PgDb) -> bool {
        conn.is_broken()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_postgres_errors_are_recognised() {
        assert!(is_transient_postgres_code("40001"));
        assert!(is_transient_postgres_code("40P01"));
        assert!(!is_transient_postgres_code("23505"));
        assert!(!is_transient_postgres_code("22021"));
    }
}
