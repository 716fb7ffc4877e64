//! Policies through the API: lifecycle, validation, and the evaluation table.
use crate::{HASH, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_policy_is_created_disabled_by_default_then_read_changed_toggled_and_deleted() {
    let s = TestServer::start().await;
    let body = json!({"name": "Block DeepSeek", "rules": {"action": "block", "conditions": [{"field": "platform_id", "operator": "eq", "value": "deepseek"}]}});
    let (status, created) = s.post("/api/v1/policies", &s.admin, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!((created["enabled"].as_bool(), created["priority"].as_i64()), (Some(false), Some(100)));
    let id = created["id"].as_str().expect("id");

    let (status, dup) = s.post("/api/v1/policies", &s.admin, body).await;
    assert_eq!((status, dup["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")));

    let (_, got) = s.get(&format!("/api/v1/policies/{id}"), &s.admin).await;
    assert_eq!(got["name"], "Block DeepSeek");

    let (status, patched) = s
        .call("PATCH", &format!("/api/v1/policies/{id}"), Some(&s.admin), Some(json!({"priority": 5, "rules": {"action": "coach", "conditions": [{"field": "risk_score", "operator": "gte", "value": "0.5"}]}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (patched["priority"].as_i64(), patched["rules"]["action"].as_str(), patched["name"].as_str()),
        (Some(5), Some("coach"), Some("Block DeepSeek"))
    );

    let (status, replaced) = s
        .call(
            "PUT",
            &format!("/api/v1/policies/{id}"),
            Some(&s.admin),
            Some(json!({"name": "Block DeepSeek", "rules": {"action": "block", "conditions": [{"field": "platform_id", "operator": "eq", "value": "deepseek"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (replaced["priority"].as_i64(), replaced["rules"]["action"].as_str()),
        (Some(100), Some("block")),
        "PUT replaces the whole policy"
    );
    let (_, enabled) = s.post(&format!("/api/v1/policies/{id}/enable"), &s.admin, json!({})).await;
    assert_eq!(enabled["enabled"], true);
    let (_, listed) = s.get("/api/v1/policies?enabled=true", &s.admin).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let (_, disabled) = s.post(&format!("/api/v1/policies/{id}/disable"), &s.admin, json!({})).await;
    assert_eq!(disabled["enabled"], false);

    let (status, _) = s.call("DELETE", &format!("/api/v1/policies/{id}"), Some(&s.admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = s.get(&format!("/api/v1/policies/{id}"), &s.admin).await;
    assert_eq!((status, gone["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let kinds: Vec<String> = s
        .db()
        .prepare("SELECT event_type FROM outbox ORDER BY seq")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(kinds, ["policy.created", "policy.updated", "policy.updated", "policy.updated", "policy.updated", "policy.deleted"]);
}

#[tokio::test]
async fn an_invalid_policy_names_each_offending_condition_and_nothing_is_stored() {
    let s = TestServer::start().await;
    let body = json!({"name": "bad", "priority": 2000, "rules": {"action": "block", "conditions": [
        {"field": "platform_id", "operator": "eq", "value": "chatgpt"},
        {"field": "platform_id", "operator": "gt", "value": "chatgpt"},
        {"field": "risk_score", "operator": "gte", "value": "very"}
    ]}});
    let (status, err) = s.post("/api/v1/policies", &s.admin, body).await;
    assert_eq!((status, err["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")));
    let fields: Vec<&str> = err["fields"].as_array().expect("fields").iter().filter_map(|f| f["field"].as_str()).collect();
    assert_eq!(fields, ["priority", "rules.conditions[1].operator", "rules.conditions[2].value"]);
    assert!(err["error"].as_str().unwrap_or_default().contains("rules.conditions[1].operator"), "{err}");
    let (status, err) = s.post("/api/v1/policies", &s.admin, json!({"name": "x", "rules": {"action": "block"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["fields"][0]["field"], "rules");
    assert_eq!(s.count("SELECT count(*) FROM policies"), 0);
    assert_eq!(s.count("SELECT count(*) FROM outbox"), 0);
}

async fn decision(s: &TestServer, body: Value) -> (String, Option<String>) {
    let (status, resp) = s.interaction(&s.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    (resp["decision"]["action"].as_str().expect("action").to_owned(), resp["decision"]["policy_name"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn enabled_policies_run_by_priority_then_creation_and_the_first_match_wins() {
    let s = TestServer::start().await;
    let deepseek = json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}]);
    s.policy("late", 50, "coach", deepseek.clone()).await;
    let tie_first = s.policy("tie created first", 10, "block", deepseek.clone()).await;
    let tie_second = s.policy("tie created second", 10, "log", deepseek.clone()).await;
    s.policy("other platform", 1, "block", json!([{"field": "platform_id", "operator": "eq", "value": "grok"}])).await;

    assert_eq!(decision(&s, interaction("deepseek")).await, ("block".into(), Some("tie created first".into())));
    s.post(&format!("/api/v1/policies/{tie_first}/disable"), &s.admin, json!({})).await;
    assert_eq!(decision(&s, interaction("deepseek")).await, ("log".into(), Some("tie created second".into())));
    s.call("PATCH", &format!("/api/v1/policies/{tie_second}"), Some(&s.admin), Some(json!({"priority": 60}))).await;
    assert_eq!(decision(&s, interaction("deepseek")).await, ("coach".into(), Some("late".into())));
    // No policy matches: only logged, with no policy named.
    assert_eq!(decision(&s, interaction("claude")).await, ("log".into(), None));
    let violated = s.count("SELECT count(*) FROM outbox WHERE event_type = 'interaction.policy_violated'");
    assert_eq!(violated, 3, "a non-match is not a violation");
}

#[tokio::test]
async fn every_operator_and_alias_decides_through_the_api() {
    let s = TestServer::start().await;
    let user = "0190a3c1-0000-7000-8000-000000000010";
    // A card scored 0.5 and an unscored e-mail give a server risk of 0.68 on this unvetted
    // platform, below the client's 0.8, which stands.
    let base = json!({
        "platform_id": "deepseek", "content_hash": HASH, "risk_score": 0.8, "source": "proxy", "direction": "outbound",
        "interaction_type": "prompt", "user_id": user,
        "classifications": [{"type": "email", "value": "a@b.fr"}, {"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.5}]
    });
    let table = [
        (json!({"field": "platform_id", "operator": "eq", "value": "deepseek"}), true),
        (json!({"field": "platform_id", "operator": "ne", "value": "deepseek"}), false),
        (json!({"field": "platform_id", "operator": "neq", "value": "chatgpt"}), true),
        (json!({"field": "platform_id", "operator": "in", "value": ["chatgpt", "deepseek"]}), true),
        (json!({"field": "platform_id", "operator": "nin", "value": ["chatgpt", "deepseek"]}), false),
        (json!({"field": "platform_id", "operator": "not_in", "value": ["chatgpt"]}), true),
        (json!({"field": "platform_vetted", "operator": "eq", "value": false}), true),
        (json!({"field": "risk_score", "operator": "gt", "value": "0.7"}), true),
        (json!({"field": "risk_score", "operator": "gte", "value": 0.8}), true),
        (json!({"field": "risk_score", "operator": "lt", "value": 0.8}), false),
        (json!({"field": "risk_score", "operator": "lte", "value": "0.8"}), true),
        (json!({"field": "risk_score", "operator": "eq", "value": "0.8"}), true),
        (json!({"field": "classification_count", "operator": "eq", "value": "2"}), true),
        (json!({"field": "classification_count", "operator": "gt", "value": 2}), false),
        (json!({"field": "classifications", "operator": "contains", "value": "CREDIT_CARD"}), true),
        (json!({"field": "classifications", "operator": "contains", "value": "iban"}), false),
        (json!({"field": "classifications", "operator": "not_contains", "value": "IBAN"}), true),
        (json!({"field": "classifications", "operator": "not_contains", "value": "EMAIL"}), false),
        (json!({"field": "source", "operator": "eq", "value": "proxy"}), true),
        (json!({"field": "source", "operator": "in", "value": ["api", "browser_extension"]}), false),
        (json!({"field": "direction", "operator": "eq", "value": "inbound"}), false),
        (json!({"field": "user_id", "operator": "eq", "value": user}), true),
        (json!({"field": "user_id", "operator": "ne", "value": user}), false),
        (json!({"field": "interaction_type", "operator": "eq", "value": "prompt"}), true),
    ];
    for (i, (condition, matches)) in table.into_iter().enumerate() {
        let id = s.policy(&format!("case {i}"), 10, "block", json!([condition.clone()])).await;
        let expected = if matches { ("block".to_owned(), Some(format!("case {i}"))) } else { ("log".to_owned(), None) };
        assert_eq!(decision(&s, base.clone()).await, expected, "condition {condition}");
        let (status, _) = s.call("DELETE", &format!("/api/v1/policies/{id}"), Some(&s.admin), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
}
