//! Fuzzes the XDM entry points: arbitrary bytes as a zip package and as METADATA.XML must be
//! read or refused with a typed error, never panic, never allocate past the policy's limits.
#![no_main]

use gateway::documents::DocumentPolicy;
use gateway::documents::xdm;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let policy = DocumentPolicy {
        max_entry_size: 1024 * 1024,
        max_total_uncompressed: 4 * 1024 * 1024,
        ..DocumentPolicy::default()
    };
    let _ = xdm::is_xdm(Some("IHE_XDM.ZIP"), input);
    if let Err(error) = xdm::read_package(input, "IHE_XDM.ZIP", &policy) {
        let _ = (error.reply(), error.ledger_reason());
    }
    let _ = xdm::metadata::parse(input, "METADATA.XML", policy.xml_limits());
});
