//! Untrusted input: the body of POST /api/v1/interactions, through the same parser and
//! validation/masking path as the server. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigie_firewall::interactions::{NewInteraction, check};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = vigie_core::http::parse_json::<NewInteraction>(data) {
        let _ = check(req);
    }
});
