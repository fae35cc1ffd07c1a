"""What a record mapper knows of the encounter around the record it maps."""

from __future__ import annotations

from dataclasses import dataclass

from mappings.contract import InfusionProcedure, Provider


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
