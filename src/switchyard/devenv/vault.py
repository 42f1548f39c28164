"""OpenBao (the Vault API) in dev mode, seeded with the secrets the control plane reads.

Dev mode keeps everything in memory, so ``configure`` seeds it again after every start.
The control plane logs in with AppRole (role id and secret id handed to its process
environment by the harness); it is never given the root token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import hvac

from switchyard.devenv.dns import TSIG_KEY_NAME
from switchyard.devenv.layout import HOST, DevCredentials, DevLayout, write_private
from switchyard.devenv.process import ProcessSpec, find_binary, http_ok

KV_MOUNT = "secret"
SECRET_PREFIX = "switchyard"  # noqa: S105 - a KV path, not a secret
APPROLE_NAME = "switchyard-control"
POLICY = f"""
path "{KV_MOUNT}/data/{SECRET_PREFIX}/*" {{ capabilities = ["read"] }}
path "{KV_MOUNT}/metadata/{SECRET_PREFIX}/*" {{ capabilities = ["read", "list"] }}
"""


class OpenBao:
    name = "vault"

    def __init__(self, layout: DevLayout, creds: DevCredentials) -> None:
        self.port = layout.ports["vault"]
        self.dir = layout.data(self.name)
        self._creds = creds

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
        return {"vault": self.addr, "kv": f"{KV_MOUNT}/{SECRET_PREFIX}/"}
