//! The firewall's shared state, handed to every handler through axum's `State`.
use crate::policy::PolicyCache;
use axum::extract::FromRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use vigie_core::Store;
use vigie_core::auth::Auth;
use vigie_core::clock::SharedClock;
use vigie_core::ids::IdGen;
use vigie_core::metrics::Metrics;

/// Settings of the firewall half.
#[derive(Debug, Clone)]
pub struct FirewallSettings {
    /// The `source` of emitted events (`noxys` by default, for compatibility).
    pub event_source: String,
    /// The longest text, in UTF-8 bytes, the server scans; a longer one is refused with 413.
    pub max_text_bytes: usize,
}

/// Labels of the interaction counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    /// block, coach or log.
    pub action: String,
}

/// Labels of the event counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// The event type.
    pub event_type: String,
}

/// Labels of the scan counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScanLabels {
    /// Which endpoint scanned: `interactions` or `scan`.
    pub endpoint: &'static str,
    /// `clean` or `findings`.
    pub outcome: &'static str,
}

/// Labels of the scan duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScanEndpoint {
    /// Which endpoint scanned: `interactions` or `scan`.
    pub endpoint: &'static str,
}

/// The firewall's own metrics.
#[derive(Clone)]
pub struct FirewallStats {
    /// Interactions recorded, by decision.
    pub interactions: Family<ActionLabel, Counter>,
    /// Events written to the outbox, by type.
    pub events: Family<EventLabel, Counter>,
    /// Texts scanned, by endpoint and outcome.
    pub scans: Family<ScanLabels, Counter>,
    /// Time spent scanning one text (hashing included), by endpoint.
    pub scan_seconds: Family<ScanEndpoint, Histogram>,
}

impl Default for FirewallStats {
    fn default() -> FirewallStats {
        FirewallStats {
            interactions: Family::default(),
            events: Family::default(),
            scans: Family::default(),
            // 10 µs to about 1.5 s: a short prompt to a text at a generous limit.
            scan_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00001, 2.5, 14))),
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct FirewallState {
    /// The firewall database.
    pub store: Store,
    /// Authentication.
    pub auth: Auth,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Time source.
    pub clock: SharedClock,
    /// Id source.
    pub ids: Arc<IdGen>,
    /// Settings.
    pub settings: Arc<FirewallSettings>,
    /// Compiled enabled policies and platform vetting, per tenant.
    pub policies: PolicyCache,
    /// The detection engine, built once at start (it loads the phone metadata).
    pub scanner: Arc<vigie_pii::Scanner>,
    /// Counters.
    pub stats: FirewallStats,
    /// False while starting or shutting down (`/readyz`).
    pub ready: Arc<AtomicBool>,
    /// Webhooks: their API and the dispatcher that delivers the outbox.
    pub webhooks: vigie_webhook::Webhooks,
}

impl FromRef<FirewallState> for vigie_webhook::Webhooks {
    fn from_ref(s: &FirewallState) -> vigie_webhook::Webhooks {
        s.webhooks.clone()
    }
}

impl FromRef<FirewallState> for Auth {
    fn from_ref(s: &FirewallState) -> Auth {
        s.auth.clone()
    }
}

impl FromRef<FirewallState> for Metrics {
    fn from_ref(s: &FirewallState) -> Metrics {
        s.metrics.clone()
    }
}
