//! The dispatcher: fans outbox rows out into deliveries, claims the due ones, posts them and
//! records every attempt.
//!
//! One task owns the loop; it wakes when a transaction commits (the store's commit signal),
//! when a request finishes, when a retry falls due, or when webhooks change — there is no
//! polling delay, only a slow fallback tick.
//!
//! - **Fan-out**: one write reads the outbox after the cursor, inserts a delivery per (event,
//!   active webhook of the event's tenant subscribed to its type, created before the event) and
//!   moves the cursor, in one transaction: an event is fanned out exactly once, even across
//!   a crash.
//! - **Claim**: per webhook with free capacity (`max_in_flight` requests), the pending
//!   deliveries in due order. Claims are in memory (one dispatcher per database): a delivery in
//!   flight is skipped until its attempt is recorded; after a restart nothing is in flight, so
//!   every pending delivery is due again — at least once, never lost.
//! - **Send**: the webhook's format renders the body (SIEM formats batch up to `batch_max`
//!   events, or fewer once the oldest has waited `batch_ms`); Standard Webhooks headers signed
//!   with the current secret (and the previous one during a rotation), custom headers, the
//!   bearer token. `webhook-id` is the event id (a batch's: derived from its event ids), the
//!   same on every retry.
//! - **Record**: one write logs the attempt, marks the deliveries delivered, or schedules the
//!   next attempt (the retry schedule with jitter, `Retry-After`), or gives up when the schedule
//!   is spent; updates the webhook's health; a 410 or five days of failure disable the webhook
//!   and emit `webhook.disabled`.
use crate::client::{Outcome, Request};
use crate::format::Format;
use crate::model::Stored;
use crate::schedule::{NextAttempt, parse_retry_after};
use crate::service::{WEBHOOK_DISABLED, Webhooks, body, format_options, log_attempt, sign_with};
use crate::signature::SigningSecret;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;

/// Outbox rows fanned out per transaction.
const FANOUT_BATCH: i64 = 1000;
/// The loop wakes at least this often (a safety net; every real cause wakes it directly).
const FALLBACK_TICK: Duration = Duration::from_secs(5);
/// After a store error, the loop waits this long before trying again.
const ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// A webhook as the dispatcher uses it: settings and opened secrets.
pub(crate) struct Endpoint {
    pub(crate) id: String,
    pub(crate) tenant: String,
    url: String,
    format: Format,
    batch_max: usize,
    batch_ms: i64,
    max_in_flight: usize,
    headers: Vec<(String, String)>,
    secret: SigningSecret,
    previous: Option<(SigningSecret, i64)>,
    options: crate::format::FormatOptions,
}

impl Endpoint {
    pub(crate) fn from_stored(svc: &Webhooks, s: &Stored) -> Result<Endpoint, StoreError> {
        let w = &s.webhook;
        let secrets = svc.unseal(&w.id, &s.sealed)?;
        let parse = |x: &str| SigningSecret::parse(x).map_err(|e| StoreError::Commit(format!("webhook {}: {e}", w.id)));
        let mut headers = secrets.headers.clone();
        if let Some(t) = &secrets.auth_token {
            headers.push(("Authorization".into(), format!("Bearer {t}")));
        }
        let previous = match (&secrets.previous, s.previous_expires_us) {
            (Some(p), Some(until)) => Some((parse(p)?, until)),
            _ => None,
        };
        Ok(Endpoint {
            id: w.id.clone(),
            tenant: s.tenant_id.clone(),
            url: w.url.clone(),
            format: Format::parse(&w.format).unwrap_or(Format::Standard),
            batch_max: if Format::parse(&w.format).is_some_and(Format::batches) { w.batch_max.max(1) as usize } else { 1 },
            batch_ms: i64::from(w.batch_ms) * 1000,
            max_in_flight: w.max_in_flight.max(1) as usize,
            headers,
            secret: parse(&secrets.secret)?,
            previous,
            options: format_options(w.sourcetype.clone(), &secrets),
        })
    }

    /// The request carrying `events` (id, payload), signed at `timestamp` (seconds).
    pub(crate) fn request(&self, events: &[(&str, &str)], timestamp: i64) -> Result<Request, crate::format::FormatError> {
        let payloads: Vec<&str> = events.iter().map(|e| e.1).collect();
        let body = body(self.format, &payloads, &self.options)?;
        let message_id = message_id(events.iter().map(|e| e.0));
        let mut secrets = vec![self.secret.clone()];
        if let Some((p, until)) = &self.previous
            && timestamp.saturating_mul(1_000_000) < *until
        {
            secrets.push(p.clone());
        }
        let signed = sign_with(&message_id, timestamp, &body, &secrets);
        let mut headers = self.headers.clone();
        headers.extend(signed.pairs().into_iter().map(|(k, v)| (k.to_owned(), v)));
        Ok(Request { url: self.url.clone(), headers, body, content_type: self.format.content_type() })
    }
}

/// The `webhook-id` of a request: the event's id for one event; for a batch, `bat_` and a hash
/// of its event ids (the same batch retried keeps its id).
pub fn message_id<'a>(mut ids: impl ExactSizeIterator<Item = &'a str>) -> String {
    if ids.len() == 1 {
        return ids.next().unwrap_or_default().to_owned();
    }
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    let d = h.finalize();
    let hex: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("bat_{hex}")
}

/// A webhook's place in the loop.
struct Slot {
    endpoint: Arc<Endpoint>,
    /// False once the webhook is disabled or deleted: the slot is kept only until its requests
    /// in flight finish, so a quick re-enable cannot send them twice or overfill the slot.
    active: bool,
    /// Deliveries in flight (claimed, attempt not yet recorded).
    in_flight: HashSet<i64>,
    /// Requests in flight.
    requests: usize,
    /// Something may be due: new deliveries, a finished request, a replay, a reload.
    dirty: bool,
    /// The earliest known future due time (a retry, a partial batch's deadline).
    next_due: Option<Instant>,
}

impl Slot {
    fn new(endpoint: Arc<Endpoint>) -> Slot {
        Slot { endpoint, active: true, in_flight: HashSet::new(), requests: 0, dirty: true, next_due: None }
    }
}

/// A finished request, after its attempt was recorded (or the dispatcher gave up recording it).
struct Done {
    webhook: String,
    deliveries: Vec<i64>,
    disabled: bool,
    /// Whether it frees a request slot (false for the unreadable part of a batch sent anyway).
    request: bool,
}

/// Sends a task's [`Done`] when dropped, so even a task that panics releases its claims.
struct DoneGuard {
    tx: mpsc::UnboundedSender<Done>,
    done: Option<Done>,
}

impl DoneGuard {
    fn new(tx: mpsc::UnboundedSender<Done>, webhook: &str, deliveries: Vec<i64>, request: bool) -> DoneGuard {
        DoneGuard { tx, done: Some(Done { webhook: webhook.to_owned(), deliveries, disabled: false, request }) }
    }

    fn disabled(&mut self, disabled: bool) {
        if let Some(d) = &mut self.done {
            d.disabled = disabled;
        }
    }
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        if let Some(d) = self.done.take() {
            let _ = self.tx.send(d);
        }
    }
}

/// A pending delivery, as the claim reads it (payload fetched only for those sent).
struct Due {
    id: i64,
    seq: i64,
    event_id: String,
    event_type: String,
    attempts: i64,
    next_at: i64,
    updated_at: i64,
}

/// A claimed delivery with its event.
struct Claimed {
    due: Due,
    created_at: i64,
    payload: String,
}

/// A claimed delivery whose event cannot be sent: its outbox row is gone or unreadable.
struct Unsendable {
    due: Due,
    why: String,
}

pub(crate) async fn run(svc: Webhooks, shutdown: CancellationToken) {
    let inner = svc.0.clone();
    let mut commits = inner.store.commit_signal();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut slots: HashMap<String, Slot> = HashMap::new();
    let mut generation = u64::MAX;
    let mut fanned: i64 = -1;
    let mut sends = JoinSet::new();
    let mut next_prune = Instant::now() + inner.settings.prune_every;
    let mut pruning: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        if Instant::now() >= next_prune {
            // Its own task: the loop keeps delivering while old rows are deleted. A round still
            // running when the next falls due is not doubled; the next is simply later.
            if pruning.as_ref().is_none_or(|p| p.is_finished()) {
                let svc = svc.clone();
                pruning = Some(tokio::spawn(async move {
                    if let Err(e) = prune(&svc).await {
                        tracing::warn!(error = %e, "webhook log pruning failed; it is tried again later");
                    }
                }));
            }
            next_prune = Instant::now() + inner.settings.prune_every;
        }
        let mut next_wake = (Instant::now() + FALLBACK_TICK).min(next_prune);
        let current = inner.generation.load(Ordering::Acquire);
        let step = async {
            if current != generation {
                reload(&svc, &mut slots).await?;
                generation = current;
            }
            // With no active webhook nothing is fanned out (no write per event commit); the
            // cursor catches up from the first webhook's active_since_seq.
            let (last, touched) = if slots.values().any(|s| s.active) { fan_out(&svc, fanned).await? } else { (fanned, HashSet::new()) };
            fanned = last;
            for id in touched {
                if let Some(slot) = slots.get_mut(&id) {
                    slot.dirty = true;
                }
            }
            claim(&svc, &mut slots, &mut sends, &done_tx, &shutdown).await
        };
        if let Err(e) = step.await {
            tracing::error!(error = %e, "webhook dispatcher: a database step failed; retrying shortly");
            next_wake = Instant::now() + ERROR_BACKOFF;
            generation = u64::MAX;
        }
        if let Some(due) = slots.values().filter(|s| s.active).filter_map(|s| s.next_due).min() {
            next_wake = next_wake.min(due);
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = done_rx.recv() => {
                let mut reload_needed = finish(&mut slots, done);
                while let Ok(d) = done_rx.try_recv() {
                    reload_needed |= finish(&mut slots, d);
                }
                if reload_needed {
                    generation = u64::MAX;
                }
            }
            changed = commits.changed() => if changed.is_err() { break },
            _ = inner.wake.notified() => {
                // A replay (or a change): anything may be due.
                for slot in slots.values_mut() {
                    slot.dirty = true;
                }
            }
            Some(_) = sends.join_next() => {}
            _ = tokio::time::sleep_until(next_wake) => {}
        }
        while sends.try_join_next().is_some() {}
    }
    // Requests in flight get a moment to finish and be recorded; the rest stay pending and are
    // sent again after the restart.
    let _ = tokio::time::timeout(inner.settings.shutdown_grace, async { while sends.join_next().await.is_some() {} }).await;
    sends.abort_all();
    if let Some(p) = pruning {
        p.abort();
    }
}

/// Rows deleted per transaction by the pruning and purging jobs.
const CHUNK: i64 = 5000;

/// Deletes attempts, and finished deliveries, older than the log retention, and what a deleted
/// webhook left (should its purge have been cut short); in chunks, each its own transaction, so
/// the writer is never held long.
async fn prune(svc: &Webhooks) -> Result<(), StoreError> {
    let cutoff = svc.now_us() - svc.0.settings.log_retention.as_micros() as i64;
    for sql in [
        "DELETE FROM webhook_attempts WHERE rowid IN (SELECT rowid FROM webhook_attempts WHERE attempted_at < ?1 LIMIT ?2)",
        "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM webhook_deliveries WHERE state != 'pending' AND updated_at < ?1 LIMIT ?2)",
    ] {
        loop {
            let n = svc.0.store.write(move |c| Ok::<_, StoreError>(c.execute(sql, params![cutoff, CHUNK])? as i64)).await?;
            if n < CHUNK {
                break;
            }
        }
    }
    // Found on a reader, which does not hold up writes.
    let orphans: Vec<String> = svc
        .0
        .store
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT webhook_id FROM (SELECT DISTINCT webhook_id FROM webhook_deliveries UNION SELECT DISTINCT webhook_id FROM webhook_attempts) \
                 WHERE webhook_id NOT IN (SELECT id FROM webhooks)",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await?;
    for id in orphans {
        purge(svc, &id).await?;
    }
    Ok(())
}

/// Deletes the deliveries and attempts of a deleted webhook, in chunks.
pub(crate) async fn purge(svc: &Webhooks, webhook: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM webhook_deliveries WHERE webhook_id = ?1 LIMIT ?2)",
        "DELETE FROM webhook_attempts WHERE rowid IN (SELECT rowid FROM webhook_attempts WHERE webhook_id = ?1 LIMIT ?2)",
    ] {
        loop {
            let id = webhook.to_owned();
            let n = svc.0.store.write(move |c| Ok::<_, StoreError>(c.execute(sql, params![id, CHUNK])? as i64)).await?;
            if n < CHUNK {
                break;
            }
        }
    }
    Ok(())
}

fn finish(slots: &mut HashMap<String, Slot>, done: Done) -> bool {
    let mut drop_slot = false;
    if let Some(slot) = slots.get_mut(&done.webhook) {
        if done.request {
            slot.requests = slot.requests.saturating_sub(1);
        }
        for d in &done.deliveries {
            slot.in_flight.remove(d);
        }
        slot.dirty = true;
        drop_slot = !slot.active && slot.requests == 0;
    }
    if drop_slot {
        slots.remove(&done.webhook);
    }
    done.disabled
}

/// Loads the active webhooks. A slot keeps its in-flight state across reloads, and a webhook no
/// longer active keeps an inactive slot until its requests in flight finish.
async fn reload(svc: &Webhooks, slots: &mut HashMap<String, Slot>) -> Result<(), StoreError> {
    let stored: Vec<Stored> = svc
        .0
        .store
        .read(|c| {
            let mut stmt = c.prepare(&format!("SELECT {} FROM webhooks WHERE active = 1", crate::model::cols(false)))?;
            let rows = stmt.query_map([], crate::model::from_row)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await?;
    let mut next = HashMap::with_capacity(stored.len());
    for s in &stored {
        match Endpoint::from_stored(svc, s) {
            Ok(e) => {
                let endpoint = Arc::new(e);
                let slot = match slots.remove(&endpoint.id) {
                    Some(old) => {
                        Slot { endpoint, in_flight: old.in_flight, requests: old.requests, ..Slot::new(Arc::clone(&old.endpoint)) }
                    }
                    None => Slot::new(endpoint),
                };
                next.insert(slot.endpoint.id.clone(), slot);
            }
            Err(e) => tracing::error!(webhook = %s.webhook.id, error = %e, "webhook skipped: its settings cannot be read"),
        }
    }
    for (id, mut old) in slots.drain() {
        if old.requests > 0 {
            old.active = false;
            next.insert(id, old);
        }
    }
    *slots = next;
    Ok(())
}

/// Fans the outbox out after `fanned` (the last seq done; -1 before the first look); returns the
/// new cursor and the webhooks that got deliveries.
async fn fan_out(svc: &Webhooks, fanned: i64) -> Result<(i64, HashSet<String>), StoreError> {
    let newest: i64 =
        svc.0.store.read(|c| c.query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |r| r.get(0)).map_err(StoreError::from)).await?;
    let mut done = fanned;
    let mut touched = HashSet::new();
    while newest > done {
        let now = svc.now_us();
        let first = svc.0.settings.schedule.first().as_micros() as i64;
        let (last, rows, hooks) = svc.0.store.write(move |c| fan_out_batch(c, now, first)).await?;
        done = last;
        touched.extend(hooks);
        if rows < FANOUT_BATCH {
            break;
        }
    }
    Ok((done, touched))
}

/// One fan-out transaction: returns the cursor after it, the outbox rows it read and the
/// webhooks that got deliveries. A webhook gets the events committed after it was created or
/// enabled again (by outbox sequence, not by clock).
fn fan_out_batch(c: &Connection, now: i64, first_delay: i64) -> Result<(i64, i64, HashSet<String>), StoreError> {
    let stored: i64 = c.query_row("SELECT seq FROM webhook_cursor WHERE id = 1", [], |r| r.get(0))?;
    // Events before every active webhook's active_since_seq go nowhere: skip them.
    let floor: Option<i64> = c.query_row("SELECT MIN(active_since_seq) FROM webhooks WHERE active = 1", [], |r| r.get(0))?;
    let cursor = floor.map_or(stored, |f| stored.max(f));
    let mut read = c.prepare_cached("SELECT seq, id, tenant_id, event_type FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let events: Vec<(i64, String, String, String)> =
        read.query_map(params![cursor, FANOUT_BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<Result<_, _>>()?;
    let mut touched = HashSet::new();
    if events.is_empty() {
        return Ok((cursor, 0, touched));
    }
    let hooks: Vec<(String, String, Vec<String>, i64)> = {
        let mut stmt = c.prepare_cached("SELECT id, tenant_id, events, active_since_seq FROM webhooks WHERE active = 1")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?)))?;
        let mut v = Vec::new();
        for row in rows {
            let (id, tenant, events, created): (String, String, String, i64) = row?;
            v.push((id, tenant, serde_json::from_str(&events).unwrap_or_default(), created));
        }
        v
    };
    let mut insert = c.prepare_cached(
        "INSERT OR IGNORE INTO webhook_deliveries (webhook_id, tenant_id, event_seq, event_id, event_type, state, attempts, next_attempt_at, \
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, ?7)",
    )?;
    for (seq, id, tenant, kind) in &events {
        for (hook, hook_tenant, subscribed, since) in &hooks {
            if hook_tenant == tenant && *seq > *since && subscribed.iter().any(|s| s == kind) {
                insert.execute(params![hook, tenant, seq, id, kind, now + first_delay, now])?;
                touched.insert(hook.clone());
            }
        }
    }
    let last = events.last().map_or(cursor, |e| e.0);
    c.execute("UPDATE webhook_cursor SET seq = ?1 WHERE id = 1", [last])?;
    Ok((last, events.len() as i64, touched))
}

/// Claims due deliveries for the webhooks that have free capacity and may have something due,
/// and starts their requests. Two reads: the pending rows in due order (from the partial
/// index, no payload), then the events of those chosen.
async fn claim(
    svc: &Webhooks,
    slots: &mut HashMap<String, Slot>,
    sends: &mut JoinSet<()>,
    done_tx: &mpsc::UnboundedSender<Done>,
    shutdown: &CancellationToken,
) -> Result<(), StoreError> {
    let now_instant = Instant::now();
    let now = svc.now_us();
    let mut wants: Vec<(String, usize, i64)> = Vec::new();
    for (id, s) in slots.iter_mut() {
        let due_now = s.next_due.is_some_and(|t| t <= now_instant);
        if !s.active || s.requests >= s.endpoint.max_in_flight || !(s.dirty || due_now) {
            continue;
        }
        let free = s.endpoint.max_in_flight - s.requests;
        wants.push((id.clone(), free, (free * s.endpoint.batch_max + s.in_flight.len()) as i64));
    }
    if wants.is_empty() {
        return Ok(());
    }
    let queries: Vec<(String, i64)> = wants.iter().map(|(id, _, limit)| (id.clone(), *limit)).collect();
    let found: Vec<(String, Vec<Due>)> = svc
        .0
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, event_seq, event_id, event_type, attempts, next_attempt_at, updated_at FROM webhook_deliveries \
                 WHERE webhook_id = ?1 AND state = 'pending' ORDER BY next_attempt_at, id LIMIT ?2",
            )?;
            let mut out = Vec::with_capacity(queries.len());
            for (id, limit) in queries {
                let rows = stmt
                    .query_map(params![id, limit], |r| {
                        Ok(Due {
                            id: r.get(0)?,
                            seq: r.get(1)?,
                            event_id: r.get(2)?,
                            event_type: r.get(3)?,
                            attempts: r.get(4)?,
                            next_at: r.get(5)?,
                            updated_at: r.get(6)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                out.push((id, rows));
            }
            Ok::<_, StoreError>(out)
        })
        .await?;
    let wake_at = |us: i64| now_instant + Duration::from_micros(us.saturating_sub(now).max(0) as u64);
    let mut chosen: Vec<(Arc<Endpoint>, Vec<Due>)> = Vec::new();
    for ((id, rows), (_, free, limit)) in found.into_iter().zip(wants) {
        let Some(slot) = slots.get_mut(&id) else { continue };
        // A full page may hide more due rows: look again at the next wake.
        slot.dirty = rows.len() as i64 >= limit;
        slot.next_due = None;
        let mut due: Vec<Due> = Vec::new();
        for row in rows {
            if slot.in_flight.contains(&row.id) {
                continue;
            }
            if row.next_at > now {
                slot.next_due = Some(wake_at(row.next_at));
                break;
            }
            due.push(row);
        }
        let ep = slot.endpoint.clone();
        let mut started = 0;
        while !due.is_empty() && started < free {
            let oldest = due.iter().map(|d| d.next_at).min().unwrap_or(now);
            if due.len() < ep.batch_max && ep.batch_max > 1 && oldest + ep.batch_ms > now {
                // A partial batch waits for more events until its oldest has waited batch_ms.
                let deadline = wake_at(oldest + ep.batch_ms);
                slot.next_due = Some(slot.next_due.map_or(deadline, |t| t.min(deadline)));
                break;
            }
            let batch: Vec<Due> = due.drain(..due.len().min(ep.batch_max)).collect();
            for d in &batch {
                slot.in_flight.insert(d.id);
            }
            slot.requests += 1;
            started += 1;
            chosen.push((ep.clone(), batch));
        }
    }
    if chosen.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = chosen.iter().flat_map(|(_, b)| b.iter().map(|d| d.seq)).collect();
    // Each row on its own: one unreadable event fails its delivery, not the round.
    let events: HashMap<i64, Result<(i64, String), String>> = match svc
        .0
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached("SELECT created_at, payload FROM outbox WHERE seq = ?1")?;
            let mut out = HashMap::with_capacity(seqs.len());
            for seq in seqs {
                let row = match stmt.query_row([seq], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).optional() {
                    Ok(Some(row)) => Ok(row),
                    Ok(None) => Err("the event is no longer in the outbox".to_owned()),
                    Err(e) => Err(format!("the event cannot be read from the outbox: {e}")),
                };
                out.insert(seq, row);
            }
            Ok::<_, StoreError>(out)
        })
        .await
    {
        Ok(e) => e,
        Err(e) => {
            // Nothing was sent: release the claims here (not through Done, which would wake
            // the loop at once and skip the error pause).
            for (ep, batch) in &chosen {
                if let Some(slot) = slots.get_mut(&ep.id) {
                    slot.requests = slot.requests.saturating_sub(1);
                    for d in batch {
                        slot.in_flight.remove(&d.id);
                    }
                    slot.dirty = true;
                }
            }
            return Err(e);
        }
    };
    for (ep, batch) in chosen {
        let mut sendable = Vec::with_capacity(batch.len());
        let mut unsendable = Vec::new();
        for due in batch {
            match events.get(&due.seq).cloned().unwrap_or_else(|| Err("the event is no longer in the outbox".into())) {
                Ok((created_at, payload)) => sendable.push(Claimed { due, created_at, payload }),
                Err(why) => unsendable.push(Unsendable { due, why }),
            }
        }
        let request_taken = !sendable.is_empty();
        if !unsendable.is_empty() {
            sends.spawn(give_up(svc.clone(), ep.clone(), unsendable, done_tx.clone(), !request_taken));
        }
        if request_taken {
            sends.spawn(deliver(svc.clone(), ep, sendable, done_tx.clone(), shutdown.clone()));
        }
    }
    Ok(())
}

/// Fails deliveries whose event cannot be sent, with the reason in the log.
async fn give_up(svc: Webhooks, ep: Arc<Endpoint>, items: Vec<Unsendable>, done: mpsc::UnboundedSender<Done>, request: bool) {
    let _guard = DoneGuard::new(done, &ep.id, items.iter().map(|u| u.due.id).collect(), request);
    let at = svc.now_us();
    let tenant = ep.tenant.clone();
    let webhook = ep.id.clone();
    let result = svc
        .0
        .store
        .write(move |c| {
            for u in &items {
                tracing::error!(webhook = %webhook, event = %u.due.event_id, reason = %u.why, "a delivery failed for good: its event cannot be sent");
                c.prepare_cached(
                    "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, next_attempt_at = NULL, updated_at = ?2 \
                     WHERE id = ?1 AND state = 'pending' AND updated_at = ?3",
                )?
                .execute(params![u.due.id, at.max(u.due.updated_at + 1), u.due.updated_at])?;
                let o = Outcome { status: None, error: Some(u.why.clone()), latency: Duration::ZERO, excerpt: String::new(), retry_after: None };
                log_attempt(c, &webhook, &tenant, at, "delivery", &u.due.event_id, &[u.due.event_id.as_str()], &u.due.event_type, u.due.attempts + 1, &o, "failed", None)?;
            }
            Ok::<_, StoreError>(())
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(webhook = %ep.id, error = %e, "an unsendable delivery could not be marked failed; it is tried again");
    }
}

/// Sends one request and records its attempt. The record is written until it succeeds (with a
/// growing pause), so a database that refuses writes does not turn into a resend storm; at
/// shutdown the delivery stays pending and is sent again after the restart.
async fn deliver(svc: Webhooks, ep: Arc<Endpoint>, batch: Vec<Claimed>, done: mpsc::UnboundedSender<Done>, shutdown: CancellationToken) {
    let mut guard = DoneGuard::new(done, &ep.id, batch.iter().map(|d| d.due.id).collect(), true);
    let at = svc.now();
    let events: Vec<(&str, &str)> = batch.iter().map(|d| (d.due.event_id.as_str(), d.payload.as_str())).collect();
    let outcome = match ep.request(&events, at.timestamp()) {
        Ok(req) => svc.0.client.send(req).await,
        Err(e) => Outcome { status: None, error: Some(e.to_string()), latency: Duration::ZERO, excerpt: String::new(), retry_after: None },
    };
    let record = Arc::new(Record {
        webhook: ep.id.clone(),
        tenant: ep.tenant.clone(),
        at: vigie_core::clock::to_micros(at),
        message: message_id(batch.iter().map(|d| d.due.event_id.as_str())),
        deliveries: batch
            .iter()
            .map(|d| Delivery {
                id: d.due.id,
                event_id: d.due.event_id.clone(),
                event_type: d.due.event_type.clone(),
                attempts: d.due.attempts,
                updated_at: d.due.updated_at,
            })
            .collect(),
        // One draw per request: a batch retried keeps its events together, in order.
        jitter: rand::random::<f64>(),
        outcome,
    });
    let mut pause = Duration::from_millis(100);
    let disabled = loop {
        let (svc2, r) = (svc.clone(), record.clone());
        match svc.0.store.write(move |c| record_attempt(&svc2, c, &r)).await {
            Ok(recorded) => {
                let stats = &svc.0.stats;
                stats.requests.get_or_create(&crate::service::OutcomeLabel { outcome: recorded.outcome }).inc();
                stats.request_seconds.observe(record.outcome.latency.as_secs_f64());
                if record.outcome.success() {
                    stats.events_delivered.inc_by(batch.len() as u64);
                    let now = svc.now_us();
                    for d in &batch {
                        stats.delivery_lag_seconds.observe((now - d.created_at).max(0) as f64 / 1e6);
                    }
                }
                if recorded.started_failing {
                    tracing::warn!(webhook = %ep.id, error = %recorded.summary, "webhook failing: deliveries are being retried");
                }
                break recorded.disabled;
            }
            Err(e) => {
                tracing::warn!(webhook = %ep.id, error = %e, "a delivery attempt could not be recorded; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => break false,
                    _ = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    };
    guard.disabled(disabled);
}

/// A delivery as claimed.
struct Delivery {
    id: i64,
    event_id: String,
    event_type: String,
    attempts: i64,
    /// Its `updated_at` when claimed: a replay in the meantime changes it, and the record then
    /// leaves the replayed delivery alone.
    updated_at: i64,
}

struct Record {
    webhook: String,
    tenant: String,
    at: i64,
    message: String,
    deliveries: Vec<Delivery>,
    jitter: f64,
    outcome: Outcome,
}

/// What recording an attempt did.
struct Recorded {
    /// The attempt's outcome in the log.
    outcome: &'static str,
    /// The webhook was disabled by it.
    disabled: bool,
    /// The webhook was healthy before this failure.
    started_failing: bool,
    /// The status or error in a few words.
    summary: String,
}

/// Records one request's outcome: the attempt, each delivery's next state, the webhook's
/// health.
fn record_attempt(svc: &Webhooks, c: &Connection, r: &Record) -> Result<Recorded, StoreError> {
    let summary = r.outcome.summary();
    let recorded = |outcome, disabled, started_failing| Recorded { outcome, disabled, started_failing, summary: summary.clone() };
    let Some((failing_since, failures)): Option<(Option<i64>, i64)> = c
        .prepare_cached("SELECT failing_since, consecutive_failures FROM webhooks WHERE id = ?1")?
        .query_row([&r.webhook], |row| Ok((row.get(0)?, row.get(1)?)))
        .map(Some)
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?
    else {
        // Deleted while the request was in flight.
        return Ok(recorded("deleted", false, false));
    };
    let o = &r.outcome;
    let schedule = &svc.0.settings.schedule;
    let retry_after = o.retry_after.as_deref().and_then(|v| parse_retry_after(v, r.at / 1_000_000));
    let success = o.success();
    let since = failing_since.unwrap_or(r.at);
    let disable_reason = if o.gone() {
        Some("the receiver answered 410 Gone".to_owned())
    } else if !success && schedule.disables(Duration::from_micros((r.at - since).max(0) as u64)) {
        Some(format!("every delivery failed for {} (last: {})", human(r.at - since), o.summary()))
    } else {
        None
    };
    let mut first_outcome = "delivered";
    let mut first_next = None;
    for (i, d) in r.deliveries.iter().enumerate() {
        let tried = d.attempts + 1;
        let (state, next) = if success {
            ("delivered", None)
        } else {
            match schedule.next(tried as usize, r.jitter, retry_after) {
                NextAttempt::After(d) => ("pending", Some(r.at + d.as_micros() as i64)),
                NextAttempt::GiveUp => ("failed", None),
            }
        };
        if i == 0 {
            first_outcome = match (state, &disable_reason) {
                ("delivered", _) => "delivered",
                (_, Some(_)) => "disabled",
                ("pending", None) => "retrying",
                _ => "failed",
            };
            first_next = next;
        }
        c.prepare_cached(
            "UPDATE webhook_deliveries SET state = ?2, attempts = ?3, next_attempt_at = ?4, updated_at = ?5 \
             WHERE id = ?1 AND state = 'pending' AND updated_at = ?6",
        )?
        .execute(params![d.id, state, tried, next, r.at.max(d.updated_at + 1), d.updated_at])?;
    }
    let ids: Vec<&str> = r.deliveries.iter().map(|d| d.event_id.as_str()).collect();
    let (event_type, attempt) = r.deliveries.first().map_or(("", 1), |d| (d.event_type.as_str(), d.attempts + 1));
    log_attempt(c, &r.webhook, &r.tenant, r.at, "delivery", &r.message, &ids, event_type, attempt, o, first_outcome, first_next)?;
    if success {
        c.prepare_cached(
            "UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = ?2, last_error = NULL WHERE id = ?1",
        )?
        .execute(params![r.webhook, r.at])?;
        return Ok(recorded(first_outcome, false, false));
    }
    c.prepare_cached(
        "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, ?2), \
         last_failure_at = ?2, last_error = ?3 WHERE id = ?1",
    )?
    .execute(params![r.webhook, r.at, o.summary()])?;
    let Some(reason) = disable_reason else { return Ok(recorded(first_outcome, false, failures == 0)) };
    let changed = c.execute(
        "UPDATE webhooks SET active = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1 AND active = 1",
        params![r.webhook, reason, r.at],
    )?;
    if changed == 1 {
        tracing::warn!(webhook = %r.webhook, reason = %reason, "webhook disabled");
        let at = vigie_core::clock::from_micros(r.at);
        let tenant = uuid::Uuid::parse_str(&r.tenant).unwrap_or_default();
        crate::outbox::emit(
            c,
            svc.0.ids.at(at),
            &svc.0.settings.event_source,
            tenant,
            WEBHOOK_DISABLED,
            at,
            &json!({"webhook_id": r.webhook, "reason": reason, "consecutive_failures": failures + 1, "failing_since": vigie_core::clock::from_micros(since)}),
        )?;
    }
    Ok(recorded(first_outcome, true, failures == 0))
}

/// `5 d 0 h`, `3 h 20 min`, `12 s`.
fn human(us: i64) -> String {
    let s = us / 1_000_000;
    match s {
        s if s >= 86_400 => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_the_event_id_alone_and_a_batch_id_is_stable() {
        assert_eq!(message_id(["evt_1"].into_iter()), "evt_1");
        let a = message_id(["evt_1", "evt_2"].into_iter());
        assert_eq!(a, message_id(["evt_1", "evt_2"].into_iter()));
        assert_ne!(a, message_id(["evt_2", "evt_1"].into_iter()));
        assert!(a.starts_with("bat_") && a.len() == 36, "{a}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(5 * 86_400_000_000 + 3_600_000_000), "5 d 1 h");
        assert_eq!(human(12_000_000), "12 s");
        assert_eq!(human(200 * 60_000_000), "3 h 20 min");
    }
}
