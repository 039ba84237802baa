"""Alerts: raising, deduplicating and suppressing them (rules), routing and delivering them."""
