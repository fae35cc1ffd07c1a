"""Push: the outbox worker, the Bundle an entry sends, and the lineage a delivery leaves."""
