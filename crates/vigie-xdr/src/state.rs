//! The XDR's shared state, handed to every handler through axum's `State`.
use crate::keys::Keys;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use vigie_core::Store;
use vigie_core::clock::SharedClock;
use vigie_core::ids::IdGen;
use vigie_core::metrics::Metrics;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct XdrState {
    /// The XDR database (`xdr.db`).
    pub store: Store,
    /// API keys and spaces.
    pub keys: Keys,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Time source.
    pub clock: SharedClock,
    /// Id source.
    pub ids: Arc<IdGen>,
    /// False while starting or shutting down (`/readyz`).
    pub ready: Arc<AtomicBool>,
}

impl axum::extract::FromRef<XdrState> for Metrics {
    fn from_ref(s: &XdrState) -> Metrics {
        s.metrics.clone()
    }
}
