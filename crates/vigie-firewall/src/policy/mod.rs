//! Policies: stored as written, validated and compiled on every write, and held compiled per
//! tenant in [`PolicyCache`] so an interaction is evaluated without touching the database.
pub mod engine;
pub mod order;
pub mod routes;

use crate::events;
use crate::platforms::{Platform, vetted_by_default};
use crate::state::FirewallState;
use chrono::{DateTime, Utc};
use engine::{CompiledPolicy, RulesSpec, compile, sort_for_evaluation};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::auth::Principal;
use vigie_core::clock::from_micros;
use vigie_core::http::{ApiError, FieldError};
use vigie_core::{Store, StoreError};

/// The most policies a tenant may have.
pub const MAX_POLICIES: i64 = 1000;

/// A policy as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Policy {
    /// Policy id.
    pub id: Uuid,
    /// Unique name in the tenant.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Action and conditions.
    pub rules: RulesSpec,
    /// Only enabled policies are evaluated.
    pub enabled: bool,
    /// 0–1000; lower is evaluated first.
    pub priority: i64,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The priority of a policy that does not give one.
pub const DEFAULT_PRIORITY: i64 = 100;

/// A new policy (also the body of a whole replacement with PUT). Unknown fields are refused, so
/// a typo cannot silently leave a policy disabled; the read-only fields a GET returns are
/// accepted and ignored (see `vigie_core::http::ApiJsonWrite`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// Unique name in the tenant, 1–200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// Up to 500 characters (null means empty).
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(max_length = 500)]
    pub description: String,
    /// Action and conditions.
    pub rules: RulesSpec,
    /// Default false: new policies start disabled (null means false).
    #[serde(default, deserialize_with = "null_as_default")]
    pub enabled: bool,
    /// 0–1000, default 100; lower first.
    #[schema(minimum = 0, maximum = 1000)]
    pub priority: Option<i64>,
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A change to a policy; absent (or null) fields stay as they are. Unknown fields are refused;
/// the read-only fields a GET returns are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    /// New name.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// New rules (replaced whole).
    pub rules: Option<RulesSpec>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New priority.
    #[schema(minimum = 0, maximum = 1000)]
    pub priority: Option<i64>,
}

fn check_fields(name: Option<&str>, description: Option<&str>, priority: Option<i64>, rules: Option<&RulesSpec>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(n) = name
        && (n.trim().is_empty() || n.chars().count() > 200)
    {
        errors.push(FieldError::new("name", "a policy name has 1 to 200 characters"));
    }
    if description.is_some_and(|d| d.chars().count() > 500) {
        errors.push(FieldError::new("description", "at most 500 characters"));
    }
    if let Some(p) = priority
        && !(0..=1000).contains(&p)
    {
        errors.push(FieldError::new("priority", format!("{p} is outside 0..1000 (lower is evaluated first)")));
    }
    if let Some(r) = rules
        && let Err(e) = compile(r)
    {
        errors.extend(e);
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

const COLS: &str = "id, name, description, rules, enabled, priority, created_by, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Policy> {
    let id: String = r.get(0)?;
    let rules: String = r.get(3)?;
    let conv =
        |i, e: Box<dyn std::error::Error + Send + Sync>| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e);
    Ok(Policy {
        id: Uuid::parse_str(&id).map_err(|e| conv(0, Box::new(e)))?,
        name: r.get(1)?,
        description: r.get(2)?,
        rules: serde_json::from_str(&rules).map_err(|e| conv(3, Box::new(e)))?,
        enabled: r.get(4)?,
        priority: r.get(5)?,
        created_by: r.get(6)?,
        created_at: from_micros(r.get(7)?),
        updated_at: from_micros(r.get(8)?),
    })
}

fn get_in(conn: &Connection, tenant: Uuid, id: Uuid) -> Result<Policy, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM policies WHERE tenant_id = ?1 AND id = ?2"))?
        .query_row(params![tenant.to_string(), id.to_string()], from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

fn name_conflict(name: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| if StoreError::is_unique_violation(&e) { StoreError::Conflict(format!("a policy named {name:?}")) } else { e.into() }
}

#[derive(Serialize)]
struct PolicyEventData<'a> {
    policy: &'a Policy,
    actor: &'a str,
}

fn emit_change(
    st: &FirewallState,
    conn: &Connection,
    tenant: Uuid,
    kind: &str,
    policy: &Policy,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    events::emit(conn, st.ids.at(at), &st.settings.event_source, tenant, kind, at, &PolicyEventData { policy, actor })?;
    Ok(())
}

/// Runs a write that changes what the evaluator must see, then drops the tenant's cached rules.
/// The write and the invalidation run in their own task, so a caller that goes away (a client
/// that disconnects) cannot leave a committed change un-enforced.
pub async fn write_rules<T, F>(st: &FirewallState, tenant: Uuid, f: F) -> Result<T, StoreError>
where
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let (store, cache) = (st.store.clone(), st.policies.clone());
    let task = tokio::spawn(async move {
        let result = store.write(f).await;
        cache.invalidate(tenant);
        result
    });
    task.await.map_err(|e| StoreError::Commit(format!("the write task failed: {e}")))?
}

/// Creates a policy (and its `policy.created` event).
pub async fn create(st: &FirewallState, by: &Principal, new: NewPolicy) -> Result<Policy, ApiError> {
    let priority = new.priority.unwrap_or(DEFAULT_PRIORITY);
    check_fields(Some(&new.name), Some(&new.description), Some(priority), Some(&new.rules))?;
    let now = st.clock.now();
    let policy = Policy {
        id: st.ids.at(now),
        name: new.name.trim().to_owned(),
        description: new.description,
        rules: new.rules,
        enabled: new.enabled,
        priority,
        created_by: Some(by.label()),
        created_at: now,
        updated_at: now,
    };
    let (tenant, actor, s) = (by.tenant_id, by.label(), st.clone());
    let p = policy.clone();
    write_rules(st, tenant, move |c| -> Result<(), StoreError> {
        let count: i64 = c.query_row("SELECT count(*) FROM policies WHERE tenant_id = ?1", [tenant.to_string()], |r| r.get(0))?;
        if count >= MAX_POLICIES {
            return Err(StoreError::Invalid(format!("a tenant has at most {MAX_POLICIES} policies; delete unused ones first")));
        }
        c.execute(
            &format!("INSERT INTO policies ({COLS}, tenant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                p.id.to_string(),
                p.name,
                p.description,
                serde_json::to_string(&p.rules)?,
                p.enabled,
                p.priority,
                p.created_by,
                p.created_at.timestamp_micros(),
                p.updated_at.timestamp_micros(),
                tenant.to_string()
            ],
        )
        .map_err(name_conflict(&p.name))?;
        emit_change(&s, c, tenant, events::POLICY_CREATED, &p, &actor, p.created_at)
    })
    .await?;
    Ok(policy)
}

/// A page of policies in evaluation order (priority, then creation).
pub async fn list(
    st: &FirewallState,
    tenant: Uuid,
    enabled: Option<bool>,
    after: Option<(i64, Uuid)>,
    limit: usize,
) -> Result<Vec<Policy>, ApiError> {
    Ok(st
        .store
        .read(move |c| -> Result<Vec<Policy>, StoreError> {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLS} FROM policies WHERE tenant_id = ?1 AND (?2 IS NULL OR enabled = ?2)
                 AND (?3 IS NULL OR priority > ?3 OR (priority = ?3 AND id > ?4)) ORDER BY priority, id LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![tenant.to_string(), enabled, after.map(|a| a.0), after.map(|a| a.1.to_string()), limit as i64 + 1],
                from_row,
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await?)
}

/// One policy.
pub async fn get(st: &FirewallState, tenant: Uuid, id: Uuid) -> Result<Policy, ApiError> {
    st.store.read(move |c| get_in(c, tenant, id)).await.map_err(ApiError::from_store("policy"))
}

/// Applies `patch` (and emits `policy.updated`).
pub async fn update(st: &FirewallState, by: &Principal, id: Uuid, patch: PolicyPatch) -> Result<Policy, ApiError> {
    check_fields(patch.name.as_deref(), patch.description.as_deref(), patch.priority, patch.rules.as_ref())?;
    let (tenant, actor, s, now) = (by.tenant_id, by.label(), st.clone(), st.clock.now());
    let updated = write_rules(st, tenant, move |c| -> Result<Policy, StoreError> {
            let mut p = get_in(c, tenant, id)?;
            if let Some(n) = patch.name {
                p.name = n.trim().to_owned();
            }
            if let Some(d) = patch.description {
                p.description = d;
            }
            if let Some(r) = patch.rules {
                p.rules = r;
            }
            if let Some(e) = patch.enabled {
                p.enabled = e;
            }
            if let Some(pr) = patch.priority {
                p.priority = pr;
            }
            p.updated_at = now;
            c.execute(
                "UPDATE policies SET name = ?1, description = ?2, rules = ?3, enabled = ?4, priority = ?5, updated_at = ?6 WHERE tenant_id = ?7 AND id = ?8",
                params![p.name, p.description, serde_json::to_string(&p.rules)?, p.enabled, p.priority, now.timestamp_micros(), tenant.to_string(), id.to_string()],
            )
            .map_err(name_conflict(&p.name))?;
            emit_change(&s, c, tenant, events::POLICY_UPDATED, &p, &actor, now)?;
            Ok(p)
        })
        .await
        .map_err(ApiError::from_store("policy"))?;
    Ok(updated)
}

/// Deletes a policy (and emits `policy.deleted`).
pub async fn delete(st: &FirewallState, by: &Principal, id: Uuid) -> Result<(), ApiError> {
    let (tenant, actor, s, now) = (by.tenant_id, by.label(), st.clone(), st.clock.now());
    write_rules(st, tenant, move |c| -> Result<(), StoreError> {
        let p = get_in(c, tenant, id)?;
        c.execute("DELETE FROM policies WHERE tenant_id = ?1 AND id = ?2", params![tenant.to_string(), id.to_string()])?;
        emit_change(&s, c, tenant, events::POLICY_DELETED, &p, &actor, now)
    })
    .await
    .map_err(ApiError::from_store("policy"))?;
    Ok(())
}

/// What the evaluator holds for one tenant: its enabled policies, compiled and in evaluation
/// order, and its platform vetting.
#[derive(Debug, Default)]
pub struct TenantRules {
    /// Enabled policies, sorted by priority then creation.
    pub policies: Vec<CompiledPolicy>,
    vetted: HashMap<String, bool>,
}

impl TenantRules {
    /// Whether the tenant vetted `platform` (unknown platforms are not vetted).
    pub fn is_vetted(&self, platform: &str) -> bool {
        self.vetted.get(platform).copied().unwrap_or_else(|| vetted_by_default(platform))
    }
}

/// Compiled rules per tenant, loaded on first use and dropped whenever a policy or platform of
/// the tenant changes. A generation counter keeps a load that raced with a change from
/// installing stale rules.
#[derive(Clone, Default)]
pub struct PolicyCache(Arc<CacheInner>);

#[derive(Default)]
struct CacheInner {
    map: RwLock<HashMap<Uuid, Arc<TenantRules>>>,
    generation: AtomicU64,
}

impl PolicyCache {
    /// The tenant's rules.
    pub async fn get(&self, store: &Store, tenant: Uuid) -> Result<Arc<TenantRules>, StoreError> {
        if let Ok(m) = self.0.map.read()
            && let Some(r) = m.get(&tenant)
        {
            return Ok(r.clone());
        }
        let generation = self.0.generation.load(Ordering::Acquire);
        let rules = Arc::new(store.read(move |c| load(c, tenant)).await?);
        // Checked under the lock that `invalidate` takes, so an invalidation that happened
        // during the load always wins.
        if let Ok(mut m) = self.0.map.write()
            && self.0.generation.load(Ordering::Acquire) == generation
        {
            m.insert(tenant, rules.clone());
        }
        Ok(rules)
    }

    /// Forgets the tenant's rules; the next interaction reloads them.
    pub fn invalidate(&self, tenant: Uuid) {
        match self.0.map.write() {
            Ok(mut m) => {
                self.0.generation.fetch_add(1, Ordering::AcqRel);
                m.remove(&tenant);
            }
            Err(poisoned) => {
                let mut m = poisoned.into_inner();
                self.0.generation.fetch_add(1, Ordering::AcqRel);
                m.clear();
            }
        }
    }
}

fn load(c: &Connection, tenant: Uuid) -> Result<TenantRules, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLS} FROM policies WHERE tenant_id = ?1 AND enabled = 1"))?;
    let stored = stmt.query_map([tenant.to_string()], from_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut policies = Vec::with_capacity(stored.len());
    for p in stored {
        match compile(&p.rules) {
            Ok(rules) => policies.push(CompiledPolicy { id: p.id, name: p.name, priority: p.priority, rules }),
            // Validated when written; only a downgrade could get here. Say so loudly.
            Err(e) => {
                tracing::error!(policy_id = %p.id, policy = %p.name, problems = ?e, "an enabled policy no longer compiles and is NOT enforced")
            }
        }
    }
    sort_for_evaluation(&mut policies);
    let vetted = crate::platforms::tenant_rows(c, tenant)?.into_iter().map(|p: Platform| (p.id, p.vetted)).collect();
    Ok(TenantRules { policies, vetted })
}
