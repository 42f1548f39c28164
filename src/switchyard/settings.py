"""Process settings from the environment (``SWITCHYARD_*``).

Nothing here is built at import time: ``load_settings()`` is called by the composition root.
Secrets are never *values* in settings: the database URL carries no password and names a
Vault path instead; the only secret accepted from the environment is how to reach Vault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from switchyard.config_errors import config_error
from switchyard.domain.secrets import Secret
from switchyard.errors import ConfigError

ENV_PREFIX = "SWITCHYARD_"
LOOPBACK = "127.0.0.1"


class Settings(BaseSettings):
    """One process's settings, frozen once loaded.

    Invariants (checked by ``load_settings``): ``control_db_url`` is a PostgreSQL URL without a
    password; exactly one Vault login is given, a token or the complete AppRole pair.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    topology_file: Path = Path("config/topology.yaml")
    vantage: str = Field(default="witness", pattern=r"^[a-z][a-z0-9-]{0,62}$")
    api_host: str = LOOPBACK
    api_port: int = Field(default=8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # ``switchyard controller`` serves /metrics here (on api_host); None: no metrics server.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    # Required by the control plane (api, migrate); a dialog runtime does without it.
    control_db_url: str | None = None
    # KV path (under vault_kv_mount) holding {username, password} for the control database.
    control_db_secret: str = "switchyard/postgres/control"  # noqa: S105 - a Vault path
    api_tokens_secret: str = "switchyard/api-tokens"  # noqa: S105 - a Vault path

    vault_addr: str = "http://127.0.0.1:8200"
    vault_kv_mount: str = "secret"
    vault_token: Secret | None = None
    vault_role_id: str | None = None
    vault_secret_id: Secret | None = None

    # The dialog runtime (``switchyard runtime``).
    corpus_dir: Path = Path("corpus/demo")
    # The golden questions a restored snapshot must answer before it goes live.
    golden_file: Path = Path("corpus/golden/questions-v1.yaml")
    # Index generations live under <data_dir>/<region>/index.
    data_dir: Path = Path(".local/runtime")
    llm_url: str | None = Field(default=None, pattern=r"^https?://")
    llm_model: str = "default"
    llm_api_key_secret: str | None = None  # a Vault KV path holding {api_key}
    llm_max_concurrency: int = Field(default=4, ge=1, le=256)
    llm_queue_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    ticket_url: str | None = Field(default=None, pattern=r"^https?://")
    # The runtime stops renewing its database login when no controller has probed it for this
    # long, so an isolated runtime loses it within this plus one lease TTL (the controllers'
    # ``failover.isolation_timeout_seconds`` must be at least that). The price: with every
    # controller down that long, runtimes lose their logins too (as Patroni's primary demotes
    # without its DCS).
    runtime_contact_timeout_seconds: float = Field(default=1800.0, gt=0, le=86400)
    # Chat admission: this many chats at once, this many more waiting (each at most the
    # timeout); beyond that 503 ``overloaded`` + Retry-After, before the probes could suffer.
    # About one chat per core (a chat is mostly CPU: embedding, search), so the probes keep a
    # share of the CPU; with an LLM configured, allow at least llm_max_concurrency.
    chat_max_concurrency: int = Field(default=2, ge=1, le=256)
    chat_queue_size: int = Field(default=8, ge=0, le=4096)
    chat_queue_timeout_seconds: float = Field(default=2.0, gt=0, le=60)

    def require_control_db_url(self) -> str:
        """The control database URL; ConfigError naming the variable when it is not set."""
        if self.control_db_url is None:
            raise ConfigError(
                "environment",
                "SWITCHYARD_CONTROL_DB_URL",
                "required by the control plane (postgresql+psycopg://user@host:port/db)",
            )
        return self.control_db_url

    @field_validator("control_db_url")
    @classmethod
    def _no_password_in_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL (postgresql+psycopg://user@host:port/db)"
            ) from None
        if not url.drivername.startswith("postgresql"):
            raise ValueError(f"must be a PostgreSQL URL, got driver {url.drivername!r}")
        if url.password is not None:
            raise ValueError(
                "must not contain a password; it is read from Vault (control_db_secret)"
            )
        return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings; raise ConfigError naming the variable on any problem."""
    env = dict(os.environ if environ is None else environ)
    values = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX)
    }
    try:
        # Pass values explicitly so the result depends only on ``environ``.
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        raise config_error("environment", exc, env_prefix=ENV_PREFIX) from None
    _check_vault_login(settings)
    return settings


def _check_vault_login(s: Settings) -> None:
    approle = s.vault_role_id is not None or s.vault_secret_id is not None
    if s.vault_token is not None and approle:
        raise ConfigError(
            "environment",
            "SWITCHYARD_VAULT_TOKEN",
            "set either a token or the AppRole pair (ROLE_ID, SECRET_ID), not both",
        )
    if s.vault_role_id is None and s.vault_secret_id is not None:
        raise ConfigError("environment", "SWITCHYARD_VAULT_ROLE_ID", "AppRole needs a role id too")
    if s.vault_secret_id is None and s.vault_role_id is not None:
        raise ConfigError(
            "environment", "SWITCHYARD_VAULT_SECRET_ID", "AppRole needs a secret id too"
        )
    if s.vault_token is None and not approle:
        raise ConfigError(
            "environment",
            "SWITCHYARD_VAULT_ROLE_ID",
            "no Vault login: set SWITCHYARD_VAULT_ROLE_ID and _SECRET_ID (or _TOKEN)",
        )
