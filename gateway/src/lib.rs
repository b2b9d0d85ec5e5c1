//! The MSSanté relay gateway: configuration, start-up and the message pipeline.
//!
//! The `gateway` binary (`main.rs`) is a thin CLI over this library so that tests can use the
//! same code.

pub mod admin;
pub mod audit;
mod calendar;
pub mod config;
pub mod deposit;
pub mod documents;
pub mod ins;
pub mod ledger;
pub mod logging;
pub mod notify;
pub mod pipeline;
pub mod relay;
pub mod send;
pub mod serve;
pub mod smime;
pub mod trust;
