"""Reconcile: what the store holds against what the EHR holds, type by type."""
