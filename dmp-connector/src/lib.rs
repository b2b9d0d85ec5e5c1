//! DMP connector: everything between an accepted document and the patient's DMP.
//!
//! - [`deposit`]: the deposit request types the gateway hands over;
//! - [`queue`]: the durable deposit queue (embedded SQLite by default, or RabbitMQ), with the
//!   same semantics on both backends;
//! - [`retry`]: outcome classification (transient or permanent) and the backoff schedule, as
//!   pure functions;
//! - [`worker`]: N concurrent deposits through a [`worker::Depositor`], idempotent by document
//!   `uniqueId`, reporting every attempt and final state to the ledger before acking.

pub mod deposit;
pub mod queue;
pub mod retry;
pub mod worker;
