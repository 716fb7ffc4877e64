//! The Policies and Platforms pages: the list in evaluation order, the form's API calls, moving,
//! enabling, validation errors beside their inputs, viewers, escaping, vetting, tenants.
use crate::TestServer;
use crate::console::{Browser, logged_in};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A policy body as the form sends it: condition values as strings, lists where the value
/// holds commas (`data-type="values"`).
fn form_body(name: &str, priority: Option<i64>, action: &str, conditions: Value) -> Value {
    let mut body = json!({"name": name, "description": "", "enabled": true,
        "rules": {"action": action, "conditions": conditions}});
    if let Some(p) = priority {
        body["priority"] = json!(p);
    }
    body
}

async fn create(b: &Browser, name: &str, priority: Option<i64>) -> String {
    let conditions = json!([{"field": "platform_id", "operator": "in", "value": ["chatgpt", "claude"]},
        {"field": "risk_score", "operator": "gte", "value": "0.7"}]);
    let (status, p) = b.api("POST", "/api/v1/policies", Some(form_body(name, priority, "block", conditions))).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    p["id"].as_str().expect("id").to_owned()
}

/// The policy names in the order the list page shows them.
fn order_shown(html: &str, names: &[&str]) -> Vec<String> {
    let mut found: Vec<(usize, String)> =
        names.iter().map(|n| (html.find(&format!(">{n}</a>")).unwrap_or_else(|| panic!("{n} not on the page")), (*n).to_owned())).collect();
    found.sort();
    found.into_iter().map(|(_, n)| n).collect()
}

async fn move_step(b: &Browser, id: &str, step: &str) -> (StatusCode, Value) {
    b.api("POST", &format!("/policies/{id}/move"), Some(json!({"step": step}))).await
}

async fn list_order(b: &Browser, names: &[&str]) -> Vec<String> {
    let (status, html) = b.page("/policies").await;
    assert_eq!(status, StatusCode::OK);
    order_shown(&html, names)
}

/// Invites a viewer, accepts the invitation and logs them in through the form.
async fn viewer(s: &TestServer) -> Browser {
    let (status, inv) =
        s.post("/api/v1/users/invite", &s.admin, json!({"email": "vera@acme.test", "role": "viewer", "display_name": "Vera"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let (status, _) = s
        .call("POST", "/api/v1/auth/accept-invite", None, Some(json!({"token": inv["invite_token"], "password": "viewer password 1"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    Browser::login(&s.base, "vera@acme.test", "viewer password 1").await
}

#[tokio::test]
async fn with_no_policies_the_page_says_everything_is_logged_and_links_to_the_form() {
    let (_s, b) = logged_in().await;
    let (status, html) = b.page("/policies").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No policies yet.") && html.contains("every interaction is only logged"), "{html}");
    assert!(html.contains("href=\"/policies/new\""));
    let (status, form) = b.page("/policies/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("data-api=\"/api/v1/policies\" data-method=\"POST\""), "{form}");
    for name in ["name", "description", "priority", "enabled", "rules.action", "rules.message", "rules.conditions.0.field"] {
        assert!(form.contains(&format!("name=\"{name}\"")), "no input named {name}");
    }
}

#[tokio::test]
async fn a_policy_created_through_the_form_call_is_listed_in_evaluation_order() {
    let (_s, b) = logged_in().await;
    create(&b, "Late", Some(50)).await;
    let first = create(&b, "First", Some(10)).await;
    create(&b, "Middle", Some(30)).await;
    let (_, html) = b.page("/policies").await;
    assert_eq!(order_shown(&html, &["Late", "First", "Middle"]), ["First", "Middle", "Late"]);
    // Numbered 1, 2, 3 with the action, the conditions in words and the state.
    assert!(
        html.contains("<td class=\"num\">1</td>\n      <td><a href=\"/policies/") && html.contains("<td class=\"num\">3</td>"),
        "{html}"
    );
    assert!(html.contains("badge block") && html.contains("platform is one of chatgpt, claude and risk score ≥ 0.7"), "{html}");
    assert!(html.contains(&format!("data-api=\"/policies/{first}/move\"")));
    assert!(html.contains("3 of 3 enabled"));
    // The policy's page holds its values in the form that replaces it.
    let (status, page) = b.page(&format!("/policies/{first}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("data-api=\"/api/v1/policies/{first}\" data-method=\"PUT\"")), "{page}");
    assert!(page.contains("value=\"chatgpt, claude\"") && page.contains("value=\"0.7\""), "{page}");
    assert!(page.contains("<option value=\"gte\" selected>") && page.contains("Place 1 of 3"), "{page}");
}

#[tokio::test]
async fn move_up_and_down_swap_neighbours_even_with_equal_priorities() {
    let (s, b) = logged_in().await;
    let names = ["A", "B", "C", "D"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(create(&b, n, None).await); // all at the default priority: ordered by age
    }
    assert_eq!(list_order(&b, &names).await, ["A", "B", "C", "D"]);
    let (status, moved) = move_step(&b, &ids[2], "up").await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(list_order(&b, &names).await, ["A", "C", "B", "D"]);
    move_step(&b, &ids[2], "up").await;
    assert_eq!(list_order(&b, &names).await, ["C", "A", "B", "D"]);
    // First cannot go up, last cannot go down: nothing changes.
    assert_eq!(move_step(&b, &ids[2], "up").await.0, StatusCode::OK);
    assert_eq!(move_step(&b, &ids[3], "down").await.0, StatusCode::OK);
    move_step(&b, &ids[0], "down").await;
    assert_eq!(list_order(&b, &names).await, ["C", "B", "A", "D"]);
    // The API lists the same order, and the evaluator sees it: the first enabled match decides.
    let (_, page) = s.get("/api/v1/policies", &s.admin).await;
    let api: Vec<&str> = page["items"].as_array().expect("items").iter().map(|p| p["name"].as_str().expect("name")).collect();
    assert_eq!(api, ["C", "B", "A", "D"]);
    let (_, r) = s.interaction(&s.admin, json!({"platform_id": "chatgpt", "content_hash": crate::HASH, "risk_score": 0.9})).await;
    assert_eq!(r["decision"]["policy_name"], "C", "{r}");

    // With room between the neighbours only the moved policy changes.
    let (_, b2) = logged_in().await;
    let x = create(&b2, "X", Some(10)).await;
    let y = create(&b2, "Y", Some(20)).await;
    let z = create(&b2, "Z", Some(30)).await;
    let (_, moved) = move_step(&b2, &z, "up").await;
    let p = moved["priority"].as_i64().expect("priority");
    assert!(p > 10 && p < 20, "{moved}");
    assert_eq!(list_order(&b2, &["X", "Y", "Z"]).await, ["X", "Z", "Y"]);
    for (id, want) in [(&x, 10), (&y, 20)] {
        let (_, p) = b2.api("GET", &format!("/api/v1/policies/{id}"), None).await;
        assert_eq!(p["priority"], want);
    }
    // The move needs the session's CSRF token, like every change.
    let r = b2.http.post(format!("{}/policies/{x}/move", b2.base)).json(&json!({"step": "down"})).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(move_step(&b2, &x, "sideways").await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn enable_and_disable_change_the_state_shown() {
    let (_s, b) = logged_in().await;
    let (status, p) = b
        .api(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "Quiet", "rules": {"action": "coach", "conditions": [{"field": "platform_vetted", "operator": "eq", "value": "false"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().expect("id");
    let (_, html) = b.page("/policies").await;
    assert!(html.contains("badge disabled") && html.contains(&format!("data-api=\"/api/v1/policies/{id}/enable\"")), "{html}");
    assert!(html.contains("platform is not vetted") && html.contains("0 of 1 enabled"));
    assert_eq!(b.api("POST", &format!("/api/v1/policies/{id}/enable"), Some(json!({}))).await.0, StatusCode::OK);
    let (_, html) = b.page("/policies").await;
    assert!(html.contains("badge enabled") && html.contains(&format!("data-api=\"/api/v1/policies/{id}/disable\"")), "{html}");
    let (_, only_disabled) = b.page("/policies?show=disabled").await;
    assert!(only_disabled.contains("No disabled policies.") && !only_disabled.contains(">Quiet</a>"), "{only_disabled}");
    assert_eq!(b.api("POST", &format!("/api/v1/policies/{id}/disable"), Some(json!({}))).await.0, StatusCode::OK);
    let (_, html) = b.page("/policies?show=disabled").await;
    assert!(html.contains(">Quiet</a>") && html.contains("badge disabled"));
    // Delete, as the list's button does.
    assert_eq!(b.api("DELETE", &format!("/api/v1/policies/{id}"), None).await.0, StatusCode::NO_CONTENT);
    assert!(b.page("/policies").await.1.contains("No policies yet."));
}

#[tokio::test]
async fn validation_errors_name_fields_the_form_has_an_input_for() {
    let (_s, b) = logged_in().await;
    let (_, new_form) = b.page("/policies/new").await;
    let bad = json!({"name": " ", "priority": 5000, "rules": {"action": "smite", "message": "x".repeat(501), "conditions": [
        {"field": "risk_score", "operator": "gte", "value": "2"},
        {"field": "platform_id", "operator": "gt", "value": "chatgpt"},
        {"field": "colour", "operator": "eq", "value": "red"}]}});
    let (status, err) = b.api("POST", "/api/v1/policies", Some(bad.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    // A missing operator is a body error, reported alone at its row.
    let (status, missing) = b
        .api(
            "POST",
            "/api/v1/policies",
            Some(json!({"name": "n", "rules": {"action": "log", "conditions": [
        {"field": "platform_id", "operator": "eq", "value": "chatgpt"}, {"field": "platform_id", "value": "x"}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{missing}");
    // No condition at all.
    let (_, none) = b.api("POST", "/api/v1/policies", Some(json!({"name": "n", "rules": {"action": "log", "conditions": []}}))).await;
    let mut fields: Vec<String> = [&err, &missing, &none]
        .iter()
        .flat_map(|e| e["fields"].as_array().expect("fields").iter().map(|f| f["field"].as_str().expect("field").to_owned()))
        .collect();
    fields.sort();
    fields.dedup();
    for want in [
        "name",
        "priority",
        "rules.action",
        "rules.message",
        "rules.conditions[0].value",
        "rules.conditions[1].operator",
        "rules.conditions[2].field",
        "rules.conditions[1]",
        "rules.conditions",
    ] {
        assert!(fields.iter().any(|f| f == want), "{want} not reported: {fields:?}");
    }
    // The script puts each message under the input named by the path, or the element that says
    // it shows that path's errors (`data-error-for`: the API's paths use brackets, the inputs'
    // names the dotted form the script builds JSON from).
    let (_, edit_id) = b
        .api(
            "POST",
            "/api/v1/policies",
            Some(form_body("ok", None, "log", json!([{"field": "source", "operator": "eq", "value": "proxy"}]))),
        )
        .await;
    let (_, edit_form) = b.page(&format!("/policies/{}", edit_id["id"].as_str().expect("id"))).await;
    for html in [&new_form, &edit_form] {
        for f in &fields {
            assert!(html.contains(&format!("name=\"{f}\"")) || html.contains(&format!("data-error-for=\"{f}\"")), "no place for {f}");
        }
    }
    // The input carrying a path's errors is the one that sends that value.
    assert!(new_form.contains("name=\"rules.conditions.0.value\" data-type=\"values\" data-error-for=\"rules.conditions[0].value\""));
    // An invalid replacement through the edit form's PUT reports the same paths and changes nothing.
    let id = edit_id["id"].as_str().expect("id");
    let (status, e) = b.api("PUT", &format!("/api/v1/policies/{id}"), Some(bad)).await;
    assert_eq!((status, e["fields"].as_array().map(Vec::len)), (StatusCode::UNPROCESSABLE_ENTITY, err["fields"].as_array().map(Vec::len)));
    let (_, p) = b.api("GET", &format!("/api/v1/policies/{id}"), None).await;
    assert_eq!(p["name"], "ok");
}

#[tokio::test]
async fn a_viewer_sees_policies_and_platforms_without_forms_and_the_api_refuses_their_changes() {
    let (s, admin) = logged_in().await;
    let id = create(&admin, "Cards", Some(10)).await;
    let v = viewer(&s).await;
    let (status, html) = v.page("/policies").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">Cards</a>") && !html.contains("data-api") && !html.contains("/policies/new"), "{html}");
    let (status, page) = v.page(&format!("/policies/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<form class=\"panel\"") && !page.contains("data-api"), "{page}");
    assert!(page.contains("platform is one of chatgpt, claude") && page.contains("Only admins can change policies."), "{page}");
    assert_eq!(v.page("/policies/new").await.0, StatusCode::FORBIDDEN);
    let (_, platforms) = v.page("/platforms").await;
    assert!(platforms.contains("ChatGPT (OpenAI)") && !platforms.contains("data-api"), "{platforms}");

    let (status, e) = v
        .api(
            "POST",
            "/api/v1/policies",
            Some(form_body("Mine", None, "log", json!([{"field": "source", "operator": "eq", "value": "api"}]))),
        )
        .await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(v.api("POST", &format!("/api/v1/policies/{id}/disable"), Some(json!({}))).await.0, StatusCode::FORBIDDEN);
    assert_eq!(move_step(&v, &id, "down").await.0, StatusCode::FORBIDDEN);
    assert_eq!(v.api("PATCH", "/api/v1/platforms/poe", Some(json!({"vetted": true}))).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn names_from_data_are_escaped() {
    let (_s, b) = logged_in().await;
    let id = create(&b, "<script>x</script>", None).await;
    let (status, p) = b
        .api(
            "POST",
            "/api/v1/platforms",
            Some(json!({"id": "evil-ai", "name": "<b onmouseover=alert(1)>Evil</b>", "hosts": ["evil.example"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    for path in ["/policies".to_owned(), format!("/policies/{id}")] {
        let (_, html) = b.page(&path).await;
        assert!(!html.contains("<script>x</script>"), "{path}");
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;") || html.contains("&#60;script&#62;x&#60;/script&#62;"), "{path}: {html}");
    }
    let (_, html) = b.page("/platforms").await;
    assert!(!html.contains("<b onmouseover") && html.contains("Evil"), "{html}");
}

#[tokio::test]
async fn the_vetting_button_changes_the_state_shown_and_custom_platforms_are_listed() {
    let (_s, b) = logged_in().await;
    let (status, html) = b.page("/platforms").await;
    assert_eq!(status, StatusCode::OK);
    let row = |html: &str, id: &str| -> String {
        let at = html.find(&format!("<code>{id}</code>")).unwrap_or_else(|| panic!("{id} not listed"));
        html[at..at + html[at..].find("</tr>").expect("row end")].to_owned()
    };
    let mistral = row(&html, "mistral");
    assert!(mistral.contains("not vetted") && mistral.contains(r#"data-body='{"vetted":true}'"#), "{mistral}");
    assert!(row(&html, "claude").contains("badge enabled\">vetted"));
    assert!(html.contains("No custom platforms yet."));
    let (status, p) = b.api("PATCH", "/api/v1/platforms/mistral", Some(json!({"vetted": true}))).await;
    assert_eq!((status, p["vetted"].as_bool()), (StatusCode::OK, Some(true)));
    let (_, html) = b.page("/platforms").await;
    let mistral = row(&html, "mistral");
    assert!(mistral.contains("badge enabled\">vetted") && mistral.contains(r#"data-body='{"vetted":false}'"#), "{mistral}");
    let (_, vetted_only) = b.page("/platforms?show=vetted").await;
    assert!(vetted_only.contains("<code>mistral</code>") && !vetted_only.contains("<code>poe</code>"));

    // The add form's call, then its validation error placed at the `id` input.
    let (status, _) = b
        .api(
            "POST",
            "/api/v1/platforms",
            Some(json!({"id": "internal-llm", "name": "Internal LLM", "hosts": ["llm.acme.test"], "vetted": false})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, e) = b.api("POST", "/api/v1/platforms", Some(json!({"id": "no spaces", "name": "x"}))).await;
    assert_eq!((status, e["fields"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("id")));
    let (_, html) = b.page("/platforms").await;
    assert!(html.contains("name=\"id\"") && !html.contains("No custom platforms yet."));
    let custom = &html[html.find("Your custom platforms").expect("custom section")..];
    assert!(row(custom, "internal-llm").contains("llm.acme.test") && row(custom, "internal-llm").contains("not vetted"));
    assert!(custom.contains("href=\"/interactions?platform_id=internal-llm\""));
}

#[tokio::test]
async fn another_tenant_sees_none_of_these_policies_or_platform_changes() {
    let (s, acme) = logged_in().await;
    let id = create(&acme, "Acme only", Some(10)).await;
    assert_eq!(acme.api("PATCH", "/api/v1/platforms/poe", Some(json!({"vetted": true}))).await.0, StatusCode::OK);
    assert_eq!(acme.api("POST", "/api/v1/platforms", Some(json!({"id": "acme-llm", "name": "Acme LLM"}))).await.0, StatusCode::CREATED);
    s.state.auth.create_tenant("globex", "root@globex.test", Some("globex password 1")).await.expect("tenant");
    let globex = Browser::login(&s.base, "root@globex.test", "globex password 1").await;
    let (_, html) = globex.page("/policies").await;
    assert!(html.contains("No policies yet.") && !html.contains("Acme only"), "{html}");
    assert_eq!(globex.page(&format!("/policies/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(move_step(&globex, &id, "down").await.0, StatusCode::NOT_FOUND);
    assert_eq!(globex.api("POST", &format!("/api/v1/policies/{id}/disable"), Some(json!({}))).await.0, StatusCode::NOT_FOUND);
    let (_, platforms) = globex.page("/platforms").await;
    let at = platforms.find("<code>poe</code>").expect("poe");
    assert!(platforms[at..].split("</tr>").next().expect("row").contains("not vetted"));
    assert!(!platforms.contains("acme-llm") && platforms.contains("No custom platforms yet."));
    // Acme's policy is still enabled.
    let (_, p) = acme.api("GET", &format!("/api/v1/policies/{id}"), None).await;
    assert_eq!(p["enabled"], true);
}
