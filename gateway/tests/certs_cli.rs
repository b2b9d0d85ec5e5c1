//! `gateway certs check` through the real binary and the shipped configuration: exit status and
//! the reason it prints for each kind of certificate in the test PKI.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `gateway certs check` on a certificate of `certs/`; returns (exit code, stdout).
fn check(cert: &str) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["certs", "check"])
        .arg(repo().join("certs").join(cert))
        .arg("--config")
        .arg(repo().join("config/gateway.toml"))
        .output()
        .expect("the gateway binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code().expect("exited normally"), stdout)
}

#[test]
fn signing_certificate_is_trusted_for_smime_only() {
    let (code, out) = check("smime/sign-hopital-a.pem");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("S/MIME signing: TRUSTED"), "{out}");
    assert!(
        out.contains("TLS client authentication: NOT TRUSTED"),
        "{out}"
    );
    assert!(out.contains("lacks clientAuth"), "{out}");
    assert!(
        out.contains("rfc822Name secretariat@hopital-a.mssante.test"),
        "{out}"
    );
}

#[test]
fn tls_client_certificate_is_trusted_for_tls_only() {
    let (code, out) = check("tls/hopital-a.pem");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TLS client authentication: TRUSTED"), "{out}");
    assert!(out.contains("S/MIME signing: NOT TRUSTED"), "{out}");
    assert!(out.contains("lacks emailProtection"), "{out}");
}

#[test]
fn each_bad_certificate_is_explained() {
    let cases = [
        ("smime/sign-revoked.pem", "revoked at 2025-03-01T00:00:00Z"),
        ("smime/sign-expired.pem", "expired"),
        ("smime/sign-notyet.pem", "not valid before"),
        ("smime/sign-rogue.pem", "no chain to a trust anchor"),
        ("tls/revoked.pem", "revoked at"),
        ("tls/rogue.pem", "no chain to a trust anchor"),
    ];
    for (cert, reason) in cases {
        let (code, out) = check(cert);
        assert_eq!(code, 1, "{cert} must be trusted for nothing:\n{out}");
        assert!(
            out.contains(reason),
            "{cert}: expected {reason:?} in\n{out}"
        );
    }
}

#[test]
fn unreadable_certificate_is_a_usage_error() {
    let (code, _) = check("does-not-exist.pem");
    assert_eq!(code, 2);
}
