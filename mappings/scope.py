"""What a record mapper knows of the encounter around the record it maps."""

from __future__ import annotations

from dataclasses import dataclass

from mappings import identity
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure, Provider
from mappings.identity import Identity


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

    def administration(self, ctx: MappingContext) -> Identity | None:
        """The ketamine/esketamine MedicationAdministration of this encounter, if one exists.

        The infusion mapper writes one only once the session started (R4 requires its
        time), so readings and alerts must not point at it before then.
        """
        infusion = self.infusion
        if infusion is None or infusion.start is None:
            return None
        return identity.infusion_administration(ctx, infusion.procedure_id)
