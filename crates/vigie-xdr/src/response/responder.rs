//! The responder: follows the response queue from its checkpoint and, for each entry, in one
//! transaction with the checkpoint, carries out the rule's actions (open a case from its template,
//! queue notifications) and queues the runs of the playbooks whose triggers match. A failure of
//! one action (an unknown template, no such channel) is recorded in the alert's history and does
//! not hold the queue back; a store failure rolls the batch back and it is tried again.
use super::{ResponseKind, Signals, alert_context};
use crate::playbooks::{TriggerSpec, queue_run};
use crate::rules::RuleAction;
use crate::state::XdrState;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigie_core::StoreError;
use vigie_core::clock::to_micros;
use vigie_core::ids::IdGen;

/// The responder's checkpoint in `consumer_checkpoints`.
pub const CHECKPOINT: &str = "response";
/// Entries handled per transaction.
const BATCH: i64 = 256;
/// Who the records name for what the responder did.
pub const BY: &str = "response";

/// One entry of the response queue.
struct Entry {
    seq: i64,
    space_no: i64,
    kind: Option<ResponseKind>,
    subject: String,
    detail: Value,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Responded {
    /// Entries handled.
    pub entries: usize,
    /// Playbook runs queued.
    pub runs: usize,
}

/// Runs the responder until `shutdown`: a batch whenever detection committed or something was
/// queued (`Signals::queued`), a safety tick every 5 s, a second's rest after a failure.
pub async fn run(st: XdrState, shutdown: CancellationToken) {
    let (mut queued, mut detected) = (st.response.queued.subscribe(), st.detected.subscribe());
    loop {
        let pause = match respond_once(&st).await {
            // A batch may have queued more (the cases its rules opened): look again at once.
            Ok(r) if r.entries > 0 => continue,
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the responder failed; retrying in a second");
                Some(Duration::from_secs(1))
            }
        };
        if let Some(p) = pause {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(p) => continue,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = queued.changed() => {}
            _ = detected.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Handles one batch of the queue; tells the runner when runs were queued. Looks first (a
/// read): an idle responder writes nothing, so its own commits do not wake it again.
pub async fn respond_once(st: &XdrState) -> Result<Responded, StoreError> {
    let pending = st
        .store
        .read(|c| {
            let from = crate::log::checkpoint(c, CHECKPOINT)?;
            Ok::<_, StoreError>(
                c.prepare_cached("SELECT EXISTS(SELECT 1 FROM response_events WHERE seq > ?1)")?
                    .query_row([from], |r| r.get::<_, bool>(0))?,
            )
        })
        .await?;
    if !pending {
        return Ok(Responded::default());
    }
    let (ids, now) = (st.ids.clone(), to_micros(st.clock.now()));
    let (done, last) = st
        .store
        .write(move |c| {
            let from = crate::log::checkpoint(c, CHECKPOINT)?;
            let entries = read(c, from)?;
            let mut done = Responded::default();
            let Some(last) = entries.last().map(|e| e.seq) else {
                return Ok((done, None));
            };
            for e in &entries {
                done.runs += isolated(c, &ids, e, now)?;
                done.entries += 1;
            }
            crate::log::advance(c, CHECKPOINT, last, now)?;
            Ok::<_, StoreError>((done, Some(last)))
        })
        .await?;
    if let Some(last) = last {
        announce(&st.response, last, done.runs);
        // Notifications the rules queued.
        st.response.queued();
    }
    Ok(done)
}

/// Responds to one entry inside a savepoint: an entry that fails (a row that does not read, a
/// template that cannot render) is rolled back alone, said in its alert's history and logged,
/// so it cannot hold back every later entry of every space. A failure to record that is the
/// store's, and fails the batch (it is tried again).
fn isolated(c: &Connection, ids: &IdGen, e: &Entry, now: i64) -> Result<usize, StoreError> {
    c.execute_batch("SAVEPOINT response_entry")?;
    // A panic while responding is this entry's failure, not the whole group commit's.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| respond(c, ids, e, now)))
        .unwrap_or_else(|_| Err(StoreError::Invalid("the response panicked".into())));
    match outcome {
        Ok(n) => {
            c.execute_batch("RELEASE response_entry")?;
            Ok(n)
        }
        Err(err) => {
            c.execute_batch("ROLLBACK TO response_entry; RELEASE response_entry")?;
            tracing::warn!(seq = e.seq, kind = ?e.kind, error = %err, "the response to a queue entry failed; it is skipped");
            if matches!(e.kind, Some(ResponseKind::AlertCreated | ResponseKind::AlertStatusChanged)) {
                noted(c, &e.subject, now, &format!("the response to this alert failed and was skipped: {err}"))?;
            }
            Ok(0)
        }
    }
}

fn announce(s: &Signals, last: i64, runs: usize) {
    if runs > 0 {
        s.runs_queued.notify_one();
    }
    s.responded.send_replace(last);
}

fn read(c: &Connection, after: i64) -> Result<Vec<Entry>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT seq, space_no, kind, subject, detail FROM response_events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let rows = stmt.query_map(params![after, BATCH], |r| {
        let kind: String = r.get(2)?;
        let detail: String = r.get(4)?;
        Ok(Entry {
            seq: r.get(0)?,
            space_no: r.get(1)?,
            kind: ResponseKind::parse(&kind),
            subject: r.get(3)?,
            detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Responds to one entry; the number of playbook runs queued.
fn respond(c: &Connection, ids: &IdGen, e: &Entry, now: i64) -> Result<usize, StoreError> {
    let origin = format!("response:{}", e.seq);
    match e.kind {
        Some(ResponseKind::AlertCreated) => {
            let ctx = alert_context(c, e.space_no, &e.subject, now)?;
            if ctx.is_null() {
                return Ok(0);
            }
            rule_actions(c, ids, e, &ctx, now)?;
            let (alert, rule_now) = (&ctx["alert"], ctx["rule"]["name"].as_str());
            let runs = matching(c, e.space_no, "alert_created", |t| t.takes_alert(alert, rule_now, None))?;
            queue_all(c, ids, e.space_no, &runs, "alert_created", &ctx, &origin, now)
        }
        Some(ResponseKind::AlertStatusChanged) => {
            let mut ctx = alert_context(c, e.space_no, &e.subject, now)?;
            if ctx.is_null() {
                return Ok(0);
            }
            let to = e.detail.get("to").and_then(Value::as_str).map(str::to_owned);
            ctx["change"] = e.detail.clone();
            let (alert, rule_now) = (ctx["alert"].clone(), ctx["rule"]["name"].as_str().map(str::to_owned));
            let runs = matching(c, e.space_no, "alert_status_changed", |t| t.takes_alert(&alert, rule_now.as_deref(), to.as_deref()))?;
            queue_all(c, ids, e.space_no, &runs, "alert_status_changed", &ctx, &origin, now)
        }
        Some(ResponseKind::CaseCreated) => {
            let Some(case) = super::case_context(c, e.space_no, &e.subject, now)? else {
                return Ok(0);
            };
            // A case a playbook run opened does not start that playbook again, and a case opened
            // by a run that a case started starts none: playbooks cannot feed each other cases.
            let (maker, chained) = case_maker(c, e.space_no, &e.subject)?;
            if chained {
                return Ok(0);
            }
            let runs = matching(c, e.space_no, "case_created", |_| true)?;
            let runs: Vec<String> = runs.into_iter().filter(|id| Some(id) != maker.as_ref()).collect();
            queue_all(c, ids, e.space_no, &runs, "case_created", &case, &origin, now)
        }
        None => Ok(0),
    }
}

/// The playbook whose run opened a case (if a run did), and whether that run was itself started
/// by a case.
fn case_maker(c: &Connection, space_no: i64, case_id: &str) -> Result<(Option<String>, bool), StoreError> {
    let by: Option<String> = c
        .prepare_cached("SELECT created_by FROM cases WHERE (id = ?1 OR short_id = ?1) AND space_no = ?2")?
        .query_row(params![case_id, space_no], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(run) = by.as_deref().and_then(|b| b.strip_prefix("playbook:")) else { return Ok((None, false)) };
    let made: Option<(String, String)> = c
        .prepare_cached("SELECT playbook_id, trigger_type FROM playbook_runs WHERE id = ?1 AND space_no = ?2")?
        .query_row(params![run, space_no], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match made {
        Some((playbook, trigger)) => (Some(playbook), trigger == "case_created"),
        None => (None, false),
    })
}

/// The enabled playbooks of a space with this trigger type whose filters take the entry.
fn matching(c: &Connection, space_no: i64, trigger_type: &str, takes: impl Fn(&TriggerSpec) -> bool) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT id, trigger_spec FROM playbooks WHERE space_no = ?1 AND enabled = 1 AND trigger_type = ?2 ORDER BY id")?;
    let rows = stmt.query_map(params![space_no, trigger_type], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, spec) = row?;
        match serde_json::from_str::<TriggerSpec>(&spec) {
            Ok(t) if takes(&t) => out.push(id),
            Ok(_) => {}
            Err(err) => tracing::warn!(playbook_id = %id, error = %err, "a playbook's stored trigger does not read; it is skipped"),
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn queue_all(
    c: &Connection,
    ids: &IdGen,
    space_no: i64,
    playbooks: &[String],
    trigger_type: &str,
    trigger: &Value,
    origin: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let mut n = 0;
    for id in playbooks {
        if queue_run(c, ids, space_no, id, trigger_type, trigger, Some(origin), None, "trigger", now)?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// The alert's rule's actions other than `alert`: `case` opens a case from the template (once:
/// an alert already in an open case is left there), `notify` queues a notification per matching
/// channel. What cannot be done is recorded in the alert's history.
fn rule_actions(c: &Connection, ids: &IdGen, e: &Entry, ctx: &Value, now: i64) -> Result<(), StoreError> {
    let rule_id = ctx["alert"]["rule_id"].as_str().unwrap_or_default();
    let actions: Option<String> = c
        .prepare_cached("SELECT actions FROM rules WHERE id = ?1 AND space_no = ?2")?
        .query_row(params![rule_id, e.space_no], |r| r.get(0))
        .optional()?;
    let actions: Vec<RuleAction> = actions.and_then(|a| serde_json::from_str(&a).ok()).unwrap_or_default();
    let by = format!("rule:{rule_id}");
    for action in actions {
        match action {
            RuleAction::Alert => {}
            RuleAction::Case { template, assignee } => {
                if crate::cases::open_case_of_alert(c, e.space_no, &e.subject)?.is_some() {
                    continue;
                }
                let assignee = match assignee.as_deref() {
                    Some("on-duty") => {
                        let who: Option<String> =
                            c.prepare_cached("SELECT on_duty FROM spaces WHERE no = ?1")?.query_row([e.space_no], |r| r.get(0))?;
                        if who.is_none() {
                            noted(
                                c,
                                &e.subject,
                                now,
                                "the rule assigns its case to the analyst on duty, but the space names none (PATCH /api/v1/space on_duty)",
                            )?;
                        }
                        who
                    }
                    _ => assignee,
                };
                let spec = crate::cases::NewCaseSpec {
                    template,
                    assignee,
                    alerts: vec![e.subject.clone()],
                    context: Some(ctx.clone()),
                    title: (ctx["alert"]["title"].as_str()).map(str::to_owned),
                    severity: ctx["alert"]["severity"].as_str().map(str::to_owned),
                    ..Default::default()
                };
                // A template's title and severity win over the alert's.
                let spec = if spec.template.is_some() { crate::cases::NewCaseSpec { title: None, severity: None, ..spec } } else { spec };
                match crate::cases::create(c, ids, e.space_no, spec, &by, now) {
                    Ok(case) => noted(c, &e.subject, now, &format!("case {} opened by the rule", case.short_id))?,
                    Err(crate::cases::CaseError::Store(err)) => return Err(err),
                    Err(err) => noted(c, &e.subject, now, &format!("the rule's case could not be opened: {err}"))?,
                }
            }
            RuleAction::Notify { channel } => {
                let sent = crate::notify::enqueue_for_alert(c, ids, e.space_no, ctx, channel.as_deref(), now)?;
                if sent == 0 {
                    let why = match &channel {
                        Some(name) => format!("the rule notifies channel {name:?}, but the space has no enabled channel of that name"),
                        None => "the rule notifies the channels whose routes take this alert, and none does".to_owned(),
                    };
                    noted(c, &e.subject, now, &why)?;
                }
            }
        }
    }
    Ok(())
}

/// Records in an alert's history what the responder did or could not do.
fn noted(c: &Connection, alert_id: &str, at: i64, comment: &str) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO alert_history (alert_id, at, by, kind, comment) VALUES (?1, ?2, ?3, 'response', ?4)")?
        .execute(params![alert_id, at, BY, comment])?;
    Ok(())
}
