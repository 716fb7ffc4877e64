//! Regressions, each named after the bug it guards against.
use crate::{HASH, TestServer, interaction};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};
use vigie_core::StoreError;
use vigie_core::auth::{Actor, Principal, Role};
use vigie_firewall::policy::PolicyPatch;

async fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_whose_request_is_dropped_after_queueing_still_takes_effect() {
    let s = TestServer::start().await;
    let id = s.policy("Block DeepSeek", 10, "block", json!([{"field": "platform_id", "operator": "eq", "value": "deepseek"}])).await;
    assert_eq!(s.interaction(&s.admin, interaction("deepseek")).await.1["decision"]["action"], "block", "rules cached");
    let (_, me) = s.get("/api/v1/auth/me", &s.admin).await;
    let admin = Principal {
        tenant_id: me["tenant_id"].as_str().expect("tenant").parse().expect("uuid"),
        role: Role::Admin,
        actor: Actor::User { id: me["id"].as_str().expect("id").parse().expect("uuid"), email: "admin@acme.test".into() },
    };
    // Hold the writer so the change queues, then drop the request that made it.
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let store = s.state.store.clone();
        tokio::spawn(async move {
            store
                .write(move |_| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                    Ok::<_, StoreError>(())
                })
                .await
        })
    };
    started.await.expect("the writer is held");
    let (state, policy_id) = (s.state.clone(), id.parse().expect("uuid"));
    let request = tokio::spawn(async move {
        vigie_firewall::policy::update(&state, &admin, policy_id, PolicyPatch { enabled: Some(false), ..PolicyPatch::default() })
            .await
            .map(|_| ())
    });
    poll_until("the change is queued", || s.state.store.queued() >= 1).await;
    request.abort();
    release.send(()).expect("release");
    holder.await.expect("join").expect("held write");
    poll_until("the change is committed", || s.count("SELECT count(*) FROM policies WHERE enabled = 0") == 1).await;
    // The cache is dropped just after the commit, by the task the request could not cancel.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, r) = s.interaction(&s.admin, interaction("deepseek")).await;
        if r["decision"]["action"] == "log" {
            break;
        }
        assert!(Instant::now() < deadline, "a disabled policy is still enforced: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_cannot_exceed_the_login_limit() {
    let s = TestServer::start().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (http, url) = (s.http.clone(), format!("{}/api/v1/auth/login", s.base));
        tasks.push(tokio::spawn(async move {
            http.post(url).json(&json!({"email": "admin@acme.test", "password": "guess"})).send().await.expect("send").status()
        }));
    }
    let mut unauthorized = 0;
    for t in tasks {
        match t.await.expect("join") {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(unauthorized <= 5, "{unauthorized} passwords were checked in one minute");
}

#[tokio::test]
async fn the_api_tokens_of_a_deactivated_or_demoted_admin_stop_working() {
    let s = TestServer::start().await;
    let mut admins = Vec::new();
    for name in ["ada", "bob"] {
        let (_, inv) = s.post("/api/v1/users/invite", &s.admin, json!({"email": format!("{name}@acme.test"), "role": "admin"})).await;
        let (_, session) = s
            .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "a long password 1"})))
            .await;
        let token = session["token"].as_str().expect("token").to_owned();
        let id = session["user"]["id"].as_str().expect("id").to_owned();
        let (_, admin_tok) = s.post("/api/v1/tokens", &token, json!({"name": format!("{name} admin"), "role": "admin"})).await;
        let (_, ingest_tok) = s.post("/api/v1/tokens", &token, json!({"name": format!("{name} ingest"), "role": "ingest"})).await;
        admins.push((id, admin_tok["token"].as_str().expect("token").to_owned(), ingest_tok["token"].as_str().expect("token").to_owned()));
    }
    let (ada, bob) = (&admins[0], &admins[1]);
    assert_eq!(s.get("/api/v1/tokens", &ada.1).await.0, StatusCode::OK);

    assert_eq!(s.post(&format!("/api/v1/users/{}/deactivate", ada.0), &s.admin, json!({})).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/v1/tokens", &ada.1).await.0, StatusCode::UNAUTHORIZED, "an offboarded admin keeps admin access");
    assert_eq!(s.interaction(&ada.2, interaction("claude")).await.0, StatusCode::UNAUTHORIZED);

    assert_eq!(
        s.call("PATCH", &format!("/api/v1/users/{}", bob.0), Some(&s.admin), Some(json!({"role": "viewer"}))).await.0,
        StatusCode::OK
    );
    assert_eq!(s.get("/api/v1/tokens", &bob.1).await.0, StatusCode::UNAUTHORIZED, "a demoted admin keeps admin access");
    assert_eq!(
        s.interaction(&bob.2, json!({"platform_id": "claude", "content_hash": HASH})).await.0,
        StatusCode::CREATED,
        "non-admin tokens stay"
    );
}

#[tokio::test]
async fn a_token_made_by_a_token_goes_when_the_owner_of_the_first_goes() {
    let s = TestServer::start().await;
    let (_, inv) = s.post("/api/v1/users/invite", &s.admin, json!({"email": "carol@acme.test", "role": "admin"})).await;
    let (_, session) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "carol password 1"})))
        .await;
    let carol = session["token"].as_str().expect("token").to_owned();
    let carol_id = session["user"]["id"].as_str().expect("id").to_owned();
    let (_, t1) = s.post("/api/v1/tokens", &carol, json!({"name": "t1", "role": "admin"})).await;
    let t1 = t1["token"].as_str().expect("token").to_owned();
    let (_, t2) = s.post("/api/v1/tokens", &t1, json!({"name": "t2", "role": "admin"})).await;
    let t2 = t2["token"].as_str().expect("token").to_owned();
    assert_eq!(s.get("/api/v1/tokens", &t2).await.0, StatusCode::OK);
    assert_eq!(s.post(&format!("/api/v1/users/{carol_id}/deactivate"), &s.admin, json!({})).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/v1/tokens", &t1).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get("/api/v1/tokens", &t2).await.0, StatusCode::UNAUTHORIZED, "a token's token outlived its owner");
}

#[tokio::test]
async fn made_up_invitations_are_refused_and_rate_limited() {
    let s = TestServer::start().await;
    let mut codes = Vec::new();
    for i in 0..8 {
        let (status, e) = s
            .call(
                "POST",
                "/api/v1/auth/accept-invite",
                None,
                Some(json!({"token": format!("vgi_made_up_{i}"), "password": "a long enough password"})),
            )
            .await;
        codes.push((status.as_u16(), e["code"].as_str().unwrap_or_default().to_owned()));
    }
    assert_eq!(codes[0], (401, "invalid_invitation".to_owned()));
    assert!(codes.iter().any(|(s, _)| *s == 429), "{codes:?}");
}

#[tokio::test]
async fn an_e_mail_taken_in_another_tenant_can_be_invited_and_logs_in_to_the_right_tenant() {
    let s = TestServer::start().await;
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let (status, inv) = s.post("/api/v1/users/invite", &s.admin, json!({"email": "root@globex.test", "role": "viewer"})).await;
    assert_eq!(status, StatusCode::CREATED, "another tenant's user leaks through a conflict: {inv}");
    s.call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "acme side password"}))).await;
    let globex = s.login("root@globex.test", "globex password 1").await;
    assert_eq!(s.get("/api/v1/tenants/me", &globex).await.1["name"], "globex");
    let acme = s.login("root@globex.test", "acme side password").await;
    assert_eq!(s.get("/api/v1/tenants/me", &acme).await.1["name"], "acme");
    let (status, _) = s.post("/api/v1/users/invite", &s.admin, json!({"email": "ROOT@globex.test", "role": "viewer"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "unique within the tenant");
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "admin@acme.test", "password": crate::ADMIN_PASSWORD, "remember_me": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "extra login fields are ignored");
}
