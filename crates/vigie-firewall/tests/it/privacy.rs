//! No raw sensitive value or prompt text reaches any file of the data directory.
use crate::TestServer;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;

fn files_containing(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read file");
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                found.push(format!("{} contains {n:?}", path.display()));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_posted_card_number_appears_in_no_file_of_the_data_dir() {
    let s = TestServer::start().await;
    s.policy("Block cards", 10, "block", json!([{"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}])).await;
    let (status, r) = s
        .interaction(
            &s.admin,
            json!({
                "platform_id": "chatgpt", "risk_score": 0.96,
                "classifications": [
                    {"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.99, "start": 8, "end": 24},
                    {"type": "CREDIT_CARD", "value": "5500-0055-5555-5559", "score": 0.99},
                    {"type": "EMAIL", "value": "jeanne.secret@acme.fr"},
                    {"type": "EMAIL", "value": "jean@acme.fr 4111111111111111"},
                    {"type": "EMAIL", "value": "jean@4000056655665556.com"},
                    {"type": "EMAIL", "value": "jean@4012.8888.8888.1881.com"}
                ],
                "content_metadata": {
                    "url": "https://chatgpt.com/c/1?q=4532015112830366", "text": "my card 4532015112830366 please summarise", "model": "gpt-4o",
                    "title": "my payslip for march", "context": {"text": "nested secret phrase"}, "app": "card 4242 4242 4242 4242", "hostname": "5105.1051.0510.5100", "conversation_id": 6011111111111117_u64
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["classifications"][0]["value"], "****0366");
    let needles = [
        "4532015112830366",
        "453201511283",
        "5500-0055-5555-5559",
        "5500005555555559",
        "4111111111111111",
        "4000056655665556",
        "4242 4242 4242 4242",
        "4012.8888.8888.1881",
        "5105.1051.0510.5100",
        "6011111111111117",
        "jeanne.secret",
        "my card",
        "summarise",
        "payslip",
        "nested secret",
    ];
    assert_eq!(files_containing(s.dir.path(), &needles), Vec::<String>::new(), "while running (WAL included)");
    let dir = s.stop().await;
    assert_eq!(files_containing(dir.path(), &needles), Vec::<String>::new(), "after shutdown");
    let db = rusqlite::Connection::open(dir.path().join("firewall.db")).expect("open");
    let n: i64 = db.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0)).expect("count");
    assert_eq!(n, 5, "the policy, the interaction and its events were stored, masked");
}

#[tokio::test]
async fn a_scanned_text_appears_in_no_file_of_the_data_dir() {
    let s = TestServer::start().await;
    s.policy("Coach cards", 10, "coach", json!([{"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}])).await;
    let text = "Bonjour, ma carte 4532 0151 1283 0366 expire bientôt; écrivez à alice.martin@acme.fr — zebra quokka lantern";
    let (status, r) = s.interaction(&s.admin, json!({"platform_id": "mistral", "text": text, "risk_score": 0.2})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let (status, r) =
        s.interaction(&s.admin, json!({"platform_id": "mistral", "content_metadata": {"text": text, "model": "large"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    for record in [true, false] {
        let (status, r) = s.post("/api/v1/scan", &s.admin, json!({"text": text, "platform_id": "mistral", "record": record})).await;
        assert_eq!(status, StatusCode::OK, "{r}");
    }
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 3);
    let needles = ["4532 0151 1283 0366", "4532015112830366", "alice.martin", "zebra quokka", "Bonjour", "bientôt"];
    assert_eq!(files_containing(s.dir.path(), &needles), Vec::<String>::new(), "while running (WAL included)");
    let dir = s.stop().await;
    assert_eq!(files_containing(dir.path(), &needles), Vec::<String>::new(), "after shutdown");
}
