//! Console pages: the mail sink's mailbox (`vigie demo` runs one so the e-mails the notifier and
//! the playbooks send can be read without a mail server). Shown only when the state has a sink
//! (`XdrState::mail_sink`), and only to the callers of the sink's space (it takes the e-mails
//! of every space); otherwise the paths are the console's 404 and the navigation has no link. Read with `alerts_read`, as the notification delivery log. A message is decoded with
//! `mail-parser` (quoted-printable, base64, multipart/alternative and mixed): its main headers,
//! its plain text, and a list of its other parts (an `invite.ics` with its SUMMARY and DTSTART).
//! The list reads the headers of the newest [`SHOWN`] messages only; decoding runs off the
//! async threads, and a message the parser cannot take (or panics on) is shown as unreadable.
use super::{Console, PageResult};
use crate::keys::AlertsRead;
use crate::mailsink::Received;
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use std::collections::HashSet;
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/mailbox", get(list)).route("/mailbox/{n}", get(one))
}

/// The most messages the list shows (the newest).
const SHOWN: usize = 200;

/// A message as the list shows it.
struct Row {
    no: u64,
    at: Time,
    from: String,
    to: String,
    subject: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct ListPage {
    shell: Shell,
    rows: Vec<Row>,
    total: usize,
    /// The name of the file the sink keeps its messages in as well, if it does.
    file: Option<String>,
}

/// The console's 404 when there is no sink: the same answer as a path that does not exist.
async fn no_sink(headers: HeaderMap, uri: Uri) -> Response {
    super::not_found(headers, uri).await
}

async fn list(State(st): State<XdrState>, headers: HeaderMap, uri: Uri, console: Result<Console, Response>) -> PageResult {
    if st.mail_sink.is_none() {
        return Ok(no_sink(headers, uri).await);
    }
    let console = match console {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let Some(sink) = st.mail_sink.as_ref().and_then(|s| s.for_caller(&console.caller)).cloned() else {
        return Ok(no_sink(headers, uri).await);
    };
    console.authorized::<AlertsRead>()?;
    let file = sink.file().and_then(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()));
    let (total, rows) = tokio::task::spawn_blocking(move || {
        let (total, newest) = sink.newest(SHOWN);
        let rows = newest
            .into_iter()
            .map(|(no, m)| {
                let d = summary(m.data.as_bytes());
                Row { no, at: Time(m.at), from: d.from, to: d.to, subject: d.subject }
            })
            .collect::<Vec<_>>();
        (total, rows)
    })
    .await
    .map_err(|e| vigie_core::http::ApiError::internal(format!("reading the mailbox failed: {e}")))?;
    Ok(vigie_web::page(StatusCode::OK, &ListPage { shell: console.shell("Mailbox", "/mailbox"), rows, total, file }))
}

#[derive(Template)]
#[template(path = "mailbox_message.html")]
struct MessagePage {
    shell: Shell,
    at: Time,
    envelope_from: String,
    envelope_to: String,
    m: Decoded,
}

async fn one(
    State(st): State<XdrState>,
    headers: HeaderMap,
    uri: Uri,
    console: Result<Console, Response>,
    Path(n): Path<String>,
) -> PageResult {
    if st.mail_sink.is_none() {
        return Ok(no_sink(headers, uri).await);
    }
    let console = match console {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let Some(sink) = st.mail_sink.as_ref().and_then(|s| s.for_caller(&console.caller)).cloned() else {
        return Ok(no_sink(headers, uri).await);
    };
    console.authorized::<AlertsRead>()?;
    let Some((no, m)) = n.parse::<u64>().ok().and_then(|no| sink.message(no).map(|m| (no, m))) else {
        return Ok(vigie_web::message(
            super::PRODUCT,
            StatusCode::NOT_FOUND,
            "No such message",
            "The mailbox keeps the most recent messages only; this one is not (or no longer) there.",
        )
        .into_response());
    };
    let (at, envelope_from, envelope_to) = (Time(m.at), m.from.clone(), m.to.join(", "));
    let decoded = tokio::task::spawn_blocking(move || Decoded::of(&m))
        .await
        .map_err(|e| vigie_core::http::ApiError::internal(format!("decoding the message failed: {e}")))?;
    let page = MessagePage { shell: console.shell(format!("Message {no}"), "/mailbox"), at, envelope_from, envelope_to, m: decoded };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// A part of a message that is not its text: an attachment or the HTML alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherPart {
    /// Its file name, if it has one.
    pub filename: Option<String>,
    /// Its content type (`text/calendar`).
    pub content_type: String,
    /// Its size once decoded (bytes).
    pub size: usize,
    /// For a calendar: the event's SUMMARY and DTSTART.
    pub calendar: Option<(String, String)>,
}

/// What the pages show of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The `From` header (decoded).
    pub from: String,
    /// The `To` header (decoded).
    pub to: String,
    /// The `Cc` header.
    pub cc: String,
    /// The `Subject` header (decoded).
    pub subject: String,
    /// The `Date` header as written.
    pub date: String,
    /// The plain text (every text/plain body part, in order).
    pub text: String,
    /// The other parts.
    pub others: Vec<OtherPart>,
    /// Set when the message could not be parsed (the raw data is shown instead).
    pub unreadable: bool,
}

impl Decoded {
    /// Decodes a received message.
    pub fn of(m: &Received) -> Decoded {
        decode(m.data.as_bytes())
    }
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    let Some(a) = a else { return String::new() };
    a.iter()
        .map(|x| match (x.name(), x.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_owned(),
            (Some(n), None) => n.to_owned(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `raw` is shown as when it cannot be decoded: unreadable, its text as it came.
fn unreadable(raw: &[u8]) -> Decoded {
    Decoded { text: String::from_utf8_lossy(raw).into_owned(), unreadable: true, ..Decoded::default() }
}

/// The main headers of the raw message `raw` only (the list's row): its body is not parsed.
pub fn summary(raw: &[u8]) -> Decoded {
    let parsed = std::panic::catch_unwind(|| {
        MessageParser::default().parse_headers(raw).map(|msg| Decoded {
            from: addresses(msg.from()),
            to: addresses(msg.to()),
            cc: addresses(msg.cc()),
            subject: msg.subject().unwrap_or_default().to_owned(),
            date: msg.header_raw("Date").map(|s| s.trim().to_owned()).unwrap_or_default(),
            ..Decoded::default()
        })
    });
    match parsed {
        Ok(Some(d)) => d,
        _ => Decoded { unreadable: true, ..Decoded::default() },
    }
}

/// Decodes the raw message `raw` (headers and body, CRLF line ends); a message the parser
/// refuses, or panics on (a bug in it must not take the page down), is unreadable.
pub fn decode(raw: &[u8]) -> Decoded {
    std::panic::catch_unwind(|| decode_unguarded(raw)).unwrap_or_else(|_| unreadable(raw))
}

fn decode_unguarded(raw: &[u8]) -> Decoded {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return unreadable(raw);
    };
    let mut d = Decoded {
        from: addresses(msg.from()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        subject: msg.subject().unwrap_or_default().to_owned(),
        date: msg.header_raw("Date").map(|s| s.trim().to_owned()).unwrap_or_default(),
        ..Decoded::default()
    };
    let texts: Vec<u32> =
        msg.text_body.iter().copied().filter(|&i| matches!(msg.parts.get(i as usize).map(|p| &p.body), Some(PartType::Text(_)))).collect();
    let is_text: HashSet<u32> = texts.iter().copied().collect();
    for &i in &texts {
        if let Some(PartType::Text(t)) = msg.parts.get(i as usize).map(|p| &p.body) {
            if !d.text.is_empty() {
                d.text.push_str("\n\n");
            }
            d.text.push_str(t.replace("\r\n", "\n").trim_end_matches('\n'));
        }
    }
    for (i, part) in msg.parts.iter().enumerate() {
        if is_text.contains(&(i as u32))
            || matches!(part.body, PartType::Multipart(_))
            || (i == 0 && matches!(part.body, PartType::Message(_)))
        {
            continue;
        }
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{s}", c.ctype()),
                None => c.ctype().to_owned(),
            })
            .unwrap_or_else(|| "text/plain".to_owned())
            .to_ascii_lowercase();
        let calendar = (content_type == "text/calendar").then(|| part.text_contents().map(calendar_event)).flatten();
        d.others.push(OtherPart {
            filename: part.attachment_name().map(str::to_owned),
            content_type,
            size: part.contents().len(),
            calendar,
        });
    }
    d
}

/// The SUMMARY and DTSTART of a calendar's first event (lines unfolded; escapes undone).
fn calendar_event(ics: &str) -> (String, String) {
    let unfolded = ics.replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "").replace("\n\t", "");
    let value = |name: &str| {
        unfolded
            .lines()
            .find_map(|l| {
                let (key, v) = l.split_once(':')?;
                let key = key.split(';').next()?;
                key.eq_ignore_ascii_case(name).then(|| v.trim_end_matches('\r').to_owned())
            })
            .unwrap_or_default()
    };
    let summary = value("SUMMARY").replace("\\n", " ").replace("\\N", " ").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\");
    (summary, value("DTSTART"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart, SinglePart};

    fn builder() -> lettre::message::MessageBuilder {
        lettre::Message::builder()
            .from("Vigie <vigie@corp.example>".parse().expect("from"))
            .to("erin@corp.example".parse().expect("to"))
            .subject("Revue de sécurité : Dave Martin")
    }

    #[test]
    fn a_plain_message_with_accents_is_decoded_from_quoted_printable_or_base64() {
        let text = "Bonjour Erin,\r\n\r\nDave a collé des données sensibles — merci de revoir avec lui.\r\n";
        let m = builder().singlepart(SinglePart::plain(text.to_owned())).expect("message");
        let raw = m.formatted();
        let d = decode(&raw);
        assert!(!d.unreadable);
        assert_eq!(d.subject, "Revue de sécurité : Dave Martin");
        assert_eq!(d.from, "Vigie <vigie@corp.example>");
        assert_eq!(d.to, "erin@corp.example");
        assert_eq!(d.text, text.replace("\r\n", "\n").trim_end());
        assert!(d.others.is_empty(), "{:?}", d.others);
        // The raw message is not the text: lettre encoded it.
        assert!(!String::from_utf8_lossy(&raw).contains("collé des données"), "{}", String::from_utf8_lossy(&raw));
    }

    #[test]
    fn an_alternative_with_an_invite_shows_the_text_and_lists_the_html_and_the_calendar() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x@vigie\r\nDTSTART:20260301T090000Z\r\n\
                   SUMMARY:Security review\\, Dave\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let ct = ContentType::parse("text/calendar; charset=utf-8; method=REQUEST").expect("ct");
        let text = MultiPart::alternative_plain_html("Plain words.".to_owned(), "<p>Plain <b>words</b>.</p>".to_owned());
        let m = builder()
            .multipart(MultiPart::mixed().multipart(text).singlepart(Attachment::new("invite.ics".to_owned()).body(ics.to_owned(), ct)))
            .expect("message");
        let d = decode(&m.formatted());
        assert_eq!(d.text, "Plain words.");
        let types: Vec<&str> = d.others.iter().map(|p| p.content_type.as_str()).collect();
        assert_eq!(types, ["text/html", "text/calendar"], "{:?}", d.others);
        let invite = &d.others[1];
        assert_eq!(invite.filename.as_deref(), Some("invite.ics"));
        assert_eq!(invite.calendar, Some(("Security review, Dave".to_owned(), "20260301T090000Z".to_owned())));
    }

    #[test]
    fn a_mixed_message_with_one_plain_part_shows_it() {
        let m = builder().multipart(MultiPart::mixed().singlepart(SinglePart::plain("Only text.".to_owned()))).expect("message");
        let d = decode(&m.formatted());
        assert_eq!(d.text, "Only text.");
        assert!(d.others.is_empty(), "{:?}", d.others);
    }

    #[test]
    fn the_summary_reads_the_headers_and_not_the_body() {
        let m = builder().singlepart(SinglePart::plain("Body words.".to_owned())).expect("message");
        let d = summary(&m.formatted());
        assert_eq!((d.subject.as_str(), d.to.as_str()), ("Revue de sécurité : Dave Martin", "erin@corp.example"));
        assert!(d.text.is_empty() && !d.unreadable, "{d:?}");
    }

    #[test]
    fn hostile_messages_decode_or_show_as_unreadable_without_panicking() {
        let deep =
            format!("{}x{}", "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n".repeat(2_000), "\r\n--b--\r\n".repeat(2_000));
        let inputs: Vec<Vec<u8>> = vec![
            b"Subject: =?utf-8?B?////?=\r\n\r\n".to_vec(),
            b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n".to_vec(),
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!!====\r\n".to_vec(),
            vec![0xff; 4096],
            deep.into_bytes(),
        ];
        for raw in inputs {
            let _ = decode(&raw);
            let _ = summary(&raw);
        }
    }

    #[test]
    fn what_is_not_a_message_is_shown_as_it_came() {
        let d = decode(b"");
        assert!(d.unreadable || d.text.is_empty());
    }
}
