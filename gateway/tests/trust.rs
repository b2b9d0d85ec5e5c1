//! Certificate trust on the live test PKI (certs/): TLS and S/MIME usages, times, algorithm policy,
//! `gateway certs check`, and CRL fetching from a local HTTP server (no network).

use std::path::{Path, PathBuf};

use gateway::smime::{SenderPolicyConfig, SmimeConfig};
use gateway::trust::cli::{check_report, run_certs_check};
use gateway::trust::{
    CheckedAt, Timestamp, TrustConfig, TrustError, TrustValidator, Usage, ValidationTimes,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509Builder, X509NameBuilder};

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

fn leaf_and_chain(name: &str) -> (X509, Vec<X509>) {
    let mut all = X509::stack_from_pem(&std::fs::read(certs().join(name)).unwrap()).unwrap();
    let leaf = all.remove(0);
    (leaf, all)
}

fn config() -> TrustConfig {
    TrustConfig {
        anchors: vec!["ca/root.pem".into()],
        intermediates: vec!["ca/org.pem".into()],
        crl_dir: Some("crl".into()),
        fetch_distribution_points: false,
        ..TrustConfig::default()
    }
}

fn validator() -> TrustValidator {
    TrustValidator::from_config(&config(), &certs()).unwrap()
}

fn check(name: &str, usage: Usage) -> Result<gateway::trust::ValidatedChain, TrustError> {
    let (leaf, chain) = leaf_and_chain(name);
    validator().validate(&leaf, &chain, usage, ValidationTimes::now())
}

#[test]
fn tls_client_certificate_is_trusted_for_tls_and_not_for_smime() {
    let chain = check("tls/hopital-a.pem", Usage::TlsClient).unwrap();
    assert_eq!(chain.certificates.len(), 3);
    let error = check("tls/hopital-a.pem", Usage::SmimeSigning).unwrap_err();
    assert!(
        matches!(&error, TrustError::ExtendedKeyUsage { required: "emailProtection", found, .. } if found == "clientAuth"),
        "{error:?}"
    );
}

#[test]
fn bad_tls_client_certificates() {
    assert!(matches!(
        check("tls/revoked.pem", Usage::TlsClient),
        Err(TrustError::Revoked { .. })
    ));
    assert!(matches!(
        check("tls/expired.pem", Usage::TlsClient),
        Err(TrustError::Expired {
            checked_at: CheckedAt::Now,
            ..
        })
    ));
    assert!(matches!(
        check("tls/notyet.pem", Usage::TlsClient),
        Err(TrustError::NotYetValid { .. })
    ));
    assert!(matches!(
        check("tls/rogue.pem", Usage::TlsClient),
        Err(TrustError::UnknownIssuer { .. })
    ));
}

#[test]
fn validity_is_checked_at_the_signing_time_and_now() {
    let (leaf, chain) = leaf_and_chain("smime/sign-expired.pem");
    // Signed in mid-2024 while valid, checked today: expired now.
    let times = ValidationTimes {
        now: Timestamp::now(),
        signing_time: Some(Timestamp(1_719_792_000)),
    };
    let error = validator()
        .validate(&leaf, &chain, Usage::SmimeSigning, times)
        .unwrap_err();
    assert!(
        matches!(
            error,
            TrustError::Expired {
                checked_at: CheckedAt::Now,
                ..
            }
        ),
        "{error:?}"
    );
    // A good certificate with a claimed signing time before its notBefore.
    let (leaf, chain) = leaf_and_chain("smime/sign-hopital-a.pem");
    let times = ValidationTimes {
        now: Timestamp::now(),
        signing_time: Some(Timestamp(1_600_000_000)),
    };
    let error = validator()
        .validate(&leaf, &chain, Usage::SmimeSigning, times)
        .unwrap_err();
    assert!(
        matches!(
            error,
            TrustError::NotYetValid {
                checked_at: CheckedAt::SigningTime,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn ecdsa_p256_signer_is_accepted() {
    check("smime/sign-ecdsa.pem", Usage::SmimeSigning).unwrap();
}

/// An RSA-1024 leaf issued by the test org CA, built here.
fn weak_leaf() -> X509 {
    let org = X509::from_pem(&std::fs::read(certs().join("ca/org.pem")).unwrap()).unwrap();
    let org_key =
        PKey::private_key_from_pem(&std::fs::read(certs().join("ca/org.key")).unwrap()).unwrap();
    let key = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "weak.hopital-a.mssante.test")
        .unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_version(2).unwrap();
    builder
        .set_serial_number(&BigNum::from_u32(0xdead).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(org.subject_name()).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_str_x509("20250101000000Z").unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_str_x509("20451231000000Z").unwrap())
        .unwrap();
    builder
        .append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .unwrap(),
        )
        .unwrap();
    builder
        .append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
        .unwrap();
    builder.sign(&org_key, MessageDigest::sha256()).unwrap();
    builder.build()
}

#[test]
fn rsa_1024_key_is_a_weak_algorithm() {
    let error = validator()
        .validate(
            &weak_leaf(),
            &[],
            Usage::SmimeSigning,
            ValidationTimes::now(),
        )
        .unwrap_err();
    assert!(
        matches!(&error, TrustError::WeakAlgorithm { what: "key", algorithm, .. } if algorithm == "RSA 1024"),
        "{error:?}"
    );
    let relaxed = TrustValidator::from_config(
        &TrustConfig {
            min_rsa_bits: 1024,
            ..config()
        },
        &certs(),
    )
    .unwrap();
    relaxed
        .validate(
            &weak_leaf(),
            &[],
            Usage::SmimeSigning,
            ValidationTimes::now(),
        )
        .unwrap();
}

fn smime_config() -> SmimeConfig {
    SmimeConfig {
        senders: vec![SenderPolicyConfig {
            domain: "labo-b.mssante.test".into(),
            identities: vec!["OU=300000000020002".into()],
            allow_transport_only: false,
        }],
        ..SmimeConfig::default()
    }
}

#[test]
fn certs_check_explains_both_usages() {
    let (leaf, chain) = leaf_and_chain("smime/sign-hopital-a.pem");
    let report = check_report(
        &leaf,
        &chain,
        &validator(),
        &smime_config(),
        Timestamp::now(),
    );
    assert!(report.smime_signing && !report.tls_client && report.trusted_for_any);
    assert!(
        report.text.contains("S/MIME signing: TRUSTED"),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .contains("TLS client authentication: NOT TRUSTED"),
        "{}",
        report.text
    );
    assert!(report.text.contains("lacks clientAuth"), "{}", report.text);
    assert!(
        report
            .text
            .contains("CRL of CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .contains("rfc822Name secretariat@hopital-a.mssante.test"),
        "{}",
        report.text
    );

    let (leaf, chain) = leaf_and_chain("smime/sign-labo-b.pem");
    let report = check_report(
        &leaf,
        &chain,
        &validator(),
        &smime_config(),
        Timestamp::now(),
    );
    assert!(
        report
            .text
            .contains("may sign for domains labo-b.mssante.test"),
        "{}",
        report.text
    );

    let (leaf, chain) = leaf_and_chain("smime/sign-expired.pem");
    let report = check_report(
        &leaf,
        &chain,
        &validator(),
        &smime_config(),
        Timestamp::now(),
    );
    assert!(!report.trusted_for_any);
    assert!(
        report
            .text
            .contains("CN=sign-expired.hopital-a.mssante.test"),
        "{}",
        report.text
    );
    assert!(
        report
            .text
            .contains("expired at 2025-01-01T00:00:00Z, checked at now"),
        "{}",
        report.text
    );
}

#[test]
fn run_certs_check_returns_the_verdict() {
    assert!(
        run_certs_check(
            &certs().join("smime/sign-hopital-a.pem"),
            &config(),
            &smime_config(),
            &certs()
        )
        .unwrap()
    );
    assert!(
        run_certs_check(
            &certs().join("tls/labo-b.pem"),
            &config(),
            &smime_config(),
            &certs()
        )
        .unwrap()
    );
    assert!(
        !run_certs_check(
            &certs().join("smime/sign-revoked.pem"),
            &config(),
            &smime_config(),
            &certs()
        )
        .unwrap()
    );
    assert!(
        run_certs_check(
            &certs().join("missing.pem"),
            &config(),
            &smime_config(),
            &certs()
        )
        .is_err()
    );
}

#[path = "trust/config_snippet.rs"]
mod config_snippet;
#[path = "trust/crl_fetch.rs"]
mod crl_fetch;
