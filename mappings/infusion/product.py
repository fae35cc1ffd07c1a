"""The drug product given: a Medication with its RxNorm and NDC codes and its batch, and back.

Sent when the infusion names its `drug_product`; the (es)ketamine MedicationAdministration
then refers to it (`medicationReference`) instead of carrying the drug's codes itself.
`code` holds the drug table's RxNorm codes and the NDC of the package (`userSelected`: the
clinic's), `batch` its lot number and expiry: what a Schedule III record keeps.
"""

from __future__ import annotations

from collections.abc import Sequence

from mappings import terminology
from mappings.common import identity
from mappings.common.builders import coding, fhir_date, resource
from mappings.common.lookup import by_identity, obj, objs
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure
from mappings.jsontypes import JsonObject, JsonValue, Resource

KIND = "drug-product"


def product_identity(ctx: MappingContext, procedure_key: str) -> identity.Identity:
    return identity.identity(ctx, "Medication", KIND, procedure_key)


def map_product(
    record: InfusionProcedure, procedure_key: str, ctx: MappingContext
) -> Resource | None:
    product = record.drug_product
    if product is None:
        return None
    out = resource(product_identity(ctx, procedure_key), ctx)
    codings: list[JsonValue] = [
        coding(c, ctx) for c in terminology.codes("drugs", record.medication)
    ]
    ndc: JsonObject = {
        "system": terminology.systems()["ndc"],
        "code": product.ndc,
        "userSelected": True,
    }
    codings.append(ndc)
    out["code"] = {"coding": codings, "text": record.medication}
    out["status"] = "active"
    out["batch"] = {
        "lotNumber": product.lot_number,
        "expirationDate": fhir_date(product.expiration_date),
    }
    return out


def unmap_product(
    resources: Sequence[Resource], procedure_key: str, ctx: MappingContext
) -> JsonObject | None:
    found = by_identity(resources, product_identity(ctx, procedure_key))
    if found is None:
        return None
    ndc_system = terminology.systems()["ndc"]
    ndc = next(
        (
            c.get("code")
            for c in objs(obj(found.get("code")).get("coding"))
            if c.get("system") == ndc_system
        ),
        None,
    )
    batch = obj(found.get("batch"))
    return {
        "ndc": ndc,
        "lot_number": batch.get("lotNumber"),
        "expiration_date": batch.get("expirationDate"),
    }
