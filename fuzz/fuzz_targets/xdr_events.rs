//! Untrusted input: a body sent to the XDR intake (`POST /api/v1/events`): split into events,
//! each event's log fields read, then the event read back normalised as the API shows it.
//! Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigie_xdr::intake::{log_fields, parse_events};
use vigie_xdr::log::{Stored, shown};

fuzz_target!(|data: &[u8]| {
    let Ok(events) = parse_events(data) else { return };
    for text in events {
        let Ok(f) = log_fields(&text) else { continue };
        let stored = Stored {
            id: f.id.unwrap_or_default(),
            received_at: 0,
            timestamp: f.timestamp.unwrap_or(0),
            event_type: f.event_type,
            source: f.source.unwrap_or_default(),
            body: text.into_owned(),
        };
        let _ = shown(&stored, "space");
    }
});
