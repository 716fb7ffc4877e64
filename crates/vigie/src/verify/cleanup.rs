//! The last step of `vigie verify`: removing test data from both halves with
//! `DELETE /api/v1/test-data`, either this run's test person's (`--cleanup`) or every test
//! person's of the tenant and space (`--cleanup-only`). Removal may read much of the XDR's log,
//! so these requests get [`CLEANUP_TIMEOUT`], and this run's removal asks the XDR to look only
//! at events received from shortly before its interaction (`from`). The XDR defers alerts and
//! cases a playbook run is still working on; the DELETE is repeated until nothing is deferred
//! or `--timeout` has passed.
use super::*;

/// How long before this run's interaction its cleanup looks for events in the XDR's log (the
/// firewall's and the XDR's clocks may differ; delivery may have been retried).
const CLEANUP_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// How long to wait before asking the XDR again to remove what it deferred.
const DEFERRED_POLL: Duration = Duration::from_secs(1);

impl Run {
    /// Waits (up to `--timeout` when `wait`, else looks once) until the events of the test
    /// interaction that an active webhook to the XDR carries are in the XDR, so that the
    /// cleanup after a failed step removes them too. The ids of those still missing; none when
    /// it cannot tell (an answer other than found or not found: the cleanup goes ahead).
    pub(super) async fn settle(&self, token: &str, interaction: &str, wait: bool) -> Vec<String> {
        let Ok((StatusCode::OK, emitted)) = self.fw_get(&format!("/api/v1/interactions/{interaction}/events"), token).await else {
            return Vec::new();
        };
        let Ok((StatusCode::OK, hooks)) = self.fw_get("/api/v1/webhooks?limit=500", token).await else { return Vec::new() };
        // A disabled webhook sends nothing: its events will not come (the firewall's cleanup
        // removes their pending deliveries).
        let carrying: Vec<Value> = items(&hooks)
            .into_iter()
            .filter(|w| self.points_to_xdr(w) && w["active"] != false && text(w, "status") != "disabled")
            .collect();
        let mut waiting: Vec<String> = items(&emitted)
            .iter()
            .filter(|e| carrying.iter().any(|w| intake::subscribed(w, &text(e, "type"))))
            .map(|e| text(e, "id"))
            .filter(|id| !id.is_empty())
            .collect();
        if waiting.is_empty() {
            return waiting;
        }
        if wait {
            println!(
                "  waiting up to {} s for the test interaction's {} events to reach the XDR, so that the cleanup removes them too",
                self.s.timeout.as_secs(),
                waiting.len()
            );
        }
        let deadline = Instant::now() + self.s.timeout;
        loop {
            let mut still = Vec::new();
            for id in waiting {
                match self.xdr_get(&format!("/api/v1/events/{id}"), &[]).await {
                    Ok((StatusCode::OK, _)) => {}
                    Ok((StatusCode::NOT_FOUND, _)) => still.push(id),
                    // Cannot tell (no events_read, the XDR failing): clean up now.
                    _ => return Vec::new(),
                }
            }
            waiting = still;
            if waiting.is_empty() || !wait || Instant::now() >= deadline {
                return waiting;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// g. Removes test data from both halves: one test person's, or every one's.
    pub(super) async fn cleanup(&self, token: &str, person: Option<Uuid>) -> Result<String, Failure> {
        let query: Vec<(&str, String)> = person.map(|p| ("user_id", p.to_string())).into_iter().collect();
        let req = self.http.delete(format!("{}/api/v1/test-data", self.s.firewall)).bearer_auth(token).query(&query);
        let fw = match self.send_within(req, CLEANUP_TIMEOUT).await {
            Ok((StatusCode::OK, v)) => v["removed"].clone(),
            Ok((status, v)) => {
                return Err(failure(
                    format!("the firewall refused to remove the test data: {status} {}", said(&v)),
                    "the firewall login is not an admin's, or this firewall predates test-data removal",
                    "DELETE /api/v1/test-data on the firewall",
                ));
            }
            Err(e) => {
                return Err(failure(
                    format!("DELETE /api/v1/test-data on the firewall failed: {e}"),
                    "the firewall stopped answering",
                    "the firewall's log",
                ));
            }
        };
        // Only this run's events are worth reading: those received from shortly before its
        // interaction. Every test person's (--cleanup-only) means the whole log.
        let mut from = person.map(|_| (self.interaction_at - CLEANUP_MARGIN).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let deadline = Instant::now() + self.s.timeout;
        let mut removed = serde_json::Map::new();
        let mut told: Option<u64> = None;
        loop {
            let mut q = query.clone();
            if let Some(f) = &from {
                q.push(("from", f.clone()));
            }
            let req = self.http.delete(format!("{}/api/v1/test-data", self.s.xdr)).bearer_auth(&self.s.xdr_key).query(&q);
            let v = match self.send_within(req, CLEANUP_TIMEOUT).await {
                Ok((StatusCode::OK, v)) => v,
                // An XDR older than `from`: the whole log it is.
                Ok((StatusCode::BAD_REQUEST, v)) if from.is_some() && said(&v).contains("from") => {
                    from = None;
                    continue;
                }
                Ok((status, v)) => {
                    return Err(failure(
                        format!(
                            "the XDR refused to remove the test data: {status} {} (the firewall's was removed: {}{})",
                            said(&v),
                            counts(&fw),
                            removed_so_far(&removed)
                        ),
                        "the XDR key lacks the admin scope",
                        "key scopes in the XDR console's Settings → API keys",
                    ));
                }
                Err(e) => {
                    return Err(failure(
                        format!("DELETE /api/v1/test-data on the XDR failed: {e}{}", removed_so_far(&removed)),
                        "the XDR stopped answering, or took longer than the cleanup's time limit",
                        "the XDR's log",
                    ));
                }
            };
            add_counts(&mut removed, removed_counts(&v));
            let (n, what) = deferred(&v);
            if n == 0 {
                break;
            }
            if Instant::now() >= deadline {
                return Err(failure(
                    format!(
                        "after {} s, the XDR still defers {what}: a playbook run on them is still running (removed from the firewall {}; from the XDR {})",
                        self.s.timeout.as_secs(),
                        counts(&fw),
                        counts(&Value::Object(removed))
                    ),
                    "a playbook run on the test alerts, cases or events has not finished (a slow step: an e-mail, a webhook, an approval)",
                    "the XDR console's Playbooks (its runs); run `vigie verify --cleanup-only` again once they are over",
                ));
            }
            if told != Some(n) {
                println!("  the XDR deferred {what}: a playbook run on them is still running; asking again until it is over");
                told = Some(n);
            }
            tokio::time::sleep(DEFERRED_POLL).await;
        }
        Ok(format!("removed from the firewall {}; from the XDR {}", counts(&fw), counts(&Value::Object(removed))))
    }
}

/// What the cleanup adds when some of the test interaction's events had not reached the XDR:
/// they may still come, after the cleanup, and stay until removed.
pub(super) fn late_note(late: &[String], timeout: Duration) -> String {
    format!(
        "{} of the test interaction's events had not reached the XDR after {} s ({}): should they come later, \
         `vigie verify --cleanup-only` removes them",
        late.len(),
        timeout.as_secs(),
        late.join(", ")
    )
}

/// `{"interactions": 1, "events": 4}` as `1 interactions, 4 events`.
pub(super) fn counts(v: &Value) -> String {
    match v.as_object() {
        Some(m) if !m.is_empty() => m.iter().map(|(k, n)| format!("{n} {}", k.replace('_', " "))).collect::<Vec<_>>().join(", "),
        _ => v.to_string(),
    }
}

/// `; removed from the XDR so far: …` when an earlier round removed something.
fn removed_so_far(removed: &serde_json::Map<String, Value>) -> String {
    if removed.is_empty() { String::new() } else { format!("; removed from the XDR so far: {}", counts(&Value::Object(removed.clone()))) }
}

/// The counts of a DELETE answer's `removed`, without a `deferred` count kept among them.
fn removed_counts(v: &Value) -> serde_json::Map<String, Value> {
    let mut m = v["removed"].as_object().cloned().unwrap_or_default();
    m.remove("deferred");
    m
}

/// Adds the counts of one DELETE to those of the earlier ones.
fn add_counts(total: &mut serde_json::Map<String, Value>, more: serde_json::Map<String, Value>) {
    for (k, n) in more {
        let sum = total.get(&k).and_then(Value::as_u64).unwrap_or(0) + n.as_u64().unwrap_or(0);
        total.insert(k, Value::from(sum));
    }
}

/// How much the XDR deferred, and what, in words: `deferred` counts the alerts, cases and
/// events it left because a playbook run about them is in progress — in `removed` (as the XDR
/// answers), or at the top of the answer; a number, or counts by kind.
fn deferred(v: &Value) -> (u64, String) {
    let d = if v["deferred"].is_null() { &v["removed"]["deferred"] } else { &v["deferred"] };
    match d {
        Value::Number(n) => {
            let n = n.as_u64().unwrap_or(0);
            (n, format!("{n} of the test alerts, cases or events"))
        }
        Value::Object(m) => {
            let n = m.values().filter_map(Value::as_u64).sum();
            let kinds: serde_json::Map<String, Value> =
                m.iter().filter(|(_, c)| c.as_u64().is_some_and(|c| c > 0)).map(|(k, c)| (k.clone(), c.clone())).collect();
            (n, counts(&Value::Object(kinds)))
        }
        _ => (0, String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_events_are_named_with_how_to_remove_them() {
        let note = late_note(&["evt_1".to_owned(), "evt_2".to_owned()], Duration::from_secs(20));
        assert_eq!(
            note,
            "2 of the test interaction's events had not reached the XDR after 20 s (evt_1, evt_2): should they come later, \
             `vigie verify --cleanup-only` removes them"
        );
    }

    #[test]
    fn counts_read_as_a_sentence() {
        assert_eq!(counts(&json!({"interactions": 1, "pending_deliveries": 0})), "1 interactions, 0 pending deliveries");
    }

    #[test]
    fn deferred_is_read_as_a_count_or_as_counts_by_kind_and_absent_means_none() {
        assert_eq!(deferred(&json!({"removed": {"alerts": 1}, "deferred": 2})), (2, "2 of the test alerts, cases or events".to_owned()));
        assert_eq!(deferred(&json!({"removed": {}, "deferred": {"alerts": 1, "cases": 0}})), (1, "1 alerts".to_owned()));
        assert_eq!(deferred(&json!({"removed": {"alerts": 0, "deferred": 3}})), (3, "3 of the test alerts, cases or events".to_owned()));
        assert_eq!(deferred(&json!({"removed": {"alerts": 4}, "deferred": 0})).0, 0);
        assert_eq!(deferred(&json!({"removed": {"alerts": 4}})).0, 0);
    }

    #[test]
    fn the_counts_of_repeated_deletes_add_up_and_leave_deferred_out() {
        let mut total = serde_json::Map::new();
        add_counts(&mut total, removed_counts(&json!({"removed": {"events": 3, "alerts": 1, "deferred": 1}})));
        add_counts(&mut total, removed_counts(&json!({"removed": {"events": 0, "alerts": 1, "cases": 1}, "deferred": 0})));
        assert_eq!(Value::Object(total), json!({"events": 3, "alerts": 2, "cases": 1}));
    }
}
