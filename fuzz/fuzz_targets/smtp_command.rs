//! Fuzzes the SMTP command parser: any line must parse or fail with a typed error, never panic, and
//! every error must map to a reply with a 5xx code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Err(error) = smtp_in::command::parse(line) {
        let reply = error.reply();
        assert!((500..600).contains(&reply.code), "{reply:?}");
    }
});
