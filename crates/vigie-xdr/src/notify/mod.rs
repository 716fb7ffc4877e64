//! Notifications: channels (Slack and Teams incoming webhooks, e-mail over SMTP, a generic
//! signed webhook), routing by severity, rule and space, message templates (minijinja), a
//! durable queue delivered with retries, and the delivery log.
use crate::state::XdrState;
use utoipa_axum::router::OpenApiRouter;

/// The notification routes.
pub fn routes(r: OpenApiRouter<XdrState>) -> OpenApiRouter<XdrState> {
    r
}
