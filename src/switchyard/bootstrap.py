"""The one composition root: builds adapters from settings and wires them together.

Nothing else in the package constructs clients, engines or settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine, make_url

from switchyard import __version__
from switchyard.adapters.secrets_vault import VaultSecretStore
from switchyard.api.auth import TokenTable
from switchyard.api.context import ApiContext
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.regions import ensure_regions
from switchyard.domain.region import Region
from switchyard.domain.secrets import Secret
from switchyard.observability.logging import Redactor
from switchyard.observability.metrics import ApiMetrics
from switchyard.ports.secrets import SecretStore
from switchyard.settings import Settings
from switchyard.topology import Topology, load_topology


@dataclass(frozen=True)
class Core:
    """The adapters every entry point (API, migrate, demo) shares, built by ``build_core``.

    ``engine`` already carries the Vault-issued credentials; ``control_db_url`` is the same URL
    wrapped as a Secret, for the migrations, so it renders masked everywhere.
    """

    settings: Settings
    topology: Topology
    secrets: SecretStore
    engine: Engine
    control_db_url: Secret  # carries the password from Vault


def build_secret_store(settings: Settings, redactor: Redactor) -> VaultSecretStore:
    return VaultSecretStore.from_settings(
        settings.vault_addr,
        token=settings.vault_token,
        role_id=settings.vault_role_id,
        secret_id=settings.vault_secret_id,
        mount=settings.vault_kv_mount,
        redactor=redactor,
    )


def build_core(settings: Settings, redactor: Redactor) -> Core:
    topology = load_topology(settings.topology_file)
    secrets = build_secret_store(settings, redactor)
    creds = secrets.read(settings.control_db_secret)
    url = (
        make_url(settings.control_db_url)
        .set(username=creds.get("username").reveal(), password=creds.get("password").reveal())
        .render_as_string(hide_password=False)
    )
    return Core(settings, topology, secrets, make_engine(url), Secret(url))


def build_api_context(core: Core) -> ApiContext:
    tokens = core.secrets.read(core.settings.api_tokens_secret)
    table = TokenTable.from_secret(f"vault:{core.settings.api_tokens_secret}", tokens.data)
    return ApiContext(
        engine=core.engine,
        tokens=table,
        metrics=ApiMetrics.create(__version__),
        expected_revision=migrate.head_revision(),
    )


def prepare_store(core: Core) -> list[Region]:
    """Migrate the control-plane store to head and record the topology's new regions."""
    migrate.upgrade(core.control_db_url.reveal())
    with unit_of_work(core.engine) as session:
        return ensure_regions(
            session=session,
            specs=[(r.name, r.initial_role) for r in core.topology.regions],
        )
