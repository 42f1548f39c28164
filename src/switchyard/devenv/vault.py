"""OpenBao (the Vault API) in dev mode, seeded with the secrets the control plane reads.

Dev mode keeps everything in memory, so ``configure`` seeds it again after every start.
The control plane logs in with AppRole (role id and secret id handed to its process
environment by the harness); it is never given the root token.

The database secrets engine (at ``database/``) issues each region's runtime its own PostgreSQL
login under the role ``<region>-runtime``; fencing a region revokes every lease of that role.
A lease lost with a dev-mode restart is never revoked: its PostgreSQL role stays until its
``VALID UNTIL`` passes (no new logins after that; sessions already open stay).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hvac

from switchyard.devenv.dns import TSIG_KEY_NAME
from switchyard.devenv.layout import HOST, DevCredentials, DevLayout, write_private
from switchyard.devenv.process import ProcessSpec, find_binary, http_ok

KV_MOUNT = "secret"
SECRET_PREFIX = "switchyard"  # noqa: S105 - a KV path, not a secret
APPROLE_NAME = "switchyard-control"
DATABASE_MOUNT = "database"
# The regions whose PostgreSQL gets a connection, and the database their runtimes use; the
# same names and database the harness gives its region clusters.
DATABASE_REGIONS = ("region-a", "region-b")
RUNTIME_DATABASE = "dialog"
POLICY = f"""
path "{KV_MOUNT}/data/{SECRET_PREFIX}/*" {{ capabilities = ["read"] }}
path "{KV_MOUNT}/metadata/{SECRET_PREFIX}/*" {{ capabilities = ["read", "list"] }}
path "{DATABASE_MOUNT}/creds/*" {{ capabilities = ["read"] }}
path "{DATABASE_MOUNT}/roles/*" {{ capabilities = ["read"] }}
path "sys/leases/renew" {{ capabilities = ["update"] }}
path "sys/leases/revoke-prefix/{DATABASE_MOUNT}/creds/*" {{ capabilities = ["update", "sudo"] }}
path "sys/leases/lookup/{DATABASE_MOUNT}/creds/*" {{ capabilities = ["list", "sudo"] }}
"""

# What a runtime may do: read and write rows of every table in the public schema, present
# and future (migrations run later, as postgres, create tables the grant must cover), and use
# their sequences. No DDL, no TRUNCATE. Vault runs these in one transaction.
RUNTIME_CREATION_STATEMENTS = (
    """CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'""",
    'GRANT USAGE ON SCHEMA public TO "{{name}}"',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{{name}}"',
    'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{{name}}"',
    "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public"
    ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{{name}}"',
    "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public"
    ' GRANT USAGE, SELECT ON SEQUENCES TO "{{name}}"',
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
RUNTIME_DEFAULT_TTL = "1h"
RUNTIME_MAX_TTL = "24h"


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


def create_runtime_role(client: Any, *, mount: str, name: str, connection: str) -> None:
    """Create (or replace) a role issuing runtime logins through ``connection``."""
    client.secrets.database.create_role(
        name=name,
        db_name=connection,
        creation_statements=list(RUNTIME_CREATION_STATEMENTS),
        revocation_statements=list(RUNTIME_REVOCATION_STATEMENTS),
        default_ttl=RUNTIME_DEFAULT_TTL,
        max_ttl=RUNTIME_MAX_TTL,
        mount_point=mount,
    )


def ensure_database_engine(client: Any, mount: str = DATABASE_MOUNT) -> str:
    """Enable the database secrets engine at ``mount`` unless present."""
    if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("database", path=mount)
    return mount


class OpenBao:
    name = "vault"

    def __init__(self, layout: DevLayout, creds: DevCredentials) -> None:
        self.port = layout.ports["vault"]
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
        return self.dir / "approle.json"

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
        self._configure_database(client)
        if "approle/" not in client.sys.list_auth_methods():
            client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy(APPROLE_NAME, POLICY)
        client.auth.approle.create_or_update_approle(
            APPROLE_NAME,
            token_policies=[APPROLE_NAME],
            token_ttl="1h",  # noqa: S106 - durations, not secrets
            token_max_ttl="24h",  # noqa: S106
        )
        role_id = client.auth.approle.read_role_id(APPROLE_NAME)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(APPROLE_NAME)["data"]["secret_id"]
        write_private(self.approle_path, json.dumps({"role_id": role_id, "secret_id": secret_id}))

    def _configure_database(self, client: hvac.Client) -> None:
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
            create_runtime_role(client, mount=mount, name=role, connection=region)

    def login_env(self) -> dict[str, str]:
        """The ``SWITCHYARD_*`` variables a Switchyard process needs to log in with the AppRole."""
        approle = self.approle()
        return {
            "SWITCHYARD_VAULT_ADDR": self.addr,
            "SWITCHYARD_VAULT_KV_MOUNT": KV_MOUNT,
            "SWITCHYARD_VAULT_ROLE_ID": approle["role_id"],
            "SWITCHYARD_VAULT_SECRET_ID": approle["secret_id"],
        }

    def approle(self) -> Mapping[str, str]:
        data: dict[str, str] = json.loads(self.approle_path.read_text())
        return data

    def endpoints(self) -> Mapping[str, str]:
        return {
            "vault": self.addr,
            "kv": f"{KV_MOUNT}/{SECRET_PREFIX}/",
            "database": f"{DATABASE_MOUNT}/creds/<region>-runtime",
        }
