//! DMP connector: the types the gateway hands over for deposit in the DMP.
//!
//! Only the deposit request types exist so far ([`deposit`]); the queue, the IHE XDS.b
//! (ITI-41) client and the `dmp-sim` simulator will live here too.

pub mod deposit;
