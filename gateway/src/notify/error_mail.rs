//! The error mail of the ANS guide: when a deposit failed and the original asked for no MDN,
//! the error goes back as a plain message with the MDN's subject convention
//! (`[KO Intégration système !][<code>] <original subject>`) and the original attached.

use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::{
    boundary, close_with_original, encode_words, header, header_block, rfc5322_date, text_part,
};

/// What the error mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMailInput<'a> {
    /// The gateway's host name (`From: MAILER-DAEMON@…`, Message-ID domain).
    pub hostname: &'a str,
    /// The original's sender.
    pub to: &'a str,
    /// The original message, complete (attached as `message/rfc822`).
    pub original: &'a [u8],
    /// The ANS error code (e.g. `902`).
    pub code: &'a str,
    /// Its label.
    pub label: &'a str,
    /// When this mail is written.
    pub date: SystemTime,
}

/// The complete error mail (headers and body, CRLF line ends).
pub fn build(input: &ErrorMailInput<'_>) -> Vec<u8> {
    let headers = header_block(input.original);
    let parsed = mail_parser::MessageParser::new().parse_headers(headers);
    let subject = parsed
        .as_ref()
        .and_then(|message| message.subject())
        .unwrap_or_default()
        .to_owned();
    let original_id = parsed
        .as_ref()
        .and_then(|message| message.message_id())
        .map(|id| format!("<{id}>"));
    let digest = Sha256::digest(input.original);
    let seed = hex::encode(&digest[..8]);
    let boundary = boundary(&format!("error{seed}"), input.original);

    let mut out = String::new();
    header(
        &mut out,
        "From",
        &format!("MAILER-DAEMON@{}", input.hostname),
    );
    header(&mut out, "To", &format!("<{}>", input.to));
    header(&mut out, "Date", &rfc5322_date(input.date));
    header(
        &mut out,
        "Message-ID",
        &format!("<{seed}.error@{}>", input.hostname),
    );
    header(
        &mut out,
        "Subject",
        &encode_words(&format!(
            "[KO Intégration système !][{}] {subject}",
            input.code
        )),
    );
    if let Some(id) = &original_id {
        header(&mut out, "In-Reply-To", id);
        header(&mut out, "References", id);
    }
    header(&mut out, "Auto-Submitted", "auto-replied");
    header(&mut out, "MIME-Version", "1.0");
    header(
        &mut out,
        "Content-Type",
        &format!("multipart/mixed; boundary=\"{boundary}\""),
    );
    out.push_str(&format!("\r\n--{boundary}\r\n"));
    text_part(
        &mut out,
        &format!(
            "Le document n'a pas pu être intégré dans le DMP.\nErreur {code} : {label}\n\n\
             The document could not be deposited in the DMP.\nError {code}: {label}\n",
            code = input.code,
            label = input.label
        ),
    );
    close_with_original(
        out,
        &boundary,
        "Content-Type: message/rfc822\r\nContent-Disposition: attachment",
        input.original,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_mail_carries_the_ko_subject_and_the_original() {
        let original = b"Subject: CR bio\r\nMessage-ID: <m1@h>\r\n\r\nbody\r\n";
        let mail = build(&ErrorMailInput {
            hostname: "gw.test",
            to: "s@h.test",
            original,
            code: "902",
            label: "Identifiant de patient inconnu",
            date: SystemTime::UNIX_EPOCH,
        });
        let parsed = mail_parser::MessageParser::default()
            .parse(&mail)
            .expect("parses");
        assert_eq!(
            parsed.subject(),
            Some("[KO Intégration système !][902] CR bio")
        );
        assert_eq!(parsed.attachment_count(), 1);
        let text = String::from_utf8_lossy(&mail);
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.contains("In-Reply-To: <m1@h>"));
        assert!(
            parsed
                .body_text(0)
                .is_some_and(|body| body.contains("Erreur 902"))
        );
    }
}
