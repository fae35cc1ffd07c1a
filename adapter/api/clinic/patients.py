"""`GET /clinic/patients/{mrn}`: the patient's current record, clinic's and EHR's items alike
(assembled by `adapter.sync.patient_view`).

An MRN outside the contract's id pattern, an unknown one and another tenant's patient all
answer the same 404, as `GET /clinic/submissions/{id}` does: the answer never tells which.
The audit trail records the read as `Patient/<logical id>`, never the MRN of the path.
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter, Request

from adapter.api.clinic.patient_schema import PatientRecordView
from adapter.api.deps import EngineDep, PatientReader, SettingsDep, StoreReady
from adapter.api.middleware.audit import AUDIT_TARGET
from adapter.errors import NotFound, StoreUnavailable
from adapter.runtime import mapping_context
from adapter.store.engine import StoreError
from adapter.store.tenants import tenant_context
from adapter.sync.patient_view import patient_view
from mappings.contract.fields import ID_PATTERN
from mappings.jsontypes import JsonObject

log = logging.getLogger(__name__)
router = APIRouter(prefix="/clinic", tags=["clinic"])

_MRN = re.compile(ID_PATTERN)
NO_SUCH_PATIENT = "no such patient"


@router.get(
    "/patients/{mrn}",
    response_model=PatientRecordView,
    responses={404: {"description": "No such patient for the caller's clinic"}},
)
def get_patient(
    mrn: str,
    request: Request,
    caller: PatientReader,
    _: StoreReady,
    settings: SettingsDep,
    engine: EngineDep,
) -> JsonObject:
    # A sync route: FastAPI runs it in a worker thread, so the blocking read is fine here.
    if not _MRN.fullmatch(mrn):
        raise NotFound(NO_SUCH_PATIENT)
    ctx = mapping_context(settings, caller.tenant)
    try:
        with engine.connect() as conn:
            found = patient_view(conn, tenant_context(conn, ctx), mrn)
    except StoreError as exc:
        log.warning("clinic API: store error %s reading a patient", type(exc).__name__)
        raise StoreUnavailable("the store could not be read; retry shortly") from exc
    if found is None:
        raise NotFound(NO_SUCH_PATIENT)
    patient = found["patient"]
    if isinstance(patient, dict):
        setattr(request.state, AUDIT_TARGET, patient["fhir"])
    log.info(
        "clinic API: key %s read a patient record, %d medications, %d allergies",
        caller.key_id,
        _count(found["medications"]),
        _count(found["allergies"]),
    )
    return found


def _count(items: object) -> int:
    return len(items) if isinstance(items, list) else 0
