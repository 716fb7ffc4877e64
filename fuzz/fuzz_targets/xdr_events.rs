//! Untrusted input: a body sent to the XDR intake (`POST /api/v1/events`): split into events,
//! each event's log fields read, the event read back normalised as the API shows it, and its
//! facts read from the body, which must equal those of the normalised event. Must never panic.
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
        assert_eq!(vigie_xdr::facts::facts_of(&stored), vigie_xdr::facts::facts_of_normalized(&stored), "{}", stored.body);
    }
});
