//! Simulated traffic shared by `demo` and `bench`: a population of people and the interactions
//! a browser extension would report for them, and the policies a security team would write.
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use uuid::Uuid;
use vigie_core::auth::{Actor, Principal, Role};
use vigie_firewall::FirewallState;
use vigie_firewall::policy::NewPolicy;
use vigie_firewall::policy::engine::{ConditionSpec, RulesSpec};

/// A principal acting for Vigie itself in `tenant` (seeding demo or bench data).
pub fn system(tenant: Uuid, name: &str) -> Principal {
    Principal { tenant_id: tenant, role: Role::Admin, actor: Actor::Token { id: Uuid::nil(), name: name.to_owned(), owner: None } }
}

/// The stable id of person `i` (so a resumed demo reuses the same people).
pub fn person(i: usize) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128)
}

const PLATFORMS: &[&str] =
    &["chatgpt", "chatgpt", "chatgpt", "claude", "claude", "gemini", "copilot", "mistral", "deepseek", "perplexity", "grok", "poe"];

fn finding(kind: &str, value: &str, score: f64) -> Value {
    json!({"type": kind, "value": value, "score": score, "start": 10, "end": 10 + value.chars().count()})
}

/// One interaction as an extension reports it: most clean, some with contact details, a few
/// with card numbers, IBANs, national ids or API keys. Person `offender` always leaks a card.
pub fn interaction(rng: &mut impl Rng, people: usize, offender: Option<usize>) -> Value {
    let who = rng.random_range(0..people);
    let platform = *PLATFORMS.choose(rng).unwrap_or(&"chatgpt");
    let roll: f64 = rng.random();
    let (classifications, risk) = if Some(who) == offender {
        (vec![finding("CREDIT_CARD", "4532 0151 1283 0366", 0.99)], 0.95)
    } else if roll < 0.70 {
        (vec![], rng.random_range(0.0..0.08))
    } else if roll < 0.85 {
        (vec![finding("EMAIL", "jeanne.martin@example.fr", 0.98), finding("PHONE", "+33 6 12 34 56 78", 0.9)], rng.random_range(0.12..0.35))
    } else {
        let (k, v) = *[
            ("CREDIT_CARD", "4532 0151 1283 0366"),
            ("IBAN", "FR76 3000 6000 0112 3456 7890 189"),
            ("FR_NIR", "2 84 05 75 112 233 45"),
            ("API_KEY", "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"),
        ]
        .choose(rng)
        .unwrap_or(&("IBAN", "FR76 3000 6000 0112 3456 7890 189"));
        (vec![finding(k, v, 0.97)], rng.random_range(0.75..0.99))
    };
    let mut hash = [0u8; 32];
    rng.fill(&mut hash);
    json!({
        "platform_id": platform,
        "content_hash": hash.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "interaction_type": "prompt",
        "content_metadata": {"url": format!("https://{platform}.example/c/{}", rng.random::<u32>()), "model": "default"},
        "classifications": classifications,
        "risk_score": (risk * 1000.0_f64).round() / 1000.0,
        "direction": "outbound",
        "source": "browser_extension",
        "user_id": person(who).to_string(),
    })
}

/// Prompts a proxy would send as text for the firewall to scan: most plain multilingual prose,
/// about a quarter holding sensitive data in the formats people type (generated and labelled
/// by `vigie_pii::corpus`).
pub fn prompt_texts(seed: u64, count: usize) -> Vec<String> {
    let sensitive = vigie_pii::corpus::labelled(seed, count / 70 + 1);
    let prose = vigie_pii::corpus::prose(seed, count * 240);
    let mut clean = prose.split(". ").filter(|s| s.len() > 40).map(|s| format!("{s}."));
    let mut out = Vec::with_capacity(count);
    let mut k = 0;
    while out.len() < count {
        match clean.next() {
            Some(c) if out.len() % 4 != 3 => out.push(c),
            _ => {
                out.push(sensitive[k % sensitive.len()].text.clone());
                k += 7;
            }
        }
    }
    out
}

/// The same interaction as [`interaction`], sent the way a proxy sends it: the prompt's text
/// for the firewall to scan instead of a hash and the client's classifications.
pub fn interaction_with_text(rng: &mut impl Rng, people: usize, text: &str) -> Value {
    let mut body = interaction(rng, people, None);
    if let Some(o) = body.as_object_mut() {
        o.remove("content_hash");
        o.remove("classifications");
        o.remove("risk_score");
        o.insert("source".into(), json!("proxy"));
        o.insert("text".into(), json!(text));
    }
    body
}

fn cond(field: &str, operator: &str, value: Value) -> ConditionSpec {
    ConditionSpec { field: field.into(), operator: operator.into(), value }
}

/// The policies a security team would start with.
pub fn starter_policies() -> Vec<NewPolicy> {
    let p = |name: &str, description: &str, priority: i64, action: &str, conditions: Vec<ConditionSpec>| NewPolicy {
        name: name.into(),
        description: description.into(),
        rules: RulesSpec { message: None, action: action.into(), conditions },
        enabled: true,
        priority: Some(priority),
    };
    vec![
        p("Block DeepSeek", "DeepSeek is not approved for company data", 10, "block", vec![cond("platform_id", "eq", json!("deepseek"))]),
        p(
            "Block payment data",
            "Card numbers and IBANs never leave",
            20,
            "block",
            vec![cond("classifications", "contains", json!(["CREDIT_CARD", "IBAN"]))],
        ),
        p("Block secrets", "API keys and credentials", 30, "block", vec![cond("classifications", "contains", json!("API_KEY"))]),
        p(
            "Coach on unvetted platforms",
            "Sensitive data on a platform not yet approved",
            50,
            "coach",
            vec![cond("platform_vetted", "eq", json!(false)), cond("classification_count", "gt", json!("0"))],
        ),
        p("Log high risk", "Keep a trail of risky prompts", 100, "log", vec![cond("risk_score", "gte", json!("0.7"))]),
    ]
}

/// `n` enabled policies of which only the last can match ordinary traffic, so every one of
/// them is evaluated for each interaction (the benchmark's worst realistic case).
pub fn bench_policies(n: usize) -> Vec<NewPolicy> {
    (0..n)
        .map(|i| {
            let (action, conditions) = if i + 1 == n {
                ("log", vec![cond("risk_score", "gte", json!("0.7"))])
            } else {
                match i % 4 {
                    0 => ("block", vec![cond("platform_id", "in", json!([format!("internal-{i}"), "unknown-ai"]))]),
                    1 => ("coach", vec![cond("risk_score", "gt", json!("0.99")), cond("source", "eq", json!("proxy"))]),
                    2 => (
                        "block",
                        vec![cond("classifications", "contains", json!(["FR_NIR", "SSN"])), cond("direction", "eq", json!("inbound"))],
                    ),
                    _ => (
                        "coach",
                        vec![
                            cond("user_id", "eq", json!(Uuid::from_u128(i as u128).to_string())),
                            cond("classification_count", "gte", json!(3)),
                        ],
                    ),
                }
            };
            NewPolicy {
                name: format!("bench policy {i:02}"),
                description: String::new(),
                rules: RulesSpec { message: None, action: action.into(), conditions },
                enabled: true,
                priority: Some(100 + i as i64),
            }
        })
        .collect()
}

/// Creates `policies` in the tenant of `by`, skipping names that already exist.
pub async fn seed(state: &FirewallState, by: &Principal, policies: Vec<NewPolicy>) -> anyhow::Result<usize> {
    let mut created = 0;
    for p in policies {
        match vigie_firewall::policy::create(state, by, p).await {
            Ok(_) => created += 1,
            Err(e) if e.status.as_u16() == 409 => {}
            Err(e) => anyhow::bail!("cannot create a policy: {}", e.message),
        }
    }
    Ok(created)
}
