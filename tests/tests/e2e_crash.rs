//! Crash safety: under a steady load from concurrent senders, the gateway is killed with
//! SIGKILL at random moments (at least 20 times) and restarted. Afterwards every message that
//! got a `250` is deposited exactly once in dmp-sim (ITI-18), relayed at least once to each
//! recipient domain, and `gateway audit verify` passes. A message whose transaction was cut by
//! the kill may or may not have been accepted; it is never deposited twice either.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gateway_tests::e2e::checks::audit_verifies;
use gateway_tests::e2e::message::{Clinical, Mail, lab_result_cda};
use gateway_tests::e2e::{Outcome, Patient, Sender, TestEnvBuilder, poll};
use rand::Rng;

const KILLS: usize = 20;
const SENDERS: u16 = 4;
const SINK: &str = "cabinet-c.mssante.test";
const MAILDIR: &str = "clinique-d.mssante.test";

/// What a sender knows about one message.
#[derive(Debug)]
enum Fate {
    /// `250 2.0.0 <id> queued`.
    Accepted { queue_id: String },
    /// Cut before a final reply: accepted or not, the client cannot know.
    Unknown,
}

struct Sent {
    clinical: Clinical,
    message_id: String,
    fate: Fate,
}

/// Sends distinct messages back to back until `stop`; each sender has its own patient.
async fn sender_loop(
    sender: Sender,
    index: u16,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Sent>> {
    let patient = Patient::synthetic(400 + index);
    let mut sent = Vec::new();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let document = u32::from(index) * 100_000 + n;
        let clinical = lab_result_cda(&patient, document);
        let message_id = format!("crash-{index}-{n}@hopital-a.mssante.test");
        let mail = Mail::new(
            &[
                &format!("dr.test@{SINK}"),
                &format!("secretariat@{MAILDIR}"),
            ],
            &message_id,
            clinical.attachments.clone(),
        );
        let fate = match sender.send(&mail).await {
            Ok(Outcome::Queued { queue_id }) => Fate::Accepted { queue_id },
            // A gateway shutting down or overloaded may say 4xx: the message is not accepted.
            Ok(Outcome::Refused(reply)) if reply.code / 100 == 4 => continue,
            Ok(Outcome::Refused(reply)) => {
                anyhow::bail!("{message_id} refused permanently: {reply}")
            }
            Err(_) => {
                // Gateway down or killed mid-transaction; do not spin while it restarts.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Fate::Unknown
            }
        };
        sent.push(Sent {
            clinical,
            message_id,
            fate,
        });
    }
    Ok(sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_accepted_message_survives_repeated_kill_9() -> anyhow::Result<()> {
    let mut env = TestEnvBuilder::new().start().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|index| tokio::spawn(sender_loop(env.sender().clone(), index, Arc::clone(&stop))))
        .collect();

    for _ in 0..KILLS {
        // Random moments: sometimes mid-DATA, mid-deposit, mid-relay or mid-ledger write.
        let pause = rand::rng().random_range(100..600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        env.kill_gateway()?;
        env.start_gateway().await?;
    }
    stop.store(true, Ordering::Relaxed);
    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await??);
    }
    assert_eq!(env.starts() as usize, KILLS + 1);
    let accepted: Vec<&Sent> = sent
        .iter()
        .filter(|s| matches!(s.fate, Fate::Accepted { .. }))
        .collect();
    assert!(
        accepted.len() >= 40,
        "the load was not steady: only {} messages accepted",
        accepted.len()
    );

    // Let the last gateway drain everything.
    poll(
        "an empty spool after the kills",
        Duration::from_secs(60),
        || async { Ok((env.spool_pending()? == 0).then_some(())) },
    )
    .await
    .map_err(|e| e.context(env.gateway_log()))?;

    // dmp-sim, by ITI-18 per patient: hash -> copies.
    let mut copies: HashMap<String, usize> = HashMap::new();
    for index in 0..SENDERS {
        let patient = Patient::synthetic(400 + index);
        for document in env.dmp.documents(&patient.cx()).await? {
            *copies.entry(document.hash_sha1).or_default() += 1;
        }
    }
    let known: HashMap<String, &Sent> = sent.iter().map(|s| (s.clinical.sha1(), s)).collect();
    for hash in copies.keys() {
        assert!(
            known.contains_key(hash),
            "dmp-sim holds a document nobody sent: {hash}"
        );
    }
    for message in &sent {
        let count = copies.get(&message.clinical.sha1()).copied().unwrap_or(0);
        match &message.fate {
            Fate::Accepted { queue_id } => assert_eq!(
                count, 1,
                "{} (queue id {queue_id}) deposited {count} times",
                message.message_id
            ),
            Fate::Unknown => assert!(count <= 1, "{} deposited {count} times", message.message_id),
        }
    }

    // Relayed: at least once to each domain (exactly once is not promised for SMTP relay).
    let sink = env.sink_messages(SINK).await?;
    let maildir = env.maildir_messages(MAILDIR)?;
    for message in &accepted {
        let id = format!("Message-ID: <{}>", message.message_id);
        let carries = |raw: &Vec<u8>| raw.windows(id.len()).any(|w| w == id.as_bytes());
        assert!(
            sink.iter().any(carries),
            "{} not relayed to {SINK}",
            message.message_id
        );
        assert!(
            maildir.iter().any(carries),
            "{} not relayed to {MAILDIR}",
            message.message_id
        );
    }
    // The ledger saw each accepted message through to its deposit.
    let ledger = env.ledger()?;
    for message in &accepted {
        let Fate::Accepted { queue_id } = &message.fate else {
            continue;
        };
        assert!(
            ledger
                .iter()
                .any(|e| e["kind"] == "deposited" && e["queue_id"] == queue_id.as_str()),
            "no deposited entry for {queue_id}"
        );
    }
    audit_verifies(&env)?;
    eprintln!(
        "crash test: {} kills, {} messages sent, {} accepted, {} documents in dmp-sim",
        KILLS,
        sent.len(),
        accepted.len(),
        copies.len()
    );
    env.finish().await
}
