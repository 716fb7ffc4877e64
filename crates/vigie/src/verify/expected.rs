//! Which default rules the test interaction should fire, worked out from what the firewall
//! answered (its findings, risk, decision and alert) and from the event types the webhook
//! carried to the XDR: a rule is waited for only when its conditions hold *and* its trigger
//! event reached the XDR. Pure, so the tests below cover every branch without a server.
use serde_json::Value;
use std::collections::BTreeSet;

/// A default rule (`content/rules.json`) that one interaction can fire, and the event type its
/// query starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DefaultRule {
    /// Its `builtin` key.
    pub key: &'static str,
    /// Its name, as installed.
    pub name: &'static str,
    /// The event type its query matches (`event_type == …`).
    pub trigger: &'static str,
}

/// default-3: a card number or IBAN at risk above 0.9.
pub(super) const FINANCIAL: DefaultRule =
    DefaultRule { key: "default-3", name: "Financial data exposure", trigger: "interaction.high_risk" };
/// default-1: a policy decision on a platform its query does not leave out.
pub(super) const UNVETTED: DefaultRule =
    DefaultRule { key: "default-1", name: "Policy violation on unvetted AI platform", trigger: "interaction.policy_violated" };
/// default-4: the firewall's critical alert.
pub(super) const CRITICAL: DefaultRule =
    DefaultRule { key: "default-4", name: "Critical alert from the AI firewall", trigger: "alert.severity_critical" };

/// The platforms default-1's query leaves out (`platform_id NOT IN [...]`).
const LEFT_OUT_BY_UNVETTED: [&str; 3] = ["chatgpt", "claude", "gemini"];
/// The risk default-3 needs to be above.
pub(super) const FINANCIAL_RISK: f64 = 0.9;

/// What the test interaction should make the default rules do.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Expectations {
    /// Rules whose conditions hold and whose trigger event reached the XDR, with why they apply.
    pub expected: Vec<(DefaultRule, String)>,
    /// Rules whose conditions hold but whose trigger event did not reach the XDR, with why not
    /// (the webhook does not subscribe to it, or the firewall did not emit it).
    pub not_carried: Vec<(DefaultRule, String)>,
    /// For each rule whose conditions do not hold, why not.
    pub not_applicable: Vec<String>,
}

/// What the interaction `v` (the firewall's answer to the POST) should fire, given the event
/// types it `emitted` and those that `carried` to the XDR.
pub(super) fn expectations(v: &Value, emitted: &BTreeSet<String>, carried: &BTreeSet<String>) -> Expectations {
    let types: BTreeSet<&str> = v["classifications"].as_array().into_iter().flatten().filter_map(|c| c["type"].as_str()).collect();
    let risk = v["risk_score"].as_f64().unwrap_or(0.0);
    let platform = v["platform_id"].as_str().unwrap_or_default();
    let count = v["classification_count"].as_u64().unwrap_or(types.len() as u64);
    let action = v["decision"]["action"].as_str().unwrap_or("none");
    let mut out = Expectations::default();
    let mut applies = |rule: DefaultRule, why: Result<String, String>| match why {
        Ok(why) if carried.contains(rule.trigger) => out.expected.push((rule, why)),
        Ok(_) if emitted.contains(rule.trigger) => out
            .not_carried
            .push((rule, format!("the webhook to the XDR does not subscribe to {}, the event {:?} starts from", rule.trigger, rule.name))),
        Ok(_) => out.not_carried.push((rule, format!("the firewall did not emit {}, the event {:?} starts from", rule.trigger, rule.name))),
        Err(why_not) => out.not_applicable.push(format!("{:?}: {why_not}", rule.name)),
    };

    let money = types.contains("CREDIT_CARD") || types.contains("IBAN");
    applies(
        FINANCIAL,
        match (money, risk > FINANCIAL_RISK) {
            (true, true) => Ok(format!("a card number or IBAN at risk {risk:.2}")),
            (false, _) => Err("no card number or IBAN was found".to_owned()),
            (true, false) => Err(format!("the risk {risk:.2} is not above {FINANCIAL_RISK}")),
        },
    );
    let decided = !v["decision"]["policy_id"].is_null();
    applies(
        UNVETTED,
        if !decided {
            Err(format!("no policy matched (the decision is {action:?})"))
        } else if LEFT_OUT_BY_UNVETTED.contains(&platform) {
            Err(format!("its query leaves out the platform {platform:?} (pass --platform with an unvetted one)"))
        } else if count == 0 {
            Err("nothing was classified".to_owned())
        } else {
            Ok(format!("a {action} decision on {platform}"))
        },
    );
    let severity = v["alert"]["severity"].as_str();
    applies(
        CRITICAL,
        match severity {
            Some("critical") => Ok("the firewall's critical alert".to_owned()),
            Some(s) => Err(format!("the firewall raised a {s} alert, not a critical one")),
            None => Err("the firewall raised no alert".to_owned()),
        },
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ALL: [&str; 4] = ["interaction.created", "interaction.policy_violated", "interaction.high_risk", "alert.severity_critical"];

    fn set(types: &[&str]) -> BTreeSet<String> {
        types.iter().map(|t| (*t).to_owned()).collect()
    }

    /// The firewall's answer for an interaction with these findings.
    fn interaction(types: &[&str], risk: f64, policy: bool, platform: &str, alert: Option<&str>) -> Value {
        json!({
            "platform_id": platform,
            "classifications": types.iter().map(|t| json!({"type": t})).collect::<Vec<_>>(),
            "classification_count": types.len(),
            "risk_score": risk,
            "decision": if policy { json!({"action": "block", "policy_id": "p1"}) } else { json!({"action": "allow", "policy_id": null}) },
            "alert": alert.map(|s| json!({"severity": s})),
        })
    }

    fn keys(rules: &[(DefaultRule, String)]) -> Vec<&'static str> {
        rules.iter().map(|(r, _)| r.key).collect()
    }

    #[test]
    fn a_blocked_card_at_high_risk_on_an_unvetted_platform_expects_the_three_rules_when_all_is_carried() {
        let v = interaction(&["CREDIT_CARD", "IBAN"], 0.97, true, "perplexity", Some("critical"));
        let e = expectations(&v, &set(&ALL), &set(&ALL));
        assert_eq!(keys(&e.expected), ["default-3", "default-1", "default-4"]);
        assert!(e.not_carried.is_empty() && e.not_applicable.is_empty(), "{e:?}");
    }

    #[test]
    fn a_rule_whose_trigger_the_webhook_does_not_carry_is_not_expected_and_the_event_type_is_named() {
        let v = interaction(&["CREDIT_CARD"], 0.97, true, "perplexity", Some("critical"));
        let carried = set(&["interaction.created", "interaction.policy_violated"]);
        let e = expectations(&v, &set(&ALL), &carried);
        assert_eq!(keys(&e.expected), ["default-1"]);
        assert_eq!(keys(&e.not_carried), ["default-3", "default-4"]);
        assert!(e.not_carried[0].1.contains("does not subscribe to interaction.high_risk"), "{e:?}");
        assert!(e.not_carried[1].1.contains("does not subscribe to alert.severity_critical"), "{e:?}");
    }

    #[test]
    fn a_trigger_the_firewall_did_not_emit_is_said_so_rather_than_blamed_on_the_webhook() {
        let v = interaction(&["IBAN"], 0.95, false, "perplexity", None);
        let e = expectations(&v, &set(&["interaction.created"]), &set(&["interaction.created"]));
        assert!(e.expected.is_empty());
        assert_eq!(keys(&e.not_carried), ["default-3"]);
        assert!(e.not_carried[0].1.contains("did not emit interaction.high_risk"), "{e:?}");
    }

    #[test]
    fn nothing_is_expected_when_no_policy_matched_and_the_risk_is_not_above_0_9_and_each_reason_is_given() {
        let v = interaction(&["CREDIT_CARD", "IBAN"], 0.85, false, "perplexity", None);
        let e = expectations(&v, &set(&ALL), &set(&ALL));
        assert!(e.expected.is_empty() && e.not_carried.is_empty(), "{e:?}");
        let why = e.not_applicable.join("; ");
        assert!(why.contains("risk 0.85 is not above 0.9"), "{why}");
        assert!(why.contains("no policy matched (the decision is \"allow\")"), "{why}");
        assert!(why.contains("raised no alert"), "{why}");
    }

    #[test]
    fn no_card_or_iban_means_no_financial_rule_even_at_high_risk() {
        let v = interaction(&["FR_NIR", "API_KEY"], 0.99, true, "perplexity", Some("high"));
        let e = expectations(&v, &set(&ALL), &set(&ALL));
        assert_eq!(keys(&e.expected), ["default-1"]);
        let why = e.not_applicable.join("; ");
        assert!(why.contains("no card number or IBAN") && why.contains("a high alert, not a critical one"), "{why}");
    }

    #[test]
    fn the_unvetted_rule_is_not_expected_on_a_platform_its_query_leaves_out() {
        let v = interaction(&["CREDIT_CARD"], 0.97, true, "chatgpt", None);
        let e = expectations(&v, &set(&ALL), &set(&ALL));
        assert_eq!(keys(&e.expected), ["default-3"]);
        assert!(e.not_applicable.iter().any(|w| w.contains("leaves out the platform \"chatgpt\"")), "{e:?}");
    }
}
