//! The rules the consumer runs: every space's enabled rules compiled into one engine each, with
//! their saved windows restored; and what a hit of a rule becomes (an [`alerts::Match`]).
//!
//! [`alerts::Match`]: crate::alerts::Match
use rusqlite::Connection;
use serde_json::{Map, Value};
use std::collections::HashMap;
use vigie_core::StoreError;
use vigie_detect::engine::RuleEntry;
use vigie_detect::{Engine, Hit, Kind, States};
use vigie_query::matcher::Lookup;

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
    load_spaces(c, None)
}

/// [`load`] for the spaces `only` (all when `None`).
pub fn load_spaces(c: &Connection, only: Option<&[i64]>) -> Result<Loaded, StoreError> {
    let only = only.map(serde_json::to_string).transpose()?;
    let mut stmt = c.prepare(
        "SELECT space_no, id, version, name, severity, kind, source, similarity FROM rules \
         WHERE enabled = 1 AND (?1 IS NULL OR space_no IN (SELECT value FROM json_each(?1))) ORDER BY space_no, id",
    )?;
    let rows = stmt.query_map([&only], |r| {
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
    restore(c, &mut loaded, only.as_deref())?;
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
fn restore(c: &Connection, loaded: &mut Loaded, only: Option<&str>) -> Result<(), StoreError> {
    let mut index: HashMap<String, (i64, usize, i64)> = HashMap::new();
    for (space, s) in &loaded.spaces {
        for (i, r) in s.info.iter().enumerate() {
            index.insert(r.id.clone(), (*space, i, r.version));
        }
    }
    let mut stmt = c.prepare(
        "SELECT rule_id, version, window, h, state FROM rule_windows \
         WHERE ?1 IS NULL OR rule_id IN (SELECT id FROM rules WHERE space_no IN (SELECT value FROM json_each(?1)))",
    )?;
    let mut rows = stmt.query([only])?;
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
    // The person and platform involved: a window's own keys (its last event's platform need not
    // be the others'), or the event's fields.
    let involved = |f: &str| match &hit.row {
        Some(row) => row.get(f),
        None => view.lookup(f),
    };
    let user_id = text(involved("user_id"));
    let platform_id = text(involved("platform_id"));
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
        count: 1,
    }
}

/// Whether a Sigma correlation row's column is its aggregation (not a group key).
fn is_aggregation(column: &str) -> bool {
    matches!(column, "count" | "value_count" | "rules" | "sum" | "avg")
}
