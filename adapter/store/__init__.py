"""Persistence: the engine, the schema and its migrations, resources and their versions, the
search index, the outbox, ownership of ids, and the tenants' numbering."""

from __future__ import annotations
