//! Retention: events older than their space's `retention_days` (default three years) are
//! deleted by a background job, in 5,000-row transactions so intake is never held up for long.
use crate::state::XdrState;
use rusqlite::params;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;

const CHUNK: i64 = 5000;

/// Deletes every space's events past its retention; returns how many.
pub async fn apply(st: &XdrState) -> Result<u64, StoreError> {
    let spaces: Vec<(String, i64)> = st
        .store
        .read(|c| {
            let mut stmt = c.prepare("SELECT id, retention_days FROM spaces")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
        })
        .await?;
    let now = to_micros(st.clock.now());
    let mut deleted = 0u64;
    for (space, days) in spaces {
        let cutoff = now - days.saturating_mul(86_400_000_000);
        loop {
            let s = space.clone();
            let n = st
                .store
                .write(move |c| {
                    Ok::<_, StoreError>(c.execute(
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE space_id = ?1 AND timestamp < ?2 ORDER BY timestamp LIMIT ?3)",
                        params![s, cutoff, CHUNK],
                    )? as i64)
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

/// Applies retention now and then every `retention_every`, until `shutdown`.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    loop {
        match apply(&st).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "deleted events past their retention"),
            Err(e) => tracing::warn!(error = %e, "retention could not run; it is tried again later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(st.retention_every) => {}
        }
    }
}
