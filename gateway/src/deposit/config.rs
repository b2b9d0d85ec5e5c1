//! The `[queue]` and `[dmp]` configuration sections. Relative paths resolve against the
//! configuration file's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::config::resolve_path as resolve;
use dmp_connector::deposit::Code;
use dmp_connector::retry::{Jitter, RetryPolicy};
use dmp_connector::xds::client::ClientConfig;
use dmp_connector::xds::metadata::SubmissionProfile;
use dmp_connector::xds::vihf::VihfProfile;
use serde::Deserialize;

/// Which queue carries deposit and relay jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    /// SQLite files under `dir` (one node, no service needed).
    #[default]
    Embedded,
    /// RabbitMQ (several nodes share the work).
    Amqp,
}

/// `[queue]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `"embedded"` (default) or `"amqp"`.
    pub backend: QueueBackend,
    /// Embedded backend: directory of `deposits.sqlite` and `relay.sqlite`.
    pub dir: PathBuf,
    /// AMQP backend: broker URI (the password is never logged).
    pub amqp_uri: String,
    /// AMQP backend: prefix of the queue and exchange names.
    pub amqp_prefix: String,
    /// AMQP backend: unacknowledged deliveries per consumer.
    pub amqp_prefetch: u16,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            backend: QueueBackend::Embedded,
            dir: PathBuf::from("../var/queue"),
            amqp_uri: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            amqp_prefix: "mssante-gateway".into(),
            amqp_prefetch: 32,
        }
    }
}

/// `[dmp]`: where documents are deposited and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmpConfig {
    /// Deposit at all (false: documents are extracted and checked, the ledger says "not deposited").
    pub enabled: bool,
    /// Run the DMP simulator inside the gateway and deposit there (the embedded default).
    pub simulator: bool,
    /// Simulator: listening address (port 0 picks a free port).
    pub simulator_listen: SocketAddr,
    /// Simulator: where it stores deposited documents.
    pub simulator_store: PathBuf,
    /// Simulator: its TLS server certificate and key.
    pub simulator_certificate: PathBuf,
    /// Simulator: its TLS server key.
    pub simulator_key: PathBuf,
    /// Simulator: CA bundle for client certificates and VIHF signers.
    pub simulator_client_ca: PathBuf,
    /// Simulator: CRLs of that bundle.
    pub simulator_crls: Vec<PathBuf>,
    /// The DMP repository endpoint (used when `simulator` is false).
    pub endpoint: String,
    /// TLS client certificate chain toward the DMP (ORG AUTH_CLI).
    pub tls_certificate: PathBuf,
    /// Its key.
    pub tls_key: PathBuf,
    /// Anchors trusted for the DMP's server certificate.
    pub server_trust: PathBuf,
    /// Certificate signing the VIHF (ORG SIGN of the same structure as the TLS certificate).
    pub signing_certificate: PathBuf,
    /// Its key.
    pub signing_key: PathBuf,
    /// `Identifiant_Structure` of the VIHF: the OU of the certificates above.
    pub structure_id: String,
    /// `Subject/NameID` of the VIHF: the person responsible for the processing (IdNat_PS).
    pub responsible_id: String,
    /// `LPS_ID_HOMOLOGATION_DMP`.
    pub homologation: String,
    /// Submission-set `authorPerson` (XCN of the gateway as a device).
    pub author_person: String,
    /// Submission-set `authorInstitution` (XON) used when the documents name none.
    pub author_institution: String,
    /// `sourceId` OID of the gateway.
    pub source_id: String,
    /// OID root of the submission-set uniqueIds the gateway mints.
    pub unique_id_root: String,
    /// Deposits in flight at once.
    pub concurrency: usize,
    /// TCP + TLS connection timeout.
    pub connect_timeout_secs: u64,
    /// Whole-request timeout.
    pub request_timeout_secs: u64,
    /// First retry delay of a transient failure.
    pub retry_base_secs: u64,
    /// Longest delay between retries.
    pub retry_cap_secs: u64,
    /// Give up (dead letter, notify the sender) this long after the message was accepted.
    pub retry_horizon_secs: u64,
}

impl Default for DmpConfig {
    fn default() -> Self {
        DmpConfig {
            enabled: true,
            simulator: true,
            simulator_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            simulator_store: PathBuf::from("../var/dmp-sim"),
            simulator_certificate: PathBuf::from("../certs/tls/gateway.pem"),
            simulator_key: PathBuf::from("../certs/tls/gateway.key"),
            simulator_client_ca: PathBuf::from("../certs/ca/bundle.pem"),
            simulator_crls: vec![
                PathBuf::from("../certs/crl/org.crl.pem"),
                PathBuf::from("../certs/crl/root.crl.pem"),
            ],
            endpoint: String::new(),
            tls_certificate: PathBuf::from("../certs/tls/hopital-a.pem"),
            tls_key: PathBuf::from("../certs/tls/hopital-a.key"),
            server_trust: PathBuf::from("../certs/ca/root.pem"),
            signing_certificate: PathBuf::from("../certs/smime/sign-hopital-a.pem"),
            signing_key: PathBuf::from("../certs/smime/sign-hopital-a.key"),
            structure_id: "10000000010001".into(),
            responsible_id: "801234567897".into(),
            homologation: "TEST-0000".into(),
            author_person: "999999999999^PASSERELLE^MSSANTE^^^^^^&1.2.250.1.71.4.2.1&ISO^U^^^EI"
                .into(),
            author_institution: "HOPITAL A TEST^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^10000000010001"
                .into(),
            source_id: "1.2.250.1.999.1".into(),
            unique_id_root: "1.2.250.1.999.1.2".into(),
            concurrency: 4,
            connect_timeout_secs: 10,
            request_timeout_secs: 60,
            retry_base_secs: 30,
            retry_cap_secs: 3600,
            retry_horizon_secs: 86_400,
        }
    }
}

impl DmpConfig {
    /// Checks the values serde cannot; each message names its key.
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled && !self.simulator && !self.endpoint.starts_with("https://") {
            return Err(format!(
                "dmp.endpoint must be an https:// URL when dmp.simulator is false (got {:?})",
                self.endpoint
            ));
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err("dmp.concurrency must be between 1 and 256".into());
        }
        if self.retry_base_secs == 0 || self.retry_cap_secs < self.retry_base_secs {
            return Err("dmp.retry_base_secs must be > 0 and <= dmp.retry_cap_secs".into());
        }
        if self.connect_timeout_secs == 0 || self.request_timeout_secs == 0 {
            return Err("dmp.connect_timeout_secs and dmp.request_timeout_secs must be > 0".into());
        }
        if self.structure_id.is_empty() {
            return Err("dmp.structure_id must name the depositing structure".into());
        }
        Ok(())
    }

    /// The retry policy of deposits.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(self.retry_base_secs),
            cap: Duration::from_secs(self.retry_cap_secs),
            horizon: Duration::from_secs(self.retry_horizon_secs),
            max_attempts: None,
            jitter: Jitter::Full,
        }
    }

    /// The ITI-41 client settings for `endpoint`.
    pub fn client_config(&self, endpoint: String, config_dir: &Path) -> ClientConfig {
        ClientConfig {
            endpoint,
            tls_certificate: resolve(config_dir, &self.tls_certificate),
            tls_key: resolve(config_dir, &self.tls_key),
            trust_anchors: resolve(config_dir, &self.server_trust),
            signing_certificate: resolve(config_dir, &self.signing_certificate),
            signing_key: resolve(config_dir, &self.signing_key),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            mtom: true,
            vihf: VihfProfile {
                structure_id: self.structure_id.clone(),
                name_id: self.responsible_id.clone(),
                lps_id: "MSSANTE-GATEWAY".into(),
                lps_name: "mssante-gateway".into(),
                lps_homologation: self.homologation.clone(),
                ..VihfProfile::default()
            },
            submission: SubmissionProfile {
                author_person: self.author_person.clone(),
                author_institution: self.author_institution.clone(),
                source_id: self.source_id.clone(),
                unique_id_root: self.unique_id_root.clone(),
                default_content_type: Code {
                    code: "07".into(),
                    scheme: "1.2.250.1.213.2.2".into(),
                    display_name: Some("Consultation externe".into()),
                },
                sign_submission_set_xades: false,
            },
        }
    }
}

impl QueueConfig {
    /// The embedded backend's directory, resolved.
    pub fn dir_in(&self, config_dir: &Path) -> PathBuf {
        resolve(config_dir, &self.dir)
    }

    /// Checks the values serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.backend == QueueBackend::Amqp && !self.amqp_uri.starts_with("amqp") {
            return Err("queue.amqp_uri must be an amqp:// or amqps:// URI".into());
        }
        if self.amqp_prefix.is_empty()
            || !self
                .amqp_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err("queue.amqp_prefix must be letters, digits, '-', '_' or '.'".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_run_the_simulator() {
        let dmp = DmpConfig::default();
        assert!(dmp.validate().is_ok());
        assert!(dmp.simulator);
        assert!(QueueConfig::default().validate().is_ok());
    }

    #[test]
    fn an_external_dmp_needs_an_https_endpoint() {
        let dmp = DmpConfig {
            simulator: false,
            endpoint: "http://dmp.test/".into(),
            ..DmpConfig::default()
        };
        assert!(dmp.validate().unwrap_err().contains("dmp.endpoint"));
    }

    #[test]
    fn a_prefix_with_spaces_is_refused() {
        let queue = QueueConfig {
            amqp_prefix: "a b".into(),
            ..QueueConfig::default()
        };
        assert!(queue.validate().unwrap_err().contains("queue.amqp_prefix"));
    }
}
