//! Trust and document failures are refused at the end of DATA with their exact reply (the codes
//! of `SmimeError::smtp_reply` and `DocumentError::reply`), written to the ledger as `rejected`,
//! and nothing reaches the DMP, a mailbox or the spool.

use gateway_tests::e2e::checks::{Mailbox, audit_verifies, copies_in};
use gateway_tests::e2e::message::{Clinical, Mail, Protection, lab_result_cda, tampered_xdm};
use gateway_tests::e2e::{Outcome, Patient, TestEnvBuilder};

const TO: &str = "dr.test@cabinet-c.mssante.test";

struct Case {
    name: &'static str,
    clinical: Clinical,
    protection: Protection,
    code: u16,
    enhanced: &'static str,
    /// Start of the text after the enhanced code.
    text: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trust_and_document_failure_gets_its_exact_reply_and_a_rejected_entry()
-> anyhow::Result<()> {
    let env = TestEnvBuilder::new().start().await?;
    let patient = Patient::synthetic(201);
    let signed = |signer| Protection::Signed(signer);
    let cases = vec![
        Case {
            name: "unsigned",
            clinical: lab_result_cda(&patient, 201),
            protection: Protection::None,
            code: 550,
            enhanced: "5.7.1",
            text: "Unsigned message refused by policy",
        },
        Case {
            name: "revoked-signer",
            clinical: lab_result_cda(&patient, 202),
            protection: signed("sign-revoked"),
            code: 550,
            enhanced: "5.7.1",
            text: "Signer certificate revoked",
        },
        Case {
            name: "rogue-signer",
            clinical: lab_result_cda(&patient, 203),
            protection: signed("sign-rogue"),
            code: 550,
            enhanced: "5.7.1",
            text: "Signer certificate not trusted",
        },
        Case {
            name: "expired-signer",
            clinical: lab_result_cda(&patient, 204),
            protection: signed("sign-expired"),
            code: 550,
            enhanced: "5.7.1",
            text: "Signer certificate not trusted",
        },
        Case {
            name: "bad-ins-key",
            clinical: lab_result_cda(&patient.with_bad_key(), 205),
            protection: signed("sign-hopital-a"),
            code: 554,
            enhanced: "5.6.0",
            text: "",
        },
        Case {
            name: "xdm-hash-mismatch",
            clinical: tampered_xdm(&patient, 206)?,
            protection: signed("sign-hopital-a"),
            code: 554,
            enhanced: "5.6.0",
            text: "",
        },
    ];

    for case in &cases {
        let message_id = format!("{}@hopital-a.mssante.test", case.name);
        let mail = Mail::new(&[TO], &message_id, case.clinical.attachments.clone())
            .protected(case.protection);
        let outcome = env.send(&mail).await?;
        let Outcome::Refused(reply) = &outcome else {
            panic!(
                "{}: expected {} {}, got {outcome:?}",
                case.name, case.code, case.enhanced
            );
        };
        let line = reply.lines.join(" ");
        assert_eq!(reply.code, case.code, "{}: {reply}", case.name);
        assert!(
            line.starts_with(&format!("{} {}", case.enhanced, case.text)),
            "{}: expected {} {} {:?}, got {reply}",
            case.name,
            case.code,
            case.enhanced,
            case.text
        );

        // The refusal is in the ledger, found by the message's Message-ID.
        let kinds = env.trace(&message_id)?;
        assert!(
            kinds.iter().any(|k| k == "rejected"),
            "{}: no rejected entry: {kinds:?}",
            case.name
        );
        for accepted in ["queued", "deposited", "relayed"] {
            assert!(
                !kinds.iter().any(|k| k == accepted),
                "{}: {accepted} after a refusal: {kinds:?}",
                case.name
            );
        }
    }

    // Nothing was accepted: no spool file, no deposit, no relay.
    assert_eq!(env.spool_pending()?, 0);
    for case in &cases {
        assert!(
            env.dmp
                .documents(&case.clinical.patient.cx())
                .await?
                .is_empty(),
            "{}: deposited",
            case.name
        );
        let message_id = format!("{}@hopital-a.mssante.test", case.name);
        assert_eq!(
            copies_in(&env, Mailbox::Smtp("cabinet-c.mssante.test"), &message_id).await?,
            0
        );
    }
    let rejected = env
        .ledger()?
        .iter()
        .filter(|entry| entry["kind"] == "rejected")
        .count();
    assert_eq!(rejected, cases.len());
    audit_verifies(&env)?;

    // `audit trace` takes a Message-ID "with or without angle brackets": the header form too.
    let header_form = format!("<{}@hopital-a.mssante.test>", cases[0].name);
    let kinds = env.trace(&header_form);
    env.finish().await?;
    let kinds = kinds?;
    assert!(
        kinds.iter().any(|k| k == "rejected"),
        "{header_form}: {kinds:?}"
    );
    Ok(())
}
