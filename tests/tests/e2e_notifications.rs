//! Acknowledgements through the real gateway process: an MDN (RFC 8098, ANS format) when the
//! original asks for one and its deposit is final, none when it does not; a DSN (RFC 3464) when
//! a next hop refuses a recipient for good; and a document masked from the patient
//! (`INVISIBLE_PATIENT`) withheld from a patient mailbox, still deposited, the sender told by
//! a DSN. Notifications come back to the sender's mailbox (hopital-a, a Maildir of the "*"
//! route), and are read with a MIME parser.

use anyhow::{Context, bail, ensure};
use gateway_tests::e2e::checks::{
    Mailbox, SETTLE, audit_verifies, copies_in, deposited_once, relayed_to, spool_drained,
};
use gateway_tests::e2e::message::{
    Clinical, Mail, SENDER, lab_result_cda, masked_from_patient_xdm,
};
use gateway_tests::e2e::sink::SinkMode;
use gateway_tests::e2e::{Outcome, Patient, TestEnv, TestEnvBuilder, poll};
use mail_parser::{MessageParser, MimeHeaders};

/// The sender's domain: its mailbox gets the notifications.
const SENDER_DOMAIN: &str = "hopital-a.mssante.test";
/// A professional domain delivered to a Maildir.
const MAILDIR: &str = "clinique-d.mssante.test";
/// A domain whose next hop refuses every recipient with `550 5.1.1`.
const REFUSING: &str = "cabinet-ferme.mssante.test";
/// The shipped `[relay] patient_domains`.
const PATIENT_DOMAIN: &str = "patient.mssante.fr";

/// One notification found in the sender's mailbox, read with mail-parser.
#[derive(Debug)]
struct Report {
    /// The `report-type` of its `multipart/report`.
    report_type: String,
    /// `type/subtype` of each part of the report, in order.
    part_types: Vec<String>,
    /// The decoded body of each part, in order.
    part_bodies: Vec<Vec<u8>>,
    /// The Message-ID of the `message/rfc822` part, if there is one.
    enclosed_message_id: Option<String>,
}

impl Report {
    /// The machine-readable part (`message/disposition-notification` or
    /// `message/delivery-status`) as text.
    fn fields(&self) -> String {
        self.part_bodies
            .get(1)
            .map(|body| String::from_utf8_lossy(body).into_owned())
            .unwrap_or_default()
    }
}

/// Parses `raw` as a `multipart/report`; `None` for any other message.
fn report(raw: &[u8]) -> Option<Report> {
    let message = MessageParser::new().parse(raw)?;
    let root = message.root_part();
    let content_type = root.content_type()?;
    if !content_type.ctype().eq_ignore_ascii_case("multipart")
        || !content_type
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        return None;
    }
    let report_type = content_type.attribute("report-type")?.to_owned();
    let mut part_types = Vec::new();
    let mut part_bodies = Vec::new();
    let mut enclosed_message_id = None;
    for id in root.sub_parts()? {
        let part = message.part(*id)?;
        let mime = part
            .content_type()
            .map(|ct| {
                format!(
                    "{}/{}",
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or_default().to_ascii_lowercase()
                )
            })
            .unwrap_or_else(|| "text/plain".to_owned());
        if let Some(enclosed) = part.message() {
            enclosed_message_id = enclosed.message_id().map(str::to_owned);
        }
        part_types.push(mime);
        part_bodies.push(part.contents().to_vec());
    }
    Some(Report {
        report_type,
        part_types,
        part_bodies,
        enclosed_message_id,
    })
}

/// The reports of `report_type` in the sender's mailbox.
fn reports_to_sender(env: &TestEnv, report_type: &str) -> anyhow::Result<Vec<Report>> {
    Ok(env
        .maildir_messages(SENDER_DOMAIN)?
        .iter()
        .filter_map(|raw| report(raw))
        .filter(|report| report.report_type.eq_ignore_ascii_case(report_type))
        .collect())
}

/// The lines of `gateway audit trace <queue_id>`.
fn trace_lines(env: &TestEnv, queue_id: &str) -> anyhow::Result<Vec<String>> {
    let output = env.audit(&["trace", queue_id])?;
    ensure!(
        output.code == 0,
        "audit trace {queue_id} exited {}: {}{}",
        output.code,
        output.stdout,
        output.stderr
    );
    Ok(output.stdout.lines().map(str::to_owned).collect())
}

/// The event kind of a trace line (third column).
fn kind_of(line: &str) -> &str {
    line.split_whitespace().nth(2).unwrap_or_default()
}

/// Waits until the trace of `queue_id` records a delivered notification, then returns it.
async fn traced_until_notification_sent(
    env: &TestEnv,
    queue_id: &str,
) -> anyhow::Result<Vec<String>> {
    poll(
        &format!("notification_sent in the trace of {queue_id}"),
        SETTLE,
        || async {
            let lines = trace_lines(env, queue_id)?;
            Ok(lines
                .iter()
                .any(|line| kind_of(line) == "notification_sent")
                .then_some(lines))
        },
    )
    .await
    .with_context(|| format!("gateway log:\n{}", env.gateway_log()))
}

/// Sends `mail` and requires `250 2.0.0 <queue-id> queued`.
async fn queued(env: &TestEnv, mail: &Mail) -> anyhow::Result<String> {
    match env.send(mail).await? {
        Outcome::Queued { queue_id } => Ok(queue_id),
        other => bail!("expected 250 2.0.0 <id> queued, got {other:?}"),
    }
}

/// A lab result for patient `n`, sent to a professional Maildir.
fn lab_result_mail(n: u16, message_id: &str) -> (Clinical, Mail) {
    let clinical = lab_result_cda(&Patient::synthetic(n), u32::from(n));
    let to = format!("secretariat@{MAILDIR}");
    let mail = Mail::new(&[to.as_str()], message_id, clinical.attachments.clone());
    (clinical, mail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdn_processed_reaches_the_sender_once_the_deposit_is_final() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let message_id = "mdn-301@hopital-a.mssante.test";
    let (clinical, mail) = lab_result_mail(301, message_id);
    let mail = mail.asking_for_mdn();
    let queue_id = queued(&env, &mail).await?;

    deposited_once(&env, &clinical).await?;
    relayed_to(&env, Mailbox::Maildir(MAILDIR), message_id).await?;
    let lines = traced_until_notification_sent(&env, &queue_id).await?;
    spool_drained(&env).await?;

    // The ledger ends with the notification: queued for the MDN, then sent.
    let kinds: Vec<&str> = lines.iter().map(|line| kind_of(line)).collect();
    ensure!(
        kinds.ends_with(&["queued", "notification_sent"]),
        "the trace of {queue_id} does not end with queued, notification_sent: {lines:#?}"
    );
    let notice = &lines[lines.len() - 2];
    ensure!(
        notice.contains("notification mdn") && notice.contains(SENDER),
        "the last queued entry is not the MDN to {SENDER}: {notice}"
    );
    for step in ["deposited", "relayed"] {
        ensure!(kinds.contains(&step), "no {step} in {lines:#?}");
    }

    let mdns = reports_to_sender(&env, "disposition-notification")?;
    ensure!(
        mdns.len() == 1,
        "expected one MDN in the sender's mailbox: {mdns:#?}"
    );
    let mdn = &mdns[0];
    assert_eq!(
        mdn.part_types,
        [
            "text/plain",
            "message/disposition-notification",
            "message/rfc822"
        ],
        "{mdn:#?}"
    );
    let fields = mdn.fields();
    assert!(
        fields
            .lines()
            .any(|l| l.trim_end()
                == "Disposition: automatic-action/MDN-sent-automatically; processed"),
        "{fields}"
    );
    assert!(
        fields
            .lines()
            .any(|l| l.trim_end() == format!("Original-Message-ID: <{message_id}>")),
        "{fields}"
    );
    assert_eq!(mdn.enclosed_message_id.as_deref(), Some(message_id));
    // Nothing else was sent to the sender (no DSN, no error mail).
    assert_eq!(env.maildir_messages(SENDER_DOMAIN)?.len(), 1);
    audit_verifies(&env)?;
    env.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_mdn_when_the_original_does_not_ask_for_one() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let message_id = "nomdn-302@hopital-a.mssante.test";
    let (clinical, mail) = lab_result_mail(302, message_id);
    let queue_id = queued(&env, &mail).await?;

    deposited_once(&env, &clinical).await?;
    relayed_to(&env, Mailbox::Maildir(MAILDIR), message_id).await?;
    // Notifications are queued (and recorded) before the spool file is removed: once the spool
    // is empty, whatever will ever be sent about this message is in the ledger.
    spool_drained(&env).await?;
    let lines = trace_lines(&env, &queue_id)?;
    ensure!(
        lines.iter().any(|line| kind_of(line) == "deposited"),
        "no deposited entry: {lines:#?}"
    );
    ensure!(
        !lines
            .iter()
            .any(|line| line.contains("notification ") || kind_of(line) == "notification_sent"),
        "a notification was queued for a message that asked for none: {lines:#?}"
    );
    let to_sender = env.maildir_messages(SENDER_DOMAIN)?;
    ensure!(
        to_sender.is_empty(),
        "{} message(s) reached the sender",
        to_sender.len()
    );
    env.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsn_reaches_the_sender_when_the_next_hop_refuses_a_recipient() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new()
        .smtp_domain(REFUSING, SinkMode::unknown_user())
        .start()
        .await?;
    let message_id = "dsn-303@hopital-a.mssante.test";
    let clinical = lab_result_cda(&Patient::synthetic(303), 303);
    let refused = format!("dr.absent@{REFUSING}");
    let accepted = format!("secretariat@{MAILDIR}");
    let mail = Mail::new(
        &[refused.as_str(), accepted.as_str()],
        message_id,
        clinical.attachments.clone(),
    );
    let queue_id = queued(&env, &mail).await?;

    deposited_once(&env, &clinical).await?;
    relayed_to(&env, Mailbox::Maildir(MAILDIR), message_id).await?;
    let lines = traced_until_notification_sent(&env, &queue_id).await?;
    spool_drained(&env).await?;

    let dead: Vec<&String> = lines
        .iter()
        .filter(|line| kind_of(line) == "dead_lettered")
        .collect();
    ensure!(
        dead.len() == 1 && dead[0].contains(&format!("relay domain={REFUSING}")),
        "expected one dead_lettered entry for {REFUSING}: {lines:#?}"
    );
    ensure!(
        dead[0].contains("550"),
        "the dead letter does not quote the 550: {}",
        dead[0]
    );
    let kinds: Vec<&str> = lines.iter().map(|line| kind_of(line)).collect();
    ensure!(kinds.contains(&"deposited"), "no deposited: {lines:#?}");
    ensure!(
        lines
            .iter()
            .any(|line| kind_of(line) == "relayed" && line.contains(MAILDIR)),
        "no relayed entry for {MAILDIR}: {lines:#?}"
    );
    ensure!(
        lines
            .iter()
            .any(|line| kind_of(line) == "queued" && line.contains("notification dsn")),
        "no queued DSN: {lines:#?}"
    );
    assert_eq!(
        copies_in(&env, Mailbox::Smtp(REFUSING), message_id).await?,
        0,
        "the refusing sink kept the message"
    );

    let dsns = reports_to_sender(&env, "delivery-status")?;
    ensure!(
        dsns.len() == 1,
        "expected one DSN in the sender's mailbox: {dsns:#?}"
    );
    let dsn = &dsns[0];
    assert_eq!(dsn.part_types.len(), 3, "{dsn:#?}");
    assert_eq!(dsn.part_types[1], "message/delivery-status", "{dsn:#?}");
    let blocks = recipient_blocks(&dsn.fields());
    assert_eq!(blocks.len(), 1, "one per-recipient block: {blocks:#?}");
    let block = &blocks[0];
    assert_eq!(
        field(block, "Final-Recipient").as_deref(),
        Some(format!("rfc822; {refused}").as_str())
    );
    assert_eq!(field(block, "Action").as_deref(), Some("failed"));
    assert_eq!(field(block, "Status").as_deref(), Some("5.1.1"));
    assert!(
        !dsn.fields().contains(&accepted),
        "the DSN names the delivered recipient: {}",
        dsn.fields()
    );
    assert!(
        reports_to_sender(&env, "disposition-notification")?.is_empty(),
        "an MDN was sent although none was asked for"
    );
    audit_verifies(&env)?;
    env.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_masked_from_the_patient_is_withheld_from_the_patient_mailbox()
-> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let message_id = "masked-304@hopital-a.mssante.test";
    let patient = Patient::synthetic(304);
    let clinical = masked_from_patient_xdm(&patient, 304)?;
    let to_patient = format!("camille.testnom@{PATIENT_DOMAIN}");
    let to_clinic = format!("secretariat@{MAILDIR}");
    let mail = Mail::new(
        &[to_patient.as_str(), to_clinic.as_str()],
        message_id,
        clinical.attachments.clone(),
    );
    let queue_id = queued(&env, &mail).await?;

    // Deposited all the same (the DMP applies the masking), and relayed to the professional.
    deposited_once(&env, &clinical).await?;
    relayed_to(&env, Mailbox::Maildir(MAILDIR), message_id).await?;
    let lines = traced_until_notification_sent(&env, &queue_id).await?;
    spool_drained(&env).await?;

    let withheld: Vec<&String> = lines
        .iter()
        .filter(|line| {
            kind_of(line) == "dead_lettered"
                && line.contains(&format!("relay domain={PATIENT_DOMAIN}"))
        })
        .collect();
    ensure!(
        withheld.len() == 1,
        "expected one dead_lettered entry for {PATIENT_DOMAIN}: {lines:#?}"
    );
    ensure!(
        withheld[0].contains("withheld") && withheld[0].contains("INVISIBLE_PATIENT"),
        "the dead letter does not say why: {}",
        withheld[0]
    );
    ensure!(
        lines.iter().any(|line| kind_of(line) == "deposited"),
        "no deposited: {lines:#?}"
    );
    let in_patient_mailbox = env.maildir_messages(PATIENT_DOMAIN)?;
    ensure!(
        in_patient_mailbox.is_empty(),
        "{} message(s) reached the patient's mailbox",
        in_patient_mailbox.len()
    );

    let dsns = reports_to_sender(&env, "delivery-status")?;
    ensure!(
        dsns.len() == 1,
        "expected one DSN in the sender's mailbox: {dsns:#?}"
    );
    let blocks = recipient_blocks(&dsns[0].fields());
    assert_eq!(blocks.len(), 1, "one per-recipient block: {blocks:#?}");
    assert_eq!(
        field(&blocks[0], "Final-Recipient").as_deref(),
        Some(format!("rfc822; {to_patient}").as_str())
    );
    assert_eq!(field(&blocks[0], "Action").as_deref(), Some("failed"));
    // RFC 3463 X.7.1: delivery not authorised (a policy, not an address problem).
    assert_eq!(field(&blocks[0], "Status").as_deref(), Some("5.7.1"));
    audit_verifies(&env)?;
    env.finish().await
}

/// The per-recipient blocks of a `message/delivery-status` body (the blocks after the
/// per-message one, separated by blank lines), each as its lines.
fn recipient_blocks(fields: &str) -> Vec<Vec<String>> {
    let normalized = fields.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|block| {
            block
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with("final-recipient:"))
        })
        .collect()
}

/// The value of field `name` in a block (case-insensitive name, trimmed value).
fn field(block: &[String], name: &str) -> Option<String> {
    block.iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}
