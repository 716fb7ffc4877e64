//! Sigma detection documents evaluated through `rsigma-eval`, behind [`SigmaBackend`] so the
//! engine does not depend on one implementation (and a test can compare two).
use crate::event::EventSource;
use crate::rule::{RuleError, SigmaProgram};
use rsigma_eval::event::{Event, EventValue};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Evaluates Sigma detection documents over events.
pub trait SigmaBackend: Send + Sync {
    /// Pushes `(rule, document)` for every document that matches `event` (`rule` as given to
    /// the constructor).
    fn matches(&self, event: &dyn EventSource, out: &mut Vec<(usize, usize)>);
}

/// `rsigma-eval`'s engine over every Sigma document of a space's rules at once (its candidate
/// index skips documents whose fields the event does not have).
pub struct Rsigma {
    engine: rsigma_eval::Engine,
    /// The id each document was given in the engine → (rule, document).
    owners: HashMap<String, (usize, usize)>,
}

impl Rsigma {
    /// Loads the documents of `programs` (each with the caller's rule index).
    pub(crate) fn new(programs: &[(usize, &SigmaProgram)]) -> Result<Rsigma, RuleError> {
        let mut engine = rsigma_eval::Engine::new();
        let mut owners = HashMap::new();
        let mut docs = Vec::new();
        for (rule, p) in programs {
            for (d, doc) in p.docs.iter().enumerate() {
                // Unique ids: two rules may carry documents with the same Sigma id.
                let id = format!("vigie:{rule}:{d}");
                let mut doc = doc.clone();
                doc.id = Some(id.clone());
                owners.insert(id, (*rule, d));
                docs.push(doc);
            }
        }
        let errors = engine.add_rules(docs.iter());
        if let Some((i, e)) = errors.into_iter().next() {
            return Err(RuleError::new(format!("Sigma document {:?} cannot be evaluated: {e}", docs[i].title)));
        }
        Ok(Rsigma { engine, owners })
    }
}

impl SigmaBackend for Rsigma {
    fn matches(&self, event: &dyn EventSource, out: &mut Vec<(usize, usize)>) {
        for r in self.engine.evaluate(&View(event)) {
            if let Some(owner) = r.header.rule_id.as_ref().and_then(|id| self.owners.get(id)) {
                out.push(*owner);
            }
        }
    }
}

/// An [`EventSource`] as `rsigma-eval` reads events.
struct View<'a>(&'a dyn EventSource);

impl Event for View<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.0.lookup(path).map(EventValue::from)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        let mut found = false;
        self.0.visit_strings(&mut |s| found = found || pred(s));
        found
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        let mut all = Vec::new();
        self.0.visit_strings(&mut |s| all.push(Cow::Owned(s.to_owned())));
        all
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.0.visit_strings(visit);
    }

    fn to_json(&self) -> Value {
        self.0.to_json()
    }
}
