//! Retention: events received longer ago than their space's `retention_days` (default three
//! years) are deleted by a background job, in 5,000-row transactions so intake is never held up
//! for long. Age is the time received, not the event's own (a sender's clock, or an old event
//! replayed today, must not delete or keep data against the policy). The log is in receive
//! order, so the rows to delete are a prefix of it: a binary search on a reader finds its end,
//! and the deletes never scan past it.
use crate::state::XdrState;
use rusqlite::params;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;

const CHUNK: i64 = 5000;

/// Deletes every space's events past its retention; returns how many.
pub async fn apply(st: &XdrState) -> Result<u64, StoreError> {
    let spaces: Vec<(i64, i64)> = st
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT no, retention_days FROM spaces")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await?;
    let now = to_micros(st.clock.now());
    let mut deleted = 0u64;
    for (space, days) in spaces {
        let cutoff = now - days.saturating_mul(86_400_000_000);
        let bound = st.store.read(move |c| last_received_before(c, cutoff)).await?;
        let Some(bound) = bound else { continue };
        loop {
            let (s, deletions) = (space, st.deletions.clone());
            let n = st
                .store
                .write(move |c| {
                    deletions.fetch_add(1, std::sync::atomic::Ordering::Release);
                    let seqs: Vec<i64> = c
                        .prepare_cached(
                            "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE seq <= ?4 AND space_no = ?1 AND received_at < ?2 ORDER BY seq LIMIT ?3) RETURNING seq",
                        )?
                        .query_map(params![s, cutoff, CHUNK, bound], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    // The facts of exactly those events go with them, in the same transaction.
                    crate::facts::forget(c, s, &seqs)?;
                    Ok::<_, StoreError>(seqs.len() as i64)
                })
                .await?;
            deleted += n as u64;
            if n < CHUNK {
                break;
            }
        }
    }
    Ok(deleted)
}

/// The last seq received before `cutoff` (received_at grows with seq: one writer, commit order),
/// by binary search over the rowid; `None` when nothing is that old.
pub(crate) fn last_received_before(c: &rusqlite::Connection, cutoff: i64) -> Result<Option<i64>, StoreError> {
    let (lo, hi): (Option<i64>, Option<i64>) = c.query_row("SELECT MIN(seq), MAX(seq) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(mut lo), Some(mut hi)) = (lo, hi) else { return Ok(None) };
    let mut stmt = c.prepare_cached("SELECT seq, received_at FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1")?;
    let mut at = |seq: i64| -> Result<Option<(i64, i64)>, StoreError> {
        Ok(rusqlite::OptionalExtension::optional(stmt.query_row([seq], |r| Ok((r.get(0)?, r.get(1)?))))?)
    };
    match at(lo)? {
        Some((_, t)) if t < cutoff => {}
        _ => return Ok(None),
    }
    // Invariant: the row at or after lo was received before cutoff; nothing after hi is.
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        match at(mid)? {
            Some((seq, t)) if t < cutoff => lo = seq.max(mid).min(hi),
            _ => hi = mid - 1,
        }
    }
    Ok(Some(lo))
}

/// Applies retention now and then every `retention_every`, until `shutdown`.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    loop {
        match apply(&st).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "deleted events past their retention"),
            Err(e) => tracing::warn!(error = %e, "retention could not run; it is tried again later"),
        }
        if !crate::state::rest(&shutdown, st.retention_every).await {
            return;
        }
    }
}
