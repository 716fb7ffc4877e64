//! Console page of users and API tokens (`/users`), the invitation page (`/invite`) and the
//! password change — for an admin, a viewer and another tenant.
use crate::console::{Browser, csrf_in, logged_in};
use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Invites `email` as `role` through the browser's session; returns the invitation.
async fn invite(b: &Browser, email: &str, role: &str, name: &str) -> Value {
    let (status, inv) = b.api("POST", "/api/v1/users/invite", Some(json!({"email": email, "role": role, "display_name": name}))).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    inv
}

/// A browser logged in as a viewer of the test tenant.
async fn viewer(s: &TestServer, b: &Browser) -> Browser {
    let inv = invite(b, "vera@acme.test", "viewer", "Vera").await;
    let (status, _) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "viewer password 1"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    Browser::login(&s.base, "vera@acme.test", "viewer password 1").await
}

#[tokio::test]
async fn the_users_page_lists_the_tenants_users_with_their_role_and_status() {
    let (_s, b) = logged_in().await;
    let inv = invite(&b, "ada@acme.test", "viewer", "Ada <script>x</script>").await;
    let (status, html) = b.page("/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(ADMIN_EMAIL) && html.contains("(you)"));
    assert!(html.contains("ada@acme.test") && html.contains("badge pending") && html.contains("badge role-viewer"));
    assert!(html.contains("Ada &#60;script&#62;x&#60;/script&#62;") && !html.contains("<script>x</script>"), "names are escaped");
    let token = inv["invite_token"].as_str().expect("token");
    assert!(!html.contains(token), "the invitation token is shown only in the invite answer");
    assert!(html.contains("data-api=\"/api/v1/users/invite\"") && html.contains("data-field=\"invite_token\""));

    // The filters narrow the list; a role change shows at once.
    let (_, pending) = b.page("/users?status=pending").await;
    assert!(pending.contains("<td>ada@acme.test") && !pending.contains(&format!("<td>{ADMIN_EMAIL}")));
    let (_, admins) = b.page("/users?role=admin").await;
    assert!(admins.contains(&format!("<td>{ADMIN_EMAIL}")) && !admins.contains("<td>ada@acme.test"));
    let id = inv["id"].as_str().expect("id");
    assert!(html.contains(&format!("data-api=\"/api/v1/users/{id}/deactivate\"")), "a Deactivate button");
    let (status, _) = b.api("PATCH", &format!("/api/v1/users/{id}"), Some(json!({"role": "admin"}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, admins) = b.page("/users?role=admin").await;
    assert!(admins.contains("ada@acme.test"));
    let (_, none) = b.page("/users?role=viewer&status=active").await;
    assert!(none.contains("No user matches these filters."));
}

#[tokio::test]
async fn the_invitation_link_opens_a_page_that_activates_the_account() {
    let (s, b) = logged_in().await;
    let (_, html) = b.page("/users").await;
    assert!(html.contains(&format!("{}/invite?token=<span data-field=\"invite_token\">", s.base)), "the link is built on this address");
    let inv = invite(&b, "ian@acme.test", "viewer", "").await;
    let token = inv["invite_token"].as_str().expect("token");
    let (status, page) = Browser::new(&s.base).page(&format!("/invite?token={token}")).await;
    assert_eq!(status, StatusCode::OK, "the page needs no session");
    assert!(page.contains(&format!("value=\"{token}\"")) && page.contains("data-api=\"/api/v1/auth/accept-invite\""));
    for field in ["token", "password", "display_name"] {
        assert!(page.contains(&format!("name=\"{field}\"")), "an input for {field}");
    }
    let (_, hostile) = Browser::new(&s.base).page("/invite?token=%22%3E%3Cscript%3E").await;
    assert!(!hostile.contains("<script>\"") && !hostile.contains("\"><script>"), "only token characters are written back");
    let (status, _) =
        s.call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": token, "password": "ian's password 1"}))).await;
    assert_eq!(status, StatusCode::OK);
    Browser::login(&s.base, "ian@acme.test", "ian's password 1").await;
}

#[tokio::test]
async fn a_created_token_is_shown_once_and_never_on_the_page() {
    let (s, b) = logged_in().await;
    let (status, created) = b
        .api(
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "extension <b>paris</b>", "role": "ingest", "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().expect("token");
    let prefix = created["prefix"].as_str().expect("prefix");
    let (status, html) = b.page("/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(secret), "the token is not on the page");
    assert!(html.contains(&format!("<code>{prefix}…</code>")), "only its first characters");
    assert!(html.contains("extension &#60;b&#62;paris&#60;/b&#62;") && html.contains("badge role-ingest") && html.contains("2099-01-01"));
    assert!(html.contains("data-field=\"token\"></code>"), "the shown-once box is empty until the API answers");
    assert!(html.contains("data-api=\"/api/v1/tokens\"") && html.contains("value=\"ingest\""));
    let (status, e) =
        b.api("POST", "/api/v1/tokens", Some(json!({"name": " ", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for f in e["fields"].as_array().expect("fields") {
        let field = f["field"].as_str().expect("field");
        assert!(html.contains(&format!("name=\"{field}\"")), "no input named {field}");
    }
    // Revoked: the list says so and the token stops working.
    let id = created["id"].as_str().expect("id");
    assert!(html.contains(&format!("data-api=\"/api/v1/tokens/{id}\" data-method=\"DELETE\"")));
    let (status, _) = b.api("DELETE", &format!("/api/v1/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, html) = b.page("/users").await;
    assert!(html.contains("badge revoked") && !html.contains(&format!("data-api=\"/api/v1/tokens/{id}\"")));
    assert_eq!(s.get("/api/v1/policies", secret).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_viewer_sees_the_users_without_forms_and_the_api_refuses_their_changes() {
    let (s, b) = logged_in().await;
    let v = viewer(&s, &b).await;
    let (status, html) = v.page("/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("<td>{ADMIN_EMAIL}")) && html.contains("<td>vera@acme.test"), "a viewer reads the list");
    assert!(!html.contains("/api/v1/users/invite") && !html.contains("/api/v1/tokens") && !html.contains("/deactivate"));
    assert!(html.contains("API tokens are listed and managed by admins."));
    assert!(html.contains("data-api=\"/users/password\""), "a viewer changes their own password");
    assert_eq!(
        v.api("POST", "/api/v1/users/invite", Some(json!({"email": "x@acme.test", "role": "admin"}))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(v.api("POST", "/api/v1/tokens", Some(json!({"name": "mine", "role": "ingest"}))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(v.api("GET", "/api/v1/tokens", None).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn changing_my_password_keeps_this_session_and_logs_out_the_others() {
    let (s, mut b) = logged_in().await;
    let other = Browser::login(&s.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (_, html) = b.page("/users").await;
    for field in ["current_password", "new_password", "new_password_again"] {
        assert!(html.contains(&format!("name=\"{field}\"")), "an input for {field}");
    }
    let (status, e) = b
        .post_fragment(
            "/users/password",
            json!({"current_password": "wrong", "new_password": "a new password 1", "new_password_again": "a new password 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.contains("\"field\":\"current_password\""), "{e}");
    let (status, e) = b
        .post_fragment(
            "/users/password",
            json!({"current_password": ADMIN_PASSWORD, "new_password": "a new password 1", "new_password_again": "another one 12"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.contains("\"field\":\"new_password_again\""), "{e}");
    let r = b
        .http
        .post(format!("{}/users/password", s.base))
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": "a new password 1"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the CSRF token is needed");

    let (status, _) = b
        .post_fragment(
            "/users/password",
            json!({"current_password": ADMIN_PASSWORD, "new_password": "a new password 1", "new_password_again": "a new password 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = b.page("/users?password=changed").await;
    assert_eq!(status, StatusCode::OK, "this session goes on with the new cookie");
    assert!(html.contains("Your password was changed."));
    b.csrf = csrf_in(&html);
    assert_eq!(b.api("GET", "/api/v1/auth/me", None).await.0, StatusCode::OK);
    assert_eq!(other.page("/users").await.0, StatusCode::SEE_OTHER, "another session is logged out");
    Browser::login(&s.base, ADMIN_EMAIL, "a new password 1").await;
}

#[tokio::test]
async fn another_tenant_sees_neither_the_users_nor_the_tokens() {
    let (s, b) = logged_in().await;
    invite(&b, "ada@acme.test", "viewer", "Ada").await;
    let (_, created) = b.api("POST", "/api/v1/tokens", Some(json!({"name": "acme extension", "role": "ingest"}))).await;
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let other = Browser::login(&s.base, "root@globex.test", "globex password 1").await;
    let (status, html) = other.page("/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("root@globex.test"));
    assert!(!html.contains("ada@acme.test") && !html.contains(ADMIN_EMAIL) && !html.contains("acme extension"));
    assert!(html.contains("No API tokens yet."));
    let id = created["id"].as_str().expect("id");
    assert_eq!(other.api("DELETE", &format!("/api/v1/tokens/{id}"), None).await.0, StatusCode::NOT_FOUND);
}
