//! Queue identifiers: time-ordered, unique across processes, safe as file names.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a queue id: 12 hex digits of milliseconds since the epoch, then 8 random hex digits.
const ID_LEN: usize = 20;

/// Last millisecond value handed out, so ids never go backwards in one process when the wall clock
/// is stepped back (ordering by id then still follows the order of reception).
static LAST_MILLIS: AtomicU64 = AtomicU64::new(0);

/// Identifier of one spooled message; also the stem of its file names.
///
/// Sorting ids sorts messages by reception time (to the millisecond). The 32 random bits keep ids
/// of different processes apart; the spool also creates files with `O_EXCL`, so a collision is
/// detected and retried rather than overwriting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(String);

impl QueueId {
    /// A fresh id for a message received now.
    pub(crate) fn generate() -> QueueId {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            // A clock before 1970 is a broken clock; the monotonic guard below still orders ids.
            .unwrap_or(0);
        let previous = LAST_MILLIS.fetch_max(now, Ordering::Relaxed);
        let millis = now.max(previous) & 0xffff_ffff_ffff;
        let random: u32 = rand::random();
        QueueId(format!("{millis:012x}{random:08x}"))
    }

    /// Parses an id as produced by this spool (20 lowercase hex digits).
    pub fn parse(text: &str) -> Option<QueueId> {
        let well_formed = text.len() == ID_LEN
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        well_formed.then(|| QueueId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl AsRef<str> for QueueId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_parse_and_are_ordered() {
        let ids: Vec<QueueId> = (0..1000).map(|_| QueueId::generate()).collect();
        for id in &ids {
            assert_eq!(QueueId::parse(id.as_str()).as_ref(), Some(id));
        }
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for pair in ids.windows(2) {
            assert!(pair[0].as_str()[..12] <= pair[1].as_str()[..12]);
        }
    }

    #[test]
    fn parse_rejects_foreign_names() {
        assert!(QueueId::parse("").is_none());
        assert!(QueueId::parse("0123456789ABCDEF0123").is_none());
        assert!(QueueId::parse("0123456789abcdef012").is_none());
        assert!(QueueId::parse("../../../../etc/pass").is_none());
    }
}
