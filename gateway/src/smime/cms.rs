//! CMS (RFC 5652) through OpenSSL: signature verification, decryption, and the accessors the `openssl`
//! crate lacks (signers, certificate set, digest algorithm, signingTime), declared here over libcrypto.
//!
//! Every `unsafe` block below calls a libcrypto function on a `CMS_ContentInfo` owned by a live
//! `CmsContentInfo`; borrowed pointers are copied into owned values (up-ref) before the borrow ends.

use std::ffi::{c_int, c_uchar, c_void};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::{X509, X509Ref};
use openssl_sys as ffi;

use crate::trust::Timestamp;

unsafe extern "C" {
    fn CMS_get0_type(cms: *const ffi::CMS_ContentInfo) -> *const ffi::ASN1_OBJECT;
    fn CMS_get1_certs(cms: *mut ffi::CMS_ContentInfo) -> *mut ffi::stack_st_X509;
    fn CMS_get0_SignerInfos(cms: *mut ffi::CMS_ContentInfo) -> *mut ffi::OPENSSL_STACK;
    fn CMS_SignerInfo_get0_algs(
        signer_info: *mut c_void,
        public_key: *mut *mut ffi::EVP_PKEY,
        signer: *mut *mut ffi::X509,
        digest: *mut *mut ffi::X509_ALGOR,
        signature: *mut *mut ffi::X509_ALGOR,
    );
    fn CMS_signed_get_attr_by_NID(signer_info: *const c_void, nid: c_int, lastpos: c_int) -> c_int;
    fn CMS_signed_get_attr(signer_info: *const c_void, loc: c_int) -> *mut ffi::X509_ATTRIBUTE;
    fn BIO_f_buffer() -> *const ffi::BIO_METHOD;
    fn BIO_push(bio: *mut ffi::BIO, next: *mut ffi::BIO) -> *mut ffi::BIO;
}

/// NID_id_smime_ct_authEnvelopedData (obj_mac.h); the `openssl` crate has no constant for it.
const AUTH_ENVELOPED_DATA: Nid = Nid::from_raw(1059);

/// The CMS content types this gateway handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmsKind {
    /// SignedData.
    Signed,
    /// EnvelopedData (CBC ciphers).
    Enveloped,
    /// AuthEnvelopedData (RFC 5083, AES-GCM).
    AuthEnveloped,
    /// Anything else (compressed, digested, ...), refused.
    Other(i32),
}

/// One signer of a verified SignedData.
pub struct CmsSigner {
    /// The signer's certificate (found in the CMS certificate set).
    pub certificate: X509,
    /// Digest algorithm of the SignerInfo.
    pub digest: Nid,
    /// The signingTime signed attribute, if present and well formed.
    pub signing_time: Option<Timestamp>,
}

/// Decodes DER CMS.
pub fn parse(der: &[u8]) -> Result<CmsContentInfo, String> {
    CmsContentInfo::from_der(der).map_err(|e| format!("CMS structure: {e}"))
}

/// The content type of a CMS ContentInfo.
pub fn kind(cms: &CmsContentInfo) -> CmsKind {
    // SAFETY: cms is a valid ContentInfo; the returned object is borrowed and only read here.
    let nid = unsafe { ffi::OBJ_obj2nid(CMS_get0_type(cms.as_ptr())) };
    match Nid::from_raw(nid) {
        Nid::PKCS7_SIGNED => CmsKind::Signed,
        Nid::PKCS7_ENVELOPED => CmsKind::Enveloped,
        AUTH_ENVELOPED_DATA => CmsKind::AuthEnveloped,
        _ => CmsKind::Other(nid),
    }
}

/// Verifies every signature of a SignedData over `detached` (or its own content) and returns the signed
/// content and the signers. Certificate trust is not judged here (`NO_SIGNER_CERT_VERIFY`): a bad
/// signature and an untrusted signer are different answers.
pub fn verify(
    cms: &mut CmsContentInfo,
    detached: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<CmsSigner>), String> {
    // BINARY: the signed bytes are hashed exactly as received (MIME canonicalisation is the caller's job).
    let flags = CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY;
    let content = match detached {
        Some(bytes) => {
            verify_detached(cms, bytes, flags)?;
            bytes.to_vec()
        }
        None => {
            let mut content = Vec::new();
            cms.verify(None, None, None, Some(&mut content), flags)
                .map_err(|e| e.to_string())?;
            content
        }
    };
    Ok((content, signers(cms)?))
}

/// CMS_verify over detached content read through a buffer BIO.
///
/// Why not `CmsContentInfo::verify`: given a memory BIO, OpenSSL 3.0's CMS_verify copies it into a
/// temporary BIO that it leaks when the SignedData names a digest it cannot set up (found by the fuzz
/// target: 136 bytes per such message, a slow memory exhaustion). A filter BIO on top of the memory BIO
/// is not of the memory type, so that copy is never made.
fn verify_detached(cms: &mut CmsContentInfo, data: &[u8], flags: CMSOptions) -> Result<(), String> {
    let length =
        std::ffi::c_int::try_from(data.len()).map_err(|_| "signed content too large".to_owned())?;
    // SAFETY: the memory BIO reads `data`, which outlives it (freed below, before returning); BIO_push
    // hands the memory BIO to the buffer BIO, and BIO_free_all frees the whole chain exactly once.
    // CMS_verify only reads through the chain and frees the BIOs it pushed on top of it.
    unsafe {
        let memory = ffi::BIO_new_mem_buf(data.as_ptr().cast(), length);
        if memory.is_null() {
            return Err(ErrorStack::get().to_string());
        }
        let buffer = ffi::BIO_new(BIO_f_buffer());
        if buffer.is_null() {
            ffi::BIO_free_all(memory);
            return Err(ErrorStack::get().to_string());
        }
        let chain = BIO_push(buffer, memory);
        let status = ffi::CMS_verify(
            cms.as_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
            chain,
            ptr::null_mut(),
            flags.bits(),
        );
        let result = if status == 1 {
            Ok(())
        } else {
            Err(ErrorStack::get().to_string())
        };
        ffi::BIO_free_all(chain);
        result
    }
}

/// The certificates carried by a SignedData (used as untrusted intermediates).
pub fn certificates(cms: &CmsContentInfo) -> Vec<X509> {
    // SAFETY: CMS_get1_certs returns a new stack holding new references (or NULL), which `Stack` owns and frees.
    unsafe {
        let raw = CMS_get1_certs(cms.as_ptr());
        if raw.is_null() {
            return Vec::new();
        }
        let stack: Stack<X509> = Stack::from_ptr(raw);
        stack.iter().map(X509Ref::to_owned).collect()
    }
}

fn signers(cms: &CmsContentInfo) -> Result<Vec<CmsSigner>, String> {
    let mut out = Vec::new();
    // SAFETY: the SignerInfo stack is owned by cms and only borrowed; signer certificates are set by
    // CMS_verify and copied with an up-ref (`to_owned`) before use.
    unsafe {
        let infos = CMS_get0_SignerInfos(cms.as_ptr());
        if infos.is_null() {
            return Err("no SignerInfo".to_owned());
        }
        for index in 0..ffi::OPENSSL_sk_num(infos) {
            let info = ffi::OPENSSL_sk_value(infos, index);
            let mut signer: *mut ffi::X509 = ptr::null_mut();
            let mut digest: *mut ffi::X509_ALGOR = ptr::null_mut();
            CMS_SignerInfo_get0_algs(
                info,
                ptr::null_mut(),
                &mut signer,
                &mut digest,
                ptr::null_mut(),
            );
            if signer.is_null() {
                return Err("signer certificate not included in the signature".to_owned());
            }
            let certificate = X509Ref::from_ptr(signer).to_owned();
            let mut object: *const ffi::ASN1_OBJECT = ptr::null();
            if !digest.is_null() {
                ffi::X509_ALGOR_get0(&mut object, ptr::null_mut(), ptr::null_mut(), digest);
            }
            let digest = if object.is_null() {
                Nid::UNDEF
            } else {
                Nid::from_raw(ffi::OBJ_obj2nid(object))
            };
            out.push(CmsSigner {
                certificate,
                digest,
                signing_time: signing_time(info),
            });
        }
    }
    if out.is_empty() {
        return Err("no SignerInfo".to_owned());
    }
    Ok(out)
}

/// Reads the signingTime attribute (UTCTime or GeneralizedTime) by re-encoding it to DER.
///
/// # Safety
/// `info` must be a valid `CMS_SignerInfo` pointer.
unsafe fn signing_time(info: *mut c_void) -> Option<Timestamp> {
    // SAFETY: per the function contract; the attribute and its value are borrowed from info.
    unsafe {
        let location = CMS_signed_get_attr_by_NID(info, Nid::PKCS9_SIGNINGTIME.as_raw(), -1);
        if location < 0 {
            return None;
        }
        let attribute = CMS_signed_get_attr(info, location);
        if attribute.is_null() {
            return None;
        }
        let value = ffi::X509_ATTRIBUTE_get0_type(attribute, 0);
        if value.is_null() {
            return None;
        }
        let length = ffi::i2d_ASN1_TYPE(value, ptr::null_mut());
        let mut der = vec![0u8; usize::try_from(length).ok()?];
        let mut cursor: *mut c_uchar = der.as_mut_ptr();
        ffi::i2d_ASN1_TYPE(value, &mut cursor);
        // Short-form DER: tag, length (< 128), text.
        let (&tag, rest) = der.split_first()?;
        let (&len, text) = rest.split_first()?;
        if usize::from(len) != text.len() {
            return None;
        }
        match tag {
            0x17 => Timestamp::from_asn1_text(text, false),
            0x18 => Timestamp::from_asn1_text(text, true),
            _ => None,
        }
    }
}

/// Decrypts an (Auth)EnvelopedData addressed to `certificate`.
///
/// OpenSSL answers a wrong RSA key-transport block with a random key (Bleichenbacher countermeasure), so
/// a forged message fails at the content decryption, with the same error as any other corruption.
pub fn decrypt(
    cms: &CmsContentInfo,
    key: &PKey<Private>,
    certificate: &X509,
) -> Result<Vec<u8>, String> {
    cms.decrypt(key, certificate).map_err(|e| e.to_string())
}
