//! The RFC 5322 message of `gateway send`: MSSanté headers, a text body and the documents, then
//! signature and encryption ([`super::sign`]).
//!
//! For a document message (DOMAIN.md §1.6–1.7) the subject follows ECO.2.1.3
//! (`XDM/1.0/DDM+<libellé> <NOM> <prénom> <date de naissance>`) and the entity carries
//! `X-MSS-CODECDA` (the CDA type codes) and `X-MSS-INS` (`O`: the CDA carry a qualified INS, which
//! [`super::xdm::build`] requires). The gateway reads these headers from the signed entity and
//! compares them with the content, so they are written there, and repeated in the outer headers
//! for mail clients when the entity is signed.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::x509::X509;

use super::sign::{self, Signer};
use super::xdm::{self, XdmPackage};
use super::{NamedFile, SendError};

/// Base64 line length of MIME bodies (RFC 2045 allows at most 76).
const BASE64_LINE: usize = 76;

/// What the message carries.
#[derive(Debug, Clone)]
pub enum Content {
    /// One `IHE_XDM.ZIP` built from these CDA documents, with these PDF renderings inside it and
    /// beside it (ECO.2.1.1: the XDM archive plus a readable PDF).
    Xdm {
        /// CDA R2 documents (at least one).
        cda: Vec<NamedFile>,
        /// PDF renderings.
        pdf: Vec<NamedFile>,
    },
    /// Files attached as given (a bare CDA, a PDF, a ready-made XDM zip…).
    Attachments(Vec<NamedFile>),
}

/// Everything that makes a message.
#[derive(Debug)]
pub struct Compose {
    /// The From address (and envelope sender).
    pub from: String,
    /// The recipients (To).
    pub to: Vec<String>,
    /// The subject; by default the MSSanté subject of the documents.
    pub subject: Option<String>,
    /// The text body; by default a short French sentence.
    pub body: Option<String>,
    /// The documents.
    pub content: Content,
    /// Ask for a disposition notification (`Disposition-Notification-To` = From).
    pub notify: bool,
    /// Sign with this identity; None sends the message unsigned.
    pub signer: Option<Signer>,
    /// Encrypt the (signed) entity to these certificates; empty = no encryption.
    pub encrypt_to: Vec<X509>,
    /// `sourceId` of the XDM submission set; by default an OID derived from the From domain.
    pub source_id: Option<String>,
    /// The Date (and XDM submission time); now by default.
    pub date: Option<SystemTime>,
    /// The Message-ID without angle brackets; a random one at the From domain by default.
    pub message_id: Option<String>,
}

/// Builds the message, signed and encrypted as asked. CRLF line ends, 7-bit.
pub fn build(compose: &Compose) -> Result<Vec<u8>, SendError> {
    check_address(&compose.from, "--from")?;
    if compose.to.is_empty() {
        return Err(SendError::Usage("at least one --to is required".to_owned()));
    }
    for recipient in &compose.to {
        check_address(recipient, "--to")?;
    }
    if compose.signer.is_none() && !compose.encrypt_to.is_empty() {
        // The gateway reads "signed then encrypted"; an encrypted unsigned message would be
        // refused as unsigned after decryption anyway.
        return Err(SendError::Usage(
            "--encrypt-to needs a signature (drop --no-sign)".to_owned(),
        ));
    }
    let now = compose.date.unwrap_or_else(SystemTime::now);
    let domain = compose
        .from
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default();

    let mut attachments: Vec<(NamedFile, &str)> = Vec::new();
    let mut mss_headers = Vec::new();
    let default_subject = match &compose.content {
        Content::Xdm { cda, pdf } => {
            let source_id = compose
                .source_id
                .clone()
                .unwrap_or_else(|| domain_oid(&domain));
            let package = xdm::build(cda, pdf, &source_id, now)?;
            mss_headers.push(("X-MSS-CODECDA", dedup(&package.type_codes).join(",")));
            mss_headers.push(("X-MSS-INS", "O".to_owned()));
            let subject = document_subject(&package);
            attachments.push((
                NamedFile {
                    name: "IHE_XDM.ZIP".to_owned(),
                    bytes: package.zip,
                },
                "application/zip",
            ));
            for file in pdf {
                attachments.push((file.clone(), "application/pdf"));
            }
            subject
        }
        Content::Attachments(files) => {
            if files.is_empty() {
                return Err(SendError::Usage(
                    "nothing to send: give --cda or --attach".to_owned(),
                ));
            }
            for file in files {
                attachments.push((file.clone(), content_type_of(file)));
            }
            files
                .iter()
                .map(|file| file.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };

    let inner = mixed_entity(compose.body.as_deref(), &attachments, &mss_headers);
    let (entity, outer_mss) = match &compose.signer {
        None => (inner, false),
        Some(signer) => {
            let signed = sign::sign(&inner, signer)?;
            if compose.encrypt_to.is_empty() {
                (signed, true)
            } else {
                (sign::encrypt(&signed, &compose.encrypt_to)?, true)
            }
        }
    };

    let message_id = compose
        .message_id
        .clone()
        .unwrap_or_else(|| format!("{}@{}", &xdm::random_oid()[5..], domain));
    let subject = compose.subject.clone().unwrap_or(default_subject);
    let mut head = String::new();
    head += &format!("From: <{}>\r\n", compose.from);
    head += &fold_addresses("To", &compose.to);
    head += &format!("Date: {}\r\n", rfc5322_date(now));
    head += &format!("Message-ID: <{message_id}>\r\n");
    head += &format!("Subject: {}\r\n", encode_header_text(&subject));
    head += "MIME-Version: 1.0\r\n";
    if outer_mss {
        for (name, value) in &mss_headers {
            head += &format!("{name}: {value}\r\n");
        }
    }
    if compose.notify {
        head += &format!("Disposition-Notification-To: <{}>\r\n", compose.from);
    }
    let mut message = head.into_bytes();
    message.extend_from_slice(&entity);
    Ok(message)
}

/// The MSSanté subject of a document message (ECO.2.1.3).
fn document_subject(package: &XdmPackage) -> String {
    let patient = &package.patient;
    let date = &patient.birth_date;
    let birth = match (date.get(0..4), date.get(4..6), date.get(6..8)) {
        (Some(year), Some(month), Some(day)) => format!("{day}/{month}/{year}"),
        _ => date.clone(),
    };
    format!(
        "XDM/1.0/DDM+{} {} {} {}",
        package.title, patient.birth_name, patient.first_given_name, birth
    )
}

/// The multipart/mixed entity: MSSanté headers, text body, attachments in base64.
fn mixed_entity(
    body: Option<&str>,
    attachments: &[(NamedFile, &str)],
    mss_headers: &[(&str, String)],
) -> Vec<u8> {
    let boundary = boundary("mixed");
    let mut out = format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n");
    for (name, value) in mss_headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += "\r\nThis is a multi-part message in MIME format.\r\n";
    let text = body.unwrap_or("Bonjour,\r\n\r\nVeuillez trouver ci-joint le document.\r\n");
    out += &format!("--{boundary}\r\n");
    out += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n";
    out += &base64_lines(crlf(text).as_bytes());
    for (file, content_type) in attachments {
        let name = encode_parameter(&file.name);
        out += &format!("--{boundary}\r\n");
        out += &format!("Content-Type: {content_type}; name={name}\r\n");
        out += &format!("Content-Disposition: attachment; filename={name}\r\n");
        out += "Content-Transfer-Encoding: base64\r\n\r\n";
        out += &base64_lines(&file.bytes);
    }
    out += &format!("--{boundary}--\r\n");
    out.into_bytes()
}

/// The media type of an attached file, from its content and name.
fn content_type_of(file: &NamedFile) -> &'static str {
    let lower = file.name.to_ascii_lowercase();
    if file.bytes.starts_with(b"%PDF-") || lower.ends_with(".pdf") {
        "application/pdf"
    } else if file.bytes.starts_with(b"PK\x03\x04") || lower.ends_with(".zip") {
        "application/zip"
    } else if lower.ends_with(".xml") || crate::documents::cda::looks_like_cda(&file.bytes) {
        "text/xml"
    } else {
        "application/octet-stream"
    }
}

/// Base64 in lines of 76 characters, each ending with CRLF.
pub(crate) fn base64_lines(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / BASE64_LINE * 2 + 2);
    for line in encoded.as_bytes().chunks(BASE64_LINE) {
        // Base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// A fresh MIME boundary: `=_<kind>_<random decimal digits>` (`=_` never occurs in base64).
pub(crate) fn boundary(kind: &str) -> String {
    format!("=_{kind}_{}", &xdm::random_oid()[5..])
}

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// A quoted parameter value, or an RFC 2231 one when the name is not plain ASCII.
fn encode_parameter(value: &str) -> String {
    let plain = value
        .bytes()
        .all(|byte| (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\');
    if plain {
        return format!("\"{value}\"");
    }
    let mut out = String::from("\"");
    // mail-parser and common clients also read an RFC 2047 word in a quoted parameter.
    out += &encode_header_text(value);
    out.push('"');
    out
}

/// Header text: as is when printable ASCII, else RFC 2047 `=?UTF-8?B?…?=` words.
fn encode_header_text(text: &str) -> String {
    if text.bytes().all(|byte| (0x20..0x7f).contains(&byte)) {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for character in text.chars() {
        // 45 bytes encode to 60 characters: each word stays under 75 (RFC 2047 §2).
        if chunk.len() + character.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(character);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

fn fold_addresses(name: &str, addresses: &[String]) -> String {
    let list: Vec<String> = addresses
        .iter()
        .map(|address| format!("<{address}>"))
        .collect();
    format!("{name}: {}\r\n", list.join(",\r\n "))
}

fn check_address(address: &str, option: &str) -> Result<(), SendError> {
    let valid = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && address
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && !b"<>(),;:\\\"[]".contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(SendError::Usage(format!(
            "{option} {address:?} is not a mail address"
        )))
    }
}

fn dedup(codes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(codes.len());
    for code in codes {
        if !out.contains(code) {
            out.push(code.clone());
        }
    }
    out
}

/// A stable OID for a sending domain when no sourceId is given: `2.25.` and the first 16 bytes
/// of the SHA-256 of the domain as an integer, so one sender keeps one sourceId.
fn domain_oid(domain: &str) -> String {
    let digest = openssl::sha::sha256(domain.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!("2.25.{}", u128::from_be_bytes(bytes))
}

/// RFC 5322 date in UTC: `Mon, 15 Jan 2024 09:30:00 +0000`.
pub(crate) fn rfc5322_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default() as i64;
    let days = seconds.div_euclid(86_400);
    let (year, month, day) = crate::calendar::civil_from_days(days);
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{}, {day} {} {year:04} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1).clamp(0, 11) as usize],
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322_utc() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_705_311_000);
        assert_eq!(rfc5322_date(time), "Mon, 15 Jan 2024 09:30:00 +0000");
        assert_eq!(
            rfc5322_date(SystemTime::UNIX_EPOCH),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
    }

    #[test]
    fn non_ascii_header_text_is_encoded_in_short_words() {
        assert_eq!(encode_header_text("plain"), "plain");
        let encoded = encode_header_text(&"é".repeat(40));
        assert!(encoded.starts_with("=?UTF-8?B?"));
        assert!(encoded.split("\r\n ").all(|word| word.len() <= 75));
    }

    #[test]
    fn base64_lines_are_76_characters() {
        let text = base64_lines(&[0u8; 100]);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0].len(), 76);
        assert_eq!(lines.last(), Some(&""));
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_address("a@b.test", "--to").is_ok());
        for bad in ["a", "@b", "a@", "a b@c", "a@b@c", "<a@b>"] {
            assert!(check_address(bad, "--to").is_err(), "{bad}");
        }
    }

    #[test]
    fn encrypting_without_signing_is_refused() {
        let compose = Compose {
            from: "a@b.test".to_owned(),
            to: vec!["c@d.test".to_owned()],
            subject: None,
            body: None,
            content: Content::Attachments(vec![NamedFile {
                name: "x.pdf".to_owned(),
                bytes: b"%PDF-1.4".to_vec(),
            }]),
            notify: false,
            signer: None,
            encrypt_to: vec![openssl_test_certificate()],
            source_id: None,
            date: None,
            message_id: None,
        };
        assert!(matches!(build(&compose), Err(SendError::Usage(_))));
    }

    fn openssl_test_certificate() -> X509 {
        let pem = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../certs/smime/gateway-conf.pem"),
        )
        .unwrap();
        X509::from_pem(&pem).unwrap()
    }
}
