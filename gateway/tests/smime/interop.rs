//! Unsigned mail policy, line-end canonicalisation, messages built here, and the NIST Direct sample.

use super::*;

const UNSIGNED: &[u8] = b"From: secretariat@hopital-a.mssante.test\r\nTo: passerelle@gateway.mssante.test\r\nSubject: test\r\nContent-Type: text/plain\r\n\r\nbonjour\r\n";

#[test]
fn unsigned_mail_is_refused_by_default() {
    let error = verifier()
        .verify(
            &UNSIGNED.replace_domain("labo-b"),
            Some("labo-b.mssante.test"),
        )
        .unwrap_err();
    assert_eq!(
        error,
        SmimeError::Unsigned {
            from_domain: Some("labo-b.mssante.test".into())
        }
    );
    assert_eq!(reply_of(&error), (550, "5.7.1".into()));
    assert!(!error.is_transient());
}

#[test]
fn transport_only_policy_needs_the_peer_authenticated_for_the_from_domain() {
    let verified = verifier()
        .verify(UNSIGNED, Some("hopital-a.mssante.test"))
        .unwrap();
    assert!(
        matches!(&verified.trust, TrustResult::TransportOnly { domain } if domain == "hopital-a.mssante.test")
    );
    assert_eq!(verified.inner, UNSIGNED);
    assert!(matches!(
        verifier().verify(UNSIGNED, None),
        Err(SmimeError::Unsigned { .. })
    ));
    assert!(matches!(
        verifier().verify(UNSIGNED, Some("labo-b.mssante.test")),
        Err(SmimeError::Unsigned { .. })
    ));
}

trait ReplaceDomain {
    fn replace_domain(&self, domain: &str) -> Vec<u8>;
}

impl ReplaceDomain for &[u8] {
    fn replace_domain(&self, domain: &str) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replace("secretariat@hopital-a", &format!("x@{domain}"))
            .into_bytes()
    }
}

#[test]
fn lf_only_copy_of_a_crlf_message_still_verifies() {
    let lf: Vec<u8> = message("rsa-detached")
        .into_iter()
        .filter(|b| *b != b'\r')
        .collect();
    verifier().verify(&lf, None).unwrap();
}

/// Builds a detached signature here with the `openssl` crate over the live test PKI in certs/, and an
/// x-pkcs7-signature variant, to check the verifier is not tied to the CLI's output shape.
#[test]
fn message_signed_in_the_test_with_the_live_pki_verifies() {
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs");
    let chain =
        X509::stack_from_pem(&std::fs::read(certs.join("smime/sign-hopital-a.pem")).unwrap())
            .unwrap();
    let key =
        PKey::private_key_from_pem(&std::fs::read(certs.join("smime/sign-hopital-a.key")).unwrap())
            .unwrap();
    let mut extra = Stack::new().unwrap();
    extra.push(chain[1].clone()).unwrap();
    let entity = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nligne 1\r\nligne 2 avec espace final \r\n";
    let flags = CMSOptions::DETACHED | CMSOptions::BINARY;
    let cms = CmsContentInfo::sign(
        Some(&chain[0]),
        Some(&key),
        Some(&extra),
        Some(entity),
        flags,
    )
    .unwrap();
    let der = cms.to_der().unwrap();
    let signature = openssl::base64::encode_block(&der);
    let mut raw = Vec::new();
    raw.extend_from_slice(b"From: Secretariat <secretariat@hopital-a.mssante.test>\r\nTo: passerelle@gateway.mssante.test\r\nSubject: built\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/x-pkcs7-signature\"; micalg=sha-256; boundary=\"XyZ\"\r\n\r\n--XyZ\r\n");
    raw.extend_from_slice(entity);
    raw.extend_from_slice(b"\r\n--XyZ\r\nContent-Type: application/x-pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    raw.extend_from_slice(signature.as_bytes());
    raw.extend_from_slice(b"\r\n--XyZ--\r\n");

    let trust = TrustConfig {
        anchors: vec![certs.join("ca/root.pem")],
        crl_dir: Some(certs.join("crl")),
        fetch_distribution_points: false,
        ..TrustConfig::default()
    };
    let verifier =
        SmimeVerifier::from_config(&SmimeConfig::default(), &trust, &fixtures()).unwrap();
    let verified = verifier.verify(&raw, None).unwrap();
    assert_eq!(verified.inner, entity);
    // The trailing space and the CRLF before the boundary are part of the exact signed bytes.
    let moved = String::from_utf8(raw)
        .unwrap()
        .replace("final \r\n", "final\r\n");
    assert!(matches!(
        verifier.verify(moved.as_bytes(), None),
        Err(SmimeError::BadSignature { .. })
    ));
}

// --- The NIST interop sample (Apple Mail 2012, SHA-1, self-signed signer, LF line ends) ---

fn nist_trust(allow_sha1: bool) -> TrustConfig {
    TrustConfig {
        anchors: vec!["nist/mhunter.cer".into()],
        allow_sha1,
        fetch_distribution_points: false,
        ..TrustConfig::default()
    }
}

fn nist_message() -> Vec<u8> {
    std::fs::read(fixtures().join("nist/signed-xdm.eml")).unwrap()
}

/// 2012-04-16T20:00:00Z, an hour after it was sent, while the certificate was valid.
const NIST_SENT: Timestamp = Timestamp(1_334_606_400);

#[test]
fn nist_sample_verifies_against_its_anchor_with_sha1_allowed_at_the_time_it_was_sent() {
    let verifier =
        SmimeVerifier::from_config(&SmimeConfig::default(), &nist_trust(true), &fixtures())
            .unwrap();
    let verified = verifier
        .verify_at(&nist_message(), None, NIST_SENT)
        .unwrap();
    let TrustResult::SignedAndTrusted { signer, binding } = &verified.trust else {
        panic!()
    };
    assert_eq!(signer.digest_algorithm, "sha1");
    assert!(
        signer
            .subject
            .starts_with("emailAddress=mhunter@5amsolutions.com,"),
        "{}",
        signer.subject
    );
    assert_eq!(signer.chain.len(), 1);
    assert_eq!(
        binding,
        &SenderBinding::Rfc822Name {
            address: "mhunter@5amsolutions.com".into()
        }
    );
    assert!(String::from_utf8_lossy(&verified.inner).contains("IHE_XDM.zip"));
}

#[test]
fn nist_sample_under_the_default_policy() {
    // SHA-1 is refused first, whatever the time.
    let strict =
        SmimeVerifier::from_config(&SmimeConfig::default(), &nist_trust(false), &fixtures())
            .unwrap();
    let error = strict
        .verify_at(&nist_message(), None, NIST_SENT)
        .unwrap_err();
    assert!(
        matches!(&error, SmimeError::WeakDigest { algorithm, .. } if algorithm == "sha1"),
        "{error:?}"
    );
    // With SHA-1 allowed, today the certificate has expired (2013-04-13); at signing time it was valid.
    let relaxed =
        SmimeVerifier::from_config(&SmimeConfig::default(), &nist_trust(true), &fixtures())
            .unwrap();
    match untrusted(relaxed.verify(&nist_message(), None)) {
        TrustError::Expired {
            not_after,
            checked_at,
            ..
        } => {
            assert_eq!(not_after.to_string(), "2013-04-13T18:17:34Z");
            assert_eq!(checked_at, CheckedAt::Now);
        }
        other => panic!("{other:?}"),
    }
    // And with the IGC-Santé anchors only, its self-signed certificate has no path.
    let igc = verifier_with(TrustConfig {
        allow_sha1: true,
        ..trust_config("pki/crl")
    });
    assert!(matches!(
        untrusted(igc.verify_at(&nist_message(), None, NIST_SENT)),
        TrustError::UnknownIssuer { .. }
    ));
}

#[test]
fn every_reply_line_fits_and_names_the_certificate() {
    let error = verify("bad-revoked").unwrap_err();
    let reply = error.smtp_reply();
    assert!(reply.text.len() < 500);
    assert!(
        reply.text.contains("revoked.hopital-a") || reply.text.contains("serial"),
        "{}",
        reply.text
    );
    assert!(!error.ledger_reason().contains('\n'));
}

#[test]
fn verifier_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SmimeVerifier>();
}
