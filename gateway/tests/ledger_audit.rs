//! `gateway audit` commands over a synthetic file ledger.

mod ledger_support;

use gateway::audit::{AuditCommand, AuditStatus, ExportFormat, execute};
use gateway::ledger::{Backend, EventKind};
use ledger_support::{Fixture, event, fill};

async fn run(fixture: &Fixture, command: AuditCommand) -> (AuditStatus, String) {
    let ledger = fixture.audit().await;
    let mut out = Vec::new();
    let status = execute(&command, &ledger, &mut out, false).await.unwrap();
    (status, String::from_utf8(out).unwrap())
}

async fn prepared() -> Fixture {
    let fixture = Fixture::new(Backend::File);
    let ledger = fixture.open().await;
    fill(&ledger, 3).await;
    ledger
        .append(event(1, EventKind::DocumentsExtracted))
        .await
        .unwrap();
    ledger.append(event(1, EventKind::Deposited)).await.unwrap();
    ledger.checkpoint().await.unwrap();
    ledger.append(event(2, EventKind::Rejected)).await.unwrap();
    fixture
}

#[tokio::test]
async fn verify_reports_ok_then_the_failing_entry() {
    let fixture = prepared().await;
    let (status, out) = run(&fixture, AuditCommand::Verify).await;
    assert_eq!(status, AuditStatus::Ok, "{out}");
    assert!(
        out.starts_with(
            "ledger OK: 12 entries, 1 checkpoints, signed checkpoints attest entries 0..11"
        ),
        "{out}"
    );
    assert!(
        out.contains("entries 11..12 are chained but not yet covered"),
        "{out}"
    );
    fixture.delete(2).await;
    let (status, out) = run(&fixture, AuditCommand::Verify).await;
    assert_eq!(status, AuditStatus::IntegrityFailure);
    assert!(out.contains("ledger FAILED: entry 2: missing"), "{out}");
    assert!(out.contains("first failing entry: 2"), "{out}");
}

#[tokio::test]
async fn trace_tells_the_story_by_message_id_or_queue_id() {
    let fixture = prepared().await;
    let (status, by_id) = run(
        &fixture,
        AuditCommand::Trace {
            id: "synthetic-1@hopital-a.mssante.test".into(),
        },
    )
    .await;
    assert_eq!(status, AuditStatus::Ok);
    let kinds: Vec<&str> = by_id
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "received",
            "verified",
            "queued",
            "documents_extracted",
            "deposited"
        ]
    );
    assert!(by_id.contains("dmp=1.2.250.1.999.1"));
    let (_, by_queue) = run(
        &fixture,
        AuditCommand::Trace {
            id: "Q000000000000001".into(),
        },
    )
    .await;
    assert_eq!(by_id, by_queue);
    let (status, _) = run(
        &fixture,
        AuditCommand::Trace {
            id: "<nothing@nowhere>".into(),
        },
    )
    .await;
    assert_eq!(status, AuditStatus::NotFound);
}

#[tokio::test]
async fn patient_lists_every_event_for_an_ins() {
    let fixture = prepared().await;
    let (status, out) = run(
        &fixture,
        AuditCommand::Patient {
            ins: ledger_support::ins(2),
        },
    )
    .await;
    assert_eq!(status, AuditStatus::Ok);
    // Message 2: three steps and the rejection.
    assert_eq!(out.lines().count(), 4, "{out}");
    let (status, _) = run(
        &fixture,
        AuditCommand::Patient {
            ins: "199999999999999".into(),
        },
    )
    .await;
    assert_eq!(status, AuditStatus::NotFound);
}

#[tokio::test]
async fn export_json_and_csv_with_time_bounds() {
    let fixture = prepared().await;
    let all = AuditCommand::Export {
        since: None,
        until: None,
        format: ExportFormat::Json,
    };
    let (_, json) = run(&fixture, all).await;
    let entries: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(entries.len(), 12);
    assert_eq!(entries[4]["kind"], "verified");
    assert_eq!(entries[9]["documents"][0]["name"], "CR-1.xml");
    assert_eq!(entries[11]["outcome"], "permanent_failure");
    let last_ms = entries[11]["time_ms"].as_u64().unwrap();
    let (_, csv) = run(
        &fixture,
        AuditCommand::Export {
            since: Some("2000-01-01".into()),
            until: Some((last_ms + 1).to_string()),
            format: ExportFormat::Csv,
        },
    )
    .await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,time,kind,queue_id"));
    assert_eq!(lines.len(), 13);
    assert!(lines[12].starts_with("11,"), "{}", lines[12]);
    let (_, none) = run(
        &fixture,
        AuditCommand::Export {
            since: Some("2000-01-01".into()),
            until: Some("2000-01-02T00:00:00Z".into()),
            format: ExportFormat::Csv,
        },
    )
    .await;
    assert_eq!(none.lines().count(), 1);
}

#[tokio::test]
async fn prove_output_checks_with_the_public_key_alone() {
    let fixture = prepared().await;
    let (status, proof) = run(&fixture, AuditCommand::Prove { entry: 7 }).await;
    assert_eq!(status, AuditStatus::Ok);
    let json: serde_json::Value = serde_json::from_str(&proof).unwrap();
    assert_eq!(json["tree_size"], 11);
    assert_eq!(json["decoded"]["seq"], 7);
    let proof_file = fixture.dir.path().join("proof.json");
    std::fs::write(&proof_file, &proof).unwrap();
    let public_key = fixture
        .config
        .key_in(fixture.config_dir())
        .with_extension("pub");
    let check = AuditCommand::CheckProof {
        proof: proof_file.clone(),
        public_key: public_key.clone(),
    };
    let (status, out) = run(&fixture, check.clone()).await;
    assert_eq!(status, AuditStatus::Ok, "{out}");
    assert!(out.starts_with("proof OK: entry 7 (verified)"), "{out}");
    // Entry 11 is not under a stored checkpoint: the read-only audit signs a fresh one.
    let (_, fresh) = run(&fixture, AuditCommand::Prove { entry: 11 }).await;
    let json: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(json["tree_size"], 12);
    // A forged proof (another entry's bytes) fails.
    let mut forged: serde_json::Value = serde_json::from_str(&proof).unwrap();
    forged["seq"] = 8.into();
    std::fs::write(&proof_file, forged.to_string()).unwrap();
    let (status, out) = run(&fixture, check).await;
    assert_eq!(status, AuditStatus::IntegrityFailure);
    assert!(out.starts_with("proof FAILED"), "{out}");
    // And the key files are owner-only where secret.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fixture.config.key_in(fixture.config_dir())), 0o600);
    assert_eq!(mode(&fixture.config.dir_in(fixture.config_dir())), 0o700);
    assert_eq!(mode(&fixture.entries_path()), 0o600);
    assert_eq!(mode(&fixture.checkpoints_path()), 0o600);
    let _ = public_key;
}

#[test]
fn the_default_config_section_parses_and_rejects_unknown_keys() {
    let config: gateway::ledger::LedgerConfig = toml::from_str("").unwrap();
    assert_eq!(config, gateway::ledger::LedgerConfig::default());
    let config: gateway::ledger::LedgerConfig = toml::from_str(
        "backend = \"postgres\"\npostgres_schema = \"ledger_a\"\ncheckpoint_every_entries = 10",
    )
    .unwrap();
    assert_eq!(config.backend, Backend::Postgres);
    assert!(toml::from_str::<gateway::ledger::LedgerConfig>("bakend = \"file\"").is_err());
}
