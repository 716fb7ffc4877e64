//! Backtests: a rule over past events, as the consumer would have run it — `Simulation` (also
//! `vigie rules test`), `backtest` over the log, and the API.
use super::{RuleInfo, View, group_by, to_match};
use crate::log::Stored;
use crate::state::XdrState;
use rusqlite::{Connection, params};
use serde_json::Value;
use std::collections::HashMap;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_detect::engine::RuleEntry;
use vigie_detect::{Engine, EventSource, Hit, Kind, States};

/// An alert a backtest would have raised.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WouldAlert {
    /// Its title.
    pub title: String,
    /// Its similarity key.
    pub similarity_key: String,
    /// Matches folded into it.
    pub occurrences: u64,
    /// The first and last event times (RFC 3339).
    pub first_seen: String,
    /// See `first_seen`.
    pub last_seen: String,
    /// The person involved.
    pub user_id: Option<String>,
    /// The platform involved.
    pub platform_id: Option<String>,
    /// The ids of its first events (at most 20).
    pub event_ids: Vec<String>,
    /// What matched first (the window's row, the event's fields).
    pub details: Value,
    #[serde(skip)]
    seqs: Vec<i64>,
}

/// Counts of one day (UTC).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DayCount {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Matches that day.
    pub matches: u64,
    /// Alerts raised that day.
    pub alerts: u64,
}

/// What a backtest found.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Backtest {
    /// Events read.
    pub events: u64,
    /// Matches (events, or windows that fired).
    pub matches: u64,
    /// Alerts it would have raised (each open for the whole range: nobody closes them in a
    /// backtest, so a repeat is an occurrence).
    pub alerts: u64,
    /// Matches the rate limit (30 new alerts in 30 s pauses a rule for 30 min, by event time)
    /// would have suppressed.
    pub suppressed: u64,
    /// Per day with matches.
    pub per_day: Vec<DayCount>,
    /// The first alerts (at most `limit`), in order raised.
    pub would_alert: Vec<WouldAlert>,
    /// The budget ran out before the end of the range: counts cover `from`..`covered_to`.
    pub partial: bool,
    /// The end of what was read (RFC 3339).
    pub covered_to: Option<String>,
}

/// A rule run over events in time order, alerts folded as the consumer folds them.
pub struct Simulation {
    engine: Engine,
    states: States,
    info: RuleInfo,
    limit: usize,
    hits: Vec<Hit>,
    open: HashMap<String, usize>,
    alerts: Vec<WouldAlert>,
    raised: u64,
    recent: std::collections::VecDeque<i64>,
    paused_until: i64,
    out: Backtest,
    days: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Simulation {
    /// A simulation of `program` (named by `info`), showing at most `limit` alerts.
    pub fn new(program: vigie_detect::Program, info: RuleInfo, limit: usize) -> Result<Simulation, vigie_detect::RuleError> {
        let engine = Engine::new(vec![RuleEntry { id: info.id.clone(), program }])?;
        let states = engine.states();
        Ok(Simulation {
            engine,
            states,
            info,
            limit,
            hits: Vec::new(),
            open: HashMap::new(),
            alerts: Vec::new(),
            raised: 0,
            recent: std::collections::VecDeque::new(),
            paused_until: i64::MIN,
            out: Backtest {
                events: 0,
                matches: 0,
                alerts: 0,
                suppressed: 0,
                per_day: Vec::new(),
                would_alert: Vec::new(),
                partial: false,
                covered_to: None,
            },
            days: std::collections::BTreeMap::new(),
        })
    }

    /// Feeds one event (its log position and time, µs).
    pub fn feed(&mut self, event: &dyn EventSource, seq: i64, t: i64) {
        self.out.events += 1;
        self.hits.clear();
        self.engine.evaluate(&mut self.states, event, seq, t, &mut self.hits);
        let hits = std::mem::take(&mut self.hits);
        for hit in &hits {
            self.out.matches += 1;
            let day = from_micros(hit.last).format("%Y-%m-%d").to_string();
            self.days.entry(day.clone()).or_default().0 += 1;
            let m = to_match(0, &self.info, hit, event, Vec::new());
            if let Some(&i) = self.open.get(&m.similarity_key) {
                if let Some(a) = self.alerts.get_mut(i) {
                    a.occurrences += 1;
                    a.last_seen = rfc3339_text(m.last_seen);
                    if a.seqs.len() < 20 {
                        a.seqs.extend(hit.seqs.iter().take(20 - a.seqs.len()));
                    }
                }
                continue;
            }
            // The rate limit, by event time.
            while self.recent.front().is_some_and(|&x| x <= t - crate::alerts::RATE_WINDOW_MICROS) {
                self.recent.pop_front();
            }
            if t < self.paused_until {
                self.out.suppressed += 1;
                continue;
            }
            if self.recent.len() >= crate::alerts::RATE_LIMIT_ALERTS as usize {
                self.paused_until = t + crate::alerts::PAUSE_MICROS;
                self.out.suppressed += 1;
                continue;
            }
            self.recent.push_back(t);
            self.raised += 1;
            self.days.entry(day).or_default().1 += 1;
            self.open.insert(m.similarity_key.clone(), self.alerts.len());
            if self.alerts.len() < self.limit {
                self.alerts.push(WouldAlert {
                    title: m.title,
                    similarity_key: m.similarity_key,
                    occurrences: 1,
                    first_seen: rfc3339_text(m.first_seen),
                    last_seen: rfc3339_text(m.last_seen),
                    user_id: m.user_id,
                    platform_id: m.platform_id,
                    event_ids: Vec::new(),
                    details: m.details,
                    seqs: hit.seqs.iter().take(20).copied().collect(),
                });
            } else {
                // Past the alerts shown, only the keys are kept (to fold repeats).
                self.open.insert(m.similarity_key, usize::MAX);
            }
        }
        self.hits = hits;
    }

    /// The result; `name` gives the event id of a log position.
    pub fn finish(mut self, partial: bool, covered_to: Option<i64>, mut name: impl FnMut(i64) -> Option<String>) -> Backtest {
        for a in &mut self.alerts {
            a.event_ids = a.seqs.iter().filter_map(|s| name(*s)).collect();
        }
        self.out.alerts = self.raised;
        self.out.would_alert = self.alerts;
        self.out.per_day = self.days.into_iter().map(|(day, (matches, alerts))| DayCount { day, matches, alerts }).collect();
        self.out.partial = partial;
        self.out.covered_to = covered_to.map(rfc3339_text);
        self.out
    }
}

fn rfc3339_text(us: i64) -> String {
    from_micros(us).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Runs `sim` over space `space_no`'s events of `[from, to)` in time order, within `limits`.
pub fn backtest(
    c: &Connection,
    mut sim: Simulation,
    space_no: i64,
    space_id: &str,
    from: i64,
    to: i64,
    limits: crate::search::SearchLimits,
) -> Result<Backtest, StoreError> {
    let started = std::time::Instant::now();
    let (mut at_t, mut at_seq) = (from, i64::MIN);
    let mut partial = false;
    let mut covered = None;
    let mut stmt = c.prepare_cached(&format!(
        "SELECT seq, {} FROM events WHERE space_no = ?1 AND (timestamp > ?2 OR (timestamp = ?2 AND seq > ?3)) AND timestamp < ?4 \
         ORDER BY timestamp, seq LIMIT 5000",
        crate::log::STORED
    ))?;
    'read: loop {
        let rows: Vec<(i64, Stored)> = stmt
            .query_map(params![space_no, at_t, at_seq, to], |r| Ok((r.get(0)?, Stored::from_row_at(r, 1)?)))?
            .collect::<Result<_, _>>()?;
        let Some((last_seq, last)) = rows.last().map(|(s, e)| (*s, e.timestamp)) else { break };
        for (seq, stored) in rows {
            let t = stored.timestamp;
            sim.feed(&View::new(stored, space_id.to_owned()), seq, t);
            covered = Some(t);
        }
        (at_t, at_seq) = (last, last_seq);
        if started.elapsed() > limits.timeout {
            partial = true;
            break 'read;
        }
    }
    let mut name = c.prepare_cached("SELECT id FROM events WHERE seq = ?1")?;
    Ok(sim.finish(partial, if partial { covered } else { Some(to) }, |seq| name.query_row([seq], |r| r.get(0)).ok()))
}

// ---------------------------------------------------------------------------------------------
// The backtest API

/// The range of a backtest.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BacktestRange {
    /// Start (RFC 3339, inclusive); default seven days before `to`.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Alerts shown, 1–500 (default 50); the counts cover all.
    pub limit: Option<u32>,
}

/// A rule not saved yet, and the range to try it on.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsavedBacktest {
    /// `pipe` or `sigma`.
    #[serde(alias = "type")]
    pub kind: String,
    /// The query, or the Sigma YAML.
    #[serde(alias = "payload")]
    pub source: String,
    /// Its name (the alerts' titles start with it).
    pub name: Option<String>,
    /// Similarity fields.
    #[serde(default)]
    pub similarity: Vec<String>,
    /// Start (RFC 3339, inclusive); default seven days before `to`.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Alerts shown, 1–500 (default 50).
    pub limit: Option<u32>,
}

fn range(
    st: &XdrState,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
    limit: Option<u32>,
) -> Result<(i64, i64, usize), vigie_core::http::ApiError> {
    let to = to.unwrap_or_else(|| st.clock.now());
    let from = from.unwrap_or(to - chrono::Duration::days(7));
    if from >= to {
        return Err(vigie_core::http::bad_query("from", "from must be before to"));
    }
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(vigie_core::http::bad_query("limit", "limit is 1–500"));
    }
    Ok((vigie_core::clock::to_micros(from), vigie_core::clock::to_micros(to), limit as usize))
}

fn refused(e: vigie_detect::RuleError) -> vigie_core::http::ApiError {
    vigie_core::http::ApiError::validation(vec![vigie_core::http::FieldError::new("source", e.to_string())])
}

async fn run_backtest(
    st: &XdrState,
    caller: &crate::keys::Caller,
    program: vigie_detect::Program,
    info: RuleInfo,
    (from, to, limit): (i64, i64, usize),
) -> Result<axum::Json<Backtest>, vigie_core::http::ApiError> {
    let sim = Simulation::new(program, info, limit).map_err(refused)?;
    let (space_no, space_id, limits) = (caller.space_no, caller.space_id.to_string(), st.search);
    let out = st.store.read(move |c| backtest(c, sim, space_no, &space_id, from, to, limits)).await?;
    Ok(axum::Json(out))
}

/// Try a saved rule over past events: the matches, the alerts it would have raised and counts
/// per day (needs `rules_read` and `events_read`: it shows events).
#[utoipa::path(post, path = "/api/v1/rules/{id}/backtest", tag = "rules", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = BacktestRange, responses((status = 200, body = Backtest), (status = 404)))]
pub async fn backtest_saved(
    axum::extract::State(st): axum::extract::State<XdrState>,
    crate::keys::Authorized(caller, _): crate::keys::Authorized<crate::keys::RulesRead>,
    axum::extract::Path(id): axum::extract::Path<String>,
    vigie_core::http::ApiJson(r): vigie_core::http::ApiJson<BacktestRange>,
) -> Result<axum::Json<Backtest>, vigie_core::http::ApiError> {
    caller.require(crate::keys::Scope::EventsRead)?;
    let range = range(&st, r.from, r.to, r.limit)?;
    let space_no = caller.space_no;
    let row: Option<(String, String, String, i64, String, i64)> = st
        .store
        .read(move |c| {
            use rusqlite::OptionalExtension;
            c.query_row(
                "SELECT kind, source, name, severity, similarity, version FROM rules WHERE id = ?1 AND space_no = ?2",
                params![id, space_no],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()
            .map_err(StoreError::from)
        })
        .await?;
    let (kind, source, name, severity, similarity, version) = row.ok_or_else(|| vigie_core::http::ApiError::not_found("rule"))?;
    let kind = Kind::parse(&kind).ok_or_else(|| vigie_core::http::ApiError::internal("a stored rule has an unknown kind"))?;
    let program = vigie_detect::compile(kind, &source).map_err(refused)?;
    let info = RuleInfo {
        id: String::new(),
        version,
        name,
        severity: severity.clamp(0, 100) as u8,
        similarity: serde_json::from_str(&similarity).unwrap_or_default(),
        group_by: group_by(&program),
    };
    run_backtest(&st, &caller, program, info, range).await
}

/// Try a rule before saving it, over past events (needs `rules_read` and `events_read`).
#[utoipa::path(post, path = "/api/v1/rules/backtest", tag = "rules", security(("bearer" = [])),
    request_body = UnsavedBacktest, responses((status = 200, body = Backtest), (status = 422)))]
pub async fn backtest_unsaved(
    axum::extract::State(st): axum::extract::State<XdrState>,
    crate::keys::Authorized(caller, _): crate::keys::Authorized<crate::keys::RulesRead>,
    vigie_core::http::ApiJson(r): vigie_core::http::ApiJson<UnsavedBacktest>,
) -> Result<axum::Json<Backtest>, vigie_core::http::ApiError> {
    caller.require(crate::keys::Scope::EventsRead)?;
    let range = range(&st, r.from, r.to, r.limit)?;
    let kind = Kind::parse(&r.kind).ok_or_else(|| {
        vigie_core::http::ApiError::validation(vec![vigie_core::http::FieldError::new("kind", "kind is \"pipe\" or \"sigma\"")])
    })?;
    let program = vigie_detect::compile(kind, &r.source).map_err(refused)?;
    let info = RuleInfo {
        id: String::new(),
        version: 0,
        name: r.name.unwrap_or_else(|| "Unsaved rule".into()),
        severity: 50,
        similarity: r.similarity,
        group_by: group_by(&program),
    };
    run_backtest(&st, &caller, program, info, range).await
}
