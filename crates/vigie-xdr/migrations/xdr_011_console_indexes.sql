-- The console's event page lists the alerts holding an event: alert_events is keyed by alert,
-- so finding an event's alerts needs its log position indexed.
CREATE INDEX alert_events_seq ON alert_events (seq);
