//! The ledger's behaviour, run identically against the file and the PostgreSQL backends.

mod ledger_support;

use std::sync::Arc;

use gateway::ledger::merkle::verify_consistency;
use gateway::ledger::proof::verify_bundle;
use gateway::ledger::{Backend, Checkpoint, EventKind, Lookup, ProofError, VerifyFailure};
use ledger_support::{Fixture, event, fill};

/// Instantiates each generic test for both backends.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::Fixture::new(super::Backend::File);
                    super::$name(&fixture).await;
                    fixture.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = super::Fixture::new(super::Backend::Postgres);
                    super::$name(&fixture).await;
                    fixture.cleanup().await;
                }
            )*
        }
    };
}

both_backends!(
    appends_chain_and_index,
    concurrent_appends_get_distinct_contiguous_numbers,
    proofs_verify_against_signed_checkpoints,
    reopen_continues_the_chain,
    checkpoints_follow_the_entry_policy,
    tamper_flip_one_byte,
    tamper_delete_an_entry,
    tamper_reorder_two_entries,
    tamper_remove_the_tail,
    tamper_replace_the_checkpoint_key,
    tamper_resign_with_a_new_key_against_a_pinned_key,
);

async fn verify_failure(fixture: &Fixture) -> Option<VerifyFailure> {
    fixture
        .audit()
        .await
        .verify(|_, _| {})
        .await
        .unwrap()
        .failure
}

async fn appends_chain_and_index(fixture: &Fixture) {
    let ledger = fixture.open().await;
    fill(&ledger, 4).await;
    let (size, _) = ledger.store().head().await.unwrap();
    assert_eq!(size, 12);
    let all = ledger
        .find(&Lookup::Time {
            since_ms: 0,
            until_ms: u64::MAX,
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    assert_eq!(all[0].prev_hash, [0; 32]);
    assert!(all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    let by_queue = ledger
        .find(&Lookup::QueueId("Q000000000000002".into()))
        .await
        .unwrap();
    assert_eq!(
        by_queue.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![6, 7, 8]
    );
    let story = ledger
        .trace("<synthetic-1@hopital-a.mssante.test>")
        .await
        .unwrap();
    let kinds: Vec<EventKind> = story.iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Received, EventKind::Verified, EventKind::Queued]
    );
    // Patients 0..3 are n % 3: messages 0 and 3 share one.
    let patient = ledger
        .find(&Lookup::Ins(ledger_support::ins(0)))
        .await
        .unwrap();
    assert_eq!(patient.len(), 6);
    let first = patient[0].time_ms;
    let none = ledger
        .find(&Lookup::Time {
            since_ms: 0,
            until_ms: first,
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    ledger.checkpoint().await.unwrap();
    let report = fixture.audit().await.verify(|_, _| {}).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!((report.entries, report.attested_size), (12, 12));
}

async fn concurrent_appends_get_distinct_contiguous_numbers(fixture: &Fixture) {
    let ledger = Arc::new(fixture.open().await);
    let mut tasks = Vec::new();
    for writer in 0..16u32 {
        let ledger = Arc::clone(&ledger);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                seqs.push(
                    ledger
                        .append(event(writer * 100 + i, EventKind::Received))
                        .await
                        .unwrap()
                        .seq,
                );
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..400).collect::<Vec<_>>());
    ledger.checkpoint().await.unwrap();
    assert_eq!(verify_failure(fixture).await, None);
}

async fn proofs_verify_against_signed_checkpoints(fixture: &Fixture) {
    let ledger = fixture.open().await;
    fill(&ledger, 3).await;
    let first_note = ledger.checkpoint().await.unwrap().unwrap();
    fill(&ledger, 4).await;
    let second_note = ledger.checkpoint().await.unwrap().unwrap();
    let first = ledger.verifier().verify(&first_note).unwrap();
    let second = ledger.verifier().verify(&second_note).unwrap();
    assert_eq!((first.size, second.size), (9, 21));
    assert_eq!(first.origin, fixture.config.origin);
    // Every entry is proven against the latest checkpoint covering it.
    for seq in 0..21 {
        let bundle = ledger.prove(seq).await.unwrap();
        let entry = verify_bundle(&bundle, ledger.verifier()).unwrap();
        assert_eq!(entry.seq, seq);
        assert_eq!(bundle.tree_size, 21);
    }
    let proof = ledger.consistency_proof(9, 21).await.unwrap();
    verify_consistency(9, 21, &proof, &first.root, &second.root).unwrap();
    assert!(verify_consistency(9, 21, &proof, &second.root, &first.root).is_err());
    // A proof altered in transit fails.
    let mut bundle = ledger.prove(4).await.unwrap();
    bundle.seq = 5;
    assert!(verify_bundle(&bundle, ledger.verifier()).is_err());
    // The auditor's read-only view proves too, against the stored checkpoints.
    let audit = fixture.audit().await;
    let bundle = audit.prove(20).await.unwrap();
    verify_bundle(&bundle, audit.verifier()).unwrap();
    let parsed =
        Checkpoint::parse_body(&audit.verifier().verify(&bundle.checkpoint).unwrap().body())
            .unwrap();
    assert!(parsed.timestamp().is_some());
}

async fn reopen_continues_the_chain(fixture: &Fixture) {
    {
        let ledger = fixture.open().await;
        fill(&ledger, 2).await;
        ledger.checkpoint().await.unwrap();
    }
    let ledger = fixture.open().await;
    let entry = ledger.append(event(9, EventKind::Deposited)).await.unwrap();
    assert_eq!(entry.seq, 6);
    ledger.checkpoint().await.unwrap();
    assert_eq!(
        ledger.entry(6).await.unwrap().event.dmp_ids,
        vec!["1.2.250.1.999.9".to_string()]
    );
    let report = fixture.audit().await.verify(|_, _| {}).await.unwrap();
    assert_eq!(
        (report.failure, report.entries, report.checkpoints),
        (None, 7, 2)
    );
}

async fn checkpoints_follow_the_entry_policy(fixture: &Fixture) {
    let mut config = fixture.config.clone();
    config.checkpoint_every_entries = 5;
    let ledger = gateway::ledger::Ledger::open(&config, fixture.config_dir())
        .await
        .unwrap();
    fill(&ledger, 4).await;
    let notes = ledger.store().checkpoints().await.unwrap();
    let sizes: Vec<u64> = notes
        .iter()
        .map(|n| ledger.verifier().verify(&n.note).unwrap().size)
        .collect();
    assert_eq!(sizes, vec![5, 10]);
    assert_eq!(verify_failure(fixture).await, None);
}

/// Ten entries, attested by a checkpoint, then two more (not attested yet).
async fn ledger_of_twelve(fixture: &Fixture) {
    let ledger = fixture.open().await;
    fill(&ledger, 3).await;
    ledger.append(event(3, EventKind::Received)).await.unwrap();
    ledger.checkpoint().await.unwrap();
    ledger.append(event(4, EventKind::Received)).await.unwrap();
    ledger.append(event(4, EventKind::Rejected)).await.unwrap();
}

async fn tamper_flip_one_byte(fixture: &Fixture) {
    ledger_of_twelve(fixture).await;
    assert_eq!(verify_failure(fixture).await, None);
    // A byte of the last field (the DMP id count) of entry 4 changes; the attacker even fixes the
    // file checksum.
    fixture.flip_byte(4, 1).await;
    let failure = verify_failure(fixture).await.unwrap();
    assert_eq!(failure.seq(), Some(4), "{failure}");
    match fixture.backend {
        // The file keeps no per-entry hash: the next entry's chain link names entry 4.
        Backend::File => assert_eq!(
            failure,
            VerifyFailure::Malformed {
                seq: 4,
                reason: failure_reason(&failure)
            }
        ),
        _ => assert_eq!(failure, VerifyFailure::LeafHashMismatch { seq: 4 }),
    }
}

fn failure_reason(failure: &VerifyFailure) -> gateway::ledger::DecodeError {
    match failure {
        VerifyFailure::Malformed { reason, .. } => reason.clone(),
        other => panic!("expected a malformed entry, got {other}"),
    }
}

#[tokio::test]
async fn file_tamper_flip_a_text_byte_breaks_the_chain() {
    let fixture = Fixture::new(Backend::File);
    ledger_of_twelve(&fixture).await;
    // Inside the reason text: still a valid entry, so only the chain tells.
    fixture.flip_byte(7, 10).await;
    let failure = verify_failure(&fixture).await.unwrap();
    assert_eq!(failure, VerifyFailure::ChainBroken { seq: 7 });
    assert!(
        failure.to_string().starts_with("entry 7: altered"),
        "{failure}"
    );
}

#[tokio::test]
async fn file_tamper_flip_the_last_entry_is_caught_by_the_checkpoint() {
    let fixture = Fixture::new(Backend::File);
    let ledger = fixture.open().await;
    fill(&ledger, 2).await;
    ledger.checkpoint().await.unwrap();
    drop(ledger);
    fixture.flip_byte(5, 10).await;
    let failure = verify_failure(&fixture).await.unwrap();
    assert_eq!(
        failure,
        VerifyFailure::CheckpointRootMismatch {
            size: 6,
            first_unattested: 0
        }
    );
}

#[tokio::test]
async fn file_disk_corruption_is_named_by_the_frame_checksum() {
    let fixture = Fixture::new(Backend::File);
    ledger_of_twelve(&fixture).await;
    fixture.flip_raw_byte(3);
    let failure = verify_failure(&fixture).await.unwrap();
    assert_eq!(
        failure,
        VerifyFailure::Damaged {
            seq: 3,
            reason: "frame checksum mismatch".into()
        }
    );
}

async fn tamper_delete_an_entry(fixture: &Fixture) {
    ledger_of_twelve(fixture).await;
    fixture.delete(4).await;
    assert_eq!(
        verify_failure(fixture).await,
        Some(VerifyFailure::Missing { seq: 4, found: 5 })
    );
}

async fn tamper_reorder_two_entries(fixture: &Fixture) {
    ledger_of_twelve(fixture).await;
    fixture.swap(4).await;
    assert_eq!(
        verify_failure(fixture).await,
        Some(VerifyFailure::Reordered { seq: 4, found: 5 })
    );
}

async fn tamper_remove_the_tail(fixture: &Fixture) {
    ledger_of_twelve(fixture).await;
    fixture.truncate(8).await;
    let failure = verify_failure(fixture).await.unwrap();
    assert_eq!(
        failure,
        VerifyFailure::CheckpointBeyondEnd {
            size: 10,
            entries: 8
        }
    );
    assert_eq!(failure.seq(), Some(8));
}

async fn tamper_replace_the_checkpoint_key(fixture: &Fixture) {
    ledger_of_twelve(fixture).await;
    let original = fixture.audit().await.verifier().clone();
    fixture.replace_key();
    let failure = verify_failure(fixture).await.unwrap();
    match &failure {
        VerifyFailure::CheckpointInvalid {
            index: 0,
            size: Some(10),
            reason: ProofError::NoSignatureByKey { expected, found },
        } => {
            assert_ne!(expected, found);
            assert_eq!(found, &original.id());
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        failure
            .to_string()
            .starts_with("checkpoint #0 (tree size 10): checkpoint has no signature by key")
    );
}

async fn tamper_resign_with_a_new_key_against_a_pinned_key(fixture: &Fixture) {
    ledger_of_twelve(fixture).await;
    // The auditor keeps a copy of the public key outside the gateway's reach.
    let key = fixture.config.key_in(fixture.config_dir());
    let pinned = fixture.dir.path().join("auditor-copy.pub");
    std::fs::copy(key.with_extension("pub"), &pinned).unwrap();
    let mut config = fixture.config.clone();
    config.trusted_public_key = Some(pinned);
    // The intruder swaps the key and signs a checkpoint of the ledger as it now stands.
    fixture.replace_key();
    let ledger = gateway::ledger::Ledger::open(&fixture.config, fixture.config_dir())
        .await
        .unwrap();
    ledger.checkpoint().await.unwrap().unwrap();
    drop(ledger);
    let audit = gateway::ledger::Ledger::open_for_audit(&config, fixture.config_dir())
        .await
        .unwrap();
    let failure = audit.verify(|_, _| {}).await.unwrap().failure.unwrap();
    assert!(
        matches!(
            failure,
            VerifyFailure::CheckpointInvalid {
                index: 1,
                size: Some(12),
                reason: ProofError::NoSignatureByKey { .. }
            }
        ),
        "{failure}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_share_one_gap_free_ledger() {
    let fixture = Fixture::new(Backend::Postgres);
    // Two gateway nodes: two connections, two writers, one schema.
    let nodes = [
        Arc::new(fixture.open().await),
        Arc::new(fixture.open().await),
    ];
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for writer in 0..4u32 {
            let node = Arc::clone(node);
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..30 {
                    let id = (n as u32) * 10_000 + writer * 100 + i;
                    seqs.push(node.append(event(id, EventKind::Queued)).await.unwrap().seq);
                }
                seqs
            }));
        }
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..240).collect::<Vec<_>>());
    nodes[1].checkpoint().await.unwrap();
    assert_eq!(verify_failure(&fixture).await, None);
}

#[tokio::test]
async fn file_unreadable_frame_is_named_and_blocks_writing() {
    let fixture = Fixture::new(Backend::File);
    ledger_of_twelve(&fixture).await;
    // Corrupt the length field of entry 3's frame: nothing after it can be located.
    let path = fixture.entries_path();
    let mut data = std::fs::read(&path).unwrap();
    let mut offsets = Vec::new();
    gateway::ledger::store::frame::scan(&data[..], data.len() as u64, |f| offsets.push(f.offset))
        .unwrap();
    data[offsets[3] as usize] = 0xff;
    std::fs::write(&path, &data).unwrap();
    match verify_failure(&fixture).await.unwrap() {
        VerifyFailure::Damaged { seq: 3, reason } => {
            assert!(reason.contains("unreadable frame"), "{reason}")
        }
        other => panic!("unexpected {other}"),
    }
    let refused = gateway::ledger::Ledger::open(&fixture.config, fixture.config_dir()).await;
    assert!(matches!(
        refused,
        Err(gateway::ledger::LedgerError::Damaged { .. })
    ));
}

#[tokio::test]
async fn file_torn_tail_is_set_aside_on_reopen() {
    let fixture = Fixture::new(Backend::File);
    ledger_of_twelve(&fixture).await;
    let path = fixture.entries_path();
    let good_len = std::fs::metadata(&path).unwrap().len();
    // A frame cut short, as a crash in the middle of a write leaves it.
    let mut torn = Vec::new();
    gateway::ledger::store::frame::push_frame(&mut torn, &[1u8; 300]);
    torn.truncate(150);
    let mut data = std::fs::read(&path).unwrap();
    data.extend_from_slice(&torn);
    std::fs::write(&path, &data).unwrap();
    // The auditor's read-only view ignores it and changes nothing.
    assert_eq!(verify_failure(&fixture).await, None);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len + 150);
    // The gateway's writable open moves it aside and carries on.
    let ledger = fixture.open().await;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("torn-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), torn);
    assert_eq!(
        ledger
            .append(event(7, EventKind::Relayed))
            .await
            .unwrap()
            .seq,
        12
    );
    drop(ledger);
    assert_eq!(verify_failure(&fixture).await, None);
}
