//! Who may sign as whom: the signer certificate must identify the RFC 5322 From, and headers outside the
//! signature must not contradict a wrapped message inside it.
//!
//! Threat: a trusted signer (any IGC-Santé holder) sending as another structure, or a relay rewriting
//! From/Subject of a signed message whose real headers are protected inside (RFC 8551 §3.1 wrapping).

use mail_parser::{Address, HeaderName, Message, MimeHeaders};
use openssl::x509::X509Ref;

use super::SenderPolicies;
use super::error::SmimeError;
use crate::trust::checks::rfc822_names;
use crate::trust::names::{dn_string, normalize_dn, organizational_units};

/// How the signer was bound to the From address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SenderBinding {
    /// The certificate's subjectAltName rfc822Name equals the From address.
    Rfc822Name {
        /// The matching address.
        address: String,
    },
    /// The certificate has no rfc822Name; its subject matched an identity configured for the From domain.
    ConfiguredIdentity {
        /// The From domain.
        domain: String,
        /// The configured identity that matched (a DN or `OU=…`).
        identity: String,
    },
}

/// The address of the single From mailbox, lower-cased; None when there is no From.
///
/// Several From headers, or several mailboxes in one, are refused: a reader may display one address while
/// the binding checked another.
pub fn from_address(message: &Message<'_>) -> Result<Option<String>, SmimeError> {
    let headers = message.header_values(HeaderName::From).count();
    let mailboxes = message.from().map(|a| a.iter().count()).unwrap_or(0);
    if headers > 1 || mailboxes > 1 {
        return Err(SmimeError::Malformed {
            reason: format!(
                "{headers} From headers with {mailboxes} mailboxes; exactly one is required"
            ),
        });
    }
    Ok(message
        .from()
        .and_then(Address::first)
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase))
}

/// The domain part of an address.
pub fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|d| !d.is_empty())
}

/// Binds `signer` to `from`: rfc822Name when the certificate has one (and then only that), else a
/// configured identity of the From domain.
pub fn bind(
    signer: &X509Ref,
    from: &str,
    policies: &SenderPolicies,
) -> Result<SenderBinding, SmimeError> {
    let names = rfc822_names(signer);
    let subject = dn_string(signer.subject_name());
    if !names.is_empty() {
        return match names.iter().find(|n| n.eq_ignore_ascii_case(from)) {
            Some(address) => Ok(SenderBinding::Rfc822Name {
                address: address.to_ascii_lowercase(),
            }),
            None => Err(SmimeError::SenderMismatch {
                from: from.to_owned(),
                signer: subject,
                allowed: names,
            }),
        };
    }
    let domain = domain_of(from).unwrap_or_default().to_ascii_lowercase();
    let identities = policies
        .get(&domain)
        .map(|p| p.identities.as_slice())
        .unwrap_or_default();
    let matched = identities
        .iter()
        .find(|identity| identity_matches(signer, identity));
    match matched {
        Some(identity) => Ok(SenderBinding::ConfiguredIdentity {
            domain,
            identity: identity.clone(),
        }),
        None => Err(SmimeError::SenderMismatch {
            from: from.to_owned(),
            signer: subject,
            allowed: identities.to_vec(),
        }),
    }
}

/// Whether a configured identity (a full DN, or `OU=<IdNat_Struct>`) designates this certificate.
pub(crate) fn identity_matches(cert: &X509Ref, identity: &str) -> bool {
    let identity = normalize_dn(identity);
    match identity.strip_prefix("OU=") {
        Some(unit) if !unit.contains(',') => organizational_units(cert.subject_name())
            .iter()
            .any(|u| u == unit),
        _ => identity == normalize_dn(&dn_string(cert.subject_name())),
    }
}

/// Compares the originator and subject headers of the outer message with a wrapped `message/rfc822`
/// found inside the signature. A header present on both sides must agree.
pub fn check_wrapped_headers(outer: &Message<'_>, inner: &Message<'_>) -> Result<(), SmimeError> {
    let pairs: [(&str, Option<String>, Option<String>); 7] = [
        (
            "From",
            address_list(outer.from()),
            address_list(inner.from()),
        ),
        (
            "Sender",
            address_list(outer.sender()),
            address_list(inner.sender()),
        ),
        ("To", address_list(outer.to()), address_list(inner.to())),
        ("Cc", address_list(outer.cc()), address_list(inner.cc())),
        (
            "Subject",
            outer.subject().map(str::to_owned),
            inner.subject().map(str::to_owned),
        ),
        (
            "Date",
            outer.date().map(|d| d.to_timestamp().to_string()),
            inner.date().map(|d| d.to_timestamp().to_string()),
        ),
        (
            "Message-ID",
            outer.message_id().map(str::to_owned),
            inner.message_id().map(str::to_owned),
        ),
    ];
    for (header, outer_value, inner_value) in pairs {
        if let (Some(outer_value), Some(inner_value)) = (outer_value, inner_value)
            && outer_value.trim() != inner_value.trim()
        {
            return Err(SmimeError::HeaderTampering {
                header: header.to_owned(),
                outer: outer_value,
                inner: inner_value,
            });
        }
    }
    Ok(())
}

/// Sorted, lower-cased addresses of an address header, for comparison.
fn address_list(address: Option<&Address<'_>>) -> Option<String> {
    address.map(|a| {
        let mut list: Vec<String> = a
            .iter()
            .filter_map(|x| x.address())
            .map(str::to_ascii_lowercase)
            .collect();
        list.sort();
        list.join(", ")
    })
}

/// Whether `entity` is `message/rfc822` (RFC 8551 §3.1 header protection); headers suffice.
pub fn is_wrapped_message(entity: &Message<'_>) -> bool {
    let Some(content_type) = entity.content_type() else {
        return false;
    };
    content_type.ctype().eq_ignore_ascii_case("message")
        && content_type
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("rfc822"))
}
