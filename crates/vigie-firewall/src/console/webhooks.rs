//! Console pages: webhooks — the list with health and one-click actions, the create form (the
//! signing secret shown once), and a webhook's page (its settings form, health, the Test button,
//! secret rotation, replay and the delivery log). Reads go through the webhook service with the
//! logged-in tenant; every change is a call to the webhook API itself.
use super::{Console, PageResult};
use crate::state::FirewallState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use vigie_core::auth::Permission;
use vigie_core::http::{ApiError, Page, page_limit};
use vigie_web::{Shell, Time};
use vigie_webhook::model::{Attempt, DEFAULT_BATCH_MAX, DEFAULT_BATCH_MS, DEFAULT_MAX_IN_FLIGHT, Health, Webhook};
use vigie_webhook::service::parse_webhook_id;

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/webhooks", get(list))
        .route("/webhooks/new", get(new_form))
        .route("/webhooks/{id}", get(detail))
        .route("/webhooks/{id}/test", post(test))
}

/// Rows per page of the list and of the delivery log.
const PAGE_SIZE: u32 = 50;

/// The formats a webhook may use: (API name, what it is).
const FORMATS: &[(&str, &str)] = &[
    ("standard", "Standard Webhooks — one signed JSON event per request"),
    ("splunk_hec", "Splunk HTTP Event Collector (batched)"),
    ("sekoia", "Sekoia.io intake (batched; needs the intake key)"),
    ("slack", "Slack incoming webhook (a message per event)"),
];

/// The event types a new webhook's form has ticked: what a SOC wants first.
const SUGGESTED_EVENTS: &[&str] = &["interaction.policy_violated", "interaction.high_risk"];

/// What an event type means, for the checkboxes.
fn event_hint(name: &str) -> &'static str {
    match name {
        "interaction.created" => "every interaction recorded",
        "interaction.policy_violated" => "an interaction matched a policy (block, coach or log)",
        "interaction.high_risk" => "an interaction's risk is high (0.7 or more)",
        "alert.severity_critical" => "a critical alert",
        "alert.severity_high" => "a high-severity alert",
        "alert.severity_medium" => "a medium-severity alert",
        "alert.severity_low" => "a low-severity alert",
        "policy.created" => "a policy was created",
        "policy.updated" => "a policy was changed, enabled or disabled",
        "policy.deleted" => "a policy was deleted",
        "webhook.test" => "the Test button's event",
        "webhook.disabled" => "a webhook was disabled by its receiver or by failures",
        _ => "",
    }
}

fn health_word(h: Health) -> &'static str {
    match h {
        Health::Healthy => "healthy",
        Health::Failing => "failing",
        Health::Disabled => "disabled",
    }
}

/// The host (and port) of a webhook's URL: the list shows no more (a Slack URL's path is a
/// credential).
fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => url.chars().take(40).collect(),
        },
        Err(_) => url.chars().take(40).collect(),
    }
}

/// A webhook as the pages show it.
struct WebhookView {
    id: String,
    host: String,
    description: String,
    events: Vec<String>,
    format: String,
    active: bool,
    status: &'static str,
    disabled_reason: Option<String>,
    consecutive_failures: i64,
    failing_since: Option<Time>,
    last_success: Option<Time>,
    last_failure: Option<Time>,
    last_error: Option<String>,
    pending: i64,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> WebhookView {
        WebhookView {
            id: w.id.clone(),
            host: host_of(&w.url),
            description: w.description.clone(),
            events: w.events.clone(),
            format: w.format.clone(),
            active: w.active,
            status: health_word(w.status),
            disabled_reason: w.disabled_reason.clone(),
            consecutive_failures: w.consecutive_failures,
            failing_since: w.failing_since.map(Time),
            last_success: w.last_success_at.map(Time),
            last_failure: w.last_failure_at.map(Time),
            last_error: w.last_error.clone(),
            pending: w.pending_deliveries,
        }
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    state: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage {
    shell: Shell,
    can_write: bool,
    state: String,
    webhooks: Vec<WebhookView>,
    next: Option<String>,
    first_page: bool,
}

async fn list(State(st): State<FirewallState>, console: Console, Query(q): Query<ListQuery>) -> PageResult {
    console.require(Permission::ReadConfig)?;
    let active = match q.state.as_deref() {
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        _ => None,
    };
    let state = match active {
        Some(true) => "active",
        Some(false) => "inactive",
        None => "",
    };
    let limit = page_limit(Some(PAGE_SIZE));
    let after = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(parse_webhook_id(c).map_err(|_| vigie_core::http::bad_query("cursor", "follow the Next page link unchanged"))?),
        None => None,
    };
    let first_page = after.is_none();
    let rows = st.webhooks.list(console.principal.tenant_id, active, after, limit).await?;
    let page = Page::from_rows(rows, limit, |w| w.id.clone());
    let next = page.next_cursor.map(|c| format!("/webhooks?state={state}&cursor={}", vigie_web::form::encode(&c)));
    let shell = console.shell("Webhooks", "/webhooks");
    let webhooks = page.items.iter().map(WebhookView::from).collect();
    Ok(vigie_web::page(
        StatusCode::OK,
        &ListPage { shell, can_write: console.can_write(), state: state.to_owned(), webhooks, next, first_page },
    ))
}

/// An event type's checkbox.
struct EventChoice {
    name: String,
    hint: &'static str,
    checked: bool,
}

/// A format's option.
struct FormatChoice {
    name: &'static str,
    label: &'static str,
    selected: bool,
}

/// The values of the webhook form (`webhooks_form.html`), for a new webhook or an existing one.
struct WebhookForm {
    /// Where the form is sent, with which method, and what happens after.
    api: String,
    method: &'static str,
    then: String,
    /// True for a new webhook (the `active` box; no stored secrets).
    creating: bool,
    url: String,
    description: String,
    events: Vec<EventChoice>,
    formats: Vec<FormatChoice>,
    sourcetype: String,
    /// The custom headers as JSON (values of a stored webhook read `********`).
    headers: String,
    auth_token_set: bool,
    intake_key_set: bool,
    batch_max: u32,
    batch_ms: u32,
    max_in_flight: u32,
}

impl WebhookForm {
    fn new(known: &[String]) -> WebhookForm {
        WebhookForm {
            api: "/api/v1/webhooks".into(),
            method: "POST",
            then: "show:#created".into(),
            creating: true,
            url: String::new(),
            description: String::new(),
            events: known
                .iter()
                .map(|e| EventChoice { name: e.clone(), hint: event_hint(e), checked: SUGGESTED_EVENTS.contains(&e.as_str()) })
                .collect(),
            formats: FORMATS.iter().map(|(name, label)| FormatChoice { name, label, selected: *name == "standard" }).collect(),
            sourcetype: String::new(),
            headers: String::new(),
            auth_token_set: false,
            intake_key_set: false,
            batch_max: DEFAULT_BATCH_MAX,
            batch_ms: DEFAULT_BATCH_MS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    fn edit(known: &[String], w: &Webhook) -> WebhookForm {
        let mut events: Vec<EventChoice> =
            known.iter().map(|e| EventChoice { name: e.clone(), hint: event_hint(e), checked: w.events.contains(e) }).collect();
        // A type the server no longer offers stays visible (and checked) so an edit keeps it.
        for e in w.events.iter().filter(|e| !known.contains(e)) {
            events.push(EventChoice { name: e.clone(), hint: "", checked: true });
        }
        WebhookForm {
            api: format!("/api/v1/webhooks/{}", w.id),
            method: "PATCH",
            then: "reload".into(),
            creating: false,
            url: w.url.clone(),
            description: w.description.clone(),
            events,
            formats: FORMATS.iter().map(|(name, label)| FormatChoice { name, label, selected: *name == w.format }).collect(),
            sourcetype: w.sourcetype.clone().unwrap_or_default(),
            headers: if w.headers.is_empty() { String::new() } else { serde_json::to_string_pretty(&w.headers).unwrap_or_default() },
            auth_token_set: w.auth_token.is_some(),
            intake_key_set: w.intake_key.is_some(),
            batch_max: w.batch_max,
            batch_ms: w.batch_ms,
            max_in_flight: w.max_in_flight,
        }
    }
}

#[derive(Template)]
#[template(path = "webhooks_new.html")]
struct NewPage {
    shell: Shell,
    form: WebhookForm,
}

async fn new_form(State(st): State<FirewallState>, console: Console) -> PageResult {
    console.require(Permission::Write)?;
    let form = WebhookForm::new(&st.webhooks.settings().event_types);
    let shell = console.shell("New webhook", "/webhooks");
    Ok(vigie_web::page(StatusCode::OK, &NewPage { shell, form }))
}

/// One request of the delivery log.
struct AttemptView {
    at: Time,
    trigger: String,
    event_type: String,
    event_ids: Vec<String>,
    /// The event a Replay button sends again (one event delivered automatically).
    replay: Option<String>,
    attempt: i64,
    status_code: Option<u16>,
    error: Option<String>,
    latency: String,
    excerpt: String,
    outcome: String,
    next_attempt: Option<Time>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> AttemptView {
        let replay = match (a.trigger.as_str(), a.event_ids.as_slice()) {
            ("delivery", [one]) => Some(one.clone()),
            _ => None,
        };
        AttemptView {
            at: Time(a.attempted_at),
            trigger: a.trigger,
            event_type: a.event_type,
            event_ids: a.event_ids,
            replay,
            attempt: a.attempt,
            status_code: a.status_code,
            error: a.error,
            latency: format!("{:.1}", a.latency_ms),
            excerpt: a.response_excerpt,
            outcome: a.outcome,
            next_attempt: a.next_attempt_at.map(Time),
        }
    }
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    event_id: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "webhooks_detail.html")]
struct DetailPage {
    shell: Shell,
    can_write: bool,
    w: WebhookView,
    /// The full URL, for admins (a viewer sees the host: a Slack URL is a credential).
    url: String,
    sourcetype: Option<String>,
    header_names: Vec<String>,
    auth_token_set: bool,
    intake_key_set: bool,
    batch_max: u32,
    batch_ms: u32,
    max_in_flight: u32,
    created_by: Option<String>,
    created_at: Time,
    updated_at: Time,
    previous_secret_until: Option<Time>,
    form: WebhookForm,
    event_id: String,
    attempts: Vec<AttemptView>,
    next: Option<String>,
    first_page: bool,
}

async fn detail(State(st): State<FirewallState>, console: Console, Path(id): Path<String>, Query(q): Query<DetailQuery>) -> PageResult {
    console.require(Permission::ReadConfig)?;
    let id = parse_webhook_id(&id)?;
    let tenant = console.principal.tenant_id;
    let w = st.webhooks.get(tenant, &id).await?;
    let event_id = q.event_id.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i64>().map_err(|_| vigie_core::http::bad_query("cursor", "follow the Older link of the delivery log"))?),
        None => None,
    };
    let limit = page_limit(Some(PAGE_SIZE));
    let rows = st.webhooks.attempts(tenant, &id, event_id.clone(), before, limit).await?;
    let page = Page::from_rows(rows, limit, |a| a.id.to_string());
    let event_id = event_id.unwrap_or_default();
    let next = page.next_cursor.map(|c| {
        format!("/webhooks/{id}?event_id={}&cursor={}#deliveries", vigie_web::form::encode(&event_id), vigie_web::form::encode(&c))
    });
    let can_write = console.can_write();
    let title = if w.description.is_empty() { host_of(&w.url) } else { w.description.chars().take(60).collect() };
    let shell = console.shell(format!("Webhook {title}"), "/webhooks");
    let page = DetailPage {
        shell,
        can_write,
        w: WebhookView::from(&w),
        url: if can_write { w.url.clone() } else { String::new() },
        sourcetype: w.sourcetype.clone(),
        header_names: w.headers.keys().cloned().collect(),
        auth_token_set: w.auth_token.is_some(),
        intake_key_set: w.intake_key.is_some(),
        batch_max: w.batch_max,
        batch_ms: w.batch_ms,
        max_in_flight: w.max_in_flight,
        created_by: w.created_by.clone(),
        created_at: Time(w.created_at),
        updated_at: Time(w.updated_at),
        previous_secret_until: w.previous_secret_expires_at.map(Time),
        form: WebhookForm::edit(&st.webhooks.settings().event_types, &w),
        event_id,
        attempts: page.items.into_iter().map(AttemptView::from).collect(),
        next,
        first_page: before.is_none(),
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "webhooks_test_result.html")]
struct TestFragment {
    webhook_id: String,
    success: bool,
    status_code: Option<u16>,
    error: Option<String>,
    latency: String,
    response_body: String,
    event_id: String,
}

/// The Test button: sends a `webhook.test` now through the webhook service (as
/// `POST /api/v1/webhooks/{id}/test` does) and answers the result as a fragment shown beside
/// the button. Errors are the API's JSON, which the script shows beside the button.
async fn test(State(st): State<FirewallState>, console: Console, Path(id): Path<String>) -> Result<Response, ApiError> {
    console.principal.require(Permission::Write)?;
    let id = parse_webhook_id(&id)?;
    let r = st.webhooks.test(&console.principal, &id).await?;
    Ok(vigie_web::fragment(&TestFragment {
        webhook_id: id,
        success: r.success,
        status_code: r.status_code,
        error: r.error,
        latency: format!("{:.1}", r.latency_ms),
        response_body: r.response_body,
        event_id: r.event_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn the_list_shows_only_the_host_of_a_url() {
        assert_eq!(host_of("https://hooks.slack.com/services/T0/B0/secret"), "hooks.slack.com");
        assert_eq!(host_of("http://127.0.0.1:8080/hook"), "127.0.0.1:8080");
    }
}
