"""Settings: defaults, reading ADAPTER_* variables, and refusing values that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import Settings, get_settings
from adapter.errors import ConfigError
from adapter.protocols import tenant_protocol


def test_get_settings__empty_environment__safe_defaults() -> None:
    settings = get_settings()
    assert settings.database_url == "sqlite:///./adapter.db"
    assert settings.ehr_base_url == "http://127.0.0.1:8090/fhir"
    assert settings.ehr_timeout_seconds == 10
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.namespace == "https://fhir.example-clinic.org"
    assert settings.tenant == "default"
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.max_readings_per_document == 1000
    assert settings.subscription_retention_days == 30


def test_get_settings__variables_set__read_with_adapter_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADAPTER_DATABASE_URL", "postgresql+psycopg://u@db:5432/adapter")
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "https://ehr.example/fhir/")
    monkeypatch.setenv("ADAPTER_PORT", "9000")
    monkeypatch.setenv("ADAPTER_LOG_LEVEL", "debug")
    monkeypatch.setenv("ADAPTER_EHR_TIMEOUT_SECONDS", "2.5")
    settings = get_settings()
    assert settings.database_url == "postgresql+psycopg://u@db:5432/adapter"
    assert settings.ehr_base_url == "https://ehr.example/fhir"
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"
    assert settings.ehr_timeout_seconds == 2.5


def test_get_settings__empty_ehr_url__no_ehr_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "")
    settings = get_settings()
    assert settings.ehr_base_url == ""
    assert not settings.is_ehr_configured


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADAPTER_PORT", "0"),
        ("ADAPTER_PORT", "70000"),
        ("ADAPTER_PORT", "eighty"),
        ("ADAPTER_EHR_BASE_URL", "ftp://ehr.example/fhir"),
        ("ADAPTER_EHR_BASE_URL", "ehr.example/fhir"),
        ("ADAPTER_EHR_TIMEOUT_SECONDS", "0"),
        ("ADAPTER_MAX_BODY_BYTES", "-1"),
        ("ADAPTER_MAX_READINGS_PER_DOCUMENT", "0"),
        ("ADAPTER_MAX_READINGS_PER_DOCUMENT", "10001"),
        ("ADAPTER_LOG_LEVEL", "LOUD"),
        ("ADAPTER_HOST", ""),
        ("ADAPTER_DATABASE_URL", "not a url"),
        ("ADAPTER_WEB_TIMEOUT_SECONDS", "0.5"),
        ("ADAPTER_READ_THREADS", "0"),
        ("ADAPTER_SUBSCRIPTION_RETENTION_DAYS", "-1"),
        ("ADAPTER_SUBSCRIPTION_RETENTION_DAYS", "thirty"),
    ],
)
def test_get_settings__bad_value__config_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        get_settings()


def test_get_settings__bad_database_url__error_does_not_echo_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADAPTER_DATABASE_URL", "s3cret-password-not-a-url")
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://u@h/db?pgbouncer=maybe", "pgbouncer must be true or false"),
        ("sqlite:///x.db?pgbouncer=true", "for a PostgreSQL URL only"),
    ],
)
def test_get_settings__bad_pgbouncer_parameter__named(
    monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    monkeypatch.setenv("ADAPTER_DATABASE_URL", url)
    with pytest.raises(ConfigError, match=f"ADAPTER_DATABASE_URL.*{why}"):
        get_settings()


def test_get_settings__two_bad_values__both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTER_PORT", "99999")
    monkeypatch.setenv("ADAPTER_EHR_BASE_URL", "mailto:x")
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert "ADAPTER_PORT" in str(caught.value)
    assert "ADAPTER_EHR_BASE_URL" in str(caught.value)


def test_settings__constructed_directly__overrides_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADAPTER_TENANT", "from-env")
    assert Settings(tenant="from-test").tenant == "from-test"


def test_get_settings__ehr_auth_defaults__no_auth_and_system_tls() -> None:
    settings = get_settings()
    assert settings.ehr_auth == "none"
    assert settings.ehr_ca_bundle == ""
    assert settings.ehr_auth_token_url == ""
    assert settings.ehr_scope == ""


def test_get_settings__client_credentials__read_with_secret_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_AUTH", "client_credentials")
    monkeypatch.setenv("ADAPTER_EHR_AUTH_CLIENT_ID", "adapter")
    monkeypatch.setenv("ADAPTER_EHR_AUTH_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("ADAPTER_EHR_AUTH_TOKEN_URL", "https://auth.ehr.example/token")
    monkeypatch.setenv("ADAPTER_EHR_AUTH_SCOPE", "system/*.write")
    settings = get_settings()
    assert settings.ehr_auth_client_secret.get_secret_value() == "s3cret"
    assert settings.ehr_scope == "system/*.write"
    assert "s3cret" not in repr(settings)


def test_settings__repr__hides_every_secret_and_the_database_url() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://u:dbpass@db/adapter",
        ehr_auth="basic",
        ehr_auth_username="u",
        ehr_auth_password="pw-secret",
        ehr_auth_token="tok-secret",
        ehr_auth_client_secret="cs-secret",
    )
    shown = repr(settings) + str(settings)
    assert not any(s in shown for s in ("dbpass", "pw-secret", "tok-secret", "cs-secret"))


def test_settings__smart_backend_without_scope__system_read_write_scope() -> None:
    settings = Settings(
        ehr_auth="smart_backend",
        ehr_auth_client_id="c",
        ehr_auth_private_key_file="/keys/adapter.pem",
        ehr_auth_key_id="k1",
    )
    assert settings.ehr_scope == "system/*.read system/*.write"


@pytest.mark.parametrize(
    ("kind", "given", "missing"),
    [
        ("basic", {"USERNAME": "u"}, "ADAPTER_EHR_AUTH_PASSWORD"),
        ("basic", {"PASSWORD": "s3cret"}, "ADAPTER_EHR_AUTH_USERNAME"),
        ("bearer", {}, "ADAPTER_EHR_AUTH_TOKEN"),
        ("client_credentials", {"CLIENT_SECRET": "s3cret"}, "ADAPTER_EHR_AUTH_CLIENT_ID"),
        ("client_credentials", {"CLIENT_ID": "c"}, "ADAPTER_EHR_AUTH_CLIENT_SECRET"),
        ("smart_backend", {"CLIENT_ID": "c", "KEY_ID": "k"}, "ADAPTER_EHR_AUTH_PRIVATE_KEY_FILE"),
        (
            "smart_backend",
            {"CLIENT_ID": "c", "PRIVATE_KEY_FILE": "/k.pem"},
            "ADAPTER_EHR_AUTH_KEY_ID",
        ),
    ],
)
def test_get_settings__auth_kind_missing_a_field__config_error_names_it(
    monkeypatch: pytest.MonkeyPatch, kind: str, given: dict[str, str], missing: str
) -> None:
    monkeypatch.setenv("ADAPTER_EHR_AUTH", kind)
    for suffix, value in given.items():
        monkeypatch.setenv(f"ADAPTER_EHR_AUTH_{suffix}", value)
    with pytest.raises(ConfigError, match=f"{missing}\\b") as caught:
        get_settings()
    assert "s3cret" not in str(caught.value)


def test_get_settings__blank_password__counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTER_EHR_AUTH", "basic")
    monkeypatch.setenv("ADAPTER_EHR_AUTH_USERNAME", "u")
    monkeypatch.setenv("ADAPTER_EHR_AUTH_PASSWORD", "  ")
    with pytest.raises(ConfigError, match="ADAPTER_EHR_AUTH_PASSWORD"):
        get_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ADAPTER_EHR_AUTH", "kerberos"),
        ("ADAPTER_EHR_CA_BUNDLE", "/nonexistent/ca.pem"),
        ("ADAPTER_EHR_AUTH_TOKEN_URL", "auth.ehr.example/token"),
        ("ADAPTER_EHR_AUTH_TOKEN_URL", "ftp://auth.ehr.example/token"),
    ],
)
def test_get_settings__bad_auth_value__config_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        get_settings()


def test_get_settings__protocol_file_with_a_bad_entry__refused_naming_file_and_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "clinic-a.toml").write_text(
        '[doses.ketamine.intravenous]\nusual_max_total_mg = 300\nsource = "clinic: x"\n'
    )
    monkeypatch.setenv("ADAPTER_PROTOCOL_DIR", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        get_settings()
    message = str(caught.value)
    assert message.startswith("ADAPTER_PROTOCOL_DIR=")
    assert "clinic-a.toml: doses.ketamine.intravenous: usual_max_total_mg (300)" in message


def test_get_settings__protocol_dir_missing__refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTER_PROTOCOL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="ADAPTER_PROTOCOL_DIR.*no such folder"):
        get_settings()


def test_tenant_protocol__file_per_tenant__others_keep_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "clinic-a.toml").write_text('[fasting]\nnpo_hours = 8\nsource = "clinic: x"\n')
    assert tenant_protocol(str(tmp_path), "clinic-a").npo_hours == 8
    assert tenant_protocol(str(tmp_path), "clinic-b").npo_hours == 6
    assert tenant_protocol("", "clinic-a").npo_hours == 6
