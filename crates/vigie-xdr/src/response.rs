//! The response queue: what happened to alerts and cases (an alert created, an alert's status
//! changed, a case created), appended in the same transaction as the change. The responder
//! follows it from a checkpoint: it carries out the rules' actions (open a case, notify) and
//! starts the playbooks whose triggers match, so a crash between the change and the response
//! loses nothing.
use rusqlite::{Connection, params};
use serde_json::Value;
use vigie_core::StoreError;

pub mod responder;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// Detection raised a new alert (`subject`: the alert's id).
    AlertCreated,
    /// An alert's status changed (`subject`: the alert's id; `detail`: `{"from", "to", "by"}`).
    AlertStatusChanged,
    /// A case was created (`subject`: the case's id).
    CaseCreated,
}

impl ResponseKind {
    /// The name stored and shown (`alert.created`).
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseKind::AlertCreated => "alert.created",
            ResponseKind::AlertStatusChanged => "alert.status_changed",
            ResponseKind::CaseCreated => "case.created",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<ResponseKind> {
        [ResponseKind::AlertCreated, ResponseKind::AlertStatusChanged, ResponseKind::CaseCreated].into_iter().find(|k| k.as_str() == s)
    }
}

/// Appends to the response queue, inside the caller's transaction (it opens none).
pub fn enqueue(c: &Connection, space_no: i64, kind: ResponseKind, subject: &str, detail: &Value, at_us: i64) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO response_events (space_no, kind, subject, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![
        space_no,
        kind.as_str(),
        subject,
        detail.to_string(),
        at_us
    ])?;
    Ok(())
}

/// What every template and playbook over an alert sees: `alert` (with `user_name` and
/// `event_ids`), `rule`, `event` (the alert's first event as the API shows it: the firewall's
/// flat fields and the log's), and `person` (the directory's entry for the alert's user, with
/// `training_days_ago`, or null). Null when the space has no such alert.
pub fn alert_context(c: &Connection, space_no: i64, alert_id: &str, now_us: i64) -> Result<Value, StoreError> {
    use rusqlite::OptionalExtension;
    let Some(alert) = crate::alerts::get(c, space_no, alert_id)? else {
        return Ok(Value::Null);
    };
    let event_ids: Vec<(i64, String)> = c
        .prepare_cached("SELECT seq, event_id FROM alert_events WHERE alert_id = ?1 ORDER BY seq LIMIT 1000")?
        .query_map([&alert.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let event = match event_ids.first() {
        Some((seq, _)) => {
            let space_id: String = c.prepare_cached("SELECT id FROM spaces WHERE no = ?1")?.query_row([space_no], |r| r.get(0))?;
            c.prepare_cached(&format!("SELECT {} FROM events WHERE seq = ?1 AND space_no = ?2", crate::log::STORED))?
                .query_row(params![seq, space_no], crate::log::Stored::from_row)
                .optional()?
                .map(|e| crate::log::shown(&e, &space_id))
                .unwrap_or(Value::Null)
        }
        None => Value::Null,
    };
    let rule_severity: Option<i64> = c
        .prepare_cached("SELECT severity FROM rules WHERE id = ?1 AND space_no = ?2")?
        .query_row(params![alert.rule.id, space_no], |r| r.get(0))
        .optional()?;
    let person = match &alert.user_id {
        Some(u) => person(c, space_no, u, now_us)?,
        None => Value::Null,
    };
    let mut a = serde_json::to_value(&alert)?;
    if let Value::Object(m) = &mut a {
        m.insert("rule_id".into(), Value::String(alert.rule.id.clone()));
        m.insert("rule_name".into(), Value::String(alert.rule.name.clone()));
        m.insert("event_ids".into(), event_ids.iter().map(|(_, id)| Value::String(id.clone())).collect());
        let name = person.get("display_name").filter(|n| n.is_string()).cloned();
        m.insert("user_name".into(), name.unwrap_or(Value::Null));
    }
    let rule = serde_json::json!({
        "id": alert.rule.id, "name": alert.rule.name,
        "severity": rule_severity.map(|s| crate::alerts::severity_word(s.clamp(0, 100) as u8)),
    });
    Ok(serde_json::json!({"alert": a, "rule": rule, "event": event, "person": person}))
}

/// The directory's entry for `user_id` in `space_no` (with `training_days_ago`: whole days since
/// the last security-awareness training, null when never trained or unknown), or null.
pub fn person(c: &Connection, space_no: i64, user_id: &str, now_us: i64) -> Result<Value, StoreError> {
    Ok(crate::people::find(c, space_no, user_id)?.map(|p| p.context(vigie_core::clock::from_micros(now_us))).unwrap_or(Value::Null))
}

/// What a playbook triggered by a case sees: `case` (with the ids of its alerts), and `alert`,
/// `rule`, `event` and `person` of its first alert (null when it has none). `None` when the
/// space has no such case.
pub fn case_context(c: &Connection, space_no: i64, case_id: &str, now_us: i64) -> Result<Option<Value>, StoreError> {
    let Some(case) = crate::cases::find(c, space_no, case_id)? else {
        return Ok(None);
    };
    let alerts: Vec<String> = c
        .prepare_cached("SELECT alert_id FROM case_alerts WHERE case_id = ?1 ORDER BY alert_id LIMIT 1000")?
        .query_map([&case.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut ctx = match alerts.first() {
        Some(a) => alert_context(c, space_no, a, now_us)?,
        None => Value::Null,
    };
    if ctx.is_null() {
        ctx = serde_json::json!({"alert": null, "rule": null, "event": null, "person": null});
    }
    let mut case = serde_json::to_value(&case)?;
    case["alert_ids"] = alerts.into_iter().map(Value::String).collect();
    ctx["case"] = case;
    Ok(Some(ctx))
}

/// Labels of the playbook run counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct RunLabels {
    /// succeeded | failed.
    pub outcome: String,
}

/// What the responder and the playbook runner wait on and tell.
pub struct Signals {
    /// A playbook run was queued: the runner looks for work.
    pub runs_queued: tokio::sync::Notify,
    /// Bumped after a commit that queued something for the responder or the notification
    /// worker (an alert status change, a case, a notification; detection's commits have their
    /// own signal). They wait on it, not on every commit of the store: an intake's thousands of
    /// commits a second would otherwise each cost them a read.
    pub queued: tokio::sync::watch::Sender<u64>,
    /// The responder's checkpoint, sent after each of its commits (what waits for the response
    /// to an alert watches it).
    pub responded: tokio::sync::watch::Sender<i64>,
    /// Runs finished so far (tests and benchmarks wait on it).
    pub runs_finished: tokio::sync::watch::Sender<u64>,
    /// The client of playbooks' `http_request` steps (guarded like webhook deliveries), made on
    /// first use.
    pub http: std::sync::OnceLock<Result<vigie_webhook::client::Client, String>>,
    /// Playbooks compiled by the runner, by (id, version).
    pub compiled: std::sync::Mutex<std::collections::HashMap<(String, i64), vigie_playbook::Playbook>>,
    /// Playbook runs finished, by outcome (`vigie_xdr_playbook_runs_total`).
    pub run_outcomes: prometheus_client::metrics::family::Family<RunLabels, prometheus_client::metrics::counter::Counter>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").field("responded", &*self.responded.borrow()).finish_non_exhaustive()
    }
}

impl Signals {
    /// The signals, their counter registered in `metrics`.
    pub fn new(metrics: &vigie_core::metrics::Metrics) -> Signals {
        let run_outcomes = prometheus_client::metrics::family::Family::default();
        metrics.register("playbook_runs", "Playbook runs finished, by outcome", run_outcomes.clone());
        Signals {
            runs_queued: tokio::sync::Notify::new(),
            queued: tokio::sync::watch::channel(0).0,
            responded: tokio::sync::watch::channel(0).0,
            runs_finished: tokio::sync::watch::channel(0).0,
            http: std::sync::OnceLock::new(),
            compiled: std::sync::Mutex::new(std::collections::HashMap::new()),
            run_outcomes,
        }
    }

    /// Something was queued for the responder or the notification worker (call after the commit).
    pub fn queued(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A run finished: counted, and told to whoever waits.
    pub fn run_finished(&self, outcome: &str) {
        self.run_outcomes.get_or_create(&RunLabels { outcome: outcome.to_owned() }).inc();
        self.runs_finished.send_modify(|n| *n += 1);
    }
}
