"""Persistence: the engine, the schema and its migrations, resources and their versions, the
search index, the outbox, ownership of ids, and the tenants' numbering.

Every SQL statement lives in this package, in one module per noun; the code outside it
calls these modules' functions and never imports SQLAlchemy or `adapter.store.schema`
(import-linter's contract "the store owns its SQL" in pyproject.toml checks every module of
`adapter` but this package). The one pattern for everyone:

- An `Engine` (`adapter.store.engine`, made once by `create_store_engine`) is passed down
  as an opaque object; a caller opens a read with `with engine.connect() as conn:` and a
  write with `with write_transaction(engine) as conn:`, and passes `conn` to the store's
  functions, which run their statements inside the caller's transaction. Several store
  calls in one `with` are one transaction.
- Annotations name `adapter.store.engine.Engine` and `Connection` (SQLAlchemy's own
  classes, named there), and a database failure is caught as `StoreError`; so a caller types
  and handles them without importing SQLAlchemy.
- A store function answers plain values or small frozen dataclasses of its module
  (`outbox.Entry`, `ehr_versions.Local`, `conflicts.StoredConflict`), never rows.

The sync engine's modules: `outbox` (claim, settle, retry, dead letters, parking's audit
row), `outbox_holds` (which resources unsent entries hold), `delivery_rows` (what a push
sends), `lineage` (what the EHR answered), `pull_state`, `pull_scope`, `ehr_versions`
(what the merge reads and writes), `conflicts`, `reconcile`, `patient_rows` (the patient
view), `encounter_rows` (what ingest checks a record against).

What the API asks of the store: a route holds the app's `Engine`, typed as
`adapter.store.engine.Engine`; it opens a connection (`with engine.connect() as conn:`, or
`bounded_read` for a search) and passes it to plain functions of one module per noun,
catching `adapter.store.engine.StoreError` to answer 503.
Those functions answer plain values or small frozen dataclasses, never rows: `resources`
(a resource's versions by key: read, vread, instance history), `search`, `search_query`,
`compartment` and `history` (FHIR search, `$everything`, type history), `export_jobs` and
`export_read` (bulk export), `idempotency` (a key's reservation and stored answer; it opens
its own short write transactions), `submissions` (a submission and its outbox entry's
state and deliveries, for its status), `audit` (the trail's batches, its search and one
entry), `assertions` (the SMART token endpoint's memory of assertion ids, against replay).

What the commands, the console, the metrics and the settings ask: `outbox_listing` (the
operator's reads of the outbox: `adapter outbox`, `adapter push --dry-run`), `store_copy`
(`adapter copy-store`: a whole store into another, empty database), `lineage.traces`
(`adapter lineage`), `pull_scope` (which tenants the store holds: `adapter pull`,
`adapter reconcile`), `operations` (the metrics' figures), `console_views` (the console's
pages), and `database_url` (what `ADAPTER_DATABASE_URL` may say, and whether a SQLite
store's file exists: the settings and `adapter map`; it imports nothing of the adapter,
since the engine imports the settings).
"""

from __future__ import annotations
