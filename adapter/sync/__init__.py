"""Sync with the EHR: push (the outbox worker), pull (the EHR's changes back), merge and
conflicts, and reconcile (every difference left)."""
