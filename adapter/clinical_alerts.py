"""The clinic's protocol and alerts at the moment a document is accepted.

Two checks around the mapping, both per tenant (its protocol, its patient's stored Flags):

- `refuse_forbidden`: what the protocol forbids (a dose above a hard ceiling, an
  esketamine dose the label does not allow) refuses the document whole (422), each error
  naming the field and the rule (`mappings.protocol.forbidden`);
- `settle_flags`: the patient's stored Flags that the document's assessments end, and the
  document's own Flags that newer stored ones end (`mappings.alerts.settle`), read in the
  accepting transaction so that two documents of one patient cannot miss each other.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapter.store.engine import Connection
from adapter.store.patient_rows import Wanted, patient_resources
from mappings.alerts import Settled, settle
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure
from mappings.errors import ContractViolation
from mappings.jsontypes import Resource
from mappings.protocol import forbidden

_FLAGS = Wanted(("Flag",))


def refuse_forbidden(infusion: InfusionProcedure | None, ctx: MappingContext, at: str) -> None:
    """`ContractViolation` naming every field of `infusion` the tenant's protocol forbids
    (`at`: the infusion's path in the document, `infusion.` or empty)."""
    if infusion is None:
        return
    errors = forbidden(infusion, ctx.protocol, at)
    if errors:
        raise ContractViolation(errors)


def settle_flags(
    conn: Connection, ctx: MappingContext, patient_key: str, mapped: Sequence[Resource]
) -> Settled:
    """The document's resources with its Flags settled, and the stored Flags it ends."""
    stored = [row.content for row in patient_resources(conn, ctx.tenant, patient_key, [_FLAGS])]
    return settle(mapped, stored, ctx)
