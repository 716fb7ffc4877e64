//! The platform catalogue and vetting.
use crate::{TestServer, interaction};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn the_catalogue_lists_the_expected_platforms_and_vetting_changes_policy_decisions() {
    let s = TestServer::start().await;
    let (status, list) = s.get("/api/v1/platforms", &s.admin).await;
    assert_eq!(status, StatusCode::OK);
    let items = list["items"].as_array().expect("items");
    for id in [
        "chatgpt",
        "claude",
        "gemini",
        "copilot",
        "deepseek",
        "perplexity",
        "mistral",
        "poe",
        "huggingchat",
        "grok",
        "mammouth",
        "typingmind",
        "openrouter",
        "windsurf",
        "cursor",
    ] {
        let p = items.iter().find(|p| p["id"] == id).unwrap_or_else(|| panic!("{id} missing"));
        assert!(!p["hosts"].as_array().expect("hosts").is_empty(), "{id} has no hosts");
    }
    s.policy("Coach on unvetted", 10, "coach", json!([{"field": "platform_vetted", "operator": "eq", "value": false}])).await;
    let (_, r) = s.interaction(&s.admin, interaction("mistral")).await;
    assert_eq!((r["decision"]["action"].as_str(), r["platform_vetted"].as_bool()), (Some("coach"), Some(false)));
    // An unknown platform is accepted, as unvetted.
    let (status, r) = s.interaction(&s.admin, interaction("brand-new-ai")).await;
    assert_eq!((status, r["decision"]["action"].as_str()), (StatusCode::CREATED, Some("coach")));

    let viewer = s.api_token("viewer").await;
    let (status, _) = s.call("PATCH", "/api/v1/platforms/mistral", Some(&viewer), Some(json!({"vetted": true}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, p) = s.call("PATCH", "/api/v1/platforms/mistral", Some(&s.admin), Some(json!({"vetted": true}))).await;
    assert_eq!((status, p["vetted"].as_bool()), (StatusCode::OK, Some(true)));
    let (_, r) = s.interaction(&s.admin, interaction("mistral")).await;
    assert_eq!((r["decision"]["action"].as_str(), r["platform_vetted"].as_bool()), (Some("log"), Some(true)));

    let (status, _) = s
        .post(
            "/api/v1/platforms",
            &s.admin,
            json!({"id": "internal-llm", "name": "Internal LLM", "hosts": ["llm.acme.test"], "vetted": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, r) = s.interaction(&s.admin, interaction("internal-llm")).await;
    assert_eq!(r["decision"]["action"], "log");
    let (status, _) = s.post("/api/v1/platforms", &s.admin, json!({"id": "claude", "name": "dup"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}
