//! Prometheus metrics: one registry per process half, passed explicitly (no global recorder),
//! and the HTTP middleware that counts requests by route and status.
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::db::StoreMetrics;

/// Labels of an HTTP request metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// The route template (`/api/v1/policies/{id}`), never the raw path.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a route-only histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteOnly {
    /// HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
}

/// The metrics of one half of Vigie.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteOnly, Histogram>,
}

impl Metrics {
    /// A registry whose metric names start with `prefix` (e.g. `vigie_firewall`).
    pub fn new(prefix: &str) -> Metrics {
        let mut registry = Registry::with_prefix(prefix);
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteOnly, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.5, 14)));
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        Metrics { registry: Arc::new(Mutex::new(registry)), requests, latency }
    }

    /// Registers a metric of a component (a counter, a family…).
    pub fn register(&self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
    }

    /// Metrics for a store's writer, registered under `db_`.
    pub fn store_metrics(&self) -> StoreMetrics {
        let batch = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let commit = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        let failures = Counter::default();
        self.register("db_write_batch_size", "Writes grouped in one committed transaction", batch.clone());
        self.register("db_commit_duration_seconds", "Time from BEGIN to COMMIT of a write batch", commit.clone());
        self.register("db_commit_failures", "Write transactions that failed to commit", failures.clone());
        StoreMetrics { batch_size: Some(batch), commit_seconds: Some(commit), commit_failures: failures }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}

/// Middleware counting requests and their latency by route template.
pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Only standard methods become label values: anyone can send a made-up method, and each new
    // label value would be a new series kept forever.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    // The route template, never the path: paths carry ids and query strings carry filters.
    tracing::debug!(%method, %route, status, latency_us = started.elapsed().as_micros() as u64, "request");
    m.latency.get_or_create(&RouteOnly { method: method.clone(), route: route.clone() }).observe(started.elapsed().as_secs_f64());
    m.requests.get_or_create(&RouteLabels { method, route, status }).inc();
    resp
}

/// The `/metrics` handler.
pub async fn metrics_handler(State(m): State<Metrics>) -> Response {
    let mut resp = m.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}
