//! Changed bytes, headers outside the signature, and malformed structures.

use super::*;

#[test]
fn one_byte_changed_in_the_body_breaks_the_signature() {
    for name in ["rsa-detached", "ecdsa-detached"] {
        let tampered = replace_once(
            &message(name),
            b"Compte rendu de consultation",
            b"Compte rendu de consultatioN",
            0,
        );
        let error = verifier().verify(&tampered, None).unwrap_err();
        assert!(
            matches!(error, SmimeError::BadSignature { .. }),
            "{name}: {error:?}"
        );
        assert_eq!(reply_of(&error), (554, "5.7.5".into()));
    }
}

#[test]
fn header_changed_inside_the_signature_breaks_it() {
    // The Message-ID of the wrapped message: its second occurrence is inside the signed part.
    let tampered = replace_once(&message("wrapped"), b"<wrapped-1@", b"<wrapped-2@", 1);
    assert!(matches!(
        verifier().verify(&tampered, None),
        Err(SmimeError::BadSignature { .. })
    ));
    // The same change outside the signature is header tampering.
    let tampered = replace_once(&message("wrapped"), b"<wrapped-1@", b"<wrapped-2@", 0);
    assert!(
        matches!(verifier().verify(&tampered, None), Err(SmimeError::HeaderTampering { header, .. }) if header == "Message-ID")
    );
    // And a header of the signed entity itself.
    let tampered = replace_once(
        &message("rsa-detached"),
        b"charset=utf-8",
        b"charset=utf-7",
        0,
    );
    assert!(matches!(
        verifier().verify(&tampered, None),
        Err(SmimeError::BadSignature { .. })
    ));
}

#[test]
fn wrapped_message_with_matching_outer_headers_verifies() {
    let verified = verify("wrapped").unwrap();
    assert!(
        verified
            .inner
            .starts_with(b"Content-Type: message/rfc822\r\n")
    );
}

#[test]
fn outer_subject_differing_from_the_wrapped_message_is_tampering() {
    let error = verify("wrapped-tampered").unwrap_err();
    match &error {
        SmimeError::HeaderTampering {
            header,
            outer,
            inner,
        } => {
            assert_eq!(header, "Subject");
            assert_eq!(outer, "Resultats normaux, rien a signaler");
            assert_eq!(inner, "Resultats d'examen (test)");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reply_of(&error), (554, "5.7.7".into()));
}

#[test]
fn outer_from_rewritten_on_a_wrapped_message_is_tampering_or_mismatch() {
    // A relay rewriting From on the outside: the signer's rfc822Name no longer matches.
    let tampered = replace_once(
        &message("wrapped"),
        b"From: secretariat@",
        b"From: direction@",
        0,
    );
    assert!(matches!(
        verifier().verify(&tampered, None),
        Err(SmimeError::SenderMismatch { .. })
    ));
}

#[test]
fn malformed_structures_are_5_6_0() {
    let garbage = b"From: a@hopital-a.mssante.test\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
    let error = verifier().verify(garbage, None).unwrap_err();
    assert!(matches!(error, SmimeError::Malformed { .. }), "{error:?}");
    assert_eq!(reply_of(&error), (554, "5.6.0".into()));

    // A third part smuggled into multipart/signed.
    let original = message("rsa-detached");
    let text = String::from_utf8(original).unwrap();
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let extra = format!("--{boundary}\r\nContent-Type: text/plain\r\n\r\nextra\r\n--{boundary}--");
    let three = text.replacen(&format!("--{boundary}--"), &extra, 1);
    assert!(matches!(
        verifier().verify(three.as_bytes(), None),
        Err(SmimeError::Malformed { .. })
    ));

    let wrong_protocol = text.replace(
        "protocol=\"application/pkcs7-signature\"",
        "protocol=\"application/pgp-signature\"",
    );
    assert!(matches!(
        verifier().verify(wrong_protocol.as_bytes(), None),
        Err(SmimeError::Malformed { .. })
    ));
}

#[test]
fn several_from_mailboxes_are_malformed() {
    let doubled = replace_once(
        &message("rsa-detached"),
        b"From: secretariat@hopital-a.mssante.test\r\n",
        b"From: secretariat@hopital-a.mssante.test\r\nFrom: direction@hopital-a.mssante.test\r\n",
        0,
    );
    assert!(matches!(
        verifier().verify(&doubled, None),
        Err(SmimeError::Malformed { .. })
    ));
    let two = replace_once(
        &message("rsa-detached"),
        b"From: secretariat@hopital-a.mssante.test\r\n",
        b"From: secretariat@hopital-a.mssante.test, direction@hopital-a.mssante.test\r\n",
        0,
    );
    assert!(matches!(
        verifier().verify(&two, None),
        Err(SmimeError::Malformed { .. })
    ));
}

/// Found by the fuzz target: a flipped bit in the digest algorithm OID of a detached signature. OpenSSL
/// 3.0 leaked memory on this path through `CmsContentInfo::verify`; it must stay a clean refusal.
#[test]
fn unknown_digest_algorithm_in_a_detached_signature_is_refused() {
    let raw = std::fs::read(fixtures().join("regressions/bad-digest-oid.eml")).unwrap();
    let error = verifier().verify(&raw, None).unwrap_err();
    assert!(
        matches!(error, SmimeError::BadSignature { .. }),
        "{error:?}"
    );
}
