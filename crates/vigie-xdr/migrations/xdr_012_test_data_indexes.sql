-- Removing test data (`DELETE /api/v1/test-data`) re-checks, inside the writer's transaction,
-- what hangs off the alerts and events it removes: each lookup below would otherwise scan its
-- whole table (every space) once per batch while intake waits.
-- By user alone: with the space first, the planner takes it over alerts_open_key for
-- detection's open-alert lookup (rule, key, status, space), the hot path.
CREATE INDEX alerts_user ON alerts (user_id);
CREATE INDEX notifications_alert ON notifications (alert_id) WHERE alert_id IS NOT NULL;
CREATE INDEX response_events_subject ON response_events (subject);
CREATE INDEX case_events_event ON case_events (event_id);
