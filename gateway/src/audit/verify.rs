//! `gateway audit verify`.

use std::io::Write;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::AuditStatus;
use crate::ledger::Ledger;

/// Below this many entries the bar would only flicker.
const BAR_THRESHOLD: u64 = 50_000;

pub(super) async fn run(
    ledger: &Ledger,
    out: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<AuditStatus> {
    let mut bar: Option<ProgressBar> = None;
    let report = ledger
        .verify(|done, total| {
            if !progress || total < BAR_THRESHOLD {
                return;
            }
            let bar = bar.get_or_insert_with(|| {
                // Draws on stderr, and not at all when stderr is not a terminal.
                let bar = ProgressBar::new(total);
                if let Ok(style) =
                    ProgressStyle::with_template("{bar:40} {pos}/{len} entries {per_sec} eta {eta}")
                {
                    bar.set_style(style);
                }
                bar
            });
            bar.set_position(done);
        })
        .await
        .context("verification could not read the ledger")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let status = match &report.failure {
        None => {
            writeln!(
                out,
                "ledger OK: {} entries, {} checkpoints, signed checkpoints attest entries 0..{}",
                report.entries, report.checkpoints, report.attested_size
            )?;
            if report.attested_size < report.entries {
                writeln!(
                    out,
                    "note: entries {}..{} are chained but not yet covered by a signed checkpoint",
                    report.attested_size, report.entries
                )?;
            }
            AuditStatus::Ok
        }
        Some(failure) => {
            writeln!(out, "ledger FAILED: {failure}")?;
            match failure.seq() {
                Some(seq) => writeln!(out, "first failing entry: {seq}")?,
                None => writeln!(out, "first failing entry: none (a checkpoint fails)")?,
            }
            writeln!(
                out,
                "entries verified before the failure: {}",
                report.entries
            )?;
            AuditStatus::IntegrityFailure
        }
    };
    Ok(status)
}
