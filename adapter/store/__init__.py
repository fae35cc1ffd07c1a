"""Persistence: the engine, the schema and its migrations, resources and their versions, the
search index, the outbox, ownership of ids, and the tenants' numbering.

What the API asks of the store (`adapter.api` never imports SQLAlchemy or
`adapter.store.schema`; an import-linter contract in pyproject.toml checks it): a route
holds the app's `Engine`, typed as `adapter.store.engine.Engine`; it opens a connection
(`with engine.connect() as conn:`, or `bounded_read` for a search) and passes it to plain
functions of one module per noun, catching `adapter.store.engine.StoreError` to answer 503.
Those functions answer plain values or small frozen dataclasses, never rows: `resources`
(a resource's versions by key: read, vread, instance history), `search`, `search_query`,
`compartment` and `history` (FHIR search, `$everything`, type history), `export_jobs` and
`export_read` (bulk export), `idempotency` (a key's reservation and stored answer; it opens
its own short write transactions), `submissions` (a submission and its outbox entry's
state and deliveries, for its status), `audit` (the trail's batches, its search and one
entry), `assertions` (the SMART token endpoint's memory of assertion ids, against replay).
"""

from __future__ import annotations
