//! A mail sink: a small SMTP server on a local address that accepts every message and keeps the
//! most recent ones in memory, for `vigie demo` (the managers' e-mails land somewhere one can
//! look) and the response benchmark (when each message arrived). Not a mail server: no relay, no
//! authentication, no TLS; it listens where it is told, which is loopback in every caller.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The most messages kept (the oldest go first).
pub const KEPT: usize = 1_000;
/// The largest message taken (bytes); a bigger one is refused with 552.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// How long a client may stay silent.
const IDLE: Duration = Duration::from_secs(60);

/// A message the sink received.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Received {
    /// When its data ended (the sink's clock).
    pub at: chrono::DateTime<chrono::Utc>,
    /// The envelope's sender.
    pub from: String,
    /// The envelope's recipients.
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed, CRLF line ends).
    pub data: String,
}

impl Received {
    /// The value of a header of the message (the first, unfolded), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

/// The sink's mailbox: what it received, and a signal per message.
#[derive(Debug, Clone)]
pub struct Mailbox {
    kept: Arc<Mutex<Kept>>,
    count: Arc<tokio::sync::watch::Sender<u64>>,
}

/// The messages kept and how many older ones were let go (so each keeps its number).
#[derive(Debug, Default)]
struct Kept {
    messages: VecDeque<Received>,
    dropped: u64,
}

impl Default for Mailbox {
    fn default() -> Mailbox {
        Mailbox { kept: Arc::new(Mutex::new(Kept::default())), count: Arc::new(tokio::sync::watch::channel(0).0) }
    }
}

impl Mailbox {
    /// The messages kept, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        self.kept.lock().map(|k| k.messages.iter().cloned().collect()).unwrap_or_default()
    }

    /// The messages kept with their numbers (the first message received is 1; a number stays
    /// with its message while it is kept), oldest first.
    pub fn numbered(&self) -> Vec<(u64, Received)> {
        self.kept.lock().map(|k| (k.dropped + 1..).zip(k.messages.iter().cloned()).collect()).unwrap_or_default()
    }

    /// The message numbered `no`, if it is still kept.
    pub fn message(&self, no: u64) -> Option<Received> {
        let k = self.kept.lock().ok()?;
        let at = usize::try_from(no.checked_sub(k.dropped + 1)?).ok()?;
        k.messages.get(at).cloned()
    }

    /// A receiver whose value is the number of messages received so far.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.count.subscribe()
    }

    fn push(&self, m: Received) {
        if let Ok(mut k) = self.kept.lock() {
            if k.messages.len() == KEPT {
                k.messages.pop_front();
                k.dropped += 1;
            }
            k.messages.push_back(m);
        }
        self.count.send_modify(|n| *n += 1);
    }
}

/// Serves SMTP on `listener` into `mailbox` until `shutdown`.
pub async fn serve(listener: TcpListener, mailbox: Mailbox, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (mailbox, shutdown) = (mailbox.clone(), shutdown.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            r = session(stream, &mailbox) => if let Err(e) = r {
                                tracing::debug!(error = %e, "mail sink session ended");
                            },
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the mail sink could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// One SMTP session (RFC 5321's minimum: HELO/EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
async fn session(stream: TcpStream, mailbox: &Mailbox) -> std::io::Result<()> {
    // Replies are small and each waits for the next command: Nagle's algorithm would hold them
    // for the client's delayed acknowledgement (40 ms a message).
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 vigie mail sink ready\r\n").await?;
    let (mut from, mut to): (Option<String>, Vec<String>) = (None, Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(IDLE, lines.read_line(&mut line)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
        if n == 0 {
            return Ok(());
        }
        let cmd = line.trim_end();
        let verb = cmd.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-vigie mail sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 vigie mail sink\r\n",
            "MAIL" => {
                from = Some(address(cmd));
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" if from.is_some() => {
                to.push(address(cmd));
                b"250 OK\r\n"
            }
            "RCPT" => b"503 MAIL first\r\n",
            "DATA" if to.is_empty() => b"503 RCPT first\r\n",
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                match data(&mut lines).await? {
                    Some(data) => {
                        let at = chrono::Utc::now();
                        mailbox.push(Received { at, from: from.take().unwrap_or_default(), to: std::mem::take(&mut to), data });
                        b"250 OK queued\r\n"
                    }
                    None => b"552 message too large\r\n",
                }
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The address of `MAIL FROM:<a>` or `RCPT TO:<a>` (parameters after it ignored).
fn address(cmd: &str) -> String {
    let after = cmd.split_once(':').map(|(_, a)| a.trim()).unwrap_or_default();
    match (after.find('<'), after.find('>')) {
        (Some(a), Some(b)) if a < b => after[a + 1..b].to_owned(),
        _ => after.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

/// Reads DATA up to the lone dot, undoing dot-stuffing; `None` when it was too large (read to
/// its end all the same, so the session stays in step).
async fn data<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut R) -> std::io::Result<Option<String>> {
    let (mut out, mut line, mut too_big) = (String::new(), String::new(), false);
    loop {
        line.clear();
        let n = tokio::time::timeout(IDLE, lines.read_line(&mut line)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l == "." {
            return Ok((!too_big).then_some(out));
        }
        if too_big {
            continue;
        }
        out.push_str(l.strip_prefix('.').unwrap_or(l));
        out.push_str("\r\n");
        too_big = out.len() > MAX_MESSAGE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_keeps_its_number_while_older_ones_are_let_go() {
        let mailbox = Mailbox::default();
        let m = |n: usize| Received { at: chrono::Utc::now(), from: format!("s{n}"), to: Vec::new(), data: String::new() };
        for n in 1..=KEPT + 2 {
            mailbox.push(m(n));
        }
        let numbered = mailbox.numbered();
        assert_eq!(numbered.len(), KEPT);
        assert_eq!((numbered[0].0, numbered[0].1.from.as_str()), (3, "s3"));
        assert_eq!(mailbox.message(KEPT as u64 + 2).map(|r| r.from), Some(format!("s{}", KEPT + 2)));
        assert!(mailbox.message(2).is_none() && mailbox.message(0).is_none() && mailbox.message(KEPT as u64 + 3).is_none());
    }

    #[tokio::test]
    async fn a_message_sent_with_lettre_is_kept_with_its_envelope_and_headers() {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (mailbox, stop) = (Mailbox::default(), CancellationToken::new());
        tokio::spawn(serve(listener, mailbox.clone(), stop.clone()));
        let mut seen = mailbox.watch();
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(port).build();
        let body = "line one\r\n.starts with a dot\r\n";
        let m = Message::builder()
            .from("vigie@example.org".parse().expect("from"))
            .to("manager@example.org".parse().expect("to"))
            .subject("Security review")
            .body(body.to_owned())
            .expect("message");
        smtp.send(m).await.expect("sent");
        seen.wait_for(|n| *n == 1).await.expect("received");
        let got = mailbox.messages().pop().expect("one message");
        assert_eq!(got.from, "vigie@example.org");
        assert_eq!(got.to, vec!["manager@example.org".to_owned()]);
        assert_eq!(got.header("subject").as_deref(), Some("Security review"));
        assert!(got.data.contains("\r\n.starts with a dot\r\n"), "dot-stuffing undone: {}", got.data);
        stop.cancel();
    }
}
