//! Untrusted input: the body of POST /api/v1/interactions, through the same parser and
//! validation/masking path as the server. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use vigie_firewall::interactions::{NewInteraction, check};

// Built once: building loads the phone metadata.
static SCANNER: LazyLock<vigie_pii::Scanner> = LazyLock::new(vigie_pii::Scanner::default);

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = vigie_core::http::parse_json::<NewInteraction>(data) {
        let _ = check(&SCANNER, req);
    }
});
