"""The console's templates and static files, and `page()`, which renders one with what
every page shows (the operator, their CSRF token, the navigation)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from adapter.console.session import CSRF_FIELD, Operator

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
NAVIGATION = (
    ("overview", "/console", "Overview"),
    ("dead-letters", "/console/dead-letters", "Dead letters"),
    ("conflicts", "/console/conflicts", "Conflicts"),
    ("submissions", "/console/submissions", "Submissions"),
    ("subscriptions", "/console/subscriptions", "Subscriptions"),
    ("reconcile", "/console/reconcile", "Reconcile"),
    ("audit", "/console/audit", "Audit"),
)


def page(
    request: Request, name: str, operator: Operator | None, status: int = 200, **context: Any
) -> HTMLResponse:
    context |= {
        "operator": operator,
        "csrf_field": CSRF_FIELD,
        "navigation": NAVIGATION,
        "current": name.removesuffix(".html").replace("_", "-"),
    }
    return templates.TemplateResponse(request, name, context, status_code=status)


def ago(moment: datetime | None) -> str:
    """`3 min ago`, `2 h ago`: how long before now."""
    if moment is None:
        return "never"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"


templates.env.filters["ago"] = ago
