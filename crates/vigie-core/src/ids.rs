//! Identifiers: UUIDv7 (time-ordered, so B-tree inserts stay append-only and cursors are id
//! comparisons); prefixes where the compatible API has them (`whk_`, `evt_`) are added where
//! the id is rendered.
use uuid::Uuid;

/// A new time-ordered id. Within one process the ids are strictly increasing.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// The smallest UUIDv7 whose timestamp is `ms` milliseconds since the epoch: with
/// [`max_v7_at`], turns a time range into an id range.
pub fn min_v7_at(ms: u64) -> Uuid {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}

/// The largest UUIDv7 whose timestamp is `ms` milliseconds since the epoch.
pub fn max_v7_at(ms: u64) -> Uuid {
    let mut b = [0xffu8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x7f;
    b[8] = 0xbf;
    Uuid::from_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_bounds_bracket_them() {
        let a = new_id();
        let b = new_id();
        assert!(a < b);
        let ms = a.get_timestamp().map(|t| t.to_unix()).map(|(s, n)| s * 1000 + u64::from(n) / 1_000_000);
        let ms = ms.expect("v7 has a timestamp");
        assert!(min_v7_at(ms) <= a && a <= max_v7_at(ms));
        assert!(max_v7_at(ms - 1) < a);
    }
}

/// Makes UUIDv7 ids from an injected time, monotonic within the generator even when several
/// ids share a millisecond, so an id taken inside a commit orders like the commit.
#[derive(Debug, Default)]
pub struct IdGen {
    ctx: std::sync::Mutex<uuid::ContextV7>,
}

impl IdGen {
    /// An id for time `t`.
    pub fn at(&self, t: chrono::DateTime<chrono::Utc>) -> Uuid {
        let secs = u64::try_from(t.timestamp()).unwrap_or(0);
        let nanos = t.timestamp_subsec_nanos();
        match self.ctx.lock() {
            Ok(ctx) => Uuid::new_v7(uuid::Timestamp::from_unix(&*ctx, secs, nanos)),
            Err(_) => Uuid::now_v7(),
        }
    }
}
