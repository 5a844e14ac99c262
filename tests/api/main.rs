//! The integration tests: each starts the real server on port 0 with a
//! fresh database and talks HTTP to it, once on SQLite and once on
//! PostgreSQL (see `helpers::on_both_backends`).

mod batch;
mod binary;
mod conformance;
mod fixtures;
mod helpers;

mod concurrency;
mod connections;
mod contacts_create;
mod contacts_read;
mod contacts_update;
mod conventions;
mod conversations;
mod copy;
mod dashboard;
mod deployment;
mod docs_examples;
mod faults;
mod idempotency;
mod import;
mod lookups;
mod openapi;
mod process;
mod pull;
mod settings;
mod storage;
mod transfer;
mod webhooks;
