//! Certificate trust: a path to a configured anchor, validity at the signing time and now, usages, algorithm
//! policy, and revocation by CRL (directory + HTTP distribution points with an on-disk cache).
//!
//! Used for S/MIME signers (`crate::smime`) and by `gateway certs check` for TLS client certificates too.

mod chain;
pub mod checks;
pub mod cli;
pub mod config;
pub mod crl;
pub mod error;
pub mod fetch;
pub mod names;
pub mod time;

use std::path::Path;
use std::sync::Arc;

use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509Ref};

pub use checks::AlgorithmPolicy;
pub use config::{ConfigError, TrustConfig};
pub use crl::{CrlStore, RevocationCheck};
pub use error::{CheckedAt, TrustError, Usage};
pub use fetch::CrlFetcher;
pub use time::Timestamp;

/// The instants a chain is checked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationTimes {
    /// The gateway's clock.
    pub now: Timestamp,
    /// The signingTime claimed by a CMS signature, if any.
    pub signing_time: Option<Timestamp>,
}

impl ValidationTimes {
    /// Only `now`.
    pub fn now() -> Self {
        Self {
            now: Timestamp::now(),
            signing_time: None,
        }
    }
}

/// A chain that passed every check.
#[derive(Debug, Clone)]
pub struct ValidatedChain {
    /// End entity first, trust anchor last.
    pub certificates: Vec<X509>,
    /// The CRL used for each non-anchor certificate, in chain order (empty if revocation is off).
    pub revocation: Vec<RevocationCheck>,
}

/// Everything needed to decide whether a certificate is trusted; built once, shared by all verifications.
pub struct TrustValidator {
    store: X509Store,
    intermediates: Vec<X509>,
    /// Anchors and configured intermediates: the CAs whose CRLs a fetcher may accept.
    authorities: Vec<X509>,
    crls: Arc<CrlStore>,
    policy: AlgorithmPolicy,
    check_revocation: bool,
    crl_grace_secs: u64,
    fetch_distribution_points: bool,
}

impl TrustValidator {
    /// Loads anchors, intermediates and the CRL directory and cache named by the configuration.
    pub fn from_config(config: &TrustConfig, config_dir: &Path) -> Result<Self, ConfigError> {
        let mut anchors = Vec::new();
        for path in &config.anchors {
            anchors.extend(config::load_certificates(
                "trust.anchors",
                &config::resolve(config_dir, path),
            )?);
        }
        let mut intermediates = Vec::new();
        for path in &config.intermediates {
            intermediates.extend(config::load_certificates(
                "trust.intermediates",
                &config::resolve(config_dir, path),
            )?);
        }
        let crls = Arc::new(CrlStore::new());
        if let Some(dir) = &config.crl_dir {
            let dir = config::resolve(config_dir, dir);
            let rejected = crls.load_dir(&dir).map_err(|source| ConfigError::Io {
                key: "trust.crl_dir",
                path: dir.clone(),
                source,
            })?;
            for (path, reason) in rejected {
                tracing::warn!(path = %path.display(), %reason, "ignored a file of the CRL directory");
            }
        }
        if let Some(dir) = &config.crl_cache_dir {
            fetch::load_cache(&crls, &config::resolve(config_dir, dir));
        }
        let policy = AlgorithmPolicy {
            min_rsa_bits: config.min_rsa_bits,
            allow_sha1: config.allow_sha1,
            allow_md5: config.allow_md5,
        };
        Self::new(
            anchors,
            intermediates,
            crls,
            policy,
            config.check_revocation,
            config.crl_grace_period_secs,
        )
        .map(|v| Self {
            fetch_distribution_points: config.fetch_distribution_points,
            ..v
        })
    }

    /// Builds a validator from already loaded material.
    pub fn new(
        anchors: Vec<X509>,
        intermediates: Vec<X509>,
        crls: Arc<CrlStore>,
        policy: AlgorithmPolicy,
        check_revocation: bool,
        crl_grace_secs: u64,
    ) -> Result<Self, ConfigError> {
        let store_error = |e: openssl::error::ErrorStack| ConfigError::Value {
            key: "trust.anchors",
            reason: e.to_string(),
        };
        let mut builder = X509StoreBuilder::new().map_err(store_error)?;
        for anchor in &anchors {
            builder.add_cert(anchor.clone()).map_err(store_error)?;
        }
        // Times are checked by `checks::check_validity` at two instants, with better messages.
        builder
            .set_flags(X509VerifyFlags::NO_CHECK_TIME)
            .map_err(store_error)?;
        Ok(Self {
            store: builder.build(),
            authorities: anchors
                .into_iter()
                .chain(intermediates.iter().cloned())
                .collect(),
            intermediates,
            crls,
            policy,
            check_revocation,
            crl_grace_secs,
            fetch_distribution_points: true,
        })
    }

    /// The CRL store, shared with a [`CrlFetcher`].
    pub fn crl_store(&self) -> &Arc<CrlStore> {
        &self.crls
    }

    /// The configured CA certificates (anchors, then intermediates).
    pub fn authorities(&self) -> &[X509] {
        &self.authorities
    }

    /// The algorithm policy (also applied to CMS digests by the S/MIME verifier).
    pub fn policy(&self) -> &AlgorithmPolicy {
        &self.policy
    }

    /// Validates `leaf` for `usage`, with `extra` untrusted certificates (e.g. a CMS certificate set).
    ///
    /// Order: path, unknown critical extensions (OpenSSL), then for every certificate validity at the
    /// signing time and now and the algorithm policy, then the end entity's usages, then revocation —
    /// cheap local checks before the CRL lookup whose failure is transient.
    pub fn validate(
        &self,
        leaf: &X509Ref,
        extra: &[X509],
        usage: Usage,
        times: ValidationTimes,
    ) -> Result<ValidatedChain, TrustError> {
        let mut untrusted = extra.to_vec();
        untrusted.extend(self.intermediates.iter().cloned());
        let chain = chain::build_chain(&self.store, leaf, &untrusted)?;
        for (index, cert) in chain.iter().enumerate() {
            if let Some(signing_time) = times.signing_time {
                checks::check_validity(cert, signing_time, CheckedAt::SigningTime)?;
            }
            checks::check_validity(cert, times.now, CheckedAt::Now)?;
            self.policy.check_key(cert)?;
            // An anchor's self-signature proves nothing and is never relied on.
            if index + 1 < chain.len() {
                self.policy.check_signature(cert)?;
            }
        }
        checks::check_usage(leaf, usage)?;
        let mut revocation = Vec::new();
        if self.check_revocation {
            for pair in chain.windows(2) {
                let (cert, issuer) = (&pair[0], &pair[1]);
                let urls = checks::http_distribution_points(cert);
                // Only certificates already chained to an anchor get here, so the URLs queued for the
                // fetcher come from trusted CAs, not from whoever sent a message (no SSRF by DP).
                if self.fetch_distribution_points {
                    urls.iter().for_each(|url| self.crls.note_url(url));
                }
                revocation.push(self.crls.check(
                    cert,
                    issuer,
                    times.now,
                    self.crl_grace_secs,
                    urls.into_iter().next(),
                )?);
            }
        }
        Ok(ValidatedChain {
            certificates: chain,
            revocation,
        })
    }
}
