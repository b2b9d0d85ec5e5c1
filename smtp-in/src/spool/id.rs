//! Queue identifiers: time-ordered, unique across processes, safe as file names.

use std::fmt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of a queue id: 12 hex digits of milliseconds since the epoch, then 8 random hex digits.
const ID_LEN: usize = 20;

/// The last id handed out, as a number (milliseconds << 32 | low bits): every new id is above it,
/// so ids of one process are strictly increasing — also within one millisecond and when the wall
/// clock is stepped back — and sorting them gives the order of reception.
static LAST_ID: Mutex<u128> = Mutex::new(0);

/// Identifier of one spooled message; also the stem of its file names.
///
/// Sorting ids sorts messages by reception time, and within one process by reception order. The
/// 32 random low bits keep ids of different processes apart; the spool also creates files with
/// `O_EXCL`, so a collision is detected and retried rather than overwriting.
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
        let random: u32 = rand::random();
        let candidate = (u128::from(now & 0xffff_ffff_ffff) << 32) | u128::from(random);
        let mut last = LAST_ID
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Within one millisecond (or after a clock step back) the next id follows the last one.
        let id = candidate.max(*last + 1) & ((1u128 << 80) - 1);
        *last = id;
        QueueId(format!("{id:020x}"))
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
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
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
