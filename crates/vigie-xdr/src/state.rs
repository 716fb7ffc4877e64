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
    /// Changes after every commit that appended events: consumers of the log (detection,
    /// intel matching) wait on it instead of polling.
    pub appended: Arc<tokio::sync::watch::Sender<u64>>,
    /// How often events past their retention are deleted.
    pub retention_every: std::time::Duration,
    /// What a search may do.
    pub search: crate::search::SearchLimits,
    /// The facts dictionary's cache.
    pub facts: Arc<crate::facts::Dict>,
    /// Whether `serve` runs the facts builder (tests drive it themselves).
    pub build_facts: bool,
    /// Bumped by retention inside each transaction that deletes events (the facts builder
    /// checks, on the same writer thread, whether events it read may be gone).
    pub deletions: Arc<std::sync::atomic::AtomicU64>,
    /// Bumped (`send_modify`) after every committed change to rules, so the detection consumer
    /// reloads them before its next batch.
    pub rules_changed: Arc<RulesSignal>,
    /// The detection consumer's checkpoint, sent after each of its commits (the log position
    /// up to which alerts are written): what waits for detection to catch up watches.
    pub detected: Arc<tokio::sync::watch::Sender<i64>>,
    /// The responder's and the playbook runner's signals.
    pub response: Arc<crate::response::Signals>,
    /// Where the playbook files of each space are read from at start (`<dir>/<space>/*.yaml`).
    pub playbook_files: Option<std::path::PathBuf>,
    /// Whether outbound destinations (notification webhooks, playbook HTTP requests) may be
    /// private or loopback addresses (`--allow-private-webhooks`; tests).
    pub allow_private_destinations: bool,
    /// Notifications: the channel-secret sealer, the HTTP client and the retry schedule.
    pub notify: Arc<crate::notify::Notifier>,
    /// The console's CSRF tokens.
    pub csrf: vigie_core::console::CsrfKey,
    /// Whether the console's cookies are marked `Secure` (served over HTTPS).
    pub secure_cookies: bool,
    /// The mail sink whose messages the console's Mailbox page shows to the callers of its
    /// space (`vigie demo` sets it; `None` hides the page).
    pub mail_sink: Option<MailSink>,
}

/// A mail sink the process runs, and the space it belongs to: the sink takes every e-mail the
/// process sends, whatever the space, so only the callers of the space whose channels point at
/// it (the demo's) may read it; to the others the Mailbox page does not exist.
#[derive(Debug, Clone)]
pub struct MailSink {
    /// What the sink received.
    pub mailbox: crate::mailsink::Mailbox,
    /// The space (its id) whose callers see the Mailbox page.
    pub space_id: uuid::Uuid,
}

impl MailSink {
    /// The mailbox, if `caller` may see it (a caller of the sink's space).
    pub fn for_caller(&self, caller: &crate::keys::Caller) -> Option<&crate::mailsink::Mailbox> {
        (caller.space_id == self.space_id).then_some(&self.mailbox)
    }
}

impl XdrState {
    /// Tells the detection consumer that space `space_no`'s rules changed (call after the
    /// commit).
    pub fn rules_did_change(&self, space_no: i64) {
        self.rules_changed.changed(space_no);
    }

    /// A receiver that changes whenever events were appended to the log.
    pub fn log_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

impl axum::extract::FromRef<XdrState> for Metrics {
    fn from_ref(s: &XdrState) -> Metrics {
        s.metrics.clone()
    }
}

/// What a round of a log consumer says.
pub(crate) enum Step {
    /// Nothing left to read: wait for the log (or `also`) to change.
    CaughtUp,
    /// More to read: go on, after resting this long (zero: at once).
    More(std::time::Duration),
}

/// Runs a consumer of the log (detection, the facts builder) until `shutdown`: rounds back to
/// back while it is behind, a second's rest after a failed round (logged as `what`), and a wait
/// for appends to the log — or a change of `also` — once caught up.
pub(crate) async fn follow_log<S, F, Fut>(
    st: &XdrState,
    shutdown: tokio_util::sync::CancellationToken,
    what: &'static str,
    mut also: Option<tokio::sync::watch::Receiver<u64>>,
    mut state: S,
    mut round: F,
) where
    F: FnMut(S) -> Fut,
    Fut: std::future::Future<Output = (S, Result<Step, vigie_core::StoreError>)>,
{
    let mut appended = st.log_signal();
    loop {
        loop {
            let (next, step) = round(state).await;
            state = next;
            let pause = match step {
                Ok(Step::CaughtUp) => break,
                Ok(Step::More(d)) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "{what} failed; retrying in a second");
                    std::time::Duration::from_secs(1)
                }
            };
            if shutdown.is_cancelled() || (!pause.is_zero() && !rest(&shutdown, pause).await) {
                return;
            }
        }
        let also_changed = async {
            match also.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = appended.changed() => if changed.is_err() { return },
            ok = also_changed => if !ok { return },
        }
    }
}

/// Waits `d`, or less if `shutdown` comes first; false then (the background task should stop).
pub(crate) async fn rest(shutdown: &tokio_util::sync::CancellationToken, d: std::time::Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Which spaces' rules changed since the detection consumer last looked: it reloads those
/// alone (a change in one space does not make every space's rules and windows load again).
#[derive(Debug)]
pub struct RulesSignal {
    tx: tokio::sync::watch::Sender<u64>,
    spaces: std::sync::Mutex<std::collections::HashSet<i64>>,
}

impl Default for RulesSignal {
    fn default() -> RulesSignal {
        RulesSignal { tx: tokio::sync::watch::channel(0).0, spaces: Default::default() }
    }
}

impl RulesSignal {
    /// Space `space_no`'s rules changed (after the commit).
    pub fn changed(&self, space_no: i64) {
        if let Ok(mut s) = self.spaces.lock() {
            s.insert(space_no);
        }
        self.tx.send_modify(|n| *n += 1);
    }

    /// Changes whenever rules change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// How many changes there have been.
    pub fn generation(&self) -> u64 {
        *self.tx.borrow()
    }

    /// The spaces changed since the last call.
    pub fn take(&self) -> std::collections::HashSet<i64> {
        self.spaces.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }
}
