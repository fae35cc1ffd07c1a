"""Whose rows a console page shows. An operator of one tenant sees that tenant's, whatever
the address asks; an operator of every tenant (a key with `"tenant": "*"`) sees every
tenant's, or the one chosen in the page's *Tenant* filter (`?tenant=`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Query

from adapter.api.deps import EngineDep, StoreReady
from adapter.console.access import SignedIn
from adapter.console.session import Operator
from adapter.store.console_views import known_tenants


@dataclass(frozen=True)
class View:
    operator: Operator
    tenant: str | None
    """The tenant shown; None: every tenant."""
    choices: tuple[str, ...]
    """The tenants to choose among (an operator of every tenant only)."""

    @property
    def query(self) -> str:
        """`?tenant=...` that keeps the choice on the next page; empty when none was made."""
        if not self.operator.of_every_tenant or self.tenant is None:
            return ""
        return f"?tenant={quote(self.tenant, safe='')}"


def viewing(
    operator: SignedIn,
    engine: EngineDep,
    _: StoreReady,
    tenant: Annotated[str, Query(max_length=64)] = "",
) -> View:
    if not operator.of_every_tenant:
        return View(operator, operator.tenant, ())
    with engine.connect() as conn:
        choices = tuple(known_tenants(conn))
    return View(operator, operator.reach(tenant.strip()), choices)


Viewing = Annotated[View, Depends(viewing)]
