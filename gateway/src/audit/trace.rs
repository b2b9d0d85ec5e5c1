//! `gateway audit trace <message-id|queue-id>`.

use std::io::Write;

use super::AuditStatus;
use super::render::text_line;
use crate::ledger::Ledger;

pub(super) async fn run(
    ledger: &Ledger,
    id: &str,
    out: &mut dyn Write,
) -> anyhow::Result<AuditStatus> {
    let mut entries = ledger.trace(id).await?;
    if entries.is_empty() && !id.starts_with('<') {
        // Message-IDs are stored as in the header, brackets included; accept them without.
        entries = ledger.trace(&format!("<{id}>")).await?;
    }
    if entries.is_empty() {
        writeln!(out, "no entry with Message-ID or queue id {id:?}")?;
        return Ok(AuditStatus::NotFound);
    }
    for entry in &entries {
        writeln!(out, "{}", text_line(entry))?;
    }
    Ok(AuditStatus::Ok)
}
