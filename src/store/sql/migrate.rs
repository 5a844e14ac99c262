//! Schema migrations, one tree per backend (`migrations/sqlite`,
//! `migrations/postgres`), recorded in the `_sqlx_migrations` table in the
//! format earlier versions of bellbook (which used sqlx) wrote, so their
//! databases upgrade in place.

use sha2::{Digest, Sha384};

use super::Backend;
use super::db::{Db, params};
use crate::store::{StoreError, StoreResult};

pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $description:literal, $path:literal) => {
        Migration {
            version: $version,
            description: $description,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $path)),
        }
    };
}

pub const SQLITE: &[Migration] = &[
    migration!(1, "init", "sqlite/0001_init.sql"),
    migration!(2, "fast listings", "sqlite/0002_fast_listings.sql"),
    migration!(
        3,
        "search merges, settings indexes",
        "sqlite/0003_search_merges_settings_indexes.sql"
    ),
    migration!(4, "listing version", "sqlite/0004_listing_version.sql"),
    migration!(5, "webhooks", "sqlite/0005_webhooks.sql"),
    migration!(6, "idempotency keys", "sqlite/0006_idempotency.sql"),
    migration!(7, "dashboard", "sqlite/0007_dashboard.sql"),
];

pub const POSTGRES: &[Migration] = &[
    migration!(1, "init", "postgres/0001_init.sql"),
    migration!(2, "fast listings", "postgres/0002_fast_listings.sql"),
    migration!(3, "settings indexes", "postgres/0003_settings_indexes.sql"),
    migration!(4, "listing version", "postgres/0004_listing_version.sql"),
    migration!(5, "webhooks", "postgres/0005_webhooks.sql"),
    migration!(6, "idempotency keys", "postgres/0006_idempotency.sql"),
    migration!(7, "dashboard", "postgres/0007_dashboard.sql"),
];

/// Any fixed number: it only has to keep two bellbook processes from
/// migrating one PostgreSQL database at the same time.
const POSTGRES_MIGRATION_LOCK: i64 = 0x6265_6c6c_626f_6f6b;

const CREATE_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

const CREATE_TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

pub fn migrations_for(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha384::digest(sql.as_bytes()))
}

/// Brings the schema up to date. Safe to call from several processes at
/// once: SQLite serialises them with its write lock, PostgreSQL with an
/// advisory lock.
pub fn run(db: &mut dyn Db) -> StoreResult<()> {
    let migrations = migrations_for(db.backend());
    match db.backend() {
        Backend::Sqlite => {
            db.begin_write()?;
            let outcome = apply(db, migrations);
            match outcome {
                Ok(()) => db.commit(),
                Err(error) => {
                    let _ = db.rollback();
                    Err(error)
                }
            }
        }
        Backend::Postgres => {
            db.one::<i64>(
                "SELECT CAST(pg_advisory_lock($1) IS NULL AS INT)",
                &params![POSTGRES_MIGRATION_LOCK],
            )?;
            let outcome = apply(db, migrations);
            let unlocked = db.one::<i64>(
                "SELECT CAST(pg_advisory_unlock($1) AS INT)",
                &params![POSTGRES_MIGRATION_LOCK],
            );
            outcome.and(unlocked.map(|_| ()))
        }
    }
}

fn apply(db: &mut dyn Db, migrations: &[Migration]) -> StoreResult<()> {
    let backend = db.backend();
    db.batch(match backend {
        Backend::Sqlite => CREATE_TABLE_SQLITE,
        Backend::Postgres => CREATE_TABLE_POSTGRES,
    })?;
    let applied: Vec<(i64, String, i64)> = db.all(
        match backend {
            Backend::Sqlite => {
                "SELECT version, lower(hex(checksum)), CAST(success AS INTEGER)
                 FROM _sqlx_migrations ORDER BY version"
            }
            Backend::Postgres => {
                "SELECT version, encode(checksum, 'hex'), CAST(success AS INT)
                 FROM _sqlx_migrations ORDER BY version"
            }
        },
        &[],
    )?;
    for (version, sum, success) in &applied {
        let Some(known) = migrations.iter().find(|m| m.version == *version) else {
            return Err(StoreError::other(format!(
                "the database has migration {version}, which this bellbook does not know: \
                 it was made by a newer version"
            )));
        };
        if *success == 0 {
            return Err(StoreError::other(format!(
                "migration {version} failed part-way earlier; restore a backup"
            )));
        }
        if *sum != checksum(known.sql) {
            return Err(StoreError::other(format!(
                "migration {version} differs from the one applied to this database"
            )));
        }
    }
    for migration in migrations {
        if applied.iter().any(|(v, _, _)| *v == migration.version) {
            continue;
        }
        // SQLite's whole run is one transaction already; PostgreSQL's DDL
        // is transactional too, one transaction per migration.
        if backend == Backend::Postgres {
            db.begin_write()?;
        }
        let started = std::time::Instant::now();
        let outcome = db.batch(migration.sql).and_then(|()| {
            let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
            db.execute(
                match backend {
                    Backend::Sqlite => {
                        "INSERT INTO _sqlx_migrations
                             (version, description, success, checksum, execution_time)
                         VALUES ($1, $2, 1, unhex($3), $4)"
                    }
                    Backend::Postgres => {
                        "INSERT INTO _sqlx_migrations
                             (version, description, success, checksum, execution_time)
                         VALUES ($1, $2, TRUE, decode($3, 'hex'), $4)"
                    }
                },
                &params![
                    migration.version,
                    migration.description,
                    checksum(migration.sql).as_str(),
                    elapsed
                ],
            )
        });
        if backend == Backend::Postgres {
            match outcome {
                Ok(_) => db.commit()?,
                Err(error) => {
                    let _ = db.rollback();
                    return Err(error);
                }
            }
        } else {
            outcome?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in the migration trees is embedded, in order.
    #[test]
    fn every_migration_file_is_listed() {
        for (dir, listed) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .expect("migrations dir")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files.len(), listed.len(), "{dir}: {files:?}");
            for (file, migration) in files.iter().zip(listed) {
                let version: i64 = file[..4].parse().expect("numbered file");
                assert_eq!(version, migration.version, "{dir}/{file}");
            }
        }
    }

    #[test]
    fn checksums_are_sha384_hex() {
        assert_eq!(checksum("").len(), 96);
    }
}
