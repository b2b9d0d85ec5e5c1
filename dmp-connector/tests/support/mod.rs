//! Shared test helpers: synthetic deposit requests and the backend-independent queue suite.

#![allow(dead_code)] // Each test binary uses a different part of the support module.

pub mod suite;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dmp_connector::deposit::{
    Code, DepositRequest, DocumentEntry, InsAuthority, PatientIdentity, PatientTraits, Sex,
    SourceMessage, SubmissionSet,
};
use dmp_connector::queue::NewJob;

/// A prefix unique to this test run, for broker object names.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    format!("dmp-test.{test}.{}.{nanos:x}", std::process::id())
}

/// The broker the tests use.
pub const AMQP_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn code(code: &str, scheme: &str) -> Code {
    Code {
        code: code.to_owned(),
        scheme: scheme.to_owned(),
        display_name: None,
    }
}

/// A synthetic request for the document `unique_id` (fictitious test patient).
pub fn sample_request(unique_id: &str) -> DepositRequest {
    let document = format!("<ClinicalDocument>{unique_id}</ClinicalDocument>").into_bytes();
    DepositRequest {
        entry: DocumentEntry {
            entry_uuid: "Document01".to_owned(),
            unique_id: unique_id.to_owned(),
            class_code: code("11", "1.2.250.1.213.1.1.4.1"),
            type_code: code("11490-0", "2.16.840.1.113883.6.1"),
            format_code: code("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3"),
            confidentiality_codes: vec![code("N", "2.16.840.1.113883.5.25")],
            healthcare_facility_type_code: code("SA01", "1.2.250.1.71.4.2.4"),
            practice_setting_code: code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9"),
            event_codes: Vec::new(),
            language_code: "fr-FR".to_owned(),
            mime_type: "text/xml".to_owned(),
            creation_time: "20260101120000".to_owned(),
            service_start_time: None,
            service_stop_time: None,
            title: Some("Compte rendu".to_owned()),
            comments: None,
            authors: Vec::new(),
            legal_authenticator: None,
            source_patient_id: None,
            source_patient_info: Vec::new(),
            hash_sha1: "0".repeat(40),
            size: document.len() as u64,
        },
        document,
        submission_set: SubmissionSet::default(),
        patient: PatientIdentity {
            matricule: "299017512300142".to_owned(),
            authority: InsAuthority::TestNir,
            traits: PatientTraits {
                birth_name: "TESTNOM".to_owned(),
                birth_given_names: vec!["ANNE".to_owned()],
                first_given_name: "ANNE".to_owned(),
                sex: Sex::Female,
                birth_date: "19990101".to_owned(),
                birthplace_insee: None,
            },
        },
        replaces: None,
        source: SourceMessage {
            queue_id: "0000000000000001".to_owned(),
            message_id: None,
        },
    }
}

/// A job carrying `sample_request(unique_id)`.
pub fn sample_job(unique_id: &str) -> NewJob {
    NewJob::from_request(&sample_request(unique_id)).expect("sample request serializes")
}

/// Polls `check` until it returns true or `within` passes (AMQP counts are snapshots that
/// may lag a message in transit).
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
