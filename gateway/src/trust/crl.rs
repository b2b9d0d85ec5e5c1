//! The CRLs the gateway holds: loaded from a directory and from the fetch cache, looked up per issuer.
//!
//! The store keeps every CRL it was given and answers with the newest one whose signature verifies with the
//! issuer actually found in the chain, so a forged or stale CRL cannot displace the last valid one.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use openssl::x509::{CrlStatus, X509Crl, X509Ref};

use super::error::TrustError;
use super::names::{dn_string, serial_hex};
use super::time::Timestamp;

/// Where a CRL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlOrigin {
    /// A file of the configured CRL directory.
    File(PathBuf),
    /// An HTTP distribution point (fetched now or earlier and read back from the cache).
    Url(String),
}

/// One CRL with its decoded times.
pub struct HeldCrl {
    /// The CRL itself.
    pub crl: X509Crl,
    /// RFC 4514 issuer name.
    pub issuer: String,
    /// thisUpdate.
    pub this_update: Timestamp,
    /// nextUpdate (absent is allowed by RFC 5280 but treated as already expired).
    pub next_update: Option<Timestamp>,
    /// Where it came from.
    pub origin: CrlOrigin,
    /// Signature values of the issuer certificates this CRL verified against: a CA certificate is
    /// identified by its own signature bytes, so the RSA/ECDSA check runs once per issuer, not per message.
    verified_by: Mutex<Vec<Vec<u8>>>,
}

impl HeldCrl {
    /// Decodes a CRL (PEM or DER).
    pub fn parse(bytes: &[u8], origin: CrlOrigin) -> Result<Self, String> {
        let crl = if bytes.starts_with(b"-----BEGIN")
            || bytes.windows(15).any(|w| w == b"-----BEGIN X509")
        {
            X509Crl::from_pem(bytes)
        } else {
            X509Crl::from_der(bytes)
        }
        .map_err(|e| format!("not a CRL: {e}"))?;
        let this_update = Timestamp::from_asn1(crl.last_update()).map_err(|e| e.to_string())?;
        let next_update = match crl.next_update() {
            Some(time) => Some(Timestamp::from_asn1(time).map_err(|e| e.to_string())?),
            None => None,
        };
        let issuer = dn_string(crl.issuer_name());
        Ok(Self {
            crl,
            issuer,
            this_update,
            next_update,
            origin,
            verified_by: Mutex::new(Vec::new()),
        })
    }

    fn issued_by(&self, issuer: &X509Ref) -> bool {
        let same_name = matches!(
            self.crl.issuer_name().try_cmp(issuer.subject_name()),
            Ok(std::cmp::Ordering::Equal)
        );
        if !same_name {
            return false;
        }
        let issuer_signature = issuer.signature().as_slice();
        let mut verified = self
            .verified_by
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if verified.iter().any(|known| known == issuer_signature) {
            return true;
        }
        // A CRL is only as good as its signature: check it against the issuer found in the chain.
        let good = issuer
            .public_key()
            .and_then(|key| self.crl.verify(&key))
            .unwrap_or(false);
        if good {
            verified.push(issuer_signature.to_vec());
        }
        good
    }
}

/// What a revocation check found for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationCheck {
    /// The CRL issuer.
    pub issuer: String,
    /// thisUpdate of the CRL used.
    pub this_update: Timestamp,
    /// nextUpdate of the CRL used.
    pub next_update: Option<Timestamp>,
    /// True when the CRL was past nextUpdate and accepted only thanks to the grace period.
    pub in_grace_period: bool,
}

/// All CRLs held, shared between the verifier (reads) and the fetcher (writes).
#[derive(Default)]
pub struct CrlStore {
    by_issuer: RwLock<HashMap<String, Vec<HeldCrl>>>,
    /// HTTP distribution points seen in chains, for the fetcher to pick up.
    seen_urls: Mutex<BTreeSet<String>>,
}

impl CrlStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every file of a directory that decodes as a CRL (PEM files may hold only one CRL each).
    pub fn load_dir(&self, dir: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
        let mut rejected = Vec::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        for path in entries {
            let bytes = std::fs::read(&path)?;
            match HeldCrl::parse(&bytes, CrlOrigin::File(path.clone())) {
                Ok(held) => self.insert(held),
                Err(reason) => rejected.push((path, reason)),
            }
        }
        Ok(rejected)
    }

    /// Adds a CRL. A CRL identical in issuer and thisUpdate to one held replaces nothing.
    pub fn insert(&self, held: HeldCrl) {
        let mut map = self
            .by_issuer
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let list = map.entry(held.issuer.clone()).or_default();
        if list
            .iter()
            .any(|h| h.this_update == held.this_update && h.origin == held.origin)
        {
            return;
        }
        list.push(held);
        // Newest first, so lookups stop at the first CRL that verifies.
        list.sort_by_key(|h| std::cmp::Reverse(h.this_update));
    }

    /// Adds a CRL whose signature the caller verified, dropping older CRLs of the same origin.
    pub fn replace_from_origin(&self, held: HeldCrl) {
        {
            let mut map = self
                .by_issuer
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for list in map.values_mut() {
                list.retain(|h| h.origin != held.origin || h.this_update > held.this_update);
            }
        }
        self.insert(held);
    }

    /// The newest thisUpdate held for a given origin (the fetcher refuses to go back in time).
    pub fn newest_from(&self, origin: &CrlOrigin) -> Option<Timestamp> {
        let map = self
            .by_issuer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.values()
            .flatten()
            .filter(|h| &h.origin == origin)
            .map(|h| h.this_update)
            .max()
    }

    /// nextUpdate of every CRL held (for the refresh schedule).
    pub fn next_updates(&self) -> Vec<Option<Timestamp>> {
        let map = self
            .by_issuer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.values()
            .filter_map(|list| list.first())
            .map(|h| h.next_update)
            .collect()
    }

    /// Remembers an HTTP distribution point so the fetcher keeps its CRL fresh.
    pub fn note_url(&self, url: &str) {
        let mut seen = self
            .seen_urls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !seen.contains(url) {
            seen.insert(url.to_owned());
        }
    }

    /// The distribution points seen so far.
    pub fn seen_urls(&self) -> Vec<String> {
        self.seen_urls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Checks `cert` against the newest valid CRL of `issuer` at `now`.
    pub fn check(
        &self,
        cert: &X509Ref,
        issuer: &X509Ref,
        now: Timestamp,
        grace_secs: u64,
        url: Option<String>,
    ) -> Result<RevocationCheck, TrustError> {
        let issuer_dn = dn_string(issuer.subject_name());
        let map = self
            .by_issuer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(held) = map
            .get(&issuer_dn)
            .and_then(|list| list.iter().find(|h| h.issued_by(issuer)))
        else {
            return Err(TrustError::CrlUnavailable {
                subject: dn_string(cert.subject_name()),
                serial: serial_hex(cert),
                issuer: issuer_dn,
                url,
            });
        };
        let next_update = held.next_update.unwrap_or(held.this_update);
        let grace = i64::try_from(grace_secs).unwrap_or(i64::MAX);
        let in_grace_period = now > next_update;
        if in_grace_period && now.0.saturating_sub(next_update.0) > grace {
            return Err(TrustError::CrlExpired {
                subject: dn_string(cert.subject_name()),
                issuer: issuer_dn,
                this_update: held.this_update,
                next_update,
                now,
                grace_secs,
            });
        }
        match held.crl.get_by_serial(cert.serial_number()) {
            CrlStatus::Revoked(entry) => Err(TrustError::Revoked {
                subject: dn_string(cert.subject_name()),
                issuer: issuer_dn,
                serial: serial_hex(cert),
                revoked_at: Timestamp::from_asn1(entry.revocation_date())
                    .unwrap_or(held.this_update),
                this_update: held.this_update,
                next_update: held.next_update,
            }),
            CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => Ok(RevocationCheck {
                issuer: issuer_dn,
                this_update: held.this_update,
                next_update: held.next_update,
                in_grace_period,
            }),
        }
    }
}
