"""One Provenance per submission: who authored it, who transmitted it, what it made."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource, term
from mappings.common.narrative import with_narrative
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue, Resource


def map_provenance(
    encounter_id: str,
    targets: Sequence[Resource],
    recorded: datetime,
    author_provider_id: str | None,
    ctx: MappingContext,
) -> Resource:
    """Provenance targeting every resource of the submission.

    The author is the clinician who performed the main act (when the record
    names one), on behalf of the clinic; the transmitter is this adapter.
    """
    out = resource(identity.provenance(ctx, encounter_id), ctx)
    out["target"] = [_ref(r) for r in targets]
    out["recorded"] = fhir_datetime(recorded)
    agents: list[JsonValue] = []
    organization = identity.organization(ctx).ref(ctx.clinic_name)
    if author_provider_id is not None:
        agents.append(
            {
                "type": term("records", "provenance-author", ctx),
                "who": identity.practitioner(ctx, author_provider_id).ref(),
                "onBehalfOf": organization,
            }
        )
    else:
        agents.append({"type": term("records", "provenance-author", ctx), "who": organization})
    device = identity.device(ctx)
    agents.append(
        {
            "type": term("records", "provenance-transmitter", ctx),
            "who": device.ref(ctx.adapter_name),
            "onBehalfOf": organization,
        }
    )
    out["agent"] = agents
    source = identity.encounter(ctx, encounter_id)
    out["entity"] = [{"role": "source", "what": {"identifier": source.identifier()}}]
    return with_narrative(out)


def _ref(res: Resource) -> JsonObject:
    return {"reference": f"{res['resourceType']}/{res['id']}"}
