"""What the commands and the service build from the settings: store, mapping context, EHR.

One place, so `adapter serve`, `adapter worker`, `adapter push` and `adapter ingest` cannot
drift apart in how they open the database or name the tenant.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import timedelta

from adapter.config import Settings
from adapter.ehr.client import FhirClient
from adapter.metrics.ehr import MeasuredEhr
from adapter.notify.deliverer import Deliverer, Policy
from adapter.notify.guard import allowed_hosts
from adapter.notify.sender import Sender
from adapter.protocols import tenant_protocol
from adapter.store.engine import Engine, check_connection, create_store_engine
from adapter.store.migrate import upgrade
from adapter.sync.pull.puller import Puller, PullOptions, PullSummary
from adapter.sync.push.worker import PushWorker, RetryLimit
from mappings.context import MappingContext


def open_store(settings: Settings) -> Engine:
    """The store's engine, migrated to the newest schema (safe to repeat at every start);
    `StoreUnavailable` naming the setting when the database cannot be reached."""
    engine = create_store_engine(settings.database_url)
    try:
        check_connection(engine)
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def mapping_context(settings: Settings, tenant: str | None = None) -> MappingContext:
    """The mapping context of `tenant` (default: `ADAPTER_TENANT`, the command line's) as
    the settings make it; a tenant the store already holds keeps the namespace the store
    fixed for it (`adapter.store.tenants.tenant_context`), which the ingest applies. Its
    protocol is the tenant's override file's (`ADAPTER_PROTOCOL_DIR`), else the shipped one."""
    tenant = tenant or settings.tenant
    return MappingContext(
        namespace=tenant_namespace(settings, tenant),
        tenant=tenant,
        protocol=tenant_protocol(settings.protocol_dir, tenant),
    )


def tenant_namespace(settings: Settings, tenant: str) -> str:
    """The identifier namespace the settings give a new `tenant`: `{ADAPTER_NAMESPACE}/
    {tenant}` (`ADAPTER_TENANT_NAMESPACES=per-tenant`, the default), so two clinics' equal
    MRNs name different patients; or `ADAPTER_NAMESPACE` itself when tenants share it."""
    base = settings.namespace.rstrip("/")
    return f"{base}/{tenant}" if settings.tenant_namespaces == "per-tenant" else base


def ehr_client(settings: Settings) -> FhirClient:
    """The configured EHR's client (`ConfigError` when none is configured)."""
    return FhirClient.from_settings(settings)


def worker_name(role: str) -> str:
    """A name unique to this process, for outbox leases: host, pid and role."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}"


def push_worker(settings: Settings, engine: Engine, client: FhirClient, role: str) -> PushWorker:
    return PushWorker(
        engine,
        MeasuredEhr(client),
        owner=worker_name(role),
        lease=timedelta(seconds=settings.worker_lease_seconds),
        concurrency=settings.worker_concurrency,
        retry_limit=RetryLimit(
            settings.push_retry_max_attempts, timedelta(hours=settings.push_retry_max_age_hours)
        ),
    )


def deliverer(settings: Settings, engine: Engine, role: str) -> Deliverer:
    """The subscriptions' deliverer, as the settings say (docs/operations.md)."""
    policy = Policy(
        timeout_seconds=settings.subscription_timeout_seconds,
        max_failures=settings.subscription_max_failures,
        max_wait_seconds=settings.subscription_retry_max_seconds,
    )
    return Deliverer(
        engine,
        Sender(allowed_hosts(settings.subscription_allowed_hosts)),
        owner=worker_name(f"{role}-notify"),
        policy=policy,
        concurrency=settings.subscription_concurrency,
    )


def puller(
    settings: Settings,
    engine: Engine,
    client: FhirClient,
    role: str,
    progress: Callable[[PullSummary], None] | None = None,
) -> Puller:
    options = PullOptions(
        page_size=settings.pull_page_size,
        overlap=timedelta(seconds=settings.pull_overlap_seconds),
        max_pages=settings.pull_max_pages,
        deletions=settings.pull_deletions,
    )
    return Puller(
        engine, MeasuredEhr(client), owner=worker_name(role), options=options, progress=progress
    )
