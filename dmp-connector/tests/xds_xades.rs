//! The TD2.1 submission-set signature (IHE DSG + XAdES): structure, xmlsec1 verification of
//! the signature document, and a signed submission accepted by dmp-sim.

mod xds_support;
use xds_support as support;

use std::process::Command;
use std::time::SystemTime;

use dmp_connector::sim::Faults;
use dmp_connector::xds::client::XdsClient;
use dmp_connector::xds::metadata::{self, scheme};
use dmp_connector::xds::xmldsig::SigningIdentity;
use dmp_connector::xds::{dom, ns, xades};

fn signed_client(endpoint: &str, mtom: bool) -> XdsClient {
    let mut config = support::client_config(
        endpoint,
        "tls/labo-b",
        "smime/sign-labo-b",
        support::LABO_B_OU,
    );
    config.submission.sign_submission_set_xades = true;
    config.mtom = mtom;
    XdsClient::new(config).expect("client")
}

fn signer() -> SigningIdentity {
    SigningIdentity::load(
        &support::cert("smime/sign-labo-b.pem"),
        &support::cert("smime/sign-labo-b.key"),
    )
    .expect("identity")
}

#[test]
fn signed_submission_has_the_signature_entry_and_signs_association() {
    let mut profile = support::client_config(
        "https://localhost:1/",
        "tls/labo-b",
        "smime/sign-labo-b",
        "x",
    )
    .submission;
    profile.sign_submission_set_xades = true;
    let request = support::request(1, 2_990_175_123_001);
    let submission =
        metadata::build_signed(&profile, &request, SystemTime::now(), &signer()).expect("build");
    let signature = submission.signature.as_ref().expect("signature document");
    assert_eq!(signature.id, xades::SIGNATURE_ENTRY_ID);
    let xml = format!(
        "<r xmlns:rim=\"{}\">{}</r>",
        ns::RIM,
        submission.registry_object_list
    );
    let root = dom::parse(xml.as_bytes()).expect("parse");
    let list = root.child(ns::RIM, "RegistryObjectList").expect("list");
    let signs = list
        .children_named(ns::RIM, "Association")
        .find(|a| a.attr("associationType") == Some(scheme::SIGNS))
        .expect("signs association");
    assert_eq!(signs.attr("sourceObject"), Some(xades::SIGNATURE_ENTRY_ID));
    assert_eq!(
        signs.attr("targetObject"),
        Some(metadata::SUBMISSION_SET_ID)
    );
    let document = dom::parse(&signature.bytes).expect("signature parses");
    let manifest = document.find(ns::DS, "Manifest").expect("manifest");
    let reference = manifest.child(ns::DS, "Reference").expect("reference");
    assert_eq!(
        reference.attr("URI"),
        Some(format!("urn:oid:{}", request.entry.unique_id).as_str())
    );
    assert!(document.find(xades::XADES, "SigningCertificate").is_some());
}

#[test]
fn xmlsec1_verifies_the_submission_set_signature() {
    if !Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("skipped: xmlsec1 is not installed (apt-get install -y xmlsec1)");
        return;
    }
    let request = support::request(2, 2_990_175_123_001);
    let bytes = xades::build_signature_document(
        &signer(),
        &[(
            request.entry.unique_id.as_str(),
            request.document.as_slice(),
        )],
        SystemTime::now(),
    )
    .expect("sign");
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("signature.xml");
    std::fs::write(&file, &bytes).expect("write");
    let output = Command::new("xmlsec1")
        .arg("--verify")
        // The Manifest's own references name documents by urn:oid (MTOM parts a standalone
        // tool cannot resolve); the SignedInfo reference over the Manifest is still checked.
        .arg("--ignore-manifests")
        .arg("--pubkey-cert-pem")
        .arg(support::cert("smime/sign-labo-b.pem"))
        .arg("--id-attr:Id")
        .arg("http://www.w3.org/2000/09/xmldsig#:Manifest")
        .arg("--id-attr:Id")
        .arg(format!("{}:SignedProperties", xades::XADES))
        .arg(&file)
        .output()
        .expect("xmlsec1");
    assert!(
        output.status.success(),
        "xmlsec1 refused: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn signed_submissions_are_accepted_by_the_simulator() {
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), Faults::default()).await;
    for (n, mtom) in [(3, true), (4, false)] {
        let client = signed_client(&sim.endpoint(), mtom);
        let request = support::request(n, 2_990_175_123_001);
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
    }
    // The document and the signature of each submission.
    assert_eq!(sim.store.all().expect("all").len(), 4);
    sim.shutdown().await;
}

fn sha1_hex(bytes: &[u8]) -> String {
    openssl::sha::sha1(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn the_simulator_checks_the_submission_set_signature() {
    use dmp_connector::xds::mtom;
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = support::sim_config(dir.path(), Faults::default());
    config.require_submission_signature = true;
    let sim = dmp_connector::sim::start(config).await.expect("sim");

    // Unsigned submissions are refused when the signature is required.
    let unsigned = support::labo_b_client(&sim.endpoint());
    let failure = unsigned
        .provide_and_register(&support::request(5, 2_990_175_123_001))
        .await
        .expect_err("refused");
    assert_eq!(failure.xds_codes(), vec!["XDSRegistryMetadataError"]);
    assert!(format!("{failure:?}").contains("signature"));

    // A signature document altered after signing (hash and size slots kept consistent, so
    // only the signature check can notice).
    let client = signed_client(&sim.endpoint(), true);
    let request = support::request(6, 2_990_175_123_001);
    let built = client
        .build_request(&request, SystemTime::now())
        .expect("build");
    let message = mtom::parse(&built.content_type, &built.body).expect("mtom");
    let original = message.part("0.3").expect("signature part").data.clone();
    let text = String::from_utf8(original.clone()).expect("utf-8");
    let start = text.find("<SigningTime>").expect("time") + "<SigningTime>".len();
    let mut tampered = text.clone();
    // Same length: the year's first digit.
    tampered.replace_range(start..start + 1, "1");
    let envelope = String::from_utf8(message.root.data.clone())
        .expect("utf-8")
        .replace(&sha1_hex(&original), &sha1_hex(tampered.as_bytes()));
    let body = mtom::build(
        &envelope,
        dmp_connector::xds::ACTION_PROVIDE_AND_REGISTER,
        &[
            mtom::Attachment {
                content_id: "0.2",
                content_type: "text/xml",
                data: &request.document,
            },
            mtom::Attachment {
                content_id: "0.3",
                content_type: "text/xml",
                data: tampered.as_bytes(),
            },
        ],
    );
    let (_, answer) = client
        .send(dmp_connector::xds::client::BuiltRequest {
            content_type: body.content_type,
            body: body.body,
            ..built
        })
        .await
        .expect("answer");
    let dmp_connector::xds::response::SoapResponse::Registry(registry) = answer else {
        panic!("registry response expected: {answer:?}");
    };
    assert_eq!(registry.errors[0].code, "XDSRegistryMetadataError");
    assert!(
        registry.errors[0].context.contains("digest mismatch"),
        "{registry:?}"
    );

    // The untouched signed submission is accepted.
    client
        .provide_and_register(&request)
        .await
        .expect("deposit");
    sim.shutdown().await;
}
