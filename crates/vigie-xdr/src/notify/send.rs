//! One delivery attempt of a rendered message through a channel: an HTTP POST (Slack, Teams,
//! the signed generic webhook) through the webhook crate's guarded client, or an e-mail over
//! SMTP (lettre, rustls; STARTTLS required or implicit TLS; a private CA trusted on demand).
//! Never fails: every problem is an attempt's outcome. No error names a URL or a password.
use super::Notifier;
use super::channel::{ChannelKind, ChannelRow, Secrets, SmtpTls};
use super::message::Message;
use std::time::{Duration, Instant};

/// What one attempt gave.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attempt {
    /// Delivered (2xx, or the SMTP server took the message).
    pub ok: bool,
    /// The HTTP status, when a response came.
    pub http_status: Option<u16>,
    /// The SMTP server's reply (`250 …`, or the refusal).
    pub smtp_reply: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
    /// The receiver's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// Retrying cannot help (a 4xx other than 408 and 429, a permanent SMTP refusal, no
    /// recipient).
    pub permanent: bool,
}

impl Attempt {
    fn failed(error: impl Into<String>, started: Instant, permanent: bool) -> Attempt {
        Attempt { error: Some(error.into()), duration: started.elapsed(), permanent, ..Attempt::default() }
    }

    /// The outcome in a few words, for the log and the delivery record.
    pub fn summary(&self) -> String {
        match (&self.http_status, &self.smtp_reply, &self.error) {
            (_, _, Some(e)) => e.clone(),
            (Some(s), _, None) => format!("HTTP {s}"),
            (None, Some(r), None) => r.clone(),
            _ => "sent".into(),
        }
    }
}

/// Sends `msg` (notification `id`) through `ch` once.
pub(crate) async fn send(n: &Notifier, ch: &ChannelRow, secrets: &Secrets, msg: &Message, id: &str, now_secs: i64) -> Attempt {
    match ch.kind {
        ChannelKind::Email => send_mail(n, ch, secrets, msg).await,
        kind => send_http(n, kind, ch, secrets, msg, id, now_secs).await,
    }
}

async fn send_http(n: &Notifier, kind: ChannelKind, ch: &ChannelRow, secrets: &Secrets, msg: &Message, id: &str, now_secs: i64) -> Attempt {
    let started = Instant::now();
    // A webhook channel stored before its URL was sealed still has it in the plain settings.
    let url = secrets.url.clone().or_else(|| ch.plain.url.clone().filter(|_| kind == ChannelKind::Webhook));
    let Some(url) = url else { return Attempt::failed("the channel has no URL", started, true) };
    let body = match &msg.body {
        Some(b) => serde_json::to_vec(b).unwrap_or_default(),
        None => return Attempt::failed("the message has no payload for this kind of channel", started, true),
    };
    let mut headers = Vec::new();
    if kind == ChannelKind::Webhook {
        let secret = secrets.secret.as_deref().and_then(|s| vigie_webhook::signature::SigningSecret::parse(s).ok());
        let Some(secret) = secret else { return Attempt::failed("the channel's signing secret cannot be read", started, true) };
        let signed = vigie_webhook::signature::sign(id, now_secs, &body, &[&secret]);
        headers.extend(signed.pairs().into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    let req = vigie_webhook::client::Request { url, headers, body, content_type: "application/json" };
    let out = n.http.send(req).await;
    let retry_after = out.retry_after.as_deref().and_then(|v| vigie_webhook::schedule::parse_retry_after(v, now_secs));
    let ok = out.success();
    let error = match (ok, &out.error, out.status) {
        (true, _, _) => None,
        (false, Some(e), _) => Some(e.clone()),
        (false, None, Some(s)) => {
            let excerpt: String = out.excerpt.chars().take(200).collect();
            Some(if excerpt.trim().is_empty() { format!("HTTP {s}") } else { format!("HTTP {s}: {}", excerpt.trim()) })
        }
        (false, None, None) => Some("no answer".into()),
    };
    Attempt {
        ok,
        http_status: out.status,
        smtp_reply: None,
        error,
        duration: out.latency,
        retry_after,
        // A 4xx says the request itself is wrong (a revoked Slack token, a deleted Teams
        // connector, 410: do not call again) — retrying for hours cannot help; only 408 and 429
        // are about the moment. The notification fails; the channel stays as it is.
        permanent: out.gone() || out.status.is_some_and(permanent_status),
    }
}

/// Whether an HTTP answer means retrying cannot help: a 4xx other than 408 and 429.
fn permanent_status(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}

/// The e-mail as lettre builds it.
fn email(ch: &ChannelRow, msg: &Message) -> Result<lettre::Message, String> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart, SinglePart};
    let from = ch.plain.from.as_deref().unwrap_or_default();
    let from: lettre::message::Mailbox = from.parse().map_err(|e| format!("the sender {from:?} is not an address: {e}"))?;
    let recipients = if msg.to.is_empty() { &ch.plain.to } else { &msg.to };
    if recipients.is_empty() {
        return Err("no recipient: the channel has no default recipients (settings.to) and none were given".into());
    }
    let mut b = lettre::Message::builder().from(from).subject(msg.subject.clone());
    for t in recipients {
        let to: lettre::message::Mailbox = t.trim().parse().map_err(|e| format!("{t:?} is not an e-mail address: {e}"))?;
        b = b.to(to);
    }
    let text = match &msg.html {
        Some(h) => MultiPart::alternative_plain_html(msg.text.clone(), h.clone()),
        None => MultiPart::mixed().singlepart(SinglePart::plain(msg.text.clone())),
    };
    let built = match &msg.ical {
        Some(ics) => {
            let ct = ContentType::parse("text/calendar; charset=utf-8; method=REQUEST").map_err(|e| e.to_string())?;
            let invite = Attachment::new("invite.ics".to_owned()).body(ics.clone(), ct);
            b.multipart(MultiPart::mixed().multipart(text).singlepart(invite))
        }
        None if msg.html.is_none() => b.singlepart(SinglePart::plain(msg.text.clone())),
        None => b.multipart(text),
    };
    built.map_err(|e| format!("the e-mail cannot be built: {e}"))
}

async fn send_mail(n: &Notifier, ch: &ChannelRow, secrets: &Secrets, msg: &Message) -> Attempt {
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let started = Instant::now();
    let email = match email(ch, msg) {
        Ok(e) => e,
        Err(e) => return Attempt::failed(e, started, true),
    };
    let Some(host) = ch.plain.host.clone() else { return Attempt::failed("the channel has no SMTP host", started, true) };
    let mode = ch.plain.tls.unwrap_or(SmtpTls::Starttls);
    let params = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(pem) = &ch.plain.ca_pem {
            let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("settings.ca_pem is not a certificate: {e}"))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls().map_err(|e| format!("TLS cannot be set up: {e}"))
    };
    let (tls, default_port) = match mode {
        SmtpTls::None => (Tls::None, 25),
        SmtpTls::Starttls => match params() {
            Ok(p) => (Tls::Required(p), 587),
            Err(e) => return Attempt::failed(e, started, true),
        },
        SmtpTls::Tls => match params() {
            Ok(p) => (Tls::Wrapper(p), 465),
            Err(e) => return Attempt::failed(e, started, true),
        },
    };
    let port = ch.plain.port.unwrap_or(default_port);
    let credentials = match (&ch.plain.username, &secrets.password) {
        (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
        _ => None,
    };
    let sent = match tls {
        // Implicit TLS: lettre's transport opens the connection.
        Tls::Wrapper(_) | Tls::Opportunistic(_) => {
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port).tls(tls).timeout(Some(n.timeout));
            if let Some(c) = credentials {
                b = b.credentials(c);
            }
            tokio::time::timeout(n.timeout, b.build().send(email)).await.map(|r| r.map_err(Sent::Smtp))
        }
        // Plain and STARTTLS: our own connection, with Nagle's algorithm off. lettre writes the
        // message and its final "." in two writes; with Nagle on, the second waited for the
        // server's delayed acknowledgement — 40 ms an e-mail (BENCHMARKS.md).
        Tls::None | Tls::Required(_) => tokio::time::timeout(n.timeout, plain_or_starttls(&host, port, tls, credentials, email)).await,
    };
    match sent {
        Ok(Ok(resp)) => {
            let reply = format!("{} {}", resp.code(), resp.message().collect::<Vec<_>>().join(" "));
            Attempt { ok: true, smtp_reply: Some(reply.trim().to_owned()), duration: started.elapsed(), ..Attempt::default() }
        }
        Ok(Err(Sent::Smtp(e))) => {
            let mut a = Attempt::failed(smtp_error(&e), started, e.is_permanent());
            a.smtp_reply = e.status().map(|c| c.to_string());
            a
        }
        Ok(Err(Sent::Connect(e))) => Attempt::failed(format!("could not connect to the SMTP server: {e}"), started, false),
        Err(_) => Attempt::failed(format!("the SMTP server did not answer within {:?}", n.timeout), started, false),
    }
}

/// Why a send failed before or during SMTP.
enum Sent {
    /// No TCP connection.
    Connect(std::io::Error),
    /// The SMTP exchange (TLS included) failed.
    Smtp(lettre::transport::smtp::Error),
}

/// Sends one e-mail over a connection of our own (TCP_NODELAY), upgraded with STARTTLS when
/// `tls` requires it, authenticated when there are credentials.
async fn plain_or_starttls(
    host: &str,
    port: u16,
    tls: lettre::transport::smtp::client::Tls,
    credentials: Option<lettre::transport::smtp::authentication::Credentials>,
    email: lettre::Message,
) -> Result<lettre::transport::smtp::response::Response, Sent> {
    use lettre::transport::smtp::authentication::Mechanism;
    use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
    use lettre::transport::smtp::extension::ClientId;
    let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(Sent::Connect)?;
    tcp.set_nodelay(true).map_err(Sent::Connect)?;
    let hello = ClientId::default();
    let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await.map_err(Sent::Smtp)?;
    if let Tls::Required(params) = tls {
        conn.starttls(params, &hello).await.map_err(Sent::Smtp)?;
    }
    if let Some(c) = credentials {
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &c).await.map_err(Sent::Smtp)?;
    }
    let resp = conn.send(email.envelope(), &email.formatted()).await.map_err(Sent::Smtp)?;
    // The message is accepted: QUIT on its own clock, its outcome ignored — a server slow to
    // say goodbye must not make a delivered message count as failed (and be sent again).
    tokio::spawn(async move {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn.quit()).await;
    });
    Ok(resp)
}

/// An SMTP error and its causes in one line.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
