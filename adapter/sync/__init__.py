"""Sync with the EHR: push (outbox worker) and, later, pull."""
