//! Each bad signer certificate of the test PKI, sender binding, digest policy and CRL state.

use super::*;

#[test]
fn expired_signer_is_refused_at_the_signing_time() {
    let error = untrusted(verify("bad-expired"));
    match error {
        TrustError::Expired {
            subject,
            not_after,
            checked_at,
            ..
        } => {
            assert!(subject.starts_with("CN=sign-expired."), "{subject}");
            assert_eq!(not_after.to_string(), "2025-01-01T00:00:00Z");
            assert_eq!(checked_at, CheckedAt::SigningTime);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_yet_valid_signer_is_refused() {
    let error = untrusted(verify("bad-notyet"));
    assert!(
        matches!(&error, TrustError::NotYetValid { not_before, .. } if not_before.to_string() == "2040-01-01T00:00:00Z"),
        "{error:?}"
    );
}

#[test]
fn revoked_signer_is_refused_with_crl_dates() {
    let result = verify("bad-revoked");
    let reply = reply_of(result.as_ref().unwrap_err());
    match untrusted(result) {
        TrustError::Revoked {
            revoked_at,
            this_update,
            next_update,
            issuer,
            ..
        } => {
            assert_eq!(revoked_at.to_string(), "2025-03-01T00:00:00Z");
            assert_eq!(this_update.to_string(), "2025-06-01T00:00:00Z");
            assert_eq!(next_update.unwrap().to_string(), "2045-12-31T00:00:00Z");
            assert!(issuer.starts_with("CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reply, (550, "5.7.1".into()));
}

#[test]
fn rogue_ca_signer_is_refused() {
    let result = verify("bad-rogue");
    assert_eq!(
        reply_of(result.as_ref().unwrap_err()),
        (550, "5.7.1".into())
    );
    assert!(matches!(
        untrusted(result),
        TrustError::UnknownIssuer { .. }
    ));
}

#[test]
fn signer_without_email_protection_is_refused() {
    let error = untrusted(verify("bad-no-emailprotection"));
    assert!(
        matches!(&error, TrustError::ExtendedKeyUsage { required: "emailProtection", found, .. } if found == "clientAuth"),
        "{error:?}"
    );
}

#[test]
fn signer_certificate_signed_with_sha1_is_a_weak_algorithm() {
    let result = verify("bad-sha1");
    assert_eq!(
        reply_of(result.as_ref().unwrap_err()),
        (554, "5.7.6".into())
    );
    let error = untrusted(result);
    assert!(
        matches!(&error, TrustError::WeakAlgorithm { what: "certificate signature", algorithm, .. } if algorithm == "sha1WithRSAEncryption"),
        "{error:?}"
    );
}

#[test]
fn unknown_critical_extension_is_refused() {
    let error = untrusted(verify("bad-critical"));
    assert!(
        matches!(&error, TrustError::UnknownCriticalExtension { oid, .. } if oid == "1.3.6.1.4.1.99999.1"),
        "{error:?}"
    );
}

#[test]
fn from_not_matching_the_rfc822name_is_refused() {
    let error = verify("from-mismatch").unwrap_err();
    match &error {
        SmimeError::SenderMismatch { from, allowed, .. } => {
            assert_eq!(from, "accueil@hopital-a.mssante.test");
            assert_eq!(
                allowed,
                &vec!["secretariat@hopital-a.mssante.test".to_owned()]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reply_of(&error), (550, "5.7.1".into()));
}

#[test]
fn sha1_digest_is_refused_by_default_and_accepted_when_relaxed() {
    let error = verify("sha1-digest").unwrap_err();
    assert!(
        matches!(&error, SmimeError::WeakDigest { algorithm, .. } if algorithm == "sha1"),
        "{error:?}"
    );
    assert_eq!(reply_of(&error), (554, "5.7.6".into()));
    let relaxed = verifier_with(TrustConfig {
        allow_sha1: true,
        ..trust_config("pki/crl")
    });
    relaxed.verify(&message("sha1-digest"), None).unwrap();
}

#[test]
fn expired_crl_is_a_transient_failure_unless_within_grace() {
    let result =
        verifier_with(trust_config("pki/crl-expired")).verify(&message("rsa-detached"), None);
    let error = result.unwrap_err();
    assert!(error.is_transient());
    assert_eq!(reply_of(&error), (451, "4.7.5".into()));
    match error {
        SmimeError::Untrusted(TrustError::CrlExpired {
            this_update,
            next_update,
            grace_secs,
            ..
        }) => {
            assert_eq!(this_update.to_string(), "2024-01-01T00:00:00Z");
            assert_eq!(next_update.to_string(), "2024-02-01T00:00:00Z");
            assert_eq!(grace_secs, 0);
        }
        other => panic!("{other:?}"),
    }
    let ten_years = 10 * 365 * 86_400;
    let graced = verifier_with(TrustConfig {
        crl_grace_period_secs: ten_years,
        ..trust_config("pki/crl-expired")
    });
    let verified = graced.verify(&message("rsa-detached"), None).unwrap();
    let TrustResult::SignedAndTrusted { signer, .. } = verified.trust else {
        panic!()
    };
    assert!(signer.revocation[0].in_grace_period);
}

#[test]
fn missing_crl_is_a_transient_failure() {
    let mut config = trust_config("pki/crl");
    config.crl_dir = None;
    let error = verifier_with(config)
        .verify(&message("rsa-detached"), None)
        .unwrap_err();
    assert!(
        matches!(&error, SmimeError::Untrusted(TrustError::CrlUnavailable { url: Some(url), .. }) if url == "http://crl.test.invalid/org.crl"),
        "{error:?}"
    );
    assert!(error.is_transient());
}
