//! Fuzzes the liste blanche parser and the DN normaliser: arbitrary XML must load or fail with a typed
//! error; a normalised DN must normalise to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let _ = smtp_in::whitelist::Whitelist::parse(input);
    if let Ok(text) = std::str::from_utf8(input) {
        if let Ok(normal) = smtp_in::whitelist::normalize_dn(text) {
            assert_eq!(smtp_in::whitelist::normalize_dn(&normal).as_deref(), Ok(normal.as_str()));
        }
    }
});
