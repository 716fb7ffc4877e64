//! The overview's figures over a time range: interactions per time bucket by action, the top
//! platforms and the top classification types. Aggregated by SQLite (`GROUP BY` over the range
//! of the tenant's `(tenant_id, id)` index: ids are UUIDv7, so a time range is an id range), never
//! by loading interactions into memory.
use crate::model::Action;
use chrono::{DateTime, TimeDelta, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::ids::{max_v7_at, min_v7_at};

/// The most buckets one overview has (30 days of days, 24 hours of hours fit easily).
pub const MAX_BUCKETS: usize = 400;

/// The time range of an overview, cut into equal buckets from `from`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// First moment counted (inclusive); the first bucket starts here.
    pub from: DateTime<Utc>,
    /// Last moment counted (exclusive).
    pub to: DateTime<Utc>,
    /// The length of a bucket (an hour, a day).
    pub bucket: TimeDelta,
}

impl Span {
    /// The number of buckets (the last one may be cut short by `to`), at most [`MAX_BUCKETS`].
    pub fn buckets(&self) -> usize {
        let len = u64::try_from((self.to - self.from).num_microseconds().unwrap_or(0)).unwrap_or(0);
        let step = u64::try_from(self.bucket.num_microseconds().unwrap_or(0)).unwrap_or(0);
        if step == 0 {
            return 0;
        }
        usize::try_from(len.div_ceil(step)).unwrap_or(MAX_BUCKETS).min(MAX_BUCKETS)
    }
}

/// The interactions of one bucket, by action.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// When the bucket starts.
    pub start: DateTime<Utc>,
    /// Blocked.
    pub block: u64,
    /// Coached.
    pub coach: u64,
    /// Logged.
    pub log: u64,
}

impl Bucket {
    /// All interactions of the bucket.
    pub fn total(&self) -> u64 {
        self.block + self.coach + self.log
    }

    fn add(&mut self, action: Action, n: u64) {
        match action {
            Action::Block => self.block += n,
            Action::Coach => self.coach += n,
            Action::Log => self.log += n,
        }
    }
}

/// A platform and how many interactions went to it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformCount {
    /// The platform id interactions carried.
    pub platform_id: String,
    /// Interactions.
    pub interactions: u64,
    /// Of which blocked.
    pub blocked: u64,
}

/// A classification type and how many interactions held it.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeCount {
    /// The type code (`CREDIT_CARD`).
    pub kind: String,
    /// Interactions with at least one classification of this type.
    pub interactions: u64,
}

/// What the overview shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// Every bucket of the span, empty ones included, oldest first.
    pub buckets: Vec<Bucket>,
    /// The platforms with the most interactions, most first.
    pub platforms: Vec<PlatformCount>,
    /// The classification types held by the most interactions, most first.
    pub types: Vec<TypeCount>,
}

impl Overview {
    /// The sums over the span (its `start` is the span's first bucket's).
    pub fn totals(&self, span: &Span) -> Bucket {
        let mut t = Bucket { start: span.from, block: 0, coach: 0, log: 0 };
        for b in &self.buckets {
            t.block += b.block;
            t.coach += b.coach;
            t.log += b.log;
        }
        t
    }
}

/// The tenant's figures over `span`, with the `top` platforms and types.
pub fn overview(c: &Connection, tenant: Uuid, span: &Span, top: usize) -> Result<Overview, StoreError> {
    let n = span.buckets();
    let step = span.bucket.num_microseconds().unwrap_or(1).max(1);
    let mut buckets: Vec<Bucket> =
        (0..n).map(|i| Bucket { start: span.from + span.bucket * i32::try_from(i).unwrap_or(0), block: 0, coach: 0, log: 0 }).collect();
    // ?1–?5 bound the range exactly (created_at) and narrow the index scan (id): an id's
    // millisecond is its created_at's, or later when the clock stepped back (a minute allowed).
    let from_ms = u64::try_from(span.from.timestamp_millis()).unwrap_or(0);
    let to_ms = u64::try_from(span.to.timestamp_millis()).unwrap_or(0);
    let tenant = tenant.to_string();
    let (lo, hi) = (min_v7_at(from_ms).to_string(), max_v7_at(to_ms.saturating_add(60_000)).to_string());
    let (from, to) = (span.from.timestamp_micros(), span.to.timestamp_micros());
    let [per_bucket, per_type] = queries();
    // One pass gives both the buckets and the platforms: its groups are few (buckets × actions ×
    // platforms seen), the rows it reads are many.
    let mut platforms: Vec<PlatformCount> = Vec::new();
    let mut stmt = c.prepare_cached(&per_bucket)?;
    let mut rows = stmt.query(params![tenant, lo, hi, from, to, step])?;
    while let Some(r) = rows.next()? {
        let (i, action, platform, n): (i64, String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (Some(b), Some(a)) = (usize::try_from(i).ok().and_then(|i| buckets.get_mut(i)), Action::parse(&action)) else {
            continue;
        };
        b.add(a, count(n));
        let p = match platforms.iter_mut().position(|p| p.platform_id == platform) {
            Some(k) => &mut platforms[k],
            None => {
                platforms.push(PlatformCount { platform_id: platform, interactions: 0, blocked: 0 });
                let last = platforms.len() - 1;
                &mut platforms[last]
            }
        };
        p.interactions += count(n);
        if a == Action::Block {
            p.blocked += count(n);
        }
    }
    platforms.sort_by(|a, b| b.interactions.cmp(&a.interactions).then_with(|| a.platform_id.cmp(&b.platform_id)));
    platforms.truncate(top);
    let top = i64::try_from(top).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(&per_type)?;
    let types = stmt
        .query_map(params![tenant, lo, hi, from, to, top], |r| Ok(TypeCount { kind: r.get(0)?, interactions: count(r.get(1)?) }))?
        .collect::<Result<_, _>>()?;
    Ok(Overview { buckets, platforms, types })
}

/// The two queries: per bucket, action and platform; per type. Each reads the rows of the
/// tenant's time range: `?1` tenant, `?2`–`?3` id bounds, `?4`–`?5` time bounds; `?6` is the
/// bucket length or the number of types wanted.
fn queries() -> [String; 2] {
    // INDEXED BY: the platform and user indexes also start with tenant_id, and serving a GROUP BY
    // from one of them would read every interaction the tenant ever had, not just the range's.
    const FROM: &str = "FROM interactions AS i INDEXED BY interactions_tenant";
    const RANGE: &str = "i.tenant_id = ?1 AND i.id >= ?2 AND i.id <= ?3 AND i.created_at >= ?4 AND i.created_at < ?5";
    [
        format!(
            "SELECT (i.created_at - ?4) / ?6 AS b, i.action, i.platform_id, COUNT(*) {FROM} WHERE {RANGE} GROUP BY b, i.action, i.platform_id"
        ),
        format!(
            "SELECT json_extract(j.value, '$.type') AS t, COUNT(DISTINCT i.id) {FROM}, json_each(i.classifications) AS j
             WHERE {RANGE} AND i.classification_count > 0 AND t IS NOT NULL GROUP BY t ORDER BY 2 DESC, 1 LIMIT ?6"
        ),
    ]
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("memory db");
        c.execute_batch(include_str!("../../migrations/fw_001_firewall.sql")).expect("schema");
        c
    }

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).single().expect("a valid time")
    }

    fn insert(c: &Connection, tenant: Uuid, t: DateTime<Utc>, platform: &str, action: &str, types: &[&str]) {
        let ms = u64::try_from(t.timestamp_millis()).expect("after 1970");
        let id = Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000));
        let classifications =
            serde_json::to_string(&types.iter().map(|k| serde_json::json!({"type": k, "value": "****1"})).collect::<Vec<_>>())
                .expect("json");
        c.execute(
            "INSERT INTO interactions (id, tenant_id, created_at, platform_id, platform_vetted, interaction_type, direction, source,
             content_hash, classifications, classification_count, risk_score, risk_level, action)
             VALUES (?1, ?2, ?3, ?4, 0, 'prompt', 'outbound', 'api', 'h', ?5, ?6, 0.5, 'medium', ?7)",
            params![id.to_string(), tenant.to_string(), t.timestamp_micros(), platform, classifications, types.len() as i64, action],
        )
        .expect("insert");
    }

    #[test]
    fn figures_are_counted_per_bucket_platform_and_type_within_the_span_and_the_tenant() {
        let c = db();
        let (acme, globex) = (Uuid::from_u128(1), Uuid::from_u128(2));
        insert(&c, acme, at(2, 10), "deepseek", "block", &["CREDIT_CARD", "CREDIT_CARD"]);
        insert(&c, acme, at(2, 11), "deepseek", "block", &["CREDIT_CARD", "EMAIL"]);
        insert(&c, acme, at(3, 9), "chatgpt", "log", &[]);
        insert(&c, acme, at(4, 23), "deepseek", "coach", &["EMAIL"]);
        insert(&c, acme, at(1, 23), "deepseek", "block", &["IBAN"]); // before the span
        insert(&c, acme, at(5, 0), "claude", "log", &["IBAN"]); // at its end (exclusive)
        insert(&c, globex, at(3, 9), "claude", "block", &["IBAN"]); // another tenant
        let span = Span { from: at(2, 0), to: at(5, 0), bucket: TimeDelta::days(1) };
        let o = overview(&c, acme, &span, 10).expect("overview");
        let per_day: Vec<(u32, u64, u64, u64)> =
            o.buckets.iter().map(|b| (chrono::Datelike::day(&b.start), b.block, b.coach, b.log)).collect();
        assert_eq!(per_day, [(2, 2, 0, 0), (3, 0, 0, 1), (4, 0, 1, 0)]);
        let t = o.totals(&span);
        assert_eq!((t.block, t.coach, t.log, t.total()), (2, 1, 1, 4));
        let platforms: Vec<(&str, u64, u64)> = o.platforms.iter().map(|p| (p.platform_id.as_str(), p.interactions, p.blocked)).collect();
        assert_eq!(platforms, [("deepseek", 3, 2), ("chatgpt", 1, 0)]);
        let types: Vec<(&str, u64)> = o.types.iter().map(|t| (t.kind.as_str(), t.interactions)).collect();
        assert_eq!(types, [("CREDIT_CARD", 2), ("EMAIL", 2)], "an interaction counts once per type");
        let one = overview(&c, acme, &span, 1).expect("overview");
        assert_eq!((one.platforms.len(), one.types.len()), (1, 1));
    }

    #[test]
    fn every_query_reads_the_tenants_time_range_through_its_index() {
        let c = db();
        let span = Span { from: at(2, 0), to: at(5, 0), bucket: TimeDelta::hours(1) };
        assert_eq!(span.buckets(), 72);
        let sql = queries();
        for q in sql {
            let plan: Vec<String> = c
                .prepare(&format!("EXPLAIN QUERY PLAN {q}"))
                .expect("plan")
                .query_map(params!["t", "a", "b", 0, 1, 1], |r| r.get::<_, String>(3))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("plan rows");
            assert!(plan.iter().any(|p| p.contains("USING INDEX interactions_tenant (tenant_id=? AND id>? AND id<?)")), "{q}: {plan:?}");
        }
    }
}
