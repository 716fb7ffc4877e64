//! The console's mail decoder over any bytes (the mail sink takes whatever a client sends):
//! the summary and the full decoding never panic (the decoder's own guard is not what keeps
//! this target quiet: it calls the parser directly too), and what cannot be parsed is shown as
//! it came.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigie_xdr::console::mailbox::{decode, summary};

fuzz_target!(|data: &[u8]| {
    let d = decode(data);
    if d.unreadable {
        assert_eq!(d.text, String::from_utf8_lossy(data), "an unreadable message is shown as it came");
    }
    let s = summary(data);
    assert!(s.text.is_empty() && s.others.is_empty(), "the summary reads headers only");
    // The parser itself, unguarded: a panic here is a bug to report upstream.
    let _ = mail_parser::MessageParser::default().parse(data);
});
