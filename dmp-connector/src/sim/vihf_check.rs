//! The simulator's checks of the VIHF: present, signed, signer trusted, and the structure it
//! names is the one that authenticated the TLS connection.

use openssl::stack::Stack;
use openssl::x509::store::X509Store;
use openssl::x509::{X509, X509StoreContext};

use std::time::{Duration, SystemTime};

use super::Refusal;
use crate::xds::dom::Element;
use crate::xds::{ns, time, xmldsig};

/// The VIHF attributes the simulator requires.
const REQUIRED_ATTRIBUTES: [&str; 6] = [
    "VIHF_Version",
    "Authentification_Mode",
    "Identifiant_Structure",
    "Secteur_Activite",
    "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
    "Ressource_URN",
];

/// What a valid VIHF told us.
#[derive(Debug, Clone)]
pub struct VihfFacts {
    /// `resource-id`: the patient the caller asserts it acts for.
    pub resource_id: String,
}

fn fault(subcode: &str, reason: impl Into<String>) -> Refusal {
    Refusal::Fault {
        subcode: subcode.to_owned(),
        reason: reason.into(),
    }
}

/// The first OU of a certificate's subject.
pub fn organizational_unit(certificate: &X509) -> Option<String> {
    certificate
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::ORGANIZATIONALUNITNAME)
        .next()
        .and_then(|entry| entry.data().to_string().ok())
}

fn attribute_values<'a>(statement: &'a Element, name: &str) -> Vec<&'a Element> {
    statement
        .children_named(ns::SAML2, "Attribute")
        .filter(|a| a.attr("Name") == Some(name))
        .flat_map(|a| a.children_named(ns::SAML2, "AttributeValue"))
        .collect()
}

/// Clock skew tolerated between the caller and us (the DMP asks LPS to sync daily, PRE_TPS).
const SKEW: Duration = Duration::from_secs(300);

/// `IssueInstant` not in the future, `Conditions` window (when given) containing now.
fn check_validity(assertion: &Element) -> Result<(), Refusal> {
    let now = SystemTime::now();
    let issued = assertion
        .attr("IssueInstant")
        .and_then(time::parse_xs_date_time)
        .ok_or_else(|| {
            fault(
                "wsse:InvalidSecurity",
                "VIHF IssueInstant missing or not UTC",
            )
        })?;
    if issued > now + SKEW {
        return Err(fault("wsse:InvalidSecurity", "VIHF issued in the future"));
    }
    if let Some(conditions) = assertion.child(ns::SAML2, "Conditions") {
        let bound = |name: &str| conditions.attr(name).and_then(time::parse_xs_date_time);
        if bound("NotBefore").is_some_and(|t| t > now + SKEW) {
            return Err(fault(
                "wsse:MessageExpired",
                "VIHF not yet valid (NotBefore)",
            ));
        }
        if bound("NotOnOrAfter").is_some_and(|t| t + SKEW <= now) {
            return Err(fault("wsse:MessageExpired", "VIHF expired (NotOnOrAfter)"));
        }
    }
    Ok(())
}

/// Checks the VIHF in `header` against the TLS client's OU.
pub fn check(
    header: &Element,
    trust: &X509Store,
    tls_client_ou: Option<&str>,
) -> Result<VihfFacts, Refusal> {
    let assertion = header
        .child(ns::WSSE, "Security")
        .and_then(|s| s.child(ns::SAML2, "Assertion"))
        .ok_or_else(|| fault("wsse:InvalidSecurity", "no VIHF assertion in wsse:Security"))?;
    let signer = xmldsig::verify_enveloped(assertion)
        .map_err(|e| fault("wsse:FailedCheck", format!("VIHF signature: {e}")))?;
    let mut context =
        X509StoreContext::new().map_err(|e| fault("wsse:FailedCheck", format!("verifier: {e}")))?;
    let chain = Stack::new().map_err(|e| fault("wsse:FailedCheck", format!("verifier: {e}")))?;
    let trusted = context
        .init(trust, &signer, &chain, |c| {
            let ok = c.verify_cert()?;
            Ok(if ok {
                None
            } else {
                Some(c.error().to_string())
            })
        })
        .map_err(|e| fault("wsse:FailedCheck", format!("verifier: {e}")))?;
    if let Some(reason) = trusted {
        return Err(fault(
            "wsse:InvalidSecurityToken",
            format!("VIHF signer certificate not trusted: {reason}"),
        ));
    }
    check_validity(assertion)?;
    let statement = assertion
        .child(ns::SAML2, "AttributeStatement")
        .ok_or_else(|| fault("wsse:InvalidSecurity", "VIHF without AttributeStatement"))?;
    for name in REQUIRED_ATTRIBUTES {
        if attribute_values(statement, name).is_empty() {
            return Err(fault(
                "wsse:InvalidSecurity",
                format!("VIHF attribute {name} missing"),
            ));
        }
    }
    let text = |name: &str| {
        attribute_values(statement, name)
            .first()
            .map(|e| e.text())
            .unwrap_or_default()
    };
    let version = text("VIHF_Version");
    if version != "3.0" && version != "4.0" {
        return Err(fault(
            "wsse:InvalidSecurity",
            format!("VIHF_Version {version:?} not supported"),
        ));
    }
    if text("Authentification_Mode") != "INDIRECTE" {
        return Err(fault(
            "wsse:InvalidSecurity",
            "only Authentification_Mode INDIRECTE is accepted for a structure",
        ));
    }
    // Indirect authentication: the structure named by the assertion and its signer must be the
    // structure that authenticated the TLS connection, or one structure could act for another.
    let tls_ou = tls_client_ou.ok_or_else(|| {
        fault(
            "wsse:FailedAuthentication",
            "TLS client certificate has no OU (IdNat_Struct)",
        )
    })?;
    let signer_ou = organizational_unit(&signer).unwrap_or_default();
    let structure = text("Identifiant_Structure");
    if signer_ou != tls_ou || structure != tls_ou {
        return Err(fault(
            "wsse:FailedAuthentication",
            format!(
                "VIHF structure (Identifiant_Structure {structure:?}, signer OU {signer_ou:?}) is not the TLS client's ({tls_ou:?})"
            ),
        ));
    }
    Ok(VihfFacts {
        resource_id: text("urn:oasis:names:tc:xacml:2.0:resource:resource-id"),
    })
}
