"""The adapter's settings: read from `ADAPTER_*` environment variables, checked once.

`get_settings()` builds a fresh `Settings` from the environment; nothing is read at import
time, so tests construct `Settings(...)` directly or set variables before calling it. Every
field has a safe default (SQLite in a local file, the local sandbox as EHR). Values that
cannot work are refused with a `ConfigError` naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapter.errors import ConfigError
from adapter.protocols import check_protocol_dir
from adapter.store.database_url import usable_database_url

ENV_PREFIX = "ADAPTER_"
DEFAULT_DATABASE_URL = "sqlite:///./adapter.db"
DEFAULT_EHR_BASE_URL = "http://127.0.0.1:8090/fhir"
DEFAULT_NAMESPACE = "https://fhir.example-clinic.org"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# About 3,000 resources: accepted in well under a second on a quiet machine
# (docs/benchmarks.md, "Large documents").
DEFAULT_MAX_READINGS_PER_DOCUMENT = 1000
# The most entries one Bundle takes to the EHR; an encounter is about 50, a document at
# the readings limit about 3,000 (sent as several transactions: `adapter.ehr.chunks`).
DEFAULT_MAX_BUNDLE_ENTRIES = 200
DEFAULT_IDEMPOTENCY_TTL_HOURS = 24.0
DEFAULT_SMART_SCOPE = "system/*.read system/*.write"
DEFAULT_JWT_ALGORITHMS = "RS256,RS384,ES256,ES384"
DEFAULT_TOKEN_SIGNING_KEY_FILE = "./adapter-token-key.pem"
DEFAULT_EXPORT_DIR = "./exports"
# `none` and HMAC never: with a public JWKS, an HMAC "secret" is known to everybody.
ASYMMETRIC_JWT_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Values that may hold a password are never echoed back in an error message.
SECRET_FIELDS = frozenset(
    {
        "database_url",
        "ehr_auth_password",
        "ehr_auth_token",
        "ehr_auth_client_secret",
        # A webhook URL often holds its own token (Slack's, Teams').
        "alert_webhook_url",
    }
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
EhrAuthKind = Literal["none", "basic", "bearer", "client_credentials", "smart_backend"]
# The fields each outbound auth kind cannot work without.
REQUIRED_AUTH_FIELDS: dict[EhrAuthKind, tuple[str, ...]] = {
    "none": (),
    "basic": ("ehr_auth_username", "ehr_auth_password"),
    "bearer": ("ehr_auth_token",),
    "client_credentials": ("ehr_auth_client_id", "ehr_auth_client_secret"),
    "smart_backend": ("ehr_auth_client_id", "ehr_auth_private_key_file", "ehr_auth_key_id"),
}


class Settings(BaseSettings):
    """Everything the adapter can be told from outside, with its default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    database_url: Annotated[str, Field(repr=False)] = DEFAULT_DATABASE_URL
    """SQLAlchemy URL of the store; SQLite by default, `postgresql+psycopg://...` to scale."""
    ehr_base_url: str = DEFAULT_EHR_BASE_URL
    """FHIR base URL of the EHR to push to and pull from; empty string: no EHR configured."""
    ehr_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    ehr_max_bundle_entries: Annotated[int, Field(ge=10, le=10_000)] = DEFAULT_MAX_BUNDLE_ENTRIES
    """The most entries one transaction to the EHR holds; a larger one is cut into several,
    sent in dependency order."""
    ehr_retry_after_max_seconds: Annotated[float, Field(ge=0, le=86400)] = 300.0
    """The longest wait a `Retry-After` from the EHR (on 429 or 503) is kept to."""
    ehr_ca_bundle: str = ""
    """PEM file of the CAs to trust for the EHR's TLS certificate; empty: the system's."""
    ehr_auth: EhrAuthKind = "none"
    """How the adapter authenticates to the EHR; each kind needs the fields listed for it."""
    ehr_auth_username: str = ""
    ehr_auth_password: SecretStr = SecretStr("")
    ehr_auth_token: SecretStr = SecretStr("")
    ehr_auth_client_id: str = ""
    ehr_auth_client_secret: SecretStr = SecretStr("")
    ehr_auth_token_url: str = ""
    """OAuth2 token endpoint; empty: discovered from the EHR's smart-configuration."""
    ehr_auth_scope: str = ""
    ehr_auth_private_key_file: str = ""
    """PEM private key (RSA >= 2048 bits or EC P-384) signing SMART client assertions."""
    ehr_auth_key_id: str = ""
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    namespace: str = DEFAULT_NAMESPACE
    """Base URI of our identifier systems. A tenant's namespace is fixed in the store at its
    first document (adapter.store.tenants): a change applies to new tenants only."""
    tenant: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "default"
    """The tenant of `adapter ingest` and `adapter map` (the API's comes from the caller)."""
    tenant_namespaces: Literal["shared", "per-tenant"] = "per-tenant"
    """`per-tenant` (the safe default): each new tenant's identifiers live under
    `{namespace}/{tenant}`. `shared`: new tenants share `{namespace}`, and an id first
    written by one tenant is refused to the others (adapter.identity_rules)."""
    protocol_dir: str = ""
    """Folder of per-tenant protocol overrides (`<tenant>.toml`, docs/protocol.md); empty:
    every tenant has the shipped protocol. Every file is checked when the settings are read."""
    log_level: LogLevel = "INFO"
    web_workers: Annotated[int, Field(ge=1, le=64)] = 1
    """HTTP server processes (one per core serves reads fastest; see docs/benchmarks.md)."""
    web_timeout_seconds: Annotated[float, Field(ge=1, le=3600)] = 30.0
    """With several web processes: one whose event loop has not run for this long (hung)
    is killed and replaced."""
    read_threads: Annotated[int, Field(ge=1, le=64)] = 4
    """Threads per web process running `/fhir` searches, histories and `$everything`
    (and reads by id on a server database); more queue on the event loop."""
    run_worker: bool = True
    """Run the push worker inside the service (off: run `adapter worker` processes instead)."""
    worker_lease_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    """How long a claimed outbox entry stays with its worker before another may take it."""
    worker_concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    """Bundles a push worker keeps with the EHR at once (entries independent of each other)."""
    push_retry_max_attempts: Annotated[int, Field(ge=1, le=100_000)] = 20
    """Attempts an entry failing retryably gets, at least, before it becomes a dead letter."""
    push_retry_max_age_hours: Annotated[float, Field(ge=0, le=24 * 365)] = 72.0
    """Hours since an entry was queued, at least, before a retryable failure makes it a dead
    letter (both this and the attempts must be reached)."""
    pull_interval_seconds: Annotated[float, Field(ge=0, le=7 * 24 * 3600)] = 300.0
    """How often the service pulls changes from the EHR; 0: never (`adapter pull` only)."""
    pull_page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    """`_count` asked of the EHR per page when pulling (the EHR may answer with fewer)."""
    pull_overlap_seconds: Annotated[float, Field(ge=0, le=86400)] = 60.0
    """How far before its cursor a pull reads again (changes an EHR committed late)."""
    pull_max_pages: Annotated[int, Field(ge=1)] = 1000
    """Pages one pull search may take before it is stopped (and resumed next pull)."""
    pull_deletions: bool = True
    """Read the EHR's `_history` for deletions, where its CapabilityStatement offers it."""
    max_body_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_BODY_BYTES
    audit_retention_days: Annotated[int, Field(ge=0, le=36_500)] = 2192
    """Days the audit trail keeps a row (six years by default); 0: every row for ever."""
    max_readings_per_document: Annotated[int, Field(ge=1, le=10_000)] = (
        DEFAULT_MAX_READINGS_PER_DOCUMENT
    )
    """Vital-sign readings one encounter document may carry (`vitals`); more are refused
    with 422 naming `vitals`, before anything is mapped or stored."""
    api_keys_file: str = ""
    """JSON list of the clinic API's keys ({key, tenant, scopes}); empty: every call is refused."""
    idempotency_ttl_hours: Annotated[float, Field(gt=0, le=24 * 30)] = DEFAULT_IDEMPOTENCY_TTL_HOURS
    """How long an `Idempotency-Key` and its stored answer are kept, per tenant."""
    jwks_url: str = ""
    """JWKS (http(s) URL or file) verifying JWT access tokens; empty: API keys only."""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: str = DEFAULT_JWT_ALGORITHMS
    """Comma-separated allow-list of the tokens' `alg`; asymmetric algorithms only."""
    jwt_tenant_claim: Annotated[str, Field(min_length=1)] = "tenant"
    jwt_leeway_seconds: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Clock skew allowed on `exp`, `nbf` and `iat`."""
    audit_queue_size: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    """Audit records waiting to be written before requests wait for the writer."""
    paging_secret: Annotated[str, Field(repr=False)] = ""
    """Key signing the FHIR API's paging tokens; empty: a random one per process."""
    search_max_query_length: Annotated[int, Field(ge=256)] = 8192
    """Characters a `/fhir` search's query string may hold (as sent); longer is 400."""
    search_max_parameters: Annotated[int, Field(ge=1)] = 32
    """Parameters one `/fhir` search may give (repetitions counted); more is 400."""
    search_max_repeats: Annotated[int, Field(ge=1)] = 8
    """Times one parameter may be repeated in a `/fhir` search; more is 400."""
    search_max_alternatives: Annotated[int, Field(ge=1)] = 100
    """Comma-separated values one parameter may hold; more is 400."""
    search_max_includes: Annotated[int, Field(ge=0)] = 8
    """`_include` and `_revinclude` parameters one search may give together; more is 400."""
    search_max_included: Annotated[int, Field(ge=1)] = 1000
    """Resources a page's `_include`/`_revinclude` may add; more is 400 (ask a smaller page)."""
    statement_timeout_ms: Annotated[int, Field(ge=10, le=3_600_000)] = 2000
    """Time budget of each statement of a `/fhir` read; past it the request is 422 (writes
    by the push worker, pull and ingest have no such budget)."""
    smart_clients_file: str = ""
    """JSON list of the SMART Backend Services clients ({client_id, tenant, scopes, jwks or
    jwks_url}) the token endpoint serves; empty: no token endpoint."""
    token_signing_key_file: Annotated[str, Field(min_length=1)] = DEFAULT_TOKEN_SIGNING_KEY_FILE
    """PEM private key (EC P-384) signing the access tokens the token endpoint issues; made
    (owner-only) at the first start with SMART clients if absent. Rotate: docs/operations.md."""
    export_groups_file: str = ""
    """JSON list of the Groups `Group/{id}/$export` may name beside each tenant's
    `all-patients` ({tenant, id, patients}); empty: those only."""
    export_dir: Annotated[str, Field(min_length=1)] = DEFAULT_EXPORT_DIR
    """Folder holding the Bulk Data `$export` NDJSON files until they expire."""
    export_retention_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    """How long an export's files (and its status) are kept after it completes."""
    export_max_jobs_per_client: Annotated[int, Field(ge=1, le=100)] = 2
    """Exports a client may have running at once; one more kick-off is answered 429."""
    export_file_max_resources: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    """Resources per NDJSON file: a type with more is split over several files."""

    subscription_allowed_hosts: str = ""
    """Comma-separated hosts (names or IP addresses) a Subscription's endpoint may name even
    over plain `http`, or when it resolves to a loopback, link-local or private address;
    every other endpoint must be `https` to a public address."""
    subscription_max_failures: Annotated[int, Field(ge=1, le=10_000)] = 10
    """Failed deliveries in a row after which a subscription goes to `error` (an audit row
    `subscription-error` and an ALERT log line tell the operator)."""
    subscription_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    """The longest a receiver may take to answer one notification (a subscription's own
    backport timeout may ask for less)."""
    subscription_retry_max_seconds: Annotated[float, Field(ge=1, le=86400)] = 600.0
    """The longest wait between two tries of a failing receiver (its Retry-After included)."""
    subscription_concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    """Receivers the worker sends to at once (one subscription's notifications stay in order)."""
    subscription_retention_days: Annotated[int, Field(ge=0, le=36_500)] = 30
    """Days a sent notification is kept (for `$events`) before the upkeep deletes it; never
    an unsent one. 0: every one for ever."""

    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per log line (time, level, logger, message, request id)."""
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """A port of its own serving /metrics without a credential; 0: /metrics on the service's
    port, for callers holding `admin/metrics.read`."""
    metrics_host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    """Where the metrics port listens."""
    alert_webhook_url: str = ""
    """Receives a JSON message when something needs a person (adapter.alerts); empty: none."""
    alert_interval_seconds: Annotated[float, Field(ge=1, le=7 * 24 * 3600)] = 900.0
    """At most one message per kind of alert in this long."""
    alert_check_seconds: Annotated[float, Field(gt=0, le=3600)] = 15.0
    """How often the store and the EHR are looked at for alerts."""
    alert_ehr_down_seconds: Annotated[float, Field(ge=0, le=7 * 24 * 3600)] = 300.0
    """The EHR unreachable this long raises an alert."""
    alert_oldest_waiting_seconds: Annotated[float, Field(ge=0, le=30 * 24 * 3600)] = 3600.0
    """An outbox entry waiting this long raises an alert."""
    console_url: str = ""
    """The console's public base URL (`https://adapter.example.org/console`), for links in
    alerts; empty: links are relative (`/console/...`)."""
    console_session_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 60.0
    """How long a console sign-in lasts."""

    @field_validator("alert_webhook_url", "console_url")
    @classmethod
    def _http_url_or_empty(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http(s) URL, or empty")
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: str) -> str:
        return usable_database_url(value)

    @field_validator("ehr_base_url")
    @classmethod
    def _http_ehr_base_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as http://host/fhir, or empty")
        return value.rstrip("/")

    @field_validator("ehr_ca_bundle")
    @classmethod
    def _readable_ca_bundle(cls, value: str) -> str:
        value = value.strip()
        if value and not Path(value).is_file():
            raise ValueError("no such file: must be a PEM file of CA certificates, or empty")
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _readable_api_keys_file(cls, value: str) -> str:
        value = value.strip()
        if value and Path(value).is_dir():
            # What Docker leaves when it is told to mount a file that does not exist.
            raise ValueError(
                "is a folder, not a file: create the keys file first (adapter keys new)"
            )
        if value and not Path(value).is_file():
            raise ValueError(
                "no such file: must be a JSON file of API keys (adapter keys new makes one), "
                "or empty"
            )
        return value

    @field_validator("smart_clients_file", "export_groups_file")
    @classmethod
    def _readable_json_file(cls, value: str) -> str:
        value = value.strip()
        if value and not Path(value).is_file():
            raise ValueError("no such file: must be a JSON file (see docs/operations.md), or empty")
        return value

    @field_validator("protocol_dir")
    @classmethod
    def _usable_protocol_dir(cls, value: str) -> str:
        value = value.strip()
        if value:
            check_protocol_dir(value)  # a ProtocolError names the file and the entry
        return value

    @field_validator("ehr_auth_token_url")
    @classmethod
    def _http_token_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http(s) URL of the OAuth2 token endpoint, or empty")
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_algorithms(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        refused = sorted(set(names) - ASYMMETRIC_JWT_ALGORITHMS)
        if not names or refused:
            allowed = ", ".join(sorted(ASYMMETRIC_JWT_ALGORITHMS))
            raise ValueError(f"must list only asymmetric algorithms ({allowed}), not {refused}")
        return ",".join(names)

    @model_validator(mode="after")
    def _jwt_fields_present(self) -> Settings:
        if self.jwks_url and not (self.jwt_issuer and self.jwt_audience):
            raise ValueError(
                "ADAPTER_JWT_ISSUER and ADAPTER_JWT_AUDIENCE must be set with ADAPTER_JWKS_URL"
            )
        return self

    @model_validator(mode="after")
    def _auth_fields_present(self) -> Settings:
        missing = [f for f in REQUIRED_AUTH_FIELDS[self.ehr_auth] if not _is_set(getattr(self, f))]
        if missing:
            names = " and ".join(ENV_PREFIX + f.upper() for f in missing)
            raise ValueError(f"{names} must be set when ADAPTER_EHR_AUTH={self.ehr_auth}")
        return self

    @property
    def is_ehr_configured(self) -> bool:
        return bool(self.ehr_base_url)

    @property
    def ehr_scope(self) -> str:
        """The scope to ask the token endpoint for; SMART Backend Services always needs one."""
        if self.ehr_auth == "smart_backend" and not self.ehr_auth_scope:
            return DEFAULT_SMART_SCOPE
        return self.ehr_auth_scope


def _is_set(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return bool(str(value).strip())


def get_settings() -> Settings:
    """Read the settings from the environment, or raise `ConfigError` naming each bad one."""
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """One line per refused variable: `ADAPTER_PORT='70000': Input should be ...`."""
    return "; ".join(_describe_error(error) for error in exc.errors())


def _describe_error(error: ErrorDetails) -> str:
    if not error["loc"]:
        # A check across fields: its input is every setting, secrets included.
        return error["msg"].removeprefix("Value error, ")
    field = str(error["loc"][0])
    variable = ENV_PREFIX + field.upper()
    message = error["msg"].removeprefix("Value error, ")
    if field in SECRET_FIELDS:
        return f"{variable}: {message}"
    return f"{variable}={error['input']!r}: {message}"
