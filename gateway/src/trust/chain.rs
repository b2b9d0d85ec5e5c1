//! Path building with OpenSSL: from an end-entity certificate to a configured anchor.
//!
//! OpenSSL is asked only for the path and the CA signatures (times and purpose are ours, see `checks`),
//! and its failure is translated into a [`TrustError`] naming the certificate where it stopped.

use openssl::stack::Stack;
use openssl::x509::store::X509Store;
use openssl::x509::{X509, X509Ref, X509StoreContext};

use super::checks::unknown_critical_extension;
use super::error::TrustError;
use super::names::{dn_string, serial_hex};

// X509_V_ERR_* codes (x509_vfy.h) this module distinguishes.
const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const UNHANDLED_CRITICAL_EXTENSION: i32 = 34;

/// Builds and verifies the path; returns it end entity first, anchor last.
pub fn build_chain(
    store: &X509Store,
    leaf: &X509Ref,
    untrusted: &[X509],
) -> Result<Vec<X509>, TrustError> {
    let openssl_failure = |e: openssl::error::ErrorStack| TrustError::InvalidChain {
        subject: dn_string(leaf.subject_name()),
        serial: serial_hex(leaf),
        depth: 0,
        reason: e.to_string(),
    };
    let mut stack = Stack::new().map_err(openssl_failure)?;
    for cert in untrusted {
        stack.push(cert.clone()).map_err(openssl_failure)?;
    }
    let mut context = X509StoreContext::new().map_err(openssl_failure)?;
    context
        .init(store, leaf, &stack, |ctx| {
            if ctx.verify_cert()? {
                let chain = ctx
                    .chain()
                    .map(|c| c.iter().map(X509Ref::to_owned).collect())
                    .unwrap_or_default();
                return Ok(Ok(chain));
            }
            let failing = ctx
                .current_cert()
                .map(X509Ref::to_owned)
                .unwrap_or_else(|| leaf.to_owned());
            Ok(Err(translate(
                ctx.error().as_raw(),
                ctx.error().error_string(),
                ctx.error_depth(),
                &failing,
            )))
        })
        .map_err(openssl_failure)?
}

fn translate(code: i32, reason: &str, depth: u32, cert: &X509Ref) -> TrustError {
    let subject = dn_string(cert.subject_name());
    let serial = serial_hex(cert);
    match code {
        UNABLE_TO_GET_ISSUER_CERT
        | DEPTH_ZERO_SELF_SIGNED_CERT
        | SELF_SIGNED_CERT_IN_CHAIN
        | UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | UNABLE_TO_VERIFY_LEAF_SIGNATURE => TrustError::UnknownIssuer {
            subject,
            issuer: dn_string(cert.issuer_name()),
            serial,
            reason: reason.to_owned(),
        },
        UNHANDLED_CRITICAL_EXTENSION => TrustError::UnknownCriticalExtension {
            subject,
            serial,
            oid: unknown_critical_extension(cert).unwrap_or_else(|| "unknown".to_owned()),
        },
        _ => TrustError::InvalidChain {
            subject,
            serial,
            depth,
            reason: reason.to_owned(),
        },
    }
}
