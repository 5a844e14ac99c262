//! The integration tests: each starts the real server on port 0 with a
//! fresh database and talks HTTP to it, once on SQLite and once on
//! PostgreSQL (see `helpers::on_both_backends`).

mod helpers;

mod conventions;
mod docs_examples;
mod process;
