//! The write path of alerts, as the detection consumer calls it for every match: fold it into
//! the open alert with its similarity key, or raise a new alert with a short id, unless the rule
//! is rate limited (then paused).
use super::{AlertStatus, history, severity_word};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::ids::IdGen;

/// The events an alert keeps: the first 1,000 that matched (lowest log position first within a
/// match). Past that only `occurrences` grows, so an alert absorbing a flood stays small.
pub const MAX_ALERT_EVENTS: i64 = 1_000;
/// The rate limit: a rule that raised this many new alerts within [`RATE_WINDOW_MICROS`] is
/// paused instead of raising one more (Sekoia: 30 in 30 s; occurrences do not count).
pub const RATE_LIMIT_ALERTS: i64 = 30;
/// The rate limit's sliding window (µs): 30 seconds.
pub const RATE_WINDOW_MICROS: i64 = 30 * 1_000_000;
/// How long a rate-limited rule raises no new alert (µs): 30 minutes, from the breach.
pub const PAUSE_MICROS: i64 = 30 * 60 * 1_000_000;
/// How many short ids are drawn before a raise gives up (a clash is one in 2⁴⁰ per alert).
const SHORT_ID_TRIES: usize = 8;
/// Who the history names for what detection did.
pub(super) const DETECTION: &str = "detection";

/// One match a rule made (a single event, or a window that fired).
#[derive(Debug, Clone)]
pub struct Match {
    /// The rule's space (`spaces.no`).
    pub space_no: i64,
    /// The rule.
    pub rule_id: String,
    /// The rule's name, kept on the alert.
    pub rule_name: String,
    /// The rule's severity, 0–100.
    pub severity: u8,
    /// Matches with the same key fold into one open alert of the rule.
    pub similarity_key: String,
    /// The alert's title.
    pub title: String,
    /// The person involved.
    pub user_id: Option<String>,
    /// The AI platform involved.
    pub platform_id: Option<String>,
    /// The first matching event's time (µs).
    pub first_seen: i64,
    /// The last matching event's time (µs).
    pub last_seen: i64,
    /// `(log seq, event id)` of the events of this match.
    pub events: Vec<(i64, String)>,
    /// What matched (the window's row, the event's fields).
    pub details: Value,
    /// How many matches this is: the detection consumer applies the matches of one rule and
    /// similarity key in a batch together (the first decides; the others are occurrences of
    /// the same alert, or suppressed with it).
    pub count: u64,
}

/// What [`apply`] did with a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new alert.
    Raised {
        /// Its id.
        alert_id: String,
        /// Its short id (`AL…`).
        short_id: String,
    },
    /// Folded into this open alert with the same similarity key.
    Occurrence {
        /// The alert.
        alert_id: String,
    },
    /// Not raised: the rule is rate limited.
    Suppressed {
        /// When the rule may raise alerts again (µs).
        paused_until: i64,
    },
}

/// Records a match on `c`, inside the caller's transaction (it opens none of its own), at time
/// `now` (µs):
/// - the rule's statistics count the match;
/// - an open alert (pending, acknowledged or ongoing) of the rule with the same similarity key
///   absorbs it as an occurrence (its events appended up to [`MAX_ALERT_EVENTS`]; past that only
///   the count grows), even while the rule is paused;
/// - else, when the rule is paused, or has raised [`RATE_LIMIT_ALERTS`] alerts in the last
///   [`RATE_WINDOW_MICROS`] (which pauses it for [`PAUSE_MICROS`]), nothing is raised;
/// - else a new pending alert is raised.
///
/// A pause found over is cleared and recorded (`resumed`) in the rule's history.
pub fn apply(c: &Connection, ids: &IdGen, m: &Match, now: i64) -> Result<Outcome, StoreError> {
    apply_with(c, ids, m, now, &mut random_short_id)
}

fn apply_with(c: &Connection, ids: &IdGen, m: &Match, now: i64, short_id: &mut dyn FnMut() -> String) -> Result<Outcome, StoreError> {
    let n = m.count.max(1) as i64;
    c.prepare_cached(
        "INSERT INTO rule_stats (rule_id, matches, last_match_at) VALUES (?1, ?3, ?2) \
         ON CONFLICT (rule_id) DO UPDATE SET matches = matches + excluded.matches, last_match_at = excluded.last_match_at",
    )?
    .execute(params![m.rule_id, now, n])?;
    if let Some((alert_id, occurrences)) = open_alert(c, m)? {
        c.prepare_cached(
            "UPDATE alerts SET occurrences = occurrences + ?6, first_seen = MIN(first_seen, ?3), last_seen = MAX(last_seen, ?4), \
             updated_at = ?5 WHERE id = ?1 AND space_no = ?2",
        )?
        .execute(params![alert_id, m.space_no, m.first_seen.min(m.last_seen), m.first_seen.max(m.last_seen), now, n])?;
        // Every occurrence brought at least one event: past MAX_ALERT_EVENTS occurrences the
        // alert's list is full (counting it would read a thousand rows per match).
        if occurrences < MAX_ALERT_EVENTS {
            add_events(c, &alert_id, &m.events)?;
        }
        c.prepare_cached("UPDATE rule_stats SET occurrences = occurrences + ?3, last_fired_at = ?2 WHERE rule_id = ?1")?
            .execute(params![m.rule_id, now, n])?;
        return Ok(Outcome::Occurrence { alert_id });
    }
    // The rate limit's clock is processing time, as Sekoia.io's: what it protects is the
    // analysts from a storm of alerts, and event times are the senders' to choose (spaced
    // backdated events would slip through an event-time limit). A backtest, which has no
    // processing time, applies it by event time.
    let clock = now;
    if let Some(paused_until) = rate_limited(c, m, clock)? {
        c.prepare_cached("UPDATE rule_stats SET suppressed = suppressed + ?2 WHERE rule_id = ?1")?.execute(params![m.rule_id, n])?;
        return Ok(Outcome::Suppressed { paused_until });
    }
    let (alert_id, short_id) = raise(c, ids, m, now, clock, short_id)?;
    // The first match raised it; the others of the batch are its occurrences.
    c.prepare_cached("UPDATE rule_stats SET alerts = alerts + 1, occurrences = occurrences + ?3, last_fired_at = ?2 WHERE rule_id = ?1")?
        .execute(params![m.rule_id, now, n - 1])?;
    Ok(Outcome::Raised { alert_id, short_id })
}

/// The open alert of a rule and key. Its condition repeats the partial index's
/// (`alerts_open_key`) word for word, so SQLite uses it. At most one exists: a match finding one
/// folds into it, and a closed alert is never reopened.
const OPEN_ALERT: &str = "SELECT id, occurrences FROM alerts WHERE rule_id = ?1 AND similarity_key = ?2 \
     AND status IN ('pending', 'acknowledged', 'ongoing') AND space_no = ?3 LIMIT 1";

/// The open alert of `m`'s rule and key, and its occurrences so far.
fn open_alert(c: &Connection, m: &Match) -> Result<Option<(String, i64)>, StoreError> {
    Ok(c.prepare_cached(OPEN_ALERT)?
        .query_row(params![m.rule_id, m.similarity_key, m.space_no], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// When the rule may raise again if it may not at `now` (processing time);
/// clears a pause that is over, and pauses a rule that would exceed the rate.
fn rate_limited(c: &Connection, m: &Match, now: i64) -> Result<Option<i64>, StoreError> {
    let paused: Option<i64> = c
        .prepare_cached("SELECT paused_until FROM rules WHERE id = ?1 AND space_no = ?2")?
        .query_row(params![m.rule_id, m.space_no], |r| r.get(0))
        .optional()?
        .flatten();
    if let Some(until) = paused {
        if until > now {
            return Ok(Some(until));
        }
        c.prepare_cached("UPDATE rules SET paused_until = NULL WHERE id = ?1 AND space_no = ?2")?
            .execute(params![m.rule_id, m.space_no])?;
        rule_history(c, &m.rule_id, until, "resumed", None)?;
    }
    let recent: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM alerts WHERE rule_id = ?1 AND raised_at > ?2 AND space_no = ?3")?
        .query_row(params![m.rule_id, now - RATE_WINDOW_MICROS, m.space_no], |r| r.get(0))?;
    if recent < RATE_LIMIT_ALERTS {
        return Ok(None);
    }
    let until = now + PAUSE_MICROS;
    c.prepare_cached("UPDATE rules SET paused_until = ?3 WHERE id = ?1 AND space_no = ?2")?
        .execute(params![m.rule_id, m.space_no, until])?;
    rule_history(c, &m.rule_id, now, "paused", Some(json!({"until": until, "alerts_in_30s": recent})))?;
    tracing::warn!(rule_id = %m.rule_id, rule = %m.rule_name, alerts = recent, "a rule raised too many alerts: paused for 30 minutes");
    Ok(Some(until))
}

fn rule_history(c: &Connection, rule_id: &str, at: i64, kind: &str, detail: Option<Value>) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO rule_history (rule_id, at, by, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![
        rule_id,
        at,
        DETECTION,
        kind,
        detail.map(|d| d.to_string())
    ])?;
    Ok(())
}

/// Inserts a new pending alert, drawing short ids until one is free.
fn raise(
    c: &Connection,
    ids: &IdGen,
    m: &Match,
    now: i64,
    clock: i64,
    short_id: &mut dyn FnMut() -> String,
) -> Result<(String, String), StoreError> {
    let id = ids.at(from_micros(now)).to_string();
    let severity = m.severity.min(100);
    let details = serde_json::to_string(&m.details)?;
    let mut insert = c.prepare_cached(
        "INSERT INTO alerts (id, short_id, space_no, rule_id, rule_name, title, severity, urgency, status, similarity_key, occurrences, \
         first_seen, last_seen, user_id, platform_id, assignee, details, raised_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?17, ?10, ?11, ?12, ?13, NULL, ?14, ?16, ?15, ?15)",
    )?;
    let mut tries = 0;
    let short = loop {
        let short = short_id();
        let inserted = insert.execute(params![
            id,
            short,
            m.space_no,
            m.rule_id,
            m.rule_name,
            m.title,
            severity_word(severity),
            severity,
            m.similarity_key,
            m.first_seen.min(m.last_seen),
            m.first_seen.max(m.last_seen),
            m.user_id,
            m.platform_id,
            details,
            now,
            clock,
            m.count.max(1) as i64
        ]);
        match inserted {
            Ok(_) => break short,
            Err(e) if StoreError::is_unique_violation(&e) && tries + 1 < SHORT_ID_TRIES => tries += 1,
            Err(e) => return Err(e.into()),
        }
    };
    add_events(c, &id, &m.events)?;
    history(c, &id, now, DETECTION, "created", None, Some(AlertStatus::Pending.as_str()), None)?;
    // The responder carries out the rule's other actions and starts playbooks from this row,
    // committed with the alert.
    let detail = json!({"rule_id": m.rule_id, "severity": severity_word(severity), "short_id": short});
    crate::response::enqueue(c, m.space_no, crate::response::ResponseKind::AlertCreated, &id, &detail, now)?;
    Ok((id, short))
}

/// Appends events to an alert (a repeated one once), up to [`MAX_ALERT_EVENTS`].
fn add_events(c: &Connection, alert_id: &str, events: &[(i64, String)]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let kept: i64 = c.prepare_cached("SELECT COUNT(*) FROM alert_events WHERE alert_id = ?1")?.query_row([alert_id], |r| r.get(0))?;
    let mut room = MAX_ALERT_EVENTS - kept;
    if room <= 0 {
        return Ok(());
    }
    let mut sorted: Vec<&(i64, String)> = events.iter().collect();
    sorted.sort_unstable_by_key(|(seq, _)| *seq);
    let mut insert = c.prepare_cached("INSERT OR IGNORE INTO alert_events (alert_id, seq, event_id) VALUES (?1, ?2, ?3)")?;
    for (seq, event_id) in sorted {
        if room <= 0 {
            break;
        }
        room -= insert.execute(params![alert_id, seq, event_id])? as i64;
    }
    Ok(())
}

fn random_short_id() -> String {
    crate::short_id::random("AL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{detail, find};
    use vigie_core::clock::to_micros;

    const T0: i64 = 1_795_849_200_000_000;
    const SECOND: i64 = 1_000_000;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Connection::open(dir.path().join("xdr.db")).expect("open");
        for m in crate::server::MIGRATIONS {
            c.execute_batch(m.sql).expect(m.name);
        }
        c.execute(
            "INSERT INTO rules (id, space_no, name, severity, kind, source, enabled, created_at, updated_at) \
             VALUES ('r1', 1, 'Rule one', 70, 'pipe', 'risk_score > 0.9', 1, 0, 0)",
            [],
        )
        .expect("rule");
        (dir, c)
    }

    fn hit(key: &str, t: i64, events: &[(i64, &str)]) -> Match {
        Match {
            space_no: 1,
            rule_id: "r1".into(),
            rule_name: "Rule one".into(),
            severity: 70,
            similarity_key: key.into(),
            title: format!("Rule one: {key}"),
            user_id: Some("alice".into()),
            platform_id: Some("chatgpt".into()),
            first_seen: t,
            last_seen: t,
            events: events.iter().map(|(s, id)| (*s, (*id).to_owned())).collect(),
            details: json!({"key": key}),
            count: 1,
        }
    }

    fn raised(o: Outcome) -> String {
        match o {
            Outcome::Raised { alert_id, .. } => alert_id,
            other => panic!("expected a new alert, got {other:?}"),
        }
    }

    fn one<T: rusqlite::types::FromSql>(c: &Connection, sql: &str) -> T {
        c.query_row(sql, [], |r| r.get(0)).expect(sql)
    }

    fn stats(c: &Connection) -> (i64, i64, i64, i64) {
        c.query_row("SELECT matches, alerts, occurrences, suppressed FROM rule_stats WHERE rule_id = 'r1'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .expect("stats")
    }

    #[test]
    fn a_match_with_the_key_of_an_open_alert_folds_into_it() {
        let (_d, c) = db();
        let ids = IdGen::default();
        let first = apply(&c, &ids, &hit("k", T0, &[(20, "e20"), (10, "e10")]), T0).expect("apply");
        let Outcome::Raised { alert_id, short_id } = first else { panic!("{first:?}") };
        assert!(
            short_id.len() == 10 && short_id.starts_with("AL") && short_id[2..].bytes().all(|b| crate::short_id::CROCKFORD.contains(&b)),
            "{short_id}"
        );
        let mut earlier = hit("k", T0 - 5 * SECOND, &[(30, "e30"), (10, "e10")]);
        earlier.last_seen = T0 + 9 * SECOND;
        assert_eq!(apply(&c, &ids, &earlier, T0 + SECOND).expect("apply"), Outcome::Occurrence { alert_id: alert_id.clone() });
        let a = find(&c, 1, &short_id).expect("find").expect("alert");
        assert_eq!((a.id.as_str(), a.occurrences, a.status), (alert_id.as_str(), 2, AlertStatus::Pending));
        assert_eq!((to_micros(a.first_seen), to_micros(a.last_seen)), (T0 - 5 * SECOND, T0 + 9 * SECOND));
        assert_eq!((to_micros(a.created_at), to_micros(a.updated_at)), (T0, T0 + SECOND), "created when raised, updated by the occurrence");
        assert_eq!((a.severity.as_str(), a.urgency, a.title.as_str()), ("high", 70, "Rule one: k"));
        let d = detail(&c, 1, a).expect("detail");
        assert_eq!(d.event_ids, ["e10", "e20", "e30"], "events once each, in log order");
        assert_eq!(d.history.iter().map(|h| (h.kind.as_str(), h.by.as_deref())).collect::<Vec<_>>(), [("created", Some("detection"))]);
        assert_eq!(stats(&c), (2, 1, 1, 0));
        assert_eq!(one::<i64>(&c, "SELECT last_fired_at FROM rule_stats"), T0 + SECOND);
        // Another key, or another rule, is another alert.
        raised(apply(&c, &ids, &hit("other", T0, &[]), T0 + 2 * SECOND).expect("apply"));
        let mut r2 = hit("k", T0, &[]);
        r2.rule_id = "r2".into();
        raised(apply(&c, &ids, &r2, T0 + 3 * SECOND).expect("apply"));
        assert_eq!(one::<i64>(&c, "SELECT COUNT(*) FROM alerts"), 3);
    }

    #[test]
    fn the_open_alert_lookup_uses_the_partial_index() {
        let (_d, c) = db();
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {OPEN_ALERT}"))
            .expect("plan")
            .query_map(params!["r1", "k", 1], |r| r.get(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan");
        assert!(plan.iter().any(|p| p.contains("alerts_open_key")), "{plan:?}");
    }

    #[test]
    fn a_closed_or_rejected_alert_does_not_absorb_a_match() {
        let (_d, c) = db();
        let ids = IdGen::default();
        for (i, status) in ["closed", "rejected"].into_iter().enumerate() {
            let t = T0 + i as i64 * 10 * SECOND;
            let old = raised(apply(&c, &ids, &hit(status, t, &[]), t).expect("apply"));
            c.execute("UPDATE alerts SET status = ?2 WHERE id = ?1", params![old, status]).expect("close");
            let new = raised(apply(&c, &ids, &hit(status, t + SECOND, &[]), t + SECOND).expect("apply"));
            assert_ne!(new, old, "a {status} alert takes no occurrence");
            let occurrences: i64 = c.query_row("SELECT occurrences FROM alerts WHERE id = ?1", [&old], |r| r.get(0)).expect("old");
            assert_eq!(occurrences, 1);
        }
        // An acknowledged or ongoing one does.
        let open = raised(apply(&c, &ids, &hit("open", T0, &[]), T0).expect("apply"));
        for status in ["acknowledged", "ongoing"] {
            c.execute("UPDATE alerts SET status = ?2 WHERE id = ?1", params![open, status]).expect("status");
            assert_eq!(apply(&c, &ids, &hit("open", T0, &[]), T0 + SECOND).expect("apply"), Outcome::Occurrence { alert_id: open.clone() });
        }
    }

    #[test]
    fn the_thirty_first_alert_in_thirty_seconds_pauses_the_rule_and_occurrences_still_fold() {
        let (_d, c) = db();
        let ids = IdGen::default();
        let mut first = None;
        for i in 0..RATE_LIMIT_ALERTS {
            let t = T0 + i * 900_000;
            let id = raised(apply(&c, &ids, &hit(&format!("k{i}"), t, &[]), t).expect("apply"));
            first.get_or_insert(id);
        }
        let at = T0 + 29 * SECOND;
        let until = at + PAUSE_MICROS;
        assert_eq!(apply(&c, &ids, &hit("k-new", at, &[]), at).expect("apply"), Outcome::Suppressed { paused_until: until });
        assert_eq!(one::<i64>(&c, "SELECT paused_until FROM rules WHERE id = 'r1'"), until);
        let (kind, by, detail): (String, String, String) =
            c.query_row("SELECT kind, by, detail FROM rule_history", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("history");
        assert_eq!((kind.as_str(), by.as_str()), ("paused", "detection"));
        assert_eq!(serde_json::from_str::<Value>(&detail).expect("json"), json!({"until": until, "alerts_in_30s": 30}));
        assert_eq!(one::<i64>(&c, "SELECT COUNT(*) FROM alerts"), 30);
        // While paused: occurrences of an open alert still fold, new keys are suppressed.
        let first = first.expect("first alert");
        assert_eq!(apply(&c, &ids, &hit("k0", at, &[]), at + SECOND).expect("apply"), Outcome::Occurrence { alert_id: first });
        let later = at + 20 * 60 * SECOND;
        assert_eq!(apply(&c, &ids, &hit("k-other", later, &[]), later).expect("apply"), Outcome::Suppressed { paused_until: until });
        assert_eq!(stats(&c), (33, 30, 1, 2));
        assert_eq!(one::<i64>(&c, "SELECT COUNT(*) FROM rule_history"), 1, "a pause is recorded once");
        // Over: the next new key raises, and the resume is recorded at the pause's end.
        raised(apply(&c, &ids, &hit("k-after", until, &[]), until).expect("apply"));
        assert_eq!(one::<Option<i64>>(&c, "SELECT paused_until FROM rules WHERE id = 'r1'"), None);
        let (kind, at_): (String, i64) =
            c.query_row("SELECT kind, at FROM rule_history ORDER BY id DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?))).expect("resumed");
        assert_eq!((kind.as_str(), at_), ("resumed", until));
        assert_eq!(stats(&c), (34, 31, 1, 2));
    }

    #[test]
    fn an_alert_thirty_seconds_old_no_longer_counts_towards_the_rate() {
        let (_d, c) = db();
        let ids = IdGen::default();
        for i in 0..RATE_LIMIT_ALERTS {
            let t = T0 + i * 1_000;
            raised(apply(&c, &ids, &hit(&format!("k{i}"), t, &[]), t).expect("apply"));
        }
        // At T0 + 30 s the first (created at T0) is out of the window: 29 remain.
        let t = T0 + RATE_WINDOW_MICROS;
        raised(apply(&c, &ids, &hit("k-30", t, &[]), t).expect("apply"));
        // One µs later the window (T0 + 1 µs, now] holds 29 + 1 = 30 of them again: paused.
        assert!(matches!(apply(&c, &ids, &hit("k-31", t + 1, &[]), t + 1).expect("apply"), Outcome::Suppressed { .. }));
    }

    #[test]
    fn an_alert_keeps_its_first_thousand_events_and_counts_the_rest() {
        let (_d, mut c) = db();
        // In a transaction, as the detection consumer calls it.
        let c = c.transaction().expect("transaction");
        let ids = IdGen::default();
        let many: Vec<(i64, String)> = (0..1_005).rev().map(|s| (s, format!("e{s}"))).collect();
        let mut m = hit("k", T0, &[]);
        m.events = many;
        let id = raised(apply(&c, &ids, &m, T0).expect("apply"));
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM alert_events WHERE alert_id = ?1", [&id], |r| r.get(0)).expect("n")
        };
        assert_eq!(count(&c), MAX_ALERT_EVENTS);
        assert_eq!(one::<i64>(&c, "SELECT MAX(seq) FROM alert_events"), 999, "the lowest positions are kept");
        apply(&c, &ids, &hit("k", T0, &[(2_000, "late")]), T0 + 1).expect("apply");
        assert_eq!(count(&c), MAX_ALERT_EVENTS);
        assert_eq!(one::<i64>(&c, "SELECT occurrences FROM alerts"), 2);
        c.commit().expect("commit");
    }

    #[test]
    fn a_short_id_already_taken_is_drawn_again() {
        let (_d, c) = db();
        let ids = IdGen::default();
        let mut draws = ["AL00000000", "AL00000000", "AL00000001"].into_iter().map(String::from);
        let mut next = || draws.next().unwrap_or_default();
        let first = apply_with(&c, &ids, &hit("a", T0, &[]), T0, &mut next).expect("first");
        let second = apply_with(&c, &ids, &hit("b", T0, &[]), T0 + 1, &mut next).expect("second");
        let shorts = [first, second].map(|o| match o {
            Outcome::Raised { short_id, .. } => short_id,
            other => panic!("{other:?}"),
        });
        assert_eq!(shorts, ["AL00000000", "AL00000001"]);
        assert_eq!(crate::short_id::from_bits("AL", u64::MAX), "ALZZZZZZZZ");
        assert_eq!(crate::short_id::from_bits("AL", 0b00001_00010), "AL00000012");
    }
}
