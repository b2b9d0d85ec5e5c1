//! Each refusal of dmp-sim, with its XDS error code or SOAP fault subcode, over real HTTPS.
//!
//! Requests are built by the client and then altered (the VIHF signature covers only the
//! assertion, so metadata can be edited without re-signing), or built from the client's parts.

mod xds_support;
use xds_support as support;

use std::time::SystemTime;

use dmp_connector::deposit::{DepositRequest, InsAuthority};
use dmp_connector::retry::{DepositFailure, FailureClass};
use dmp_connector::sim::{Faults, SimHandle};
use dmp_connector::xds::client::{BuiltRequest, XdsClient};
use dmp_connector::xds::envelope::{self, DocumentPayload, EnvelopeParts};
use dmp_connector::xds::response::SoapResponse;
use dmp_connector::xds::{metadata, new_urn_uuid};

const PATIENT: u64 = 2_990_175_123_001;

fn edit(mut built: BuiltRequest, from: &str, to: &str) -> BuiltRequest {
    let text = String::from_utf8(built.body).expect("utf-8 body");
    assert!(text.contains(from), "{from:?} not in the request");
    built.body = text.replacen(from, to, 1).into_bytes();
    built
}

/// Sends `built` and returns the error code (XDS errorCode or SOAP fault subcode).
async fn code_of(client: &XdsClient, built: BuiltRequest) -> String {
    let (status, answer) = client.send(built).await.expect("an answer");
    match answer {
        SoapResponse::Registry(registry) => {
            assert_eq!(status, 200);
            registry.errors.first().expect("an error").code.clone()
        }
        SoapResponse::Fault(fault) => {
            assert_eq!(status, 400);
            fault.subcodes.first().expect("a subcode").clone()
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn setup() -> (tempfile::TempDir, SimHandle, XdsClient) {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    (dir, sim, client)
}

fn built(client: &XdsClient, request: &DepositRequest) -> BuiltRequest {
    client
        .build_request(request, SystemTime::now())
        .expect("build")
}

#[tokio::test]
async fn envelope_and_vihf_refusals() {
    let (_dir, sim, client) = setup().await;
    let request = support::request(1, PATIENT);

    let bad_action = edit(
        built(&client, &request),
        ">urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b<",
        ">urn:ihe:iti:2010:UpdateDocumentSet<",
    );
    assert_eq!(code_of(&client, bad_action).await, "wsa:ActionNotSupported");

    // Without VIHF: the envelope built from the client's parts, no assertion.
    let submission =
        metadata::build(&client.config().submission, &request, SystemTime::now()).expect("md");
    let message_id = new_urn_uuid();
    let xml = envelope::build(&EnvelopeParts::provide_and_register(
        &message_id,
        &sim.endpoint(),
        None,
        &submission.registry_object_list,
        &submission.document_id,
        DocumentPayload::Inline(&request.document),
    ));
    let no_vihf = BuiltRequest {
        message_id,
        content_type: "application/soap+xml; charset=UTF-8".to_owned(),
        body: xml.into_bytes(),
        submission_set_unique_id: submission.submission_set_unique_id,
    };
    assert_eq!(code_of(&client, no_vihf).await, "wsse:InvalidSecurity");

    // An assertion whose validity window closed an hour ago.
    let stale = client
        .build_request(
            &request,
            SystemTime::now() - std::time::Duration::from_secs(3600),
        )
        .expect("build");
    assert_eq!(code_of(&client, stale).await, "wsse:MessageExpired");

    // A signed attribute altered after signing.
    let tampered = edit(built(&client, &request), ">urn:dmp<", ">urn:dmp2<");
    assert_eq!(code_of(&client, tampered).await, "wsse:FailedCheck");

    // The VIHF is signed by hopital A while the TLS client is labo B.
    let other_signer = XdsClient::new(support::client_config(
        &sim.endpoint(),
        "tls/labo-b",
        "smime/sign-hopital-a",
        support::LABO_B_OU,
    ))
    .expect("client");
    let failure = other_signer
        .provide_and_register(&request)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["wsse:FailedAuthentication"]);
    assert_eq!(failure.class(), FailureClass::Permanent);

    // The VIHF signer does not chain to the IGC-Santé test CAs.
    let rogue_signer = XdsClient::new(support::client_config(
        &sim.endpoint(),
        "tls/labo-b",
        "smime/sign-rogue",
        support::LABO_B_OU,
    ))
    .expect("client");
    let failure = rogue_signer
        .provide_and_register(&request)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["wsse:InvalidSecurityToken"]);

    // A revoked VIHF signer (listed in the org CRL).
    let revoked_signer = XdsClient::new(support::client_config(
        &sim.endpoint(),
        "tls/labo-b",
        "smime/sign-revoked",
        support::LABO_B_OU,
    ))
    .expect("client");
    let failure = revoked_signer
        .provide_and_register(&request)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["wsse:InvalidSecurityToken"]);
    assert!(format!("{failure:?}").contains("revoked"), "{failure:?}");

    // Identifiant_Structure names another structure than the TLS certificate's.
    let other_structure = XdsClient::new(support::client_config(
        &sim.endpoint(),
        "tls/labo-b",
        "smime/sign-labo-b",
        "10000000010001",
    ))
    .expect("client");
    let failure = other_structure
        .provide_and_register(&request)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["wsse:FailedAuthentication"]);

    assert!(sim.store.all().expect("all").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn patient_refusals() {
    let (_dir, sim, client) = setup().await;

    let mut bad_key = support::request(2, PATIENT);
    let mut matricule = bad_key.patient.matricule.clone().into_bytes();
    // Change the key's last digit: a typo in the key.
    matricule[14] = if matricule[14] == b'0' { b'1' } else { b'0' };
    bad_key.patient.matricule = String::from_utf8(matricule).expect("ascii");
    let failure = client
        .provide_and_register(&bad_key)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSUnknownPatientId"]);
    assert!(format!("{failure:?}").contains("key"));

    let mut production = support::request(3, PATIENT);
    production.patient.authority = InsAuthority::Nir;
    let failure = client
        .provide_and_register(&production)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSUnknownPatientId"]);
    assert!(format!("{failure:?}").contains("environment"));

    // Two patients: the entry's patientId differs from the submission set's.
    let request = support::request(4, PATIENT);
    let cx = request.patient.to_cx().replace('&', "&amp;");
    let other_cx = format!(
        "{}^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH",
        support::synthetic_ins(2_990_175_123_002)
    );
    let built = built(&client, &request);
    let text = String::from_utf8(built.body.clone()).expect("utf-8");
    // Occurrences: VIHF resource-id, SS patientId, sourcePatientId slot, DE patientId.
    let last = text.rfind(&cx).expect("DE patientId");
    let mut body = text.clone();
    body.replace_range(last..last + cx.len(), &other_cx);
    let two_patients = BuiltRequest {
        body: body.into_bytes(),
        ..built
    };
    assert_eq!(
        code_of(&client, two_patients).await,
        "XDSPatientIdDoesNotMatch"
    );

    assert!(sim.store.all().expect("all").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn metadata_and_document_refusals() {
    let (_dir, sim, client) = setup().await;

    let mut bad_hash = support::request(5, PATIENT);
    bad_hash.entry.hash_sha1 = "0".repeat(40);
    let failure = client
        .provide_and_register(&bad_hash)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSRepositoryMetadataError"]);
    assert!(format!("{failure:?}").contains("hash"));

    let mut bad_size = support::request(6, PATIENT);
    bad_size.entry.size += 1;
    let failure = client
        .provide_and_register(&bad_size)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSRepositoryMetadataError"]);
    assert!(format!("{failure:?}").contains("size"));

    // A required classification removed: practiceSettingCode.
    let request = support::request(7, PATIENT);
    let missing = edit(
        built(&client, &request),
        "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
        "urn:uuid:00000000-0000-4000-8000-000000000000",
    );
    assert_eq!(code_of(&client, missing).await, "XDSRegistryMetadataError");

    // A code outside the value set.
    let mut out_of_set = support::request(8, PATIENT);
    out_of_set.entry.confidentiality_codes[0].code = "SECRET".to_owned();
    let failure = client
        .provide_and_register(&out_of_set)
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSRegistryMetadataError"]);

    // The submission set's authorInstitution (first occurrence) differs from the entry's.
    let request = support::request(9, PATIENT);
    let mismatch = edit(
        built(&client, &request),
        support::LABO_B_XON,
        "AUTRE^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^300000000099999",
    );
    let (_, answer) = client.send(mismatch).await.expect("answer");
    let SoapResponse::Registry(registry) = answer else {
        panic!("registry response expected");
    };
    assert_eq!(registry.errors[0].code, "XDSRegistryMetadataError");
    assert!(registry.errors[0].context.contains("authorInstitution"));

    assert!(sim.store.all().expect("all").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn failures_map_onto_the_worker_classes() {
    let (_dir, sim, client) = setup().await;
    let mut bad = support::request(10, PATIENT);
    bad.entry.size = 1;
    let failure = client
        .provide_and_register(&bad)
        .await
        .expect_err("refused");
    assert!(matches!(failure, DepositFailure::Registry { .. }));
    assert_eq!(failure.class(), FailureClass::Permanent);
    sim.shutdown().await;
}
