//! The firewall's shared state, handed to every handler through axum's `State`.
use crate::policy::PolicyCache;
use axum::extract::FromRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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

/// The firewall's own metrics.
#[derive(Clone, Default)]
pub struct FirewallStats {
    /// Interactions recorded, by decision.
    pub interactions: Family<ActionLabel, Counter>,
    /// Events written to the outbox, by type.
    pub events: Family<EventLabel, Counter>,
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
    /// Counters.
    pub stats: FirewallStats,
    /// False while starting or shutting down (`/readyz`).
    pub ready: Arc<AtomicBool>,
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
