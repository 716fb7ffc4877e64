//! The detection consumer: reads the event log from its checkpoint, evaluates every enabled
//! rule of the event's space, and in ONE transaction writes the alerts, the windows' changed
//! groups and the new checkpoint — so a restart (or a crash) neither misses nor double-counts.
//!
//! Events are read as [`View`]s: the stored event parsed once, the firewall's flat fields
//! derived, and every other field looked up by name on demand — what `log::shown` would show,
//! without building the flattened map (which costs ~16 µs per event, 120× the matching).
use crate::log::Stored;
use crate::state::XdrState;
use rusqlite::{Connection, params};
use serde_json::{Map, Value};
use std::cell::OnceCell;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_detect::engine::RuleEntry;
use vigie_detect::{Engine, EventSource, Hit, Kind, States};
use vigie_query::matcher::Lookup;

/// The consumer's checkpoint name.
pub const CONSUMER: &str = "detection";
/// Events per transaction.
pub const BATCH: usize = 2_000;

// ---------------------------------------------------------------------------------------------
// Events as rules read them

/// A stored event as rules read it: equal, field by field, to what `log::shown` shows. The body
/// is parsed once; the firewall's flat fields are read through it when asked for (nothing is
/// copied), the list of classification types built once if a rule asks for it.
pub struct View {
    stored: Stored,
    space_id: String,
    body: Map<String, Value>,
    /// A firewall event (`normalize::firewall_fields` would give it flat fields).
    firewall: bool,
    id: Value,
    source: Value,
    event_type: Option<Value>,
    space: OnceCell<Value>,
    timestamp: OnceCell<Value>,
    received_at: OnceCell<Value>,
    /// The firewall's flat fields read so far (by position in `normalize::FIREWALL_FIELDS`):
    /// each derived once, when a rule first asks for it.
    derived: [OnceCell<Option<Value>>; FIREWALL_FIELD_COUNT],
    /// The shown event itself, for the rare event whose names could collide once flattened
    /// (a member name holding `.` or `#`, or empty), that nests deeper than flattening goes, or
    /// whose paths would be too long to flatten: lookups then read it.
    shown: Option<Map<String, Value>>,
}

impl View {
    /// Reads a stored event (a body that does not parse shows only the log's fields, as
    /// `log::normalized` does).
    pub fn new(stored: Stored, space_id: String) -> View {
        let body = match serde_json::from_str::<Value>(&stored.body) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let firewall = is_firewall(&body);
        let shown = match irregular(&body) {
            true => match crate::log::shown(&stored, &space_id) {
                Value::Object(m) => Some(m),
                _ => None,
            },
            false => None,
        };
        View {
            shown,
            id: Value::String(stored.id.clone()),
            source: Value::String(stored.source.clone()),
            event_type: stored.event_type.clone().map(Value::String),
            stored,
            space_id,
            body,
            firewall,
            space: OnceCell::new(),
            timestamp: OnceCell::new(),
            received_at: OnceCell::new(),
            derived: Default::default(),
        }
    }

    /// The stored event.
    pub fn stored(&self) -> &Stored {
        &self.stored
    }

    /// A top-level field of the normalised event (the log's fields, then the firewall's flat
    /// fields, then the event's own), whatever its value.
    fn top(&self, name: &str) -> Option<&Value> {
        match name {
            "id" => Some(&self.id),
            "source" => Some(&self.source),
            "event_type" => self.event_type.as_ref(),
            "space_id" => Some(self.space.get_or_init(|| Value::String(self.space_id.clone()))),
            "timestamp" => Some(self.timestamp.get_or_init(|| rfc3339(self.stored.timestamp))),
            "received_at" => Some(self.received_at.get_or_init(|| rfc3339(self.stored.received_at))),
            _ => match self.firewall.then(|| self.derived(name)).flatten() {
                Some(v) => Some(v),
                None => self.body.get(name),
            },
        }
    }

    /// The firewall's flat field `name`, derived on first use.
    fn derived(&self, name: &str) -> Option<&Value> {
        let i = crate::normalize::FIREWALL_FIELDS.iter().position(|f| *f == name)?;
        self.derived[i]
            .get_or_init(|| match name {
                "classification_type" => self.classification_types(),
                _ => self.firewall_field(name).cloned(),
            })
            .as_ref()
    }

    /// The distinct classification types, as `normalize::firewall_fields` lists them.
    fn classification_types(&self) -> Option<Value> {
        let i = self.body.get("data")?.get("interaction")?.as_object()?;
        let Some(Value::Array(cs)) = i.get("classifications") else { return None };
        let mut types: Vec<Value> = Vec::new();
        for c in cs {
            if let Some(t) = c.get("type").filter(|t| t.is_string())
                && !types.contains(t)
            {
                types.push(t.clone());
            }
        }
        Some(Value::Array(types))
    }

    /// What `normalize::firewall_fields` gives `name`, read in place: `None` when it gives
    /// nothing (the event's own field then shows).
    fn firewall_field(&self, name: &str) -> Option<&Value> {
        let data = self.body.get("data").and_then(Value::as_object)?;
        let interaction = data.get("interaction").and_then(Value::as_object);
        let decision = || interaction.and_then(|i| i.get("decision"));
        let policy = || data.get("policy").and_then(Value::as_object);
        match name {
            "timestamp" | "tenant_id" => self.body.get(name),
            "interaction_id" => present(interaction?.get("id")),
            "platform_id" | "user_id" | "user_email" | "risk_score" | "classification_count" | "direction" | "interaction_type" => {
                present(interaction?.get(name))
            }
            "risk_level" => {
                let i = interaction?;
                present(i.get("risk_level")).or_else(|| decision().and_then(|d| d.get("risk_level")))
            }
            "policy_action" => present(decision().and_then(|d| d.get("action"))).or_else(|| policy().and_then(|p| p.get("action"))),
            "policy_name" => present(decision().and_then(|d| d.get("policy_name"))).or_else(|| policy().and_then(|p| p.get("name"))),
            "model" => interaction?.get("content_metadata").and_then(|m| m.get("model")).filter(|v| v.is_string()),
            "alert_severity" => present(data.get("alert").and_then(|a| a.get("severity"))),
            // Derived, not read: `derived` builds it (`classification_types`).
            "classification_type" => None,
            _ => None,
        }
    }
}

/// How many flat fields a firewall event gets.
const FIREWALL_FIELD_COUNT: usize = crate::normalize::FIREWALL_FIELDS.len();

/// `v`, unless it is null.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Whether `normalize::firewall_fields` gives `body` flat fields.
fn is_firewall(body: &Map<String, Value>) -> bool {
    let (Some(kind), Some(data)) = (body.get("type").and_then(Value::as_str), body.get("data").and_then(Value::as_object)) else {
        return false;
    };
    data.get("interaction").is_some_and(Value::is_object) || ["alert.", "policy.", "webhook."].iter().any(|p| kind.starts_with(p))
}

fn rfc3339(us: i64) -> Value {
    Value::String(from_micros(us).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn is_branch(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty())
}

/// `name` in an object whose non-empty objects are shown as dotted paths.
fn find<'a>(top: &dyn Fn(&str) -> Option<&'a Value>, name: &str, depth: usize) -> Option<&'a Value> {
    if let Some(v) = top(name)
        && !(is_branch(v) && depth < 16)
    {
        return Some(v);
    }
    for (i, _) in name.match_indices('.') {
        if let Some(Value::Object(m)) = top(&name[..i])
            && !m.is_empty()
            && depth < 16
            && let Some(v) = find(&|k| m.get(k), &name[i + 1..], depth + 1)
        {
            return Some(v);
        }
    }
    None
}

/// Whether flattening `body` could give a name two ways, keeps a subtree whole, or runs out of
/// its key budget — where reading paths in place might differ from the shown event.
fn irregular(body: &Map<String, Value>) -> bool {
    fn walk(m: &Map<String, Value>, depth: usize, prefix: usize, budget: &mut usize) -> bool {
        for (k, v) in m {
            if k.is_empty() || k.contains('.') || k.contains('#') {
                return true;
            }
            let len = prefix + k.len() + 1;
            match v {
                Value::Object(inner) if !inner.is_empty() => {
                    if depth >= 12 || walk(inner, depth + 1, len, budget) {
                        return true;
                    }
                }
                _ => match budget.checked_sub(len) {
                    Some(b) => *budget = b,
                    None => return true,
                },
            }
        }
        false
    }
    let mut budget = crate::normalize::KEY_BUDGET / 2;
    walk(body, 1, 0, &mut budget)
}

impl Lookup for View {
    fn lookup(&self, name: &str) -> Option<&Value> {
        match &self.shown {
            Some(m) => m.get(name),
            None => find(&|k| self.top(k), name, 1),
        }
    }
}

impl EventSource for View {
    fn visit_strings(&self, f: &mut dyn FnMut(&str)) {
        if let Some(m) = &self.shown {
            m.values().for_each(|v| vigie_detect::event::visit_value(v, f));
            return;
        }
        const LOG: [&str; 6] = ["id", "source", "event_type", "space_id", "timestamp", "received_at"];
        for k in LOG {
            if let Some(Value::String(s)) = self.top(k) {
                f(s);
            }
        }
        let derived = |k: &str| self.firewall && crate::normalize::FIREWALL_FIELDS.contains(&k) && self.derived(k).is_some();
        if self.firewall {
            for k in crate::normalize::FIREWALL_FIELDS {
                if !LOG.contains(k)
                    && let Some(v) = self.derived(k)
                {
                    vigie_detect::event::visit_value(v, f);
                }
            }
        }
        for (k, v) in &self.body {
            if !LOG.contains(&k.as_str()) && !derived(k) {
                vigie_detect::event::visit_value(v, f);
            }
        }
    }

    fn to_json(&self) -> Value {
        crate::log::shown(&self.stored, &self.space_id)
    }
}

// ---------------------------------------------------------------------------------------------
// The rules the consumer runs

/// What the consumer needs of a rule besides its program.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    /// Its id.
    pub id: String,
    /// Its version (window state of another version is dropped).
    pub version: i64,
    /// Its name (the alert's title starts with it).
    pub name: String,
    /// 0–100.
    pub severity: u8,
    /// Similarity fields (empty: the window's group-by, else the person and the platform).
    pub similarity: Vec<String>,
    /// A pipe window's group-by columns (the similarity key when `similarity` is empty).
    pub group_by: Vec<String>,
}

/// One space's rules.
pub struct SpaceRules {
    /// The engine over the space's enabled rules.
    pub engine: Engine,
    /// Its windows' state.
    pub states: States,
    /// Per rule of the engine.
    pub info: Vec<RuleInfo>,
}

/// Every space's enabled rules, compiled, with their windows restored from the database.
#[derive(Default)]
pub struct Loaded {
    /// By space number.
    pub spaces: HashMap<i64, SpaceRules>,
}

/// Reads and compiles the enabled rules of every space and restores their saved windows. A
/// stored rule that no longer compiles is skipped with an error in the log (it was accepted
/// when saved; a new version of the engine may refuse it).
pub fn load(c: &Connection) -> Result<Loaded, StoreError> {
    let mut stmt = c.prepare(
        "SELECT space_no, id, version, name, severity, kind, source, similarity FROM rules WHERE enabled = 1 ORDER BY space_no, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, String>(6)?,
            r.get::<_, String>(7)?,
        ))
    })?;
    let mut by_space: HashMap<i64, (Vec<RuleEntry>, Vec<RuleInfo>)> = HashMap::new();
    for row in rows {
        let (space_no, id, version, name, severity, kind, source, similarity) = row?;
        let Some(kind) = Kind::parse(&kind) else { continue };
        let program = match vigie_detect::compile(kind, &source) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(rule = %id, error = %e, "a stored rule no longer compiles; it is not evaluated");
                continue;
            }
        };
        let group_by = group_by(&program);
        let similarity: Vec<String> = serde_json::from_str(&similarity).unwrap_or_default();
        let e = by_space.entry(space_no).or_default();
        e.0.push(RuleEntry { id: id.clone(), program });
        e.1.push(RuleInfo { id, version, name, severity: severity.clamp(0, 100) as u8, similarity, group_by });
    }
    let mut loaded = Loaded::default();
    for (space_no, (entries, info)) in by_space {
        let engine = match Engine::new(entries) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(space = space_no, error = %e, "the space's rules cannot be loaded together");
                continue;
            }
        };
        let states = engine.states();
        loaded.spaces.insert(space_no, SpaceRules { engine, states, info });
    }
    restore(c, &mut loaded)?;
    Ok(loaded)
}

/// A pipe window's group-by columns.
pub fn group_by(program: &vigie_detect::Program) -> Vec<String> {
    match (program.query(), program.shape()) {
        (Some(_), vigie_detect::Shape::Window { by, .. }) => by,
        _ => Vec::new(),
    }
}

/// Reloads every saved window group of the loaded rules (of their current version).
fn restore(c: &Connection, loaded: &mut Loaded) -> Result<(), StoreError> {
    let mut index: HashMap<String, (i64, usize, i64)> = HashMap::new();
    for (space, s) in &loaded.spaces {
        for (i, r) in s.info.iter().enumerate() {
            index.insert(r.id.clone(), (*space, i, r.version));
        }
    }
    let mut stmt = c.prepare("SELECT rule_id, version, window, h, state FROM rule_windows")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (rule_id, version, w, h, state): (String, i64, i64, i64, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
        let Some(&(space, i, v)) = index.get(&rule_id) else { continue };
        if v != version {
            continue;
        }
        if let Some(s) = loaded.spaces.get_mut(&space)
            && let Err(e) = s.engine.restore(&mut s.states, i, w as usize, h as u64, &state)
        {
            tracing::warn!(rule = %rule_id, error = %e, "a saved window could not be restored; it starts empty");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Turning hits into alerts

/// The match a hit makes of rule `info` (the event that completed it is `view`).
pub fn to_match(space_no: i64, info: &RuleInfo, hit: &Hit, view: &dyn Lookup, event_ids: Vec<(i64, String)>) -> crate::alerts::Match {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(v) => Some(v.to_string()),
    };
    // A window's row holds its group keys; a single event holds its fields.
    let value = |f: &str| hit.row.as_ref().and_then(|r| r.get(f)).or_else(|| view.lookup(f));
    let fields: Vec<String> = if !info.similarity.is_empty() {
        info.similarity.clone()
    } else if hit.row.is_some() && hit.part.is_empty() {
        info.group_by.clone()
    } else if let Some(row) = &hit.row {
        // A Sigma correlation's row: its group-by and one aggregation of a known name.
        row.keys().filter(|k| !is_aggregation(k)).cloned().collect()
    } else {
        vec!["user_id".into(), "platform_id".into()]
    };
    let mut key: Vec<Value> = Vec::with_capacity(fields.len() + 1);
    if !hit.part.is_empty() {
        key.push(Value::String(hit.part.clone()));
    }
    key.extend(fields.iter().map(|f| value(f).cloned().unwrap_or(Value::Null)));
    let user_id = text(value("user_id"));
    let platform_id = text(value("platform_id"));
    let mut title = if hit.part.is_empty() || hit.part == info.name { info.name.clone() } else { format!("{}: {}", info.name, hit.part) };
    match (&user_id, &platform_id) {
        (Some(u), Some(p)) => title.push_str(&format!(" — {u} on {p}")),
        (Some(u), None) => title.push_str(&format!(" — {u}")),
        (None, Some(p)) => title.push_str(&format!(" — {p}")),
        (None, None) => {}
    }
    let mut details = Map::new();
    if let Some(row) = &hit.row {
        details.insert("window".into(), Value::Object(row.clone()));
    }
    let mut shown = Map::new();
    for f in [
        "event_type",
        "user_id",
        "user_email",
        "platform_id",
        "risk_score",
        "risk_level",
        "classification_type",
        "policy_name",
        "policy_action",
    ] {
        if let Some(v) = view.lookup(f) {
            shown.insert(f.into(), v.clone());
        }
    }
    details.insert("event".into(), Value::Object(shown));
    if !hit.part.is_empty() {
        details.insert("sigma".into(), Value::String(hit.part.clone()));
    }
    crate::alerts::Match {
        space_no,
        rule_id: info.id.clone(),
        rule_name: info.name.clone(),
        severity: info.severity,
        similarity_key: Value::Array(key).to_string(),
        title,
        user_id,
        platform_id,
        first_seen: hit.first,
        last_seen: hit.last,
        events: event_ids,
        details: Value::Object(details),
    }
}

/// Whether a Sigma correlation row's column is its aggregation (not a group key).
fn is_aggregation(column: &str) -> bool {
    matches!(column, "count" | "value_count" | "rules" | "sum" | "avg")
}

// ---------------------------------------------------------------------------------------------
// The consumer

/// The detection consumer's memory between batches.
#[derive(Default)]
pub struct Detector {
    loaded: Loaded,
    /// The rules generation loaded.
    generation: Option<u64>,
    /// The first commit after a load also deletes saved windows of rules no longer enabled at
    /// that version.
    clean: bool,
    /// Per space, the arrival time at which quiet windows were last expired (µs).
    swept_at: HashMap<i64, i64>,
    /// The next batch, being read while this one is evaluated: the log position it reads after.
    next: Option<(i64, Reading)>,
}

/// A batch being read.
type Reading = tokio::task::JoinHandle<Result<Vec<Row>, StoreError>>;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Events read.
    pub events: usize,
    /// Hits (matches).
    pub hits: usize,
    /// Time reading the batch, evaluating it, and committing what it gave.
    pub took: [std::time::Duration; 3],
}

/// How late an event may arrive and still join its group's window: a group whose newest event
/// is older than its window's span plus this, by the time events of its space arrive, is
/// dropped (memory and its saved row). An event later than that starts a new window.
pub const LATENESS_US: i64 = 3_600_000_000;

/// A stored event read for detection: its log position and space.
pub struct Row {
    seq: i64,
    space_no: i64,
    space_id: String,
    stored: Stored,
}

/// A group's window to save (or delete): rule, version, window, group, state.
type WindowChange = (String, i64, usize, u64, Option<vigie_query::window::Saved>);

/// What evaluating a batch gives the commit.
struct Evaluated {
    matches: Vec<crate::alerts::Match>,
    changes: Vec<WindowChange>,
    hits: usize,
}

/// Evaluates a batch in log order, one event at a time (its view dropped before the next is
/// read, so the memory touched stays small; on one thread: a second one made it slower here —
/// BENCHMARKS.md): the matches and the windows' changes for the commit.
fn evaluate(d: &mut Detector, rows: Vec<Row>) -> Evaluated {
    let mut out = Evaluated { matches: Vec::new(), changes: Vec::new(), hits: 0 };
    let mut hits = Vec::new();
    // Per space, when its newest event arrived: the clock windows expire by (a sender's clock
    // running ahead, or a backlog arriving late, moves nothing).
    let mut newest: HashMap<i64, i64> = HashMap::new();
    for row in rows {
        let Some(space) = d.loaded.spaces.get_mut(&row.space_no) else { continue };
        let view = View::new(row.stored, row.space_id);
        let t = view.stored().timestamp;
        let at = newest.entry(row.space_no).or_insert(i64::MIN);
        *at = (*at).max(view.stored().received_at);
        hits.clear();
        space.engine.evaluate(&mut space.states, &view, row.seq, t, &mut hits);
        out.hits += hits.len();
        for hit in &hits {
            let Some(info) = space.info.get(hit.rule) else { continue };
            // The event at hand is named here; a window's earlier events when committing.
            let ids = hit.seqs.iter().map(|s| (*s, if *s == row.seq { view.stored().id.clone() } else { String::new() })).collect();
            out.matches.push(to_match(row.space_no, info, hit, &view, ids));
        }
    }
    // Windows quiet for longer than their span and the lateness allowed go, now and then (a
    // minute of arrivals).
    for (space_no, t) in newest {
        let swept = d.swept_at.entry(space_no).or_insert(i64::MIN);
        if t.saturating_sub(*swept) > 60_000_000
            && let Some(s) = d.loaded.spaces.get_mut(&space_no)
        {
            *swept = t;
            s.engine.expire(&mut s.states, t - LATENESS_US);
        }
    }
    for s in d.loaded.spaces.values_mut() {
        for (r, w, (h, saved)) in s.states.take_changes() {
            if let Some(info) = s.info.get(r) {
                out.changes.push((info.id.clone(), info.version, w, h, saved));
            }
        }
    }
    out
}

/// Reads a batch after the checkpoint, evaluates it (off the async threads), and commits
/// alerts, windows and the checkpoint together — only if the rules evaluated are still the
/// enabled ones at the same versions. On a failed commit the memory is reloaded from the
/// database (it ran ahead of what was stored).
pub async fn detect_once(st: &XdrState, d: &mut Detector) -> Result<Round, StoreError> {
    let generation = *st.rules_changed.borrow();
    if d.generation != Some(generation) {
        d.loaded = st.store.read(load).await?;
        d.generation = Some(generation);
        d.clean = true;
    }
    let started = std::time::Instant::now();
    let after = st.store.read(|c| crate::log::checkpoint(c, CONSUMER)).await?;
    // The batch read ahead during the last round, if it starts where the log says and has
    // events; else read now.
    let ahead = match d.next.take() {
        Some((from, task)) if from == after => task.await.ok().and_then(Result::ok).filter(|rows| !rows.is_empty()),
        Some((_, task)) => {
            task.abort();
            None
        }
        None => None,
    };
    let rows = match ahead {
        Some(rows) => rows,
        None => st.store.read(move |c| read_rows(c, after, BATCH)).await?,
    };
    let read = started.elapsed();
    let Some(last_seq) = rows.last().map(|r| r.seq) else { return Ok(Round::default()) };
    let events = rows.len();
    // Read the next batch while this one is evaluated and committed (a full batch says more
    // is waiting).
    if events == BATCH {
        let store = st.store.clone();
        d.next = Some((last_seq, tokio::spawn(async move { store.read(move |c| read_rows(c, last_seq, BATCH)).await })));
    }
    let started = std::time::Instant::now();
    let mut taken = std::mem::take(d);
    let (back, evaluated) = tokio::task::spawn_blocking(move || {
        let e = evaluate(&mut taken, rows);
        (taken, e)
    })
    .await
    .map_err(|e| StoreError::Commit(format!("detection failed: {e}")))?;
    *d = back;
    let evaluating = started.elapsed();
    let started = std::time::Instant::now();
    let Evaluated { matches, changes, hits } = evaluated;
    let versions: Vec<(String, i64)> = d.loaded.spaces.values().flat_map(|s| s.info.iter().map(|i| (i.id.clone(), i.version))).collect();
    let clean = d.clean;
    let ids = st.ids.clone();
    let now = vigie_core::clock::to_micros(st.clock.now());
    let committed = st
        .store
        .write(move |c| {
            if crate::log::checkpoint(c, CONSUMER)? != after {
                return Err(StoreError::Commit("another detection round advanced the checkpoint".into()));
            }
            if !same_rules(c, &versions)? {
                return Err(StoreError::Commit("rules changed during the round; evaluating the batch again".into()));
            }
            for mut m in matches {
                fill_event_ids(c, &mut m)?;
                crate::alerts::apply(c, &ids, &m, now)?;
            }
            save_windows(c, &changes)?;
            if clean {
                c.execute(
                    "DELETE FROM rule_windows WHERE NOT EXISTS \
                     (SELECT 1 FROM rules r WHERE r.id = rule_windows.rule_id AND r.version = rule_windows.version AND r.enabled = 1)",
                    [],
                )?;
            }
            crate::log::advance(c, CONSUMER, last_seq, now)
        })
        .await;
    if let Err(e) = committed {
        // Memory ran ahead of the database: start again from what is stored.
        d.generation = None;
        if let Some((_, task)) = d.next.take() {
            task.abort();
        }
        return Err(e);
    }
    d.clean = false;
    st.detected.send_replace(last_seq);
    Ok(Round { events, hits, took: [read, evaluating, started.elapsed()] })
}

/// Whether the enabled rules are exactly `versions` (ids and versions).
fn same_rules(c: &Connection, versions: &[(String, i64)]) -> Result<bool, StoreError> {
    let mut now: Vec<(String, i64)> = c
        .prepare_cached("SELECT id, version FROM rules WHERE enabled = 1")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut then = versions.to_vec();
    now.sort();
    then.sort();
    Ok(now == then)
}

/// The event ids of a match's log positions.
fn fill_event_ids(c: &Connection, m: &mut crate::alerts::Match) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached("SELECT id FROM events WHERE seq = ?1")?;
    for (seq, id) in &mut m.events {
        if id.is_empty() {
            *id = stmt.query_row([*seq], |r| r.get(0)).unwrap_or_default();
        }
    }
    m.events.retain(|(_, id)| !id.is_empty());
    Ok(())
}

fn save_windows(c: &Connection, changes: &[WindowChange]) -> Result<(), StoreError> {
    let mut put = c.prepare_cached(
        "INSERT INTO rule_windows (rule_id, version, window, h, state) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (rule_id, window, h) DO UPDATE SET version = excluded.version, state = excluded.state",
    )?;
    let mut del = c.prepare_cached("DELETE FROM rule_windows WHERE rule_id = ?1 AND window = ?2 AND h = ?3")?;
    for (rule, version, w, h, saved) in changes {
        // SQLite integers are signed: the id's bits as an i64.
        let h = *h as i64;
        match saved {
            Some(s) => put.execute(params![rule, version, *w as i64, h, s.state])?,
            None => del.execute(params![rule, *w as i64, h])?,
        };
    }
    Ok(())
}

/// Up to `limit` events after `seq`, in log order, across spaces.
pub fn read_rows(c: &Connection, after: i64, limit: usize) -> Result<Vec<Row>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT e.seq, e.space_no, s.id, e.id, e.received_at, e.timestamp, e.event_type, e.source, e.body \
         FROM events e JOIN spaces s ON s.no = e.space_no WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit as i64], |r| {
        Ok(Row { seq: r.get(0)?, space_no: r.get(1)?, space_id: r.get(2)?, stored: Stored::from_row_at(r, 3)? })
    })?;
    rows.collect::<Result<_, _>>().map_err(StoreError::from)
}

/// Up to `limit` events after `seq`, in log order, as rules read them.
pub fn read_batch(c: &Connection, after: i64, limit: usize) -> Result<Vec<(i64, i64, View)>, StoreError> {
    Ok(read_rows(c, after, limit)?.into_iter().map(|r| (r.seq, r.space_no, View::new(r.stored, r.space_id))).collect())
}

/// Runs the consumer until `shutdown`: a round whenever events were appended or rules changed.
/// A round that panics (a bug) is logged and the consumer starts again from the database a
/// second later: detection never stops silently.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    loop {
        let task = tokio::spawn(consume(st.clone(), shutdown.clone()));
        match task.await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "the detection consumer failed; restarting it from its checkpoint in a second");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn consume(st: XdrState, shutdown: CancellationToken) {
    let mut appended = st.log_signal();
    let mut rules = st.rules_changed.subscribe();
    let mut d = Detector::default();
    loop {
        loop {
            match detect_once(&st, &mut d).await {
                Ok(r) if r.events == 0 => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a detection round failed; retrying in a second");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = appended.changed() => if changed.is_err() { return },
            changed = rules.changed() => if changed.is_err() { return },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Backtests: a rule over past events, as the consumer would have run it

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every field of the shown event reads the same through the view, and names the shown
    /// event lacks are absent from the view.
    fn same_as_shown(body: &Value) {
        let stored = crate::facts::tests::stored(body);
        let Value::Object(shown) = crate::log::shown(&stored, "space") else { panic!("an object") };
        let view = View::new(stored, "space".into());
        for (k, v) in &shown {
            assert_eq!(view.lookup(k), Some(v), "{k} of {body}");
        }
        let mut absent: Vec<String> =
            ["nope", "data", "data.nope", "data.interaction", "user", "a", "a.b#3", ".x"].map(String::from).to_vec();
        // Every prefix of a shown name is a name the view must not invent.
        for k in shown.keys() {
            for (i, _) in k.match_indices('.') {
                absent.push(k[..i].to_owned());
            }
        }
        for name in absent {
            if !shown.contains_key(&name) {
                assert_eq!(view.lookup(&name), None, "{name} of {body}");
            }
        }
        let mut from_view = Vec::new();
        view.visit_strings(&mut |s| from_view.push(s.to_owned()));
        let mut from_shown = Vec::new();
        shown.values().for_each(|v| vigie_detect::event::visit_value(v, &mut |s| from_shown.push(s.to_owned())));
        from_view.sort();
        from_shown.sort();
        assert_eq!(from_view, from_shown, "the strings of {body}");
    }

    #[test]
    fn the_view_reads_every_field_as_the_shown_event_has_it() {
        let mut bodies = crate::facts::tests::bodies();
        bodies.extend([
            // Names that could come two ways once flattened, or not at all.
            json!({"a": {"b": 2}, "a.b": 1, "x": 1}),
            json!({"": {"space_id": "forged", "id": "x"}}),
            json!({"k#2": 1, "k": {"": 3}}),
            json!({"deep": {"1": {"2": {"3": {"4": {"5": {"6": {"7": {"8": {"9": {"10": {"11": {"12": {"13": {"14": {"15": {"16": 1}}}}}}}}}}}}}}}}}),
            json!({"user": {"name": "bo", "roles": ["a", "b"], "empty": {}}, "n": null, "list": [{"a": 1}]}),
            json!({"type": "interaction.high_risk", "data": {"interaction": {"platform_id": {"n": 1, "m": {"o": "p"}}, "user_id": "u"}}}),
        ]);
        for b in &bodies {
            same_as_shown(b);
        }
    }
}
