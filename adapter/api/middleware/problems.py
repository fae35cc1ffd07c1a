"""Every error answer as an RFC 9457 problem detail, and nothing more than the caller needs.

- `AdapterError`s answer with their own status, problem detail and headers.
- Starlette's HTTP errors (unknown path 404, 405) and FastAPI's request validation errors
  become problem details too; the latter name the field but never echo its input.
- Anything else is caught by `UnhandledErrors`, the outermost middleware: a bare 500
  problem, and one log line naming the exception class only. Starlette's own error
  middleware would re-raise it to the server, which logs the traceback, and a database
  error's message can hold the statement's parameters, i.e. clinical data.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.errors import PROBLEM_TYPE_BASE, AdapterError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
FHIR_FACES = ("/fhir/", "/admin/")


def add_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AdapterError, _adapter_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def problem(status: int, detail: str, **extra: object) -> dict[str, object]:
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    } | extra


async def _adapter_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdapterError)  # registered for AdapterError only
    return JSONResponse(
        exc.problem_detail(), exc.status_code, headers=exc.headers(), media_type=PROBLEM_JSON
    )


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # registered for HTTPException only
    body = problem(exc.status_code, str(exc.detail))
    return JSONResponse(body, exc.status_code, headers=exc.headers, media_type=PROBLEM_JSON)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # registered for it only
    errors = [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
        for error in exc.errors()
    ]
    body = problem(422, "the request is not valid", errors=errors)
    return JSONResponse(body, 422, media_type=PROBLEM_JSON)


class UnhandledErrors:
    """Pure-ASGI middleware: an unexpected exception becomes a 500 problem, never a trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal has_started
            has_started = has_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            # The route's template, not the path: a path may carry an identifier.
            route = getattr(scope.get("route"), "path", "(no route)")
            request_id = str(scope.get("state", {}).get("request_id", "-"))
            log.error(
                "unhandled %s in %s %s (request %s)",
                type(exc).__name__,
                scope["method"],
                route,
                request_id,
            )
            if not has_started:
                await _send_500(send, scope["path"], request_id)


async def _send_500(send: Send, path: str, request_id: str) -> None:
    """A bare 500 naming only the request id (`X-Request-Id`), to find the log line by."""
    detail = f"the adapter failed to handle the request (request id {request_id})"
    if path.startswith(FHIR_FACES):
        # The FHIR faces answer errors as OperationOutcomes, this one too.
        issue = {"severity": "fatal", "code": "exception", "diagnostics": detail}
        body: dict[str, object] = {"resourceType": "OperationOutcome", "issue": [issue]}
        media = FHIR_JSON
    else:
        body = problem(500, detail, request_id=request_id)
        body["type"] = PROBLEM_TYPE_BASE + "internal-error"
        media = PROBLEM_JSON
    data = json.dumps(body).encode()
    headers = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(data)).encode()),
    ]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": data})
