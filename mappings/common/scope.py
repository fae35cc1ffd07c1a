"""What a record mapper knows of the encounter around the record it maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mappings.common import identity
from mappings.common.identity import Identity
from mappings.common.lookup import has_identifier, obj, resolve
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure, Provider
from mappings.jsontypes import Resource


@dataclass(frozen=True)
class EncounterScope:
    """The encounter a record belongs to, as far as the submission tells.

    A full encounter submission fills every field; a per-record submission
    knows only the encounter id and the patient's MRN (and no providers).
    """

    encounter_id: str
    patient_mrn: str
    providers: tuple[Provider, ...] = ()
    infusion: InfusionProcedure | None = None

    def provider(self, provider_id: str) -> Provider | None:
        return next((p for p in self.providers if p.provider_id == provider_id), None)

    def key(self, ctx: MappingContext, field: str, record_id: str) -> str:
        """The record key of one of this encounter's records (`identity.record_key`)."""
        return identity.record_key(ctx, field, self.encounter_id, record_id)

    def infusion_key(self, ctx: MappingContext) -> str | None:
        """The record key of the encounter's infusion, when it has one."""
        if self.infusion is None:
            return None
        return self.key(ctx, identity.PROCEDURE, self.infusion.procedure_id)

    def administration(self, ctx: MappingContext) -> Identity | None:
        """The ketamine/esketamine MedicationAdministration of this encounter, if one exists.

        The infusion mapper writes one only once the session started (R4 requires its
        time), so readings and alerts must not point at it before then.
        """
        key = self.infusion_key(ctx)
        if key is None or self.infusion is None or self.infusion.start is None:
            return None
        return identity.infusion_administration(ctx, key)

    def holds(
        self, res: Resource, resources: Sequence[Resource], ctx: MappingContext
    ) -> bool | None:
        """Whether `res` belongs to this encounter: True when its `encounter` is ours (by
        reference, or by the identifier of the Encounter it resolves to), False when it is
        visibly another one, None when that cannot be told (the Encounter is not there).
        Resources come back from an EHR with its own ids, so both ways are needed."""
        encounter = identity.encounter(ctx, self.encounter_id)
        reference = obj(res.get("encounter"))
        if reference.get("reference") == encounter.reference:
            return True
        target = resolve(resources, reference)
        if target is None:
            return None
        return has_identifier(target, encounter.system, encounter.value)
