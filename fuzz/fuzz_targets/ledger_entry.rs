//! Fuzz the ledger entry decoder: never panic, and whatever decodes re-encodes to the same
//! bytes (the encoding is canonical, so a leaf hash names exactly one entry).
#![no_main]

use gateway::ledger::encoding::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = decode(data) {
        let again = encode(&entry).expect("a decoded entry is within the limits");
        assert_eq!(again, data, "decode then encode must give back the same bytes");
    }
    let _ = gateway::ledger::checkpoint::parse_note(&String::from_utf8_lossy(data));
});
