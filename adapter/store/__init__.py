"""Persistence: the database engine now; resources, versions and the outbox as they are built."""

from __future__ import annotations
