//! `gateway audit prove <entry>` and `gateway audit check-proof <file> --public-key <file>`.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;

use super::AuditStatus;
use super::render::entry_json;
use crate::ledger::proof::verify_bundle;
use crate::ledger::{CheckpointVerifier, InclusionBundle, Ledger};

pub(super) async fn run(
    ledger: &Ledger,
    seq: u64,
    out: &mut dyn Write,
) -> anyhow::Result<AuditStatus> {
    let mut bundle = ledger
        .prove(seq)
        .await
        .with_context(|| format!("cannot prove entry {seq}"))?;
    // Check our own output before handing it over: a proof that does not verify helps nobody.
    let entry = verify_bundle(&bundle, ledger.verifier())
        .context("the proof just built does not verify")?;
    bundle.decoded = Some(entry_json(&entry));
    writeln!(out, "{}", serde_json::to_string_pretty(&bundle)?)?;
    Ok(AuditStatus::Ok)
}

pub(super) fn check(
    proof: &Path,
    public_key: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<AuditStatus> {
    let text = std::fs::read_to_string(proof)
        .with_context(|| format!("cannot read {}", proof.display()))?;
    let bundle: InclusionBundle =
        serde_json::from_str(&text).context("not a ledger inclusion proof")?;
    let key = std::fs::read_to_string(public_key)
        .with_context(|| format!("cannot read {}", public_key.display()))?;
    let verifier = CheckpointVerifier::parse(&key)?;
    match verify_bundle(&bundle, &verifier) {
        Ok(entry) => {
            writeln!(
                out,
                "proof OK: entry {} ({}) is in the ledger of size {} signed by {}",
                entry.seq,
                entry.event.kind.name(),
                bundle.tree_size,
                verifier.id()
            )?;
            Ok(AuditStatus::Ok)
        }
        Err(error) => {
            writeln!(out, "proof FAILED: {error}")?;
            Ok(AuditStatus::IntegrityFailure)
        }
    }
}
