//! `gateway certs check <cert.pem>`: explains whether a certificate is trusted for S/MIME signing and for
//! TLS client authentication, and if not, which certificate failed, why, and at which times.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use openssl::x509::X509Ref;

use super::checks::rfc822_names;
use super::config::load_certificates;
use super::names::{dn_string, serial_hex, sha256_fingerprint};
use super::{Timestamp, TrustConfig, TrustValidator, Usage, ValidationTimes};
use crate::smime::SmimeConfig;

/// Checks `cert_path` (leaf first, optional chain after it) and prints a report to stdout.
///
/// Returns Ok(true) when the certificate is trusted for at least one of the two usages, Ok(false) when
/// for neither; Err only when the configuration or the file cannot be read.
pub fn run_certs_check(
    cert_path: &Path,
    trust: &TrustConfig,
    smime: &SmimeConfig,
    config_dir: &Path,
) -> anyhow::Result<bool> {
    let validator =
        Arc::new(TrustValidator::from_config(trust, config_dir).context("loading [trust]")?);
    let mut certificates = load_certificates("certificate", cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?;
    let leaf = certificates.remove(0);
    let report = check_report(&leaf, &certificates, &validator, smime, Timestamp::now());
    print!("{}", report.text);
    Ok(report.trusted_for_any)
}

/// The outcome of a check, as printed.
pub struct CheckReport {
    /// The human-readable report.
    pub text: String,
    /// Trusted for S/MIME signing.
    pub smime_signing: bool,
    /// Trusted for TLS client authentication.
    pub tls_client: bool,
    /// Either of the two.
    pub trusted_for_any: bool,
}

/// Builds the report without printing it (used by tests).
pub fn check_report(
    leaf: &X509Ref,
    extra: &[openssl::x509::X509],
    validator: &TrustValidator,
    smime: &SmimeConfig,
    now: Timestamp,
) -> CheckReport {
    let mut text = String::new();
    let time = |t| {
        Timestamp::from_asn1(t)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| "?".to_owned())
    };
    text.push_str(&format!(
        "certificate: {}\n",
        dn_string(leaf.subject_name())
    ));
    text.push_str(&format!(
        "  issuer:      {}\n",
        dn_string(leaf.issuer_name())
    ));
    text.push_str(&format!("  serial:      {}\n", serial_hex(leaf)));
    text.push_str(&format!("  sha256:      {}\n", sha256_fingerprint(leaf)));
    text.push_str(&format!(
        "  validity:    {} .. {}\n",
        time(leaf.not_before()),
        time(leaf.not_after())
    ));
    text.push_str(&format!("  checked at:  {now}\n"));

    let mut verdicts = [false; 2];
    for (slot, usage) in [Usage::SmimeSigning, Usage::TlsClient]
        .into_iter()
        .enumerate()
    {
        match validator.validate(
            leaf,
            extra,
            usage,
            ValidationTimes {
                now,
                signing_time: None,
            },
        ) {
            Ok(chain) => {
                verdicts[slot] = true;
                let path: Vec<String> = chain
                    .certificates
                    .iter()
                    .map(|c| dn_string(c.subject_name()))
                    .collect();
                text.push_str(&format!(
                    "{usage}: TRUSTED\n  chain: {}\n",
                    path.join("\n      -> ")
                ));
                for crl in &chain.revocation {
                    let next = crl
                        .next_update
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "none".to_owned());
                    let grace = if crl.in_grace_period {
                        " (past nextUpdate, within the grace period)"
                    } else {
                        ""
                    };
                    text.push_str(&format!(
                        "  CRL of {}: thisUpdate {}, nextUpdate {next}{grace}\n",
                        crl.issuer, crl.this_update
                    ));
                }
            }
            Err(error) => {
                let class = if error.is_transient() {
                    "temporarily unavailable"
                } else {
                    "NOT TRUSTED"
                };
                text.push_str(&format!("{usage}: {class}\n  reason: {error}\n"));
            }
        }
    }

    let names = rfc822_names(leaf);
    if names.is_empty() {
        let domains: Vec<&str> = smime
            .senders
            .iter()
            .filter(|p| {
                p.identities
                    .iter()
                    .any(|identity| crate::smime::identity_matches(leaf, identity))
            })
            .map(|p| p.domain.as_str())
            .collect();
        if domains.is_empty() {
            text.push_str("sender binding: no rfc822Name and no [[smime.senders]] identity matches: it cannot sign mail for any domain\n");
        } else {
            text.push_str(&format!(
                "sender binding: no rfc822Name; may sign for domains {}\n",
                domains.join(", ")
            ));
        }
    } else {
        text.push_str(&format!(
            "sender binding: rfc822Name {}\n",
            names.join(", ")
        ));
    }
    CheckReport {
        text,
        smime_signing: verdicts[0],
        tls_client: verdicts[1],
        trusted_for_any: verdicts.iter().any(|v| *v),
    }
}
