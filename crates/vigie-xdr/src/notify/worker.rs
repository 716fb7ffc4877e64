//! The delivery worker: wakes after every commit (a queued notification is sent within
//! milliseconds of the transaction that queued it) and when the next retry is due, claims due
//! notifications, sends them with bounded concurrency outside any store closure, and records
//! each attempt and what follows it (the retry schedule, as data, in [`super::NotifyOptions`]);
//! once an hour it prunes the delivery log ([`prune_log`]).
use super::channel;
use super::queue::{self, Next, Queued};
use super::send::{self, Attempt};
use crate::state::XdrState;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;
use vigie_webhook::schedule::NextAttempt;

/// The longest the worker sleeps without looking at the queue (a safety net: commits and the
/// next due time wake it first).
const TICK: Duration = Duration::from_secs(5);
/// How long the delivery log keeps a finished notification (and its attempts).
pub const LOG_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How often the worker prunes the delivery log.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Notifications deleted (with their attempts) per transaction, so the writer is never held
/// long.
const PRUNE_CHUNK: i64 = 5000;

/// Deletes the notifications finished more than [`LOG_RETENTION`] ago (by the XDR's clock)
/// and their attempts, in chunks, each its own transaction; how many notifications went. The
/// worker calls it once an hour, as the webhook dispatcher prunes its own log.
pub async fn prune_log(st: &XdrState) -> Result<usize, StoreError> {
    let cutoff = to_micros(st.clock.now()) - to_micros_dur(LOG_RETENTION);
    let mut total = 0;
    loop {
        let n = st.store.write(move |c| queue::prune_finished(c, cutoff, PRUNE_CHUNK)).await?;
        total += n;
        if (n as i64) < PRUNE_CHUNK {
            return Ok(total);
        }
    }
}

/// Runs the delivery worker until `shutdown`; deliveries in flight then get their timeout to
/// finish (an unfinished one is sent again after a restart: at least once).
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    let n = st.notify.clone();
    let permits = Arc::new(tokio::sync::Semaphore::new(n.concurrency.max(1)));
    let mut commits = st.response.queued.subscribe();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut next_prune = tokio::time::Instant::now();
    let mut pruning: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if tokio::time::Instant::now() >= next_prune {
            // Its own task: deliveries go on while old rows are deleted; a round still running
            // when the next falls due is not doubled.
            if pruning.as_ref().is_none_or(|p| p.is_finished()) {
                let st = st.clone();
                pruning = Some(tokio::spawn(async move {
                    match prune_log(&st).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(notifications = n, "old notifications pruned from the delivery log"),
                        Err(e) => tracing::warn!(error = %e, "pruning the notification log failed; it is tried again later"),
                    }
                }));
            }
            next_prune = tokio::time::Instant::now() + PRUNE_EVERY;
        }
        let mut wait = TICK.min(next_prune.saturating_duration_since(tokio::time::Instant::now()));
        let mut again = false;
        let free = permits.available_permits();
        if free > 0 {
            let now = to_micros(st.clock.now());
            match st.store.read(move |c| queue::due(c, now, free)).await {
                Ok((ids, next)) => {
                    if let Some(next) = next {
                        wait = wait.min(Duration::from_micros(u64::try_from(next - now).unwrap_or(0)));
                    }
                    if !ids.is_empty() {
                        let lease = now + to_micros_dur(n.timeout * 2 + Duration::from_secs(30));
                        let want = ids.len();
                        match st.store.write(move |c| queue::claim(c, &ids, now, lease)).await {
                            Ok(claimed) => {
                                for q in claimed {
                                    let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                                    let st = st.clone();
                                    tasks.spawn(async move {
                                        deliver(&st, q).await;
                                        drop(permit);
                                    });
                                }
                                again = want == free;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot claim due notifications; retrying in a second");
                                wait = Duration::from_secs(1);
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the notification queue; retrying in a second");
                    wait = Duration::from_secs(1);
                }
            }
        }
        if again && !shutdown.is_cancelled() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = commits.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(wait) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let grace = n.timeout + Duration::from_secs(1);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    tasks.abort_all();
    if let Some(p) = pruning {
        p.abort();
    }
}

fn to_micros_dur(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

/// Sends one claimed notification and records the attempt.
async fn deliver(st: &XdrState, q: Queued) {
    let n = &st.notify;
    let (space_no, cid) = (q.space_no, q.channel_id.clone());
    let started = std::time::Instant::now();
    let at = to_micros(st.clock.now());
    let attempt = match st.store.read(move |c| channel::fetch(c, space_no, &cid)).await {
        Ok(ch) if !ch.enabled && q.source == queue::SOURCE_ALERT => {
            Attempt { error: Some("the channel is disabled".into()), permanent: true, duration: started.elapsed(), ..Attempt::default() }
        }
        Ok(ch) => match ch.secrets(&n.sealer) {
            Ok(secrets) => send::send(n, &ch, &secrets, &q.message, &q.id, at / 1_000_000).await,
            Err(e) => Attempt { error: Some(e.to_string()), permanent: true, duration: started.elapsed(), ..Attempt::default() },
        },
        Err(StoreError::NotFound) => {
            Attempt { error: Some("the channel was deleted".into()), permanent: true, duration: started.elapsed(), ..Attempt::default() }
        }
        Err(e) => Attempt { error: Some(format!("the channel cannot be read: {e}")), duration: started.elapsed(), ..Attempt::default() },
    };
    let now = to_micros(st.clock.now());
    let next = if attempt.ok {
        Next::Succeeded
    } else if attempt.permanent {
        Next::Failed
    } else {
        let failed = usize::try_from(q.attempts + 1 - q.round_start).unwrap_or(usize::MAX);
        match n.schedule.next(failed, rand::random::<f64>(), attempt.retry_after) {
            NextAttempt::After(d) => Next::Retry(now + to_micros_dur(d)),
            NextAttempt::GiveUp => Next::Failed,
        }
    };
    n.delivered(&q.kind, &q.id, &attempt, next);
    let (id, number) = (q.id.clone(), q.attempts + 1);
    let recorded = st.store.write(move |c| queue::record(c, &id, number, at, &attempt, next, now)).await;
    if let Err(e) = recorded {
        tracing::warn!(notification = %q.id, error = %e, "cannot record a notification attempt; it will be sent again");
    }
}
