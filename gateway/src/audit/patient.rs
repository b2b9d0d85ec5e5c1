//! `gateway audit patient <INS>`.

use std::io::Write;

use super::AuditStatus;
use super::render::text_line;
use crate::ledger::{Ledger, Lookup};

pub(super) async fn run(
    ledger: &Ledger,
    ins: &str,
    out: &mut dyn Write,
) -> anyhow::Result<AuditStatus> {
    let entries = ledger.find(&Lookup::Ins(ins.trim().to_string())).await?;
    if entries.is_empty() {
        writeln!(out, "no entry for this INS")?;
        return Ok(AuditStatus::NotFound);
    }
    for entry in &entries {
        writeln!(out, "{}", text_line(entry))?;
    }
    Ok(AuditStatus::Ok)
}
