//! The relay against real next hops: `smtp_in` listeners on loopback with real mutual TLS,
//! the relay worker over the in-memory queue, Maildir delivery, and DSN/MDN read back with
//! mail-parser.

mod relay_support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dmp_connector::queue::memory::MemoryQueue;
use dmp_connector::queue::{JobState, Queue as _};
use dmp_connector::retry::{Jitter, RetryPolicy};
use gateway::notify::{dsn, mdn};
use gateway::relay::{
    DeliveryFailure, RelayConfig, RelayContent, RelayEvent, RelayJob, RelayKind, RelayWorker,
    RelayWorkerConfig, Relayer, RouteConfig, RouteKind, TlsMode,
};
use mail_parser::{MessageParser, MimeHeaders as _};
use relay_support::{
    Answer, MemorySource, RecordingSink, Sink, closed_port, gateway_subject, relay_config,
    smtp_route, whitelist_for,
};

const FROM: &str = "secretariat@hopital-a.mssante.test";
const DOMAIN: &str = "cabinet-c.mssante.test";
const OTHER_DOMAIN: &str = "cabinet-d.mssante.test";

/// A message with a line starting with a dot (dot-stuffing must be undone) and a UTF-8 body.
fn message() -> Vec<u8> {
    format!(
        "From: <{FROM}>\r\nTo: <dr.martin@{DOMAIN}>\r\nSubject: XDM/1.0/DDM+CR biologie DUPONT Jean 19800101\r\nMessage-ID: <m1@hopital-a.mssante.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nBonjour,\r\n.ligne qui commence par un point\r\nR\u{e9}sultats joints.\r\n"
    )
    .into_bytes()
}

fn job(domain: &str, recipients: &[&str]) -> RelayJob {
    RelayJob {
        queue_id: "Q0001".into(),
        domain: domain.into(),
        mail_from: Some(FROM.into()),
        recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
        content: RelayContent::Spool,
        kind: RelayKind::Message,
    }
}

fn relayer(config: &RelayConfig, whitelist_dir: &std::path::Path) -> Relayer {
    let whitelist = whitelist_for(whitelist_dir, &[(DOMAIN, &gateway_subject())]);
    Relayer::new(
        config,
        Some(whitelist),
        "gateway.mssante.test",
        std::path::Path::new("/"),
    )
    .expect("relayer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_delivery_lands_in_the_sink_spool_with_the_exact_bytes() {
    let sink = Sink::start(
        relay_support::Identity::committed("gateway"),
        TlsMode::Starttls,
        Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(DOMAIN, sink.port, TlsMode::Starttls)]);
    let relayer = relayer(&config, dir.path());
    assert!(relayer.has_route(DOMAIN));
    assert!(!relayer.has_route(OTHER_DOMAIN));

    let recipient = format!("dr.martin@{DOMAIN}");
    let delivery = relayer
        .deliver(&job(DOMAIN, &[&recipient]), &message())
        .await
        .expect("delivered");
    assert_eq!(delivery.route, format!("smtp 127.0.0.1:{}", sink.port));
    assert!(delivery.detail.starts_with("250 "), "{}", delivery.detail);
    assert_eq!(
        delivery.peer_subject.as_deref(),
        Some(gateway_subject().as_str())
    );

    let received = sink.messages().await;
    assert_eq!(received.len(), 1);
    let (envelope, body) = &received[0];
    assert_eq!(envelope.mail_from.as_deref(), Some(FROM));
    assert_eq!(envelope.recipients, vec![recipient]);
    // The sink authenticated us by our client certificate.
    let peer = envelope.peer.as_ref().expect("client certificate");
    assert_eq!(peer.subject, gateway_subject());
    // The sink prepends its Received header; everything after it is our message, byte for byte.
    let original = message();
    assert!(
        body.starts_with(b"Received: "),
        "{}",
        String::from_utf8_lossy(body)
    );
    assert!(
        body.ends_with(&original),
        "{:?}\n---\n{:?}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&original)
    );
    let trace = &body[..body.len() - original.len()];
    assert!(!trace.windows(4).any(|w| w == b"\r\n\r\n"));
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_delivery_works_too() {
    let sink = Sink::start(
        relay_support::Identity::committed("gateway"),
        TlsMode::Implicit,
        Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(DOMAIN, sink.port, TlsMode::Implicit)]);
    let relayer = relayer(&config, dir.path());
    let recipient = format!("a@{DOMAIN}");
    relayer
        .deliver(&job(DOMAIN, &[&recipient]), &message())
        .await
        .expect("delivered");
    assert_eq!(sink.messages().await.len(), 1);
    sink.stop().await;
}

async fn refused_by_certificate(identity: relay_support::Identity) -> String {
    let sink = Sink::start(identity, TlsMode::Starttls, Answer::Accept).await;
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(DOMAIN, sink.port, TlsMode::Starttls)]);
    let relayer = relayer(&config, dir.path());
    let recipient = format!("a@{DOMAIN}");
    let failure = relayer
        .deliver(&job(DOMAIN, &[&recipient]), &message())
        .await
        .expect_err("refused next hop");
    assert!(sink.messages().await.is_empty());
    sink.stop().await;
    match failure {
        DeliveryFailure::Permanent { reason } => reason,
        other => panic!("expected permanent, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_next_hop_certificate_is_permanent() {
    // A self-signed serverAuth certificate for localhost, built here: only its issuer is wrong.
    let dir = tempfile::tempdir().unwrap();
    let identity = relay_support::self_signed(dir.path());
    let reason = refused_by_certificate(identity).await;
    assert!(reason.contains("UnknownIssuer"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rogue_next_hop_certificate_is_permanent() {
    // certs/tls/rogue chains to the rogue root and has no serverAuth EKU; webpki looks at the
    // EKU first, so that is the reason given.
    let reason = refused_by_certificate(relay_support::Identity::committed("rogue")).await;
    assert!(
        reason.contains("extended key usage for server authentication"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_unknown_for_a_ca_fails_closed() {
    // Without the root's CRL the status of the intermediate is unknown: the check after the
    // handshake (the one with CRLs) must refuse, although the handshake itself succeeded.
    let sink = Sink::start(
        relay_support::Identity::committed("gateway"),
        TlsMode::Starttls,
        Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = relay_config(vec![smtp_route(DOMAIN, sink.port, TlsMode::Starttls)]);
    config
        .crl_files
        .retain(|path| !path.ends_with("root.crl.pem"));
    let relayer = relayer(&config, dir.path());
    let recipient = format!("a@{DOMAIN}");
    let failure = relayer
        .deliver(&job(DOMAIN, &[&recipient]), &message())
        .await
        .expect_err("revocation unknown");
    assert!(
        matches!(&failure, DeliveryFailure::Permanent { reason }
            if reason.contains("next hop certificate refused")
                && reason.contains("UnknownRevocationStatus")),
        "{failure:?}"
    );
    assert!(sink.messages().await.is_empty());
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_server_name_is_permanent() {
    let sink = Sink::start(
        relay_support::Identity::committed("gateway"),
        TlsMode::Starttls,
        Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut route = smtp_route(DOMAIN, sink.port, TlsMode::Starttls);
    route.server_name = Some("mx.cabinet-c.mssante.test".into());
    let relayer = relayer(&relay_config(vec![route]), dir.path());
    let recipient = format!("a@{DOMAIN}");
    let failure = relayer
        .deliver(&job(DOMAIN, &[&recipient]), &message())
        .await
        .expect_err("name mismatch");
    assert!(
        matches!(&failure, DeliveryFailure::Permanent { reason } if reason.contains("not valid for name")),
        "{failure:?}"
    );
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_hop_not_in_the_liste_blanche_is_permanent_and_named() {
    let sink = Sink::start(
        relay_support::Identity::committed("gateway"),
        TlsMode::Starttls,
        Answer::Accept,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(OTHER_DOMAIN, sink.port, TlsMode::Starttls)]);
    // OTHER_DOMAIN is listed, but with another operator's DN.
    let hopital = relay_support::subject_of("tls/hopital-a.pem");
    let whitelist = whitelist_for(
        dir.path(),
        &[(DOMAIN, &gateway_subject()), (OTHER_DOMAIN, &hopital)],
    );
    let relayer = Relayer::new(
        &config,
        Some(whitelist),
        "gateway.mssante.test",
        std::path::Path::new("/"),
    )
    .unwrap();
    let recipient = format!("a@{OTHER_DOMAIN}");
    let failure = relayer
        .deliver(&job(OTHER_DOMAIN, &[&recipient]), &message())
        .await
        .expect_err("not whitelisted");
    match &failure {
        DeliveryFailure::Permanent { reason } => {
            assert!(reason.contains(&gateway_subject()), "{reason}");
            assert!(reason.contains("liste blanche"), "{reason}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert!(sink.messages().await.is_empty());
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(DOMAIN, closed_port(), TlsMode::Starttls)]);
    let relayer = relayer(&config, dir.path());
    let recipient = format!("a@{DOMAIN}");
    let failure = relayer
        .deliver(&job(DOMAIN, &[&recipient]), &message())
        .await
        .expect_err("closed port");
    assert!(
        matches!(failure, DeliveryFailure::Transient { .. }),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_answering_451_is_transient_and_550_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let recipient = format!("a@{DOMAIN}");
    for (answer, permanent) in [(Answer::Reject(451), false), (Answer::Reject(550), true)] {
        let sink = Sink::start(
            relay_support::Identity::committed("gateway"),
            TlsMode::Starttls,
            answer,
        )
        .await;
        let config = relay_config(vec![smtp_route(DOMAIN, sink.port, TlsMode::Starttls)]);
        let relayer = relayer(&config, dir.path());
        let failure = relayer
            .deliver(&job(DOMAIN, &[&recipient]), &message())
            .await
            .expect_err("refused");
        let code = if permanent { "550" } else { "451" };
        match (&failure, permanent) {
            (DeliveryFailure::Permanent { reason }, true)
            | (DeliveryFailure::Transient { reason }, false) => {
                assert!(reason.contains(code), "{reason}");
            }
            _ => panic!("{code}: wrong class {failure:?}"),
        }
        sink.stop().await;
    }
}

fn worker_config(horizon: Duration) -> RelayWorkerConfig {
    RelayWorkerConfig {
        concurrency: 2,
        lease_for: Duration::from_secs(60),
        poll: Duration::from_millis(20),
        policy: RetryPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(100),
            horizon,
            max_attempts: None,
            jitter: Jitter::None,
        },
        seed: Some(7),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_retries_a_transient_failure_then_delivers() {
    let sink = Sink::start(
        relay_support::Identity::committed("gateway"),
        TlsMode::Starttls,
        Answer::RejectFirst(451),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(DOMAIN, sink.port, TlsMode::Starttls)]);
    let relayer = Arc::new(relayer(&config, dir.path()));
    let queue = Arc::new(MemoryQueue::new());
    let recipient = format!("a@{DOMAIN}");
    let job = job(DOMAIN, &[&recipient]);
    queue.enqueue(job.to_new_job().unwrap()).await.unwrap();
    let source = Arc::new(MemorySource::with("Q0001", message()));
    let sink_events = Arc::new(RecordingSink::new(Arc::clone(&queue)));
    let worker = RelayWorker::new(
        Arc::clone(&queue),
        relayer,
        source,
        Arc::clone(&sink_events),
        worker_config(Duration::from_secs(600)),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));
    sink_events.wait_for(2).await;
    stop.send(true).unwrap();
    running.await.unwrap();

    let events = sink_events.events();
    assert_eq!(events.len(), 2, "{events:?}");
    match &events[0].0 {
        RelayEvent::Attempt {
            job: seen,
            attempt,
            error,
            ..
        } => {
            assert_eq!(seen, &job);
            assert_eq!(*attempt, 1);
            assert!(error.contains("451"), "{error}");
        }
        other => panic!("expected an attempt, got {other:?}"),
    }
    match &events[1].0 {
        RelayEvent::Delivered {
            attempts, delivery, ..
        } => {
            assert_eq!(*attempts, 2);
            assert!(delivery.detail.starts_with("250"));
        }
        other => panic!("expected delivered, got {other:?}"),
    }
    let key = job.idempotency_key();
    // Each outcome was recorded before the queue was told.
    assert!(!events[0].1.contains(&format!("retry {key}")));
    assert!(!events[1].1.contains(&format!("ack {key}")));
    let log = queue.log();
    assert!(
        log.contains(&format!("retry {key}")) && log.contains(&format!("ack {key}")),
        "{log:?}"
    );
    assert_eq!(sink.messages().await.len(), 1);
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_gives_up_past_the_horizon_and_records_before_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![smtp_route(DOMAIN, closed_port(), TlsMode::Starttls)]);
    let relayer = Arc::new(relayer(&config, dir.path()));
    let queue = Arc::new(MemoryQueue::new());
    let recipient = format!("a@{DOMAIN}");
    let job = job(DOMAIN, &[&recipient]);
    queue.enqueue(job.to_new_job().unwrap()).await.unwrap();
    let sink_events = Arc::new(RecordingSink::new(Arc::clone(&queue)));
    let worker = RelayWorker::new(
        Arc::clone(&queue),
        relayer,
        Arc::new(MemorySource::with("Q0001", message())),
        Arc::clone(&sink_events),
        // Any delay lands past a zero horizon: the first transient failure is the last.
        worker_config(Duration::ZERO),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));
    sink_events.wait_for(1).await;
    stop.send(true).unwrap();
    running.await.unwrap();

    let events = sink_events.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let key = job.idempotency_key();
    match &events[0].0 {
        RelayEvent::Failed {
            attempts,
            reason,
            job: seen,
        } => {
            assert_eq!(seen, &job);
            assert_eq!(*attempts, 1);
            assert!(reason.contains("HorizonReached"), "{reason}");
        }
        other => panic!("expected failed, got {other:?}"),
    }
    assert!(
        !events[0].1.contains(&format!("dead {key}")),
        "recorded after dead-letter"
    );
    assert!(queue.log().contains(&format!("dead {key}")));
    let dead = queue.list(JobState::Dead, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_leaves_the_lease_when_the_sink_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mailboxes");
    let config = relay_config(vec![maildir_route("*", &root)]);
    let relayer = Arc::new(Relayer::new(&config, None, "gw.test", dir.path()).unwrap());
    let queue = Arc::new(MemoryQueue::new());
    let recipient = format!("a@{DOMAIN}");
    queue
        .enqueue(job(DOMAIN, &[&recipient]).to_new_job().unwrap())
        .await
        .unwrap();
    let sink_events = Arc::new(RecordingSink::failing(Arc::clone(&queue)));
    let worker = RelayWorker::new(
        Arc::clone(&queue),
        relayer,
        Arc::new(MemorySource::with("Q0001", message())),
        Arc::clone(&sink_events),
        worker_config(Duration::from_secs(600)),
    );
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));
    sink_events.wait_for(1).await;
    stop.send(true).unwrap();
    running.await.unwrap();
    let counts = queue.counts().await.unwrap();
    assert_eq!(counts.leased, 1, "{counts:?}");
    let log = queue.log();
    assert!(
        !log.iter()
            .any(|entry| entry.starts_with("ack") || entry.starts_with("dead")),
        "{log:?}"
    );
}

fn maildir_route(domain: &str, root: &std::path::Path) -> RouteConfig {
    RouteConfig {
        domain: domain.into(),
        kind: RouteKind::Maildir,
        host: None,
        port: None,
        tls: None,
        server_name: None,
        maildir: Some(root.to_path_buf()),
    }
}

#[tokio::test]
async fn maildir_delivery_writes_one_file_in_new_and_refuses_traversal() {
    let dir = tempfile::tempdir().unwrap();
    let config = relay_config(vec![maildir_route("*", std::path::Path::new("mailboxes"))]);
    // No smtp route: no TLS material and no whitelist needed.
    let relayer = Relayer::new(&config, None, "gw.test", dir.path()).unwrap();
    let domain = "cabinet-e.mssante.test";
    let recipient = format!("Dr.Martin@{domain}");
    let job = job(domain, &[&recipient]);
    let delivery = relayer.deliver(&job, &message()).await.expect("delivered");
    assert_eq!(delivery.route, "maildir");
    // A replayed job finds its copy and writes no second one.
    relayer.deliver(&job, &message()).await.expect("replayed");
    let mailbox = dir.path().join("mailboxes").join(domain).join("dr.martin");
    let new: Vec<_> = std::fs::read_dir(mailbox.join("new")).unwrap().collect();
    assert_eq!(new.len(), 1);
    let path = new[0].as_ref().unwrap().path();
    assert_eq!(std::fs::read(&path).unwrap(), message());
    assert_eq!(std::fs::read_dir(mailbox.join("tmp")).unwrap().count(), 0);
    assert!(mailbox.join("cur").is_dir());

    let evil = format!("../x@{domain}");
    let failure = relayer
        .deliver(&self::job(domain, &[&evil]), &message())
        .await
        .expect_err("traversal");
    assert!(
        matches!(failure, DeliveryFailure::Permanent { .. }),
        "{failure:?}"
    );
    assert!(!dir.path().join("mailboxes").join("x").exists());
    assert!(
        !dir.path()
            .join("mailboxes")
            .join(domain)
            .join("..")
            .join("x")
            .exists()
    );
}

#[test]
fn dsn_parses_back_field_by_field() {
    let original = message();
    let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
    let recipient = format!("dr.martin@{DOMAIN}");
    let built = dsn::build(&dsn::DsnInput {
        hostname: "gateway.mssante.test",
        sender: FROM,
        queue_id: "Q0001",
        original: &original,
        arrival_date: at(1_796_536_909),
        date: at(1_796_540_509),
        recipients: &[dsn::DsnRecipient {
            address: recipient.clone(),
            action: dsn::DsnAction::Failed,
            status: dsn::status_of("permanent error (550): 5.7.1 refused", true),
            remote_mta: Some("127.0.0.1".into()),
            diagnostic: "550 5.7.1 refused".into(),
            last_attempt: at(1_796_540_500),
        }],
    });
    assert!(built.split(|&b| b == b'\n').all(|line| line.len() <= 998));
    let parsed = MessageParser::new().parse(&built).expect("DSN parses");
    let from = parsed
        .from()
        .and_then(|from| from.first())
        .and_then(|a| a.address());
    assert_eq!(from, Some("MAILER-DAEMON@gateway.mssante.test"));
    let to = parsed
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address());
    assert_eq!(to, Some(FROM));
    assert_eq!(
        parsed.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    let content_type = parsed.content_type().expect("content type");
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("report"));
    assert_eq!(
        content_type.attribute("report-type"),
        Some("delivery-status")
    );
    let children = parsed.parts[0].sub_parts().expect("multipart").to_vec();
    assert_eq!(children.len(), 3);
    let part = |index: usize| &parsed.parts[children[index] as usize];
    let kind = |index: usize| {
        let ct = part(index).content_type().expect("part type");
        format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
    };
    assert_eq!(kind(0), "text/plain");
    assert_eq!(kind(1), "message/delivery-status");
    assert_eq!(kind(2), "text/rfc822-headers");
    assert!(part(0).text_contents().unwrap().contains(&recipient));
    let status = String::from_utf8_lossy(part(1).contents())
        .replace("\r\n ", " ")
        .replace("\r\n", "\n");
    for line in [
        "Reporting-MTA: dns; gateway.mssante.test",
        "Arrival-Date: Sun, 06 Dec 2026 06:01:49 +0000",
        &format!("Final-Recipient: rfc822; {recipient}"),
        "Action: failed",
        "Status: 5.7.1",
        "Remote-MTA: dns; 127.0.0.1",
        "Diagnostic-Code: smtp; 550 5.7.1 refused",
        "Last-Attempt-Date: Sun, 06 Dec 2026 07:01:40 +0000",
    ] {
        assert!(
            status.lines().any(|l| l == line),
            "missing {line:?} in\n{status}"
        );
    }
    let headers = part(2).contents();
    let end = original.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    assert!(
        headers.starts_with(&original[..end]),
        "{}",
        String::from_utf8_lossy(headers)
    );
    assert!(!String::from_utf8_lossy(headers).contains("Bonjour"));
}

fn dnt_original() -> Vec<u8> {
    let mut original = format!("Disposition-Notification-To: <{FROM}>\r\n").into_bytes();
    original.extend_from_slice(&message());
    original
}

#[test]
fn mdn_success_and_error_parse_back_field_by_field() {
    let original = dnt_original();
    assert_eq!(
        mdn::wanted(&original, Some(FROM)),
        mdn::MdnDecision::Send { to: FROM.into() }
    );
    let recipient = format!("dr.martin@{DOMAIN}");
    let date = UNIX_EPOCH + Duration::from_secs(1_796_536_909);
    for error in [
        None,
        Some(mdn::MdnError {
            code: "902",
            label: "Identifiant de patient inconnu",
        }),
    ] {
        let built = mdn::build(&mdn::MdnInput {
            hostname: "gateway.mssante.test",
            reporting_domain: "gateway.mssante.test",
            original: &original,
            recipient: &recipient,
            error,
            date,
        });
        assert!(built.split(|&b| b == b'\n').all(|line| line.len() <= 998));
        let parsed = MessageParser::new().parse(&built).expect("MDN parses");
        let from = parsed
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address());
        assert_eq!(from, Some(recipient.as_str()));
        let to = parsed
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address());
        assert_eq!(to, Some(FROM));
        let subject = "XDM/1.0/DDM+CR biologie DUPONT Jean 19800101";
        let expected = match error {
            None => subject.to_owned(),
            Some(_) => format!("[KO Intégration système !][902] {subject}"),
        };
        assert_eq!(parsed.subject(), Some(expected.as_str()));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-replied")
        );
        assert_eq!(
            parsed.in_reply_to().as_text(),
            Some("m1@hopital-a.mssante.test")
        );
        assert_eq!(
            parsed.references().as_text(),
            Some("m1@hopital-a.mssante.test")
        );
        assert_eq!(parsed.date().map(|d| d.to_timestamp()), Some(1_796_536_909));
        let content_type = parsed.content_type().expect("content type");
        assert_eq!(content_type.ctype(), "multipart");
        assert_eq!(content_type.subtype(), Some("report"));
        assert_eq!(
            content_type.attribute("report-type"),
            Some("disposition-notification")
        );
        let children = parsed.parts[0].sub_parts().expect("multipart").to_vec();
        assert_eq!(children.len(), 3);
        let part = |index: usize| &parsed.parts[children[index] as usize];
        let kind = |index: usize| {
            let ct = part(index).content_type().expect("part type");
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
        };
        assert_eq!(kind(0), "text/plain");
        assert_eq!(kind(1), "message/disposition-notification");
        assert_eq!(kind(2), "message/rfc822");
        let human = part(0).text_contents().unwrap();
        assert!(human.contains(&recipient));
        // Unfolded: a folded line is CRLF followed by white space.
        let machine = String::from_utf8_lossy(part(1).contents())
            .replace("\r\n ", " ")
            .replace("\r\n", "\n");
        let disposition = match error {
            None => "Disposition: automatic-action/MDN-sent-automatically; processed".to_owned(),
            Some(_) => {
                assert!(human.contains("902") && human.contains("Identifiant de patient inconnu"));
                "Disposition: automatic-action/MDN-sent-automatically; processed/Error: 902^Identifiant de patient inconnu".to_owned()
            }
        };
        for line in [
            "Reporting-UA: gateway.mssante.test; MSSante gateway",
            &format!("Original-Recipient: rfc822; {recipient}"),
            &format!("Final-Recipient: rfc822; {recipient}"),
            "Original-Message-ID: <m1@hopital-a.mssante.test>",
            &disposition,
        ] {
            assert!(
                machine.lines().any(|l| l == line),
                "missing {line:?} in\n{machine}"
            );
        }
        let returned = part(2).message().expect("original as message/rfc822");
        assert_eq!(returned.message_id(), Some("m1@hopital-a.mssante.test"));
        assert_eq!(returned.raw_message(), original.as_slice());
        // An MDN about an MDN is never sent.
        assert_eq!(
            mdn::wanted(&built, Some(FROM)),
            mdn::MdnDecision::Skip(mdn::MdnSkip::NotRequested)
        );
    }
}

#[test]
fn mdn_is_not_wanted_for_reports_or_null_senders() {
    let original = dnt_original();
    assert_eq!(
        mdn::wanted(&original, None),
        mdn::MdnDecision::Skip(mdn::MdnSkip::NullSender)
    );
    let mut report = format!("Disposition-Notification-To: <{FROM}>\r\n").into_bytes();
    report.extend_from_slice(&dsn::build(&dsn::DsnInput {
        hostname: "gateway.mssante.test",
        sender: FROM,
        queue_id: "Q2",
        original: &message(),
        arrival_date: SystemTime::now(),
        date: SystemTime::now(),
        recipients: &[],
    }));
    assert_eq!(
        mdn::wanted(&report, Some(FROM)),
        mdn::MdnDecision::Skip(mdn::MdnSkip::IsReport)
    );
}
