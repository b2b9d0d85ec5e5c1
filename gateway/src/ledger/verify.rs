//! Full verification: recompute every leaf, the hash chain, every checkpoint's root and
//! signature, and name the first thing that does not match.
//!
//! Entries are read in storage order and checked one by one; a checkpoint is checked the moment
//! the stream reaches its tree size, so the failure reported is the earliest in ledger order.

use std::collections::VecDeque;
use std::fmt;

use super::checkpoint::{CheckpointVerifier, parse_note};
use super::encoding;
use super::entry::Hash;
use super::error::{DecodeError, LedgerError, ProofError};
use super::merkle::{Frontier, leaf_hash};
use super::store::{RawEntry, Store};

/// Entries read per round trip.
const PAGE: usize = 10_000;

/// The first integrity failure found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// Storage-level damage (checksum mismatch, unreadable frame) at entry `seq`.
    Damaged {
        /// The entry's position.
        seq: u64,
        /// What the store reported.
        reason: String,
    },
    /// The bytes at `seq` differ from the leaf hash the store recorded when appending them.
    LeafHashMismatch {
        /// The entry's position.
        seq: u64,
    },
    /// The bytes at `seq` are not a valid entry.
    Malformed {
        /// The entry's position.
        seq: u64,
        /// Why decoding failed.
        reason: DecodeError,
    },
    /// Entry `seq` is absent: the next stored entry carries `found`.
    Missing {
        /// The expected sequence number.
        seq: u64,
        /// The sequence number found in its place.
        found: u64,
    },
    /// Entries `seq` and `found` are stored in swapped order.
    Reordered {
        /// The expected sequence number.
        seq: u64,
        /// The sequence number found in its place.
        found: u64,
    },
    /// Entry `found` appears again where `seq` was expected.
    Duplicate {
        /// The expected sequence number.
        seq: u64,
        /// The sequence number found in its place.
        found: u64,
    },
    /// Entry `seq` no longer hashes to the link recorded in entry `seq + 1`.
    ChainBroken {
        /// The entry whose hash does not match.
        seq: u64,
    },
    /// A checkpoint's note is malformed or its signature does not verify with the trusted key.
    CheckpointInvalid {
        /// Position among the stored checkpoints, from 0.
        index: usize,
        /// The tree size it claims, if readable.
        size: Option<u64>,
        /// Why it is rejected.
        reason: ProofError,
    },
    /// The entries do not hash to the root a valid checkpoint signed for `size`: something in
    /// `first_unattested..size` was rewritten.
    CheckpointRootMismatch {
        /// The checkpoint's tree size.
        size: u64,
        /// The size of the last checkpoint that matched (0 if none).
        first_unattested: u64,
    },
    /// A checkpoint covers more entries than the ledger holds: entries were removed from the end.
    CheckpointBeyondEnd {
        /// The checkpoint's tree size.
        size: u64,
        /// Entries present.
        entries: u64,
    },
}

impl VerifyFailure {
    /// The first sequence number concerned, when the failure is tied to one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            VerifyFailure::Damaged { seq, .. }
            | VerifyFailure::LeafHashMismatch { seq }
            | VerifyFailure::Malformed { seq, .. }
            | VerifyFailure::Missing { seq, .. }
            | VerifyFailure::Reordered { seq, .. }
            | VerifyFailure::Duplicate { seq, .. }
            | VerifyFailure::ChainBroken { seq } => Some(*seq),
            VerifyFailure::CheckpointRootMismatch {
                first_unattested, ..
            } => Some(*first_unattested),
            VerifyFailure::CheckpointBeyondEnd { entries, .. } => Some(*entries),
            VerifyFailure::CheckpointInvalid { .. } => None,
        }
    }
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Damaged { seq, reason } => {
                write!(f, "entry {seq}: storage damage: {reason}")
            }
            VerifyFailure::LeafHashMismatch { seq } => {
                write!(
                    f,
                    "entry {seq}: content differs from the hash recorded when it was appended"
                )
            }
            VerifyFailure::Malformed { seq, reason } => {
                write!(f, "entry {seq}: not a valid entry: {reason}")
            }
            VerifyFailure::Missing { seq, found } => {
                write!(
                    f,
                    "entry {seq}: missing (entry {found} is stored in its place): deleted"
                )
            }
            VerifyFailure::Reordered { seq, found } => {
                write!(
                    f,
                    "entry {seq}: out of order (entry {found} is stored before it): reordered"
                )
            }
            VerifyFailure::Duplicate { seq, found } => {
                write!(
                    f,
                    "entry {seq}: entry {found} is stored again in its place: duplicated or reordered"
                )
            }
            VerifyFailure::ChainBroken { seq } => write!(
                f,
                "entry {seq}: altered (its hash no longer matches the link recorded in entry {})",
                seq + 1
            ),
            VerifyFailure::CheckpointInvalid {
                index,
                size,
                reason,
            } => match size {
                Some(size) => write!(f, "checkpoint #{index} (tree size {size}): {reason}"),
                None => write!(f, "checkpoint #{index}: {reason}"),
            },
            VerifyFailure::CheckpointRootMismatch {
                size,
                first_unattested,
            } => write!(
                f,
                "entries {first_unattested}..{size}: do not hash to the root signed by the checkpoint at tree size {size}: rewritten"
            ),
            VerifyFailure::CheckpointBeyondEnd { size, entries } => write!(
                f,
                "entry {entries}: missing: a checkpoint covers {size} entries but the ledger holds {entries}: entries removed from the end"
            ),
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Stored checkpoints.
    pub checkpoints: usize,
    /// Largest tree size attested by a checkpoint that verified.
    pub attested_size: u64,
    /// The first failure, if any.
    pub failure: Option<VerifyFailure>,
}

/// A checkpoint as verify sees it: claimed size and whether it stands.
struct Claim {
    index: usize,
    size: Option<u64>,
    root: Option<Hash>,
    invalid: Option<ProofError>,
}

fn claims(notes: &[String], verifier: &CheckpointVerifier) -> Vec<Claim> {
    let mut claims: Vec<Claim> = notes
        .iter()
        .enumerate()
        .map(|(index, note)| {
            let size = parse_note(note).ok().map(|(c, _)| c.size);
            match verifier.verify(note) {
                Ok(checkpoint) => Claim {
                    index,
                    size,
                    root: Some(checkpoint.root),
                    invalid: None,
                },
                Err(reason) => Claim {
                    index,
                    size,
                    root: None,
                    invalid: Some(reason),
                },
            }
        })
        .collect();
    // Unreadable notes sort first: with no size they cannot be placed anywhere later.
    claims.sort_by_key(|c| (c.size.map_or(0, |s| s + 1), c.index));
    claims
}

/// Verifies the whole ledger; `progress(done, total)` is called after each page.
pub async fn verify(
    store: &Store,
    verifier: &CheckpointVerifier,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport, LedgerError> {
    let notes: Vec<String> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|c| c.note)
        .collect();
    let claims = claims(&notes, verifier);
    let (total, _) = store.head().await?;
    let mut report = VerifyReport {
        entries: 0,
        checkpoints: notes.len(),
        attested_size: 0,
        failure: None,
    };
    let mut next_claim = 0;
    let mut frontier = Frontier::new();
    let mut prev: Hash = [0; 32];
    let mut buffer: VecDeque<RawEntry> = VecDeque::new();
    let mut next_position = 0u64;
    let mut exhausted = false;
    loop {
        // Check the checkpoints that end where the stream stands.
        while let Some(claim) = claims.get(next_claim) {
            let size = claim.size.unwrap_or(0);
            if size > frontier.size() {
                break;
            }
            next_claim += 1;
            if let Some(reason) = &claim.invalid {
                report.failure = Some(VerifyFailure::CheckpointInvalid {
                    index: claim.index,
                    size: claim.size,
                    reason: reason.clone(),
                });
                return Ok(report);
            }
            if claim.root != Some(frontier.root()) {
                report.failure = Some(VerifyFailure::CheckpointRootMismatch {
                    size,
                    first_unattested: report.attested_size,
                });
                return Ok(report);
            }
            report.attested_size = size;
        }
        if buffer.len() < 2 && !exhausted {
            let page = store.read_raw(next_position, PAGE).await?;
            exhausted = page.len() < PAGE;
            if let Some(last) = page.last() {
                next_position = last.position + 1;
            }
            buffer.extend(page);
            progress(frontier.size(), total);
        }
        let Some(raw) = buffer.pop_front() else { break };
        let seq = frontier.size();
        if let Some(failure) = check_entry(seq, &raw, buffer.front(), &prev) {
            report.failure = Some(failure);
            return Ok(report);
        }
        prev = leaf_hash(&raw.bytes);
        frontier.push(prev);
        report.entries = frontier.size();
    }
    progress(frontier.size(), total.max(frontier.size()));
    if let Some(claim) = claims.get(next_claim) {
        report.failure = Some(VerifyFailure::CheckpointBeyondEnd {
            size: claim.size.unwrap_or(0),
            entries: frontier.size(),
        });
    }
    Ok(report)
}

/// Checks one entry at expected position `seq`; `next` is the one stored after it, if known.
fn check_entry(
    seq: u64,
    raw: &RawEntry,
    next: Option<&RawEntry>,
    prev: &Hash,
) -> Option<VerifyFailure> {
    if let Some(reason) = &raw.damage {
        return Some(VerifyFailure::Damaged {
            seq,
            reason: reason.clone(),
        });
    }
    let leaf = leaf_hash(&raw.bytes);
    if raw.stored_leaf_hash.is_some_and(|stored| stored != leaf) {
        return Some(VerifyFailure::LeafHashMismatch { seq });
    }
    let entry = match encoding::decode(&raw.bytes) {
        Ok(entry) => entry,
        Err(reason) => return Some(VerifyFailure::Malformed { seq, reason }),
    };
    if entry.seq > seq {
        let next_seq = next
            .and_then(|n| encoding::decode(&n.bytes).ok())
            .map(|n| n.seq);
        return Some(if next_seq == Some(seq) {
            VerifyFailure::Reordered {
                seq,
                found: entry.seq,
            }
        } else {
            VerifyFailure::Missing {
                seq,
                found: entry.seq,
            }
        });
    }
    if entry.seq < seq {
        return Some(VerifyFailure::Duplicate {
            seq,
            found: entry.seq,
        });
    }
    if entry.prev_hash != *prev {
        // Entry 0 links to zeros; a mismatch there means entry 0 itself was altered.
        return Some(VerifyFailure::ChainBroken {
            seq: seq.saturating_sub(1),
        });
    }
    None
}
