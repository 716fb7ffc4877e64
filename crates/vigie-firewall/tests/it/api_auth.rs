//! Login, roles, API tokens, users, and tenant isolation.
use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn login_gives_a_24_hour_token_and_wrong_passwords_are_limited_per_address() {
    let s = TestServer::start().await;
    let (status, session) =
        s.call("POST", "/api/v1/auth/login", None, Some(json!({"email": "ADMIN@acme.test", "password": ADMIN_PASSWORD}))).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!((session["user"]["role"].as_str(), session["user"]["email"].as_str()), (Some("admin"), Some(ADMIN_EMAIL)));
    let expires = chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().expect("expiry")).expect("rfc3339");
    let hours = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours} h");
    let (_, me) = s.get("/api/v1/auth/me", session["token"].as_str().expect("token")).await;
    assert_eq!((me["kind"].as_str(), me["role"].as_str()), (Some("user"), Some("admin")));

    for _ in 0..5 {
        let (status, e) = s.call("POST", "/api/v1/auth/login", None, Some(json!({"email": ADMIN_EMAIL, "password": "wrong"}))).await;
        assert_eq!((status, e["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
    }
    let resp = s
        .http
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&retry));
    let e: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(e["code"], "rate_limited");
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_write_and_an_ingest_token_only_records() {
    let s = TestServer::start().await;
    let (status, inv) =
        s.post("/api/v1/users/invite", &s.admin, json!({"email": "vera@acme.test", "role": "viewer", "display_name": "Vera"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    assert_eq!(
        (inv["status"].as_str(), inv["role"].as_str()),
        (Some("pending"), Some("viewer")),
        "the invitation shows the user at the top level"
    );
    let (status, session) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "viewer password 1"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let viewer = session["token"].as_str().expect("token").to_owned();
    let (status, _) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "viewer password 1"})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an invitation works once");

    let id = s.policy("p", 10, "log", json!([{"field": "platform_id", "operator": "eq", "value": "x"}])).await;
    let (_, recorded) = s.interaction(&s.admin, interaction("chatgpt")).await;
    for (path, status) in [
        ("/api/v1/policies", StatusCode::OK),
        ("/api/v1/interactions", StatusCode::OK),
        ("/api/v1/users", StatusCode::OK),
        ("/api/v1/platforms", StatusCode::OK),
    ] {
        assert_eq!(s.get(path, &viewer).await.0, status, "viewer GET {path}");
    }
    let writes = [
        (
            "POST",
            "/api/v1/policies".to_owned(),
            json!({"name": "v", "rules": {"action": "log", "conditions": [{"field": "platform_id", "operator": "eq", "value": "x"}]}}),
        ),
        ("PATCH", format!("/api/v1/policies/{id}"), json!({"priority": 1})),
        ("POST", format!("/api/v1/policies/{id}/enable"), json!({})),
        ("DELETE", format!("/api/v1/policies/{id}"), json!({})),
        ("POST", "/api/v1/interactions".to_owned(), interaction("chatgpt")),
        ("POST", "/api/v1/users/invite".to_owned(), json!({"email": "x@acme.test", "role": "admin"})),
        ("POST", "/api/v1/tokens".to_owned(), json!({"name": "t", "role": "admin"})),
    ];
    for (method, path, body) in &writes {
        let (status, e) = s.call(method, path, Some(&viewer), Some(body.clone())).await;
        assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "viewer {method} {path}");
    }
    let ingest = s.api_token("ingest").await;
    assert_eq!(s.interaction(&ingest, interaction("chatgpt")).await.0, StatusCode::CREATED);
    assert_eq!(s.get("/api/v1/policies", &ingest).await.0, StatusCode::OK, "an extension reads the policies it enforces");
    assert_eq!(s.get("/api/v1/interactions", &ingest).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.get(&format!("/api/v1/interactions/{}", recorded["id"].as_str().expect("id")), &ingest).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.call("DELETE", &format!("/api/v1/policies/{id}"), Some(&ingest), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.count("SELECT count(*) FROM policies"), 1);
    assert_eq!(s.count("SELECT count(*) FROM interactions"), 2);
}

#[tokio::test]
async fn api_tokens_are_shown_once_stored_hashed_record_their_use_and_stop_on_revocation() {
    let s = TestServer::start().await;
    let (status, created) = s.post("/api/v1/tokens", &s.admin, json!({"name": "extension paris", "role": "ingest"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("vgt_") && token.len() > 40);
    let stored: Vec<u8> = s.db().query_row("SELECT token_hash FROM api_tokens", [], |r| r.get(0)).expect("row");
    assert_eq!(stored.len(), 32);
    let raw = std::fs::read(s.dir.path().join("firewall.db")).expect("read db");
    let wal = std::fs::read(s.dir.path().join("firewall.db-wal")).unwrap_or_default();
    assert!(!contains(&raw, token.as_bytes()) && !contains(&wal, token.as_bytes()), "the token itself is stored");

    assert_eq!(s.interaction(&token, interaction("claude")).await.0, StatusCode::CREATED);
    let (_, list) = s.get("/api/v1/tokens", &s.admin).await;
    let item = &list["items"][0];
    assert!(item.get("token").is_none(), "a listed token shows no secret");
    let id = item["id"].as_str().expect("id").to_owned();
    let last_used = async || s.get("/api/v1/tokens", &s.admin).await.1["items"][0]["last_used_at"].clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while last_used().await.is_null() {
        assert!(std::time::Instant::now() < deadline, "last use never recorded");
        tokio::task::yield_now().await;
    }
    let (status, revoked) = s.call("DELETE", &format!("/api/v1/tokens/{id}"), Some(&s.admin), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, e) = s.interaction(&token, interaction("claude")).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_credentials")));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn role_changes_and_deactivation_revoke_login_tokens_and_the_last_admin_is_kept() {
    let s = TestServer::start().await;
    let (_, inv) = s.post("/api/v1/users/invite", &s.admin, json!({"email": "ada@acme.test", "role": "admin"})).await;
    let (_, session) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "ada password 123"})))
        .await;
    let ada = session["token"].as_str().expect("token").to_owned();
    let ada_id = session["user"]["id"].as_str().expect("id").to_owned();
    assert_eq!(s.post("/api/v1/tokens", &ada, json!({"name": "t", "role": "viewer"})).await.0, StatusCode::CREATED);

    let (status, u) = s.call("PATCH", &format!("/api/v1/users/{ada_id}"), Some(&s.admin), Some(json!({"role": "viewer"}))).await;
    assert_eq!((status, u["role"].as_str()), (StatusCode::OK, Some("viewer")));
    assert_eq!(s.get("/api/v1/auth/me", &ada).await.0, StatusCode::UNAUTHORIZED, "a token issued before a role change stops working");
    let ada = s.login("ada@acme.test", "ada password 123").await;
    assert_eq!(s.post("/api/v1/tokens", &ada, json!({"name": "t", "role": "viewer"})).await.0, StatusCode::FORBIDDEN);

    let (status, u) = s.post(&format!("/api/v1/users/{ada_id}/deactivate"), &s.admin, json!({})).await;
    assert_eq!((status, u["status"].as_str()), (StatusCode::OK, Some("inactive")));
    assert_eq!(s.get("/api/v1/auth/me", &ada).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) =
        s.call("POST", "/api/v1/auth/login", None, Some(json!({"email": "ada@acme.test", "password": "ada password 123"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, users) = s.get("/api/v1/users?status=inactive", &s.admin).await;
    assert_eq!(users["items"].as_array().map(Vec::len), Some(1));

    let (_, me) = s.get("/api/v1/auth/me", &s.admin).await;
    let admin_id = me["id"].as_str().expect("id");
    let (status, e) = s.post(&format!("/api/v1/users/{admin_id}/deactivate"), &s.admin, json!({})).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "the last admin cannot be deactivated");
    let (status, _) = s.call("PATCH", &format!("/api/v1/users/{admin_id}"), Some(&s.admin), Some(json!({"role": "viewer"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, fresh) = s
        .post("/api/v1/auth/password", &s.admin, json!({"current_password": ADMIN_PASSWORD, "new_password": "a brand new password"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(s.get("/api/v1/auth/me", &s.admin).await.0, StatusCode::UNAUTHORIZED, "old sessions end with a password change");
    assert_eq!(s.get("/api/v1/auth/me", fresh["token"].as_str().expect("token")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn one_tenant_can_neither_read_nor_change_another_tenants_data() {
    let s = TestServer::start().await;
    let globex = s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let other = s.login("root@globex.test", "globex password 1").await;
    let policy = s.policy("acme policy", 10, "block", json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}])).await;
    let (_, i) = s.interaction(&s.admin, interaction("deepseek")).await;
    let interaction_id = i["id"].as_str().expect("id");
    let (_, users) = s.get("/api/v1/users", &s.admin).await;
    let acme_user = users["items"][0]["id"].as_str().expect("id").to_owned();

    for path in
        [format!("/api/v1/policies/{policy}"), format!("/api/v1/interactions/{interaction_id}"), format!("/api/v1/users/{acme_user}")]
    {
        assert_eq!(s.get(&path, &other).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    for path in ["/api/v1/policies", "/api/v1/interactions", "/api/v1/tokens"] {
        let (_, page) = s.get(path, &other).await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{path}: {page}");
    }
    let (_, users) = s.get("/api/v1/users", &other).await;
    assert_eq!(users["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        s.call("PATCH", &format!("/api/v1/policies/{policy}"), Some(&other), Some(json!({"enabled": false}))).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.call("DELETE", &format!("/api/v1/policies/{policy}"), Some(&other), None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.post(&format!("/api/v1/policies/{policy}/disable"), &other, json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.post(&format!("/api/v1/users/{acme_user}/deactivate"), &other, json!({})).await.0, StatusCode::NOT_FOUND);
    // Globex's interactions are not judged by Acme's policies.
    let (_, theirs) = s.interaction(&other, interaction("deepseek")).await;
    assert_eq!(theirs["decision"]["action"], "log");
    assert_eq!(theirs["tenant_id"], globex.tenant.id.to_string());
    let (_, mine) = s.get(&format!("/api/v1/policies/{policy}"), &s.admin).await;
    assert_eq!(mine["enabled"], true);
    let (_, tenant) = s.get("/api/v1/tenants/me", &other).await;
    assert_eq!(tenant["name"], "globex");
}
