"""Every router of the service, in the order the app mounts them: the one list to read to
know which module answers a path.

The console (`adapter.console`) is mounted between the two groups. The FHIR routes' paths
overlap (`/fhir/{type}/_history` would read as `/fhir/{type}/{id}`, `/fhir/$export` as
`/fhir/{type}`), so their order matters: the first route that matches answers.
"""

from __future__ import annotations

from fastapi import APIRouter

from adapter.api import health
from adapter.api.admin import audit_events
from adapter.api.auth import smart_token
from adapter.api.clinic import encounters, patients, records, submissions
from adapter.api.fhir import bulk_export, conformance, everything, read, search, subscriptions
from adapter.metrics import route as metrics

SERVICE: tuple[APIRouter, ...] = (
    health.router,  # /health, /ready
    encounters.router,  # POST /clinic/encounters
    records.router,  # POST /clinic/{intake-screenings,infusions,vitals,medication-reviews}
    submissions.router,  # GET /clinic/submissions/{id}
    patients.router,  # GET /clinic/patients/{mrn}
    audit_events.router,  # GET /admin/AuditEvent
    smart_token.router,  # POST /auth/token, /fhir/.well-known/smart-configuration
    metrics.router,  # GET /metrics
)

FHIR: tuple[APIRouter, ...] = (
    bulk_export.router,  # $export kick-off (system, Patient, Group), status, files
    subscriptions.router,  # /fhir/Subscription: CRUD, $status, $events, $topic-list
    search.early,  # /fhir/{type}/_history, before it reads as /fhir/{type}/{id}
    conformance.router,  # /fhir/SearchParameter[/{id}]: the parameters that are ours
    read.router,  # /fhir/metadata, read, vread, instance history
    search.router,  # GET /fhir/{type}, POST /fhir/{type}/_search
    everything.router,  # $everything by GET or POST, Patient/{id}/{type} compartments
    read.fallback,  # whatever no route above took: 405 for a write, 404 for a read
)
