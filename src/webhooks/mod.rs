//! Webhooks (docs/webhooks.md): the payloads events carry, which addresses
//! deliveries may reach, how they are signed, and the worker inside
//! `serve` that delivers them. The outbox itself is the store's
//! (`store::sql::events`): events are rows written with the changes that
//! cause them, deliveries rows a worker claims.

pub mod address;
pub mod payloads;
pub mod sign;
pub mod worker;

pub use address::AddressPolicy;
pub use payloads::Payloads;
pub use worker::{WebhookSettings, Worker};
