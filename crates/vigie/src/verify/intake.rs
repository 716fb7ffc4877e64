//! The steps of `vigie verify` up to the XDR's door: both halves answer, the credentials are
//! enough, the test interaction is recorded with its findings, and its events reach the XDR
//! (or why not: the webhook's health and its delivery log).
use super::*;

impl Run {
    /// a. `/readyz` of both halves.
    pub(super) async fn reachable(&self) -> Result<String, Failure> {
        let mut took = Vec::new();
        for (name, base) in [("firewall", &self.s.firewall), ("XDR", &self.s.xdr)] {
            let t = Instant::now();
            match self.send(self.http.get(format!("{base}/readyz"))).await {
                Ok((StatusCode::OK, _)) => took.push(format!("{name} {} ms", t.elapsed().as_millis())),
                Ok((status, body)) => {
                    return Err(failure(
                        format!("the {name} at {base} is not ready: {status} {}", said(&body)),
                        format!("the {name} is starting, shutting down, or its database does not answer"),
                        format!("{base}/readyz and the server's log"),
                    ));
                }
                Err(e) => {
                    let flag = if name == "firewall" { "--firewall-url" } else { "--xdr-url" };
                    return Err(failure(
                        format!("cannot reach the {name} at {base}: {e}"),
                        format!("the {name} is not running there, or {flag} points elsewhere"),
                        format!("{flag} (or its variable), and that `vigie serve` is running"),
                    ));
                }
            }
        }
        Ok(format!("readyz: {}", took.join(", ")))
    }

    /// a. The firewall login (or token) is an admin's; the XDR key is valid and has the scopes.
    pub(super) async fn credentials(&self) -> Result<(String, String), Failure> {
        let (token, who) = match &self.s.firewall_login {
            FirewallLogin::Token(t) => (t.clone(), "the API token in VIGIE_FIREWALL_TOKEN".to_owned()),
            FirewallLogin::Password { email, password, tenant } => {
                let body = json!({"email": email, "password": password, "tenant": tenant});
                match self.send(self.http.post(format!("{}/api/v1/auth/login", self.s.firewall)).json(&body)).await {
                    Ok((StatusCode::OK, v)) => (text(&v, "token"), email.clone()),
                    Ok((status, v)) => {
                        return Err(failure(
                            format!("the firewall refused the login of {email}: {status} {}", said(&v)),
                            "a wrong VIGIE_ADMIN_PASSWORD or --email (or too many attempts: wait a minute)".to_owned(),
                            "the password printed on the first start, or POST /api/v1/auth/login by hand".to_owned(),
                        ));
                    }
                    Err(e) => return Err(failure(format!("login failed: {e}"), "the firewall stopped answering", "the firewall's log")),
                }
            }
        };
        match self.fw_get("/api/v1/auth/me", &token).await {
            Ok((StatusCode::OK, me)) if text(&me, "role") == "admin" => {}
            Ok((StatusCode::OK, me)) => {
                return Err(failure(
                    format!("{who} has the role {:?}; verify needs an admin", text(&me, "role")),
                    "it records an interaction, reads it back with its events and webhooks, and removes test data: admin only",
                    "the firewall console's Users or Tokens page (create an admin token)",
                ));
            }
            Ok((status, v)) => {
                return Err(failure(
                    format!("the firewall refused {who}: {status} {}", said(&v)),
                    "the token is wrong, expired or revoked",
                    "GET /api/v1/tokens on the firewall, or log in with VIGIE_ADMIN_PASSWORD instead",
                ));
            }
            Err(e) => {
                return Err(failure(format!("GET /api/v1/auth/me failed: {e}"), "the firewall stopped answering", "the firewall's log"));
            }
        }
        let mut needed: Vec<(&str, &str)> = if self.s.cleanup_only { Vec::new() } else { READ_SCOPES.to_vec() };
        if self.s.cleanup || self.s.cleanup_only {
            needed.push(("admin", "/api/v1/space"));
        }
        let mut missing = Vec::new();
        for (scope, path) in &needed {
            match self.xdr_get(path, &[]).await {
                Ok((status, _)) if status.is_success() => {}
                Ok((StatusCode::UNAUTHORIZED, v)) => {
                    return Err(failure(
                        format!("the XDR refused the key: {}", said(&v)),
                        "the key in VIGIE_XDR_KEY (or --xdr-key-file) is wrong, revoked or expired",
                        "the XDR console's Settings → API keys, or make one with `vigie keys create`",
                    ));
                }
                Ok((StatusCode::FORBIDDEN, _)) => missing.push(*scope),
                Ok((status, v)) => {
                    return Err(failure(
                        format!("GET {path} on the XDR answered {status}: {}", said(&v)),
                        "the XDR failed on a read; its log says why",
                        "the XDR's log",
                    ));
                }
                Err(e) => return Err(failure(format!("GET {path} on the XDR failed: {e}"), "the XDR stopped answering", "the XDR's log")),
            }
        }
        if !missing.is_empty() {
            let all: Vec<&str> = needed.iter().map(|(s, _)| *s).collect();
            return Err(failure(
                format!("the XDR key lacks the scope{} {}", if missing.len() > 1 { "s" } else { "" }, missing.join(", ")),
                format!("verify reads with {}; the key was made with fewer scopes", all.join(", ")),
                format!("key scopes in the XDR console's Settings → API keys; make one: vigie keys create --scope {} …", all.join(",")),
            ));
        }
        let scopes: Vec<&str> = needed.iter().map(|(s, _)| *s).collect();
        Ok((token, format!("firewall: {who} (admin); XDR key with {}", scopes.join(", "))))
    }

    /// b. Records the test interaction and checks what the engine found. On failure, the
    /// interaction's id when it was recorded all the same (its events are on their way).
    pub(super) async fn record(&self, token: &str, person: Uuid) -> Result<(Recorded, String), (Failure, Option<String>)> {
        let body = json!({
            "platform_id": self.s.platform,
            "user_id": person,
            "source": "api",
            "text": TEXT,
            "content_metadata": {"client": "vigie verify"},
        });
        let (status, v) = match self.fw(reqwest::Method::POST, "/api/v1/interactions", token, Some(body)).await {
            Ok(a) => a,
            Err(e) => {
                let f = failure(format!("POST /api/v1/interactions failed: {e}"), "the firewall stopped answering", "the firewall's log");
                return Err((f, None));
            }
        };
        if status != StatusCode::CREATED {
            let f = failure(
                format!("the firewall answered {status}: {}", said(&v)),
                "the request was refused (see the message)",
                "POST /api/v1/interactions in the firewall's OpenAPI document (/api/v1/openapi.json)",
            );
            return Err((f, None));
        }
        let id = text(&v, "id");
        let created_at = v.get("created_at").and_then(Value::as_str).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        let Some(created_at) = created_at.map(|t| t.with_timezone(&chrono::Utc)) else {
            let f = failure(format!("the answer has no id or time: {v}"), "an incompatible firewall version", "the firewall's version");
            return Err((f, (!id.is_empty()).then(|| id.clone())));
        };
        let found: BTreeSet<String> =
            v["classifications"].as_array().into_iter().flatten().map(|c| text(c, "type")).filter(|t| !t.is_empty()).collect();
        let count = v["classification_count"].as_u64().unwrap_or(0);
        let risk = v["risk_score"].as_f64().unwrap_or(0.0);
        let rec = Recorded { id: id.clone(), created_at, body: v.clone() };
        let listed = found.iter().cloned().collect::<Vec<_>>().join(", ");
        let (needed, note) = findings_check(&found, risk);
        if let Err(problem) = needed {
            let f = failure(
                format!("interaction {id}: {problem} (the engine found {count} findings: {listed}){note}"),
                "the detection engine or the risk scoring does not treat the test data as the default rules expect \
                 (\"Financial data exposure\" needs a card number or IBAN at risk above 0.9)",
                "`vigie scan` on a text with the same data, and the firewall's \"Try a prompt\" page (/try)",
            );
            return Err((f, Some(id)));
        }
        Ok((rec, format!("{id} on {}: {count} findings ({listed}), risk {risk:.2}{note}", self.s.platform)))
    }

    /// c. The interaction's events that the webhooks to the XDR carry are in the XDR: each
    /// emitted `evt_…` id is looked up with `GET /api/v1/events/{id}` (the XDR keeps the id it
    /// was sent; an unknown one answers 404, i.e. not yet), one indexed read per event and
    /// poll, whatever the size of the log.
    pub(super) async fn events(&self, token: &str, rec: &Recorded) -> Result<(String, Carried), Failure> {
        let fw_look = "the firewall console's Webhooks page (status and delivery log), GET /api/v1/webhooks";
        let emitted = match self.fw_get(&format!("/api/v1/interactions/{}/events", rec.id), token).await {
            Ok((StatusCode::OK, v)) => items(&v),
            Ok((status, v)) => {
                return Err(failure(format!("cannot read the interaction's events: {status} {}", said(&v)), "an older firewall", fw_look));
            }
            Err(e) => return Err(failure(format!("cannot read the interaction's events: {e}"), "the firewall stopped answering", fw_look)),
        };
        let hooks = match self.fw_get("/api/v1/webhooks?limit=500", token).await {
            Ok((StatusCode::OK, v)) => items(&v),
            Ok((status, v)) => return Err(failure(format!("cannot read the webhooks: {status} {}", said(&v)), "see the message", fw_look)),
            Err(e) => return Err(failure(format!("cannot read the webhooks: {e}"), "the firewall stopped answering", fw_look)),
        };
        let to_xdr: Vec<Value> = hooks.into_iter().filter(|w| self.points_to_xdr(w)).collect();
        if to_xdr.is_empty() {
            return Err(failure(
                format!("no webhook of the firewall points to the XDR ({}/api/v1/events)", self.s.xdr),
                "the firewall is not connected to this XDR: `vigie serve` with both halves creates the webhook; a split deployment needs one",
                "the firewall console's Webhooks page: add one to <XDR>/api/v1/events with an XDR key holding events_write",
            ));
        }
        // (id, type) of each emitted event a webhook to the XDR subscribes to.
        let expected: Vec<(String, String)> = emitted
            .iter()
            .map(|e| (text(e, "id"), text(e, "type")))
            .filter(|(id, t)| !id.is_empty() && to_xdr.iter().any(|w| subscribed(w, t)))
            .collect();
        if expected.is_empty() {
            let all: Vec<String> = emitted.iter().map(|e| text(e, "type")).collect();
            return Err(failure(
                format!("the webhook to the XDR carries none of this interaction's events ({})", all.join(", ")),
                "its event types were changed",
                fw_look,
            ));
        }
        // A disabled webhook delivers nothing: say it now rather than after the wait.
        let carrying: Vec<&Value> = to_xdr.iter().filter(|w| expected.iter().any(|(_, t)| subscribed(w, t))).collect();
        if carrying.iter().all(|w| w["active"] == false || text(w, "status") == "disabled") {
            let w = carrying[0];
            let reason = w["disabled_reason"].as_str().map(|r| format!(" ({r})")).unwrap_or_default();
            return Err(failure(
                format!("the webhook {} to the XDR is disabled{reason}; the events were not sent", text(w, "id")),
                "the webhook was turned off, or disabled after the XDR answered 410 or failed for days",
                format!(
                    "{fw_look}: turn webhook {} back on (PATCH /api/v1/webhooks/{} {{\"active\": true}})",
                    text(w, "id"),
                    text(w, "id")
                ),
            ));
        }
        let deadline = Instant::now() + self.s.timeout;
        // Milliseconds from the interaction to the XDR's reception, by event id.
        let mut seen: BTreeMap<String, i64> = BTreeMap::new();
        let mut last_problem: Option<String>;
        loop {
            last_problem = None;
            for (id, _) in &expected {
                if seen.contains_key(id) {
                    continue;
                }
                match self.xdr_get(&format!("/api/v1/events/{id}"), &[]).await {
                    Ok((StatusCode::OK, e)) => {
                        // The XDR's own reception time, less the firewall's commit: the latency
                        // itself, not our polling's (clamped at 0 should the clocks differ).
                        let received =
                            e.get("received_at").and_then(Value::as_str).and_then(|r| chrono::DateTime::parse_from_rfc3339(r).ok());
                        let after = received.map(|r| ms(r.with_timezone(&chrono::Utc) - rec.created_at).max(0));
                        seen.insert(id.clone(), after.unwrap_or_else(|| ms(chrono::Utc::now() - rec.created_at)));
                    }
                    // Not in the log yet.
                    Ok((StatusCode::NOT_FOUND, _)) => {}
                    Ok((status, v)) => last_problem = Some(format!("GET /api/v1/events/{id} on the XDR answered {status}: {}", said(&v))),
                    Err(e) => last_problem = Some(format!("GET /api/v1/events/{id} on the XDR failed: {e}")),
                }
            }
            if expected.iter().all(|(id, _)| seen.contains_key(id)) {
                let times: Vec<String> = expected.iter().map(|(id, t)| format!("{t} after {} ms", seen[id])).collect();
                let not_carried: Vec<String> =
                    emitted.iter().map(|e| text(e, "type")).filter(|t| !expected.iter().any(|(_, x)| x == t)).collect();
                let note = if not_carried.is_empty() {
                    String::new()
                } else {
                    format!(" ({} not subscribed by the webhook to the XDR)", not_carried.join(", "))
                };
                let carried = Carried {
                    emitted: emitted.iter().map(|e| text(e, "type")).collect(),
                    carried: expected.iter().map(|(_, t)| t.clone()).collect(),
                };
                return Ok((format!("{} events in the XDR: {}{note}", expected.len(), times.join(", ")), carried));
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let missing: Vec<String> = expected.iter().filter(|(id, _)| !seen.contains_key(id)).map(|(id, t)| format!("{t} ({id})")).collect();
        let mut what = format!(
            "after {} s, {} of {} events are in the XDR; missing {}",
            self.s.timeout.as_secs(),
            seen.len(),
            expected.len(),
            missing.join(", ")
        );
        if let Some(p) = last_problem {
            what.push_str(&format!(" ({p})"));
        }
        let cause = self.webhook_diagnosis(token, &carrying).await;
        Err(failure(what, cause, fw_look))
    }

    /// Whether a firewall webhook delivers to this XDR's intake.
    pub(super) fn points_to_xdr(&self, w: &Value) -> bool {
        if text(w, "description") == SERVE_WEBHOOK {
            return true;
        }
        let (Ok(hook), Ok(xdr)) = (reqwest::Url::parse(&text(w, "url")), reqwest::Url::parse(&self.s.xdr)) else {
            return false;
        };
        hook.path().ends_with("/api/v1/events")
            && hook.host_str() == xdr.host_str()
            && hook.port_or_known_default() == xdr.port_or_known_default()
    }

    /// What the webhooks to the XDR say about their health and their last failed deliveries.
    async fn webhook_diagnosis(&self, token: &str, hooks: &[&Value]) -> String {
        let mut lines = Vec::new();
        for w in hooks {
            let id = text(w, "id");
            let fresh = match self.fw_get(&format!("/api/v1/webhooks/{id}"), token).await {
                Ok((StatusCode::OK, v)) => v,
                _ => (*w).clone(),
            };
            let mut line = format!(
                "webhook {id} is {} (active {}, {} consecutive failures, {} deliveries pending)",
                text(&fresh, "status"),
                fresh["active"],
                fresh["consecutive_failures"],
                fresh["pending_deliveries"]
            );
            if let Some(e) = fresh["last_error"].as_str() {
                line.push_str(&format!("; last error: {e}"));
            }
            if let Ok((StatusCode::OK, log)) = self.fw_get(&format!("/api/v1/webhooks/{id}/deliveries?limit=50"), token).await {
                let failed: Vec<String> = items(&log)
                    .iter()
                    .filter(|a| text(a, "outcome") != "delivered")
                    .take(3)
                    .map(|a| {
                        let status = a["status_code"].as_u64().map(|s| format!("HTTP {s}")).unwrap_or_else(|| "no answer".to_owned());
                        // The receiver's answer says more than a bare status (the XDR's error sentence).
                        let why =
                            [text(a, "error"), text(a, "response_excerpt")].into_iter().find(|t| !t.trim().is_empty()).unwrap_or_default();
                        let why: String = why.chars().take(200).collect();
                        format!("{} {}: {status} {why}", text(a, "attempted_at"), text(a, "event_type"))
                    })
                    .collect();
                if !failed.is_empty() {
                    line.push_str(&format!("; last failed deliveries: {}", failed.join(" | ")));
                }
                let refused = items(&log).iter().any(|a| matches!(a["status_code"].as_u64(), Some(401 | 403)));
                if refused {
                    line.push_str(
                        "; the XDR refuses the webhook's key: give the webhook (its auth token) an XDR key with events_write, \
                         and check that the key is not revoked",
                    );
                }
            }
            lines.push(line);
        }
        if lines.is_empty() {
            "the webhook to the XDR did not deliver them".to_owned()
        } else {
            format!("the webhook to the XDR did not deliver them: {}", lines.join("; "))
        }
    }
}

/// Whether a webhook subscribes to an event type.
pub(super) fn subscribed(w: &Value, t: &str) -> bool {
    w["events"].as_array().is_some_and(|e| e.iter().any(|x| x.as_str() == Some(t)))
}

/// The record step's verdict on the findings: `Err` when what the default rules need is
/// missing (a card number and an IBAN, risk above 0.9); and a note naming the other kinds of
/// data of the test text that were or were not found (reported, not required).
pub(super) fn findings_check(found: &BTreeSet<String>, risk: f64) -> (Result<(), String>, String) {
    let missing = |types: &[&str]| -> Vec<String> { types.iter().filter(|t| !found.contains(**t)).map(|t| (*t).to_owned()).collect() };
    let missing_needed = missing(&NEEDED_TYPES);
    let others: Vec<&str> = EXPECTED_TYPES.iter().copied().filter(|t| !NEEDED_TYPES.contains(t)).collect();
    let missing_others = missing(&others);
    let note = if missing_others.is_empty() {
        String::new()
    } else {
        format!(" (note: {} not found; the default rules do not need them)", missing_others.join(", "))
    };
    let verdict = if !missing_needed.is_empty() {
        Err(format!("the engine did not find {}", missing_needed.join(" or ")))
    } else if risk <= expected::FINANCIAL_RISK {
        Err(format!("the risk is {risk:.2}, not above {}", expected::FINANCIAL_RISK))
    } else {
        Ok(())
    };
    (verdict, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(types: &[&str]) -> BTreeSet<String> {
        types.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn the_record_step_needs_a_card_and_an_iban_above_0_9_and_notes_the_rest() {
        let (ok, note) = findings_check(&set(&["CREDIT_CARD", "IBAN", "EMAIL"]), 0.97);
        assert_eq!(ok, Ok(()));
        assert!(note.contains("FR_NIR, API_KEY, PHONE not found"), "{note}");
        let (ok, note) = findings_check(&set(&EXPECTED_TYPES), 0.97);
        assert_eq!((ok, note.as_str()), (Ok(()), ""));
        let (ok, _) = findings_check(&set(&["CREDIT_CARD", "EMAIL"]), 0.97);
        assert_eq!(ok, Err("the engine did not find IBAN".to_owned()));
        let (ok, _) = findings_check(&set(&["CREDIT_CARD", "IBAN"]), 0.9);
        assert_eq!(ok, Err("the risk is 0.90, not above 0.9".to_owned()));
    }
}
