//! How certificates are named in errors, logs and the ledger: RFC 4514 DNs, hex serials, fingerprints.

use openssl::hash::MessageDigest;
use openssl::x509::{X509NameRef, X509Ref};

/// RFC 4514 string of a distinguished name with short attribute names, most specific RDN first
/// (`CN=…,OU=…,O=…,C=FR`), the form the liste blanche and `smtp_in::peer::PeerIdentity` use.
pub fn dn_string(name: &X509NameRef) -> String {
    let entries: Vec<String> = name
        .entries()
        .map(|entry| {
            let key = entry
                .object()
                .nid()
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| entry.object().to_string());
            let value = entry.data().to_string().unwrap_or_else(|_| "#?".to_owned());
            format!("{key}={}", escape_value(&value))
        })
        .collect();
    entries.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// Escapes the characters RFC 4514 §2.4 requires.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        let edge_space = c == ' ' && (index == 0 || index == last);
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || edge_space
            || (index == 0 && c == '#')
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Values of every OU attribute of a name (where IGC-Santé puts the IdNat_Struct).
pub fn organizational_units(name: &X509NameRef) -> Vec<String> {
    name.entries_by_nid(openssl::nid::Nid::ORGANIZATIONALUNITNAME)
        .map(|entry| entry.data().to_string().unwrap_or_else(|_| "#?".to_owned()))
        .collect()
}

/// Lowercase hex of a certificate's serial number, no colons.
pub fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .map(|bn| bn.to_vec())
        .map(hex::encode)
        .unwrap_or_else(|_| "?".to_owned())
}

/// Lowercase hex SHA-256 of the certificate's DER.
pub fn sha256_fingerprint(cert: &X509Ref) -> String {
    cert.digest(MessageDigest::sha256())
        .map(|d| hex::encode(&*d))
        .unwrap_or_default()
}

/// Normalises a DN string for comparison: attribute names upper-cased, spaces around separators dropped.
///
/// Good enough for configured identities written by hand; the comparison stays exact on values.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| match rdn.split_once('=') {
            Some((key, value)) => format!("{}={}", key.trim().to_ascii_uppercase(), value.trim()),
            None => rdn.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
