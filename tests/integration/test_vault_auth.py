"""AppRole against the real OpenBao: login, policy denial, bad credentials, re-login."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from support.vault import ensure_kv_v2, root_client, unique_path
from switchyard.adapters.secrets_vault import AppRoleAuth, TokenAuth, VaultSecretStore
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, NotFoundError, TransientError

ALLOWED_PREFIX = "switchyard-approle"


@dataclass(frozen=True)
class AppRoleFixture:
    addr: str
    mount: str
    role_id: str
    secret_id: str


class RecordingRegistry:
    """A SecretRegistry that keeps what the adapter registers: the tokens it logs in with."""

    def __init__(self) -> None:
        self.revealed: list[str] = []

    def register(self, secret: Secret) -> None:
        self.revealed.append(secret.reveal())

    def tokens(self, *known: str) -> list[str]:
        """What was registered besides the ``known`` secret id and secret values."""
        return [value for value in self.revealed if value not in known]


@pytest.fixture(scope="module")
def root(vault_addr: str, vault_root_token: str) -> Any:
    return root_client(vault_addr, vault_root_token)


@pytest.fixture(scope="module")
def approle(vault_addr: str, root: Any) -> Iterator[AppRoleFixture]:
    mount = ensure_kv_v2(root)
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    name = f"switchyard-test-{uuid.uuid4().hex[:8]}"
    root.sys.create_or_update_acl_policy(
        name,
        f'path "{mount}/data/{ALLOWED_PREFIX}/*" {{ capabilities = ["create", "read", "update"] }}',
    )
    root.auth.approle.create_or_update_approle(
        name, token_policies=[name], token_ttl="2m", token_max_ttl="5m"
    )
    role_id = root.auth.approle.read_role_id(name)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id(name)["data"]["secret_id"]
    yield AppRoleFixture(vault_addr, mount, role_id, secret_id)
    root.auth.approle.delete_role(name)
    root.sys.delete_policy(name)


def _store(
    approle: AppRoleFixture, registry: RecordingRegistry, secret_id: str | None = None
) -> VaultSecretStore:
    auth = AppRoleAuth(approle.role_id, Secret(secret_id or approle.secret_id))
    return VaultSecretStore(approle.addr, auth, mount=approle.mount, redactor=registry)


def _everything_said(exc: BaseException) -> str:
    """The message and the whole chained traceback, as a log line would carry them."""
    return "".join(traceback.format_exception(exc))


def test_approle_login_then_write_and_read(approle: AppRoleFixture) -> None:
    store = _store(approle, RecordingRegistry())
    path = unique_path(ALLOWED_PREFIX)
    assert store.write(path, {"password": "approle-pw"}) == 1
    assert store.read(path).get("password").reveal() == "approle-pw"


def test_path_outside_policy_is_fatal_and_names_path_not_token(
    approle: AppRoleFixture, root: Any
) -> None:
    forbidden = unique_path("switchyard-elsewhere")
    root.secrets.kv.v2.create_or_update_secret(
        forbidden, secret={"k": "v"}, mount_point=approle.mount
    )
    registry = RecordingRegistry()
    store = _store(approle, registry)
    with pytest.raises(FatalError, match="permission denied") as caught:
        store.read(forbidden)
    assert not isinstance(caught.value, NotFoundError)
    assert forbidden in str(caught.value)
    # The secret id plus exactly one login token: a valid token that is denied is not re-logged.
    tokens = registry.tokens(approle.secret_id)
    assert len(tokens) == 1
    said = _everything_said(caught.value)
    assert tokens[0] not in said
    assert approle.secret_id not in said


def test_wrong_secret_id_is_a_clear_error_without_it(approle: AppRoleFixture) -> None:
    wrong = f"wrong-{uuid.uuid4()}"
    store = _store(approle, RecordingRegistry(), secret_id=wrong)
    with pytest.raises(FatalError, match="AppRole") as caught:
        store.read(unique_path(ALLOWED_PREFIX))
    assert "invalid role or secret id" in str(caught.value).lower()
    assert wrong not in _everything_said(caught.value)
    assert wrong not in repr(store)


def test_revoked_token_leads_to_one_new_login(approle: AppRoleFixture, root: Any) -> None:
    registry = RecordingRegistry()
    store = _store(approle, registry)
    path = unique_path(ALLOWED_PREFIX)
    store.write(path, {"k": "before"})
    [first_token] = registry.tokens(approle.secret_id, "before")
    root.auth.token.revoke(first_token)

    assert store.read(path).get("k").reveal() == "before"
    tokens = registry.tokens(approle.secret_id, "before")
    assert len(tokens) == 2  # exactly one new login
    assert tokens[0] == first_token != tokens[1]


def test_token_auth_with_dead_token_is_fatal_without_token(vault_addr: str, root: Any) -> None:
    mount = ensure_kv_v2(root)
    token = root.auth.token.create(policies=["default"], ttl="1m")["auth"]["client_token"]
    root.auth.token.revoke(token)
    store = VaultSecretStore(vault_addr, TokenAuth(Secret(token)), mount=mount)
    path = unique_path(ALLOWED_PREFIX)
    with pytest.raises(FatalError, match="permission denied") as caught:
        store.read(path)
    assert path in str(caught.value)
    assert token not in _everything_said(caught.value)


def test_unreachable_server_is_transient() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    store = VaultSecretStore("http://127.0.0.1:9", TokenAuth(Secret("unused-token")), timeout=1.0)
    with pytest.raises(TransientError, match="unreachable"):
        store.read("any/path")
