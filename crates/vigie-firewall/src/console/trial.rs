//! Console page: "Try a prompt". A pasted text goes through exactly what `POST /api/v1/scan`
//! does with `record` false (scan, prepare, judge against the tenant's policies) and comes back
//! as an HTML fragment: the verdict, the policy and its message, the risk, and the text with its
//! findings highlighted. Nothing is stored and nothing of the text is logged; the highlighted
//! text goes back only to the person who typed it (the answer is `no-store`).
use super::{Console, PageResult};
use crate::platforms::{merged, tenant_rows};
use crate::scan::{ScanFinding, ScanRequest, ScanResult, scan};
use crate::server::text_body_limit;
use crate::state::FirewallState;
use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::fmt::Write;
use uuid::Uuid;
use vigie_core::auth::Permission;
use vigie_core::http::{ApiError, FieldError, parse_json};
use vigie_web::{Html, Shell, escape};

/// This module's pages.
pub fn routes(r: Router<FirewallState>) -> Router<FirewallState> {
    r.route("/try", get(try_page).post(try_prompt))
}

/// A platform of the select.
struct PlatformChoice {
    id: String,
    label: String,
}

#[derive(Template)]
#[template(path = "try.html")]
struct TryPage {
    shell: Shell,
    platforms: Vec<PlatformChoice>,
    /// Whether the user's role may scan (as `POST /api/v1/scan` requires).
    allowed: bool,
    /// The longest text the server scans, for people (`1 MiB`).
    max_text: String,
}

async fn try_page(State(st): State<FirewallState>, console: Console) -> PageResult {
    console.require(Permission::ReadConfig)?;
    let tenant = console.principal.tenant_id;
    let catalogue = merged(st.store.read(move |c| tenant_rows(c, tenant)).await.map_err(ApiError::from)?);
    let page = TryPage {
        shell: console.shell("Try a prompt", "/try"),
        platforms: catalogue
            .into_iter()
            .map(|p| PlatformChoice { label: format!("{} — {}", p.name, if p.vetted { "vetted" } else { "not vetted" }), id: p.id })
            .collect(),
        allowed: console.principal.role.allows(Permission::Record),
        max_text: size(st.settings.max_text_bytes),
    };
    Ok(vigie_web::page(StatusCode::OK, &page))
}

/// The form's fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrialRequest {
    text: String,
    platform_id: Option<String>,
    /// Kept as text so that a mistyped one is reported under its field.
    user_id: Option<String>,
}

/// Debug output never shows the text.
impl std::fmt::Debug for TrialRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrialRequest")
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("platform_id", &self.platform_id)
            .field("user_id", &self.user_id)
            .finish()
    }
}

/// A finding as the result lists it (value masked).
struct FindingRow {
    kind: String,
    value: String,
    score: String,
    start: u64,
    end: u64,
}

#[derive(Template)]
#[template(path = "try_result.html")]
struct TryResult {
    action: &'static str,
    policy: Option<(String, String)>,
    message: Option<String>,
    risk: String,
    level: &'static str,
    platform: String,
    highlighted: Html,
    findings: Vec<FindingRow>,
}

#[derive(Template)]
#[template(path = "try_refused.html")]
struct TryRefused {
    message: String,
}

/// `POST /try`: the verdict on a text, as an HTML fragment. Errors on a field come back as the
/// API's JSON (the form shows them under the field); a text that is too long gets a fragment
/// saying so, in place of an earlier verdict.
async fn try_prompt(State(st): State<FirewallState>, console: Console, body: Body) -> Response {
    let max = st.settings.max_text_bytes;
    // The body is read here rather than by an extractor: the text may be as long as the API
    // takes (max_text_bytes), more than the console's usual body limit.
    let Ok(bytes) = axum::body::to_bytes(body, text_body_limit(max)).await else {
        return too_long(format!("This text is longer than the {max} bytes this server scans (max_text_bytes). Try a shorter one."));
    };
    let req = match parse_json::<TrialRequest>(&bytes) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    drop(bytes);
    let mut errors = Vec::new();
    if req.text.trim().is_empty() {
        errors.push(FieldError::new("text", "type or paste the text to try"));
    }
    let user_id = req.user_id.as_deref().map(str::trim).filter(|u| !u.is_empty()).and_then(|u| {
        Uuid::parse_str(u)
            .map_err(|_| {
                errors.push(FieldError::new("user_id", format!("{u:?} is not a user id (a UUID); leave it empty if you have none")))
            })
            .ok()
    });
    if !errors.is_empty() {
        return ApiError::validation(errors).into_response();
    }
    let platform_id = req.platform_id.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty());
    let text = req.text;
    let scan_req = ScanRequest {
        text: text.clone(),
        platform_id: platform_id.clone(),
        user_id,
        source: None,
        direction: None,
        interaction_type: None,
        record: false,
    };
    match scan(&st, &console.principal, scan_req).await {
        Ok(r) => verdict(&st, console.principal.tenant_id, &text, platform_id, r).await,
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => too_long(e.message),
        Err(e) => e.into_response(),
    }
}

/// A size in bytes as people read it: `1 MiB`, `64 KiB`, `100 bytes`.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn too_long(message: String) -> Response {
    vigie_web::fragment(&TryRefused { message })
}

async fn verdict(st: &FirewallState, tenant: Uuid, text: &str, platform_id: Option<String>, r: ScanResult) -> Response {
    let platform = match platform_id {
        None => "An unknown platform — not vetted".to_owned(),
        Some(id) => {
            let catalogue = st.store.read(move |c| tenant_rows(c, tenant)).await.map(merged).unwrap_or_default();
            let id = id.to_ascii_lowercase();
            catalogue.into_iter().find(|p| p.id == id).map_or_else(
                || format!("{id} — not in the catalogue, so not vetted"),
                |p| format!("{} — {}", p.name, if p.vetted { "vetted" } else { "not vetted" }),
            )
        }
    };
    let page = TryResult {
        action: r.decision.action.as_str(),
        policy: r.decision.policy_id.map(|id| (format!("/policies/{id}"), r.decision.policy_name.clone().unwrap_or_default())),
        message: r.decision.message.clone(),
        risk: format!("{:.2}", r.risk_score),
        level: r.risk_level.as_str(),
        platform,
        highlighted: highlight(text, &r.findings),
        findings: r
            .findings
            .iter()
            .map(|f| FindingRow {
                kind: f.kind.clone(),
                value: f.value.clone(),
                score: format!("{:.2}", f.score),
                start: f.start,
                end: f.end,
            })
            .collect(),
    };
    vigie_web::fragment(&page)
}

/// `text` escaped, each finding in a `<mark class="finding">` titled with its type and masked
/// value (`high` for the most sensitive types). Offsets are code points; a finding overlapping
/// an earlier one is left unmarked.
fn highlight(text: &str, findings: &[ScanFinding]) -> Html {
    let mut spans: Vec<&ScanFinding> = findings.iter().collect();
    spans.sort_by_key(|f| (f.start, f.end));
    let mut out = String::with_capacity(text.len() + findings.len() * 80);
    let mut chars = text.chars();
    let mut at = 0u64;
    let mut copy = |out: &mut String, upto: u64, at: &mut u64| {
        let mut piece = String::new();
        while *at < upto {
            let Some(c) = chars.next() else { break };
            piece.push(c);
            *at += 1;
        }
        out.push_str(&escape(&piece));
    };
    for f in spans {
        if f.start < at || f.end <= f.start {
            continue;
        }
        copy(&mut out, f.start, &mut at);
        let high = vigie_pii::PiiType::sensitivity_of_code(&f.kind) >= 0.9;
        let _ =
            write!(out, "<mark class=\"finding{}\" title=\"{}: {}\">", if high { " high" } else { "" }, escape(&f.kind), escape(&f.value));
        copy(&mut out, f.end, &mut at);
        out.push_str("</mark>");
    }
    copy(&mut out, u64::MAX, &mut at);
    Html(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: &str, start: u64, end: u64) -> ScanFinding {
        ScanFinding { kind: kind.into(), score: 0.9, start, end, value: "****0366".into(), detail: None }
    }

    #[test]
    fn findings_are_marked_at_code_point_offsets_and_the_rest_is_escaped() {
        let text = "é <b>: 4532 0151 1283 0366, a@b.fr";
        let html = highlight(text, &[finding("EMAIL", 28, 34), finding("CREDIT_CARD", 7, 26), finding("IBAN", 10, 12)]).0;
        assert_eq!(
            html,
            "é &lt;b&gt;: <mark class=\"finding high\" title=\"CREDIT_CARD: ****0366\">4532 0151 1283 0366</mark>, \
             <mark class=\"finding\" title=\"EMAIL: ****0366\">a@b.fr</mark>"
        );
    }

    #[test]
    fn sizes_read_in_the_largest_whole_unit() {
        assert_eq!([1 << 20, 3 << 20, 64 << 10, 100, 1500].map(size), ["1 MiB", "3 MiB", "64 KiB", "100 bytes", "1500 bytes"]);
    }

    #[test]
    fn offsets_past_the_end_do_not_panic() {
        assert_eq!(highlight("ab", &[finding("EMAIL", 1, 9)]).0, "a<mark class=\"finding\" title=\"EMAIL: ****0366\">b</mark>");
    }
}
