"""What in a session needs a clinician's eye under the clinic's protocol, as DetectedIssues.

`mappings.protocol.findings` says which rules the infusion breaks (a dose above the usual
range, observation shorter than required, a monitor without the required qualification);
each finding becomes one DetectedIssue coded by its rule (`protocol_alerts.csv`), with its
severity, the resources it implicates (the session's administration, else its order; the
Procedure; the monitoring Practitioner) and a detail naming the rule and its source.
What the protocol forbids never reaches here: ingest refuses it first (422).

These issues are derived data: the reverse mapping does not read them.
"""

from __future__ import annotations

from mappings.common import identity
from mappings.common.builders import fhir_datetime, resource, term
from mappings.common.scope import EncounterScope
from mappings.context import MappingContext
from mappings.contract import InfusionProcedure
from mappings.jsontypes import JsonValue, Resource
from mappings.protocol import Finding, findings

KIND = "infusion-protocol-issue"
"""Identifier kind: `<namespace>/sid/infusion-protocol-issue`, value
`<procedure key>~<rule>.<field>`."""
TABLE = "protocol_alerts"


def map_protocol_issues(
    record: InfusionProcedure, procedure_key: str, scope: EncounterScope, ctx: MappingContext
) -> list[Resource]:
    found = findings(record, scope.providers, ctx.protocol)
    return [_issue(f, record, procedure_key, scope, ctx) for f in found]


def _issue(
    finding: Finding,
    record: InfusionProcedure,
    procedure_key: str,
    scope: EncounterScope,
    ctx: MappingContext,
) -> Resource:
    part = f"{finding.rule}.{finding.field}"
    out = resource(identity.identity(ctx, "DetectedIssue", KIND, procedure_key, part), ctx)
    out["status"] = "final"
    out["code"] = term(TABLE, f"issue-{finding.rule}", ctx)
    out["severity"] = finding.severity
    out["patient"] = identity.patient(ctx, scope.patient_mrn).ref()
    when = next((t for t in (record.recovery_end, record.end, record.start) if t), None)
    if when is not None:
        out["identifiedDateTime"] = fhir_datetime(when)
    out["author"] = identity.device(ctx).ref(ctx.adapter_name)
    out["implicated"] = _implicated(finding, record, procedure_key, ctx)
    out["detail"] = finding.detail
    return out


def _implicated(
    finding: Finding, record: InfusionProcedure, procedure_key: str, ctx: MappingContext
) -> list[JsonValue]:
    session = (
        identity.infusion_administration(ctx, procedure_key)
        if record.start is not None
        else identity.infusion_request(ctx, procedure_key)
    )
    out: list[JsonValue] = [session.ref(), identity.infusion_procedure(ctx, procedure_key).ref()]
    if finding.rule == "monitor-not-qualified" and record.monitored_by is not None:
        out.append(identity.practitioner(ctx, record.monitored_by).ref())
    return out
