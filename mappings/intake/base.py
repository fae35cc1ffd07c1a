"""What every resource of one intake screening shares: identity, patient, encounter, time.

An intake screening becomes many resources (responses, scores, findings, alerts); they
all take their identity from the screening's record key (`<encounter_id>~<screening_id>`)
plus a part name, so re-mapping the same screening always gives the same ids and a part
never collides with another.
"""

from __future__ import annotations

from dataclasses import dataclass

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource
from mappings.common.identity import Identity
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import IntakeScreening
from mappings.jsontypes import JsonObject, Resource

KIND = "intake"
"""Identifier kind: `<namespace>/sid/intake`, value `<screening key>~<part>`."""

CHECKLIST = "checklist"
"""Part name of the checklist response, the one response every screening has."""


def intake_identity(
    ctx: MappingContext, resource_type: str, screening_key: str, part: str
) -> Identity:
    return identity.identity(ctx, resource_type, KIND, screening_key, part)


def response_identity(ctx: MappingContext, screening_key: str, part: str) -> Identity:
    return intake_identity(ctx, "QuestionnaireResponse", screening_key, part)


def link_id(table: str, key: str) -> str:
    """A response item's linkId: `/` + its preferred code (`/44250-9`, as US Core does)."""
    return "/" + terminology.code(table, key).code


@dataclass(frozen=True)
class IntakeFrame:
    """One screening in its encounter, with the references its resources repeat."""

    record: IntakeScreening
    scope: EncounterScope
    ctx: MappingContext

    @property
    def key(self) -> str:
        """The screening's record key, which names its resources."""
        return self.scope.key(self.ctx, identity.SCREENING, self.record.screening_id)

    def identity(self, resource_type: str, part: str) -> Identity:
        return intake_identity(self.ctx, resource_type, self.key, part)

    def head(self, resource_type: str, part: str) -> Resource:
        return resource(self.identity(resource_type, part), self.ctx)

    def response_ref(self, part: str) -> JsonObject:
        return response_identity(self.ctx, self.key, part).ref()

    @property
    def patient(self) -> JsonObject:
        return identity.patient(self.ctx, self.scope.patient_mrn).ref()

    @property
    def encounter(self) -> JsonObject:
        return identity.encounter(self.ctx, self.scope.encounter_id).ref()

    @property
    def adapter(self) -> JsonObject:
        """The adapter Device: the author of the alerts it computes."""
        return identity.device(self.ctx).ref()

    @property
    def completed(self) -> str:
        return fhir_datetime(self.record.completed_at)

    @property
    def planned_request(self) -> JsonObject | None:
        """The ketamine order of the encounter's infusion, when the encounter has one."""
        key = self.scope.infusion_key(self.ctx)
        if key is None:
            return None
        return identity.infusion_request(self.ctx, key).ref()
