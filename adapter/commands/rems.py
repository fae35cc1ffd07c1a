"""`adapter rems PATIENT_MRN SESSION`: the Spravato REMS Patient Monitoring record of one
esketamine session, as a printable HTML page.

The session is the clinic's `encounter_id`; it must belong to the patient, within the
tenant (`--tenant`, default `ADAPTER_TENANT`): another clinic's patient or session is not
found, and says nothing of its existence. The page is written to `--output` (or stdout).
Exit 1 when the store holds no such session or no REMS record for it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from adapter.commands.exits import Exit
from adapter.config import get_settings
from adapter.runtime import mapping_context, open_store
from adapter.store.encounter_rows import current_rows, encounter_patient
from adapter.store.engine import Connection
from adapter.store.patient_rows import current_patient
from adapter.store.tenants import tenant_context
from mappings.care import REMS_FORM, REMS_KIND, render_rems_page
from mappings.common import identity
from mappings.context import MappingContext
from mappings.jsontypes import Resource

if TYPE_CHECKING:
    from adapter.commands import Subparsers


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "rems",
        help="print the Spravato REMS Patient Monitoring record of an esketamine session (HTML)",
        description="The REMS Patient Monitoring Form of one esketamine session, every item "
        "filled in from the stored QuestionnaireResponse, as a printable HTML page.",
    )
    parser.add_argument("patient_mrn", metavar="PATIENT_MRN", help="the clinic's MRN")
    parser.add_argument("session", metavar="SESSION", help="the session's encounter_id")
    parser.add_argument("--tenant", help="the clinic (default: ADAPTER_TENANT)")
    parser.add_argument("--output", type=Path, help="write the page here (default: stdout)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = open_store(settings)
    try:
        with engine.connect() as conn:
            ctx = tenant_context(conn, mapping_context(settings, args.tenant))
            found = _record(conn, ctx, args.patient_mrn, args.session)
    finally:
        engine.dispose()
    if isinstance(found, str):
        sys.stderr.write(f"rems: {found}\n")
        return Exit.PROBLEMS
    page = render_rems_page(*found)
    if args.output is None:
        sys.stdout.write(page)
    else:
        args.output.write_text(page, encoding="utf-8")
    return Exit.OK


def _record(
    conn: Connection, ctx: MappingContext, mrn: str, session: str
) -> tuple[Resource, Resource, Resource | None] | str:
    """The Questionnaire, the session's response and the Patient; or why there are none."""
    if encounter_patient(conn, ctx.tenant, identity.encounter(ctx, session)) != mrn:
        # The MRN is not repeated: a patient identifier stays out of every diagnostic.
        return f"no session {session} of that patient in tenant {ctx.tenant}"
    response = _one(conn, ctx, "QuestionnaireResponse", REMS_KIND, session, mrn)
    form = _one(conn, ctx, "Questionnaire", "questionnaire", f"{ctx.tenant}~{REMS_FORM}", None)
    if response is None or form is None:
        return f"session {session} has no REMS record (not an esketamine session?)"
    patient = current_patient(conn, ctx.tenant, identity.patient(ctx, mrn))
    return form, response, None if patient is None else patient.content


def _one(
    conn: Connection,
    ctx: MappingContext,
    resource_type: str,
    kind: str,
    value: str,
    mrn: str | None,
) -> Resource | None:
    system = identity.system(ctx, kind)
    rows = current_rows(conn, ctx.tenant, [resource_type], system, value, patient_key=mrn)
    if not rows:
        return None
    loaded = json.loads(rows[0].content)
    return loaded if isinstance(loaded, dict) else None
