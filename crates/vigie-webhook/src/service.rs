//! The webhook service: webhooks stored with their secrets sealed, the test call, the delivery
//! log and replays. The dispatcher ([`crate::dispatcher`]) delivers what the outbox holds.
use crate::client::{Client, ClientOptions, Outcome};
use crate::format::{Format, FormatOptions};
use crate::model::{
    ATTEMPT_COLS, Attempt, HIDDEN, MAX_WEBHOOKS, NewWebhook, ReplayRequest, ReplayResult, Secrets, Spec, Stored, TestResult, Webhook,
    WebhookPatch, WebhookWithSecret, check_events, check_headers, check_secret_value, check_settings, cols, from_row,
};
use crate::schedule::RetrySchedule;
use crate::signature::{SigningSecret, sign};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;
use vigie_core::auth::Principal;
use vigie_core::clock::{SharedClock, to_micros};
use vigie_core::http::{ApiError, FieldError};
use vigie_core::ids::{IdGen, max_v7_at, min_v7_at};
use vigie_core::secrets::{MasterKey, SecretBox};
use vigie_core::{Store, StoreError};

/// A test delivery.
pub const WEBHOOK_TEST: &str = "webhook.test";
/// A webhook was disabled by its receiver (410) or by five days of failure.
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
/// The most events one range replay queues.
pub const MAX_REPLAY: i64 = 100_000;

/// Settings of the webhook service.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// When failed deliveries are tried again, and when a failing webhook is disabled.
    pub schedule: RetrySchedule,
    /// The HTTP client's timeout and whether private destinations are allowed.
    pub client: ClientOptions,
    /// The event types a webhook may subscribe to.
    pub event_types: Vec<String>,
    /// The `source` of the events the service emits itself (`webhook.test`, `webhook.disabled`).
    pub event_source: String,
    /// How long a rotated-out signing secret keeps signing beside its successor.
    pub rotation_overlap: Duration,
    /// How long a dispatcher that is shutting down waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Attempts, and deliveries that are finished (delivered or failed), are kept this long.
    pub log_retention: Duration,
    /// How often the log is pruned.
    pub prune_every: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            schedule: RetrySchedule::default(),
            client: ClientOptions::default(),
            event_types: vec![WEBHOOK_TEST.into(), WEBHOOK_DISABLED.into()],
            event_source: "vigie".into(),
            rotation_overlap: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::from_secs(2),
            log_retention: Duration::from_secs(30 * 86_400),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// The webhook service; cheap to clone.
#[derive(Clone)]
pub struct Webhooks(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) clock: SharedClock,
    pub(crate) ids: Arc<IdGen>,
    pub(crate) settings: WebhookSettings,
    pub(crate) client: Client,
    pub(crate) sealer: SecretBox,
    /// Bumped after every committed change to a webhook; the dispatcher reloads on change.
    pub(crate) generation: AtomicU64,
    /// Wakes the dispatcher (a change, a replay).
    pub(crate) wake: Notify,
    /// Counters and histograms of deliveries.
    pub(crate) stats: WebhookStats,
}

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct OutcomeLabel {
    /// delivered, retrying, failed, disabled or test.
    pub outcome: &'static str,
}

/// The dispatcher's metrics.
#[derive(Clone)]
pub(crate) struct WebhookStats {
    pub(crate) requests: prometheus_client::metrics::family::Family<OutcomeLabel, prometheus_client::metrics::counter::Counter>,
    pub(crate) events_delivered: prometheus_client::metrics::counter::Counter,
    pub(crate) request_seconds: prometheus_client::metrics::histogram::Histogram,
    pub(crate) delivery_lag_seconds: prometheus_client::metrics::histogram::Histogram,
}

impl WebhookStats {
    fn register(metrics: &vigie_core::metrics::Metrics) -> WebhookStats {
        use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
        let s = WebhookStats {
            requests: Default::default(),
            events_delivered: Default::default(),
            // 1 ms to about 20 s.
            request_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 1 ms to about 1.5 days: a retried event's lag spans the retry schedule.
            delivery_lag_seconds: Histogram::new(exponential_buckets(0.001, 3.0, 18)),
        };
        metrics.register("webhook_requests", "Requests made to webhooks, by outcome", s.requests.clone());
        metrics.register("webhook_events_delivered", "Events delivered to webhooks (acknowledged with 2xx)", s.events_delivered.clone());
        metrics.register(
            "webhook_request_duration_seconds",
            "Time from sending a webhook request to the end of its answer",
            s.request_seconds.clone(),
        );
        metrics.register(
            "webhook_delivery_lag_seconds",
            "Time from an event's commit to its successful delivery, retries included",
            s.delivery_lag_seconds.clone(),
        );
        s
    }
}

fn store_err(what: &'static str) -> impl FnOnce(StoreError) -> ApiError {
    ApiError::from_store(what)
}

/// The text form of a webhook id: `whk_` and 32 hex digits.
pub fn webhook_id(id: Uuid) -> String {
    format!("whk_{}", id.simple())
}

/// Reads a webhook id from a path (404 for anything that cannot be one).
pub fn parse_webhook_id(raw: &str) -> Result<String, ApiError> {
    let hex = raw.strip_prefix("whk_").ok_or_else(|| ApiError::not_found("webhook"))?;
    let id = Uuid::try_parse(hex).map_err(|_| ApiError::not_found("webhook"))?;
    Ok(webhook_id(id))
}

impl Webhooks {
    /// The service over `store` (which must have run [`crate::MIGRATIONS`] after the outbox's).
    pub fn new(
        store: Store,
        clock: SharedClock,
        ids: Arc<IdGen>,
        key: &MasterKey,
        settings: WebhookSettings,
        metrics: &vigie_core::metrics::Metrics,
    ) -> Result<Webhooks, String> {
        let client = Client::new(&settings.client)?;
        Ok(Webhooks(Arc::new(Inner {
            store,
            clock,
            ids,
            client,
            sealer: SecretBox::new(key, "webhook-secrets"),
            settings,
            generation: AtomicU64::new(0),
            wake: Notify::new(),
            stats: WebhookStats::register(metrics),
        })))
    }

    /// The settings.
    pub fn settings(&self) -> &WebhookSettings {
        &self.0.settings
    }

    pub(crate) fn seal(&self, id: &str, s: &Secrets) -> Result<String, StoreError> {
        Ok(self.0.sealer.seal(&serde_json::to_vec(s)?, id.as_bytes()))
    }

    pub(crate) fn unseal(&self, id: &str, sealed: &str) -> Result<Secrets, StoreError> {
        let plain =
            self.0.sealer.open(sealed, id.as_bytes()).map_err(|e| {
                StoreError::Commit(format!("the secrets of webhook {id} cannot be opened ({e}); was the master key changed?"))
            })?;
        Ok(serde_json::from_slice(&plain)?)
    }

    /// Tells the dispatcher that webhooks changed (after the change committed).
    fn changed(&self) {
        self.0.generation.fetch_add(1, Ordering::Release);
        self.0.wake.notify_one();
    }

    async fn check_url(&self, url: &str, errors: &mut Vec<FieldError>, system: bool) {
        if url.len() > 2048 {
            errors.push(FieldError::new("url", "at most 2048 characters"));
            return;
        }
        // The trusted addresses (the all-in-one server's own XDR) are for the webhook the
        // server creates itself, not for any tenant's.
        let checked =
            if system { self.0.client.check_url(url) } else { crate::destination::check_url(url, self.0.client.allows_private()) };
        match checked {
            Err(e) => errors.push(FieldError::new("url", e.to_string())),
            Ok(u) => {
                // A name that resolves now to a private address is refused now; one that does
                // not resolve is accepted (the delivery log will say so). The client checks
                // again at every connection.
                if let Some(url::Host::Domain(host)) = u.host()
                    && !self.0.client.allows_private()
                    && let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(3), tokio::net::lookup_host((host, 443))).await
                {
                    let ips: Vec<_> = addrs.map(|a| a.ip()).collect();
                    if let Err(e) = crate::destination::check_addresses(&ips, false)
                        && !ips.is_empty()
                    {
                        errors.push(FieldError::new("url", e.to_string()));
                    }
                }
            }
        }
    }

    /// Creates a webhook and its signing secret.
    pub async fn create(&self, by: &Principal, new: NewWebhook) -> Result<WebhookWithSecret, ApiError> {
        self.create_as(by, new, false).await
    }

    /// Creates a webhook the server itself needs (the all-in-one server's webhook to its own
    /// XDR): it may point at the client's trusted addresses.
    pub async fn create_system(&self, by: &Principal, new: NewWebhook) -> Result<WebhookWithSecret, ApiError> {
        self.create_as(by, new, true).await
    }

    async fn create_as(&self, by: &Principal, new: NewWebhook, system: bool) -> Result<WebhookWithSecret, ApiError> {
        let mut errors = Vec::new();
        let url = new.url.trim().to_owned();
        self.check_url(&url, &mut errors, system).await;
        let events = check_events(&new.events, &self.known_events(), &mut errors);
        let headers: Vec<(String, String)> = new.headers.unwrap_or_default().into_iter().collect();
        let auth_token = new.auth_token.filter(|t| !t.is_empty());
        let intake_key = new.intake_key.filter(|t| !t.is_empty());
        check_headers(&headers, auth_token.is_some(), &mut errors);
        if headers.iter().any(|(_, v)| v == HIDDEN) {
            errors.push(FieldError::new("headers", format!("{HIDDEN} stands for a stored value; a new webhook has none")));
        }
        if let Some(t) = &auth_token {
            check_secret_value("auth_token", t, &mut errors);
        }
        if let Some(k) = &intake_key {
            check_secret_value("intake_key", k, &mut errors);
        }
        let description = new.description.unwrap_or_default();
        let format = check_settings(
            &description,
            new.format.as_deref().unwrap_or("standard"),
            new.sourcetype.as_deref(),
            new.batch_max.unwrap_or(crate::model::DEFAULT_BATCH_MAX),
            new.batch_ms.unwrap_or(crate::model::DEFAULT_BATCH_MS),
            new.max_in_flight.unwrap_or(crate::model::DEFAULT_MAX_IN_FLIGHT),
            intake_key.is_some(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let spec = Spec {
            url,
            events,
            active: new.active.unwrap_or(true),
            description,
            format,
            sourcetype: new.sourcetype,
            batch_max: if format.batches() { new.batch_max.unwrap_or(crate::model::DEFAULT_BATCH_MAX) } else { 1 },
            batch_ms: new.batch_ms.unwrap_or(crate::model::DEFAULT_BATCH_MS),
            max_in_flight: new.max_in_flight.unwrap_or(crate::model::DEFAULT_MAX_IN_FLIGHT),
        };
        let secret = SigningSecret::generate();
        let now = self.0.clock.now();
        let id = webhook_id(self.0.ids.at(now));
        let secrets = Secrets { secret: secret.expose(), previous: None, headers, auth_token, intake_key };
        let sealed = self.seal(&id, &secrets).map_err(ApiError::from)?;
        let tenant = by.tenant_id.to_string();
        let actor = by.label();
        let (id2, t2) = (id.clone(), tenant.clone());
        self.0
            .store
            .write(move |c| {
                let n: i64 = c.query_row("SELECT COUNT(*) FROM webhooks WHERE tenant_id = ?1", [&t2], |r| r.get(0))?;
                if n >= MAX_WEBHOOKS {
                    return Err(StoreError::Conflict(format!(
                        "the limit of {MAX_WEBHOOKS} webhooks per tenant is reached; delete one first"
                    )));
                }
                insert(c, &id2, &t2, &spec, &secrets, &sealed, &actor, to_micros(now))
            })
            .await
            .map_err(store_err("webhook"))?;
        self.changed();
        let webhook = self.get(by.tenant_id, &id).await?;
        Ok(WebhookWithSecret { webhook, signing_secret: secret.expose() })
    }

    fn known_events(&self) -> Vec<&str> {
        self.0.settings.event_types.iter().map(String::as_str).collect()
    }

    /// Lists a tenant's webhooks by id, after `after`.
    pub async fn list(&self, tenant: Uuid, active: Option<bool>, after: Option<String>, limit: usize) -> Result<Vec<Webhook>, ApiError> {
        self.0
            .store
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {} FROM webhooks WHERE tenant_id = ?1 AND (?2 IS NULL OR active = ?2) AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4",
                    cols(true)
                ))?;
                let rows = stmt.query_map(params![tenant.to_string(), active, after, limit as i64 + 1], from_row)?;
                rows.map(|r| r.map(|s| s.webhook).map_err(StoreError::from)).collect::<Result<Vec<_>, StoreError>>()
            })
            .await
            .map_err(store_err("webhook"))
    }

    /// One webhook.
    pub async fn get(&self, tenant: Uuid, id: &str) -> Result<Webhook, ApiError> {
        Ok(self.stored(tenant, id).await?.webhook)
    }

    pub(crate) async fn stored(&self, tenant: Uuid, id: &str) -> Result<Stored, ApiError> {
        let id = id.to_owned();
        self.0.store.read(move |c| get_in(c, &tenant.to_string(), &id)).await.map_err(store_err("webhook"))
    }

    /// Changes a webhook.
    pub async fn update(&self, by: &Principal, id: &str, patch: WebhookPatch) -> Result<Webhook, ApiError> {
        self.update_as(by, id, patch, false).await
    }

    /// Changes a webhook the server itself manages (see [`Webhooks::create_system`]).
    pub async fn update_system(&self, by: &Principal, id: &str, patch: WebhookPatch) -> Result<Webhook, ApiError> {
        self.update_as(by, id, patch, true).await
    }

    async fn update_as(&self, by: &Principal, id: &str, patch: WebhookPatch, system: bool) -> Result<Webhook, ApiError> {
        // The secrets are one sealed document: a change is written only over the version it was
        // made from, and made again from the new one if another change won the race.
        for _ in 0..RACE_RETRIES {
            if let Some(w) = self.update_once(by, id, patch.clone(), system).await? {
                return Ok(w);
            }
        }
        Err(ApiError::conflict("the webhook is being changed by someone else; try again"))
    }

    async fn update_once(&self, by: &Principal, id: &str, patch: WebhookPatch, system: bool) -> Result<Option<Webhook>, ApiError> {
        let current = self.stored(by.tenant_id, id).await?;
        let read_sealed = current.sealed.clone();
        let old = current.webhook.clone();
        let mut secrets = self.unseal(id, &current.sealed).map_err(ApiError::from)?;
        let mut errors = Vec::new();
        let url = match patch.url {
            Some(u) => {
                let u = u.trim().to_owned();
                // The URL already stored was checked when it was set (a system webhook's loopback
                // address included); a form that sends it back unchanged is not refused for it.
                if u != old.url {
                    self.check_url(&u, &mut errors, system).await;
                }
                u
            }
            None => old.url.clone(),
        };
        let events = match &patch.events {
            Some(e) => check_events(e, &self.known_events(), &mut errors),
            None => old.events.clone(),
        };
        if let Some(t) = patch.auth_token
            && t != HIDDEN
        {
            check_secret_value("auth_token", &t, &mut errors);
            secrets.auth_token = Some(t).filter(|t| !t.is_empty());
        }
        if let Some(k) = patch.intake_key
            && k != HIDDEN
        {
            check_secret_value("intake_key", &k, &mut errors);
            secrets.intake_key = Some(k).filter(|k| !k.is_empty());
        }
        if let Some(h) = patch.headers {
            let mut next = Vec::with_capacity(h.len());
            for (name, value) in h {
                if value == HIDDEN {
                    match secrets.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                        Some((_, v)) => next.push((name, v.clone())),
                        None => errors.push(FieldError::new(
                            format!("headers.{name}"),
                            format!("{HIDDEN} stands for a stored value; this header has none"),
                        )),
                    }
                } else {
                    next.push((name, value));
                }
            }
            secrets.headers = next;
        }
        check_headers(&secrets.headers, secrets.auth_token.is_some(), &mut errors);
        let description = patch.description.unwrap_or(old.description);
        let format_name = patch.format.unwrap_or(old.format);
        let sourcetype = patch.sourcetype.or(old.sourcetype);
        let batch_max = patch.batch_max.unwrap_or(old.batch_max.max(1));
        let batch_ms = patch.batch_ms.unwrap_or(old.batch_ms);
        let max_in_flight = patch.max_in_flight.unwrap_or(old.max_in_flight);
        let format = check_settings(
            &description,
            &format_name,
            sourcetype.as_deref(),
            batch_max,
            batch_ms,
            max_in_flight,
            secrets.intake_key.is_some(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        // `active` is written only when the change sets it: the dispatcher may have disabled the
        // webhook since it was read (a 410), and an edit of its description must not undo that.
        let active = patch.active.unwrap_or(old.active);
        let patch_active = patch.active;
        let reenabled = patch.active == Some(true);
        let spec = Spec {
            url,
            events,
            active,
            description,
            format,
            sourcetype,
            batch_max: if format.batches() { batch_max } else { 1 },
            batch_ms,
            max_in_flight,
        };
        let sealed = self.seal(id, &secrets).map_err(ApiError::from)?;
        let now = to_micros(self.0.clock.now());
        let (id2, tenant) = (id.to_owned(), by.tenant_id.to_string());
        let written = self
            .0
            .store
            .write(move |c| {
                let n = c.execute(
                    "UPDATE webhooks SET url = ?3, events = ?4, active = COALESCE(?18, active), description = ?6, format = ?7, sourcetype = ?8, batch_max = ?9, \
                     batch_ms = ?10, max_in_flight = ?11, header_names = ?12, has_auth_token = ?13, sealed = ?14, updated_at = ?15, \
                     disabled_reason = CASE WHEN ?16 AND active = 0 THEN NULL ELSE disabled_reason END, \
                     consecutive_failures = CASE WHEN ?16 AND active = 0 THEN 0 ELSE consecutive_failures END, \
                     failing_since = CASE WHEN ?16 AND active = 0 THEN NULL ELSE failing_since END, \
                     active_since_seq = CASE WHEN ?16 AND active = 0 THEN (SELECT COALESCE(MAX(seq), 0) FROM outbox) ELSE active_since_seq END \
                     WHERE id = ?1 AND tenant_id = ?2 AND sealed = ?17",
                    rusqlite::params_from_iter(row_values(&id2, &tenant, &spec, &secrets, sealed)?.into_iter().chain([
                        now.into(),
                        i64::from(reenabled).into(),
                        read_sealed.into(),
                        patch_active.map(i64::from).into(),
                    ])),
                )?;
                won_race(c, n, &tenant, &id2)
            })
            .await
            .map_err(store_err("webhook"))?;
        if !written {
            return Ok(None);
        }
        self.changed();
        self.get(by.tenant_id, id).await.map(Some)
    }

    /// Deletes a webhook, its pending deliveries and its log.
    pub async fn delete(&self, by: &Principal, id: &str) -> Result<(), ApiError> {
        let (id, tenant, id_owned) = (id.to_owned(), by.tenant_id.to_string(), id.to_owned());
        self.0
            .store
            .write(move |c| {
                let n = c.execute("DELETE FROM webhooks WHERE tenant_id = ?1 AND id = ?2", params![tenant, id])?;
                if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
            })
            .await
            .map_err(store_err("webhook"))?;
        self.changed();
        // Its deliveries and log go in chunks, off the request (the hourly pruning finishes the
        // job should this be cut short).
        let (svc, id) = (self.clone(), id_owned);
        tokio::spawn(async move {
            if let Err(e) = crate::dispatcher::purge(&svc, &id).await {
                tracing::warn!(webhook = %id, error = %e, "the log of a deleted webhook could not be deleted yet; pruning retries");
            }
        });
        Ok(())
    }

    /// Replaces the signing secret; the old one keeps signing beside it for the rotation
    /// overlap (24 h), so receivers can switch without losing a delivery.
    pub async fn rotate_secret(&self, by: &Principal, id: &str) -> Result<WebhookWithSecret, ApiError> {
        for _ in 0..RACE_RETRIES {
            if let Some(w) = self.rotate_once(by, id).await? {
                return Ok(w);
            }
        }
        Err(ApiError::conflict("the webhook is being changed by someone else; try again"))
    }

    async fn rotate_once(&self, by: &Principal, id: &str) -> Result<Option<WebhookWithSecret>, ApiError> {
        let current = self.stored(by.tenant_id, id).await?;
        let read_sealed = current.sealed.clone();
        let mut secrets = self.unseal(id, &current.sealed).map_err(ApiError::from)?;
        let fresh = SigningSecret::generate();
        secrets.previous = Some(std::mem::replace(&mut secrets.secret, fresh.expose()));
        let sealed = self.seal(id, &secrets).map_err(ApiError::from)?;
        let now = self.0.clock.now();
        let until = to_micros(now) + self.0.settings.rotation_overlap.as_micros() as i64;
        let (id2, tenant) = (id.to_owned(), by.tenant_id.to_string());
        let written = self
            .0
            .store
            .write(move |c| {
                let n = c.execute(
                    "UPDATE webhooks SET sealed = ?3, previous_expires_at = ?4, updated_at = ?5 WHERE tenant_id = ?1 AND id = ?2 AND sealed = ?6",
                    params![tenant, id2, sealed, until, to_micros(now), read_sealed],
                )?;
                won_race(c, n, &tenant, &id2)
            })
            .await
            .map_err(store_err("webhook"))?;
        if !written {
            return Ok(None);
        }
        self.changed();
        Ok(Some(WebhookWithSecret { webhook: self.get(by.tenant_id, id).await?, signing_secret: fresh.expose() }))
    }

    /// Sends a `webhook.test` event now (active or not) and reports the answer; the attempt is
    /// logged.
    pub async fn test(&self, by: &Principal, id: &str) -> Result<TestResult, ApiError> {
        let stored = self.stored(by.tenant_id, id).await?;
        let endpoint = crate::dispatcher::Endpoint::from_stored(self, &stored).map_err(ApiError::from)?;
        let now = self.0.clock.now();
        let event_id = crate::outbox::event_id(self.0.ids.at(now));
        let payload = serde_json::to_string(&json!({
            "id": event_id,
            "type": WEBHOOK_TEST,
            "timestamp": now,
            "source": self.0.settings.event_source,
            "tenant_id": by.tenant_id,
            "data": {"webhook_id": id, "message": "A test event from Vigie: this webhook is reachable."},
        }))
        .map_err(ApiError::internal)?;
        let req = endpoint
            .request(&[(event_id.as_str(), payload.as_str())], now.timestamp())
            .map_err(|e| ApiError::validation(vec![FieldError::new("format", e.to_string())]))?;
        let outcome = self.0.client.send(req).await;
        self.0.stats.requests.get_or_create(&OutcomeLabel { outcome: "test" }).inc();
        let (id2, tenant, eid) = (id.to_owned(), stored.tenant_id.clone(), event_id.clone());
        let logged = outcome.clone();
        self.0
            .store
            .write(move |c| {
                log_attempt(c, &id2, &tenant, to_micros(now), "test", &eid, &[eid.as_str()], WEBHOOK_TEST, 1, &logged, "test", None)
            })
            .await
            .map_err(store_err("webhook"))?;
        Ok(TestResult {
            success: outcome.success(),
            status_code: outcome.status,
            error: outcome.error,
            latency_ms: outcome.latency.as_secs_f64() * 1000.0,
            response_body: outcome.excerpt,
            event_id,
        })
    }

    /// The delivery log, newest first.
    pub async fn attempts(
        &self,
        tenant: Uuid,
        id: &str,
        event_id: Option<String>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Attempt>, ApiError> {
        self.stored(tenant, id).await?;
        let id = id.to_owned();
        self.0
            .store
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {ATTEMPT_COLS} FROM webhook_attempts WHERE webhook_id = ?1 AND (?2 IS NULL OR id < ?2) \
                     AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(event_ids) WHERE value = ?3)) ORDER BY id DESC LIMIT ?4"
                ))?;
                let rows = stmt.query_map(params![id, before, event_id, limit as i64 + 1], crate::model::attempt_from_row)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
            })
            .await
            .map_err(store_err("webhook"))
    }

    /// Queues events again: one, or every subscribed event of a range (at most
    /// [`MAX_REPLAY`]). Their deliveries restart from the first attempt.
    pub async fn replay(&self, by: &Principal, id: &str, req: ReplayRequest) -> Result<ReplayResult, ApiError> {
        let stored = self.stored(by.tenant_id, id).await?;
        if !stored.webhook.active {
            return Err(ApiError::conflict("the webhook is disabled; enable it (PATCH active: true) before replaying"));
        }
        let now = to_micros(self.0.clock.now());
        let due = now + self.0.settings.schedule.first().as_micros() as i64;
        let (id2, tenant) = (id.to_owned(), stored.tenant_id.clone());
        let events = serde_json::to_string(&stored.webhook.events).map_err(ApiError::internal)?;
        let queued = match (req.event_id, req.from, req.to) {
            (Some(event), None, None) => self
                .0
                .store
                .write(move |c| {
                    let n = c.execute(
                        &format!("{REPLAY_INSERT_FROM} outbox o WHERE o.tenant_id = ?2 AND o.id = ?5 {REPLAY_UPSERT}"),
                        params![id2, tenant, due, now, event, req.failed_only],
                    )?;
                    if n == 0 {
                        let exists: Option<i64> = c
                            .query_row("SELECT seq FROM outbox WHERE tenant_id = ?1 AND id = ?2", params![tenant, event], |r| r.get(0))
                            .optional()?;
                        if exists.is_none() {
                            return Err(StoreError::NotFound);
                        }
                    }
                    Ok(n as u64)
                })
                .await
                .map_err(store_err("event"))?,
            (None, Some(from), Some(to)) if from < to => {
                let lo = crate::outbox::event_id(min_v7_at(from.timestamp_millis().max(0) as u64));
                let hi = crate::outbox::event_id(max_v7_at((to.timestamp_millis() - 1).max(0) as u64));
                let (lo2, hi2, t2) = (lo.clone(), hi.clone(), tenant.clone());
                let count: i64 = self
                    .0
                    .store
                    .read(move |c| {
                        c.query_row(
                            "SELECT COUNT(*) FROM outbox WHERE id BETWEEN ?1 AND ?2 AND tenant_id = ?3",
                            params![lo2, hi2, t2],
                            |r| r.get(0),
                        )
                        .map_err(StoreError::from)
                    })
                    .await
                    .map_err(store_err("event"))?;
                if count > MAX_REPLAY {
                    return Err(ApiError::validation(vec![FieldError::new(
                        "from",
                        format!("the range holds {count} events; replay at most {MAX_REPLAY} at once (narrow the range)"),
                    )]));
                }
                // In chunks of outbox rows, each its own transaction: a large range never holds
                // the writer (and the interactions waiting on it) for long.
                let mut after = String::new();
                let mut queued = 0u64;
                loop {
                    let (id3, t3, lo3, hi3, ev3, from_id) =
                        (id2.clone(), tenant.clone(), lo.clone(), hi.clone(), events.clone(), after.clone());
                    let failed_only = req.failed_only;
                    let (n, last) = self
                        .0
                        .store
                        .write(move |c| {
                            let chunk = "SELECT seq, id, tenant_id, event_type FROM outbox WHERE id BETWEEN ?5 AND ?7 AND id > ?9 AND tenant_id = ?2 ORDER BY id LIMIT 5000";
                            let last: Option<String> = c.query_row(
                                &format!("SELECT MAX(id) FROM ({chunk})"),
                                params![id3, t3, due, now, lo3, failed_only, hi3, ev3, from_id],
                                |r| r.get(0),
                            )?;
                            let n = c.execute(
                                &format!(
                                    "{REPLAY_INSERT_FROM} ({chunk}) o WHERE o.event_type IN (SELECT value FROM json_each(?8)) {REPLAY_UPSERT}"
                                ),
                                params![id3, t3, due, now, lo3, failed_only, hi3, ev3, from_id],
                            )?;
                            Ok::<_, StoreError>((n as u64, last))
                        })
                        .await
                        .map_err(store_err("event"))?;
                    queued += n;
                    match last {
                        Some(l) => after = l,
                        None => break,
                    }
                    self.0.wake.notify_one();
                }
                queued
            }
            _ => {
                return Err(ApiError::validation(vec![FieldError::new(
                    "body",
                    "give either event_id, or from and to (from before to) for a range",
                )]));
            }
        };
        self.0.wake.notify_one();
        Ok(ReplayResult { queued })
    }

    /// Starts the dispatcher; it runs until `shutdown` is cancelled, then waits a moment for
    /// requests in flight (their deliveries stay pending if they do not finish: at least once).
    pub fn start(&self, shutdown: tokio_util::sync::CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::dispatcher::run(self.clone(), shutdown))
    }

    /// The time now, in microseconds.
    pub(crate) fn now_us(&self) -> i64 {
        to_micros(self.0.clock.now())
    }

    /// The time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.0.clock.now()
    }
}

/// Inserts (or resets) deliveries from outbox rows `o`: ?1 webhook, ?2 tenant, ?3 due, ?4 now,
/// ?6 failed only.
const REPLAY_INSERT_FROM: &str = "INSERT INTO webhook_deliveries (webhook_id, tenant_id, event_seq, event_id, event_type, state, attempts, \
     next_attempt_at, created_at, updated_at) SELECT ?1, ?2, o.seq, o.id, o.event_type, 'pending', 0, ?3, ?4, ?4 FROM";
const REPLAY_UPSERT: &str = "AND (?6 = 0 OR EXISTS (SELECT 1 FROM webhook_deliveries x WHERE x.webhook_id = ?1 AND x.event_id = o.id AND x.state = 'failed')) \
     ON CONFLICT (webhook_id, event_id) DO UPDATE SET state = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at, \
     updated_at = excluded.updated_at";

/// The values of columns ?1–?14 of an insert or update: id, tenant, then the settings.
fn row_values(id: &str, tenant: &str, spec: &Spec, secrets: &Secrets, sealed: String) -> Result<Vec<rusqlite::types::Value>, StoreError> {
    let names: Vec<&String> = secrets.headers.iter().map(|(n, _)| n).collect();
    Ok(vec![
        id.to_owned().into(),
        tenant.to_owned().into(),
        spec.url.clone().into(),
        serde_json::to_string(&spec.events)?.into(),
        i64::from(spec.active).into(),
        spec.description.clone().into(),
        spec.format.as_str().to_owned().into(),
        spec.sourcetype.clone().into(),
        i64::from(spec.batch_max).into(),
        i64::from(spec.batch_ms).into(),
        i64::from(spec.max_in_flight).into(),
        serde_json::to_string(&names)?.into(),
        i64::from(secrets.auth_token.is_some()).into(),
        sealed.into(),
    ])
}

/// How often a change that lost a race with another is made again before giving up (409).
const RACE_RETRIES: usize = 5;

/// After an UPDATE guarded by the version it was made from: true if it was written, false if
/// another change came first, NotFound if the webhook is gone.
fn won_race(c: &Connection, updated: usize, tenant: &str, id: &str) -> Result<bool, StoreError> {
    if updated > 0 {
        return Ok(true);
    }
    let exists: Option<i64> =
        c.query_row("SELECT 1 FROM webhooks WHERE tenant_id = ?1 AND id = ?2", params![tenant, id], |r| r.get(0)).optional()?;
    if exists.is_some() { Ok(false) } else { Err(StoreError::NotFound) }
}

#[allow(clippy::too_many_arguments)]
fn insert(
    c: &Connection,
    id: &str,
    tenant: &str,
    spec: &Spec,
    secrets: &Secrets,
    sealed: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO webhooks (id, tenant_id, url, events, active, description, format, sourcetype, batch_max, batch_ms, max_in_flight, \
         header_names, has_auth_token, sealed, created_by, active_since_seq, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, (SELECT COALESCE(MAX(seq), 0) FROM outbox), ?16, ?16)",
        rusqlite::params_from_iter(
            row_values(id, tenant, spec, secrets, sealed.to_owned())?.into_iter().chain([actor.to_owned().into(), now.into()]),
        ),
    )?;
    Ok(())
}

pub(crate) fn get_in(c: &Connection, tenant: &str, id: &str) -> Result<Stored, StoreError> {
    c.prepare_cached(&format!("SELECT {} FROM webhooks WHERE tenant_id = ?1 AND id = ?2", cols(true)))?
        .query_row(params![tenant, id], from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Writes one attempt into the log.
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_attempt(
    c: &Connection,
    webhook: &str,
    tenant: &str,
    at: i64,
    trigger: &str,
    message_id: &str,
    event_ids: &[&str],
    event_type: &str,
    attempt: i64,
    o: &Outcome,
    outcome: &str,
    next: Option<i64>,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO webhook_attempts (webhook_id, tenant_id, attempted_at, trigger, message_id, event_ids, event_type, attempt, \
         status_code, error, latency_us, response_excerpt, outcome, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        webhook,
        tenant,
        at,
        trigger,
        message_id,
        serde_json::to_string(event_ids)?,
        event_type,
        attempt,
        o.status,
        o.error,
        o.latency.as_micros() as i64,
        o.excerpt,
        outcome,
        next,
    ])?;
    Ok(())
}

/// The format options of a webhook.
pub(crate) fn format_options(sourcetype: Option<String>, secrets: &Secrets) -> FormatOptions {
    FormatOptions { intake_key: secrets.intake_key.clone(), sourcetype }
}

/// Renders a batch's body; the standard format sends the stored payload's bytes as they are.
pub(crate) fn body(format: Format, payloads: &[&str], opts: &FormatOptions) -> Result<Vec<u8>, crate::format::FormatError> {
    if format == Format::Standard {
        return match payloads {
            [one] => Ok(one.as_bytes().to_vec()),
            [] => Err(crate::format::FormatError::Empty),
            _ => Err(crate::format::FormatError::OneEventOnly("standard")),
        };
    }
    let values: Vec<serde_json::Value> = payloads.iter().map(|p| serde_json::from_str(p).unwrap_or_else(|_| json!({"raw": p}))).collect();
    crate::format::render(format, &values, opts)
}

/// Signs `body` for message `id` at `timestamp` with the secrets that sign now.
pub(crate) fn sign_with(id: &str, timestamp: i64, body: &[u8], secrets: &[SigningSecret]) -> crate::signature::StandardHeaders {
    let refs: Vec<&SigningSecret> = secrets.iter().collect();
    sign(id, timestamp, body, &refs)
}
