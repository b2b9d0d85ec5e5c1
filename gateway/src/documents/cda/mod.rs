//! HL7 CDA R2 documents: header reading and XDS metadata derivation.

pub mod derive;
pub mod header;

pub use header::{
    CdaBody, CdaCode, CdaHeader, CdaPatient, CdaPerson, InstanceId, looks_like_cda, parse,
};
