//! Assembly of the XDR half: opening its store, the router with its OpenAPI document, the
//! health and metrics endpoints, and serving with graceful shutdown.
use crate::keys::Keys;
use crate::state::XdrState;
use crate::{alerts, cases, compat, detect, intake, log, notify, people, playbooks, routes, rules, search};
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
use vigie_core::clock::SharedClock;
use vigie_core::db::StoreOptions;
use vigie_core::http::{BearerAuth, json_errors};
use vigie_core::ids::IdGen;
use vigie_core::metrics::{Metrics, metrics_handler, track};
use vigie_core::secrets::{MasterKey, SecretBox};
use vigie_core::{Store, StoreError};

/// The largest request body the XDR reads (intake: 10 MiB; the rest is far smaller).
pub const MAX_BODY: usize = intake::MAX_REQUEST;

/// Everything needed to open the XDR half.
#[derive(Debug, Clone)]
pub struct XdrOptions {
    /// Data directory; the database is `xdr.db` in it.
    pub data_dir: PathBuf,
    /// Store tuning.
    pub store: StoreOptions,
    /// Master key, if given in configuration; otherwise `<data_dir>/secret.key`.
    pub secret_key: Option<MasterKey>,
    /// The request rate each API key is allowed.
    pub key_rate: crate::keys::KeyRate,
    /// How often events past their space's retention are deleted.
    pub retention_every: std::time::Duration,
    /// What a search may do.
    pub search: crate::search::SearchLimits,
    /// Run the facts builder in the background (true but in tests that drive it).
    pub build_facts: bool,
    /// Install the default rules of a new space enabled (the demo); otherwise disabled.
    pub default_rules_enabled: bool,
    /// Let notification webhooks (and playbook HTTP requests) reach private and loopback
    /// addresses (`--allow-private-webhooks`).
    pub allow_private_destinations: bool,
    /// How notifications are delivered (the retry schedule, concurrency, timeout).
    pub notify: crate::notify::NotifyOptions,
}

impl XdrOptions {
    /// Options from the validated configuration.
    pub fn from_config(c: &vigie_core::config::Config) -> XdrOptions {
        XdrOptions {
            data_dir: c.data_dir.clone(),
            store: StoreOptions { durability: c.durability, max_batch: c.write_batch_max, ..StoreOptions::default() },
            secret_key: c.secret_key.clone(),
            key_rate: crate::keys::KeyRate::default(),
            retention_every: std::time::Duration::from_secs(3600),
            search: crate::search::SearchLimits { timeout: c.search_timeout, max_rows: c.search_max_rows },
            build_facts: true,
            default_rules_enabled: false,
            allow_private_destinations: c.allow_private_webhooks,
            notify: crate::notify::NotifyOptions {
                retry_delays: c.notification_retry_delays.clone(),
                timeout: c.notification_timeout,
                ..crate::notify::NotifyOptions::default()
            },
        }
    }
}

/// The migrations of the XDR database, in order.
pub const MIGRATIONS: &[vigie_core::db::Migration] = &[
    vigie_core::db::Migration { name: "xdr_001_xdr", sql: include_str!("../migrations/xdr_001_xdr.sql") },
    vigie_core::db::Migration { name: "xdr_002_compact_log", sql: include_str!("../migrations/xdr_002_compact_log.sql") },
    vigie_core::db::Migration { name: "xdr_003_facts", sql: include_str!("../migrations/xdr_003_facts.sql") },
    vigie_core::db::Migration { name: "xdr_004_fact_blocks", sql: include_str!("../migrations/xdr_004_fact_blocks.sql") },
    vigie_core::db::Migration { name: "xdr_005_detection", sql: include_str!("../migrations/xdr_005_detection.sql") },
    vigie_core::db::Migration { name: "xdr_006_cases", sql: include_str!("../migrations/xdr_006_cases.sql") },
    vigie_core::db::Migration { name: "xdr_007_notify", sql: include_str!("../migrations/xdr_007_notify.sql") },
    vigie_core::db::Migration { name: "xdr_008_response", sql: include_str!("../migrations/xdr_008_response.sql") },
    vigie_core::db::Migration { name: "xdr_009_console", sql: include_str!("../migrations/xdr_009_console.sql") },
    vigie_core::db::Migration { name: "xdr_010_dashboards", sql: include_str!("../migrations/xdr_010_dashboards.sql") },
    vigie_core::db::Migration { name: "xdr_011_console_indexes", sql: include_str!("../migrations/xdr_011_console_indexes.sql") },
    vigie_core::db::Migration { name: "xdr_012_test_data_indexes", sql: include_str!("../migrations/xdr_012_test_data_indexes.sql") },
];

/// Opens the XDR's store (running migrations) and builds its state.
pub fn open(opts: XdrOptions, clock: SharedClock) -> Result<XdrState, StoreError> {
    let metrics = Metrics::new("vigie_xdr");
    // Searches compile to SQL that calls the query language's functions.
    let store_opts = StoreOptions { on_connect: Some(vigie_query::sqlite::register), ..opts.store };
    let store = Store::open(&opts.data_dir.join("xdr.db"), store_opts, MIGRATIONS, metrics.store_metrics())?;
    let key = match opts.secret_key {
        Some(k) => k,
        None => MasterKey::load_or_create(&opts.data_dir)?,
    };
    let ids = Arc::new(IdGen::default());
    let rules_changed = Arc::new(crate::state::RulesSignal::default());
    let sealer = SecretBox::new(&key, "xdr-key-secrets");
    let (rate, defaults_on) = (opts.key_rate, opts.default_rules_enabled);
    let keys = Keys::new(store.clone(), sealer, clock.clone(), ids.clone(), rate, defaults_on, rules_changed.clone());
    let notifier = crate::notify::Notifier::new(&key, &opts.notify, opts.allow_private_destinations, &metrics)?;
    let (appended, _) = tokio::sync::watch::channel(0);
    Ok(XdrState {
        store,
        keys,
        metrics: metrics.clone(),
        clock,
        ids,
        ready: Arc::new(AtomicBool::new(false)),
        appended: Arc::new(appended),
        retention_every: opts.retention_every,
        search: opts.search,
        facts: Arc::new(crate::facts::Dict::default()),
        build_facts: opts.build_facts,
        deletions: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        rules_changed,
        detected: Arc::new(tokio::sync::watch::channel(0).0),
        response: Arc::new(crate::response::Signals::new(&metrics)),
        playbook_files: Some(opts.data_dir.join("playbooks")),
        allow_private_destinations: opts.allow_private_destinations,
        notify: Arc::new(notifier),
        csrf: vigie_core::console::CsrfKey::new(key.derive("vigie/console-csrf/v1")),
        secure_cookies: false,
        mail_sink: None,
    })
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Vigie XDR API", description = "Event intake, the event log and API keys. Modelled on Sekoia.io's operations center."),
    modifiers(&BearerAuth),
    tags((name = "intake"), (name = "events"), (name = "keys"), (name = "alerts"),
        (name = "rules", description = "Detection rules (pipe queries or Sigma YAML), compiled when saved. Actions: `alert` \
            raises alerts; `case` opens a case from a template for a new alert; `notify` queues a notification through a channel."),
        (name = "cases"), (name = "people"), (name = "notifications"),
        (name = "dashboards", description = "Dashboards: widgets (pipe queries with a render and a size) over 24 h, 7 d or 30 d."),
        (name = "playbooks", description = "YAML playbooks compiled into graphs: triggers, steps, runs recorded step by step, \
            replays and dry runs."),
        (name = "operations"))
)]
struct ApiDoc;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: started, not shutting down, and the database commits.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
async fn readyz(State(st): State<XdrState>) -> impl IntoResponse {
    vigie_core::http::readiness(&st.store, &st.ready).await
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "metrics", content_type = "text/plain")))]
async fn metrics(State(st): State<XdrState>) -> axum::response::Response {
    metrics_handler(State(st.metrics.clone())).await
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "the OpenAPI document")))]
async fn openapi_json(Extension(doc): Extension<Arc<String>>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.as_str().to_owned())
}

fn split() -> (Router<XdrState>, utoipa::openapi::OpenApi) {
    let r = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let r = cases::routes(people::routes(notify::routes(playbooks::routes(r))));
    let r = crate::dashboards::routes(r);
    let r = crate::testdata::routes(r);
    r.routes(routes!(intake::events_post, log::events_list))
        .routes(routes!(log::events_get))
        .routes(routes!(search::search_get, search::search_post))
        .routes(routes!(routes::keys_create, routes::keys_list))
        .routes(routes!(alerts::alerts_list))
        .routes(routes!(alerts::alerts_get, alerts::alerts_update))
        .routes(routes!(alerts::alerts_workflow))
        .routes(routes!(alerts::alert_comments_list, alerts::alert_comments_create))
        .routes(routes!(routes::keys_revoke))
        .routes(routes!(rules::rules_create, rules::rules_list))
        .routes(routes!(rules::rules_get, rules::rules_update, rules::rules_delete))
        .routes(routes!(rules::rules_enable))
        .routes(routes!(rules::rules_disable))
        .routes(routes!(rules::rules_history))
        .routes(routes!(rules::rules_sigma))
        .routes(routes!(detect::backtest_saved))
        .routes(routes!(detect::backtest_unsaved))
        .routes(routes!(routes::space_get, routes::space_update))
        .routes(routes!(compat::plain))
        .routes(routes!(compat::plain_batch))
        .routes(routes!(compat::jsons))
        .routes(routes!(compat::batch))
        .routes(routes!(compat::single))
        .routes(routes!(compat::array))
        .routes(routes!(compat::hec_event))
        .routes(routes!(compat::hec_raw))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
        .split_for_parts()
}

/// The OpenAPI document of the XDR API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    split().1
}

/// The XDR's HTTP application.
pub fn app(state: XdrState) -> Router {
    let (router, doc) = split();
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_default());
    router
        // HEC senders also post to the collector's root.
        .route("/services/collector", axum::routing::post(compat::hec_event))
        .merge(crate::console::router())
        .fallback(crate::console::not_found)
        .method_not_allowed_fallback(crate::console::method_not_allowed)
        .layer(Extension(doc))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), track))
        .with_state(state)
}

/// Serves the XDR on `listener` until `shutdown` is cancelled, then finishes in-flight requests
/// and the queued writes and closes the store.
pub async fn serve(listener: tokio::net::TcpListener, state: XdrState, shutdown: CancellationToken) -> std::io::Result<()> {
    let store = state.store.clone();
    let ready = state.ready.clone();
    let retention = tokio::spawn(crate::retention::run(state.clone(), shutdown.clone()));
    let facts = state.build_facts.then(|| tokio::spawn(crate::facts::run(state.clone(), shutdown.clone())));
    let detection = tokio::spawn(crate::detect::run(state.clone(), shutdown.clone()));
    let notifications = tokio::spawn(crate::notify::run(state.clone(), shutdown.clone()));
    if let Some(dir) = &state.playbook_files {
        match crate::playbooks::load_files(&state, dir).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, dir = %dir.display(), "playbook files loaded"),
            Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "the playbook files could not be loaded"),
        }
    }
    let response = [
        tokio::spawn(crate::response::responder::run(state.clone(), shutdown.clone())),
        tokio::spawn(crate::playbooks::runner::run(state.clone(), shutdown.clone())),
        tokio::spawn(crate::playbooks::triggers::run_events(state.clone(), shutdown.clone())),
        tokio::spawn(crate::playbooks::triggers::run_schedules(state.clone(), shutdown.clone())),
    ];
    match crate::dashboards::install_pending(&state).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(spaces = n, "the default dashboard was given to the spaces that predate dashboards"),
        Err(e) => tracing::warn!(error = %e, "the default dashboard could not be given to older spaces"),
    }
    let app = app(state);
    ready.store(true, Ordering::Release);
    let stopping = shutdown.clone();
    let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            stopping.cancelled().await;
            ready.store(false, Ordering::Release);
        })
        .await;
    let _ = retention.await;
    if let Some(f) = facts {
        let _ = f.await;
    }
    let _ = detection.await;
    let _ = notifications.await;
    for task in response {
        let _ = task.await;
    }
    store.close().await;
    result
}
