//! `dmp-sim` as a separate process (so a test can kill the gateway without touching the DMP),
//! and reading back what it holds with ITI-18 FindDocuments over mutual TLS, as a DMP client
//! would.
//!
//! The read-back client authenticates as LABO B (TLS `labo-b`, VIHF signed by `sign-labo-b`): the
//! simulator only checks that the VIHF is trusted and names the queried patient.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use dmp_connector::deposit::Code;
use dmp_connector::xds::client::{ClientConfig, XdsClient};
use dmp_connector::xds::metadata::SubmissionProfile;
use dmp_connector::xds::query::FoundDocument;
use dmp_connector::xds::vihf::VihfProfile;

use super::paths::{binary, cert};
use super::process::Process;

/// The line `dmp-sim` prints once it listens (see dmp-connector/src/bin/dmp-sim.rs).
const LISTENING: &str = "dmp-sim listening on ";

/// A running `dmp-sim`.
#[derive(Debug)]
pub struct DmpSim {
    process: Process,
    address: SocketAddr,
    store: PathBuf,
    client: XdsClient,
}

impl DmpSim {
    /// Starts `dmp-sim` on a free port with its store under `dir`; with `down_for_secs`, it
    /// answers 503 to everything for that long after start (`--down-for-secs`).
    pub async fn start(dir: &Path, down_for_secs: Option<u64>) -> anyhow::Result<DmpSim> {
        let program = binary("dmp-sim")?;
        let store = dir.join("store");
        let mut args: Vec<OsString> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--store".into(),
            store.clone().into(),
            "--tls-cert".into(),
            cert("tls/gateway.pem").into(),
            "--tls-key".into(),
            cert("tls/gateway.key").into(),
            "--client-ca".into(),
            cert("ca/bundle.pem").into(),
            "--crl".into(),
            cert("crl/org.crl.pem").into(),
            "--crl".into(),
            cert("crl/root.crl.pem").into(),
        ];
        if let Some(secs) = down_for_secs {
            args.push("--down-for-secs".into());
            args.push(secs.to_string().into());
        }
        let mut process = Process::spawn("dmp-sim", &program, &args, &dir.join("dmp-sim.log"))?;
        let line = process
            .wait_for_line(LISTENING, Duration::from_secs(10))
            .await?;
        let address: SocketAddr = line
            .split(LISTENING)
            .nth(1)
            .map(str::trim)
            .ok_or_else(|| anyhow!("no address in {line:?}"))?
            .parse()
            .with_context(|| format!("address in {line:?}"))?;
        let client = XdsClient::new(reader_config(&endpoint_of(address)))?;
        Ok(DmpSim {
            process,
            address,
            store,
            client,
        })
    }

    /// The ITI-41 endpoint the gateway is configured with.
    pub fn endpoint(&self) -> String {
        endpoint_of(self.address)
    }

    /// ITI-18 FindDocuments: the documents the DMP holds for `patient_cx`
    /// (`<matricule>^^^&<oid>&ISO^NH`).
    pub async fn documents(&self, patient_cx: &str) -> anyhow::Result<Vec<FoundDocument>> {
        self.client
            .find_documents(patient_cx)
            .await
            .map_err(|failure| anyhow!("ITI-18 FindDocuments for {patient_cx}: {failure:?}"))
    }

    /// Number of documents in the store, read from its directory without going through the
    /// simulator (for when it is down and answers 503 to queries too).
    pub fn stored_count(&self) -> anyhow::Result<usize> {
        let documents = self.store.join("documents");
        if !documents.is_dir() {
            return Ok(0);
        }
        Ok(std::fs::read_dir(&documents)?
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "json"))
            .count())
    }

    /// The simulator's log so far.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

fn endpoint_of(address: SocketAddr) -> String {
    format!("https://127.0.0.1:{}/repository", address.port())
}

/// The read-back client's settings (LABO B, synthetic identities of the test PKI).
fn reader_config(endpoint: &str) -> ClientConfig {
    ClientConfig {
        endpoint: endpoint.to_owned(),
        tls_certificate: cert("tls/labo-b.pem"),
        tls_key: cert("tls/labo-b.key"),
        trust_anchors: cert("ca/root.pem"),
        signing_certificate: cert("smime/sign-labo-b.pem"),
        signing_key: cert("smime/sign-labo-b.key"),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        mtom: true,
        vihf: VihfProfile {
            structure_id: "300000000020002".to_owned(),
            name_id: "801234567897".to_owned(),
            lps_id: "GATEWAY-E2E-TEST".to_owned(),
            lps_homologation: "TEST-0000".to_owned(),
            ..VihfProfile::default()
        },
        submission: SubmissionProfile {
            author_person: "999999999999^LECTEUR^E2E^^^^^^&1.2.250.1.71.4.2.1&ISO^U^^^EI"
                .to_owned(),
            author_institution: "LABO B TEST^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^300000000020002"
                .to_owned(),
            source_id: "1.2.250.1.999.3".to_owned(),
            unique_id_root: "1.2.250.1.999.3.2".to_owned(),
            default_content_type: Code {
                code: "07".to_owned(),
                scheme: "1.2.250.1.213.2.2".to_owned(),
                display_name: Some("Consultation externe".to_owned()),
            },
            sign_submission_set_xades: false,
        },
    }
}
