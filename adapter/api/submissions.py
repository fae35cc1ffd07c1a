"""`GET /clinic/submissions/{id}`: what became of a submission (see `adapter.api.status`)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from adapter.api.answer_models import SubmissionStatus
from adapter.api.deps import EngineDep, StoreReady, SubmissionReader
from adapter.api.status import submission_status
from adapter.errors import NotFound, StoreUnavailable

log = logging.getLogger(__name__)
router = APIRouter(prefix="/clinic", tags=["clinic"])

# Submission ids are database integers; anything longer than this cannot be one.
MAX_ID_DIGITS = 18


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
    number = _parse_id(submission_id)
    try:
        with engine.connect() as conn:
            found = submission_status(conn, caller.tenant, number)
    except SQLAlchemyError as exc:
        log.warning("clinic API: store error %s reading a submission", type(exc).__name__)
        raise StoreUnavailable("the store could not be read; retry shortly") from exc
    if found is None:
        # Another tenant's submission answers exactly like one that does not exist.
        raise NotFound("no such submission")
    return found


def _parse_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS):
        raise NotFound("no such submission")
    return int(text)
