//! Assembly of the firewall half: opening its store, the router with its OpenAPI document, the
//! health and metrics endpoints, and serving with graceful shutdown.
use crate::state::{FirewallSettings, FirewallState, FirewallStats};
use crate::{interactions, platforms, policy, scan, testdata};
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::{Extension, Json, Router, middleware};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vigie_core::auth::{Auth, AuthSettings};
use vigie_core::clock::SharedClock;
use vigie_core::db::StoreOptions;
use vigie_core::http::{BearerAuth, ErrorBody, json_errors};
use vigie_core::ids::IdGen;
use vigie_core::metrics::{Metrics, metrics_handler, track};
use vigie_core::secrets::MasterKey;
use vigie_core::{Store, StoreError};

/// The largest request body the firewall API reads, except where a text may be sent.
pub const MAX_BODY: usize = 1024 * 1024;

/// The largest request body of the endpoints that take a text (`POST /api/v1/interactions` and
/// `POST /api/v1/scan`): room for a text at the limit even written with `\uXXXX` escapes (six
/// bytes for a character of up to three), plus the other fields.
pub fn text_body_limit(max_text_bytes: usize) -> usize {
    max_text_bytes.saturating_mul(6).saturating_add(64 * 1024).max(MAX_BODY)
}

/// Everything needed to open the firewall half.
#[derive(Debug, Clone)]
pub struct FirewallOptions {
    /// Data directory; the database is `firewall.db` in it.
    pub data_dir: PathBuf,
    /// Store tuning: durability, group-commit size (1 turns it off), checkpoints.
    pub store: StoreOptions,
    /// `source` of emitted events.
    pub event_source: String,
    /// Master key, if given in configuration; otherwise `<data_dir>/secret.key`.
    pub secret_key: Option<MasterKey>,
    /// Auth tunables.
    pub auth: AuthSettings,
    /// The longest text, in UTF-8 bytes, the server scans in one request (413 beyond).
    pub max_text_bytes: usize,
    /// Webhook delivery: retry schedule, client timeout, private destinations. The event types
    /// and source are the firewall's own (set by [`open`]).
    pub webhooks: vigie_webhook::WebhookSettings,
}

impl FirewallOptions {
    /// Options from the validated configuration.
    pub fn from_config(c: &vigie_core::config::Config) -> FirewallOptions {
        FirewallOptions {
            data_dir: c.data_dir.clone(),
            store: StoreOptions { durability: c.durability, max_batch: c.write_batch_max, ..StoreOptions::default() },
            event_source: c.event_source.clone(),
            secret_key: c.secret_key.clone(),
            auth: AuthSettings { secure_cookies: c.secure_cookies, ..AuthSettings::default() },
            max_text_bytes: c.max_text_bytes,
            webhooks: webhook_settings(c),
        }
    }
}

/// The webhook settings of a configuration.
pub fn webhook_settings(c: &vigie_core::config::Config) -> vigie_webhook::WebhookSettings {
    let schedule =
        vigie_webhook::schedule::RetrySchedule::new(c.webhook_retry_delays.clone(), c.webhook_retry_jitter, c.webhook_disable_after)
            .unwrap_or_default();
    let mut w = vigie_webhook::WebhookSettings { schedule, ..Default::default() };
    w.client.allow_private = c.allow_private_webhooks;
    w.client.timeout = c.webhook_timeout;
    w
}

/// The migrations of the firewall database, in order.
pub const MIGRATIONS: &[vigie_core::db::Migration] = &[
    vigie_core::auth::MIGRATIONS[0],
    vigie_core::db::Migration { name: "fw_001_firewall", sql: include_str!("../migrations/fw_001_firewall.sql") },
    vigie_webhook::MIGRATIONS[0],
    vigie_core::auth::MIGRATIONS[1],
];

/// Opens the firewall's store (running migrations) and builds its state.
pub fn open(opts: FirewallOptions, clock: SharedClock) -> Result<FirewallState, StoreError> {
    let metrics = Metrics::new("vigie_firewall");
    let store = Store::open(&opts.data_dir.join("firewall.db"), opts.store, MIGRATIONS, metrics.store_metrics())?;
    let key = match opts.secret_key {
        Some(k) => k,
        None => MasterKey::load_or_create(&opts.data_dir)?,
    };
    let auth = Auth::new(store.clone(), clock.clone(), &key, opts.auth);
    let ids = Arc::new(IdGen::default());
    let mut hooks = opts.webhooks;
    hooks.event_types = crate::events::EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect();
    hooks.event_source = opts.event_source.clone();
    let webhooks =
        vigie_webhook::Webhooks::new(store.clone(), clock.clone(), ids.clone(), &key, hooks, &metrics).map_err(StoreError::Commit)?;
    let stats = FirewallStats::default();
    metrics.register("interactions_recorded", "Interactions recorded, by decision", stats.interactions.clone());
    metrics.register("outbox_events", "Events written to the outbox, by type", stats.events.clone());
    metrics.register("text_scans", "Texts scanned for sensitive data, by endpoint and outcome", stats.scans.clone());
    metrics.register("text_scan_duration_seconds", "Time to scan and hash one text, by endpoint", stats.scan_seconds.clone());
    Ok(FirewallState {
        store,
        auth,
        metrics,
        clock,
        ids,
        settings: Arc::new(FirewallSettings { event_source: opts.event_source, max_text_bytes: opts.max_text_bytes }),
        policies: policy::PolicyCache::default(),
        scanner: Arc::new(vigie_pii::Scanner::default()),
        stats,
        ready: Arc::new(AtomicBool::new(false)),
        webhooks,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Vigie AI firewall API", description = "Records AI interactions, evaluates policies (block, coach, log) and emits events. Compatible with the Noxys AI firewall API. Offsets of classifications are Unicode code points."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags((name = "interactions"), (name = "scan"), (name = "policies"), (name = "platforms"), (name = "webhooks"), (name = "auth"), (name = "users"), (name = "tokens"), (name = "operations"))
)]
struct ApiDoc;

/// Adds the error answers every operation can give to each operation that does not already say
/// so: 401/403 where a token is needed, 400/413/422 where a body or query is read, 500 always.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let reads_input = op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let mut add = |code: &str, description: &str| {
                    op.responses.responses.entry(code.to_owned()).or_insert_with(|| error(description).into());
                };
                if secured {
                    add("401", "missing, invalid or expired token");
                    add("403", "the token's role does not allow this");
                }
                if reads_input {
                    add("400", "malformed JSON or query");
                    add("422", "well-formed but invalid input; `fields` names each problem");
                }
                if op.request_body.is_some() {
                    add("413", "body larger than 1 MiB (where a text is sent: six times max_text_bytes plus 64 KiB)");
                }
                add("500", "server error; nothing was changed");
            }
        }
    }
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: started, not shutting down, and the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
async fn readyz(State(st): State<FirewallState>) -> impl IntoResponse {
    vigie_core::http::readiness(&st.store, &st.ready).await
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", content_type = "text/plain")))]
async fn metrics(State(st): State<FirewallState>) -> axum::response::Response {
    metrics_handler(State(st.metrics.clone())).await
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "the OpenAPI document")))]
async fn openapi_json(Extension(doc): Extension<Arc<String>>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned())
}

fn split(max_text_bytes: usize) -> (Router<FirewallState>, utoipa::openapi::OpenApi) {
    let text_limit = DefaultBodyLimit::max(text_body_limit(max_text_bytes));
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Set on the routes, this limit overrides the app-wide one for them alone.
        .merge(interactions::routes::router().layer(text_limit))
        .merge(scan::routes::router().layer(text_limit))
        .merge(policy::routes::router())
        .merge(platforms::routes::router())
        .merge(testdata::router())
        .merge(vigie_webhook::routes::router())
        .merge(vigie_core::auth::routes::router())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .split_for_parts();
    // After the merge: the operations only exist once the routes are in.
    utoipa::Modify::modify(&CommonErrors, &mut doc);
    (router, doc)
}

/// The OpenAPI document of the firewall API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split(vigie_core::config::DEFAULT_MAX_TEXT_BYTES).1
}

/// The firewall's HTTP application.
pub fn app(state: FirewallState) -> Router {
    let (router, doc) = split(state.settings.max_text_bytes);
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_default());
    router
        .merge(crate::console::router())
        .fallback(crate::console::not_found)
        .method_not_allowed_fallback(crate::console::method_not_allowed)
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .with_state(state)
}

/// Serves the firewall on `listener` and runs the webhook dispatcher until `shutdown` is
/// cancelled, then finishes in-flight requests, gives deliveries in flight a moment, finishes
/// the queued writes and closes the store.
pub async fn serve(listener: tokio::net::TcpListener, state: FirewallState, shutdown: CancellationToken) -> std::io::Result<()> {
    let store = state.store.clone();
    let ready = state.ready.clone();
    let dispatcher = state.webhooks.start(shutdown.clone());
    let app = app(state);
    ready.store(true, Ordering::Release);
    let stopping = shutdown.clone();
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            stopping.cancelled().await;
            ready.store(false, Ordering::Release);
        })
        .await;
    if let Err(e) = dispatcher.await {
        tracing::error!(error = %e, "the webhook dispatcher stopped abnormally; pending deliveries resume at the next start");
    }
    store.close().await;
    result
}
