//! Issue 7, reliability: the XDR killed with SIGKILL while detection works through a load —
//! correlation windows half full — then started again on the same data. Detection resumes from
//! its checkpoint with the windows it saved in the same transactions: every person who sent six
//! high-risk events within the hour gets exactly one alert carrying exactly those six events
//! (nothing missed, nothing counted twice).
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::time::Instant;

mod support;
use support::Xdr;

/// People who each send six high-risk events within the hour (below the rate limit of 30 new
/// alerts in 30 s).
const PEOPLE: usize = 25;
/// Other events between each round of the people's events.
const FILLER: usize = 300;
/// Events per POST.
const BATCH: usize = 50;

/// The load in the order it is sent: round k of every person's events, then filler.
fn load() -> Vec<Value> {
    let base = chrono::Utc::now() - chrono::Duration::minutes(90);
    let mut out = Vec::new();
    for k in 0..6 {
        for p in 0..PEOPLE {
            let at = base + chrono::Duration::minutes(k as i64 * 10) + chrono::Duration::seconds(p as i64);
            out.push(json!({
                "id": format!("hr-{p}-{k}"), "type": "interaction.high_risk", "timestamp": at.to_rfc3339(), "source": "noxys",
                "data": {"interaction": {"id": format!("i-{p}-{k}"), "user_id": format!("person-{p}"), "platform_id": "chatgpt",
                    "risk_score": 0.85, "classification_count": 1, "classifications": [{"type": "EMAIL_ADDRESS"}]}}
            }));
        }
        for f in 0..FILLER {
            out.push(
                json!({"id": format!("fill-{k}-{f}"), "type": "proxy.log", "message": format!("GET /{f}"), "timestamp": base.to_rfc3339()}),
            );
        }
    }
    out
}

fn db(data: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(data.join("xdr.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open xdr.db")
}

fn checkpoint(data: &std::path::Path) -> i64 {
    db(data)
        .query_row("SELECT COALESCE((SELECT seq FROM consumer_checkpoints WHERE name = 'detection'), 0)", [], |r| r.get(0))
        .expect("checkpoint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn detection_killed_mid_load_resumes_from_its_checkpoint_and_windows_without_missing_or_double_counting() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut first = Xdr::start(&data, "127.0.0.1:0", dir.path().join("first.log"), deadline).await;
    let key = support::create_key(&data, "default", "events_write,alerts_read,rules_read,rules_write");
    let http = reqwest::Client::new();

    // Default rule 2 (six high-risk events in an hour) is installed disabled: enable it.
    let rules: Value = http
        .get(format!("{}/api/v1/rules?limit=100", first.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("rules")
        .json()
        .await
        .expect("json");
    let rule = rules["items"].as_array().expect("items").iter().find(|r| r["builtin"] == "default-2").expect("default rule 2")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = http.put(format!("{}/api/v1/rules/{rule}/enabled", first.base)).bearer_auth(&key).send().await.expect("enable");
    assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());

    // Half the load; once detection has saved windows, one more batch and SIGKILL as soon as it
    // is acknowledged, while detection is reading it.
    let events = load();
    let batches: Vec<&[Value]> = events.chunks(BATCH).collect();
    let half = batches.len() / 2;
    for b in &batches[..half] {
        let r = http.post(format!("{}/api/v1/events", first.base)).bearer_auth(&key).json(b).send().await.expect("post");
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }
    while checkpoint(&data) == 0 {
        assert!(Instant::now() < deadline, "detection never started: {}", first.log_text());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = http.post(format!("{}/api/v1/events", first.base)).bearer_auth(&key).json(&batches[half]).send().await.expect("post");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    first.kill();
    let (at_kill, windows_at_kill): (i64, i64) = {
        let c = db(&data);
        (checkpoint(&data), c.query_row("SELECT COUNT(*) FROM rule_windows", [], |r| r.get(0)).expect("windows"))
    };
    assert!(windows_at_kill > 0, "the kill found no window saved: nothing to resume");
    let addr = first.addr();
    drop(first);

    // The same command on the same data; the rest of the load (the first half again too: intake
    // is idempotent on event ids, so a sender unsure of its last batch may resend).
    let second = Xdr::start(&data, &addr, dir.path().join("second.log"), deadline).await;
    for b in &batches {
        let r = http.post(format!("{}/api/v1/events", second.base)).bearer_auth(&key).json(b).send().await.expect("post");
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }
    let last: i64 = db(&data).query_row("SELECT MAX(seq) FROM events", [], |r| r.get(0)).expect("max seq");
    assert_eq!(db(&data).query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0)).expect("count"), events.len() as i64);
    while checkpoint(&data) < last {
        assert!(Instant::now() < deadline, "detection did not catch up: {}", second.log_text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // One alert per person, each with exactly that person's six events.
    let page: Value = http
        .get(format!("{}/api/v1/alerts?rule_id={rule}&limit=100", second.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("alerts")
        .json()
        .await
        .expect("json");
    let alerts = page["items"].as_array().expect("items");
    let people: BTreeSet<&str> = alerts.iter().filter_map(|a| a["user_id"].as_str()).collect();
    assert_eq!((alerts.len(), people.len()), (PEOPLE, PEOPLE), "one alert per person: {page}\n{}", second.log_text());
    for a in alerts {
        let full: Value = http
            .get(format!("{}/api/v1/alerts/{}", second.base, a["id"].as_str().expect("id")))
            .bearer_auth(&key)
            .send()
            .await
            .expect("alert")
            .json()
            .await
            .expect("json");
        let user = a["user_id"].as_str().expect("user");
        let p = user.trim_start_matches("person-");
        let ids: BTreeSet<String> =
            full["event_ids"].as_array().expect("event ids").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        let want: BTreeSet<String> = (0..6).map(|k| format!("hr-{p}-{k}")).collect();
        assert_eq!(ids, want, "{user}'s alert");
        assert_eq!(a["occurrences"].as_u64(), Some(1), "{user}: no repeat");
    }
    eprintln!(
        "{} events; killed with detection at seq {at_kill} of {} sent before the kill, {windows_at_kill} windows saved; {PEOPLE} alerts after the restart",
        events.len(),
        (half + 1) * BATCH
    );
}
