//! Local delivery in Maildir format: `<root>/<domain>/<local-part>/{tmp,new,cur}`.
//!
//! Each copy is written in `tmp/`, fsynced, renamed into `new/`, and `new/` is fsynced, so a
//! message in `new/` is complete and durable. The file name is derived from the job (queue id and
//! kind), so a replayed job finds its copy already there instead of delivering it twice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::relayer::{Delivery, DeliveryFailure};

/// Delivers `message` to every recipient (all in `domain`) under `root`.
pub(crate) async fn deliver(
    root: &Path,
    domain: &str,
    recipients: &[String],
    unique: &str,
    message: &[u8],
) -> Result<Delivery, DeliveryFailure> {
    let domain = safe_component(domain)
        .ok_or_else(|| permanent(format!("domain {domain:?} cannot name a mailbox")))?;
    let mut mailboxes = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        mailboxes.push(root.join(&domain).join(local_part(recipient, &domain)?));
    }
    let unique = unique.to_owned();
    let message = message.to_vec();
    let written = tokio::task::spawn_blocking(move || {
        mailboxes
            .iter()
            .map(|mailbox| write_one(mailbox, &unique, &message))
            .collect::<io::Result<Vec<PathBuf>>>()
    })
    .await
    .map_err(|error| transient(format!("maildir task failed: {error}")))?
    .map_err(|error| transient(format!("maildir write failed: {error}")))?;
    let paths: Vec<String> = written
        .iter()
        .map(|path| path.display().to_string())
        .collect();
    Ok(Delivery {
        route: "maildir".into(),
        detail: paths.join(", "),
        peer_subject: None,
    })
}

/// The mailbox directory name of `recipient`: its local part, lower-cased, if it is safe.
fn local_part(recipient: &str, domain: &str) -> Result<String, DeliveryFailure> {
    let Some((local, recipient_domain)) = recipient.rsplit_once('@') else {
        return Err(permanent(format!("recipient {recipient:?} has no domain")));
    };
    if !recipient_domain.eq_ignore_ascii_case(domain) {
        return Err(permanent(format!(
            "recipient {recipient:?} is not in domain {domain}"
        )));
    }
    safe_component(local)
        .ok_or_else(|| permanent(format!("recipient {recipient:?} cannot name a mailbox")))
}

/// `name` lower-cased if it is usable as one path component: not empty, no `/`, `\`, NUL or
/// control character, no `..`, not starting with a dot.
fn safe_component(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    let unsafe_char = |c: char| c == '/' || c == '\\' || c.is_control();
    if lower.is_empty()
        || lower.starts_with('.')
        || lower.contains("..")
        || lower.contains(unsafe_char)
    {
        return None;
    }
    Some(lower)
}

fn write_one(mailbox: &Path, unique: &str, message: &[u8]) -> io::Result<PathBuf> {
    let tmp = mailbox.join("tmp");
    let new = mailbox.join("new");
    for dir in [&tmp, &new, &mailbox.join("cur")] {
        fs::create_dir_all(dir)?;
    }
    let target = new.join(unique);
    if target.exists() {
        return Ok(target);
    }
    let staging = tmp.join(unique);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&staging)?;
    file.write_all(message)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&staging, &target)?;
    File::open(&new)?.sync_all()?;
    Ok(target)
}

fn permanent(reason: String) -> DeliveryFailure {
    DeliveryFailure::Permanent { reason }
}

fn transient(reason: String) -> DeliveryFailure {
    DeliveryFailure::Transient { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_parts_are_lower_cased_and_unsafe_ones_refused() {
        assert_eq!(
            local_part("Dr.Martin@d.test", "d.test").unwrap(),
            "dr.martin"
        );
        for bad in [
            "../x@d.test",
            "a/b@d.test",
            ".hidden@d.test",
            "@d.test",
            "a\0@d.test",
        ] {
            assert!(
                matches!(
                    local_part(bad, "d.test"),
                    Err(DeliveryFailure::Permanent { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            local_part("a@other.test", "d.test"),
            Err(DeliveryFailure::Permanent { .. })
        ));
        assert!(safe_component("..").is_none());
    }
}
