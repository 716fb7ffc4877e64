//! A mail sink: a small SMTP server on a local address that accepts every message and keeps the
//! most recent ones in memory, for `vigie demo` (the managers' e-mails land somewhere one can
//! look) and the response benchmark (when each message arrived). Not a mail server: no relay, no
//! authentication, no TLS; it listens where it is told, which is loopback in every caller.
//!
//! [`Mailbox::persistent`] also appends each message to a file (one JSON object a line) and
//! reads it back at start, so a resumed `vigie demo` still shows what earlier runs caught, with
//! the same numbers; the file is rewritten with only the kept messages when it grows to twice
//! that.
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The most messages kept (the oldest go first).
pub const KEPT: usize = 1_000;
/// The largest message taken (bytes); a bigger one is refused with 552.
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// The most bytes of messages kept in all (the oldest go first): [`KEPT`] messages of
/// [`MAX_MESSAGE`] would otherwise be 10 GiB.
pub const KEPT_BYTES: usize = 64 * 1024 * 1024;
/// The longest line taken (a command, or a line of DATA); a longer one ends the session with
/// 500.
pub const MAX_LINE: usize = 1024 * 1024;
/// How long a client may stay silent.
const IDLE: Duration = Duration::from_secs(60);

/// A message the sink received.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// The messages kept, their total size, and how many older ones were let go (so each keeps
/// its number).
#[derive(Debug, Default)]
struct Kept {
    messages: VecDeque<Received>,
    bytes: usize,
    dropped: u64,
    file: Option<Persisted>,
}

/// The file a persistent mailbox appends to, and what it holds beyond the kept messages.
#[derive(Debug)]
struct Persisted {
    path: PathBuf,
    file: std::fs::File,
    /// Lines and bytes in the file (it is rewritten when they pass twice the caps).
    lines: usize,
    bytes: usize,
}

/// One line of the file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    no: u64,
    #[serde(flatten)]
    message: Received,
}

/// Opens `path` for appending, readable by its owner only (it holds e-mails).
fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

impl Default for Mailbox {
    fn default() -> Mailbox {
        Mailbox { kept: Arc::new(Mutex::new(Kept::default())), count: Arc::new(tokio::sync::watch::channel(0).0) }
    }
}

impl Mailbox {
    /// A mailbox kept in `path` as well: the messages an earlier process kept there are read
    /// back (a line that cannot be read is skipped and logged), and each new one is appended.
    pub fn persistent(path: &Path) -> std::io::Result<Mailbox> {
        let mut kept = Kept::default();
        let (mut lines, mut bytes) = (0usize, 0usize);
        match std::fs::read_to_string(path) {
            Ok(text) => {
                for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    lines += 1;
                    bytes += l.len() + 1;
                    match serde_json::from_str::<Line>(l) {
                        Ok(Line { no, message }) if no > kept.dropped + kept.messages.len() as u64 => {
                            // Numbers only grow; a gap (lines lost) keeps the later numbers.
                            kept.dropped = no - 1 - kept.messages.len() as u64;
                            kept.bytes += message.data.len();
                            kept.messages.push_back(message);
                            kept.trim();
                        }
                        Ok(_) => {
                            tracing::warn!(line = i + 1, path = %path.display(), "mailbox file: a message number out of order, skipped")
                        }
                        Err(e) => {
                            tracing::warn!(line = i + 1, path = %path.display(), error = %e, "mailbox file: an unreadable line, skipped")
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(path)?;
        kept.file = Some(Persisted { path: path.to_path_buf(), file, lines, bytes });
        let received = kept.dropped + kept.messages.len() as u64;
        Ok(Mailbox { kept: Arc::new(Mutex::new(kept)), count: Arc::new(tokio::sync::watch::channel(received).0) })
    }

    /// The messages kept, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        self.kept.lock().map(|k| k.messages.iter().cloned().collect()).unwrap_or_default()
    }

    /// The messages kept with their numbers (the first message received is 1; a number stays
    /// with its message while it is kept), oldest first.
    pub fn numbered(&self) -> Vec<(u64, Received)> {
        self.kept.lock().map(|k| (k.dropped + 1..).zip(k.messages.iter().cloned()).collect()).unwrap_or_default()
    }

    /// How many messages are kept, and the newest `n` of them with their numbers, newest
    /// first (only those are copied).
    pub fn newest(&self, n: usize) -> (usize, Vec<(u64, Received)>) {
        self.kept
            .lock()
            .map(|k| {
                let first = k.dropped + 1;
                let newest = k.messages.iter().enumerate().rev().take(n).map(|(i, m)| (first + i as u64, m.clone())).collect();
                (k.messages.len(), newest)
            })
            .unwrap_or_default()
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
            let no = k.dropped + k.messages.len() as u64 + 1;
            if k.file.is_some() {
                let line = Line { no, message: m.clone() };
                if let Err(e) = k.append(&line) {
                    tracing::warn!(error = %e, "the mail sink could not write a message to its file; it is kept in memory only");
                }
            }
            k.bytes += m.data.len();
            k.messages.push_back(m);
            k.trim();
        }
        self.count.send_modify(|n| *n += 1);
    }
}

impl Kept {
    /// Lets the oldest messages go while over [`KEPT`] or [`KEPT_BYTES`].
    fn trim(&mut self) {
        while self.messages.len() > KEPT || (self.bytes > KEPT_BYTES && self.messages.len() > 1) {
            let Some(old) = self.messages.pop_front() else { break };
            self.bytes -= old.data.len();
            self.dropped += 1;
        }
    }

    /// Appends `line` to the file, first rewriting the file with the kept messages alone when it
    /// has grown to twice the caps.
    fn append(&mut self, line: &Line) -> std::io::Result<()> {
        let text = serde_json::to_string(line).map_err(std::io::Error::other)? + "\n";
        let first = self.dropped + 1;
        let kept: Vec<String> = match &self.file {
            Some(f) if f.lines >= 2 * KEPT || f.bytes >= 2 * KEPT_BYTES => {
                let mut out = Vec::with_capacity(self.messages.len());
                for (i, m) in self.messages.iter().enumerate() {
                    let l = Line { no: first + i as u64, message: m.clone() };
                    out.push(serde_json::to_string(&l).map_err(std::io::Error::other)? + "\n");
                }
                out
            }
            _ => Vec::new(),
        };
        let Some(f) = self.file.as_mut() else { return Ok(()) };
        if !kept.is_empty() {
            let tmp = f.path.with_extension("tmp");
            let _ = std::fs::remove_file(&tmp);
            let mut w = std::io::BufWriter::new(open_append(&tmp)?);
            for l in &kept {
                w.write_all(l.as_bytes())?;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, &f.path)?;
            f.file = open_append(&f.path)?;
            f.lines = kept.len();
            f.bytes = kept.iter().map(String::len).sum();
        }
        f.file.write_all(text.as_bytes())?;
        f.lines += 1;
        f.bytes += text.len();
        Ok(())
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
        let Some(n) = read_line(&mut lines, &mut line).await? else {
            write.write_all(b"500 line too long\r\n").await?;
            return Ok(());
        };
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
                    Data::Message(data) => {
                        let at = chrono::Utc::now();
                        mailbox.push(Received { at, from: from.take().unwrap_or_default(), to: std::mem::take(&mut to), data });
                        b"250 OK queued\r\n"
                    }
                    Data::TooLarge => b"552 message too large\r\n",
                    Data::LineTooLong => {
                        write.write_all(b"500 line too long\r\n").await?;
                        return Ok(());
                    }
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

/// Reads one line (up to and with its `\n`) into `line`, within [`IDLE`]; bytes that are not
/// UTF-8 (8BITMIME allows them) are replaced. The number of bytes read (0 at the end of the
/// stream), or `None` when the line is longer than [`MAX_LINE`].
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, line: &mut String) -> std::io::Result<Option<usize>> {
    line.clear();
    let mut bytes = Vec::new();
    let read = async {
        loop {
            let buf = r.fill_buf().await?;
            if buf.is_empty() {
                return Ok::<_, std::io::Error>(true);
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = MAX_LINE.saturating_sub(bytes.len());
            bytes.extend_from_slice(&buf[..take.min(room)]);
            r.consume(take);
            if take > room {
                return Ok(false);
            }
            if done {
                return Ok(true);
            }
        }
    };
    let fits = tokio::time::timeout(IDLE, read).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    if !fits {
        return Ok(None);
    }
    line.push_str(&String::from_utf8_lossy(&bytes));
    Ok(Some(bytes.len()))
}

/// What DATA brought.
enum Data {
    /// The message.
    Message(String),
    /// Over [`MAX_MESSAGE`] (read to its end all the same, so the session stays in step).
    TooLarge,
    /// A line over [`MAX_LINE`]: the session ends.
    LineTooLong,
}

/// Reads DATA up to the lone dot, undoing dot-stuffing.
async fn data<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut R) -> std::io::Result<Data> {
    let (mut out, mut line, mut too_big) = (String::new(), String::new(), false);
    loop {
        let Some(n) = read_line(lines, &mut line).await? else { return Ok(Data::LineTooLong) };
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l == "." {
            return Ok(if too_big { Data::TooLarge } else { Data::Message(out) });
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

    fn msg(n: usize, data: &str) -> Received {
        Received { at: chrono::Utc::now(), from: format!("s{n}"), to: vec![format!("r{n}@example.org")], data: data.to_owned() }
    }

    #[test]
    fn a_persistent_mailbox_reads_back_what_an_earlier_one_kept_with_the_same_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mail").join("mailbox.ndjson");
        let first = Mailbox::persistent(&path).expect("open");
        for n in 1..=3 {
            first.push(msg(n, &format!("Subject: m{n}\r\n\r\nbody {n}\r\n")));
        }
        drop(first);
        let again = Mailbox::persistent(&path).expect("reopen");
        assert_eq!(*again.watch().borrow(), 3, "the count goes on from the earlier messages");
        let numbered = again.numbered();
        assert_eq!(numbered.iter().map(|(no, m)| (*no, m.from.as_str())).collect::<Vec<_>>(), [(1, "s1"), (2, "s2"), (3, "s3")]);
        assert_eq!(
            again.message(2).map(|m| (m.to.clone(), m.header("subject"))),
            Some((vec!["r2@example.org".to_owned()], Some("m2".to_owned())))
        );
        again.push(msg(4, "x"));
        // A damaged line is skipped; the others are read.
        std::fs::OpenOptions::new().append(true).open(&path).and_then(|mut f| f.write_all(b"{not json\n")).expect("damage");
        let third = Mailbox::persistent(&path).expect("reopen");
        assert_eq!(third.newest(10).1.iter().map(|(no, _)| *no).collect::<Vec<_>>(), [4, 3, 2, 1]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn the_file_is_rewritten_with_the_kept_messages_when_it_doubles() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mailbox.ndjson");
        let mailbox = Mailbox::persistent(&path).expect("open");
        for n in 1..=2 * KEPT + 5 {
            mailbox.push(msg(n, "y"));
        }
        let lines = std::fs::read_to_string(&path).expect("read").lines().count();
        assert!(lines <= KEPT + 6, "{lines} lines: the file was not compacted");
        drop(mailbox);
        let again = Mailbox::persistent(&path).expect("reopen");
        let (total, newest) = again.newest(1);
        assert_eq!((total, newest[0].0, newest[0].1.from.as_str()), (KEPT, 2 * KEPT as u64 + 5, format!("s{}", 2 * KEPT + 5).as_str()));
    }

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

    #[test]
    fn the_oldest_messages_go_once_the_kept_bytes_pass_the_cap_and_the_newest_are_listed_first() {
        let mailbox = Mailbox::default();
        let big = "x".repeat(KEPT_BYTES / 4 + 1);
        for n in 1..=5 {
            mailbox.push(Received { at: chrono::Utc::now(), from: format!("s{n}"), to: Vec::new(), data: big.clone() });
        }
        let (total, newest) = mailbox.newest(2);
        assert_eq!(total, 3, "four of these pass the cap: the two oldest went");
        assert_eq!(newest.iter().map(|(no, m)| (*no, m.from.as_str())).collect::<Vec<_>>(), [(5, "s5"), (4, "s4")]);
        assert!(mailbox.message(2).is_none() && mailbox.message(3).is_some());
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_ends_the_session_with_500_and_non_utf8_data_is_kept() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (mailbox, stop) = (Mailbox::default(), CancellationToken::new());
        tokio::spawn(serve(listener, mailbox.clone(), stop.clone()));
        // 8-bit data (Latin-1 é), then a line over the limit.
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut seen = mailbox.watch();
        s.write_all(b"EHLO t\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: caf\xe9\r\n\r\nbody\r\n.\r\n").await.expect("write");
        seen.wait_for(|n| *n == 1).await.expect("received");
        assert!(mailbox.messages()[0].data.starts_with("Subject: caf\u{fffd}\r\n"), "{:?}", mailbox.messages()[0].data);
        let long = vec![b'a'; MAX_LINE + 10];
        s.write_all(&long).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut answer)).await.expect("the sink closes").expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.ends_with("500 line too long\r\n"), "{answer}");
        stop.cancel();
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
