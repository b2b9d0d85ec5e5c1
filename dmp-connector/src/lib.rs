//! DMP connector: the deposit queue, the IHE XDS.b (ITI-41) client and the `dmp-sim` simulator.
//!
//! Nothing is built here yet: the crate holds its place in the workspace so that the gateway's
//! dependency direction (`gateway` → `dmp-connector`) is fixed from the start.
