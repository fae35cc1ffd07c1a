"""Drug names to RxNorm: the CodeableConcept of a medication or an allergen, and back.

A code the clinic sent wins and is marked `userSelected`, so the reverse mapping
tells it apart from one this adapter looked up in `medications.csv` by name (which
the record never held). The name is always the concept's text, so it comes back
exactly as sent. Table rows marked `uncertain` feed the interaction screen but are
never sent as a coding: a wrong RxNorm code in an EHR's medication list is worse
than none.
"""

from __future__ import annotations

from mappings import terminology
from mappings.common.builders import coding, concept
from mappings.common.lookup import obj, objs, str_field
from mappings.context import MappingContext
from mappings.jsontypes import JsonObject, JsonValue
from mappings.terminology import Code

TABLE = "medications"


def rxnorm_system() -> str:
    return terminology.systems()["rxnorm"]


def normalised(name: str) -> str:
    """The table key form of a drug name: case-folded, single-spaced."""
    return " ".join(name.casefold().split())


def table_code(name: str) -> Code | None:
    """The ingredient for a name: the whole name, else its first word ("lorazepam 1 mg")."""
    name_key = normalised(name)
    for key in (name_key, name_key.partition(" ")[0]):
        if key and terminology.has(TABLE, key):
            return terminology.code(TABLE, key)
    return None


def drug_concept(name: str, rxnorm: str | None, ctx: MappingContext) -> JsonObject:
    """RxNorm from the clinic, else from our table by name, else text only."""
    if rxnorm is not None:
        return {"coding": [_sent_coding(rxnorm, ctx)], "text": name}
    found = table_code(name)
    if found is None or found.certainty == "uncertain":
        return {"text": name}
    return concept([found], ctx, name)


def _sent_coding(rxnorm: str, ctx: MappingContext) -> JsonObject:
    """The clinic's code, with our display when our table knows it for sure."""
    out: JsonObject = {"system": rxnorm_system(), "code": rxnorm}
    key = terminology.key_for(TABLE, rxnorm_system(), rxnorm)
    known = terminology.code(TABLE, key) if key is not None else None
    if known is not None and known.certainty != "uncertain":
        out = coding(known, ctx)
    out["userSelected"] = True
    return out


def is_coded(drug: JsonObject) -> bool:
    return bool(objs(drug.get("coding")))


def sent_rxnorm(drug: JsonValue) -> str | None:
    """The RxNorm code the clinic sent (the `userSelected` one), if any."""
    for found in objs(obj(drug).get("coding")):
        if found.get("system") == rxnorm_system() and found.get("userSelected") is True:
            return str_field(found, "code")
    return None


def ingredient_codes(name: str, rxnorm: str | None) -> list[str]:
    """The RxNorm codes to screen a drug by: the clinic's, and our table's for its name.

    Both, because a clinic may send a product code (SCD) that no ingredient-level
    class lists, while its name still finds the ingredient.
    """
    found = table_code(name)
    codes = [rxnorm] if rxnorm is not None else []
    if found is not None and found.code not in codes:
        codes.append(found.code)
    return codes
