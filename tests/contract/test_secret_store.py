"""One contract for every SecretStore adapter: the in-memory twin and Vault (real OpenBao)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from support.vault import ensure_kv_v2, root_client, unique_path
from switchyard.adapters.secrets_memory import InMemorySecretStore
from switchyard.adapters.secrets_vault import TokenAuth, VaultSecretStore
from switchyard.domain.secrets import Secret
from switchyard.errors import ConflictError, NotFoundError
from switchyard.ports.secrets import SecretStore


@pytest.fixture(scope="module")
def vault_kv_mount(vault_addr: str, vault_root_token: str) -> str:
    return ensure_kv_v2(root_client(vault_addr, vault_root_token))


@pytest.fixture(params=["memory", "vault"])
def secret_store(request: pytest.FixtureRequest) -> Iterator[SecretStore]:
    if request.param == "memory":
        yield InMemorySecretStore()
        return
    # Looked up here, not declared, so the memory half runs even without a server.
    addr: str = request.getfixturevalue("vault_addr")
    token: str = request.getfixturevalue("vault_root_token")
    mount: str = request.getfixturevalue("vault_kv_mount")
    store = VaultSecretStore(addr, TokenAuth(Secret(token)), mount=mount)
    yield store
    store.close()


def test_write_then_read_latest(secret_store: SecretStore) -> None:
    path = unique_path()
    version = secret_store.write(path, {"user": "app", "password": "pw-one"})
    value = secret_store.read(path)
    assert value.path == path
    assert value.version == version == 1
    assert value.get("user").reveal() == "app"
    assert value.get("password").reveal() == "pw-one"


def test_versions_increase_by_one(secret_store: SecretStore) -> None:
    path = unique_path()
    versions = [secret_store.write(path, {"k": f"v{n}"}) for n in range(3)]
    assert versions == [1, 2, 3]
    assert secret_store.read(path).get("k").reveal() == "v2"


def test_read_older_version(secret_store: SecretStore) -> None:
    path = unique_path()
    secret_store.write(path, {"k": "old"})
    secret_store.write(path, {"k": "new"})
    older = secret_store.read(path, version=1)
    assert older.version == 1
    assert older.get("k").reveal() == "old"


def test_missing_path_is_not_found_and_named(secret_store: SecretStore) -> None:
    path = unique_path()
    with pytest.raises(NotFoundError, match=path):
        secret_store.read(path)


def test_missing_version_is_not_found(secret_store: SecretStore) -> None:
    path = unique_path()
    secret_store.write(path, {"k": "v"})
    with pytest.raises(NotFoundError, match=path):
        secret_store.read(path, version=5)


def test_missing_key_is_not_found_without_values(secret_store: SecretStore) -> None:
    path = unique_path()
    secret_store.write(path, {"k": "value-that-must-not-leak"})
    with pytest.raises(NotFoundError, match="absent") as caught:
        secret_store.read(path).get("absent")
    assert "value-that-must-not-leak" not in str(caught.value)


def test_cas_zero_creates_only_when_absent(secret_store: SecretStore) -> None:
    path = unique_path()
    assert secret_store.write(path, {"k": "first"}, cas=0) == 1
    with pytest.raises(ConflictError):
        secret_store.write(path, {"k": "second"}, cas=0)
    assert secret_store.read(path).get("k").reveal() == "first"


def test_cas_equal_to_current_version_writes(secret_store: SecretStore) -> None:
    path = unique_path()
    secret_store.write(path, {"k": "v1"})
    secret_store.write(path, {"k": "v2"})
    assert secret_store.write(path, {"k": "v3"}, cas=2) == 3
    assert secret_store.read(path).get("k").reveal() == "v3"


@pytest.mark.parametrize("cas", [1, 3])
def test_cas_mismatch_conflicts_and_writes_nothing(secret_store: SecretStore, cas: int) -> None:
    path = unique_path()
    secret_store.write(path, {"k": "v1"})
    secret_store.write(path, {"k": "v2"})
    with pytest.raises(ConflictError):
        secret_store.write(path, {"k": "lost"}, cas=cas)
    latest = secret_store.read(path)
    assert (latest.version, latest.get("k").reveal()) == (2, "v2")


def test_cas_on_absent_path_with_nonzero_version_conflicts(secret_store: SecretStore) -> None:
    with pytest.raises(ConflictError):
        secret_store.write(unique_path(), {"k": "v"}, cas=1)


def test_concurrent_create_has_one_winner(secret_store: SecretStore) -> None:
    path = unique_path()
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        try:
            secret_store.write(path, {"writer": str(n)}, cas=0)
            outcome = "won"
        except ConflictError:
            outcome = "lost"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert secret_store.read(path).version == 1


def test_values_come_back_as_masked_secrets(secret_store: SecretStore) -> None:
    path = unique_path()
    secret_store.write(path, {"password": Secret("s3cr3t-Value")})
    value = secret_store.read(path)
    password = value.get("password")
    assert isinstance(password, Secret)
    for rendering in (repr(value), str(value), repr(password), f"{password}", str(value.data)):
        assert "s3cr3t-Value" not in rendering
    assert "password" in repr(value)


@pytest.mark.parametrize("path", ["", "/lead", "trail/", "a//b"])
def test_malformed_paths_are_refused(secret_store: SecretStore, path: str) -> None:
    with pytest.raises(ValueError, match="invalid secret path"):
        secret_store.read(path)
    with pytest.raises(ValueError, match="invalid secret path"):
        secret_store.write(path, {"k": "v"})


def test_version_below_one_is_refused(secret_store: SecretStore) -> None:
    path = unique_path()
    secret_store.write(path, {"k": "v"})
    with pytest.raises(ValueError, match="version"):
        secret_store.read(path, version=0)
