"""Alerts that reach a person: a small JSON message to `ADAPTER_ALERT_WEBHOOK_URL` when an
outbox entry becomes a dead letter, a conflict is parked, the EHR stays unreachable, or the
oldest waiting entry grows too old; at most one message per kind per interval.

`webhook` sends (and holds back repeats), `watch` decides, from the store and the EHR.
"""
