//! Untrusted input: a playbook definition as the playbooks API takes it (YAML). Compiled
//! (refused with every problem, never a panic), shown as JSON, and an accepted playbook run as a
//! dry run over a sample trigger with actions that answer at once — templates are bounded by
//! fuel and output size, so a run always ends.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::future::{Future, ready};
use vigie_playbook::{
    ActionError, Actions, AddIoc, CreateCase, CreateTask, HttpRequest, Notify, QueryEvents, RunOptions, StepRecord, UpdateAlert,
};

struct Answering;

fn done() -> impl Future<Output = Result<Value, ActionError>> + Send {
    ready(Ok(json!({"id": "x", "events": [], "count": 0})))
}

impl Actions for Answering {
    fn query_events(&mut self, _: QueryEvents) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn lookup_person(&mut self, user_id: &str) -> impl Future<Output = Result<Option<Value>, ActionError>> + Send {
        ready(Ok(Some(json!({"user_id": user_id, "email": "a@b.c", "training_days_ago": 400}))))
    }
    fn create_case(&mut self, _: CreateCase) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn update_alert(&mut self, _: UpdateAlert) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn notify(&mut self, _: Notify) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn create_task(&mut self, _: CreateTask) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn http_request(&mut self, _: HttpRequest) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn add_ioc(&mut self, _: AddIoc) -> impl Future<Output = Result<Value, ActionError>> + Send {
        done()
    }
    fn step_finished(&mut self, _: &StepRecord) -> impl Future<Output = ()> + Send {
        ready(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pb = match vigie_playbook::compile(text) {
        Ok(pb) => pb,
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal names at least one problem");
            return;
        }
    };
    let _ = pb.to_json();
    let trigger = json!({
        "alert": {"id": "al-1", "short_id": "AL-1", "user_id": "u1", "platform_id": "p", "event_ids": ["e1"]},
        "rule": {"id": "r1", "name": "R", "severity": "high"},
        "event": {"event_type": "interaction.policy_violated", "user_id": "u1"},
        "case": {"id": "c1"}, "person": null, "input": {}, "change": {"from": "pending", "to": "closed"},
        "scheduled_at": "2026-01-01T00:00:00Z",
    });
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build() else { return };
    let opts = RunOptions { run_id: "r".into(), dry_run: true, now: chrono::DateTime::UNIX_EPOCH };
    let report = rt.block_on(vigie_playbook::run(&pb, trigger, &mut Answering, opts));
    assert!(report.steps.len() <= pb.steps.len(), "a run executes each step at most once");
});
