//! Fuzzes `SmimeVerifier::verify` with arbitrary raw messages: MIME splitting, CMS decoding, decryption,
//! signature and header checks must never panic, whatever the bytes.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use gateway::smime::{SenderPolicyConfig, SmimeConfig, SmimeVerifier};
use gateway::trust::TrustConfig;
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static SmimeVerifier {
    static VERIFIER: OnceLock<SmimeVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let fixtures =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/tests/fixtures/smime");
        let trust = TrustConfig {
            anchors: vec!["pki/root.pem".into()],
            intermediates: vec!["pki/org.pem".into()],
            crl_dir: Some("pki/crl".into()),
            fetch_distribution_points: false,
            ..TrustConfig::default()
        };
        let smime = SmimeConfig {
            decryption_certificate: Some("pki/smime/gateway-conf.pem".into()),
            decryption_key: Some("pki/smime/gateway-conf.key".into()),
            senders: vec![SenderPolicyConfig {
                domain: "hopital-a.mssante.test".into(),
                identities: vec!["OU=10000000010001".into()],
                allow_transport_only: true,
            }],
        };
        SmimeVerifier::from_config(&smime, &trust, &fixtures).expect("fixture configuration loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = verifier().verify(data, Some("hopital-a.mssante.test"));
});
