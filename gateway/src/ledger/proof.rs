//! Inclusion proof bundles: everything a third party needs, besides the public key, to check
//! that an entry is in the ledger that the gateway signed.
//!
//! Checking a bundle (what [`verify_bundle`] does, and what README.md spells out by hand):
//! 1. verify the checkpoint note's Ed25519 signature with the published public key;
//! 2. leaf hash = SHA-256(0x00 || base64-decoded `entry`);
//! 3. fold `path` into a root with the RFC 9162 §2.1.3.2 algorithm (`seq`, `tree_size`);
//! 4. that root must equal the checkpoint's root, and `tree_size` its size.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::checkpoint::CheckpointVerifier;
use super::encoding;
use super::entry::{Entry, Hash};
use super::error::ProofError;
use super::merkle::{leaf_hash, verify_inclusion};

/// The `format` value of version 1 bundles.
pub const BUNDLE_FORMAT: &str = "mssante-gateway-ledger-inclusion-proof/v1";

/// An inclusion proof for one entry against one signed checkpoint (serialised as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The entry's sequence number (its leaf index).
    pub seq: u64,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The entry's canonical bytes, standard base64.
    pub entry: String,
    /// SHA-256(0x00 || entry), hex (informative; recomputed by the verifier).
    pub leaf_hash: String,
    /// The audit path, leaf side first, hex.
    pub path: Vec<String>,
    /// The signed checkpoint note (C2SP tlog-checkpoint).
    pub checkpoint: String,
    /// A readable rendering of the entry (informative; not covered by the proof).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<serde_json::Value>,
}

impl InclusionBundle {
    /// Builds a bundle from its parts.
    pub fn new(
        seq: u64,
        tree_size: u64,
        entry_bytes: &[u8],
        path: &[Hash],
        checkpoint: String,
    ) -> Self {
        InclusionBundle {
            format: BUNDLE_FORMAT.to_string(),
            seq,
            tree_size,
            entry: BASE64.encode(entry_bytes),
            leaf_hash: hex::encode(leaf_hash(entry_bytes)),
            path: path.iter().map(hex::encode).collect(),
            checkpoint,
            decoded: None,
        }
    }
}

/// Checks a bundle with the public key alone; returns the proven entry.
pub fn verify_bundle(
    bundle: &InclusionBundle,
    verifier: &CheckpointVerifier,
) -> Result<Entry, ProofError> {
    let bad = |why: &str| ProofError::MalformedBundle(why.to_string());
    if bundle.format != BUNDLE_FORMAT {
        return Err(bad("unknown format"));
    }
    let checkpoint = verifier.verify(&bundle.checkpoint)?;
    if checkpoint.size != bundle.tree_size {
        return Err(bad("tree_size differs from the checkpoint's size"));
    }
    let bytes = BASE64
        .decode(&bundle.entry)
        .map_err(|_| bad("entry is not base64"))?;
    let path: Vec<Hash> = bundle
        .path
        .iter()
        .map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("path holds something other than 32-byte hex hashes"))?;
    verify_inclusion(
        bundle.seq,
        checkpoint.size,
        &leaf_hash(&bytes),
        &path,
        &checkpoint.root,
    )?;
    let entry =
        encoding::decode(&bytes).map_err(|e| ProofError::MalformedBundle(format!("entry: {e}")))?;
    if entry.seq != bundle.seq {
        return Err(bad("the entry's own sequence number differs from seq"));
    }
    Ok(entry)
}
