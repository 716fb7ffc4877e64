//! The verdict on a prepared interaction: its risk (the higher of the client's and the
//! server's score of the classifications) and the first matching policy, with the message a
//! block or coach shows. Pure: no I/O, the tenant's rules are passed in.
use super::{Alert, Decision, Prepared, text};
use crate::model::{Action, InteractionType, RiskLevel};
use crate::policy::TenantRules;
use crate::policy::engine::{Facts, first_match};

/// A prepared interaction with its risk and the policy decision, not stored yet.
pub(crate) struct Judged {
    pub(super) prep: Prepared,
    pub(super) platform_vetted: bool,
    /// The higher of the client's risk and the server's score of the classifications.
    pub(crate) risk_score: f64,
    pub(crate) decision: Decision,
    pub(super) alert: Option<Alert>,
    /// What to tell the person on a block or coach: the policy's message, or one naming the
    /// policy and the types found.
    pub(crate) message: Option<String>,
}

impl Judged {
    /// Number of matches (classifications weighted by their `count`).
    pub(crate) fn classification_count(&self) -> usize {
        self.prep.classification_count
    }
}

/// Scores the risk and evaluates the tenant's policies on a prepared interaction. The server
/// never lowers the client's risk; it raises it when the classifications warrant more.
pub(crate) fn judge(rules: &TenantRules, prep: Prepared) -> Judged {
    let platform_vetted = !prep.platform_id.is_empty() && rules.is_vetted(&prep.platform_id);
    let risk_score = prep.client_risk.max(text::risk_of(&prep.classifications, platform_vetted));
    let facts = Facts {
        platform_id: &prep.platform_id,
        platform_vetted,
        risk_score,
        classification_types: &prep.types,
        classification_count: prep.classification_count,
        source: prep.source,
        direction: prep.direction,
        user_id: prep.user_id,
        interaction_type: prep.interaction_type,
    };
    let matched = first_match(&rules.policies, &facts);
    let decision = Decision {
        action: matched.map_or(Action::Log, |p| p.rules.action),
        policy_id: matched.map(|p| p.id),
        policy_name: matched.map(|p| p.name.clone()),
        risk_level: RiskLevel::of(risk_score),
    };
    let message = matched
        .filter(|p| p.rules.action != Action::Log)
        .map(|p| p.rules.message.clone().unwrap_or_else(|| default_message(p.rules.action, &p.name, &prep.types, prep.interaction_type)));
    let alert = Alert::raised_by(&decision, risk_score);
    Judged { prep, platform_vetted, risk_score, decision, alert, message }
}

/// The message of a block or coach decision whose policy has none: it names the types found
/// (each once) and the policy.
pub(crate) fn default_message(action: Action, policy: &str, types: &[String], kind: InteractionType) -> String {
    let mut distinct: Vec<&str> = Vec::new();
    for t in types {
        if !distinct.contains(&t.as_str()) {
            distinct.push(t);
        }
    }
    let what = match kind {
        InteractionType::Prompt => "prompt",
        InteractionType::Completion => "answer",
        InteractionType::ToolCall => "tool call",
        InteractionType::Embedding => "embedding request",
    };
    match (action, distinct.is_empty()) {
        (Action::Block, false) => {
            format!("This {what} contains {}. Policy {policy:?} blocks it; remove them before sending.", distinct.join(", "))
        }
        (Action::Block, true) => format!("Policy {policy:?} blocks this {what}."),
        (_, false) => format!("This {what} contains {}. Policy {policy:?} asks you to remove them before sending.", distinct.join(", ")),
        (_, true) => format!("Policy {policy:?} asks you to review this {what} before sending."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::{NewInteraction, PlatformRule, prepare};
    use crate::model::Severity;
    use serde_json::{Value, json};
    use uuid::Uuid;

    const HASH: &str = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3";

    fn prepared(body: Value) -> Prepared {
        let req: NewInteraction = serde_json::from_value(body).expect("json");
        prepare(req, None, PlatformRule::Required).expect("valid")
    }

    fn policy(action: &str, message: Option<&str>) -> TenantRules {
        use crate::policy::engine::{CompiledPolicy, ConditionSpec, RulesSpec, compile};
        let spec = RulesSpec {
            action: action.into(),
            conditions: vec![ConditionSpec { field: "classification_count".into(), operator: "gt".into(), value: json!(0) }],
            message: message.map(str::to_owned),
        };
        let mut rules = TenantRules::default();
        rules.policies = vec![CompiledPolicy {
            id: Uuid::nil(),
            name: "PII on unvetted platforms".into(),
            priority: 1,
            rules: compile(&spec).expect("valid"),
        }];
        rules
    }

    #[test]
    fn the_risk_is_the_higher_of_the_clients_and_the_servers() {
        let card = json!([{"type": "CREDIT_CARD", "value": "4532015112830366", "score": 0.97}]);
        let j = judge(&TenantRules::default(), prepared(json!({"platform_id": "deepseek", "content_hash": HASH, "risk_score": 0.99})));
        assert_eq!(j.risk_score, 0.99, "no classification: the client's risk stands");
        let j = judge(
            &TenantRules::default(),
            prepared(json!({"platform_id": "deepseek", "content_hash": HASH, "risk_score": 0.1, "classifications": card})),
        );
        assert!(j.risk_score > 0.97, "a card raises a low client risk: {}", j.risk_score);
        assert_eq!(j.decision.risk_level, RiskLevel::Critical);
        assert_eq!(j.alert.map(|a| a.severity), Some(Severity::Critical), "the alert follows the final risk");
    }

    #[test]
    fn a_coach_or_block_decision_carries_the_policys_message_or_a_default_naming_types_and_policy() {
        let body = json!({"platform_id": "deepseek", "content_hash": HASH, "classifications": [
            {"type": "credit_card"}, {"type": "EMAIL"}, {"type": "card"}
        ]});
        let j = judge(&policy("coach", None), prepared(body.clone()));
        assert_eq!(j.decision.action, Action::Coach);
        assert_eq!(
            j.message.as_deref(),
            Some("This prompt contains CREDIT_CARD, EMAIL. Policy \"PII on unvetted platforms\" asks you to remove them before sending.")
        );
        let j = judge(&policy("block", Some("Cards never leave the company.")), prepared(body.clone()));
        assert_eq!((j.decision.action, j.message.as_deref()), (Action::Block, Some("Cards never leave the company.")));
        let j = judge(&policy("log", Some("unused")), prepared(body));
        assert_eq!((j.decision.action, j.message), (Action::Log, None));
    }
}
