//! `gateway audit export [--since] [--until] [--format json|csv]`.

use std::io::Write;

use anyhow::{Context as _, bail};

use super::render::{CSV_HEADER, csv_row, entry_json, parse_time};
use super::{AuditStatus, ExportFormat};
use crate::ledger::{Ledger, Lookup};

pub(super) async fn run(
    ledger: &Ledger,
    since: Option<&str>,
    until: Option<&str>,
    format: ExportFormat,
    out: &mut dyn Write,
) -> anyhow::Result<AuditStatus> {
    let bound = |text: Option<&str>, default: u64, name: &str| -> anyhow::Result<u64> {
        match text {
            None => Ok(default),
            Some(text) => match parse_time(text) {
                Some(ms) => Ok(ms),
                None => {
                    bail!("--{name} {text:?} is not YYYY-MM-DD, an RFC 3339 time or milliseconds")
                }
            },
        }
    };
    let since_ms = bound(since, 0, "since")?;
    let until_ms = bound(until, u64::MAX, "until")?;
    let entries = ledger
        .find(&Lookup::Time { since_ms, until_ms })
        .await
        .context("cannot read the ledger")?;
    match format {
        ExportFormat::Json => {
            writeln!(out, "[")?;
            for (i, entry) in entries.iter().enumerate() {
                let separator = if i + 1 < entries.len() { "," } else { "" };
                writeln!(out, "{}{separator}", entry_json(entry))?;
            }
            writeln!(out, "]")?;
        }
        ExportFormat::Csv => {
            writeln!(out, "{CSV_HEADER}")?;
            for entry in &entries {
                writeln!(out, "{}", csv_row(entry))?;
            }
        }
    }
    Ok(AuditStatus::Ok)
}
