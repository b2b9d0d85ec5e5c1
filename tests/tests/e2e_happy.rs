//! Happy paths through the real gateway process: accepted with `250 2.0.0 <id> queued`, the
//! CDA deposited once in dmp-sim for the right patient, the mail relayed to each recipient
//! domain, the ledger telling the story and verifying, the spool empty at the end.

use gateway_tests::e2e::checks::{
    Mailbox, audit_verifies, deposited_once, relayed_to, spool_drained, traced,
};
use gateway_tests::e2e::message::{
    Clinical, Mail, Protection, discharge_letter_xdm, lab_result_cda,
};
use gateway_tests::e2e::{Outcome, Patient, TestEnv, TestEnvBuilder};

const SINK: &str = "cabinet-c.mssante.test";
const MAILDIR: &str = "clinique-d.mssante.test";

/// Sends `clinical` to `mailboxes` and checks everything the contract promises.
async fn delivers(
    env: &TestEnv,
    clinical: &Clinical,
    protection: Protection,
    mailboxes: &[Mailbox<'_>],
    message_id: &str,
) -> anyhow::Result<()> {
    let recipients: Vec<String> = mailboxes
        .iter()
        .map(|mailbox| match mailbox {
            Mailbox::Smtp(domain) => format!("dr.test@{domain}"),
            Mailbox::Maildir(domain) => format!("secretariat@{domain}"),
        })
        .collect();
    let to: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let mail = Mail::new(&to, message_id, clinical.attachments.clone()).protected(protection);
    let outcome = env.send(&mail).await?;
    let Outcome::Queued { queue_id } = outcome else {
        anyhow::bail!("expected 250 2.0.0 <id> queued, got {outcome:?}");
    };

    let document = deposited_once(env, clinical).await?;
    assert_eq!(document.size, clinical.cda.len() as u64);
    assert!(!document.unique_id.is_empty());
    // Only this patient's document: the XDM's PDF rendering is not a CDA and is not deposited.
    let all = env.dmp.documents(&clinical.patient.cx()).await?;
    assert_eq!(all.len(), 1, "{all:?}");

    for mailbox in mailboxes {
        relayed_to(env, *mailbox, message_id).await?;
    }
    traced(env, &queue_id, mailboxes.len()).await?;
    spool_drained(env).await?;
    audit_verifies(env)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discharge_letter_in_xdm_with_pdf_is_deposited_and_relayed() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let clinical = discharge_letter_xdm(&Patient::synthetic(101), 101, 20_000)?;
    delivers(
        &env,
        &clinical,
        Protection::Signed("sign-hopital-a"),
        &[Mailbox::Smtp(SINK)],
        "ldl-101@hopital-a.mssante.test",
    )
    .await?;
    env.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_result_as_bare_cda_is_deposited_and_relayed() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let clinical = lab_result_cda(&Patient::synthetic(102), 102);
    delivers(
        &env,
        &clinical,
        Protection::Signed("sign-hopital-a"),
        &[Mailbox::Maildir(MAILDIR)],
        "bio-102@hopital-a.mssante.test",
    )
    .await?;
    env.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_then_encrypted_message_is_decrypted_deposited_and_relayed() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let clinical = discharge_letter_xdm(&Patient::synthetic(103), 103, 4_000)?;
    delivers(
        &env,
        &clinical,
        Protection::SignedThenEncrypted("sign-hopital-a"),
        &[Mailbox::Smtp(SINK)],
        "enc-103@hopital-a.mssante.test",
    )
    .await?;
    env.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_recipient_domains_get_one_copy_each_and_one_deposit() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let clinical = lab_result_cda(&Patient::synthetic(104), 104);
    delivers(
        &env,
        &clinical,
        Protection::Signed("sign-hopital-a"),
        &[Mailbox::Smtp(SINK), Mailbox::Maildir(MAILDIR)],
        "two-104@hopital-a.mssante.test",
    )
    .await?;
    env.finish().await
}

/// The multi-node configuration: RabbitMQ queues and the PostgreSQL ledger, used for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_backend_and_postgres_ledger_deliver_the_same_way() -> anyhow::Result<()> {
    let env = TestEnvBuilder::new()
        .multi_node("rabbitmq_backend")
        .start()
        .await?;
    let clinical = discharge_letter_xdm(&Patient::synthetic(105), 105, 20_000)?;
    delivers(
        &env,
        &clinical,
        Protection::Signed("sign-hopital-a"),
        &[Mailbox::Smtp(SINK), Mailbox::Maildir(MAILDIR)],
        "amqp-105@hopital-a.mssante.test",
    )
    .await?;
    env.finish().await
}
