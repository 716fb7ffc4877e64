//! Notifications: channels (Slack and Teams incoming webhooks, e-mail over SMTP, a generic
//! signed webhook), routing by severity, rule and space, message templates (minijinja), a
//! durable queue delivered with retries, and the delivery log.
//!
//! Who calls what: the responder (rule action `notify`) calls [`enqueue_for_alert`] inside its
//! write transaction; [`run`] is the delivery worker `serve` starts; playbook steps call
//! [`send_now`] (one immediate delivery, recorded in the log; the step does its own retries).
//! The API (`/api/v1/notifications…`): channels and the log are read with `alerts_read`;
//! channels are written, tested and deliveries retried with `admin`. Another space's channel
//! or notification is 404.
//!
//! Architecture invariant: no SQLite lock is held while sending — a delivery reads what it
//! needs, sends, then records the attempt in its own write.
use crate::state::XdrState;
use serde_json::{Value, json};
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::StoreError;
use vigie_core::clock::{from_micros, to_micros};
use vigie_core::secrets::{MasterKey, SecretBox};
use vigie_webhook::schedule::RetrySchedule;

mod api;
mod channel;
mod message;
mod queue;
mod send;
pub mod template;
mod worker;

pub use api::*;
pub use channel::{Channel, ChannelKind, ChannelPatch, CreatedChannel, NewChannel, SettingsInput, SmtpTls, Templates, mask_url};
pub use message::{Message, sample_context};
pub use queue::enqueue_for_alert;
pub use worker::{LOG_RETENTION, prune_log, run};

/// The default delays before each attempt: at once, then 10 s, 1 min, 5 min, 30 min, 2 h
/// (each within ±20 %).
pub const DEFAULT_RETRY_DELAYS: &[Duration] = &[
    Duration::ZERO,
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(1800),
    Duration::from_secs(7200),
];

/// How notifications are delivered.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// The delay before each attempt (the first is normally zero); tests shrink it to
    /// milliseconds.
    pub retry_delays: Vec<Duration>,
    /// Each delay is drawn within ± this fraction of it.
    pub jitter: f64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// One attempt's limit (connect to last byte; an SMTP conversation whole).
    pub timeout: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions { retry_delays: DEFAULT_RETRY_DELAYS.to_vec(), jitter: 0.2, concurrency: 16, timeout: Duration::from_secs(15) }
    }
}

/// Labels of the delivery counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct DeliveryLabels {
    /// slack | teams | email | webhook.
    pub kind: String,
    /// succeeded | retrying | failed.
    pub outcome: String,
}

/// What the notification code shares: the sealer of channel secrets, the HTTP client, the
/// retry schedule and the delivery counter.
pub struct Notifier {
    pub(crate) sealer: SecretBox,
    pub(crate) http: vigie_webhook::client::Client,
    pub(crate) schedule: RetrySchedule,
    pub(crate) concurrency: usize,
    pub(crate) timeout: Duration,
    /// Whether channel URLs may point at private and loopback addresses.
    pub allow_private: bool,
    deliveries: prometheus_client::metrics::family::Family<DeliveryLabels, prometheus_client::metrics::counter::Counter>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("allow_private", &self.allow_private).field("concurrency", &self.concurrency).finish()
    }
}

impl Notifier {
    /// The notifier of an XDR: channel secrets sealed under a key derived from `key`; its
    /// counter registered in `metrics`.
    pub fn new(
        key: &MasterKey,
        opts: &NotifyOptions,
        allow_private: bool,
        metrics: &vigie_core::metrics::Metrics,
    ) -> Result<Notifier, StoreError> {
        let schedule = RetrySchedule::new(opts.retry_delays.clone(), opts.jitter, Duration::MAX)
            .map_err(|e| StoreError::Invalid(format!("the notification retry schedule: {e}")))?;
        let client_opts = vigie_webhook::client::ClientOptions {
            timeout: opts.timeout,
            allow_private,
            user_agent: format!("Vigie-Notifications/{}", env!("CARGO_PKG_VERSION")),
            trusted: Vec::new(),
        };
        let http = vigie_webhook::client::Client::new(&client_opts).map_err(StoreError::Invalid)?;
        let deliveries = prometheus_client::metrics::family::Family::default();
        metrics.register("notification_deliveries", "Notification delivery attempts, by channel kind and outcome", deliveries.clone());
        Ok(Notifier {
            sealer: SecretBox::new(key, "xdr-channel-secrets"),
            http,
            schedule,
            concurrency: opts.concurrency.max(1),
            timeout: opts.timeout,
            allow_private,
            deliveries,
        })
    }

    /// One delivery attempt happened: logged (never with a secret) and counted.
    fn delivered(&self, kind: &str, id: &str, a: &send::Attempt, next: queue::Next) {
        let outcome = match next {
            queue::Next::Succeeded => "succeeded",
            queue::Next::Retry(_) => "retrying",
            queue::Next::Failed => "failed",
        };
        self.deliveries.get_or_create(&DeliveryLabels { kind: kind.to_owned(), outcome: outcome.to_owned() }).inc();
        let ms = a.duration.as_millis() as u64;
        if a.ok {
            tracing::debug!(notification = id, kind, duration_ms = ms, "notification delivered");
        } else {
            tracing::warn!(notification = id, kind, outcome, duration_ms = ms, error = %a.summary(), "notification delivery failed");
        }
    }
}

/// Why a direct notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No channel to send through.
    #[error("{0}")]
    NoChannel(String),
    /// A recipient is not an e-mail address.
    #[error("{0:?} is not an e-mail address")]
    BadAddress(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The channel was tried and the delivery failed (recorded in the log as `id`).
    #[error("the notification through channel {channel:?} failed: {error}")]
    Failed {
        /// The notification's id in the delivery log.
        id: String,
        /// The channel.
        channel: String,
        /// What went wrong.
        error: String,
        /// Whether trying again may help.
        retryable: bool,
    },
}

impl NotifyError {
    /// Whether trying again later may succeed (a network error, a 5xx; not a missing channel).
    pub fn retryable(&self) -> bool {
        match self {
            NotifyError::Failed { retryable, .. } => *retryable,
            NotifyError::Store(e) => !matches!(e, StoreError::NotFound | StoreError::Invalid(_)),
            _ => false,
        }
    }
}

/// A message to send at once (a playbook's notify or create_task step).
#[derive(Debug, Clone, Default)]
pub struct Direct {
    /// The channel by name. With `to`, it must be an e-mail channel (default: the space's first
    /// enabled e-mail channel); without `to`, it is required and sends to its own recipients.
    pub channel: Option<String>,
    /// E-mail recipients (instead of the channel's).
    pub to: Vec<String>,
    /// The subject, already rendered (used as is); default: the channel's subject template
    /// over `context`.
    pub subject: Option<String>,
    /// The body, already rendered (used as is); default: the channel's body template over
    /// `context`.
    pub body: Option<String>,
    /// What the channel's templates see (the alert context, or the playbook's trigger).
    pub context: Value,
    /// An iCalendar invitation (METHOD:REQUEST) attached to the e-mail as `invite.ics`.
    pub ical: Option<String>,
}

/// Sends `msg` now through a channel of space `space_no` and records it in the delivery log:
/// `{"notification_id", "channel", "kind", "status": "succeeded", "to", "duration_ms",
/// "http_status", "smtp_reply"}`, or [`NotifyError::Failed`] (recorded too) when the channel
/// refused it or could not be reached. No retries here: the caller decides.
pub async fn send_now(st: &XdrState, space_no: i64, msg: Direct) -> Result<Value, NotifyError> {
    for t in &msg.to {
        if !channel::is_mailbox(t) {
            return Err(NotifyError::BadAddress(t.chars().take(200).collect()));
        }
    }
    let (name, wants_email) = (msg.channel.clone(), !msg.to.is_empty());
    let ch = st
        .store
        .read(move |c| -> Result<Option<channel::ChannelRow>, StoreError> {
            match &name {
                Some(n) => channel::by_name(c, space_no, n),
                None if wants_email => Ok(channel::enabled(c, space_no)?.into_iter().find(|ch| ch.kind == ChannelKind::Email)),
                None => Ok(None),
            }
        })
        .await?;
    let ch = match (ch, &msg.channel) {
        (Some(ch), _) if wants_email && ch.kind != ChannelKind::Email => {
            return Err(NotifyError::NoChannel(format!(
                "channel {:?} is a {} channel; e-mail addresses need an e-mail channel",
                ch.name,
                ch.kind.as_str()
            )));
        }
        (Some(ch), _) if !ch.enabled => return Err(NotifyError::NoChannel(format!("channel {:?} is disabled", ch.name))),
        (Some(ch), _) => ch,
        (None, Some(n)) => return Err(NotifyError::NoChannel(format!("no notification channel named {n:?} in this space"))),
        (None, None) if wants_email => {
            return Err(NotifyError::NoChannel("this space has no enabled e-mail channel to send through; create one".into()));
        }
        (None, None) => return Err(NotifyError::NoChannel("name a channel, or give e-mail addresses".into())),
    };
    let mut m = message::render(&ch, &msg.context, msg.subject, msg.body);
    if ch.kind == ChannelKind::Email {
        m.to = msg.to;
        m.ical = msg.ical;
    }
    let alert_id = msg.context.pointer("/alert/id").and_then(Value::as_str).map(str::to_owned);
    let (id, a) = deliver_once(st, &ch, m.clone(), queue::SOURCE_DIRECT, alert_id).await?;
    if a.ok {
        Ok(result(&id, &ch, &a, &m))
    } else {
        Err(NotifyError::Failed { id, channel: ch.name.clone(), error: a.summary(), retryable: !a.permanent })
    }
}

/// The result of one immediate delivery, as `send_now` and the test call return it.
fn result(id: &str, ch: &channel::ChannelRow, a: &send::Attempt, m: &Message) -> Value {
    let to = if m.to.is_empty() && ch.kind == ChannelKind::Email { ch.plain.to.clone() } else { m.to.clone() };
    json!({
        "notification_id": id,
        "channel": ch.name,
        "kind": ch.kind.as_str(),
        "status": if a.ok { "succeeded" } else { "failed" },
        "to": to,
        "duration_ms": a.duration.as_millis() as u64,
        "http_status": a.http_status,
        "smtp_reply": a.smtp_reply,
        "error": a.error,
    })
}

/// Sends `m` through `ch` once and records it (a notification with one attempt).
async fn deliver_once(
    st: &XdrState,
    ch: &channel::ChannelRow,
    m: Message,
    source: &'static str,
    alert_id: Option<String>,
) -> Result<(String, send::Attempt), StoreError> {
    let n = &st.notify;
    let now = st.clock.now();
    let id = st.ids.at(now).to_string();
    let at = to_micros(now);
    let a = match ch.secrets(&n.sealer) {
        Ok(secrets) => send::send(n, ch, &secrets, &m, &id, at / 1_000_000).await,
        Err(e) => send::Attempt { error: Some(e.to_string()), permanent: true, ..send::Attempt::default() },
    };
    let next = if a.ok { queue::Next::Succeeded } else { queue::Next::Failed };
    n.delivered(ch.kind.as_str(), &id, &a, next);
    let (row, rec_id, rec) = (ch.clone(), id.clone(), a.clone());
    let done = to_micros(st.clock.now());
    st.store
        .write(move |c| {
            queue::insert(c, &rec_id, &row, source, alert_id.as_deref(), &m, "pending", None, at)?;
            queue::record(c, &rec_id, 1, at, &rec, next, done)
        })
        .await?;
    Ok((id, a))
}

/// The notification routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r.routes(routes!(api::channels_create, api::channels_list))
        .routes(routes!(api::channels_get, api::channels_update, api::channels_delete))
        .routes(routes!(api::channels_test))
        .routes(routes!(api::notifications_list))
        .routes(routes!(api::notifications_get))
        .routes(routes!(api::notifications_retry))
}

fn time(us: Option<i64>) -> Option<chrono::DateTime<chrono::Utc>> {
    us.map(from_micros)
}
