"""Settings: defaults, reading ADAPTER_* variables, and refusing values that cannot work."""

from __future__ import annotations

import pytest

from adapter.config import Settings, get_settings
from adapter.errors import ConfigError


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
        ("ADAPTER_LOG_LEVEL", "LOUD"),
        ("ADAPTER_HOST", ""),
        ("ADAPTER_DATABASE_URL", "not a url"),
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
