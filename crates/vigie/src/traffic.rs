//! Simulated traffic shared by `demo` and `bench`: a population of people and the interactions
//! a browser extension would report for them, and the policies a security team would write.
use crate::org::Department;
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

/// Platforms a department uses, repeated by weight. ChatGPT, Claude and Gemini are vetted;
/// the rest are not.
fn platforms_of(d: Department) -> &'static [&'static str] {
    match d {
        Department::Engineering => {
            &["chatgpt", "chatgpt", "claude", "claude", "claude", "copilot", "cursor", "mistral", "perplexity", "deepseek"]
        }
        Department::Finance => &["chatgpt", "chatgpt", "chatgpt", "copilot", "copilot", "claude", "gemini", "perplexity"],
        Department::Sales => &["chatgpt", "chatgpt", "gemini", "gemini", "copilot", "perplexity", "poe"],
        Department::Marketing => &["chatgpt", "chatgpt", "gemini", "claude", "perplexity", "mistral", "poe", "meta-ai"],
        Department::Legal => &["claude", "claude", "chatgpt", "chatgpt", "mistral"],
        Department::Hr => &["chatgpt", "chatgpt", "gemini", "copilot", "mistral"],
        Department::Support => &["chatgpt", "chatgpt", "gemini", "gemini", "poe", "mammouth"],
        Department::Executive => &["chatgpt", "claude", "claude", "perplexity", "gemini"],
    }
}

/// Where the person who keeps pasting payment data does it: mostly platforms nobody vetted.
const OFFENDER_PLATFORMS: &[&str] = &["mistral", "perplexity", "poe", "copilot", "mammouth", "deepseek", "chatgpt"];

/// Clean prompts a department writes.
fn clean_prompts(d: Department) -> &'static [&'static str] {
    match d {
        Department::Finance => &[
            "Explain the difference between accrued expenses and accounts payable for a new colleague.",
            "Draft an e-mail to the sales team reminding them that expense reports are due on Friday.",
            "Write an Excel formula that sums column D when column B says Travel.",
            "Summarise the main drivers of our higher logistics costs this quarter: fuel, tolls and warehouse rent.",
            "What is a sensible way to forecast cash flow for a logistics company with seasonal peaks?",
            "Rewrite this note for the board in plain language: working capital improved because customers paid faster.",
        ],
        Department::Sales => &[
            "Draft a follow-up e-mail after a demo with a retailer interested in our cold-chain transport.",
            "Write three subject lines for an outreach campaign to pharmaceutical distributors.",
            "Summarise the objections we usually hear about pricing and suggest an answer to each.",
            "Prepare an agenda for a quarterly business review with a key account.",
            "Turn these notes into a short proposal: weekly pallet shipments between Lyon and Milan, tracked end to end.",
        ],
        Department::Engineering => &[
            "Explain what this Rust error means: borrowed value does not live long enough.",
            "Write a SQL query that lists the slowest shipments per warehouse over the last month.",
            "Review this Python function for bugs: def total(items): return sum(i.price for i in items if i.qty > 0)",
            "How do I configure a Kubernetes readiness probe for a service that needs time to warm up?",
            "Explain the difference between a mutex and a read-write lock, with an example.",
            "Write unit tests for a function that converts kilograms to pounds.",
            "Why would a Docker build be slow when only one source file changed?",
        ],
        Department::Legal => &[
            "Summarise the obligations of a data processor under article 28 of the GDPR.",
            "Draft a clause limiting liability for delays caused by force majeure in a transport contract.",
            "Explain the difference between a framework agreement and a master services agreement.",
            "List the points to check before signing a non-disclosure agreement with a new carrier.",
        ],
        Department::Hr => &[
            "Draft a job description for a warehouse team lead in Rotterdam.",
            "Write a friendly onboarding e-mail for a support agent who starts on Monday.",
            "Suggest five questions for an exit interview.",
            "Summarise good practice for a fair annual performance review.",
        ],
        Department::Marketing => &[
            "Write a LinkedIn post announcing our new electric delivery vans in Lyon.",
            "Suggest ten blog topics about sustainable logistics.",
            "Rewrite this tagline to sound less corporate: Moving Europe forward, on time.",
            "Draft the outline of a press release about our partnership with a rail freight operator.",
            "Give me five ideas for a trade fair stand that people remember.",
        ],
        Department::Support => &[
            "Draft a polite reply to a customer whose parcel is late because of a strike.",
            "Summarise this complaint and suggest next steps: the pallet arrived damaged and the driver left without a signature.",
            "Write a template answer explaining how to track a shipment on our portal.",
            "Translate into Spanish: your delivery has been moved to tomorrow morning.",
            "Make this answer shorter and warmer: we are sorry for the inconvenience and are looking into it.",
        ],
        Department::Executive => &[
            "Summarise the main risks for a logistics company expanding into Poland.",
            "Draft talking points for an all-hands meeting about next year's strategy.",
            "Prepare the outline of a board presentation on electrifying our fleet.",
            "What should I ask when evaluating a company we might acquire?",
        ],
    }
}

/// Tasks anyone asks about a piece of text (`{}`: a sentence of multilingual prose).
const TEXT_TASKS: &[&str] = &[
    "Translate this into English for the Munich office: {}",
    "Summarise this in one sentence: {}",
    "Fix the grammar and make it sound professional: {}",
    "Rewrite this more politely: {}",
];

/// Prompts with contact details (`{email}`, `{phone}`, `{colleague}`).
const CONTACT_PROMPTS: &[&str] = &[
    "Draft a reply to {email} confirming our meeting on Thursday; they can call me on {phone}.",
    "Write a polite reminder to {email} about the invoice that is still unpaid.",
    "Summarise this call note: the customer called from {phone} about a missing pallet and wants an update at {email}.",
    "Format this contact for the CRM: Maria, purchasing manager, phone {phone}, e-mail {email}.",
    "Write an out-of-office message saying urgent requests go to {colleague}.",
    "Draft an introduction e-mail between {colleague} and {email} about the warehouse tender.",
];

/// Prompts with payment data (`{card}`, `{iban}`).
const PAYMENT_PROMPTS: &[&str] = &[
    "Check this supplier payment and draft the confirmation: IBAN {iban}, amount 4350 EUR.",
    "The customer paid with card {card} but the charge failed. Write an e-mail explaining what to do next.",
    "Reconcile the two transfers to {iban} from last week and explain the difference.",
    "Write a refund request for card {card}, charged twice on our portal.",
    "Update the vendor record: the Hamburg contractor's new bank account is {iban}.",
    "Is this card number {card} a Visa or a Mastercard? The customer wants to pay the freight invoice with it.",
];

/// Lead-ins before a sentence holding a national id or a secret.
const ID_LEAD_INS: &[&str] = &[
    "Fill in the onboarding form for our new colleague from these notes.",
    "Check this payroll record before I send it to the accountant.",
    "Summarise this HR note for the file.",
];
const SECRET_LEAD_INS: &[&str] =
    &["Why does this configuration fail with a 401?", "Clean up this deployment note.", "Explain what this line of our CI setup does."];

/// What a demo prompt holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Nothing sensitive.
    Nothing,
    /// E-mail addresses or phone numbers.
    Contact,
    /// A card number or an IBAN.
    Payment,
    /// A national identity or tax number.
    NationalId,
    /// An API key.
    Secret,
}

/// Workplace prompts for the demo, built once at start and each checked against the detection
/// engine: a clean prompt holds nothing it finds, a sensitive one holds what it says (valid
/// checksums, generated by `vigie_pii::corpus`).
pub struct PromptPool {
    clean: std::collections::HashMap<Department, Vec<String>>,
    contact: Vec<String>,
    payment: Vec<String>,
    national_id: Vec<String>,
    secret: Vec<String>,
}

impl PromptPool {
    /// The pool drawn from `seed`.
    pub fn new(seed: u64) -> PromptPool {
        use vigie_pii::PiiType;
        let scanner = vigie_pii::Scanner::default();
        let found = |text: &str| -> Vec<PiiType> { scanner.scan(text).into_iter().map(|f| f.kind).collect() };
        let samples = vigie_pii::corpus::labelled(seed, 24);
        let values = |kind: PiiType| -> Vec<String> {
            samples
                .iter()
                .flat_map(|s| {
                    s.labels.iter().filter(|l| l.kind == kind).map(|l| s.text.chars().skip(l.start).take(l.end - l.start).collect())
                })
                .collect()
        };
        let sentences = |kinds: &[PiiType]| -> Vec<&str> {
            samples.iter().filter(|s| s.labels.len() == 1 && kinds.contains(&s.labels[0].kind)).map(|s| s.text.as_str()).collect()
        };
        let (emails, phones, cards, ibans) =
            (values(PiiType::Email), values(PiiType::Phone), values(PiiType::CreditCard), values(PiiType::Iban));
        let pick = |v: &[String], i: usize| v.get(i % v.len().max(1)).cloned().unwrap_or_default();

        let prose = vigie_pii::corpus::prose(seed, 40_000);
        let sentences_of_prose: Vec<&str> = prose.split(". ").filter(|s| (40..240).contains(&s.len())).take(120).collect();
        let mut clean = std::collections::HashMap::new();
        for d in crate::org::Department::ALL {
            let mut v: Vec<String> = clean_prompts(d).iter().map(|s| (*s).to_owned()).collect();
            for (i, s) in sentences_of_prose.iter().enumerate().filter(|(i, _)| i % 8 == d as usize) {
                v.push(TEXT_TASKS[i % TEXT_TASKS.len()].replace("{}", &format!("{s}.")));
            }
            v.retain(|t| found(t).is_empty());
            clean.insert(d, v);
        }

        let mut contact = Vec::new();
        for i in 0..96 {
            let colleague = crate::org::member(i * 7 + 3).email();
            let t = CONTACT_PROMPTS[i % CONTACT_PROMPTS.len()]
                .replace("{email}", &pick(&emails, i))
                .replace("{phone}", &pick(&phones, i))
                .replace("{colleague}", &colleague);
            if found(&t).iter().any(|k| matches!(k, PiiType::Email | PiiType::Phone)) {
                contact.push(t);
            }
        }
        let mut payment = Vec::new();
        for i in 0..96 {
            let t = PAYMENT_PROMPTS[i % PAYMENT_PROMPTS.len()].replace("{card}", &pick(&cards, i)).replace("{iban}", &pick(&ibans, i));
            if found(&t).iter().any(|k| matches!(k, PiiType::CreditCard | PiiType::Iban)) {
                payment.push(t);
            }
        }
        let ids = [
            PiiType::FrNir,
            PiiType::EsDni,
            PiiType::ItFiscalCode,
            PiiType::NlBsn,
            PiiType::PlPesel,
            PiiType::DeTaxId,
            PiiType::BeNationalNumber,
        ];
        let national_id = lead(ID_LEAD_INS, sentences(&ids), |t| found(t).iter().any(|k| ids.contains(k)));
        let secret = lead(SECRET_LEAD_INS, sentences(&[PiiType::ApiKey]), |t| found(t).contains(&PiiType::ApiKey));
        PromptPool { clean, contact, payment, national_id, secret }
    }

    /// How many prompts of each kind the pool holds (clean, contact, payment, national id, secret).
    pub fn sizes(&self) -> [usize; 5] {
        [self.clean.values().map(Vec::len).sum(), self.contact.len(), self.payment.len(), self.national_id.len(), self.secret.len()]
    }

    /// A prompt of `holds` as someone of `d` would write it.
    pub fn draw(&self, rng: &mut impl Rng, d: Department, holds: Holds) -> &str {
        let from = match holds {
            Holds::Nothing => self.clean.get(&d).map(Vec::as_slice).unwrap_or_default(),
            Holds::Contact => &self.contact,
            Holds::Payment => &self.payment,
            Holds::NationalId => &self.national_id,
            Holds::Secret => &self.secret,
        };
        from.choose(rng).map(String::as_str).unwrap_or("Summarise the main points of our last team meeting.")
    }
}

/// Each sentence after a lead-in, kept when `keep` says the engine finds what it should.
fn lead(lead_ins: &[&str], sentences: Vec<&str>, keep: impl Fn(&str) -> bool) -> Vec<String> {
    sentences.iter().enumerate().map(|(i, s)| format!("{} {s}", lead_ins[i % lead_ins.len()])).filter(|t| keep(t)).collect()
}

/// One in this many interactions is the offender's.
pub const OFFENDER_SHARE: u32 = 8;

/// One interaction of the demo organisation, as `POST /api/v1/interactions` takes it: the
/// prompt's text for the firewall to scan, from a browser extension or a proxy. One in
/// [`OFFENDER_SHARE`] is [`crate::org::OFFENDER`] pasting payment data, mostly on unvetted
/// platforms; the others write mostly clean prompts, some with contact details, a few with
/// payment data, national ids or API keys.
pub fn demo_interaction(rng: &mut impl Rng, pool: &PromptPool) -> Value {
    use crate::org::{MEMBERS, OFFENDER};
    let (who, platform, holds) = if rng.random_ratio(1, OFFENDER_SHARE) {
        (OFFENDER, *OFFENDER_PLATFORMS.choose(rng).unwrap_or(&"mistral"), Holds::Payment)
    } else {
        let who = loop {
            let i = rng.random_range(0..MEMBERS.len());
            if i != OFFENDER {
                break i;
            }
        };
        let d = MEMBERS[who].department;
        let roll: f64 = rng.random();
        let holds = if roll < 0.75 {
            Holds::Nothing
        } else if roll < 0.91 {
            Holds::Contact
        } else {
            match (d, rng.random_range(0..4)) {
                (Department::Hr, _) | (_, 0) => Holds::NationalId,
                (Department::Engineering, _) | (_, 1) => Holds::Secret,
                _ => Holds::Payment,
            }
        };
        (who, *platforms_of(d).choose(rng).unwrap_or(&"chatgpt"), holds)
    };
    let d = MEMBERS[who].department;
    let text = pool.draw(rng, d, holds);
    let host = vigie_firewall::platforms::builtin(platform)
        .and_then(|p| p.hosts.first().cloned())
        .unwrap_or_else(|| format!("{platform}.example"));
    json!({
        "platform_id": platform,
        "interaction_type": "prompt",
        "content_metadata": {"url": format!("https://{host}/c/{}", rng.random::<u32>()), "model": "default"},
        "direction": "outbound",
        "source": if rng.random_bool(0.6) { "browser_extension" } else { "proxy" },
        "user_id": person(who).to_string(),
        "text": text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_pool_has_prompts_of_every_kind_the_engine_confirms() {
        let pool = PromptPool::new(7);
        let [clean, contact, payment, ids, secrets] = pool.sizes();
        assert!(clean >= 60, "{clean} clean prompts");
        assert!(contact >= 40, "{contact} prompts with contact details");
        assert!(payment >= 40, "{payment} prompts with payment data");
        assert!(ids >= 20, "{ids} prompts with national ids");
        assert!(secrets >= 5, "{secrets} prompts with API keys");
        for d in Department::ALL {
            assert!(pool.clean.get(&d).is_some_and(|v| v.len() >= 4), "{} has clean prompts", d.name());
        }
    }

    #[test]
    fn about_one_interaction_in_eight_is_the_offenders_and_most_are_clean() {
        let pool = PromptPool::new(7);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let offender = person(crate::org::OFFENDER).to_string();
        let scanner = vigie_pii::Scanner::default();
        let (mut theirs, mut clean, n) = (0, 0, 4000);
        for _ in 0..n {
            let v = demo_interaction(&mut rng, &pool);
            let text = v["text"].as_str().expect("a text");
            if v["user_id"] == offender.as_str() {
                theirs += 1;
            } else if scanner.scan(text).is_empty() {
                clean += 1;
            }
        }
        assert!((n / 10..n / 6).contains(&theirs), "{theirs} of {n}");
        assert!(clean > n * 6 / 10, "{clean} of {n} clean");
    }
}
