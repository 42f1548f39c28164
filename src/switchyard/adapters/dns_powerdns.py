"""PowerDNS Authoritative behind the ``DnsProvider`` port: its HTTP API, and DNS to ask.

Mapping:

- An unweighted set is a plain ``A`` rrset.
- A weighted set is one ``LUA`` record of type A at the name, which PowerDNS evaluates per
  query: ``A "pickwrandom({{80, '127.0.1.1'}, {20, '127.0.2.1'}})"`` (addresses sorted).
  ``records`` parses it back; other LUA records at the name (another type, say TXT) are
  kept on every write, though they share the LUA rrset's TTL. A LUA A record in any other
  form, or a plain A rrset next to a LUA A record, cannot be represented: ``FatalError``.

Invariants:

- ``apply`` reads the name's rrsets, compares them with each ``before``
  (``switchyard.domain.dns.check_before``) and then sends one PATCH, which PowerDNS applies
  in one transaction. The API has no conditional write, so a change made by another process
  between that read and the PATCH is overwritten; a lock closes the window between threads
  sharing this adapter. (PowerDNS can also take RFC 2136 updates with prerequisites when
  ``dnsupdate=yes``; the local server does not enable it.)
- The API key lives in a :class:`~switchyard.domain.secrets.Secret`, revealed into one
  request header at a time; it is never on the client, in a repr or in an error.
- Every request has a timeout. Unreachable, timeout or 5xx -> ``TransientError``; 401/403
  (wrong key) and 4xx -> ``FatalError``; an unknown zone -> ``NotFoundError``.
- ``answer`` queries the PowerDNS DNS listener (non-recursive, must be authoritative). Its
  address is given, or read once from the API's ``/config`` (``local-address``,
  ``local-port``). The API purges PowerDNS's caches for the zone on every PATCH, so the very
  next query sees the change.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from switchyard.adapters.dns_rfc2136 import Endpoint, query_a
from switchyard.domain.dns import (
    Answer,
    Change,
    RecordSet,
    ServerAnswer,
    check_before,
    check_name,
    in_zone,
)
from switchyard.domain.secrets import Secret
from switchyard.errors import FatalError, NotFoundError, TransientError

DEFAULT_TIMEOUT_SECONDS = 5.0

_LUA_A = re.compile(r'^A\s+"pickwrandom\(\{(?P<body>.*)\}\)"$', re.DOTALL)
_LUA_ENTRY = re.compile(r"\{\s*(?P<weight>\d+)\s*,\s*'(?P<address>[^']*)'\s*\}")
_LUA_TYPE = re.compile(r"^\s*(?P<type>[A-Za-z0-9]+)\s")


def api_base(url: str) -> str:
    """The server URL of the API: ``http://host:port`` gets ``/api/v1/servers/localhost``."""
    url = url.rstrip("/")
    return url if "/api/v1/servers/" in url else url + "/api/v1/servers/localhost"


def lua_weighted(record: RecordSet) -> str:
    """The LUA record content that answers ``record`` by weighted random pick."""
    weights = record.weights if record.weights is not None else (1,) * len(record.values)
    entries = ", ".join(f"{{{w}, '{v}'}}" for v, w in zip(record.values, weights, strict=True))
    return f'A "pickwrandom({{{entries}}})"'


def parse_lua_weighted(name: str, ttl: int, content: str) -> RecordSet | None:
    """The weighted set a LUA A record answers; None if it is not in ``lua_weighted``'s form."""
    match = _LUA_A.match(content.strip())
    if match is None:
        return None
    body = match["body"]
    entries = [(int(m["weight"]), m["address"]) for m in _LUA_ENTRY.finditer(body)]
    if not entries or _LUA_ENTRY.sub("", body).replace(",", "").strip():
        return None
    try:
        return RecordSet(
            name=name,
            rtype="A",
            ttl=ttl,
            values=tuple(a for _, a in entries),
            weights=tuple(w for w, _ in entries),
        )
    except ValueError:
        return None


@dataclass(frozen=True)
class _Stored:
    """What PowerDNS holds at one name, parsed: the managed set and the LUA records kept."""

    name: str
    plain: RecordSet | None
    lua: RecordSet | None
    other_lua: tuple[str, ...]
    lua_ttl: int

    @property
    def current(self) -> RecordSet | None:
        if self.plain is not None and self.lua is not None:
            raise FatalError(
                f"powerdns: {self.name} has both a plain A rrset and a LUA A record; "
                "remove one by hand"
            )
        return self.plain if self.plain is not None else self.lua


class PowerDnsApiProvider:
    """The zone on one PowerDNS server; see the module docstring for the invariants."""

    supports_weights = True

    def __init__(
        self,
        zone: str,
        api_url: str,
        *,
        api_key: Secret,
        dns_server: tuple[str, int] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        name: str = "powerdns",
    ) -> None:
        self.zone = check_name(zone)
        self.name = name
        self._base = api_base(api_url)
        self._api_key = api_key
        self._dns_server = dns_server
        self._timeout = timeout
        self._lock = threading.Lock()  # one read-compare-PATCH at a time
        self._client_lock = threading.Lock()
        self._client: httpx.Client | None = None

    def records(self, name: str) -> tuple[RecordSet, ...]:
        current = self._read(self._owner(name)).current
        return () if current is None else (current,)

    def apply(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        names = [self._owner(change.name) for change in changes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: two changes to the same record in one batch")
        with self._lock:
            stored = {change.name: self._read(change.name) for change in changes}
            for change in changes:
                check_before(change, stored[change.name].current)
            rrsets = [rr for change in changes for rr in _rrsets(change, stored[change.name])]
            subject = "; ".join(change.describe() for change in changes)
            self._call("PATCH", self._zone_path(), f"updating {subject}", {"rrsets": rrsets})

    def answer(self, name: str) -> Answer:
        owner = self._owner(name)
        server, port = self._dns_address()
        endpoint = Endpoint(self.name, server, port, self._timeout)
        values, _ = query_a(endpoint, owner, tsig=None, transport="udp")
        return Answer((ServerAnswer(endpoint.address, values),))

    def close(self) -> None:
        """Release the HTTP connection pool."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _read(self, owner: str) -> _Stored:
        document = self._call(
            "GET", self._zone_path(), f"reading {owner}", params={"rrset_name": owner}
        )
        rrsets = document.get("rrsets") if isinstance(document, dict) else None
        if not isinstance(rrsets, list):
            raise FatalError(f"{self._where()}: unexpected zone document reading {owner}")
        plain: RecordSet | None = None
        lua: RecordSet | None = None
        other_lua: list[str] = []
        lua_ttl = 0
        for rrset in rrsets:
            if not isinstance(rrset, dict) or str(rrset.get("name", "")).lower() != owner:
                continue
            rtype, ttl, contents = _parse_rrset(rrset)
            if rtype == "A" and contents:
                plain = self._record(owner, ttl, contents)
            elif rtype == "LUA":
                lua_ttl = ttl
                for content in contents:
                    inner = _LUA_TYPE.match(content)
                    if inner is None or inner["type"].upper() != "A":
                        other_lua.append(content)
                        continue
                    parsed = parse_lua_weighted(owner, ttl, content)
                    if parsed is None or lua is not None:
                        raise FatalError(
                            f"{self._where()}: {owner} has a LUA A record Switchyard does not "
                            "manage (want one pickwrandom record)"
                        )
                    lua = parsed
        return _Stored(owner, plain, lua, tuple(other_lua), lua_ttl)

    def _record(self, owner: str, ttl: int, contents: list[str]) -> RecordSet:
        try:
            return RecordSet(name=owner, rtype="A", ttl=ttl, values=tuple(contents))
        except ValueError as exc:
            raise FatalError(f"{self._where()}: cannot represent {owner} A: {exc}") from None

    def _dns_address(self) -> tuple[str, int]:
        """The DNS listener: as given, or read once from the server's configuration."""
        if self._dns_server is not None:
            return self._dns_server
        settings = self._call("GET", "/config", "reading the DNS listener address")
        values = {
            str(item.get("name")): str(item.get("value", ""))
            for item in (settings if isinstance(settings, list) else [])
            if isinstance(item, dict)
        }
        try:
            port = int(values.get("local-port", "53") or "53")
        except ValueError:
            raise FatalError(f"{self._where()}: unreadable local-port setting") from None
        host = re.split(r"[,\s]+", values.get("local-address", "").strip())[0]
        if host.count(":") == 1:  # "address:port" (IPv4); the port overrides local-port
            host, _, inline = host.partition(":")
            port = int(inline) if inline.isdigit() else port
        if host in ("", "0.0.0.0", "::", "[::]"):  # a wildcard listener: reach it as the API
            host = urlsplit(self._base).hostname or "127.0.0.1"
        self._dns_server = (host, port)
        return self._dns_server

    def _zone_path(self) -> str:
        return "/zones/" + quote(self.zone, safe=".")

    def _call(
        self,
        method: str,
        path: str,
        action: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
    ) -> Any:
        """One API request with the key in its header; the JSON reply (None for 204)."""
        where = self._where()
        try:
            response = self._http().request(
                method,
                self._base + path,
                json=body,
                params=params,
                headers={"X-API-Key": self._api_key.reveal()},
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"{where}: timed out {action}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{where}: unreachable {action}: {type(exc).__name__}") from exc
        status = response.status_code
        if status in (200, 201, 204):
            return response.json() if status != 204 and response.content else None
        reason = _server_error(response)
        if status in (401, 403):
            raise FatalError(f"{where}: API key refused {action} (HTTP {status})")
        if status == 404:
            raise NotFoundError(f"{where}: zone {self.zone} not found {action}")
        if status >= 500:
            raise TransientError(f"{where}: HTTP {status} {action}: {reason}")
        raise FatalError(f"{where}: HTTP {status} {action}: {reason}")

    def _http(self) -> httpx.Client:
        # Built on first use: constructing the adapter does no I/O and loads no TLS context.
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout)
            return self._client

    def _owner(self, name: str) -> str:
        owner = check_name(name)
        if not in_zone(owner, self.zone):
            raise ValueError(f"{self.name}: {name} is outside zone {self.zone}")
        return owner

    def _where(self) -> str:
        return f"{self.name} {self._base}"

    def __repr__(self) -> str:
        return f"PowerDnsApiProvider(zone={self.zone!r}, api={self._base!r})"


def _parse_rrset(rrset: dict[str, Any]) -> tuple[str, int, list[str]]:
    """Type, TTL and the enabled records' contents of one API rrset."""
    records = rrset.get("records")
    ttl = rrset.get("ttl")
    contents = [
        str(record["content"])
        for record in (records if isinstance(records, list) else [])
        if isinstance(record, dict) and "content" in record and not record.get("disabled")
    ]
    return str(rrset.get("type", "")).upper(), ttl if isinstance(ttl, int) else 0, contents


def _rrsets(change: Change, stored: _Stored) -> list[dict[str, Any]]:
    """The PATCH rrsets that turn ``stored`` into ``change.after`` at one name."""
    name, after = stored.name, change.after
    out: list[dict[str, Any]] = []
    if after is not None and after.weights is None:
        out.append(_replace(name, "A", after.ttl, list(after.values)))
    elif stored.plain is not None:
        out.append({"name": name, "type": "A", "changetype": "DELETE"})
    lua = list(stored.other_lua)
    if after is not None and after.weights is not None:
        lua.append(lua_weighted(after))
        out.append(_replace(name, "LUA", after.ttl, lua))
    elif stored.lua is not None and lua:
        out.append(_replace(name, "LUA", stored.lua_ttl, lua))
    elif stored.lua is not None:
        out.append({"name": name, "type": "LUA", "changetype": "DELETE"})
    return out


def _replace(name: str, rtype: str, ttl: int, contents: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "type": rtype,
        "ttl": ttl,
        "changetype": "REPLACE",
        "records": [{"content": content, "disabled": False} for content in contents],
    }


def _server_error(response: httpx.Response) -> str:
    """PowerDNS's own ``error`` string (never the request), on one line."""
    try:
        document = response.json()
    except ValueError:
        return response.reason_phrase
    error = document.get("error") if isinstance(document, dict) else None
    return " ".join(str(error).split()) if error else response.reason_phrase
