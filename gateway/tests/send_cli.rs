//! `gateway send`: messages built from the synthetic CDA fixtures must pass the gateway's own
//! S/MIME verification and document extraction, through the library and through the binary, and
//! reach a real smtp-in listener over mutual TLS byte for byte.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gateway::config::Config;
use gateway::documents::{DocumentPolicy, NotDepositedReason, SourceMessage, extract};
use gateway::send::compose::{self, Compose, Content};
use gateway::send::sign::{Signer, load_certificates};
use gateway::send::{NamedFile, SendError, xdm};
use gateway::smime::{SmimeError, SmimeVerifier, VerifiedMessage};
use smtp_in::handler::{MessageHandler, Verdict};
use smtp_in::limits::Limits;
use smtp_in::reply::{EnhancedCode, Reply};
use smtp_in::server::{Listener, ListenerConfig, ListenerMode, Shutdown};
use smtp_in::spool::{Spool, SpooledMessage};
use smtp_in::tls::{TlsSettings, server_config};
use support::{certs, run_cli, workspace_root};

const FROM: &str = "secretariat@hopital-a.mssante.test";
const TO: &str = "dmp@gateway.mssante.test";
/// INS of the synthetic patients of tests/fixtures/cda (keys computed, test OID).
const LETTER_INS: &str = "177056301234559";
const LAB_INS: &str = "292081305501206";

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/cda").join(name)
}

fn file(name: &str) -> NamedFile {
    NamedFile::read(&fixture(name)).unwrap()
}

/// The gateway's own configuration: its trust, decryption key and document policy.
fn gateway_config() -> Config {
    Config::load(&workspace_root().join("config/gateway.toml")).unwrap()
}

fn verifier() -> SmimeVerifier {
    let config = gateway_config();
    SmimeVerifier::from_config(&config.smime, &config.trust, &config.directory).unwrap()
}

/// The configured policy, refusing inconsistent X-MSS-* headers so that they are checked too.
fn policy() -> DocumentPolicy {
    DocumentPolicy {
        refuse_inconsistent_mss_headers: true,
        ..gateway_config().documents
    }
}

fn source() -> SourceMessage {
    SourceMessage {
        queue_id: "SENDTEST00000001".to_owned(),
        message_id: None,
    }
}

fn signer() -> Signer {
    Signer::load(
        &certs("smime/sign-hopital-a.pem"),
        &certs("smime/sign-hopital-a.key"),
    )
    .unwrap()
}

fn composition(content: Content, encrypt: bool) -> Compose {
    Compose {
        from: FROM.to_owned(),
        to: vec![TO.to_owned()],
        subject: None,
        body: None,
        content,
        notify: true,
        signer: Some(signer()),
        encrypt_to: if encrypt {
            load_certificates(&certs("smime/gateway-conf.pem")).unwrap()
        } else {
            Vec::new()
        },
        source_id: None,
        date: None,
        message_id: None,
    }
}

/// Verifies and extracts like the gateway; returns the verified message and the INS found.
fn accept(message: &[u8]) -> (VerifiedMessage, Vec<String>, gateway::documents::Extraction) {
    let verified = verifier().verify(message, None).unwrap();
    let extraction = extract(&verified.inner, source(), &policy()).unwrap();
    assert!(extraction.warnings.is_empty(), "{:?}", extraction.warnings);
    let ins = extraction
        .requests
        .iter()
        .map(|request| request.patient.matricule.clone())
        .collect();
    (verified, ins, extraction)
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = &message[..message.find("\r\n\r\n").unwrap_or(message.len())];
    head.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

#[test]
fn each_fixture_signed_and_signed_then_encrypted_is_accepted_with_its_ins() {
    let cases = [
        ("lettre-de-liaison.xml", LETTER_INS, "11490-0"),
        ("cr-biologie.xml", LAB_INS, "11502-2"),
    ];
    for (name, ins, type_code) in cases {
        for encrypt in [false, true] {
            let content = Content::Xdm {
                cda: vec![file(name)],
                pdf: Vec::new(),
            };
            let message = compose::build(&composition(content, encrypt)).unwrap();
            let (verified, found, extraction) = accept(&message);
            assert_eq!(verified.encrypted, encrypt, "{name}");
            assert_eq!(found, vec![ins.to_owned()], "{name} encrypted={encrypt}");
            assert_eq!(extraction.requests[0].entry.type_code.code, type_code);
            let text = String::from_utf8(message).unwrap();
            assert_eq!(header(&text, "X-MSS-CODECDA"), Some(type_code));
            assert_eq!(header(&text, "X-MSS-INS"), Some("O"));
            assert_eq!(
                header(&text, "Disposition-Notification-To"),
                Some("<secretariat@hopital-a.mssante.test>")
            );
            if encrypt {
                assert!(text.contains("application/pkcs7-mime; smime-type=enveloped-data"));
                assert!(
                    !text.contains("IHE_XDM"),
                    "the package must not travel in clear"
                );
            }
        }
    }
}

#[test]
fn letter_with_its_pdf_deposits_the_cda_only() {
    let content = Content::Xdm {
        cda: vec![file("lettre-de-liaison.xml")],
        pdf: vec![file("lettre-de-liaison.pdf")],
    };
    let message = compose::build(&composition(content, false)).unwrap();
    let (_, found, extraction) = accept(&message);
    assert_eq!(found, vec![LETTER_INS.to_owned()]);
    let request = &extraction.requests[0];
    assert_eq!(
        request.entry.format_code.code,
        "urn:asip:ci-sis:ldl-ses:2017"
    );
    assert_eq!(request.patient.traits.birth_name, "FICTIF-DUPONT");
    // The PDF travels inside the package (an entry for the same patient) and beside it.
    let reasons: Vec<&NotDepositedReason> = extraction
        .not_deposited
        .iter()
        .map(|file| &file.reason)
        .collect();
    assert_eq!(reasons.len(), 2, "{:?}", extraction.not_deposited);
    assert!(reasons.iter().any(|reason| matches!(reason, NotDepositedReason::NotCda { mime_type } if mime_type == "application/pdf")));
    assert!(reasons.contains(&&NotDepositedReason::PdfWithoutMetadata));
}

#[test]
fn metadata_has_a_submission_set_entries_and_has_member_associations() {
    let package = xdm::build(
        &[file("lettre-de-liaison.xml")],
        &[file("lettre-de-liaison.pdf")],
        "1.2.250.1.999.42",
        std::time::SystemTime::now(),
    )
    .unwrap();
    let metadata = &package.metadata;
    assert_eq!(metadata.matches("<rim:ExtrinsicObject ").count(), 2);
    assert_eq!(metadata.matches("AssociationType:HasMember").count(), 2);
    assert!(metadata.contains(&format!(
        "value=\"{LETTER_INS}^^^&amp;1.2.250.1.213.1.4.10&amp;ISO^NH\""
    )));
    let cda = std::fs::read(fixture("lettre-de-liaison.xml")).unwrap();
    assert!(metadata.contains(&hex::encode(openssl::sha::sha1(&cda))));
    assert!(metadata.contains(&format!("<rim:Value>{}</rim:Value>", cda.len())));
    // The gateway's reader accepts it: hashes, sizes and URIs resolve.
    let read =
        gateway::documents::xdm::read_package(&package.zip, "IHE_XDM.ZIP", &policy()).unwrap();
    assert_eq!(read.subsets.len(), 1);
    assert_eq!(read.subsets[0].documents.len(), 2);
    assert_eq!(read.subsets[0].documents[0].bytes, cda);
}

#[test]
fn documents_of_two_patients_are_refused_before_sending() {
    let content = Content::Xdm {
        cda: vec![file("lettre-de-liaison.xml"), file("cr-biologie.xml")],
        pdf: Vec::new(),
    };
    let error = compose::build(&composition(content, false)).unwrap_err();
    assert!(
        matches!(&error, SendError::SeveralPatients { first, second } if first == "lettre-de-liaison.xml" && second == "cr-biologie.xml"),
        "{error}"
    );
}

#[test]
fn a_cda_with_a_bad_ins_key_is_refused_before_sending() {
    let text = std::fs::read_to_string(fixture("cr-biologie.xml")).unwrap();
    let broken = text.replace(LAB_INS, "292081305501207");
    let content = Content::Xdm {
        cda: vec![NamedFile {
            name: "broken.xml".to_owned(),
            bytes: broken.into_bytes(),
        }],
        pdf: Vec::new(),
    };
    let error = compose::build(&composition(content, false)).unwrap_err();
    assert!(
        matches!(&error, SendError::Patient { document, .. } if document == "broken.xml"),
        "{error}"
    );
    assert!(
        !error.to_string().contains("292081305501207"),
        "no matricule in errors"
    );
}

#[test]
fn a_byte_changed_after_signing_fails_verification() {
    let content = Content::Xdm {
        cda: vec![file("cr-biologie.xml")],
        pdf: Vec::new(),
    };
    let message = String::from_utf8(compose::build(&composition(content, false)).unwrap()).unwrap();
    let tampered = message.replacen(
        "This is a multi-part message",
        "This is a multi-part messagE",
        1,
    );
    assert_ne!(tampered, message);
    assert!(matches!(
        verifier().verify(tampered.as_bytes(), None),
        Err(SmimeError::BadSignature { .. })
    ));
}

#[test]
fn bare_attachments_are_sent_as_given() {
    let content =
        Content::Attachments(vec![file("cr-biologie.xml"), file("lettre-de-liaison.pdf")]);
    let message = compose::build(&composition(content, false)).unwrap();
    let (_, found, extraction) = accept(&message);
    assert_eq!(found, vec![LAB_INS.to_owned()]);
    assert_eq!(extraction.not_deposited.len(), 1);
    let text = String::from_utf8(message).unwrap();
    assert_eq!(
        header(&text, "X-MSS-CODECDA"),
        None,
        "only for CDA inside IHE_XDM"
    );
}

// --- through the binary ---

fn base_args(output: &Path) -> Vec<String> {
    [
        "send",
        "--output",
        &output.display().to_string(),
        "--from",
        FROM,
        "--to",
        TO,
        "--sign-cert",
        &certs("smime/sign-hopital-a.pem").display().to_string(),
        "--sign-key",
        &certs("smime/sign-hopital-a.key").display().to_string(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn run(args: &[String]) -> (Option<i32>, String, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, stdout, stderr) = run_cli(&args, None);
    (status.code(), stdout, stderr)
}

#[test]
fn send_output_writes_a_message_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("letter.eml");
    let mut args = base_args(&output);
    args.extend([
        "--encrypt-to".to_owned(),
        certs("smime/gateway-conf.pem").display().to_string(),
        "--cda".to_owned(),
        fixture("lettre-de-liaison.xml").display().to_string(),
        "--pdf".to_owned(),
        fixture("lettre-de-liaison.pdf").display().to_string(),
        "--subject".to_owned(),
        "Lettre de liaison — test".to_owned(),
    ]);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("written "), "{stdout}");
    let message = std::fs::read(&output).unwrap();
    let (verified, found, _) = accept(&message);
    assert!(verified.encrypted);
    assert_eq!(found, vec![LETTER_INS.to_owned()]);
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    assert_eq!(parsed.subject(), Some("Lettre de liaison — test"));
}

#[test]
fn a_bad_sign_key_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("never.eml");
    let bad_key = dir.path().join("not-a-key.pem");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut args = base_args(&output);
    let at = args.iter().position(|arg| arg == "--sign-key").unwrap();
    args[at + 1] = bad_key.display().to_string();
    args.extend([
        "--cda".to_owned(),
        fixture("cr-biologie.xml").display().to_string(),
    ]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(&bad_key.display().to_string()), "{stderr}");
    assert!(!output.exists());
    // A key of another certificate is named as well.
    args[at + 1] = certs("smime/sign-labo-b.key").display().to_string();
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("sign-labo-b.key") && stderr.contains("does not match"),
        "{stderr}"
    );
}

// --- against a real smtp-in listener ---

/// Records what reached the spool and answers a fixed verdict.
struct Recording {
    verdict: Verdict,
    messages: Mutex<Vec<(String, Vec<u8>)>>,
}

impl MessageHandler for Recording {
    async fn check(&self, message: &SpooledMessage) -> Verdict {
        let body = message.read_body().await.unwrap_or_default();
        self.messages
            .lock()
            .unwrap()
            .push((message.queue_id.to_string(), body));
        self.verdict.clone()
    }
}

/// An smtp-in listener with the gateway's certificate, requiring a client certificate.
struct Server {
    /// Kept alive: the listener runs on it.
    _runtime: tokio::runtime::Runtime,
    address: std::net::SocketAddr,
    handler: Arc<Recording>,
    shutdown: Shutdown,
    _spool: tempfile::TempDir,
}

impl Server {
    fn start(mode: ListenerMode, verdict: Verdict) -> Server {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let tls = server_config(&TlsSettings {
            certificate_chain: certs("tls/gateway.pem"),
            private_key: certs("tls/gateway.key"),
            client_ca_bundle: Some(certs("ca/bundle.pem")),
            crl_files: vec![certs("crl/org.crl.pem"), certs("crl/root.crl.pem")],
            require_client_certificate: true,
        })
        .unwrap();
        let listener = Listener::bind(ListenerConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            mode,
            hostname: "localhost".to_owned(),
            tls,
            require_client_certificate: true,
            limits: Limits::default(),
            whitelist: None,
        })
        .unwrap();
        let address = listener.local_addr().unwrap();
        let spool_dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(spool_dir.path()).unwrap();
        let handler = Arc::new(Recording {
            verdict,
            messages: Mutex::new(Vec::new()),
        });
        let shutdown = Shutdown::new();
        runtime.spawn(listener.serve(spool, handler.clone(), shutdown.clone()));
        Server {
            _runtime: runtime,
            address,
            handler,
            shutdown,
            _spool: spool_dir,
        }
    }

    fn messages(&self) -> Vec<(String, Vec<u8>)> {
        self.handler.messages.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.force();
    }
}

fn send_args(server: &Server, implicit: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "send",
        "--server",
        &server.address.to_string(),
        "--server-name",
        "localhost",
        "--tls-cert",
        &certs("tls/hopital-a.pem").display().to_string(),
        "--tls-key",
        &certs("tls/hopital-a.key").display().to_string(),
        "--ca",
        &certs("ca/bundle.pem").display().to_string(),
        "--from",
        FROM,
        "--to",
        TO,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    if implicit {
        args.push("--implicit-tls".to_owned());
    }
    args
}

fn queued_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("queued "))
        .unwrap_or_else(|| panic!("no `queued <id>` in {stdout:?}"))
        .to_owned()
}

#[test]
fn sending_over_starttls_spools_exactly_the_composed_bytes() {
    let server = Server::start(ListenerMode::StartTls, Verdict::Accept);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("lab.eml");
    let mut compose_args = base_args(&output);
    compose_args.extend([
        "--cda".to_owned(),
        fixture("cr-biologie.xml").display().to_string(),
    ]);
    let (code, _, stderr) = run(&compose_args);
    assert_eq!(code, Some(0), "{stderr}");
    let composed = std::fs::read(&output).unwrap();

    let mut args = send_args(&server, false);
    args.extend(["--message".to_owned(), output.display().to_string()]);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let id = queued_id(&stdout);
    let messages = server.messages();
    let (spooled_id, spooled) = messages.iter().find(|(queued, _)| *queued == id).unwrap();
    assert_eq!(spooled_id, &id);
    // The listener prepends its Received: header; everything after it is ours, unchanged.
    assert!(spooled.starts_with(b"Received: "));
    let received_end = spooled.windows(2).position(|pair| pair == b"\nF").unwrap() + 1;
    // Not assert_eq: a 10 KB byte dump would hide the point.
    assert!(
        spooled[received_end..] == composed[..],
        "spooled bytes differ from the composed message"
    );
    let (_, found, _) = accept(spooled);
    assert_eq!(found, vec![LAB_INS.to_owned()]);
}

#[test]
fn composing_and_sending_over_implicit_tls_in_one_command() {
    let server = Server::start(ListenerMode::Implicit, Verdict::Accept);
    let mut args = send_args(&server, true);
    args.extend(
        [
            "--sign-cert",
            &certs("smime/sign-hopital-a.pem").display().to_string(),
            "--sign-key",
            &certs("smime/sign-hopital-a.key").display().to_string(),
            "--encrypt-to",
            &certs("smime/gateway-conf.pem").display().to_string(),
            "--cda",
            &fixture("lettre-de-liaison.xml").display().to_string(),
            "--pdf",
            &fixture("lettre-de-liaison.pdf").display().to_string(),
            "--notify",
        ]
        .iter()
        .map(ToString::to_string),
    );
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    let id = queued_id(&stdout);
    let messages = server.messages();
    let (_, spooled) = messages.iter().find(|(queued, _)| *queued == id).unwrap();
    let (verified, found, _) = accept(spooled);
    assert!(verified.encrypted);
    assert_eq!(found, vec![LETTER_INS.to_owned()]);
}

#[test]
fn a_refusing_server_exits_1_and_prints_its_reply() {
    let reply = Reply::new(
        554,
        EnhancedCode::new(5, 7, 7),
        "signature does not cover the headers",
    );
    let server = Server::start(ListenerMode::StartTls, Verdict::Reject(reply));
    let mut args = send_args(&server, false);
    args.extend(
        [
            "--sign-cert",
            &certs("smime/sign-hopital-a.pem").display().to_string(),
            "--sign-key",
            &certs("smime/sign-hopital-a.key").display().to_string(),
            "--cda",
            &fixture("cr-biologie.xml").display().to_string(),
        ]
        .iter()
        .map(ToString::to_string),
    );
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("queued"), "{stdout}");
    assert!(
        stderr.contains("554 5.7.7 signature does not cover the headers"),
        "{stderr}"
    );
    assert_eq!(
        server.messages().len(),
        1,
        "the message reached end of DATA"
    );
}

#[test]
fn a_server_certificate_for_another_name_is_not_trusted() {
    let server = Server::start(ListenerMode::StartTls, Verdict::Accept);
    let mut args = send_args(&server, false);
    let at = args.iter().position(|arg| arg == "--server-name").unwrap();
    args[at + 1] = "gateway.other.test".to_owned();
    args.extend([
        "--no-sign".to_owned(),
        "--attach".to_owned(),
        fixture("lettre-de-liaison.pdf").display().to_string(),
    ]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(server.messages().is_empty());
}

#[test]
fn with_crls_the_server_chain_is_checked_for_revocation_and_fails_closed() {
    let server = Server::start(ListenerMode::StartTls, Verdict::Accept);
    let pdf = fixture("lettre-de-liaison.pdf").display().to_string();
    let org_crl = certs("crl/org.crl.pem").display().to_string();
    let root_crl = certs("crl/root.crl.pem").display().to_string();
    let with = |extra: &[&str]| {
        let mut args = send_args(&server, false);
        args.extend(
            ["--no-sign", "--attach", &pdf]
                .iter()
                .map(ToString::to_string),
        );
        args.extend(extra.iter().map(ToString::to_string));
        run(&args)
    };
    // A CRL for every CA of the chain: the server is not revoked, the message goes.
    let (code, stdout, stderr) = with(&["--crl", &org_crl, "--crl", &root_crl]);
    assert_eq!(code, Some(0), "{stderr}");
    queued_id(&stdout);
    assert_eq!(server.messages().len(), 1);
    // No CRL of the server certificate's issuer: status unknown, nothing is sent.
    let (code, _, stderr) = with(&["--crl", &root_crl]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("revocation"), "{stderr}");
    assert_eq!(server.messages().len(), 1);
    // A file that holds no CRL is named.
    let not_a_crl = certs("ca/root.pem").display().to_string();
    let (code, _, stderr) = with(&["--crl", &not_a_crl]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("root.pem"), "{stderr}");
}
