//! The steps of `vigie verify` inside the XDR: the default rules' alerts for the test person,
//! the notification of the rules that notify, and the cases of the rules that open one (or
//! why not: the rule switched off or paused, the channel missing or failing, the alert's
//! history).
use super::*;

/// The channel a rule's `notify` action names, found as the XDR finds it: by its exact name,
/// else by its name ignoring ASCII case (a rule naming "soc" notifies a channel renamed "SOC").
fn channel_named<'a>(channels: &'a [Value], name: &str) -> Option<&'a Value> {
    channels.iter().find(|c| text(c, "name") == name).or_else(|| channels.iter().find(|c| text(c, "name").eq_ignore_ascii_case(name)))
}

/// Whether a notification of the delivery log went through the channel the rule names: the
/// channel's id when it is known (found by [`channel_named`]), else its name ignoring ASCII case.
fn through(n: &Value, name: &str, id: Option<&str>) -> bool {
    match (id, n.get("channel_id").and_then(Value::as_str)) {
        (Some(id), Some(sent)) => sent == id,
        _ => text(n, "channel").eq_ignore_ascii_case(name),
    }
}

impl Run {
    /// d. The alerts of the test person include every rule this interaction should fire
    /// ([`expected::expectations`]); it fails when none should (nothing would be checked).
    pub(super) async fn alerts(&self, person: Uuid, rec: &Recorded, carried: &Carried) -> (Alerts, Vec<Value>, Result<String, Failure>) {
        let look_rules = "the XDR console's Rules page (enabled, paused, stats), GET /api/v1/rules";
        let rules = match self.xdr_get("/api/v1/rules", &[("limit", "500".to_owned())]).await {
            Ok((StatusCode::OK, v)) => items(&v),
            Ok((status, v)) => {
                return (
                    BTreeMap::new(),
                    Vec::new(),
                    Err(failure(format!("cannot read the rules: {status} {}", said(&v)), "see the message", look_rules)),
                );
            }
            Err(e) => {
                return (
                    BTreeMap::new(),
                    Vec::new(),
                    Err(failure(format!("cannot read the rules: {e}"), "the XDR stopped answering", look_rules)),
                );
            }
        };
        let e = expected::expectations(&rec.body, &carried.emitted, &carried.carried);
        if e.expected.is_empty() && e.not_carried.is_empty() {
            return (
                BTreeMap::new(),
                rules,
                Err(failure(
                    format!("no default rule should fire for the test interaction: {}", e.not_applicable.join("; ")),
                    "the firewall's policies or risk scoring do not treat the test data as the default rules expect: \
                     \"Financial data exposure\" needs a card number or IBAN at risk above 0.9, \
                     \"Policy violation on unvetted AI platform\" a policy decision on an unvetted platform, \
                     \"Critical alert from the AI firewall\" a critical firewall alert",
                    "the firewall console's Policies page (enabled policies, their order and alert severity) and its \"Try a prompt\" page (/try) with \
                     the test text; --platform (an unvetted platform)",
                )),
            );
        }
        let rule_of = |key: &str, name: &str| -> Option<Value> {
            rules.iter().find(|r| r["builtin"].as_str() == Some(key)).or_else(|| rules.iter().find(|r| text(r, "name") == name)).cloned()
        };
        // A rule whose event the XDR never got, or one missing, switched off or paused, cannot
        // fire: it is not waited for, and named below as (what happened, why); the others are
        // still waited for, so the later steps check their alerts.
        let mut off: Vec<(String, String)> = e
            .not_carried
            .iter()
            .map(|(rule, why)| (format!("{:?} cannot fire", rule.name), format!("{why}: add it to the webhook's event types")))
            .collect();
        let mut wanted: Vec<(String, &str, &str)> = Vec::new();
        for (rule, why) in &e.expected {
            let (key, name) = (rule.key, rule.name);
            let Some(r) = rule_of(key, name) else {
                off.push((
                    format!("the default rule {name:?} ({key}) is missing"),
                    format!("the default rule {name:?} ({key}) was deleted: nothing raises its alerts"),
                ));
                continue;
            };
            let rule_name = text(&r, "name");
            if r["enabled"] == false {
                off.push((
                    format!("the rule {rule_name:?} is disabled"),
                    format!("the rule {rule_name:?} is disabled: enable it (PUT /api/v1/rules/{}/enabled)", text(&r, "id")),
                ));
            } else if r["paused"] == true {
                off.push((
                    format!("the rule {rule_name:?} is paused"),
                    format!(
                        "the rule {rule_name:?} is paused by the alert rate limit until {} (too many alerts): it raises nothing until then",
                        text(&r, "paused_until")
                    ),
                ));
            } else if r["compile_error"].is_string() {
                off.push((
                    format!("the rule {rule_name:?} does not compile"),
                    format!("the rule {rule_name:?} no longer compiles: {}", text(&r, "compile_error")),
                ));
            } else {
                wanted.push((text(&r, "id"), name, why.as_str()));
            }
        }
        let look_rules = if e.not_carried.is_empty() {
            look_rules.to_owned()
        } else {
            format!("{look_rules}; the firewall console's Webhooks page (the event types of the webhook to the XDR)")
        };
        let deadline = Instant::now() + self.s.timeout;
        // Alerts raised from shortly before the interaction (the clocks may differ): the list
        // reads the test person's recent alerts only.
        let alerts_query = [
            ("user_id", person.to_string()),
            ("from", (rec.created_at - chrono::TimeDelta::minutes(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            ("limit", "100".to_owned()),
        ];
        let mut found: Alerts = BTreeMap::new();
        let mut last_problem: Option<String>;
        loop {
            match self.xdr_get("/api/v1/alerts", &alerts_query).await {
                Ok((StatusCode::OK, page)) => {
                    for a in items(&page) {
                        found.entry(a["rule"]["id"].as_str().unwrap_or_default().to_owned()).or_insert(a);
                    }
                    last_problem = None;
                }
                Ok((status, v)) => last_problem = Some(format!("the alert list answered {status}: {}", said(&v))),
                Err(e) => last_problem = Some(format!("the alert list failed: {e}")),
            }
            if wanted.iter().all(|(id, _, _)| found.contains_key(id)) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let shown: Vec<String> = wanted
            .iter()
            .filter_map(|(id, n, _)| {
                let a = found.get(id)?;
                Some(format!("{} {n:?} ({}, after {} ms)", text(a, "short_id"), text(a, "severity"), self.since(rec, a)))
            })
            .collect();
        let missing: Vec<&(String, &str, &str)> = wanted.iter().filter(|(id, _, _)| !found.contains_key(id)).collect();
        if missing.is_empty() && off.is_empty() {
            return (found, rules, Ok(format!("{} alerts for the test person: {}", shown.len(), shown.join(", "))));
        }
        let mut causes: Vec<String> = off.iter().map(|(_, cause)| cause.clone()).collect();
        for (id, name, why) in &missing {
            let r = rules.iter().find(|r| text(r, "id") == *id);
            let paused = r.is_some_and(|r| r["paused"] == true);
            causes.push(if paused {
                format!(
                    "{name:?} is paused by the alert rate limit until {} (too many alerts)",
                    r.map(|r| text(r, "paused_until")).unwrap_or_default()
                )
            } else {
                format!(
                    "{name:?} is enabled but raised nothing for {why}: its query did not match the events (look at its stats and backtest)"
                )
            });
        }
        let mut gaps: Vec<String> = off.iter().map(|(gap, _)| gap.clone()).collect();
        if !missing.is_empty() {
            gaps.push(format!(
                "after {} s, no alert from {}",
                self.s.timeout.as_secs(),
                missing.iter().map(|(_, n, _)| format!("{n:?}")).collect::<Vec<_>>().join(", ")
            ));
        }
        let mut what = gaps.join("; ");
        if !shown.is_empty() {
            what.push_str(&format!(" (raised: {})", shown.join(", ")));
        }
        if let Some(p) = last_problem {
            what.push_str(&format!(" ({p})"));
        }
        (found, rules, Err(failure(what, causes.join("; "), look_rules)))
    }

    /// Milliseconds from the interaction to an XDR object's `created_at`.
    fn since(&self, rec: &Recorded, v: &Value) -> i64 {
        v.get("created_at")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| ms(t.with_timezone(&chrono::Utc) - rec.created_at).max(0))
            .unwrap_or(0)
    }

    /// The actions of the rule of an alert.
    fn actions<'a>(rules: &'a [Value], alert: &Value) -> Vec<&'a Value> {
        let id = alert["rule"]["id"].as_str().unwrap_or_default();
        rules.iter().find(|r| text(r, "id") == id).and_then(|r| r["actions"].as_array()).map(|a| a.iter().collect()).unwrap_or_default()
    }

    /// The response notes in an alert's history (what the responder did or could not do).
    async fn response_notes(&self, alert_id: &str) -> Vec<String> {
        match self.xdr_get(&format!("/api/v1/alerts/{alert_id}"), &[]).await {
            Ok((StatusCode::OK, v)) => v["history"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|h| text(h, "kind") == "response")
                .map(|h| text(h, "comment"))
                .filter(|c| !c.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// e. Each alert of a rule that notifies has a delivered notification.
    pub(super) async fn notification(&self, alerts: &Alerts, rules: &[Value]) -> Option<Result<String, Failure>> {
        let notifying: Vec<(&Value, Option<String>)> = alerts
            .values()
            .flat_map(|a| {
                Self::actions(rules, a)
                    .into_iter()
                    .filter(|x| text(x, "type") == "notify")
                    .map(move |x| (a, x["channel"].as_str().map(str::to_owned)))
            })
            .collect();
        if notifying.is_empty() {
            return None;
        }
        let look =
            "the XDR console's Notifications page: the channel's Test button and the delivery log (GET /api/v1/notifications?alert_id=…)";
        let deadline = Instant::now() + self.s.timeout;
        let mut done = Vec::new();
        for (alert, channel) in notifying {
            let alert_id = text(alert, "id");
            let label = channel.clone().map(|c| format!("channel {c:?}")).unwrap_or_else(|| "the routed channels".to_owned());
            let mut last: Option<Value> = None;
            let mut channel_id: Option<String> = None;
            // A channel that is missing or off will not deliver: say so without waiting.
            if let Some(name) = &channel
                && let Ok((StatusCode::OK, page)) = self.xdr_get("/api/v1/notifications/channels", &[("limit", "500".to_owned())]).await
            {
                match channel_named(&items(&page), name) {
                    Some(c) if c["enabled"] != false => channel_id = Some(text(c, "id")),
                    _ => return Some(Err(self.notification_missing(alert, Some(name), None, look, false).await)),
                }
            }
            loop {
                if let Ok((StatusCode::OK, page)) = self.xdr_get("/api/v1/notifications", &[("alert_id", alert_id.clone())]).await {
                    let mine: Vec<Value> = items(&page)
                        .into_iter()
                        .filter(|n| channel.as_ref().is_none_or(|c| through(n, c, channel_id.as_deref())))
                        .collect();
                    if let Some(ok) = mine.iter().find(|n| text(n, "status") == "succeeded") {
                        let took = ok
                            .get("delivered_at")
                            .and_then(Value::as_str)
                            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            .zip(alert.get("created_at").and_then(Value::as_str).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()))
                            .map(|(d, c)| format!(", {} ms after the alert", (d - c).num_milliseconds().max(0)))
                            .unwrap_or_default();
                        done.push(format!("{} via {label} ({}{took})", text(alert, "short_id"), text(ok, "kind")));
                        break;
                    }
                    if let Some(failed) = mine.iter().find(|n| text(n, "status") == "failed") {
                        return Some(Err(failure(
                            format!("the notification of {} via {label} failed: {}", text(alert, "short_id"), text(failed, "last_error")),
                            format!(
                                "{label} cannot deliver (its settings, or the mail server / receiver is down); press Test on it to see the error now"
                            ),
                            look,
                        )));
                    }
                    last = mine.into_iter().next();
                }
                if Instant::now() >= deadline {
                    return Some(Err(self.notification_missing(alert, channel.as_deref(), last, look, true).await));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Some(Ok(format!("delivered: {}", done.join(", "))))
    }

    /// Why an alert's notification was not delivered (`waited`: after the whole timeout).
    async fn notification_missing(&self, alert: &Value, channel: Option<&str>, last: Option<Value>, look: &str, waited: bool) -> Failure {
        let short = text(alert, "short_id");
        if let Some(n) = last {
            let err = n["last_error"].as_str().map(|e| format!("; last error: {e}")).unwrap_or_default();
            return failure(
                format!("the notification of {short} is still {} after {} attempts{err}", text(&n, "status"), n["attempt_count"]),
                "the channel is failing and retrying; press Test on it to see the error",
                look,
            );
        }
        let channels = match self.xdr_get("/api/v1/notifications/channels", &[("limit", "500".to_owned())]).await {
            Ok((StatusCode::OK, v)) => items(&v),
            _ => Vec::new(),
        };
        let notes = self.response_notes(&text(alert, "id")).await;
        let cause = match channel {
            Some(name) => match channel_named(&channels, name) {
                None => {
                    format!("the channel {name:?} that the rule notifies does not exist: create it in Notifications (the demo creates it)")
                }
                Some(c) if c["enabled"] == false => format!("the channel {name:?} is disabled: enable it"),
                Some(c) => format!(
                    "the channel {name:?} is enabled (minimum severity {}) but nothing was queued for {short}",
                    text(c, "min_severity")
                ),
            },
            None => "no enabled channel's routes take this alert".to_owned(),
        };
        let cause = if notes.is_empty() { cause } else { format!("{cause}; the alert's history says: {}", notes.join(" | ")) };
        let after = if waited { format!(" after {} s", self.s.timeout.as_secs()) } else { String::new() };
        failure(format!("no notification of {short}{after}"), cause, look)
    }

    /// f. For each alert of a rule that asks for a case, a case holds it.
    pub(super) async fn cases(&self, alerts: &Alerts, rules: &[Value]) -> Option<Result<String, Failure>> {
        let wanting: Vec<&Value> = alerts.values().filter(|a| Self::actions(rules, a).iter().any(|x| text(x, "type") == "case")).collect();
        if wanting.is_empty() {
            return None;
        }
        let look = "the alert's history in the XDR console (Alerts → the alert), and Cases; GET /api/v1/cases?alert_id=…";
        let deadline = Instant::now() + self.s.timeout;
        let mut done = Vec::new();
        for alert in wanting {
            let alert_id = text(alert, "id");
            let mut problem: Option<String>;
            loop {
                match self.xdr_get("/api/v1/cases", &[("alert_id", alert_id.clone())]).await {
                    Ok((StatusCode::OK, page)) => {
                        if let Some(case) = items(&page).into_iter().next() {
                            done.push(format!(
                                "{} holds {} ({:?})",
                                text(&case, "short_id"),
                                text(alert, "short_id"),
                                alert["rule"]["name"].as_str().unwrap_or_default()
                            ));
                            break;
                        }
                        problem = None;
                    }
                    Ok((status, v)) => problem = Some(format!("GET /api/v1/cases?alert_id= answered {status}: {}", said(&v))),
                    Err(e) => problem = Some(format!("GET /api/v1/cases failed: {e}")),
                }
                if Instant::now() >= deadline {
                    let notes = self.response_notes(&alert_id).await;
                    let cause = if notes.is_empty() {
                        "the responder has not acted on the alert yet (is the XDR overloaded?)".to_owned()
                    } else {
                        format!("the alert's history says: {}", notes.join(" | "))
                    };
                    let mut what = format!("no case holds {} after {} s", text(alert, "short_id"), self.s.timeout.as_secs());
                    if let Some(p) = problem {
                        what.push_str(&format!(" ({p})"));
                    }
                    return Some(Err(failure(what, cause, look)));
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Some(Ok(done.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_found_and_matched_ignoring_case_as_the_xdr_does() {
        let channels = [json!({"id": "ch_1", "name": "SOC"}), json!({"id": "ch_2", "name": "ops"})];
        assert_eq!(channel_named(&channels, "soc").map(|c| text(c, "id")).as_deref(), Some("ch_1"));
        assert_eq!(channel_named(&channels, "Ops").map(|c| text(c, "id")).as_deref(), Some("ch_2"));
        assert!(channel_named(&channels, "so").is_none());
        // The exact name first, as the XDR resolves it.
        let both = [json!({"id": "ch_1", "name": "SOC"}), json!({"id": "ch_3", "name": "soc"})];
        assert_eq!(channel_named(&both, "soc").map(|c| text(c, "id")).as_deref(), Some("ch_3"));

        let sent = json!({"channel_id": "ch_1", "channel": "SOC", "status": "succeeded"});
        assert!(through(&sent, "soc", Some("ch_1")), "by id");
        assert!(!through(&sent, "soc", Some("ch_2")), "another channel of a similar name");
        assert!(through(&json!({"channel": "SOC"}), "soc", Some("ch_1")), "no id in the log: by name");
        assert!(through(&sent, "soc", None));
        assert!(!through(&sent, "ops", None));
    }
}
