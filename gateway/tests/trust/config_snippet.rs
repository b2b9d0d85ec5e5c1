//! The `[smime]`/`[trust]` snippet given for config/gateway.toml parses; unknown keys are refused.

use super::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Sections {
    smime: SmimeConfig,
    trust: TrustConfig,
}

const SNIPPET: &str = r#"
[smime]
decryption_certificate = "../certs/smime/gateway-conf.pem"
decryption_key = "../certs/smime/gateway-conf.key"

[[smime.senders]]
domain = "labo-b.mssante.test"
identities = ["OU=300000000020002"]
allow_transport_only = false

[[smime.senders]]
domain = "hopital-a.mssante.test"
identities = []
allow_transport_only = true

[trust]
anchors = ["../certs/ca/root.pem"]
intermediates = ["../certs/ca/org.pem"]
crl_dir = "../certs/crl"
check_revocation = true
crl_grace_period_secs = 0
crl_urls = []
fetch_distribution_points = true
crl_refresh_interval_secs = 3600
crl_retry_secs = 300
crl_fetch_timeout_secs = 10
crl_max_bytes = 20971520
min_rsa_bits = 2048
allow_sha1 = false
allow_md5 = false
"#;

#[test]
fn configuration_snippet_parses_and_loads_relative_to_the_config_dir() {
    let sections: Sections = toml::from_str(SNIPPET).unwrap();
    assert_eq!(sections.smime.senders.len(), 2);
    let config_dir = certs().join("../config");
    let verifier =
        gateway::smime::SmimeVerifier::from_config(&sections.smime, &sections.trust, &config_dir)
            .unwrap();
    let (leaf, chain) = leaf_and_chain("smime/sign-hopital-a.pem");
    verifier
        .trust()
        .validate(&leaf, &chain, Usage::SmimeSigning, ValidationTimes::now())
        .unwrap();
    let empty: Sections = toml::from_str("[smime]\n[trust]\n").unwrap();
    assert_eq!(empty.trust, TrustConfig::default());
    assert!(toml::from_str::<Sections>("[smime]\n[trust]\nanchor = []\n").is_err());
}
