//! Console pages: the interactions list (the filters of `GET /api/v1/interactions`, newest
//! first, cursor pagination) and one interaction's detail (every stored field, the masked
//! findings, the decision, the events it emitted). Both read through the API's handlers.
use super::{Console, PageResult};
use crate::interactions::routes::{InteractionListParams, interactions_get, interactions_list};
use crate::interactions::{Interaction, default_message};
use crate::model::{Action, RiskLevel};
use crate::platforms::{Platform, merged, tenant_rows};
use crate::state::FirewallState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use uuid::Uuid;
use vigie_core::auth::Permission;
use vigie_core::http::{ApiError, ApiQuery, FieldError};
use vigie_web::{Shell, Time};

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/interactions", get(list)).route("/interactions/{id}", get(detail))
}

/// Rows per page.
const PAGE: u32 = 50;

/// The list's query: the filter form's fields (empty ones mean "any") and the cursor.
#[derive(Deserialize, Default)]
struct ListParams {
    action: Option<String>,
    platform_id: Option<String>,
    user_id: Option<String>,
    /// A risk level: that level and above.
    risk: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// `24h`, `7d`, `30d` (rolling), `custom` (`from`/`to`), or empty for any time. Absent with
    /// `from`/`to` (a link from the overview): the custom range.
    when: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

/// A filter value: trimmed, `None` when empty.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The rolling windows of the "When" filter.
const WINDOWS: &[(&str, &str, i64)] = &[("24h", "Last 24 hours", 24), ("7d", "Last 7 days", 24 * 7), ("30d", "Last 30 days", 24 * 30)];

/// The risk levels of the "Risk" filter, with the score they start at.
const RISKS: &[(RiskLevel, f64)] = &[(RiskLevel::Low, 0.1), (RiskLevel::Medium, 0.3), (RiskLevel::High, 0.7), (RiskLevel::Critical, 0.9)];

/// An option of a select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices<'a>(items: impl IntoIterator<Item = (&'a str, String)>, current: Option<&str>) -> Vec<Choice> {
    items.into_iter().map(|(v, label)| Choice { value: v.to_owned(), label, selected: current == Some(v) }).collect()
}

/// The filters as read from the query and as the form shows them again.
struct Filters {
    action: Option<String>,
    platform_id: Option<String>,
    user_id: String,
    risk: Option<String>,
    kind: String,
    when: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

impl Filters {
    /// Reads the page's query; problems are reported by field, as the API does.
    fn read(q: &ListParams, now: DateTime<Utc>, errors: &mut Vec<FieldError>) -> Filters {
        let time = |name: &str, v: &Option<String>, errors: &mut Vec<FieldError>| {
            given(v).and_then(|s| match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.push(FieldError::new(name, format!("{s:?} is not a date and time (RFC 3339, e.g. 2026-03-14T00:00:00Z)")));
                    None
                }
            })
        };
        let when = q.when.as_deref().map(str::trim);
        let (when, from, to) = match when {
            Some(w) => match WINDOWS.iter().find(|x| x.0 == w) {
                Some(&(key, _, hours)) => (Some(key.to_owned()), Some(now - TimeDelta::hours(hours)), None),
                None if w == "custom" => (Some("custom".to_owned()), time("from", &q.from, errors), time("to", &q.to, errors)),
                None => (None, None, None),
            },
            None => {
                let (from, to) = (time("from", &q.from, errors), time("to", &q.to, errors));
                ((from.is_some() || to.is_some()).then(|| "custom".to_owned()), from, to)
            }
        };
        let risk = given(&q.risk).map(str::to_ascii_lowercase);
        if let Some(r) = &risk
            && !RISKS.iter().any(|x| x.0.as_str() == r)
        {
            errors.push(FieldError::new("risk", format!("{r:?} is not a risk level; use low, medium, high or critical")));
        }
        Filters {
            action: given(&q.action).map(str::to_ascii_lowercase),
            platform_id: given(&q.platform_id).map(str::to_ascii_lowercase),
            user_id: given(&q.user_id).unwrap_or_default().to_owned(),
            risk,
            kind: given(&q.kind).unwrap_or_default().to_owned(),
            when,
            from,
            to,
        }
    }

    /// The API's parameters for these filters.
    fn api_params(&self, cursor: Option<String>, errors: &mut Vec<FieldError>) -> InteractionListParams {
        let user_id = (!self.user_id.is_empty()).then(|| Uuid::parse_str(&self.user_id)).and_then(|r| {
            r.map_err(|_| errors.push(FieldError::new("user_id", format!("{:?} is not a user id (a UUID)", self.user_id)))).ok()
        });
        InteractionListParams {
            platform_id: self.platform_id.clone(),
            user_id,
            action: self.action.clone(),
            min_risk: self.risk.as_deref().and_then(|r| RISKS.iter().find(|x| x.0.as_str() == r)).map(|x| x.1),
            kind: (!self.kind.is_empty()).then(|| self.kind.clone()),
            from: self.from,
            to: self.to,
            limit: Some(PAGE),
            cursor,
        }
    }

    /// The query string of these filters (time bounds fixed, so the next page does not move).
    fn query(&self) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        let mut put = |k: &'static str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                q.push((k, v.to_owned()));
            }
        };
        put("action", self.action.as_deref());
        put("platform_id", self.platform_id.as_deref());
        put("user_id", Some(&self.user_id));
        put("risk", self.risk.as_deref());
        put("type", Some(&self.kind));
        if self.from.is_some() || self.to.is_some() {
            put("when", Some("custom"));
        }
        put("from", self.from.map(rfc3339).as_deref());
        put("to", self.to.map(rfc3339).as_deref());
        q.iter().map(|(k, v)| format!("{k}={}", vigie_web::form::encode(v))).collect::<Vec<_>>().join("&")
    }

    fn any(&self) -> bool {
        self.action.is_some()
            || self.platform_id.is_some()
            || !self.user_id.is_empty()
            || self.risk.is_some()
            || !self.kind.is_empty()
            || self.from.is_some()
            || self.to.is_some()
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A platform's display name from the tenant's catalogue (its id when unknown).
fn platform_name(catalogue: &[Platform], id: &str) -> String {
    catalogue.iter().find(|p| p.id == id).map_or_else(|| id.to_owned(), |p| p.name.clone())
}

/// The distinct classification types of an interaction, in order of first appearance.
fn distinct_types(i: &Interaction) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in &i.classifications {
        if !out.contains(&c.kind) {
            out.push(c.kind.clone());
        }
    }
    out
}

/// A row of the list.
struct Row {
    href: String,
    time: Time,
    user: Option<String>,
    user_href: String,
    platform_id: String,
    platform: String,
    platform_href: String,
    action: &'static str,
    risk: String,
    level: &'static str,
    types: Vec<String>,
    policy: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "interactions.html")]
struct ListPage {
    shell: Shell,
    actions: Vec<Choice>,
    platforms: Vec<Choice>,
    risks: Vec<Choice>,
    windows: Vec<Choice>,
    custom: bool,
    from: Option<Time>,
    to: Option<Time>,
    from_value: String,
    to_value: String,
    user_id: String,
    kind: String,
    known_types: Vec<&'static str>,
    error: Option<String>,
    problems: Vec<String>,
    filtered: bool,
    rows: Vec<Row>,
    older: Option<String>,
    newest: Option<String>,
}

async fn list(State(st): State<FirewallState>, console: Console, Query(q): Query<ListParams>) -> PageResult {
    console.require(Permission::ReadData)?;
    let tenant = console.principal.tenant_id;
    let mut errors = Vec::new();
    let f = Filters::read(&q, st.clock.now(), &mut errors);
    let cursor = given(&q.cursor).map(str::to_owned);
    let params = f.api_params(cursor.clone(), &mut errors);
    let catalogue = merged(st.store.read(move |c| tenant_rows(c, tenant)).await.map_err(ApiError::from)?);
    let (page, error) = if errors.is_empty() {
        match interactions_list(State(st.clone()), console.principal.clone(), ApiQuery(params)).await {
            Ok(page) => (Some(page.0), None),
            Err(e) if e.status.is_client_error() => (None, Some(e)),
            Err(e) => return Err(e.into()),
        }
    } else {
        (None, Some(ApiError::validation(errors)))
    };
    let rows = page
        .as_ref()
        .map(|p| {
            p.items
                .iter()
                .map(|i| {
                    let user = i.user_id.map(|u| u.to_string());
                    Row {
                        href: format!("/interactions/{}", i.id),
                        time: Time(i.created_at),
                        user_href: user.as_deref().map(|u| format!("/interactions?user_id={u}")).unwrap_or_default(),
                        user,
                        platform: platform_name(&catalogue, &i.platform_id),
                        platform_href: format!("/interactions?platform_id={}", vigie_web::form::encode(&i.platform_id)),
                        platform_id: i.platform_id.clone(),
                        action: i.decision.action.as_str(),
                        risk: format!("{:.2}", i.risk_score),
                        level: i.risk_level.as_str(),
                        types: distinct_types(i),
                        policy: i
                            .decision
                            .policy_id
                            .map(|id| (format!("/policies/{id}"), i.decision.policy_name.clone().unwrap_or_default())),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let base = f.query();
    let with = |extra: String| {
        let q = [base.as_str(), extra.as_str()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("&");
        if q.is_empty() { "/interactions".to_owned() } else { format!("/interactions?{q}") }
    };
    let older = page.as_ref().and_then(|p| p.next_cursor.as_deref()).map(|c| with(format!("cursor={}", vigie_web::form::encode(c))));
    let newest = cursor.is_some().then(|| with(String::new()));
    let mut platform_items: Vec<(&str, String)> = vec![("", "Any platform".to_owned())];
    platform_items.extend(catalogue.iter().map(|p| (p.id.as_str(), p.name.clone())));
    if let Some(p) = f.platform_id.as_deref().filter(|p| !catalogue.iter().any(|c| c.id == *p)) {
        platform_items.push((p, p.to_owned()));
    }
    let custom = f.when.as_deref() == Some("custom");
    let mut windows = vec![("", "Any time".to_owned())];
    windows.extend(WINDOWS.iter().map(|w| (w.0, w.1.to_owned())));
    if custom {
        windows.push(("custom", "The range below".to_owned()));
    }
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = ListPage {
        shell: console.shell("Interactions", "/interactions"),
        actions: choices(
            [("", "Any action".to_owned())].into_iter().chain(Action::ALL.iter().map(|a| (a.as_str(), a.as_str().to_owned()))),
            Some(f.action.as_deref().unwrap_or("")),
        ),
        platforms: choices(platform_items, Some(f.platform_id.as_deref().unwrap_or(""))),
        risks: choices(
            [("", "Any risk".to_owned())].into_iter().chain(RISKS.iter().map(|r| {
                (r.0.as_str(), if r.0 == RiskLevel::Critical { "critical".to_owned() } else { format!("{} and above", r.0.as_str()) })
            })),
            Some(f.risk.as_deref().unwrap_or("")),
        ),
        windows: choices(windows, Some(f.when.as_deref().unwrap_or(""))),
        custom,
        from: f.from.filter(|_| custom).map(Time),
        to: f.to.filter(|_| custom).map(Time),
        from_value: f.from.filter(|_| custom).map(rfc3339).unwrap_or_default(),
        to_value: f.to.filter(|_| custom).map(rfc3339).unwrap_or_default(),
        user_id: f.user_id.clone(),
        kind: f.kind.clone(),
        known_types: vigie_pii::PiiType::ALL.iter().map(|t| t.code()).collect(),
        problems: error.as_ref().map(|e| e.fields.iter().map(|x| format!("{}: {}", x.field, x.message)).collect()).unwrap_or_default(),
        error: error.map(|e| e.message),
        filtered: f.any(),
        rows,
        older,
        newest,
    };
    Ok(vigie_web::page(status, &page))
}

/// A classification as the detail shows it.
struct Finding {
    kind: String,
    value: String,
    score: String,
    span: String,
    count: u32,
}

#[derive(Template)]
#[template(path = "interactions_detail.html")]
struct DetailPage {
    shell: Shell,
    i: Interaction,
    time: Time,
    platform: String,
    platform_href: String,
    user_href: String,
    action: &'static str,
    level: &'static str,
    risk: String,
    findings: Vec<Finding>,
    policy_href: Option<String>,
    message: Option<String>,
    policy_gone: bool,
    metadata: Vec<(String, String)>,
    events: Vec<(String, String)>,
}

async fn detail(State(st): State<FirewallState>, console: Console, Path(id): Path<String>) -> PageResult {
    console.require(Permission::ReadData)?;
    let tenant = console.principal.tenant_id;
    let i = interactions_get(State(st.clone()), console.principal.clone(), Path(id)).await?.0;
    let catalogue = merged(st.store.read(move |c| tenant_rows(c, tenant)).await.map_err(ApiError::from)?);
    let events = crate::interactions::events(&st, &i).await?;
    // The message is not stored with the interaction: it is the policy's (as worded now), or the
    // sentence the server makes when the policy has none.
    let (mut message, mut policy_gone) = (None, false);
    if let Some(pid) = i.decision.policy_id
        && i.decision.action != Action::Log
    {
        match crate::policy::get(&st, tenant, pid).await {
            Ok(p) => {
                message = Some(
                    p.rules
                        .message
                        .clone()
                        .unwrap_or_else(|| default_message(i.decision.action, &p.name, &distinct_types(&i), i.interaction_type)),
                )
            }
            Err(e) if e.status == StatusCode::NOT_FOUND => policy_gone = true,
            Err(e) => return Err(e.into()),
        }
    }
    let findings = i
        .classifications
        .iter()
        .map(|c| Finding {
            kind: c.kind.clone(),
            value: c.value.clone().unwrap_or_default(),
            score: c.score.map(|s| format!("{s:.2}")).unwrap_or_default(),
            span: match (c.start, c.end) {
                (Some(s), Some(e)) => format!("{s}–{e}"),
                _ => String::new(),
            },
            count: c.count.unwrap_or(1),
        })
        .collect();
    let metadata =
        i.content_metadata.iter().flatten().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect();
    let page = DetailPage {
        shell: console.shell("Interaction", "/interactions"),
        time: Time(i.created_at),
        platform: platform_name(&catalogue, &i.platform_id),
        platform_href: format!("/interactions?platform_id={}", vigie_web::form::encode(&i.platform_id)),
        user_href: i.user_id.map(|u| format!("/interactions?user_id={u}")).unwrap_or_default(),
        action: i.decision.action.as_str(),
        level: i.risk_level.as_str(),
        risk: format!("{:.2}", i.risk_score),
        findings,
        policy_href: i.decision.policy_id.map(|p| format!("/policies/{p}")),
        message,
        policy_gone,
        metadata,
        events,
        i,
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}
