//! The console's Mailbox page: the mail sink's messages, newest first, and one message decoded
//! (quoted-printable or base64 text, the parts of a multipart message, an invitation's event);
//! `alerts_read` needed; without a sink, and to the keys of another space than the sink's, the
//! page is a 404 and the navigation has no link.
use crate::TestXdr;
use crate::console::Browser;
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::SystemClock;
use vigie_xdr::mailsink::Mailbox;
use vigie_xdr::state::MailSink;

/// A server whose console shows `mail` to the space `acme`, a sink on loopback that receives
/// into it, and its port.
async fn with_sink() -> (TestXdr, Mailbox, u16, CancellationToken) {
    let mail = Mailbox::default();
    let sink = mail.clone();
    let x = TestXdr::start_full(
        tempfile::tempdir().expect("tempdir"),
        Arc::new(SystemClock),
        |o| o.allow_private_destinations = true,
        async move |s: &mut vigie_xdr::XdrState| {
            let space = s.keys.ensure_space("acme").await.expect("space");
            s.mail_sink = Some(MailSink { mailbox: sink, space_id: space.id });
        },
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = CancellationToken::new();
    tokio::spawn(vigie_xdr::mailsink::serve(listener, mail.clone(), stop.clone()));
    (x, mail, port, stop)
}

async fn received(mail: &Mailbox, n: u64) {
    let mut w = mail.watch();
    tokio::time::timeout(Duration::from_secs(20), w.wait_for(|c| *c >= n)).await.expect("the e-mail arrived in time").expect("watch");
}

#[tokio::test]
async fn the_mailbox_lists_what_an_email_channel_sent_and_shows_it_decoded() {
    let (x, mail, port, stop) = with_sink().await;
    let (admin, _) = x.key("acme", &["alerts_read", "admin"], false).await;
    // A real e-mail channel through the sink, with templates that need encoding (accents) and
    // hold markup that must come out as text.
    let (status, ch) = x
        .call_json(
            "POST",
            "/api/v1/notifications/channels",
            &admin,
            json!({"name": "mail", "kind": "email",
                "settings": {"host": "127.0.0.1", "port": port, "tls": "none", "from": "Vigie <vigie@corp.example>", "to": ["soc@corp.example"]},
                "templates": {"subject": "Révision : {{ alert.title }}",
                    "body": "Données sensibles collées par {{ person.display_name }}.\n<script>alert(1)</script>\nÀ revoir cette semaine."}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ch}");
    let id = ch["id"].as_str().expect("id");
    let (status, r) = x.call_json("POST", &format!("/api/v1/notifications/channels/{id}/test"), &admin, json!({})).await;
    assert_eq!((status, r["status"].as_str()), (StatusCode::OK, Some("succeeded")), "{r}");
    received(&mail, 1).await;
    let raw = &mail.messages()[0].data;
    assert!(!raw.contains("Données sensibles"), "the sink holds the message as sent, encoded: {raw}");

    // A second message, sent with lettre: text, an HTML alternative and a calendar invitation.
    {
        use lettre::message::header::ContentType;
        use lettre::message::{Attachment, MultiPart};
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:r1@vigie\r\nDTSTART:20270104T090000Z\r\n\
                   SUMMARY:Security review with Dave\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let ct = ContentType::parse("text/calendar; charset=utf-8; method=REQUEST").expect("content type");
        let m = Message::builder()
            .from("Vigie <vigie@corp.example>".parse().expect("from"))
            .to("erin@corp.example".parse().expect("to"))
            .subject("Invitation: security review")
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(
                        "Please meet Dave.".to_owned(),
                        "<p>Please meet <b>Dave</b>.</p>".to_owned(),
                    ))
                    .singlepart(Attachment::new("invite.ics".to_owned()).body(ics.to_owned(), ct)),
            )
            .expect("message");
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(port).build();
        smtp.send(m).await.expect("sent");
    }
    received(&mail, 2).await;

    let b = Browser::login(&x.base, &admin).await;
    let (status, home) = b.page("/notifications").await;
    assert_eq!(status, StatusCode::OK);
    assert!(home.contains("href=\"/mailbox\""), "the navigation links the mailbox: {home}");
    let (status, list) = b.page("/mailbox").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let (first, second) = (list.find("Révision : Test notification from Vigie"), list.find("Invitation: security review"));
    assert!(second.is_some() && first.is_some() && second < first, "newest first, subjects decoded: {list}");
    assert!(list.contains("<time datetime=") && list.contains("soc@corp.example") && list.contains("erin@corp.example"), "{list}");
    assert!(list.contains("href=\"/mailbox/1\"") && list.contains("href=\"/mailbox/2\""), "{list}");
    assert!(list.contains("in memory only"), "a sink without a file says so: {list}");

    let (status, one) = b.page("/mailbox/1").await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert!(one.contains("Données sensibles collées par Test User."), "the text decoded: {one}");
    let escaped = |s: &str| [s.replace('<', "&lt;").replace('>', "&gt;"), s.replace('<', "&#60;").replace('>', "&#62;")];
    assert!(escaped("<script>alert(1)</script>").iter().any(|e| one.contains(e.as_str())), "escaped: {one}");
    assert!(!one.contains("<script>alert"), "{one}");
    assert!(escaped("Vigie <vigie@corp.example>").iter().any(|e| one.contains(e.as_str())), "{one}");

    let (status, two) = b.page("/mailbox/2").await;
    assert_eq!(status, StatusCode::OK, "{two}");
    assert!(two.contains("Please meet Dave."), "{two}");
    assert!(two.contains("invite.ics") && two.contains("text/calendar") && two.contains("text/html"), "other parts listed: {two}");
    assert!(two.contains("Security review with Dave") && two.contains("20270104T090000Z"), "the invitation's event: {two}");

    assert_eq!(b.page("/mailbox/3").await.0, StatusCode::NOT_FOUND);
    assert_eq!(b.page("/mailbox/x").await.0, StatusCode::NOT_FOUND);

    // A key without alerts_read is refused, and has no link.
    let (cases_only, _) = x.key("acme", &["cases_read"], false).await;
    let c = Browser::login(&x.base, &cases_only).await;
    let (status, _) = c.page("/mailbox").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(c.page("/mailbox/1").await.0, StatusCode::FORBIDDEN);
    let (_, cases) = c.page("/cases").await;
    assert!(!cases.contains("href=\"/mailbox\""), "{cases}");
    stop.cancel();
}

#[tokio::test]
async fn without_a_mail_sink_there_is_no_mailbox_page_and_no_link() {
    let x = TestXdr::start().await;
    let (key, _) = x.key("acme", &["alerts_read", "admin"], false).await;
    let b = Browser::login(&x.base, &key).await;
    let (_, page) = b.page("/notifications").await;
    assert!(!page.contains("/mailbox"), "{page}");
    let (status, body) = b.page("/mailbox").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(b.page("/mailbox/1").await.0, StatusCode::NOT_FOUND);
}

/// Regression (review 2, item 3): the sink takes every space's e-mails, and any key with
/// `alerts_read` in any space could read them.
#[tokio::test]
async fn a_key_of_another_space_gets_no_mailbox_page_and_no_link() {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let (x, mail, port, stop) = with_sink().await;
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(port).build();
    let m = Message::builder()
        .from("vigie@corp.example".parse().expect("from"))
        .to("manager@corp.example".parse().expect("to"))
        .subject("Only for acme")
        .body("Dave pasted an IBAN.".to_owned())
        .expect("message");
    smtp.send(m).await.expect("sent");
    received(&mail, 1).await;

    let (acme, _) = x.key("acme", &["alerts_read", "admin"], false).await;
    let a = Browser::login(&x.base, &acme).await;
    let (_, home) = a.page("/notifications").await;
    assert!(home.contains("href=\"/mailbox\""), "the sink's space has the link: {home}");
    let (status, list) = a.page("/mailbox").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert!(list.contains("Only for acme"), "{list}");
    assert_eq!(a.page("/mailbox/1").await.0, StatusCode::OK);

    let (other, _) = x.key("other", &["alerts_read", "admin"], false).await;
    let o = Browser::login(&x.base, &other).await;
    let (status, page) = o.page("/notifications").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(!page.contains("/mailbox"), "no link for another space: {page}");
    let (status, list) = o.page("/mailbox").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{list}");
    assert!(!list.contains("Only for acme"), "{list}");
    let (status, one) = o.page("/mailbox/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{one}");
    assert!(!one.contains("Dave pasted"), "{one}");
    stop.cancel();
}
