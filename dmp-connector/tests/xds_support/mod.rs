//! Shared helpers of the xds_* and sim_* tests: the test PKI, a synthetic deposit request, a
//! client and a simulator. (The queue tests have their own `support` module.)
#![allow(dead_code)] // Each test binary uses a different part.

use std::path::PathBuf;
use std::time::Duration;

use dmp_connector::deposit::{
    Author, Code, DepositRequest, DocumentEntry, InsAuthority, PatientIdentity, PatientTraits, Sex,
    SourceMessage, SubmissionSet,
};
use dmp_connector::sim::{self, Environment, Faults, SimConfig, SimHandle};
use dmp_connector::xds::client::{ClientConfig, XdsClient};
use dmp_connector::xds::metadata::SubmissionProfile;
use dmp_connector::xds::vihf::VihfProfile;

/// OU (IdNat_Struct) of labo B's certificates.
pub const LABO_B_OU: &str = "300000000020002";
/// The XON of labo B.
pub const LABO_B_XON: &str =
    "LABO B TEST^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^300000000020002";

/// A path under the workspace's `certs/`.
pub fn cert(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("certs")
        .join(path)
}

/// A fixture path.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// A synthetic 15-character INS: 13 digits and the key computed for them.
pub fn synthetic_ins(number: u64) -> String {
    format!("{number:013}{:02}", 97 - number % 97)
}

fn code(code: &str, scheme: &str, name: &str) -> Code {
    Code {
        code: code.to_owned(),
        scheme: scheme.to_owned(),
        display_name: Some(name.to_owned()),
    }
}

fn sha1_hex(bytes: &[u8]) -> String {
    openssl::sha::sha1(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A valid deposit request for document `n` of patient `patient` (synthetic data only).
pub fn request(n: u32, patient: u64) -> DepositRequest {
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ClinicalDocument xmlns=\"urn:hl7-org:v3\"><id root=\"1.2.250.1.999.7.{n}\"/><title>CR biologie synthetique {n}</title></ClinicalDocument>"
    )
    .into_bytes();
    let author = Author {
        person: Some(
            "801234567897^BIOLOGISTE^Test^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS".to_owned(),
        ),
        institutions: vec![LABO_B_XON.replace("&amp;", "&")],
        roles: Vec::new(),
        specialties: vec!["SM39^Biologie medicale^1.2.250.1.71.4.2.5".to_owned()],
    };
    let patient = PatientIdentity {
        matricule: synthetic_ins(patient),
        authority: InsAuthority::TestNir,
        traits: PatientTraits {
            birth_name: "TESTNOM".to_owned(),
            birth_given_names: vec!["ANNE".to_owned()],
            first_given_name: "ANNE".to_owned(),
            sex: Sex::Female,
            birth_date: "19990101".to_owned(),
            birthplace_insee: None,
        },
    };
    DepositRequest {
        entry: DocumentEntry {
            entry_uuid: format!("urn:uuid:00000000-0000-4000-8000-{n:012}"),
            unique_id: format!("1.2.250.1.999.7.{n}"),
            class_code: code("11", "1.2.250.1.213.1.1.4.1", "Resultat d'examen"),
            type_code: code(
                "11502-2",
                "2.16.840.1.113883.6.1",
                "CR d'examens biologiques",
            ),
            format_code: code(
                "urn:ihe:lab:xd-lab:2008",
                "1.3.6.1.4.1.19376.1.2.3",
                "CR de biologie",
            ),
            confidentiality_codes: vec![code("N", "2.16.840.1.113883.5.25", "Normal")],
            healthcare_facility_type_code: code(
                "SA25",
                "1.2.250.1.71.4.2.4",
                "Laboratoire de biologie medicale",
            ),
            practice_setting_code: code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire"),
            event_codes: vec![code("MR", "1.2.250.1.213.1.1.5.618", "Magnetic Resonance")],
            language_code: "fr-FR".to_owned(),
            mime_type: "text/xml".to_owned(),
            creation_time: "20261201101500".to_owned(),
            service_start_time: Some("20261201090000".to_owned()),
            service_stop_time: Some("20261201100000".to_owned()),
            title: Some(format!("CR biologie synthetique {n}")),
            comments: Some("synthetique".to_owned()),
            authors: vec![author],
            legal_authenticator: Some(
                "801234567897^BIOLOGISTE^Test^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS".to_owned(),
            ),
            source_patient_id: None,
            source_patient_info: vec![
                "PID-5|TESTNOM^ANNE^^^^^L".to_owned(),
                "PID-7|19990101".to_owned(),
                "PID-8|F".to_owned(),
            ],
            hash_sha1: sha1_hex(&document),
            size: document.len() as u64,
        },
        document,
        submission_set: SubmissionSet::default(),
        patient,
        replaces: None,
        source: SourceMessage {
            queue_id: format!("Q{n}"),
            message_id: None,
        },
    }
}

/// Client settings: TLS as `tls`, VIHF signed by `signer` (names under certs/).
pub fn client_config(endpoint: &str, tls: &str, signer: &str, structure: &str) -> ClientConfig {
    ClientConfig {
        endpoint: endpoint.to_owned(),
        tls_certificate: cert(&format!("{tls}.pem")),
        tls_key: cert(&format!("{tls}.key")),
        trust_anchors: cert("ca/root.pem"),
        signing_certificate: cert(&format!("{signer}.pem")),
        signing_key: cert(&format!("{signer}.key")),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
        mtom: true,
        vihf: VihfProfile {
            structure_id: structure.to_owned(),
            name_id: "801234567897".to_owned(),
            lps_id: "DMP-CONNECTOR-TEST".to_owned(),
            lps_homologation: "TEST-0000".to_owned(),
            ..VihfProfile::default()
        },
        submission: SubmissionProfile {
            author_person: "999999999999^PASSERELLE^MSSANTE^^^^^^&1.2.250.1.71.4.2.1&ISO^U^^^EI"
                .to_owned(),
            author_institution:
                "PASSERELLE MSSANTE TEST^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^10000000090009"
                    .to_owned(),
            source_id: "1.2.250.1.999.1".to_owned(),
            unique_id_root: "1.2.250.1.999.1.2".to_owned(),
            default_content_type: Code {
                code: "07".to_owned(),
                scheme: "1.2.250.1.213.2.2".to_owned(),
                display_name: Some("Consultation externe".to_owned()),
            },
            sign_submission_set_xades: false,
        },
    }
}

/// The labo B client (TLS labo-b, VIHF signed by sign-labo-b).
pub fn labo_b_client(endpoint: &str) -> XdsClient {
    XdsClient::new(client_config(
        endpoint,
        "tls/labo-b",
        "smime/sign-labo-b",
        LABO_B_OU,
    ))
    .expect("client")
}

/// Simulator settings with the test PKI and a store in `dir`.
pub fn sim_config(dir: &std::path::Path, faults: Faults) -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        store: dir.to_path_buf(),
        tls_certificate: cert("tls/gateway.pem"),
        tls_key: cert("tls/gateway.key"),
        client_ca: cert("ca/bundle.pem"),
        crls: vec![cert("crl/org.crl.pem"), cert("crl/root.crl.pem")],
        environment: Environment::Test,
        faults,
        require_submission_signature: false,
    }
}

/// Starts a simulator storing in `dir`.
pub async fn start_sim(dir: &std::path::Path, faults: Faults) -> SimHandle {
    sim::start(sim_config(dir, faults))
        .await
        .expect("sim start")
}
