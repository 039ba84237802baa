"""Alerts: raising, deduplication and suppression (manager, suppressions); routing and
delivery (routing, outbox, channels, digest)."""
