//! The VIHF's XML-DSig checked by an independent implementation: xmlsec1 (Debian package).

mod xds_support;
use xds_support as support;

use std::process::Command;
use std::time::SystemTime;

use dmp_connector::xds::mtom;

fn xmlsec1_available() -> bool {
    Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn verify(dir: &std::path::Path, envelope: &[u8]) -> std::process::Output {
    let file = dir.join("request.xml");
    std::fs::write(&file, envelope).expect("write");
    Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(support::cert("smime/sign-labo-b.pem"))
        .arg("--id-attr:ID")
        .arg("urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
        .arg(&file)
        .output()
        .expect("run xmlsec1")
}

#[test]
fn xmlsec1_verifies_the_vihf_signature() {
    if !xmlsec1_available() {
        println!("skipped: xmlsec1 is not installed (apt-get install -y xmlsec1)");
        return;
    }
    let client = support::labo_b_client("https://localhost:1/repository");
    let built = client
        .build_request(&support::request(1, 2_990_175_123_001), SystemTime::now())
        .expect("build");
    let envelope = mtom::parse(&built.content_type, &built.body)
        .expect("mtom")
        .root
        .data;
    let dir = tempfile::tempdir().expect("tmp");
    let output = verify(dir.path(), &envelope);
    assert!(
        output.status.success(),
        "xmlsec1 refused: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // And it does notice an alteration of a signed attribute.
    let tampered =
        String::from_utf8(envelope)
            .expect("utf-8")
            .replacen(">urn:dmp<", ">urn:dmp2<", 1);
    let output = verify(dir.path(), tampered.as_bytes());
    assert!(!output.status.success(), "tampered assertion verified");
}

/// The other direction: an assertion signed by xmlsec1 (re-indented, `ds` declared on an
/// ancestor) is verified by our exclusive C14N and accepted by dmp-sim.
#[tokio::test]
async fn an_assertion_signed_by_xmlsec1_is_verified_and_accepted() {
    if !xmlsec1_available() {
        println!("skipped: xmlsec1 is not installed (apt-get install -y xmlsec1)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let sim = support::start_sim(dir.path(), dmp_connector::sim::Faults::default()).await;
    let client = support::labo_b_client(&sim.endpoint());
    let request = support::request(2, 2_990_175_123_001);
    let built = client
        .build_request(&request, SystemTime::now())
        .expect("build");
    let envelope = String::from_utf8(
        mtom::parse(&built.content_type, &built.body)
            .expect("mtom")
            .root
            .data,
    )
    .expect("utf-8");
    // A template: empty digest and value, whitespace between the assertion's elements, and
    // the ds namespace declared on the Envelope instead of on ds:Signature.
    let start = envelope.find("<saml2:Assertion").expect("assertion");
    let end = envelope.find("</saml2:Assertion>").expect("end") + "</saml2:Assertion>".len();
    let mut assertion = envelope[start..end].to_owned();
    let blank = |text: &mut String, open: &str, close: &str| {
        let a = text.find(open).expect("open") + open.len();
        let b = text.find(close).expect("close");
        text.replace_range(a..b, "");
    };
    blank(&mut assertion, "<ds:DigestValue>", "</ds:DigestValue>");
    blank(
        &mut assertion,
        "<ds:SignatureValue>",
        "</ds:SignatureValue>",
    );
    let assertion = assertion.replace("><saml2:", ">\n    <saml2:").replace(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">",
        "<ds:Signature>",
    );
    let template = format!("{}{}{}", &envelope[..start], assertion, &envelope[end..]).replacen(
        "<soap:Envelope ",
        "<soap:Envelope xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ",
        1,
    );
    let template_path = dir.path().join("template.xml");
    let signed_path = dir.path().join("signed.xml");
    std::fs::write(&template_path, &template).expect("write");
    let key_and_cert = format!(
        "{},{}",
        support::cert("smime/sign-labo-b.key").display(),
        support::cert("smime/sign-labo-b.pem").display()
    );
    let output = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(key_and_cert)
        .arg("--id-attr:ID")
        .arg("urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
        .arg("--output")
        .arg(&signed_path)
        .arg(&template_path)
        .output()
        .expect("run xmlsec1");
    assert!(
        output.status.success(),
        "xmlsec1 --sign: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let signed = std::fs::read(&signed_path).expect("signed");
    let root = dmp_connector::xds::dom::parse(&signed).expect("parse");
    let assertion = root
        .find(dmp_connector::xds::ns::SAML2, "Assertion")
        .expect("assertion");
    dmp_connector::xds::xmldsig::verify_enveloped(assertion).expect("our verifier accepts it");

    let signed = String::from_utf8(signed).expect("utf-8");
    let body = mtom::build(
        &signed,
        dmp_connector::xds::ACTION_PROVIDE_AND_REGISTER,
        &[mtom::Attachment {
            content_id: "0.2",
            content_type: "text/xml",
            data: &request.document,
        }],
    );
    let (status, answer) = client
        .send(dmp_connector::xds::client::BuiltRequest {
            content_type: body.content_type,
            body: body.body,
            ..built
        })
        .await
        .expect("answer");
    assert_eq!(status, 200, "{answer:?}");
    assert!(
        sim.store
            .get(&request.entry.unique_id)
            .expect("get")
            .is_some()
    );
    sim.shutdown().await;
}
