//! Metadata details: RPLC association, the XAdES switch, and the Depositor implementation.

mod xds_support;
use xds_support as support;

use std::time::SystemTime;

use dmp_connector::deposit::ReplacementTarget;
use dmp_connector::retry::{DepositFailure, FailureClass};
use dmp_connector::sim::Faults;
use dmp_connector::worker::Depositor;
use dmp_connector::xds::dom;
use dmp_connector::xds::metadata::{self, MetadataError, scheme};
use dmp_connector::xds::ns;

fn profile() -> metadata::SubmissionProfile {
    support::client_config(
        "https://localhost:1/",
        "tls/labo-b",
        "smime/sign-labo-b",
        "x",
    )
    .submission
}

#[test]
fn replacement_adds_an_rplc_association_to_the_replaced_entry() {
    let mut request = support::request(1, 2_990_175_123_001);
    request.replaces = Some(ReplacementTarget {
        unique_id: Some("1.2.250.1.999.7.0".to_owned()),
        entry_uuid: Some("urn:uuid:11111111-2222-4333-8444-555555555555".to_owned()),
    });
    let submission = metadata::build(&profile(), &request, SystemTime::now()).expect("build");
    let xml = format!(
        "<r xmlns:rim=\"{}\">{}</r>",
        ns::RIM,
        submission.registry_object_list
    );
    let root = dom::parse(xml.as_bytes()).expect("parse");
    let list = root.child(ns::RIM, "RegistryObjectList").expect("list");
    let rplc = list
        .children_named(ns::RIM, "Association")
        .find(|a| a.attr("associationType") == Some(scheme::RPLC))
        .expect("RPLC association");
    assert_eq!(
        rplc.attr("sourceObject"),
        Some(request.entry.entry_uuid.as_str())
    );
    assert_eq!(
        rplc.attr("targetObject"),
        Some("urn:uuid:11111111-2222-4333-8444-555555555555")
    );
    assert!(
        list.children_named(ns::RIM, "Association")
            .any(|a| a.attr("associationType") == Some(scheme::HAS_MEMBER))
    );
}

#[test]
fn replacement_without_entry_uuid_and_xades_switch_are_refused() {
    let mut request = support::request(2, 2_990_175_123_001);
    request.replaces = Some(ReplacementTarget {
        unique_id: Some("1.2.250.1.999.7.0".to_owned()),
        entry_uuid: None,
    });
    assert!(matches!(
        metadata::build(&profile(), &request, SystemTime::now()),
        Err(MetadataError::ReplacementTargetUnresolved { .. })
    ));
    let mut xades = profile();
    xades.sign_submission_set_xades = true;
    assert!(matches!(
        metadata::build(
            &xades,
            &support::request(3, 2_990_175_123_001),
            SystemTime::now()
        ),
        Err(MetadataError::SignerRequired)
    ));
}

#[tokio::test]
async fn the_client_is_a_depositor() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    let request = support::request(4, 2_990_175_123_001);
    let receipt = client.deposit(&request).await.expect("deposit");
    assert_eq!(receipt.unique_id, request.entry.unique_id);
    let mut unresolved = support::request(5, 2_990_175_123_001);
    unresolved.replaces = Some(ReplacementTarget {
        unique_id: None,
        entry_uuid: None,
    });
    let failure = client.deposit(&unresolved).await.expect_err("invalid");
    assert!(matches!(failure, DepositFailure::InvalidRequest { .. }));
    assert_eq!(failure.class(), FailureClass::Permanent);
    sim.shutdown().await;
}
