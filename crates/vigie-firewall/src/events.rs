//! The events the firewall emits, and the outbox they wait in. Every event is written in the
//! same transaction as the change it describes, so an event exists if and only if that change
//! was committed. The webhook dispatcher (`vigie-webhook`) fans the outbox out by `seq`.

/// Every interaction recorded.
pub const INTERACTION_CREATED: &str = "interaction.created";
/// An interaction matched a policy (block, coach or log).
pub const INTERACTION_POLICY_VIOLATED: &str = "interaction.policy_violated";
/// An interaction's risk is in the high band or above (≥ 0.7).
pub const INTERACTION_HIGH_RISK: &str = "interaction.high_risk";
/// A policy was created.
pub const POLICY_CREATED: &str = "policy.created";
/// A policy was changed (including enabled or disabled).
pub const POLICY_UPDATED: &str = "policy.updated";
/// A policy was deleted.
pub const POLICY_DELETED: &str = "policy.deleted";
/// A test delivery.
pub const WEBHOOK_TEST: &str = vigie_webhook::WEBHOOK_TEST;
/// A webhook was disabled by its receiver (410) or by five days of failure.
pub const WEBHOOK_DISABLED: &str = vigie_webhook::WEBHOOK_DISABLED;

/// Every event type a webhook can subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    INTERACTION_CREATED,
    INTERACTION_POLICY_VIOLATED,
    INTERACTION_HIGH_RISK,
    "alert.severity_critical",
    "alert.severity_high",
    "alert.severity_medium",
    "alert.severity_low",
    POLICY_CREATED,
    POLICY_UPDATED,
    POLICY_DELETED,
    WEBHOOK_TEST,
    WEBHOOK_DISABLED,
];

/// The event type of an alert of `severity` (`alert.severity_high`…).
pub fn alert_event_type(severity: crate::model::Severity) -> &'static str {
    match severity {
        crate::model::Severity::Critical => "alert.severity_critical",
        crate::model::Severity::High => "alert.severity_high",
        crate::model::Severity::Medium => "alert.severity_medium",
        crate::model::Severity::Low => "alert.severity_low",
    }
}

pub use vigie_webhook::outbox::emit;
