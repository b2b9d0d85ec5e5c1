//! The client's requests against dmp-sim over real HTTPS with client certificates.

mod xds_support;
use xds_support as support;

use dmp_connector::retry::{DepositFailure, FailureClass};
use dmp_connector::sim::Faults;
use dmp_connector::xds::response::ResponseStatus;
use std::time::Duration;

#[tokio::test]
async fn mtom_deposit_is_accepted_and_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    let request = support::request(1, 2_990_175_123_001);
    let response = client
        .provide_and_register(&request)
        .await
        .expect("deposit");
    assert_eq!(response.status, ResponseStatus::Success);
    let stored = sim.store.retrieve(&request.entry.unique_id).expect("store");
    assert_eq!(stored.as_deref(), Some(request.document.as_slice()));
    let found = sim
        .store
        .find_by_patient(&request.patient.to_cx())
        .expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].hash_sha1, request.entry.hash_sha1);
    sim.shutdown().await;
}

#[tokio::test]
async fn inline_deposit_is_accepted() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let mut config = support::client_config(
        &sim.endpoint(),
        "tls/labo-b",
        "smime/sign-labo-b",
        support::LABO_B_OU,
    );
    config.mtom = false;
    let client = dmp_connector::xds::client::XdsClient::new(config).expect("client");
    let request = support::request(2, 2_990_175_123_001);
    client
        .provide_and_register(&request)
        .await
        .expect("deposit");
    assert!(
        sim.store
            .get(&request.entry.unique_id)
            .expect("get")
            .is_some()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn identical_resubmission_succeeds_with_one_copy() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    let request = support::request(3, 2_990_175_123_001);
    client.provide_and_register(&request).await.expect("first");
    client
        .provide_and_register(&request)
        .await
        .expect("identical again");
    assert_eq!(sim.store.all().expect("all").len(), 1);
    let docs = std::fs::read_dir(dir.path().join("documents"))
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.path().extension().is_some_and(|x| x == "doc"))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(docs, 1, "exactly one stored copy");
    sim.shutdown().await;
}

#[tokio::test]
async fn different_document_under_same_unique_id_is_non_identical_hash() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    let first = support::request(4, 2_990_175_123_001);
    client.provide_and_register(&first).await.expect("first");
    let mut other = support::request(5, 2_990_175_123_001);
    other.entry.unique_id = first.entry.unique_id.clone();
    let failure = client
        .provide_and_register(&other)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSNonIdenticalHash"]);
    assert_eq!(failure.class(), FailureClass::Permanent);
    assert_eq!(
        sim.store
            .retrieve(&first.entry.unique_id)
            .expect("get")
            .as_deref(),
        Some(first.document.as_slice())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn fault_injection_is_a_transient_5xx() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(
        dir.path(),
        Faults {
            fail_rate: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let client = support::labo_b_client(&sim.endpoint());
    let failure = client
        .provide_and_register(&support::request(6, 2_990_175_123_001))
        .await
        .expect_err("failure injected");
    assert!(
        matches!(failure, DepositFailure::Http { status: 503 }),
        "{failure:?}"
    );
    assert_eq!(failure.class(), FailureClass::Transient);
    assert!(sim.store.all().expect("all").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn outage_then_recovery() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(
        dir.path(),
        Faults {
            down_for: Duration::from_millis(400),
            ..Faults::default()
        },
    )
    .await;
    let client = support::labo_b_client(&sim.endpoint());
    let request = support::request(7, 2_990_175_123_001);
    let failure = client
        .provide_and_register(&request)
        .await
        .expect_err("down");
    assert_eq!(failure.class(), FailureClass::Transient);
    tokio::time::sleep(Duration::from_millis(500)).await;
    client
        .provide_and_register(&request)
        .await
        .expect("back up");
    sim.shutdown().await;
}

#[tokio::test]
async fn delay_beyond_the_client_timeout_is_a_transient_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(
        dir.path(),
        Faults {
            delay: Duration::from_millis(1500),
            ..Faults::default()
        },
    )
    .await;
    let mut config = support::client_config(
        &sim.endpoint(),
        "tls/labo-b",
        "smime/sign-labo-b",
        support::LABO_B_OU,
    );
    config.request_timeout = Duration::from_millis(500);
    let client = dmp_connector::xds::client::XdsClient::new(config).expect("client");
    let failure = client
        .provide_and_register(&support::request(8, 2_990_175_123_001))
        .await
        .expect_err("timeout");
    assert!(
        matches!(failure, DepositFailure::Timeout { .. }),
        "{failure:?}"
    );
    assert_eq!(failure.class(), FailureClass::Transient);
    sim.shutdown().await;
}

#[tokio::test]
async fn revoked_and_rogue_client_certificates_cannot_connect() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    for tls in ["tls/revoked", "tls/rogue"] {
        let client = dmp_connector::xds::client::XdsClient::new(support::client_config(
            &sim.endpoint(),
            tls,
            "smime/sign-labo-b",
            support::LABO_B_OU,
        ))
        .expect("client");
        let failure = client
            .provide_and_register(&support::request(9, 2_990_175_123_001))
            .await
            .expect_err("refused at TLS");
        assert!(
            matches!(failure, DepositFailure::Connection { .. }),
            "{tls}: {failure:?}"
        );
    }
    sim.shutdown().await;
}
