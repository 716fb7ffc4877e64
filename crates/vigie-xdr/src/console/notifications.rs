//! Console pages: notifications — the channels (routing, masked destinations, the Test button,
//! a create form per kind), a channel's page (edit, delete, its deliveries) and the delivery
//! log with Retry. Read with `alerts_read`, changed and tested with `admin`, through the
//! notification API; secrets are write-only (the API never gives them back).
use super::{Console, PageError, PageResult};
use crate::keys::{AdminScope, AlertsRead, Scope};
use crate::notify::{self as api, Channel, ChannelKind, ChannelListParams, Notification, NotificationListParams};
use crate::state::XdrState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use vigie_core::http::{ApiError, ApiQuery};
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<XdrState>) -> Router<XdrState> {
    r.route("/notifications", get(overview))
        .route("/notifications/channels/{id}", get(channel_page))
        .route("/notifications/channels/{id}/test", post(test))
}

/// The severities a channel's routing takes, lowest first.
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// A channel as the pages show it.
struct ChannelRow {
    id: String,
    name: String,
    kind: &'static str,
    kind_label: &'static str,
    enabled: bool,
    min_severity: String,
    rules: Vec<String>,
    /// Where it delivers, secrets masked: a URL's host and last characters, an SMTP server.
    destination: String,
    /// What is set but never shown (a signing secret, a password).
    secrets: Vec<&'static str>,
    // E-mail settings, for the edit form.
    url_hint: String,
    host: String,
    port: String,
    tls: String,
    username: String,
    from: String,
    to: String,
    ca_pem: String,
    subject: String,
    body: String,
    html: String,
    created: Time,
    updated: Time,
}

fn kind_label(k: ChannelKind) -> &'static str {
    match k {
        ChannelKind::Slack => "Slack",
        ChannelKind::Teams => "Microsoft Teams",
        ChannelKind::Email => "E-mail",
        ChannelKind::Webhook => "Webhook",
    }
}

impl From<Channel> for ChannelRow {
    fn from(c: Channel) -> ChannelRow {
        let s = &c.settings;
        let text = |k: &str| match &s[k] {
            Value::String(v) => v.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let url_hint = text("url");
        let to: Vec<String> =
            s["to"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        let mut secrets = Vec::new();
        let destination = match c.kind {
            ChannelKind::Email => {
                if s["password_set"].as_bool() == Some(true) {
                    secrets.push("SMTP password");
                }
                let tls = match text("tls").as_str() {
                    "" => "STARTTLS".to_owned(),
                    t => t.to_uppercase(),
                };
                let port = text("port");
                format!(
                    "{}{} ({tls}) to {}",
                    text("host"),
                    if port.is_empty() { String::new() } else { format!(":{port}") },
                    if to.is_empty() { "the recipients a rule or playbook names".to_owned() } else { to.join(", ") }
                )
            }
            _ => {
                if s["secret_set"].as_bool() == Some(true) {
                    secrets.push("signing secret");
                }
                url_hint.clone()
            }
        };
        ChannelRow {
            kind: c.kind.as_str(),
            kind_label: kind_label(c.kind),
            enabled: c.enabled,
            min_severity: c.min_severity,
            rules: c.rules,
            destination,
            secrets,
            host: text("host"),
            port: text("port"),
            tls: text("tls"),
            username: text("username"),
            from: text("from"),
            to: to.join(", "),
            ca_pem: text("ca_pem"),
            url_hint,
            subject: c.templates.subject.unwrap_or_default(),
            body: c.templates.body.unwrap_or_default(),
            html: c.templates.html.unwrap_or_default(),
            created: Time(c.created_at),
            updated: Time(c.updated_at),
            id: c.id,
            name: c.name,
        }
    }
}

/// A notification of the delivery log, as a row shows it.
struct DeliveryRow {
    id: String,
    at: Time,
    channel_id: String,
    channel: String,
    kind: String,
    source: String,
    alert_id: Option<String>,
    subject: String,
    status: String,
    attempts: i64,
    next_attempt: Option<Time>,
    delivered: Option<Time>,
    error: Option<String>,
}

impl From<Notification> for DeliveryRow {
    fn from(n: Notification) -> DeliveryRow {
        DeliveryRow {
            id: n.id,
            at: Time(n.created_at),
            channel_id: n.channel_id,
            channel: n.channel,
            kind: n.kind,
            source: n.source,
            alert_id: n.alert_id,
            subject: n.subject,
            status: n.status,
            attempts: n.attempt_count,
            next_attempt: n.next_attempt_at.map(Time),
            delivered: n.delivered_at.map(Time),
            error: n.last_error,
        }
    }
}

#[derive(Deserialize, Default)]
struct LogQuery {
    status: Option<String>,
    channel: Option<String>,
    cursor: Option<String>,
}

/// The delivery log's page: its rows and the link to the next page.
async fn deliveries(
    st: &XdrState,
    console: &Console,
    channel: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    base: &str,
) -> Result<(Vec<DeliveryRow>, Option<String>), PageError> {
    let params = NotificationListParams { channel: channel.clone(), status: status.clone(), alert_id: None, limit: Some(50), cursor };
    let page = api::notifications_list(State(st.clone()), console.authorized::<AlertsRead>()?, ApiQuery(params)).await?.0;
    let next = page.next_cursor.map(|c| {
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut url = format!("{base}{sep}cursor={}", vigie_web::form::encode(&c));
        for (k, v) in [("status", &status), ("channel", &channel)] {
            if let Some(v) = v
                && !base.contains(&format!("{k}="))
            {
                url.push_str(&format!("&{k}={}", vigie_web::form::encode(v)));
            }
        }
        url.push_str("#log");
        url
    });
    Ok((page.items.into_iter().map(DeliveryRow::from).collect(), next))
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct OverviewPage {
    shell: Shell,
    channels: Vec<ChannelRow>,
    more_channels: bool,
    log: Vec<DeliveryRow>,
    next: Option<String>,
    status: String,
    channel: String,
    filtered: bool,
    can_write: bool,
    severities: [&'static str; 4],
}

async fn overview(State(st): State<XdrState>, console: Console, Query(q): Query<LogQuery>) -> PageResult {
    let auth = console.authorized::<AlertsRead>()?;
    let channels = api::channels_list(State(st.clone()), auth, ApiQuery(ChannelListParams { limit: Some(200), cursor: None })).await?.0;
    let status = q.status.filter(|s| !s.is_empty());
    let channel = q.channel.filter(|s| !s.is_empty());
    let cursor = q.cursor.filter(|s| !s.is_empty());
    let filtered = status.is_some() || channel.is_some() || cursor.is_some();
    let (log, next) = deliveries(&st, &console, channel.clone(), status.clone(), cursor, "/notifications").await?;
    let shell = console.shell("Notifications", "/notifications");
    Ok(vigie_web::page(
        StatusCode::OK,
        &OverviewPage {
            shell,
            more_channels: channels.next_cursor.is_some(),
            channels: channels.items.into_iter().map(ChannelRow::from).collect(),
            log,
            next,
            status: status.unwrap_or_default(),
            channel: channel.unwrap_or_default(),
            filtered,
            can_write: console.can(Scope::Admin),
            severities: SEVERITIES,
        },
    ))
}

#[derive(Deserialize, Default)]
struct ChannelQuery {
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "notifications_channel.html")]
struct ChannelPage {
    shell: Shell,
    c: ChannelRow,
    rules_text: String,
    log: Vec<DeliveryRow>,
    next: Option<String>,
    older: bool,
    filtered: bool,
    can_write: bool,
    severities: [&'static str; 4],
}

async fn channel_page(State(st): State<XdrState>, console: Console, Path(id): Path<String>, Query(q): Query<ChannelQuery>) -> PageResult {
    let auth = console.authorized::<AlertsRead>()?;
    let c = ChannelRow::from(api::channels_get(State(st.clone()), auth, Path(id.clone())).await?.0);
    let cursor = q.cursor.filter(|s| !s.is_empty());
    let base = format!("/notifications/channels/{}", vigie_web::form::encode(&c.id));
    let (log, next) = deliveries(&st, &console, Some(c.id.clone()), None, cursor.clone(), &base).await?;
    let shell = console.shell(format!("Channel {}", c.name), "/notifications");
    Ok(vigie_web::page(
        StatusCode::OK,
        &ChannelPage {
            shell,
            rules_text: c.rules.join("\n"),
            c,
            log,
            next,
            older: cursor.is_some(),
            filtered: cursor.is_some(),
            can_write: console.can(Scope::Admin),
            severities: SEVERITIES,
        },
    ))
}

#[derive(Template)]
#[template(path = "notifications_test.html")]
struct TestAnswer {
    channel_id: String,
    status: String,
    duration_ms: u64,
    http_status: Option<u16>,
    smtp_reply: Option<String>,
    error: Option<String>,
}

/// The Test button: sends a sample alert through the channel now, through the API's handler
/// (scope `admin`), and says how it went, as HTML beside the button.
async fn test(State(st): State<XdrState>, console: Console, Path(id): Path<String>) -> Result<Response, ApiError> {
    let auth = console.authorized::<AdminScope>().map_err(|PageError::Api(e)| e)?;
    let r = api::channels_test(State(st), auth, Path(id.clone())).await?.0;
    Ok(vigie_web::fragment(&TestAnswer {
        channel_id: id,
        status: r.status,
        duration_ms: r.duration_ms,
        http_status: r.http_status,
        smtp_reply: r.smtp_reply,
        error: r.error,
    }))
}
