//! Identity of a TLS client, extracted from its leaf certificate.
//!
//! The subject and issuer are rendered as RFC 4514 strings so that they can be compared with the
//! `DNCertificatOperateur` values of the liste blanche (which use the same most-specific-first
//! convention, e.g. `CN=mta.example,OU=...,O=...,C=FR`) and written to logs and the spool.

use sha2::{Digest, Sha256};
use x509_parser::asn1_rs::{Any, BmpString, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Who the peer is, according to the certificate it presented during the TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// Subject DN, RFC 4514, short attribute names, most specific RDN first.
    pub subject: String,
    /// Issuer DN, same format as `subject`.
    pub issuer: String,
    /// Serial number, lowercase hex without colons or sign-padding byte.
    pub serial: String,
    /// SHA-256 of the certificate's DER encoding, lowercase hex without colons.
    pub sha256_fingerprint: String,
}

/// Why a peer certificate could not be turned into a [`PeerIdentity`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerIdentityError {
    /// The bytes are not a DER X.509 certificate.
    #[error("peer certificate is not valid DER X.509: {reason}")]
    Malformed {
        /// Parser diagnostic.
        reason: String,
    },
    /// The certificate parsed but bytes follow it.
    #[error("peer certificate has {trailing} trailing bytes after the DER structure")]
    TrailingData {
        /// Number of bytes after the certificate.
        trailing: usize,
    },
    /// A name attribute could not be rendered (bad string encoding).
    #[error("peer certificate {field} contains an attribute that cannot be rendered: {reason}")]
    BadName {
        /// `subject` or `issuer`.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl PeerIdentity {
    /// Extracts the identity from a DER-encoded X.509 certificate (the leaf the client sent).
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity, PeerIdentityError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|error| PeerIdentityError::Malformed {
                reason: error.to_string(),
            })?;
        if !rest.is_empty() {
            return Err(PeerIdentityError::TrailingData {
                trailing: rest.len(),
            });
        }
        let subject = rfc4514(cert.subject()).map_err(|reason| PeerIdentityError::BadName {
            field: "subject",
            reason,
        })?;
        let issuer = rfc4514(cert.issuer()).map_err(|reason| PeerIdentityError::BadName {
            field: "issuer",
            reason,
        })?;
        Ok(PeerIdentity {
            subject,
            issuer,
            serial: serial_hex(cert.raw_serial()),
            sha256_fingerprint: hex::encode(Sha256::digest(der)),
        })
    }
}

/// Hex of the serial's magnitude: the DER sign-padding `00` is dropped so that the value matches
/// what `openssl x509 -serial` prints (lowercased).
fn serial_hex(raw: &[u8]) -> String {
    let trimmed = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    hex::encode(trimmed)
}

/// Renders a name as RFC 4514: RDNs in reverse of their encoded order (most specific first),
/// multi-valued RDNs joined with `+`.
fn rfc4514(name: &X509Name<'_>) -> Result<String, String> {
    let mut rdns = Vec::new();
    for rdn in name.iter() {
        let mut parts = Vec::new();
        for attribute in rdn.iter() {
            parts.push(render_attribute(attribute)?);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn render_attribute(attribute: &AttributeTypeAndValue<'_>) -> Result<String, String> {
    let oid = attribute.attr_type().to_id_string();
    let name = short_name(&oid);
    let value = match string_value(attribute.attr_value())? {
        Some(text) => escape_value(&text),
        // RFC 4514 §2.4: values without a string form are written as `#` + hex of their BER.
        None => {
            let der = attribute
                .attr_value()
                .to_der_vec()
                .map_err(|error| format!("cannot re-encode {oid} value: {error}"))?;
            format!("#{}", hex::encode(der))
        }
    };
    Ok(format!("{}={value}", name.unwrap_or(&oid)))
}

/// Short names by OID. RFC 4514 §3 names plus `emailAddress` (OpenSSL's spelling), which IGC-Santé
/// certificates of older ranges carry; everything else is written as a dotted OID.
pub(crate) fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.6" => "C",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// Decodes string-typed values; `Ok(None)` for values that are not strings.
fn string_value(value: &Any<'_>) -> Result<Option<String>, String> {
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(value.data)
            .map(|text| Some(text.to_owned()))
            .map_err(|error| format!("invalid string value: {error}")),
        // T.61 in practice carries Latin-1 in certificates; mapping bytes to code points is the
        // usual lossless reading.
        Tag::T61String => Ok(Some(value.data.iter().map(|&b| char::from(b)).collect())),
        Tag::BmpString => BmpString::try_from(value.clone())
            .map(|text| Some(text.string()))
            .map_err(|error| format!("invalid BMPString: {error}")),
        Tag::UniversalString => {
            if !value.data.len().is_multiple_of(4) {
                return Err("UniversalString length is not a multiple of 4".to_owned());
            }
            value
                .data
                .chunks_exact(4)
                .map(|quad| {
                    char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]]))
                        .ok_or_else(|| "invalid code point in UniversalString".to_owned())
                })
                .collect::<Result<String, String>>()
                .map(Some)
        }
        _ => Ok(None),
    }
}

/// RFC 4514 §2.4 escaping: the special characters anywhere, a leading space or `#`, a trailing
/// space, and NUL. Control characters are hex-escaped too so that a name can never inject a line
/// break into the spool prologue or a log line.
pub(crate) fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, character) in value.chars().enumerate() {
        match character {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(character);
            }
            ' ' if index == 0 || index == last => out.push_str("\\ "),
            '#' if index == 0 => out.push_str("\\#"),
            c if c.is_control() => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("\\{byte:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn cert_der(name: &str) -> Option<Vec<u8>> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("certs")
            .join(name);
        let pem = std::fs::read(&path).ok()?;
        let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
        Some(parsed.contents)
    }

    #[test]
    fn escapes_specials() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value(" lead"), "\\ lead");
        assert_eq!(escape_value("trail "), "trail\\ ");
        assert_eq!(escape_value("#x#"), "\\#x#");
        assert_eq!(escape_value("a\nb"), "a\\0ab");
        assert_eq!(escape_value("Côte-d'Or (21)"), "Côte-d'Or (21)");
    }

    #[test]
    fn serial_drops_sign_byte_only() {
        assert_eq!(serial_hex(&[0x00, 0x9f, 0x01]), "9f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x12, 0x00]), "1200");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            PeerIdentity::from_der(b"not a certificate"),
            Err(PeerIdentityError::Malformed { .. })
        ));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let Some(mut der) = cert_der("tls/hopital-a.pem") else {
            eprintln!("skipped: certs/tls/hopital-a.pem not generated yet");
            return;
        };
        der.push(0);
        assert!(matches!(
            PeerIdentity::from_der(&der),
            Err(PeerIdentityError::TrailingData { trailing: 1 })
        ));
    }

    #[test]
    fn reads_test_client_certificate() {
        let Some(der) = cert_der("tls/hopital-a.pem") else {
            eprintln!("skipped: certs/tls/hopital-a.pem not generated yet");
            return;
        };
        let peer = PeerIdentity::from_der(&der).expect("test certificate parses");
        // Same text as `openssl x509 -subject -nameopt RFC2253` and the liste blanche entry.
        assert_eq!(
            peer.subject,
            "CN=mx.hopital-a.mssante.test,OU=10000000010001,O=HOPITAL A TEST,ST=Paris (75),C=FR"
        );
        assert!(
            peer.issuer
                .starts_with("CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"),
            "{}",
            peer.issuer
        );
        assert_eq!(peer.sha256_fingerprint.len(), 64);
        assert_eq!(
            peer.sha256_fingerprint,
            peer.sha256_fingerprint.to_ascii_lowercase()
        );
        assert!(!peer.serial.is_empty());
        assert!(
            peer.serial
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }
}
