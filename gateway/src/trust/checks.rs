//! Per-certificate checks made after OpenSSL found a path: validity times, key usages, algorithm policy.
//!
//! OpenSSL's own time and purpose checks are switched off so that these can say which certificate failed,
//! against which instant, and what it carried instead.

use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::x509::X509Ref;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::error::{CheckedAt, TrustError, Usage};
use super::names::{dn_string, serial_hex};
use super::time::Timestamp;

/// Which algorithms are strong enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Smallest RSA modulus, in bits.
    pub min_rsa_bits: u32,
    /// SHA-1 accepted in signatures.
    pub allow_sha1: bool,
    /// MD5 accepted in signatures.
    pub allow_md5: bool,
}

impl Default for AlgorithmPolicy {
    fn default() -> Self {
        Self {
            min_rsa_bits: 2048,
            allow_sha1: false,
            allow_md5: false,
        }
    }
}

impl AlgorithmPolicy {
    /// Whether a digest may be used in a signature; SHA-2 and SHA-3 family only, unless relaxed.
    pub fn digest_allowed(&self, digest: Nid) -> bool {
        match digest {
            Nid::SHA1 => self.allow_sha1,
            Nid::MD5 => self.allow_md5,
            Nid::SHA256
            | Nid::SHA384
            | Nid::SHA512
            | Nid::SHA3_256
            | Nid::SHA3_384
            | Nid::SHA3_512 => true,
            _ => false,
        }
    }

    /// Checks the certificate's public key (RSA size, EC curve).
    pub fn check_key(&self, cert: &X509Ref) -> Result<(), TrustError> {
        let weak = |algorithm: String| TrustError::WeakAlgorithm {
            subject: dn_string(cert.subject_name()),
            serial: serial_hex(cert),
            what: "key",
            algorithm,
        };
        let key = cert.public_key().map_err(|e| TrustError::Malformed {
            reason: e.to_string(),
        })?;
        match key.id() {
            Id::RSA if key.bits() >= self.min_rsa_bits => Ok(()),
            Id::RSA => Err(weak(format!("RSA {}", key.bits()))),
            Id::EC => {
                let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
                match curve {
                    Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1 | Nid::SECP521R1) => Ok(()),
                    Some(other) => Err(weak(format!("EC {}", other.short_name().unwrap_or("?")))),
                    None => Err(weak("EC explicit curve".to_owned())),
                }
            }
            Id::ED25519 | Id::ED448 => Ok(()),
            _ => Err(weak(format!("key type {}", key.id().as_raw()))),
        }
    }

    /// Checks the signature algorithm the issuer used on this certificate.
    pub fn check_signature(&self, cert: &X509Ref) -> Result<(), TrustError> {
        let nid = cert.signature_algorithm().object().nid();
        let digest = nid.signature_algorithms().map(|s| s.digest);
        let allowed = match digest {
            Some(Nid::UNDEF) => nid == Nid::RSASSAPSS,
            Some(digest) => self.digest_allowed(digest),
            None => nid == Nid::RSASSAPSS,
        };
        if allowed {
            return Ok(());
        }
        Err(TrustError::WeakAlgorithm {
            subject: dn_string(cert.subject_name()),
            serial: serial_hex(cert),
            what: "certificate signature",
            algorithm: nid.long_name().unwrap_or("unknown").to_owned(),
        })
    }
}

/// Checks that `at` lies within the certificate's validity period.
pub fn check_validity(
    cert: &X509Ref,
    at: Timestamp,
    checked_at: CheckedAt,
) -> Result<(), TrustError> {
    let time = |t| {
        Timestamp::from_asn1(t).map_err(|e| TrustError::Malformed {
            reason: e.to_string(),
        })
    };
    let not_before = time(cert.not_before())?;
    let not_after = time(cert.not_after())?;
    if at < not_before {
        return Err(TrustError::NotYetValid {
            subject: dn_string(cert.subject_name()),
            serial: serial_hex(cert),
            not_before,
            at,
            checked_at,
        });
    }
    if at > not_after {
        return Err(TrustError::Expired {
            subject: dn_string(cert.subject_name()),
            serial: serial_hex(cert),
            not_after,
            at,
            checked_at,
        });
    }
    Ok(())
}

/// Checks keyUsage and extendedKeyUsage of an end-entity certificate for `usage`.
///
/// A missing extendedKeyUsage fails: IGC-Santé certificates always carry one, and accepting "any" would let
/// a TLS-only certificate sign mail.
pub fn check_usage(cert: &X509Ref, usage: Usage) -> Result<(), TrustError> {
    let der = cert.to_der().map_err(|e| TrustError::Malformed {
        reason: e.to_string(),
    })?;
    let (_, parsed) = X509Certificate::from_der(&der).map_err(|e| TrustError::Malformed {
        reason: e.to_string(),
    })?;
    let subject = || dn_string(cert.subject_name());
    let malformed = |e: x509_parser::error::X509Error| TrustError::Malformed {
        reason: e.to_string(),
    };

    let key_usage = parsed.key_usage().map_err(malformed)?;
    let key_usage_ok = match (&key_usage, usage) {
        // RFC 5280: no keyUsage extension means no restriction.
        (None, _) => true,
        (Some(ku), Usage::SmimeSigning) => {
            ku.value.digital_signature() || ku.value.non_repudiation()
        }
        (Some(ku), Usage::TlsClient) => ku.value.digital_signature(),
    };
    if !key_usage_ok {
        return Err(TrustError::KeyUsage {
            subject: subject(),
            serial: serial_hex(cert),
            usage,
            found: key_usage.map(|ku| ku.value.to_string()).unwrap_or_default(),
        });
    }

    let eku = parsed.extended_key_usage().map_err(malformed)?;
    let (required, eku_ok) = match (&eku, usage) {
        (Some(e), Usage::SmimeSigning) => ("emailProtection", e.value.email_protection),
        (Some(e), Usage::TlsClient) => ("clientAuth", e.value.client_auth),
        (None, Usage::SmimeSigning) => ("emailProtection", false),
        (None, Usage::TlsClient) => ("clientAuth", false),
    };
    if !eku_ok {
        return Err(TrustError::ExtendedKeyUsage {
            subject: subject(),
            serial: serial_hex(cert),
            usage,
            required,
            found: eku
                .map(|e| describe_eku(e.value))
                .unwrap_or_else(|| "no extendedKeyUsage".to_owned()),
        });
    }
    Ok(())
}

fn describe_eku(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> String {
    let mut names: Vec<String> = [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.server_auth, "serverAuth"),
        (eku.client_auth, "clientAuth"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, name)| (*name).to_owned())
    .collect();
    names.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    names.join(", ")
}

/// The OID of the first critical extension x509-parser does not know, to explain OpenSSL's refusal.
pub fn unknown_critical_extension(cert: &X509Ref) -> Option<String> {
    let der = cert.to_der().ok()?;
    let (_, parsed) = X509Certificate::from_der(&der).ok()?;
    parsed
        .extensions()
        .iter()
        .find(|ext| {
            ext.critical
                && matches!(
                    ext.parsed_extension(),
                    ParsedExtension::UnsupportedExtension { .. }
                )
        })
        .map(|ext| ext.oid.to_id_string())
}

/// rfc822Name entries of the subjectAltName.
pub fn rfc822_names(cert: &X509Ref) -> Vec<String> {
    cert.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.email().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// HTTP(S) URIs of the CRL distribution points.
pub fn http_distribution_points(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|point| point.distpoint())
        .filter_map(|name| name.fullname())
        .flat_map(|names| {
            names
                .iter()
                .filter_map(|n| n.uri().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .filter(|uri| uri.starts_with("http://") || uri.starts_with("https://"))
        .collect()
}
