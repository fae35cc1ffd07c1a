"""Alembic environment: runs on the connection `adapter.store.migrate` hands over.

Run by the service at startup (`adapter serve` migrates before it listens) and by
`adapter migrate`; plain `alembic` works too with `-x url=<database URL>`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from adapter.store.audit_upkeep import is_audit_partition
from adapter.store.schema import metadata


def _listed(name: str | None, kind: str, parents: object) -> bool:
    """Autogenerate compares what the schema lists: not the audit table's partitions."""
    return not (kind == "table" and is_audit_partition(name))


connection = context.config.attributes.get("connection")
if connection is None:
    url = context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as own:
        context.configure(
            connection=own,
            target_metadata=metadata,
            render_as_batch=True,
            include_name=_listed,
        )
        context.run_migrations()
else:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,
        include_name=_listed,
    )
    with context.begin_transaction():
        context.run_migrations()
