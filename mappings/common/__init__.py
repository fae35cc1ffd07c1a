"""FHIR building blocks every record kind shares.

    builders.py    datatypes: codings, quantities, periods, references, meta, a resource's head
    identity.py    deterministic identifiers and logical ids from the clinic's ids
    lookup.py      reading FHIR JSON: fields, identifiers, codings, parts found by identity
    narrative.py   the generated `text` of every resource
    people.py      Patient, clinic Organization, Practitioner(+Role), the adapter Device
    provenance.py  one Provenance per submission
    scope.py       what a record mapper knows of the encounter around the record
    bundle.py      mapped resources as a transaction Bundle of conditional updates
    serialize.py   canonical JSON bytes

A public subpackage: the adapter imports its modules directly (`mappings.common.lookup`).
"""

from __future__ import annotations

__all__: list[str] = []
