//! S/MIME verification against fixtures signed by the openssl CLI (tests/fixtures/smime/make-fixtures.sh)
//! and messages built here; every failure asserts the precise error variant and its SMTP reply.

use std::path::{Path, PathBuf};

use gateway::smime::{
    SenderBinding, SenderPolicyConfig, SmimeConfig, SmimeError, SmimeVerifier, TrustResult,
};
use gateway::trust::{CheckedAt, Timestamp, TrustConfig, TrustError};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::X509;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smime")
}

fn message(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("messages").join(format!("{name}.eml"))).unwrap()
}

fn trust_config(crl_dir: &str) -> TrustConfig {
    TrustConfig {
        anchors: vec!["pki/root.pem".into()],
        intermediates: vec!["pki/org.pem".into()],
        crl_dir: Some(crl_dir.into()),
        fetch_distribution_points: false,
        ..TrustConfig::default()
    }
}

fn smime_config() -> SmimeConfig {
    SmimeConfig {
        decryption_certificate: Some("pki/smime/gateway-conf.pem".into()),
        decryption_key: Some("pki/smime/gateway-conf.key".into()),
        senders: vec![
            SenderPolicyConfig {
                domain: "labo-b.mssante.test".into(),
                identities: vec!["OU=300000000020002".into()],
                allow_transport_only: false,
            },
            SenderPolicyConfig {
                domain: "hopital-a.mssante.test".into(),
                identities: vec![],
                allow_transport_only: true,
            },
        ],
    }
}

fn verifier_with(trust: TrustConfig) -> SmimeVerifier {
    SmimeVerifier::from_config(&smime_config(), &trust, &fixtures()).unwrap()
}

fn verifier() -> SmimeVerifier {
    verifier_with(trust_config("pki/crl"))
}

fn verify(name: &str) -> Result<gateway::smime::VerifiedMessage, SmimeError> {
    verifier().verify(&message(name), None)
}

fn reply_of(error: &SmimeError) -> (u16, String) {
    let reply = error.smtp_reply();
    (
        reply.code,
        reply.enhanced.map(|e| e.to_string()).unwrap_or_default(),
    )
}

fn untrusted(result: Result<gateway::smime::VerifiedMessage, SmimeError>) -> TrustError {
    match result {
        Err(SmimeError::Untrusted(error)) => error,
        other => panic!("expected Untrusted, got {other:?}"),
    }
}

fn assert_signed_by(result: &gateway::smime::VerifiedMessage, cn: &str) {
    match &result.trust {
        TrustResult::SignedAndTrusted { signer, .. } => {
            assert!(
                signer.subject.starts_with(&format!("CN={cn},")),
                "{}",
                signer.subject
            );
            assert_eq!(signer.chain.len(), 3, "{:?}", signer.chain);
            assert_eq!(signer.revocation.len(), 2);
            assert!(signer.signing_time.is_some());
        }
        other => panic!("expected a trusted signature, got {other:?}"),
    }
}

#[test]
fn rsa_detached_signature_verifies_and_returns_the_exact_signed_entity() {
    let verified = verify("rsa-detached").unwrap();
    assert!(!verified.encrypted);
    assert!(
        verified
            .inner
            .starts_with(b"Content-Type: text/plain; charset=utf-8\r\n")
    );
    assert!(
        verified
            .inner
            .ends_with(b"Aucune donnee de patient reel.\r\n")
    );
    assert_signed_by(&verified, "secretariat.hopital-a.mssante.test");
    let TrustResult::SignedAndTrusted { signer, binding } = &verified.trust else {
        unreachable!()
    };
    assert_eq!(signer.digest_algorithm, "sha256");
    assert_eq!(
        binding,
        &SenderBinding::Rfc822Name {
            address: "secretariat@hopital-a.mssante.test".into()
        }
    );
}

#[test]
fn rsa_opaque_signature_verifies() {
    let verified = verify("rsa-opaque").unwrap();
    assert!(verified.inner.starts_with(b"Content-Type: text/plain"));
    assert_signed_by(&verified, "secretariat.hopital-a.mssante.test");
}

#[test]
fn ecdsa_p256_signature_verifies() {
    let verified = verify("ecdsa-detached").unwrap();
    assert_signed_by(&verified, "secretariat-ecdsa.hopital-a.mssante.test");
}

#[test]
fn certificate_without_rfc822name_binds_by_configured_idnat_struct() {
    let verified = verify("labo-b-detached").unwrap();
    let TrustResult::SignedAndTrusted { binding, .. } = verified.trust else {
        panic!()
    };
    assert_eq!(
        binding,
        SenderBinding::ConfiguredIdentity {
            domain: "labo-b.mssante.test".into(),
            identity: "OU=300000000020002".into()
        }
    );
}

#[test]
fn certificate_without_rfc822name_and_no_mapping_is_refused() {
    let mut smime = smime_config();
    smime.senders.retain(|s| s.domain != "labo-b.mssante.test");
    let verifier =
        SmimeVerifier::from_config(&smime, &trust_config("pki/crl"), &fixtures()).unwrap();
    let error = verifier
        .verify(&message("labo-b-detached"), None)
        .unwrap_err();
    assert!(
        matches!(&error, SmimeError::SenderMismatch { from, allowed, .. } if from == "resultats@labo-b.mssante.test" && allowed.is_empty())
    );
    assert_eq!(reply_of(&error), (550, "5.7.1".into()));
}

#[test]
fn signed_then_encrypted_all_ciphers_and_key_transports() {
    for name in [
        "enc-aes128cbc-pkcs1",
        "enc-aes256cbc-oaep-sha1",
        "enc-aes128gcm-pkcs1",
        "enc-aes256gcm-oaep-sha256",
    ] {
        let verified = verify(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(verified.encrypted, "{name}");
        assert!(
            verified.inner.starts_with(b"Content-Type: text/plain"),
            "{name}"
        );
        assert_signed_by(&verified, "secretariat.hopital-a.mssante.test");
    }
}

#[test]
fn encrypted_to_another_certificate_is_a_decryption_failure() {
    let error = verify("enc-not-for-us").unwrap_err();
    assert!(matches!(error, SmimeError::Decryption { .. }), "{error:?}");
    assert_eq!(reply_of(&error), (554, "5.7.5".into()));
}

#[test]
fn encrypted_mail_without_a_configured_key_is_refused() {
    let smime = SmimeConfig {
        decryption_certificate: None,
        decryption_key: None,
        ..smime_config()
    };
    let verifier =
        SmimeVerifier::from_config(&smime, &trust_config("pki/crl"), &fixtures()).unwrap();
    let error = verifier
        .verify(&message("enc-aes128cbc-pkcs1"), None)
        .unwrap_err();
    assert!(matches!(error, SmimeError::Decryption { .. }), "{error:?}");
}

fn replace_once(bytes: &[u8], from: &[u8], to: &[u8], occurrence: usize) -> Vec<u8> {
    let position = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .nth(occurrence)
        .map(|(i, _)| i)
        .expect("pattern present");
    let mut out = bytes[..position].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&bytes[position + from.len()..]);
    out
}

#[path = "smime/certificates.rs"]
mod certificates;
#[path = "smime/interop.rs"]
mod interop;
#[path = "smime/tampering.rs"]
mod tampering;
