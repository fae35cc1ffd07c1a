"""Who may do what on the console: the signed-in operator, the scope an action needs, the
CSRF token every form carries. Refusals are pages of their own (403), never a redirect
that would hide them; a visitor not signed in is sent to the sign-in page."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from adapter.console.session import CSRF_FIELD, Operator, current_operator
from adapter.errors import ConsoleRefused, NotSignedIn

SIGN_IN_PATH = "/console/sign-in"


async def signed_in(request: Request) -> Operator:
    found = current_operator(request)
    if found is None:
        raise NotSignedIn
    return found


SignedIn = Annotated[Operator, Depends(signed_in)]


async def acting(request: Request, operator: Operator, scope: str) -> FormData:
    """The submitted form, once its CSRF token matches the session's and the operator
    holds `scope`."""
    form = await request.form()
    if not hmac.compare_digest(str(form.get(CSRF_FIELD, "")), operator.csrf):
        raise ConsoleRefused("the form's CSRF token is missing or wrong: reload the page")
    if not operator.may(scope):
        raise ConsoleRefused(f"this needs the scope {scope}")
    return form


def add_console_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    async def to_sign_in(_: Request, __: Exception) -> Response:
        return RedirectResponse(SIGN_IN_PATH, status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        reason = exc.reason if isinstance(exc, ConsoleRefused) else "refused"
        context = {"reason": reason, "operator": current_operator(request)}
        return templates.TemplateResponse(request, "refused.html", context, status_code=403)

    app.add_exception_handler(NotSignedIn, to_sign_in)
    app.add_exception_handler(ConsoleRefused, refused)
