//! The DMP is down when messages arrive: they are still accepted (the deposit is asynchronous),
//! deposits wait and retry, then drain once it is back, each document exactly once.

use std::time::Duration;

use gateway_tests::e2e::checks::{
    Mailbox, audit_verifies, deposited_once, relayed_to, spool_drained,
};
use gateway_tests::e2e::message::{Mail, lab_result_cda};
use gateway_tests::e2e::{Patient, TestEnvBuilder, poll};

/// Long enough to send the messages and see failed attempts, short for the suite.
const OUTAGE_SECS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_accepted_during_an_outage_are_deposited_once_when_it_ends() -> anyhow::Result<()>
{
    let env = TestEnvBuilder::new()
        .dmp_down_for(OUTAGE_SECS)
        .start()
        .await?;
    let mut sent = Vec::new();
    for n in 0..3u16 {
        let clinical = lab_result_cda(&Patient::synthetic(300 + n), 300 + u32::from(n));
        let message_id = format!("outage-{n}@hopital-a.mssante.test");
        let mail = Mail::new(
            &["secretariat@clinique-d.mssante.test"],
            &message_id,
            clinical.attachments.clone(),
        );
        let queue_id = env.send(&mail).await?.queue_id()?.to_owned();
        sent.push((clinical, message_id, queue_id));
    }

    // While the DMP answers 503: attempts fail transiently, nothing is stored, nothing is lost.
    poll(
        "a failed deposit attempt in the ledger",
        Duration::from_secs(5),
        || async {
            let failed = env.ledger()?.iter().any(|entry| {
                entry["kind"] == "deposit_attempted" && entry["outcome"] == "transient_failure"
            });
            Ok(failed.then_some(()))
        },
    )
    .await?;
    assert_eq!(env.dmp.stored_count()?, 0, "stored while the DMP was down");
    assert!(
        !env.ledger()?.iter().any(|e| e["kind"] == "deposited"),
        "deposited while the DMP was down"
    );
    assert!(
        !env.ledger()?.iter().any(|e| e["kind"] == "dead_lettered"),
        "an outage must not dead-letter"
    );

    // Then it drains. The simulator answers 503 to queries too while down, so wait on its
    // store first, then check each document through ITI-18.
    poll(
        "the deposits after the outage",
        Duration::from_secs(30),
        || async { Ok((env.dmp.stored_count()? >= sent.len()).then_some(())) },
    )
    .await?;
    for (clinical, message_id, _) in &sent {
        deposited_once(&env, clinical).await?;
        relayed_to(
            &env,
            Mailbox::Maildir("clinique-d.mssante.test"),
            message_id,
        )
        .await?;
    }
    spool_drained(&env).await?;
    assert_eq!(env.dmp.stored_count()?, sent.len());
    for (_, _, queue_id) in &sent {
        let kinds = env.trace(queue_id)?;
        assert_eq!(
            kinds.iter().filter(|k| *k == "deposited").count(),
            1,
            "{kinds:?}"
        );
        assert!(kinds.iter().any(|k| k == "deposit_attempted"), "{kinds:?}");
    }
    audit_verifies(&env)?;
    env.finish().await
}

/// A hospital resends a message (same document, new Message-ID) while the first deposit still
/// waits for the DMP: the document is deposited once, and both messages reach a final state —
/// their spool files are removed and each trace ends with the deposit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_resent_while_its_deposit_waits_is_deposited_once_and_both_messages_finish()
-> anyhow::Result<()> {
    let env = TestEnvBuilder::new().dmp_down_for(3).start().await?;
    let clinical = lab_result_cda(&Patient::synthetic(310), 310);
    let mut queue_ids = Vec::new();
    for attempt in ["first", "resent"] {
        let mail = Mail::new(
            &["secretariat@clinique-d.mssante.test"],
            &format!("{attempt}-310@hopital-a.mssante.test"),
            clinical.attachments.clone(),
        );
        queue_ids.push(env.send(&mail).await?.queue_id()?.to_owned());
    }
    poll(
        "the deposit after the outage",
        Duration::from_secs(30),
        || async { Ok((env.dmp.stored_count()? >= 1).then_some(())) },
    )
    .await?;
    deposited_once(&env, &clinical).await?;
    let drained = spool_drained(&env).await;
    for queue_id in &queue_ids {
        let kinds = env.trace(queue_id)?;
        assert!(
            kinds.iter().any(|k| k == "deposited"),
            "{queue_id} never settled its deposit: {kinds:?}"
        );
    }
    drained?;
    assert_eq!(env.dmp.stored_count()?, 1);
    audit_verifies(&env)?;
    env.finish().await
}
