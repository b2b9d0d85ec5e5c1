//! Fuzzes the CDA entry points: arbitrary bytes as a CDA header and as a whole message must
//! parse or be refused with a typed error, never panic.
#![no_main]

use gateway::documents::{DocumentPolicy, SourceMessage, cda, extract};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let policy = DocumentPolicy::default();
    let _ = cda::looks_like_cda(input);
    let _ = cda::parse(input, "fuzz.xml", policy.xml_limits());
    let source = SourceMessage {
        queue_id: "FUZZ".to_owned(),
        message_id: None,
    };
    if let Err(error) = extract(input, source, &policy) {
        let _ = (error.reply(), error.ledger_reason());
    }
});
