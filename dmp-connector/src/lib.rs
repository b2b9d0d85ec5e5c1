//! DMP connector: everything between an accepted document and the patient's DMP.
//!
//! - [`deposit`]: the deposit request types the gateway hands over;
//! - [`queue`]: the durable deposit queue (embedded SQLite by default, or RabbitMQ), with the
//!   same semantics on both backends;
//! - [`retry`]: outcome classification (transient or permanent) and the backoff schedule, as
//!   pure functions;
//! - [`worker`]: N concurrent deposits through a [`worker::Depositor`], idempotent by document
//!   `uniqueId`, reporting every attempt and final state to the ledger before acking.
//! - [`xds`]: the IHE XDS.b ITI-41 client: SOAP 1.2 + WS-Addressing, MTOM/XOP, ebRIM metadata
//!   with the DMP slots, the VIHF SAML assertion signed with XML-DSig, optional XAdES
//!   submission-set signature, RegistryResponse parsing;
//! - [`sim`]: `dmp-sim`, the DMP side of ITI-41 (plus ITI-18/ITI-43 read-back), as strict as the
//!   DMP, usable in-process or as the `dmp-sim` binary.

pub mod deposit;
pub mod lease_loop;
pub mod queue;
pub mod retry;
pub mod sim;
pub mod worker;
pub mod xds;
