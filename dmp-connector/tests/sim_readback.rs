//! Reading deposits back from dmp-sim with ITI-18 FindDocuments and ITI-43 Retrieve.

mod xds_support;
use xds_support as support;

use dmp_connector::sim::Faults;
use dmp_connector::sim::query::REPOSITORY_UNIQUE_ID;

#[tokio::test]
async fn deposits_are_found_and_retrieved_per_patient() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    let a1 = support::request(1, 2_990_175_123_001);
    let a2 = support::request(2, 2_990_175_123_001);
    let b1 = support::request(3, 1_850_275_123_004);
    for request in [&a1, &a2, &b1] {
        client.provide_and_register(request).await.expect("deposit");
    }
    let patient_a = a1.patient.to_cx();
    let mut found = client.find_documents(&patient_a).await.expect("ITI-18");
    found.sort_by(|x, y| x.unique_id.cmp(&y.unique_id));
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].unique_id, a1.entry.unique_id);
    assert_eq!(found[0].hash_sha1, a1.entry.hash_sha1);
    assert_eq!(found[1].size, a2.entry.size);
    assert_eq!(found[0].repository_unique_id, REPOSITORY_UNIQUE_ID);
    let bytes = client
        .retrieve_document(&patient_a, REPOSITORY_UNIQUE_ID, &a2.entry.unique_id)
        .await
        .expect("ITI-43");
    assert_eq!(bytes, a2.document);
    // Patient B's document is not served under a VIHF for patient A.
    let failure = client
        .retrieve_document(&patient_a, REPOSITORY_UNIQUE_ID, &b1.entry.unique_id)
        .await
        .expect_err("other patient");
    assert_eq!(failure.xds_codes(), vec!["XDSDocumentUniqueIdError"]);
    sim.shutdown().await;
}
