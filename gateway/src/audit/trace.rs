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
    let id = id.trim();
    let mut entries = ledger.trace(id).await?;
    if entries.is_empty() {
        // The pipeline stores Message-IDs without their angle brackets; accept either form
        // (and find entries written with brackets by other tools).
        let other = match id.strip_prefix('<').and_then(|rest| rest.strip_suffix('>')) {
            Some(bare) => bare.to_owned(),
            None => format!("<{id}>"),
        };
        entries = ledger.trace(&other).await?;
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
