"""Secrets never show in reprs, serialisations or log lines."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import pickle
from collections.abc import Iterator

import pydantic
import pytest

from switchyard.adapters.secrets_memory import InMemorySecretStore
from switchyard.adapters.secrets_vault import AppRoleAuth, TokenAuth, VaultSecretStore
from switchyard.domain.secrets import MASK, Secret, SecretValue
from switchyard.errors import NotFoundError
from switchyard.observability.logging import Redactor, configure_logging, log_event

# Quote, backslash and non-ASCII: JSON escaping must not let the value slip past the redactor.
RAW = 'pa"ss\\wörd-7f3a'
REQUIRED_KEYS = {"ts", "level", "event", "region", "trace_id"}


def renderings(value: object) -> list[str]:
    return [
        repr(value),
        str(value),
        f"{value}",
        f"{value!r}",
        "%s" % (value,),  # noqa: UP031 - %-formatting is what logging does with args
        format(value, ""),
        json.dumps(value, default=str),
    ]


def test_secret_renders_only_the_mask() -> None:
    secret = Secret(RAW)
    for text in renderings(secret):
        assert RAW not in text
        assert MASK in text
    assert f"{secret:>40}" == f"{MASK:>40}"
    assert str(Secret("x")) == str(Secret("a much longer secret value")) == MASK
    assert secret.reveal() == RAW


def test_secret_equality_is_by_value_and_never_with_plain_strings() -> None:
    assert Secret(RAW) == Secret(RAW)
    assert Secret(RAW) != Secret(RAW + "x")
    assert Secret(RAW) != RAW
    assert len({Secret(RAW), Secret(RAW)}) == 1


def test_secret_is_immutable_and_refuses_pickle() -> None:
    secret = Secret(RAW)
    with pytest.raises(AttributeError):
        secret._value = "other"
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(secret)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(SecretValue("a/b", 1, {"k": secret}))
    assert copy.deepcopy(secret) is secret
    with pytest.raises(TypeError):
        Secret(1234)  # type: ignore[arg-type]


def test_secret_as_pydantic_field_validates_and_dumps_the_mask() -> None:
    class Settings(pydantic.BaseModel):
        token: Secret

    settings = Settings.model_validate({"token": RAW})
    assert isinstance(settings.token, Secret)
    assert settings.token.reveal() == RAW
    assert Settings(token=Secret(RAW)).token == settings.token
    for text in (repr(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert RAW not in text
    assert settings.model_dump_json() == json.dumps({"token": MASK}, separators=(",", ":"))


def test_secret_value_repr_shows_path_version_and_keys_only() -> None:
    value = SecretValue("db/app", 3, {"user": Secret("app"), "password": Secret(RAW)})
    for text in renderings(value):
        assert RAW not in text
    assert repr(value) == "SecretValue(path='db/app', version=3, keys=['password', 'user'])"


def test_secret_value_missing_key_names_path_and_key_not_values() -> None:
    value = SecretValue("db/app", 3, {"password": Secret(RAW)})
    with pytest.raises(NotFoundError) as caught:
        value.get("username")
    assert "db/app" in str(caught.value)
    assert "username" in str(caught.value)
    assert RAW not in str(caught.value)


def test_secret_value_data_cannot_be_changed() -> None:
    data = {"password": Secret(RAW)}
    value = SecretValue("db/app", 1, data)
    data["password"] = Secret("changed")
    assert value.get("password").reveal() == RAW
    with pytest.raises(TypeError):
        value.data["password"] = Secret("x")  # type: ignore[index]


def test_auth_values_and_adapter_hide_credentials() -> None:
    token_auth = TokenAuth(Secret(RAW))
    approle = AppRoleAuth("role-1", Secret(RAW))
    store = VaultSecretStore("http://127.0.0.1:9", approle)  # no I/O until first use
    for value in (token_auth, approle, store):
        for text in renderings(value):
            assert RAW not in text
    assert RAW not in json.dumps(dataclasses.asdict(approle), default=str)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield io.StringIO()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    raw = stream.getvalue()
    assert RAW not in raw
    # The JSON-escaped form must be absent too, not only the raw form.
    assert json.dumps(RAW)[1:-1] not in raw
    parsed = [json.loads(line) for line in raw.splitlines()]
    for line in parsed:
        assert line.keys() >= REQUIRED_KEYS
    return parsed


def test_secret_field_is_masked_and_line_has_required_keys(log_stream: io.StringIO) -> None:
    configure_logging(logging.DEBUG, "eu-west", log_stream, trace_id=lambda: "trace-1")
    log_event(logging.getLogger("switchyard.test"), "vault.login", token=Secret(RAW), attempt=2)
    [line] = lines(log_stream)
    assert line["event"] == "vault.login"
    assert line["level"] == "info"
    assert line["region"] == "eu-west"
    assert line["trace_id"] == "trace-1"
    assert line["token"] == MASK
    assert line["attempt"] == 2
    assert str(line["ts"]).endswith("Z")


def test_revealed_value_in_message_and_fields_is_masked(log_stream: io.StringIO) -> None:
    redactor = configure_logging(logging.INFO, "eu-west", log_stream)
    redactor.register(Secret(RAW))
    logger = logging.getLogger("switchyard.test")
    logger.info("connecting with password %s", RAW)
    log_event(logger, "dsn.built", dsn=f"postgresql://app:{RAW}@db/app", nested={"k": [RAW]})
    first, second = lines(log_stream)
    assert first["event"] == f"connecting with password {MASK}"
    assert second["dsn"] == f"postgresql://app:{MASK}@db/app"
    assert second["nested"] == {"k": [MASK]}


def test_exception_text_and_traceback_are_masked(log_stream: io.StringIO) -> None:
    redactor = Redactor()
    configure_logging(logging.INFO, "eu-west", log_stream, redactor=redactor)
    redactor.register(Secret(RAW))
    try:
        raise RuntimeError(f"driver said: bad password {RAW}")
    except RuntimeError:
        logging.getLogger("switchyard.test").exception("db.connect_failed")
    [line] = lines(log_stream)
    assert "RuntimeError: driver said: bad password" in str(line["exc"])
    assert MASK in str(line["exc"])


def test_values_a_store_handles_are_masked_in_logs(log_stream: io.StringIO) -> None:
    redactor = configure_logging(logging.INFO, "eu-west", log_stream)
    store = InMemorySecretStore(redactor=redactor)
    store.write("db/app", {"password": RAW})
    revealed = store.read("db/app").get("password").reveal()
    logging.getLogger("switchyard.test").warning("oops %s", revealed)
    [line] = lines(log_stream)
    assert line["event"] == f"oops {MASK}"


def test_fields_cannot_overwrite_required_keys(log_stream: io.StringIO) -> None:
    configure_logging(logging.INFO, "eu-west", log_stream)
    logging.getLogger("switchyard.test").info("x", extra={"fields": {"region": "spoofed"}})
    [line] = lines(log_stream)
    assert line["region"] == "eu-west"
    assert line["field_region"] == "spoofed"


def test_configure_logging_twice_keeps_one_handler(log_stream: io.StringIO) -> None:
    configure_logging(logging.INFO, "eu-west", log_stream)
    configure_logging(logging.INFO, "eu-west", log_stream)
    logging.getLogger("switchyard.test").info("once")
    assert len(lines(log_stream)) == 1


def test_short_values_are_not_masked_by_value_but_secrets_are() -> None:
    redactor = Redactor()
    redactor.register(Secret("on"))
    assert redactor.redact("turn it on") == "turn it on"
    assert f"{Secret('on')}" == MASK
