//! Issue 5, reliability: the XDR killed with SIGKILL during a sustained batch load from several
//! senders, then started again on the same data and address, has stored every event it
//! acknowledged — each once. A batch whose answer never came is all there or not there at all,
//! and a sender that retries it after the restart gets it acknowledged without a duplicate.
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

mod support;
use support::Xdr;

/// Concurrent senders.
const SENDERS: usize = 6;
/// Events per batch (one `POST /api/v1/events`).
const BATCH: usize = 50;
/// The XDR is killed once this many events were acknowledged; `VIGIE_TEST_CRASH_ACKS`
/// raises it for the large run recorded in BENCHMARKS.md.
fn kill_after_acks() -> usize {
    std::env::var("VIGIE_TEST_CRASH_ACKS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}
/// A guard: no sender sends more than this many batches.
const MAX_BATCHES_PER_SENDER: usize = 400;

/// What came of the load, shared by the senders.
#[derive(Default)]
struct Load {
    /// The ids of every event of every batch answered 200, as answered.
    acked: Mutex<Vec<String>>,
    /// Batches sent whose answer never came (the connection died with the process).
    unanswered: Mutex<Vec<Vec<String>>>,
    /// Any answer other than 200 with the ids sent.
    refused: Mutex<Vec<String>>,
    /// Set by the test once the XDR is killed: from then on a failed request is expected.
    killed: AtomicBool,
    reached_kill_point: Notify,
}

/// The ids of sender `s`'s batch `b`.
fn batch_ids(s: usize, b: usize) -> Vec<String> {
    (0..BATCH).map(|i| format!("s{s}-{}", b * BATCH + i)).collect()
}

fn batch_body(s: usize, b: usize, ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .map(
                |id| json!({"id": id, "type": "load.test", "sender": s, "batch": b, "message": format!("load event {id} from sender {s}")}),
            )
            .collect(),
    )
}

/// One POST of a batch: `Ok(ids answered)` for a 200, `Err(None)` when no answer came, `Err(Some)`
/// for any other answer.
async fn post_batch(http: &reqwest::Client, base: &str, key: &str, body: &Value) -> Result<Vec<String>, Option<String>> {
    let r = http.post(format!("{base}/api/v1/events")).bearer_auth(key).json(body).send().await.map_err(|_| None)?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|_| None)?;
    if status != reqwest::StatusCode::OK {
        return Err(Some(format!("{status} {v}")));
    }
    let ids = v["event_ids"].as_array().ok_or_else(|| Some(format!("no event_ids: {v}")))?;
    Ok(ids.iter().map(|i| i.as_str().unwrap_or_default().to_owned()).collect())
}

/// Sends batches until the connection fails (the XDR was killed).
async fn sender(load: Arc<Load>, http: reqwest::Client, base: String, key: String, s: usize) {
    for b in 0..MAX_BATCHES_PER_SENDER {
        let ids = batch_ids(s, b);
        match post_batch(&http, &base, &key, &batch_body(s, b, &ids)).await {
            Ok(answered) if answered == ids => {
                let n = {
                    let mut acked = load.acked.lock().expect("lock");
                    acked.extend(answered);
                    acked.len()
                };
                if n >= kill_after_acks() {
                    load.reached_kill_point.notify_one();
                }
            }
            Ok(answered) => {
                load.refused.lock().expect("lock").push(format!("sender {s} batch {b}: answered other ids {answered:?}"));
                return;
            }
            Err(Some(answer)) => {
                load.refused.lock().expect("lock").push(format!("sender {s} batch {b}: {answer}"));
                return;
            }
            Err(None) => {
                if !load.killed.load(Ordering::SeqCst) {
                    load.refused.lock().expect("lock").push(format!("sender {s} batch {b}: no answer before the kill"));
                }
                load.unanswered.lock().expect("lock").push(ids);
                return;
            }
        }
    }
}

/// Every acknowledged id answers 200 on `GET /api/v1/events/{id}`, with that id; the ids that
/// do not, with what they got.
async fn missing_over_http(base: &str, key: &str, ids: &[String]) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut readers = JoinSet::new();
    for chunk in ids.chunks(ids.len().div_ceil(8).max(1)) {
        let (http, base, key, chunk) = (http.clone(), base.to_owned(), key.to_owned(), chunk.to_vec());
        readers.spawn(async move {
            let mut missing = Vec::new();
            for id in chunk {
                let r = http.get(format!("{base}/api/v1/events/{id}")).bearer_auth(&key).send().await.expect("GET an event");
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if status != reqwest::StatusCode::OK || v["id"] != id.as_str() {
                    missing.push(format!("{id}: {status} {v}"));
                }
            }
            missing
        });
    }
    let mut missing = Vec::new();
    while let Some(r) = readers.join_next().await {
        missing.extend(r.expect("a reader panicked"));
    }
    missing
}

/// The ids stored in `xdr.db`, read through a read-only connection while the server runs, and
/// whether any id is stored twice.
fn stored_ids(data: &Path) -> (HashSet<String>, i64, bool) {
    let db = rusqlite::Connection::open_with_flags(data.join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open xdr.db");
    let mut stmt = db.prepare("SELECT id FROM events").expect("select");
    let ids: HashSet<String> = stmt.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("ids");
    let rows: i64 = db.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).expect("count");
    let distinct: bool = db.query_row("SELECT COUNT(*) = COUNT(DISTINCT id) FROM events", [], |r| r.get(0)).expect("distinct");
    (ids, rows, distinct)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_xdr_killed_under_batch_load_keeps_every_acknowledged_event_once() {
    let started = std::time::Instant::now();
    // A failure guard only: every wait below ends as soon as its condition holds.
    let deadline = Instant::now() + Duration::from_secs(30 + (kill_after_acks() / 2000) as u64);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");

    let mut first = Xdr::start(&data, "127.0.0.1:0", dir.path().join("first.log"), deadline).await;
    let key = support::create_key(&data, "default", "events_write,events_read");

    // The load, killed mid-way.
    let load = Arc::new(Load::default());
    let http = reqwest::Client::new();
    let mut senders = JoinSet::new();
    for s in 0..SENDERS {
        senders.spawn(sender(load.clone(), http.clone(), first.base.clone(), key.clone(), s));
    }
    let reached = timeout_at(deadline, load.reached_kill_point.notified()).await;
    load.killed.store(true, Ordering::SeqCst);
    first.kill();
    let refused = load.refused.lock().expect("lock").clone();
    assert!(reached.is_ok(), "{} events not acknowledged in time; refused: {refused:?}\n{}", kill_after_acks(), first.log_text());
    let acked_at_kill = load.acked.lock().expect("lock").len();
    while let Some(r) = senders.join_next().await {
        r.expect("a sender panicked");
    }
    let refused = load.refused.lock().expect("lock").clone();
    assert!(refused.is_empty(), "batches refused or unanswered before the kill: {refused:?}\n{}", first.log_text());
    let acked: Vec<String> = load.acked.lock().expect("lock").clone();
    let unanswered: Vec<Vec<String>> = load.unanswered.lock().expect("lock").clone();
    let acked_set: HashSet<&str> = acked.iter().map(String::as_str).collect();
    assert_eq!(acked_set.len(), acked.len(), "an event id was acknowledged twice");
    assert!(acked.len() >= kill_after_acks());
    assert!(!unanswered.is_empty(), "the kill did not land mid-load: no batch was in flight");

    // The same command on the same data and address.
    let addr = first.addr();
    let first_log = first.log_text();
    drop(first);
    let second = Xdr::start(&data, &addr, dir.path().join("second.log"), deadline).await;

    // Every acknowledged event is there, through the API and in the database, each once.
    let missing = missing_over_http(&second.base, &key, &acked).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing after the restart, e.g. {:?}\n--- first run ---\n{first_log}\n--- second run ---\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)],
        second.log_text()
    );
    let (stored, rows, distinct) = stored_ids(&data);
    assert!(distinct, "an event id is stored twice ({rows} rows, {} distinct ids)", stored.len());
    let not_stored: Vec<&&str> = acked_set.iter().filter(|id| !stored.contains(**id)).take(5).collect();
    assert!(not_stored.is_empty(), "acknowledged but not in xdr.db: {not_stored:?}");
    // A batch whose answer never came was committed whole or not at all, and nothing else is
    // stored: what is there beyond the acknowledged events is whole unanswered batches.
    let mut committed_unanswered = 0;
    for batch in &unanswered {
        let present = batch.iter().filter(|id| stored.contains(*id)).count();
        assert!(present == 0 || present == BATCH, "an unanswered batch is stored in part: {present} of {BATCH}, from {}", batch[0]);
        committed_unanswered += usize::from(present == BATCH);
    }
    assert_eq!(stored.len(), acked.len() + committed_unanswered * BATCH, "events stored that no sender sent");

    // The senders retry what went unanswered, and one batch that was answered: every retry is
    // acknowledged with the ids sent, and nothing is stored twice.
    let http = reqwest::Client::new();
    let mut retries: Vec<Vec<String>> = unanswered.clone();
    retries.push(acked[..BATCH].to_vec());
    for ids in &retries {
        let (s, b) = ids[0]
            .trim_start_matches('s')
            .split_once('-')
            .map(|(s, n)| (s.parse::<usize>().expect("s"), n.parse::<usize>().expect("n") / BATCH))
            .expect("an id");
        assert_eq!(&batch_ids(s, b), ids);
        let answered = post_batch(&http, &second.base, &key, &batch_body(s, b, ids)).await;
        assert_eq!(answered.as_ref(), Ok(ids), "a retried batch after the restart");
    }
    let (after_retries, rows_after, distinct_after) = stored_ids(&data);
    assert!(distinct_after, "an event id is stored twice after the retries ({rows_after} rows)");
    assert_eq!(after_retries.len(), acked.len() + unanswered.len() * BATCH, "every event sent is stored once after the retries");

    eprintln!(
        "senders {SENDERS}, batches of {BATCH}: killed at {acked_at_kill} acknowledged events; acknowledged {} ({} batches); \
         unanswered batches {} ({committed_unanswered} of them committed before the kill); stored after restart {} \
         (all {} acknowledged found by GET); after retrying {} batches: {} stored, no duplicates; {:.1} s",
        acked.len(),
        acked.len() / BATCH,
        unanswered.len(),
        stored.len(),
        acked.len(),
        retries.len(),
        after_retries.len(),
        started.elapsed().as_secs_f64()
    );
    drop(second);
}
