//! The assertions every end-to-end test makes, each polled with a deadline: a document is in the
//! DMP exactly once, a message reached a mailbox, the ledger tells the story, the spool drained.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use dmp_connector::xds::query::FoundDocument;

use super::env::TestEnv;
use super::message::Clinical;
use super::poll::poll;

/// Longest wait for a deposit, a relay or a drained spool in a happy path.
pub const SETTLE: Duration = Duration::from_secs(30);

/// The documents of `clinical`'s patient whose hash is its CDA's.
pub async fn copies_in_dmp(
    env: &TestEnv,
    clinical: &Clinical,
) -> anyhow::Result<Vec<FoundDocument>> {
    let hash = clinical.sha1();
    Ok(env
        .dmp
        .documents(&clinical.patient.cx())
        .await?
        .into_iter()
        .filter(|document| document.hash_sha1 == hash)
        .collect())
}

/// Waits until the CDA of `clinical` is in the DMP, then requires exactly one copy.
pub async fn deposited_once(env: &TestEnv, clinical: &Clinical) -> anyhow::Result<FoundDocument> {
    let mut found = poll("the document in dmp-sim", SETTLE, || async {
        let copies = copies_in_dmp(env, clinical).await?;
        Ok((!copies.is_empty()).then_some(copies))
    })
    .await
    .with_context(|| format!("gateway log:\n{}", env.gateway_log()))?;
    ensure!(
        found.len() == 1,
        "document deposited {} times: {found:?}",
        found.len()
    );
    Ok(found.remove(0))
}

/// Whether `raw` carries `Message-ID: <message_id>`.
pub fn has_message_id(raw: &[u8], message_id: &str) -> bool {
    let needle = format!("Message-ID: <{message_id}>");
    raw.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Where a recipient domain is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailbox<'a> {
    /// The SMTP sink of this domain.
    Smtp(&'a str),
    /// The Maildir of this domain.
    Maildir(&'a str),
}

/// How many copies of the message `message_id` reached `mailbox`.
pub async fn copies_in(
    env: &TestEnv,
    mailbox: Mailbox<'_>,
    message_id: &str,
) -> anyhow::Result<usize> {
    let messages = match mailbox {
        Mailbox::Smtp(domain) => env.sink_messages(domain).await?,
        Mailbox::Maildir(domain) => env.maildir_messages(domain)?,
    };
    Ok(messages
        .iter()
        .filter(|raw| has_message_id(raw, message_id))
        .count())
}

/// Waits until `message_id` reached `mailbox`.
pub async fn relayed_to(
    env: &TestEnv,
    mailbox: Mailbox<'_>,
    message_id: &str,
) -> anyhow::Result<usize> {
    poll(&format!("{message_id} in {mailbox:?}"), SETTLE, || async {
        let count = copies_in(env, mailbox, message_id).await?;
        Ok((count > 0).then_some(count))
    })
    .await
    .with_context(|| format!("gateway log:\n{}", env.gateway_log()))
}

/// Waits until no accepted message is left in the spool.
pub async fn spool_drained(env: &TestEnv) -> anyhow::Result<()> {
    poll("an empty spool", SETTLE, || async {
        Ok((env.spool_pending()? == 0).then_some(()))
    })
    .await
    .with_context(|| format!("gateway log:\n{}", env.gateway_log()))
}

/// Waits until `gateway audit trace <queue_id>` lists `relays` relayed entries and a deposited
/// one, then checks the whole story: received, verified, documents_extracted, queued in that
/// order before the deposit, and no rejection or dead letter.
pub async fn traced(env: &TestEnv, queue_id: &str, relays: usize) -> anyhow::Result<Vec<String>> {
    let kinds = poll(&format!("the full trace of {queue_id}"), SETTLE, || async {
        let kinds = env.trace(queue_id)?;
        let relayed = kinds.iter().filter(|k| *k == "relayed").count();
        Ok((relayed >= relays && kinds.iter().any(|k| k == "deposited")).then_some(kinds))
    })
    .await
    .with_context(|| format!("gateway log:\n{}", env.gateway_log()))?;
    let position = |kind: &str| kinds.iter().position(|k| k == kind);
    let mut last = None;
    for step in [
        "received",
        "verified",
        "documents_extracted",
        "queued",
        "deposited",
    ] {
        let Some(at) = position(step) else {
            bail!("no {step} in the trace of {queue_id}: {kinds:?}");
        };
        ensure!(
            last.is_none_or(|before| at > before),
            "{step} out of order in the trace of {queue_id}: {kinds:?}"
        );
        last = Some(at);
    }
    ensure!(
        kinds.iter().filter(|k| *k == "relayed").count() == relays,
        "expected {relays} relayed entries for {queue_id}: {kinds:?}"
    );
    for bad in ["rejected", "dead_lettered"] {
        ensure!(
            position(bad).is_none(),
            "{bad} in the trace of {queue_id}: {kinds:?}"
        );
    }
    Ok(kinds)
}

/// `gateway audit verify` exits 0.
pub fn audit_verifies(env: &TestEnv) -> anyhow::Result<()> {
    let output = env.audit(&["verify"])?;
    ensure!(
        output.code == 0,
        "audit verify exited {}: {}{}",
        output.code,
        output.stdout,
        output.stderr
    );
    Ok(())
}
