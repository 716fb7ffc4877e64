//! Test data: what `vigie verify` left in the firewall — the interactions of its test people
//! (ids in the reserved range of [`vigie_core::testdata`]), the events they emitted (outbox
//! rows) and the deliveries of those events still waiting to be sent — counted by
//! `GET /api/v1/test-data` and removed by `DELETE /api/v1/test-data`, admins only, in the
//! caller's tenant only.
//!
//! The delivery log (finished deliveries and the attempt rows) is kept: it records requests
//! that were really made to receivers, holds no payload (event ids and types only), and is
//! pruned by its own retention. Removing it would make a webhook's history lie about traffic
//! its receiver did get.
use crate::state::FirewallState;
use axum::Json;
use axum::extract::State;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use vigie_core::StoreError;
use vigie_core::auth::{Permission, Principal};
use vigie_core::http::{ApiError, ApiQuery, ErrorBody, FieldError};
use vigie_core::testdata::{FIRST, LAST, is_test_person};

/// What test data the firewall holds (or held) for the test people asked about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TestDataCounts {
    /// Interactions recorded for test people.
    pub interactions: u64,
    /// Events those interactions emitted, in the outbox.
    pub events: u64,
    /// Deliveries of those events to webhooks not yet made (pending); finished ones stay in
    /// the delivery log.
    pub pending_deliveries: u64,
}

/// The answer of `GET /api/v1/test-data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDataFound {
    /// What a `DELETE` with the same query would remove.
    pub found: TestDataCounts,
}

/// The answer of `DELETE /api/v1/test-data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestDataRemoved {
    /// What was removed.
    pub removed: TestDataCounts,
}

/// Which test people.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TestDataParams {
    /// One test person (`00000000-7e57-4da7-a000-…`, as `vigie verify` prints it); absent:
    /// every test person of the tenant.
    pub user_id: Option<String>,
}

/// The test-data routes.
pub fn router() -> OpenApiRouter<FirewallState> {
    OpenApiRouter::new().routes(routes!(test_data_get, test_data_delete))
}

/// The inclusive range of stored `user_id` texts the query covers; ids are stored lowercase.
fn range(q: &TestDataParams) -> Result<(String, String), ApiError> {
    match q.user_id.as_deref() {
        None => Ok((FIRST.to_string(), LAST.to_string())),
        Some(u) if is_test_person(u) => {
            let u = u.to_ascii_lowercase();
            Ok((u.clone(), u))
        }
        Some(u) => Err(ApiError::validation(vec![FieldError::new(
            "user_id",
            format!(
                "{u:?} is not a test person: test data belongs to ids starting with {} (the person `vigie verify` prints); leave user_id out for every test person",
                vigie_core::testdata::PREFIX
            ),
        )])),
    }
}

/// How many interactions one write transaction removes at most. The firewall has one writer
/// and recording an interaction waits for it: a removal after months of `vigie verify` runs is
/// cut into short transactions so that intake goes on between them.
const CHUNK: usize = 500;

/// Count the test data the firewall holds: interactions of test people, their events and the
/// deliveries of those events not yet made. Admins only.
#[utoipa::path(get, path = "/api/v1/test-data", tag = "operations", security(("bearer" = [])), params(TestDataParams),
    responses((status = 200, body = TestDataFound), (status = 403, body = ErrorBody), (status = 422, description = "user_id is not a test person", body = ErrorBody)))]
async fn test_data_get(
    State(st): State<FirewallState>,
    p: Principal,
    ApiQuery(q): ApiQuery<TestDataParams>,
) -> Result<Json<TestDataFound>, ApiError> {
    p.require(Permission::Write)?;
    let (lo, hi) = range(&q)?;
    let tenant = p.tenant_id;
    let found = st
        .store
        .read(move |c| {
            let mut counts = TestDataCounts::default();
            for i in test_interactions(c, tenant, &lo, &hi)? {
                counts.add(sweep_one(c, tenant, i, false)?);
            }
            Ok::<_, StoreError>(counts)
        })
        .await?;
    Ok(Json(TestDataFound { found }))
}

/// Remove the test data of the firewall (all of it, or one test person's): their
/// interactions, the events those emitted and the deliveries of those events not yet made, in
/// transactions of at most 500 interactions (each interaction with its events and deliveries in
/// one). The webhooks' delivery log is kept. Real people's data is never touched: only ids in
/// the reserved test range are accepted. Admins only.
#[utoipa::path(delete, path = "/api/v1/test-data", tag = "operations", security(("bearer" = [])), params(TestDataParams),
    responses((status = 200, body = TestDataRemoved), (status = 403, body = ErrorBody), (status = 422, description = "user_id is not a test person", body = ErrorBody)))]
async fn test_data_delete(
    State(st): State<FirewallState>,
    p: Principal,
    ApiQuery(q): ApiQuery<TestDataParams>,
) -> Result<Json<TestDataRemoved>, ApiError> {
    p.require(Permission::Write)?;
    let (lo, hi) = range(&q)?;
    let tenant = p.tenant_id;
    // Found on a reader, so the writer is held only for the removal itself.
    let found = st.store.read(move |c| test_interactions(c, tenant, &lo, &hi)).await?;
    let mut removed = TestDataCounts::default();
    for chunk in found.chunks(CHUNK) {
        let chunk = chunk.to_vec();
        let counts = st
            .store
            .write(move |c| {
                let mut counts = TestDataCounts::default();
                for i in chunk {
                    counts.add(sweep_one(c, tenant, i, true)?);
                }
                Ok::<_, StoreError>(counts)
            })
            .await?;
        removed.add(counts);
    }
    if removed != TestDataCounts::default() {
        tracing::info!(tenant = %tenant, interactions = removed.interactions, events = removed.events,
            pending_deliveries = removed.pending_deliveries, "removed test data");
        // The policy cache and the dashboards read the table directly: nothing else to drop.
    }
    Ok(Json(TestDataRemoved { removed }))
}

impl TestDataCounts {
    fn add(&mut self, more: TestDataCounts) {
        self.interactions += more.interactions;
        self.events += more.events;
        self.pending_deliveries += more.pending_deliveries;
    }
}

/// An interaction of a test person: its id and `created_at` (micros).
type TestInteraction = (Uuid, i64);

/// The tenant's interactions of test people `lo..=hi`. The range compares text: a stored id
/// that merely starts like a test person's (longer, or not a UUID) is not one. The API stores
/// only lowercase UUIDs, but a database written by hand or by another tool may hold others.
fn test_interactions(c: &Connection, tenant: Uuid, lo: &str, hi: &str) -> Result<Vec<TestInteraction>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, created_at, user_id FROM interactions WHERE tenant_id = ?1 AND user_id BETWEEN ?2 AND ?3 AND length(user_id) = 36",
    )?;
    let rows =
        stmt.query_map(params![tenant.to_string(), lo, hi], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at, user) = row?;
        // Ids are written by this crate; one that does not parse cannot have events.
        if let Ok(id) = Uuid::parse_str(&id)
            && is_test_person(&user)
        {
            out.push((id, at));
        }
    }
    Ok(out)
}

/// Counts (and with `remove`, deletes) one test interaction's data: its events, their
/// pending deliveries and the interaction. Removing one already gone (a concurrent DELETE)
/// counts nothing.
fn sweep_one(c: &Connection, tenant: Uuid, (id, at): TestInteraction, remove: bool) -> Result<TestDataCounts, StoreError> {
    let tenant_text = tenant.to_string();
    if remove {
        let gone =
            c.prepare_cached("DELETE FROM interactions WHERE id = ?1 AND tenant_id = ?2")?.execute(params![id.to_string(), tenant_text])?;
        if gone == 0 {
            return Ok(TestDataCounts::default());
        }
    }
    let webhooks: Vec<String> = {
        let mut stmt = c.prepare_cached("SELECT id FROM webhooks WHERE tenant_id = ?1")?;
        stmt.query_map([&tenant_text], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    let mut counts = TestDataCounts { interactions: 1, ..Default::default() };
    let events = crate::interactions::event_ids_of(c, tenant, id, vigie_core::clock::from_micros(at))?;
    for (event, _) in &events {
        for webhook in &webhooks {
            // By (webhook_id, event_id): the unique index, not a scan of the deliveries.
            let n: i64 = if remove {
                c.prepare_cached("DELETE FROM webhook_deliveries WHERE webhook_id = ?1 AND event_id = ?2 AND state = 'pending'")?
                    .execute(params![webhook, event])? as i64
            } else {
                c.prepare_cached("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = ?1 AND event_id = ?2 AND state = 'pending'")?
                    .query_row(params![webhook, event], |r| r.get(0))?
            };
            counts.pending_deliveries += n as u64;
        }
        if remove {
            c.prepare_cached("DELETE FROM outbox WHERE id = ?1 AND tenant_id = ?2")?.execute(params![event, tenant_text])?;
        }
    }
    counts.events = events.len() as u64;
    Ok(counts)
}
