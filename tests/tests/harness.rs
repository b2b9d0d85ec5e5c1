//! The harness's own messages pass (or fail) the gateway's checks as the e2e tests expect, run
//! in-process through the gateway's library: a failing e2e test then points at the product,
//! not at the test data.

use gateway::documents::{DocumentPolicy, SourceMessage, extract};
use gateway::ins::InsEnvironment;
use gateway::smime::{SmimeConfig, SmimeError, SmimeVerifier};
use gateway::trust::{TrustConfig, TrustError};
use gateway_tests::e2e::message::{
    Mail, Patient, Protection, discharge_letter_xdm, lab_result_cda, tampered_xdm,
};
use gateway_tests::e2e::paths::{cert, repo_root};

fn verifier() -> SmimeVerifier {
    let trust = TrustConfig {
        anchors: vec![cert("ca/root.pem")],
        intermediates: vec![cert("ca/org.pem")],
        crl_dir: Some(cert("crl")),
        fetch_distribution_points: false,
        ..TrustConfig::default()
    };
    let smime = SmimeConfig {
        decryption_certificate: Some(cert("smime/gateway-conf.pem")),
        decryption_key: Some(cert("smime/gateway-conf.key")),
        ..SmimeConfig::default()
    };
    SmimeVerifier::from_config(&smime, &trust, &repo_root()).expect("verifier")
}

fn policy() -> DocumentPolicy {
    DocumentPolicy {
        ins_environment: InsEnvironment::Test,
        ..DocumentPolicy::default()
    }
}

fn source() -> SourceMessage {
    SourceMessage {
        queue_id: "HARNESS0000001".to_owned(),
        message_id: None,
    }
}

const TO: &[&str] = &["dr.test@cabinet-c.mssante.test"];

#[test]
fn signed_and_encrypted_messages_verify_and_yield_the_cda() {
    let patient = Patient::synthetic(7);
    for (clinical, protection) in [
        (
            discharge_letter_xdm(&patient, 1, 4000).unwrap(),
            Protection::Signed("sign-hopital-a"),
        ),
        (
            lab_result_cda(&patient, 2),
            Protection::SignedThenEncrypted("sign-hopital-a"),
        ),
    ] {
        let mail = Mail::new(
            TO,
            "h1@hopital-a.mssante.test",
            clinical.attachments.clone(),
        )
        .protected(protection);
        let raw = mail.render().unwrap();
        assert!(!raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        let verified = verifier().verify(&raw, None).expect("verifies");
        let extraction = extract(&verified.inner, source(), &policy()).expect("extracts");
        assert_eq!(extraction.requests.len(), 1);
        assert_eq!(extraction.requests[0].document, clinical.cda);
        assert_eq!(extraction.requests[0].patient.matricule, patient.matricule);
        assert_eq!(extraction.requests[0].patient.to_cx(), patient.cx());
    }
}

#[test]
fn refusal_fixtures_fail_for_the_intended_reason() {
    let patient = Patient::synthetic(8);
    let clinical = lab_result_cda(&patient, 3);
    let mail = |protection| {
        Mail::new(
            TO,
            "h2@hopital-a.mssante.test",
            clinical.attachments.clone(),
        )
        .protected(protection)
        .render()
        .unwrap()
    };
    assert!(matches!(
        verifier().verify(&mail(Protection::None), None),
        Err(SmimeError::Unsigned { .. })
    ));
    assert!(matches!(
        verifier().verify(&mail(Protection::Signed("sign-revoked")), None),
        Err(SmimeError::Untrusted(TrustError::Revoked { .. }))
    ));
    for signer in ["sign-rogue", "sign-expired"] {
        let error = verifier()
            .verify(&mail(Protection::Signed(signer)), None)
            .expect_err(signer);
        assert!(
            matches!(&error, SmimeError::Untrusted(e) if !e.is_transient()),
            "{signer}: {error:?}"
        );
    }

    let bad_key = lab_result_cda(&patient.with_bad_key(), 4);
    let raw = Mail::new(TO, "h3@hopital-a.mssante.test", bad_key.attachments)
        .render()
        .unwrap();
    let inner = verifier().verify(&raw, None).unwrap().inner;
    let error = extract(&inner, source(), &policy()).unwrap_err();
    assert_eq!(error.ledger_reason(), "ins_bad_key");

    let tampered = tampered_xdm(&patient, 5).unwrap();
    let raw = Mail::new(TO, "h4@hopital-a.mssante.test", tampered.attachments)
        .render()
        .unwrap();
    let inner = verifier().verify(&raw, None).unwrap().inner;
    let error = extract(&inner, source(), &policy()).unwrap_err();
    assert_eq!(error.ledger_reason(), "xdm_hash_mismatch");
}
