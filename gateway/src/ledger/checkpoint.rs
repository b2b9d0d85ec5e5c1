//! Signed checkpoints in the C2SP `tlog-checkpoint` / `signed-note` formats, and their keys.
//!
//! A checkpoint body is three lines: the origin, the tree size in decimal, the root hash in
//! standard base64; our writer adds one extension line `timestamp <unix seconds>` (the
//! architecture asks that checkpoints carry their time). The note is the body, a blank line, and
//! one signature line per signer: `— <name> <base64(key hash (4 bytes) || Ed25519 signature)>`,
//! where the signature covers the body bytes including the final newline and the key hash is
//! the first four bytes of SHA-256(name || 0x0A || 0x01 || public key).
//!
//! Keys use the `note` package encodings so that Go's `golang.org/x/mod/sumdb/note` tooling
//! reads them: the private key file holds `PRIVATE+KEY+<name>+<hash hex>+<base64(0x01 || seed)>`
//! and the public ("verifier") key `<name>+<hash hex>+<base64(0x01 || public key)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::entry::Hash;
use super::error::ProofError;

/// The algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The signature line prefix: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A tree head: what a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (unique name of this ledger).
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// RFC 6962 root hash over those entries.
    pub root: Hash,
    /// Extension lines, in order (ours: `timestamp <unix seconds>`).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The signed body text, ending with a newline.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// The `timestamp` extension's value, if present.
    pub fn timestamp(&self) -> Option<u64> {
        self.extensions
            .iter()
            .find_map(|line| line.strip_prefix("timestamp ")?.parse().ok())
    }

    /// Parses a checkpoint body (without the signatures).
    pub fn parse_body(body: &str) -> Result<Checkpoint, ProofError> {
        let malformed = |what: &str| ProofError::MalformedCheckpoint(what.to_string());
        let text = body
            .strip_suffix('\n')
            .ok_or_else(|| malformed("body does not end with a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| malformed("no origin line"))?;
        let size = lines
            .next()
            .filter(|l| {
                l.bytes().all(|b| b.is_ascii_digit()) && (l.len() == 1 || !l.starts_with('0'))
            })
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| malformed("tree size line is not a decimal number"))?;
        let root_line = lines.next().ok_or_else(|| malformed("no root hash line"))?;
        let root: Hash = BASE64
            .decode(root_line)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(malformed("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key hash.
    pub key_hash: [u8; 4],
    /// The signature bytes after the key hash.
    pub signature: Vec<u8>,
}

/// Splits a signed note into its body and signature lines.
pub fn parse_note(note: &str) -> Result<(Checkpoint, Vec<NoteSignature>), ProofError> {
    let malformed = |what: &str| ProofError::MalformedCheckpoint(what.to_string());
    let split = note
        .find("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let body = &note[..=split];
    let rest = &note[split + 2..];
    let rest = rest
        .strip_suffix('\n')
        .ok_or_else(|| malformed("signature block does not end with a newline"))?;
    let mut signatures = Vec::new();
    for line in rest.split('\n') {
        let line = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| malformed("signature line does not start with an em dash"))?;
        let (name, encoded) = line
            .split_once(' ')
            .ok_or_else(|| malformed("signature line has no key name"))?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| malformed("signature is not base64"))?;
        if bytes.len() < 5 || name.is_empty() {
            return Err(malformed("signature too short"));
        }
        let mut key_hash = [0u8; 4];
        key_hash.copy_from_slice(&bytes[..4]);
        signatures.push(NoteSignature {
            name: name.to_string(),
            key_hash,
            signature: bytes[4..].to_vec(),
        });
    }
    if signatures.is_empty() {
        return Err(malformed("no signature lines"));
    }
    Ok((Checkpoint::parse_body(body)?, signatures))
}

/// The note key hash: SHA-256(name || "\n" || 0x01 || public key), first four bytes.
pub fn key_hash(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALG_ED25519]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A key name is non-empty and has no spaces, plus signs or newlines (signed-note rules).
fn check_name(name: &str) -> Result<(), ProofError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(ProofError::MalformedKey(format!(
            "key name {name:?} must be non-empty without spaces or '+'"
        )));
    }
    Ok(())
}

/// The checkpoint signer: a named Ed25519 private key.
pub struct CheckpointSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<CheckpointSigner, ProofError> {
        check_name(name)?;
        Ok(CheckpointSigner {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A signer with a fresh random key (from the operating system's generator via OpenSSL).
    pub fn generate(name: &str) -> Result<CheckpointSigner, ProofError> {
        let mut seed = [0u8; 32];
        openssl::rand::rand_bytes(&mut seed)
            .map_err(|e| ProofError::MalformedKey(format!("no randomness for a new key: {e}")))?;
        CheckpointSigner::from_seed(name, seed)
    }

    /// Parses the private key file's text (`PRIVATE+KEY+name+hash+base64`).
    pub fn parse(text: &str) -> Result<CheckpointSigner, ProofError> {
        let bad = |why: &str| ProofError::MalformedKey(format!("private key: {why}"));
        let rest = text
            .trim_end()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("does not start with PRIVATE+KEY+"))?;
        // The key's base64 may itself contain '+': only the first two separators count.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hash), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+hash+key"));
        };
        let bytes = BASE64.decode(key).map_err(|_| bad("key is not base64"))?;
        if bytes.len() != 33 || bytes[0] != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[1..]);
        let signer = CheckpointSigner::from_seed(name, seed)?;
        if hash != hex::encode(signer.verifier().key_hash) {
            return Err(bad("key hash does not match the key"));
        }
        Ok(signer)
    }

    /// The private key file's text (secret: write it owner-only).
    pub fn to_private_text(&self) -> String {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}\n",
            self.name,
            hex::encode(self.verifier().key_hash),
            BASE64.encode(bytes)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CheckpointVerifier {
        let public = self.key.verifying_key();
        CheckpointVerifier {
            name: self.name.clone(),
            key_hash: key_hash(&self.name, public.as_bytes()),
            key: public,
        }
    }

    /// Signs a checkpoint and returns the complete note text.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut bytes = self.verifier().key_hash.to_vec();
        bytes.extend_from_slice(&signature.to_bytes());
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(bytes)
        )
    }
}

/// A named Ed25519 public key that checks checkpoint notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointVerifier {
    name: String,
    key_hash: [u8; 4],
    key: VerifyingKey,
}

impl CheckpointVerifier {
    /// Parses a verifier key (`name+hash+base64(0x01 || key)`).
    pub fn parse(text: &str) -> Result<CheckpointVerifier, ProofError> {
        let bad = |why: &str| ProofError::MalformedKey(format!("public key: {why}"));
        // The key's base64 may itself contain '+': only the first two separators count.
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+hash+key"));
        };
        check_name(name)?;
        let bytes = BASE64.decode(key).map_err(|_| bad("key is not base64"))?;
        if bytes.len() != 33 || bytes[0] != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(&bytes[1..]);
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 point"))?;
        let computed = key_hash(name, &public);
        if hash != hex::encode(computed) {
            return Err(bad("key hash does not match the key"));
        }
        Ok(CheckpointVerifier {
            name: name.to_string(),
            key_hash: computed,
            key,
        })
    }

    /// The verifier key text (public: give it to auditors).
    pub fn to_text(&self) -> String {
        let mut bytes = vec![ALG_ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash),
            BASE64.encode(bytes)
        )
    }

    /// The public key as a PEM SubjectPublicKeyInfo, for `openssl pkeyutl -verify`.
    pub fn to_pem(&self) -> String {
        // SPKI for Ed25519 (RFC 8410): a fixed 12-byte prefix, then the 32-byte key.
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(self.key.as_bytes());
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            BASE64.encode(der)
        )
    }

    /// `name+keyhash`, how errors name this key.
    pub fn id(&self) -> String {
        format!("{}+{}", self.name, hex::encode(self.key_hash))
    }

    /// Checks that `note` carries a valid signature by this key; returns the checkpoint.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, ProofError> {
        let (checkpoint, signatures) = parse_note(note)?;
        let ours = signatures
            .iter()
            .find(|s| s.name == self.name && s.key_hash == self.key_hash);
        let Some(ours) = ours else {
            let found: Vec<String> = signatures
                .iter()
                .map(|s| format!("{}+{}", s.name, hex::encode(s.key_hash)))
                .collect();
            return Err(ProofError::NoSignatureByKey {
                expected: self.id(),
                found: found.join(", "),
            });
        };
        let signature = Signature::from_slice(&ours.signature)
            .map_err(|_| ProofError::BadSignature { key: self.id() })?;
        self.key
            .verify(checkpoint.body().as_bytes(), &signature)
            .map_err(|_| ProofError::BadSignature { key: self.id() })?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            origin: "gateway.mssante.test/ledger".into(),
            size: 8,
            root: [5; 32],
            extensions: vec!["timestamp 1700000000".into()],
        }
    }

    #[test]
    fn sign_parse_verify() {
        let signer = CheckpointSigner::from_seed("gateway.mssante.test/ledger", [1; 32]).unwrap();
        let note = signer.sign(&sample());
        assert!(note.contains("\n\n\u{2014} gateway.mssante.test/ledger "));
        let verifier = CheckpointVerifier::parse(&signer.verifier().to_text()).unwrap();
        assert_eq!(verifier.verify(&note).unwrap(), sample());
        assert_eq!(sample().timestamp(), Some(1_700_000_000));
        let tampered = note.replace("\n8\n", "\n9\n");
        assert!(matches!(
            verifier.verify(&tampered),
            Err(ProofError::BadSignature { .. })
        ));
        let other = CheckpointSigner::from_seed("gateway.mssante.test/ledger", [2; 32]).unwrap();
        assert!(matches!(
            other.verifier().verify(&note),
            Err(ProofError::NoSignatureByKey { .. })
        ));
    }

    #[test]
    fn key_texts_round_trip() {
        for seed in 0..=255u8 {
            // Some of these keys have a '+' in their base64.
            let signer = CheckpointSigner::from_seed("example", [seed; 32]).unwrap();
            assert_eq!(
                CheckpointSigner::parse(&signer.to_private_text())
                    .unwrap()
                    .verifier(),
                signer.verifier()
            );
            assert_eq!(
                CheckpointVerifier::parse(&signer.verifier().to_text()).unwrap(),
                signer.verifier()
            );
        }
        let signer = CheckpointSigner::from_seed("example", [3; 32]).unwrap();
        let again = CheckpointSigner::parse(&signer.to_private_text()).unwrap();
        assert_eq!(again.verifier(), signer.verifier());
        assert!(
            signer
                .verifier()
                .to_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA")
        );
        assert!(CheckpointSigner::parse("PRIVATE+KEY+example+00000000+AQ==").is_err());
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            "",
            "origin\n",
            "origin\n01\nAAAA\n",
            "origin\n1\nnot base64\n",
            "o\n1\nAAAA\n",
        ] {
            assert!(Checkpoint::parse_body(body).is_err(), "{body:?}");
        }
    }
}
