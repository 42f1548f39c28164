"""OpenBao (the Vault API) in dev mode, seeded with the secrets the control plane reads.

Dev mode keeps everything in memory, so ``configure`` seeds it again after every start.
Every Switchyard process logs in with an AppRole of its own kind (role id and secret id handed
to its environment by the harness, see :meth:`OpenBao.login_env`); none is given the root
token. Each kind's policy (:func:`policies`) allows only the paths that kind reads:

============================  ===================================================================
AppRole (kind)                may
============================  ===================================================================
``api``                       read ``postgres/control``, ``postgres/<region>`` (migrations,
                              replication figures), ``api-tokens``, ``s3/<region>``
``controller``                read ``postgres/*``, ``s3/<region>``, ``dns/*``; read the database
                              engine's roles, list and revoke any runtime's leases (fencing)
``runtime-<region>``          read ``runtime-api-tokens`` (viewer and operator, no admin) and its
                              own ``s3/<region>``; issue and renew its own ``<region>-runtime``
                              database logins
``cdc-<region>``              read its own ``postgres/<region>``
``snapshot``                  read ``s3/<region>``, ``postgres/control`` (who is primary),
                              ``runtime-api-tokens`` (the operator token a restore needs)
============================  ===================================================================

Tokens get no ``default`` policy (which would let them renew any lease whose id they know,
among others); every policy grants instead what a token needs on itself: look itself up and
renew itself (``auth/token/lookup-self``, ``auth/token/renew-self``).

The database secrets engine (at ``database/``) issues each region's runtime its own PostgreSQL
login under the role ``<region>-runtime``; fencing a region revokes every lease of that role.
A login may write the runtime's own tables and read ``region_state`` — never change it (see
``RUNTIME_CREATION_STATEMENTS``). A lease lost with a dev-mode restart is never revoked: its
PostgreSQL role stays until its ``VALID UNTIL`` passes (no new logins after that; sessions
already open stay).

TTLs (:class:`VaultTtls`): database leases 15 min renewable up to 24 h (a runtime renews its
lease only while controllers probe it, so an isolated runtime loses its login within its
``SWITCHYARD_RUNTIME_CONTACT_TIMEOUT_SECONDS``, 1800 s, plus 15 min — inside the topology's
``isolation_timeout_seconds``, 3600 s); AppRole tokens 1 h renewable up to 24 h;
``SWITCHYARD_DEV_VAULT_LEASE_TTL``, ``..._LEASE_MAX_TTL``, ``..._TOKEN_TTL`` and
``..._TOKEN_MAX_TTL`` (Vault durations such as ``15s``) change them when Vault is configured.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac

from switchyard.db import migrate
from switchyard.db.region_tables import dialog_sessions, dialog_turns, documents, region_state
from switchyard.devenv.dns import TSIG_KEY_NAME
from switchyard.devenv.layout import HOST, DevCredentials, DevLayout, write_private
from switchyard.devenv.process import ProcessSpec, find_binary, http_ok
from switchyard.errors import ConfigError

KV_MOUNT = "secret"
SECRET_PREFIX = "switchyard"  # noqa: S105 - a KV path, not a secret
APPROLE_PREFIX = "switchyard"
DATABASE_MOUNT = "database"
# The regions whose PostgreSQL gets a connection, and the database their runtimes use; the
# same names and database the harness gives its region clusters.
DATABASE_REGIONS = ("region-a", "region-b")
RUNTIME_DATABASE = "dialog"
# The API tokens a runtime (and the snapshot tool) may read: viewer and operator, not admin.
RUNTIME_API_TOKENS = "runtime-api-tokens"
# The region schema's alembic version table, which a runtime reads to tell whether its
# database is migrated.
REGION_VERSION_TABLE = migrate.REGION.version_table

# What a runtime may do in its region's database: read and write (never delete) the rows it
# owns — sessions, turns, documents — and read region_state and the schema version. It takes
# region_state's row with FOR SHARE inside every write (the fence), which PostgreSQL allows
# only with UPDATE on at least one column: it gets UPDATE on ``updated_at`` alone, so it can
# never change a role or an epoch. No DDL, no TRUNCATE, nothing on the CDC tables. Tables
# must exist when a lease is issued (migrations run first); Vault runs these in one
# transaction.
RUNTIME_WRITES = (dialog_sessions.name, dialog_turns.name, documents.name)
RUNTIME_CREATION_STATEMENTS = (
    """CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'""",
    'GRANT USAGE ON SCHEMA public TO "{{name}}"',
    f'GRANT SELECT, INSERT, UPDATE ON {", ".join(RUNTIME_WRITES)} TO "{{{{name}}}}"',
    f'GRANT SELECT ON {region_state.name}, {REGION_VERSION_TABLE} TO "{{{{name}}}}"',
    f'GRANT UPDATE (updated_at) ON {region_state.name} TO "{{{{name}}}}"',
)
# Vault's PostgreSQL default revocation only revokes table privileges and drops the role: open
# sessions keep working, and the default privileges above would make DROP ROLE fail. Instead:
# end the role's sessions (waiting up to 5 s for each to exit), take back every grant, drop
# it. One DO block (Vault runs a statement containing END as a whole), guarded so a role
# already gone (dropped by hand) does not make the lease impossible to revoke. A session
# that logs in between the terminate and the commit survives, but without any privilege.
RUNTIME_REVOCATION_STATEMENTS = (
    """DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{{name}}') THEN
    PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = '{{name}}';
    REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{{name}}";
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{{name}}";
    REVOKE ALL ON SCHEMA public FROM "{{name}}";
    ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
      REVOKE ALL ON TABLES FROM "{{name}}";
    ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
      REVOKE ALL ON SEQUENCES FROM "{{name}}";
    DROP ROLE "{{name}}";
  END IF;
END
$$""",
)
RUNTIME_DEFAULT_TTL = "15m"
RUNTIME_MAX_TTL = "24h"
_DURATION = re.compile(r"^[1-9][0-9]*[smh]?$")
TTL_ENV_PREFIX = "SWITCHYARD_DEV_VAULT_"


@dataclass(frozen=True)
class VaultTtls:
    """The harness's TTLs (Vault durations): runtime database leases and AppRole tokens."""

    lease_ttl: str = RUNTIME_DEFAULT_TTL
    lease_max_ttl: str = RUNTIME_MAX_TTL
    token_ttl: str = "1h"  # noqa: S105 - a duration
    token_max_ttl: str = "24h"  # noqa: S105 - a duration

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VaultTtls:
        """Defaults, overridden by ``SWITCHYARD_DEV_VAULT_{LEASE,TOKEN}_{TTL,MAX_TTL}``."""
        env = os.environ if environ is None else environ
        values = {}
        for field in ("lease_ttl", "lease_max_ttl", "token_ttl", "token_max_ttl"):
            name = TTL_ENV_PREFIX + field.upper()
            if name in env:
                if not _DURATION.fullmatch(env[name]):
                    raise ConfigError("environment", name, "want a duration such as 15s, 10m, 1h")
                values[field] = env[name]
        return cls(**values)


def approle_name(kind: str) -> str:
    """The AppRole (and policy) of a process kind: ``api``, ``controller``,
    ``runtime-<region>``, ``cdc-<region>``, ``snapshot``."""
    return f"{APPROLE_PREFIX}-{kind}"


def process_kinds(regions: Sequence[str] = DATABASE_REGIONS) -> tuple[str, ...]:
    return (
        "api",
        "controller",
        *(f"runtime-{r}" for r in regions),
        *(f"cdc-{r}" for r in regions),
        "snapshot",
    )


def _kv(*paths: str) -> list[str]:
    return [
        f'path "{KV_MOUNT}/data/{SECRET_PREFIX}/{p}" {{ capabilities = ["read"] }}' for p in paths
    ]


# What every token may do to itself (the credential keeper renews it; a 403 is told apart
# from a dead token by looking it up).
_SELF = (
    'path "auth/token/lookup-self" { capabilities = ["read"] }',
    'path "auth/token/renew-self" { capabilities = ["update"] }',
)


def policies(regions: Sequence[str] = DATABASE_REGIONS) -> dict[str, str]:
    """Each process kind's policy, by kind (see the module docstring)."""
    pg = [f"postgres/{r}" for r in regions]
    s3 = [f"s3/{r}" for r in regions]
    creds = f"{DATABASE_MOUNT}/creds"
    rules: dict[str, list[str]] = {
        "api": _kv("postgres/control", *pg, "api-tokens", *s3),
        "controller": [
            *_kv("postgres/control", *pg, *s3, "dns/*"),
            f'path "{DATABASE_MOUNT}/roles/*" {{ capabilities = ["read"] }}',
            f'path "sys/leases/revoke-prefix/{creds}/*" {{ capabilities = ["update", "sudo"] }}',
            f'path "sys/leases/lookup/{creds}/*" {{ capabilities = ["list", "sudo"] }}',
        ],
        "snapshot": _kv(*s3, "postgres/control", RUNTIME_API_TOKENS),
    }
    for r in regions:
        role = runtime_role(r)
        rules[f"runtime-{r}"] = [
            *_kv(RUNTIME_API_TOKENS, f"s3/{r}"),
            f'path "{creds}/{role}" {{ capabilities = ["read"] }}',
            f'path "sys/leases/renew/{creds}/{role}/*" {{ capabilities = ["update"] }}',
        ]
        rules[f"cdc-{r}"] = _kv(f"postgres/{r}")
    return {kind: "\n".join([*lines, *_SELF]) + "\n" for kind, lines in rules.items()}


def runtime_role(region: str) -> str:
    """The database-engine role whose leases ``region``'s runtime holds."""
    return f"{region}-runtime"


def configure_database_connection(
    client: Any,
    *,
    mount: str,
    name: str,
    port: int,
    database: str,
    password: str,
    allowed_roles: Sequence[str],
) -> None:
    """Point the database engine at ``mount`` to a local PostgreSQL as its superuser.

    Not verified now (``verify_connection=False``), so Vault can be configured while the
    cluster is still down; the first lease connects. Passwords reach PostgreSQL already
    SCRAM-hashed, so the plaintext never appears in its statement log.
    """
    client.secrets.database.configure(
        name=name,
        plugin_name="postgresql-database-plugin",
        connection_url=(
            f"postgresql://{{{{username}}}}:{{{{password}}}}@{HOST}:{port}/{database}"
            "?sslmode=disable"
        ),
        username="postgres",
        password=password,
        allowed_roles=list(allowed_roles),
        verify_connection=False,
        password_authentication="scram-sha-256",  # noqa: S106 - a hashing method
        mount_point=mount,
    )


def create_runtime_role(
    client: Any,
    *,
    mount: str,
    name: str,
    connection: str,
    default_ttl: str = RUNTIME_DEFAULT_TTL,
    max_ttl: str = RUNTIME_MAX_TTL,
) -> None:
    """Create (or replace) a role issuing runtime logins through ``connection``."""
    client.secrets.database.create_role(
        name=name,
        db_name=connection,
        creation_statements=list(RUNTIME_CREATION_STATEMENTS),
        revocation_statements=list(RUNTIME_REVOCATION_STATEMENTS),
        default_ttl=default_ttl,
        max_ttl=max_ttl,
        mount_point=mount,
    )


def ensure_database_engine(client: Any, mount: str = DATABASE_MOUNT) -> str:
    """Enable the database secrets engine at ``mount`` unless present."""
    if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("database", path=mount)
    return mount


class OpenBao:
    name = "vault"

    def __init__(
        self, layout: DevLayout, creds: DevCredentials, ttls: VaultTtls | None = None
    ) -> None:
        self.port = layout.ports["vault"]
        self._ttls = ttls
        self.dir = layout.data(self.name)
        self._creds = creds
        self._region_db_ports = {
            region: layout.ports[f"pg_{region.replace('-', '_')}"] for region in DATABASE_REGIONS
        }

    @property
    def addr(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def approle_path(self) -> Path:
        """Role id and secret id of every process kind's AppRole (mode 0600)."""
        return self.dir / "approles.json"

    @property
    def ttls(self) -> VaultTtls:
        """The TTLs ``configure`` sets: as given, else from the environment at that time."""
        return self._ttls or VaultTtls.from_env()

    def root_client(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self._creds.vault_root_token, timeout=3)

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [
                find_binary("bao"),
                "server",
                "-dev",
                f"-dev-listen-address={HOST}:{self.port}",
                "-dev-no-store-token",
            ],
            # The root token goes through the environment, not argv (which ps shows to all).
            env={"BAO_DEV_ROOT_TOKEN_ID": self._creds.vault_root_token, "HOME": str(self.dir)},
            cwd=self.dir,
        )

    def ready(self) -> bool:
        return http_ok(f"{self.addr}/v1/sys/health")

    def configure(self) -> None:
        client = self.root_client()
        creds = self._creds
        seeds: dict[str, dict[str, str]] = {
            "api-tokens": dict(creds.api_tokens),
            RUNTIME_API_TOKENS: {
                role: token for role, token in creds.api_tokens.items() if role != "admin"
            },
            "dns/tsig": {
                "name": TSIG_KEY_NAME,
                "algorithm": "hmac-sha256",
                "secret": creds.tsig_secret,
            },
            "dns/pdns": {"api_key": creds.pdns_api_key},
            "postgres/control": {"username": "postgres", "password": creds.postgres_password},
            "postgres/region-a": {"username": "postgres", "password": creds.postgres_password},
            "postgres/region-b": {"username": "postgres", "password": creds.postgres_password},
            "s3/region-a": {
                "access_key_id": creds.s3_access_key,
                "secret_access_key": creds.s3_secret_key,
            },
            "s3/region-b": {
                "access_key_id": creds.s3_access_key,
                "secret_access_key": creds.s3_secret_key,
            },
        }
        for path, data in seeds.items():
            client.secrets.kv.v2.create_or_update_secret(
                path=f"{SECRET_PREFIX}/{path}", secret=data, mount_point=KV_MOUNT
            )
        ttls = self.ttls
        self._configure_database(client, ttls)
        if "approle/" not in client.sys.list_auth_methods():
            client.sys.enable_auth_method("approle")
        logins: dict[str, dict[str, str]] = {}
        for kind, policy in policies(tuple(self._region_db_ports)).items():
            name = approle_name(kind)
            client.sys.create_or_update_policy(name, policy)
            client.auth.approle.create_or_update_approle(
                name,
                token_policies=[name],
                token_no_default_policy=True,
                token_ttl=ttls.token_ttl,
                token_max_ttl=ttls.token_max_ttl,
            )
            logins[kind] = {
                "role_id": client.auth.approle.read_role_id(name)["data"]["role_id"],
                "secret_id": client.auth.approle.generate_secret_id(name)["data"]["secret_id"],
            }
        write_private(self.approle_path, json.dumps(logins))

    def _configure_database(self, client: hvac.Client, ttls: VaultTtls) -> None:
        """One connection per region PostgreSQL and the role ``<region>-runtime`` on it."""
        mount = ensure_database_engine(client)
        for region, port in self._region_db_ports.items():
            role = runtime_role(region)
            configure_database_connection(
                client,
                mount=mount,
                name=region,
                port=port,
                database=RUNTIME_DATABASE,
                password=self._creds.postgres_password,
                allowed_roles=[role],
            )
            create_runtime_role(
                client,
                mount=mount,
                name=role,
                connection=region,
                default_ttl=ttls.lease_ttl,
                max_ttl=ttls.lease_max_ttl,
            )

    def login_env(self, kind: str) -> dict[str, str]:
        """The ``SWITCHYARD_*`` variables a process of ``kind`` (see ``process_kinds``) needs to
        log in with its own AppRole, and to find the API tokens its role may read."""
        approle = self.approle(kind)
        env = {
            "SWITCHYARD_VAULT_ADDR": self.addr,
            "SWITCHYARD_VAULT_KV_MOUNT": KV_MOUNT,
            "SWITCHYARD_VAULT_ROLE_ID": approle["role_id"],
            "SWITCHYARD_VAULT_SECRET_ID": approle["secret_id"],
        }
        if kind == "snapshot" or kind.startswith("runtime-"):
            env["SWITCHYARD_API_TOKENS_SECRET"] = f"{SECRET_PREFIX}/{RUNTIME_API_TOKENS}"
        return env

    def approle(self, kind: str = "api") -> Mapping[str, str]:
        """Role id and secret id of ``kind``'s AppRole (KeyError for an unknown kind)."""
        logins: dict[str, dict[str, str]] = json.loads(self.approle_path.read_text())
        return logins[kind]

    def endpoints(self) -> Mapping[str, str]:
        return {
            "vault": self.addr,
            "kv": f"{KV_MOUNT}/{SECRET_PREFIX}/",
            "database": f"{DATABASE_MOUNT}/creds/<region>-runtime",
        }
