//! Full S/MIME verification (signature, chain, CRL lookup, sender binding) of a 100 KB signed message,
//! detached and opaque, on the live test PKI in certs/.

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway::smime::{SmimeConfig, SmimeVerifier};
use gateway::trust::TrustConfig;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::x509::X509;

fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

/// A text/plain entity of about 100 KB (CRLF lines of 76 characters).
fn entity() -> Vec<u8> {
    let mut out = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n".to_vec();
    let line = "Compte rendu synthetique de test, aucune donnee reelle. 0123456789 abcdefghij";
    while out.len() < 100 * 1024 {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn signed_messages() -> (Vec<u8>, Vec<u8>) {
    let chain =
        X509::stack_from_pem(&std::fs::read(certs().join("smime/sign-hopital-a.pem")).unwrap())
            .unwrap();
    let key = PKey::private_key_from_pem(
        &std::fs::read(certs().join("smime/sign-hopital-a.key")).unwrap(),
    )
    .unwrap();
    let mut extra = Stack::new().unwrap();
    extra.push(chain[1].clone()).unwrap();
    let entity = entity();
    let headers = "From: secretariat@hopital-a.mssante.test\r\nTo: passerelle@gateway.mssante.test\r\nSubject: bench\r\nMIME-Version: 1.0\r\n";

    let flags = CMSOptions::DETACHED | CMSOptions::BINARY;
    let detached = CmsContentInfo::sign(
        Some(&chain[0]),
        Some(&key),
        Some(&extra),
        Some(&entity),
        flags,
    )
    .unwrap();
    let mut multipart = format!(
        "{headers}Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"b1\"\r\n\r\n--b1\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(&entity);
    multipart.extend_from_slice(b"\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    multipart.extend_from_slice(base64_lines(&detached.to_der().unwrap()).as_bytes());
    multipart.extend_from_slice(b"--b1--\r\n");

    let opaque = CmsContentInfo::sign(
        Some(&chain[0]),
        Some(&key),
        Some(&extra),
        Some(&entity),
        CMSOptions::BINARY,
    )
    .unwrap();
    let mut pkcs7 = format!(
        "{headers}Content-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    pkcs7.extend_from_slice(base64_lines(&opaque.to_der().unwrap()).as_bytes());
    (multipart, pkcs7)
}

fn base64_lines(der: &[u8]) -> String {
    let text = openssl::base64::encode_block(der);
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str("\r\n");
    }
    out
}

fn bench(c: &mut Criterion) {
    let trust = TrustConfig {
        anchors: vec!["ca/root.pem".into()],
        intermediates: vec!["ca/org.pem".into()],
        crl_dir: Some("crl".into()),
        fetch_distribution_points: false,
        ..TrustConfig::default()
    };
    let verifier = SmimeVerifier::from_config(&SmimeConfig::default(), &trust, &certs()).unwrap();
    let (multipart, pkcs7) = signed_messages();
    verifier.verify(&multipart, None).unwrap();
    verifier.verify(&pkcs7, None).unwrap();

    let mut group = c.benchmark_group("smime_verify_100k");
    group.throughput(Throughput::Elements(1));
    group.bench_function("detached", |b| {
        b.iter(|| verifier.verify(&multipart, None).unwrap())
    });
    group.bench_function("opaque", |b| {
        b.iter(|| verifier.verify(&pkcs7, None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
