"""Process settings: invalid values stop start-up naming the variable; no secret in errors."""

from __future__ import annotations

import pytest

from switchyard.errors import ConfigError
from switchyard.settings import load_settings

BASE = {
    "SWITCHYARD_CONTROL_DB_URL": "postgresql+psycopg://127.0.0.1:5432/switchyard",
    "SWITCHYARD_VAULT_ROLE_ID": "role-1",
    "SWITCHYARD_VAULT_SECRET_ID": "s3cr3t-approle-id",
}


def test_valid_settings_bind_to_loopback_by_default() -> None:
    s = load_settings(BASE)
    assert s.api_host == "127.0.0.1"
    assert s.vault_role_id == "role-1"


def test_chat_admission_defaults_fit_two_cores_and_can_be_set() -> None:
    default = load_settings(BASE)
    assert (default.chat_max_concurrency, default.chat_queue_size) == (2, 8)
    assert default.chat_queue_timeout_seconds == 2.0
    s = load_settings(
        {**BASE, "SWITCHYARD_CHAT_MAX_CONCURRENCY": "16", "SWITCHYARD_CHAT_QUEUE_SIZE": "0"}
    )
    assert (s.chat_max_concurrency, s.chat_queue_size) == (16, 0)


def test_settings_repr_hides_the_vault_secret() -> None:
    s = load_settings(BASE)
    assert "s3cr3t-approle-id" not in repr(s)
    assert "s3cr3t-approle-id" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"SWITCHYARD_API_PORT": "99999"}, "SWITCHYARD_API_PORT"),
        ({"SWITCHYARD_API_PORT": "http"}, "SWITCHYARD_API_PORT"),
        ({"SWITCHYARD_LOG_LEVEL": "LOUD"}, "SWITCHYARD_LOG_LEVEL"),
        ({"SWITCHYARD_VANTAGE": "Region A"}, "SWITCHYARD_VANTAGE"),
        ({"SWITCHYARD_CONTROL_DB_URL": "mysql://h/db"}, "SWITCHYARD_CONTROL_DB_URL"),
        ({"SWITCHYARD_CONTROL_DB_URL": "::not a url::"}, "SWITCHYARD_CONTROL_DB_URL"),
        ({"SWITCHYARD_VAULT_TOKEN": "tok"}, "SWITCHYARD_VAULT_TOKEN"),
        ({"SWITCHYARD_CHAT_MAX_CONCURRENCY": "0"}, "SWITCHYARD_CHAT_MAX_CONCURRENCY"),
        ({"SWITCHYARD_CHAT_QUEUE_SIZE": "-1"}, "SWITCHYARD_CHAT_QUEUE_SIZE"),
        ({"SWITCHYARD_CHAT_QUEUE_TIMEOUT_SECONDS": "0"}, "SWITCHYARD_CHAT_QUEUE_TIMEOUT_SECONDS"),
    ],
)
def test_invalid_values_name_the_variable(override: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({**BASE, **override})
    assert err.value.source == "environment"
    assert err.value.field == field


def test_missing_control_db_url_is_named_when_the_control_plane_needs_it() -> None:
    env = {k: v for k, v in BASE.items() if k != "SWITCHYARD_CONTROL_DB_URL"}
    settings = load_settings(env)  # a dialog runtime needs no control database
    with pytest.raises(ConfigError) as err:
        settings.require_control_db_url()
    assert err.value.field == "SWITCHYARD_CONTROL_DB_URL"


def test_a_password_in_the_database_url_is_refused_without_echoing_it() -> None:
    env = {**BASE, "SWITCHYARD_CONTROL_DB_URL": "postgresql+psycopg://u:hunter2xyz@h/db"}
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert err.value.field == "SWITCHYARD_CONTROL_DB_URL"
    assert "Vault" in str(err.value)
    assert "hunter2xyz" not in str(err.value)


@pytest.mark.parametrize(
    ("drop", "field"),
    [
        ("SWITCHYARD_VAULT_SECRET_ID", "SWITCHYARD_VAULT_SECRET_ID"),
        ("SWITCHYARD_VAULT_ROLE_ID", "SWITCHYARD_VAULT_ROLE_ID"),
    ],
)
def test_half_an_approle_is_refused(drop: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({k: v for k, v in BASE.items() if k != drop})
    assert err.value.field == field


def test_no_vault_login_at_all_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"SWITCHYARD_CONTROL_DB_URL": BASE["SWITCHYARD_CONTROL_DB_URL"]})
    assert "SWITCHYARD_VAULT" in err.value.field
