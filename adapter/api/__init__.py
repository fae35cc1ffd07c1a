"""The HTTP API: thin routers that parse, authorise and hand over to the store and sync engine."""

from __future__ import annotations
