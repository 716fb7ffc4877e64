//! `POST /api/v1/scan`: an inline verdict on a text before it is sent — what it holds, the
//! risk, and the policy decision with the message to show the person. Nothing is stored unless
//! the caller asks to record the interaction too.
use crate::interactions::text::{self, ScanOrigin};
use crate::interactions::{NewInteraction, PlatformRule, judge, prepare, store};
use crate::model::{Action, Direction, InteractionType, RiskLevel, Source};
use crate::state::FirewallState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vigie_core::auth::{Permission, Principal};
use vigie_core::http::{ApiError, FieldError};

/// A text to classify, and what it is for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The text: at most `max_text_bytes` bytes of UTF-8 (1 MiB by default; 413 beyond).
    /// Scanned, hashed and dropped: never stored.
    pub text: String,
    /// The AI platform the text is for. Without it the platform counts as unknown and
    /// unvetted. Required when `record` is true.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub platform_id: Option<String>,
    /// The person, as a UUID.
    pub user_id: Option<Uuid>,
    /// browser_extension (default), proxy, endpoint_agent or api.
    pub source: Option<Source>,
    /// outbound (default) or inbound.
    pub direction: Option<Direction>,
    /// prompt (default), completion, tool_call or embedding.
    pub interaction_type: Option<InteractionType>,
    /// Also record the interaction, as `POST /api/v1/interactions` would with these findings,
    /// and return its id. Default false: nothing is stored and no event is emitted.
    #[serde(default)]
    pub record: bool,
}

/// Debug output never shows the text, only its length.
impl std::fmt::Debug for ScanRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanRequest")
            .field("text", &format_args!("<{} bytes>", self.text.len()))
            .field("platform_id", &self.platform_id)
            .field("user_id", &self.user_id)
            .field("source", &self.source)
            .field("direction", &self.direction)
            .field("interaction_type", &self.interaction_type)
            .field("record", &self.record)
            .finish()
    }
}

/// One piece of sensitive data found in the text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanFinding {
    /// Type code (`CREDIT_CARD`, `EMAIL`, `IBAN`…).
    #[serde(rename = "type")]
    pub kind: String,
    /// Confidence, 0..1.
    pub score: f64,
    /// First code point of the match (0-based, inclusive): offsets count Unicode code points,
    /// not bytes or UTF-16 units.
    pub start: u64,
    /// Code point after the match (exclusive).
    pub end: u64,
    /// The value masked (`****0366`, `a***@acme.fr`); the raw value is never returned.
    pub value: String,
    /// The variant, when a type has several (`visa`, `github_token`, `ipv6`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The policy decision on the text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanDecision {
    /// block, coach or log (log when no policy matched).
    pub action: Action,
    /// The matching policy, if any.
    pub policy_id: Option<Uuid>,
    /// Its name.
    pub policy_name: Option<String>,
    /// What to show the person on a block or coach: the policy's `rules.message`, or a sentence
    /// naming the types found and the policy. Null on log.
    pub message: Option<String>,
}

/// What the text holds and what the tenant's policies say about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanResult {
    /// The findings, in order of their start.
    pub findings: Vec<ScanFinding>,
    /// Number of findings.
    pub classification_count: usize,
    /// Risk score, 0..1, from the findings and whether the platform is vetted.
    pub risk_score: f64,
    /// Risk band.
    pub risk_level: RiskLevel,
    /// The policy decision.
    pub decision: ScanDecision,
    /// The recorded interaction, when `record` was true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction_id: Option<Uuid>,
}

/// Scans a text and evaluates the caller's policies on it; records the interaction only when
/// `record` is set.
pub async fn scan(st: &FirewallState, by: &Principal, req: ScanRequest) -> Result<ScanResult, ApiError> {
    by.require(Permission::Record)?;
    if req.record && req.platform_id.is_none() {
        return Err(ApiError::validation(vec![FieldError::new(
            "platform_id",
            "is required when record is true; name the AI platform (chatgpt, claude…) or leave record out",
        )]));
    }
    let scanned = text::scan(st, req.text, "text", ScanOrigin::Scan).await?;
    let findings = scanned
        .findings
        .iter()
        .map(|f| ScanFinding {
            kind: f.kind.code().to_owned(),
            score: f.score,
            start: f.start as u64,
            end: f.end as u64,
            value: f.masked.clone(),
            detail: f.detail.map(str::to_owned),
        })
        .collect();
    let interaction = NewInteraction {
        platform_id: req.platform_id.unwrap_or_default(),
        content_hash: None,
        interaction_type: req.interaction_type,
        content_metadata: None,
        classifications: Vec::new(),
        risk_score: None,
        direction: req.direction,
        source: req.source,
        user_id: req.user_id,
        text: None,
    };
    let platform = if req.record { PlatformRule::Required } else { PlatformRule::Optional };
    let prep = prepare(interaction, Some(scanned), platform)?;
    let judged = judge(&*st.policies.get(&st.store, by.tenant_id).await?, prep);
    let mut result = ScanResult {
        findings,
        classification_count: judged.classification_count(),
        risk_score: judged.risk_score,
        risk_level: judged.decision.risk_level,
        decision: ScanDecision {
            action: judged.decision.action,
            policy_id: judged.decision.policy_id,
            policy_name: judged.decision.policy_name.clone(),
            message: judged.message.clone(),
        },
        interaction_id: None,
    };
    if req.record {
        result.interaction_id = Some(store(st, by.tenant_id, judged).await?.id);
    }
    Ok(result)
}

/// The HTTP route.
pub mod routes {
    use super::{ScanRequest, ScanResult};
    use crate::state::FirewallState;
    use axum::Json;
    use axum::extract::State;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    use vigie_core::http::{ApiError, ApiJson, ErrorBody, Recorder};

    /// The scan route.
    pub fn router() -> OpenApiRouter<FirewallState> {
        OpenApiRouter::new().routes(routes!(scan_text))
    }

    /// Classify a text and get the policy decision before it is sent: the findings (values
    /// masked; `start` and `end` in Unicode code points), the risk, and the action with the
    /// message to show. Nothing is stored unless `record` is true, which records the interaction
    /// as `POST /api/v1/interactions` would. The text is never stored. Needs a token with the
    /// `admin` or `ingest` role.
    #[utoipa::path(post, path = "/api/v1/scan", tag = "scan", security(("bearer" = [])), request_body = ScanRequest,
        responses((status = 200, body = ScanResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
            (status = 403, body = ErrorBody), (status = 413, description = "the text is longer than max_text_bytes (code text_too_large), or the body too large", body = ErrorBody),
            (status = 422, body = ErrorBody)))]
    async fn scan_text(
        State(st): State<FirewallState>,
        Recorder(p): Recorder,
        ApiJson(req): ApiJson<ScanRequest>,
    ) -> Result<Json<ScanResult>, ApiError> {
        Ok(Json(super::scan(&st, &p, req).await?))
    }
}
