"""`GET /clinic/submissions/{id}`: what became of a submission (see `adapter.api.clinic.status`).

`{id}` is the submission's public id, as the receipt gave it: 32 hex digits, or for a
submission received before migration 0007 its number (those status URLs keep working).
"""

from __future__ import annotations

import logging
import re

from fastapi import APIRouter

from adapter.api.clinic.answer_models import SubmissionStatus
from adapter.api.clinic.status import submission_status
from adapter.api.deps import EngineDep, StoreReady, SubmissionReader
from adapter.errors import NotFound, StoreUnavailable
from adapter.store.engine import StoreError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/clinic", tags=["clinic"])

# What a public id can look like; anything else is not one (and is not looked up).
PUBLIC_ID = re.compile(r"[0-9a-f]{32}|[0-9]{1,18}")


# The model checks every answer on its way out (and `/openapi.json` publishes it).
@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionStatus,
    response_model_exclude_unset=True,
)
def get_submission(
    submission_id: str, caller: SubmissionReader, _: StoreReady, engine: EngineDep
) -> dict[str, object]:
    # A sync route: FastAPI runs it in a worker thread, so the blocking read is fine here.
    if not PUBLIC_ID.fullmatch(submission_id):
        raise NotFound("no such submission")
    try:
        with engine.connect() as conn:
            found = submission_status(conn, caller.tenant, submission_id)
    except StoreError as exc:
        log.warning("clinic API: store error %s reading a submission", type(exc).__name__)
        raise StoreUnavailable("the store could not be read; retry shortly") from exc
    if found is None:
        # Another tenant's submission answers exactly like one that does not exist.
        raise NotFound("no such submission")
    return found
