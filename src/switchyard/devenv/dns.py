"""The GSLB zone served two ways: Knot (RFC 2136 updates signed with TSIG) and PowerDNS
(HTTP API, LUA records for weighted answers). Both run unprivileged on loopback."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from switchyard.devenv.layout import HOST, DevCredentials, DevLayout, write_private
from switchyard.devenv.process import ProcessSpec, find_binary
from switchyard.errors import FatalError

ZONE = "gslb.switchyard.test."
RECORD = "chat"
TSIG_KEY_NAME = "switchyard-tsig."
# Each region's runtime gets its own loopback address, so DNS answers are distinguishable.
REGION_ADDRESSES = {"region-a": "127.0.1.1", "region-b": "127.0.2.1"}
UNPRIVILEGED = "nobody"
PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


def soa_answers(port: int) -> bool:
    """True when a DNS server on loopback answers the zone's SOA authoritatively."""
    query = dns.message.make_query(ZONE, dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return False
    return bool(response.answer) and bool(response.flags & dns.flags.AA)


def record_answer(port: int, name: str = f"{RECORD}.{ZONE}") -> list[str] | None:
    """The A addresses a DNS server on loopback answers for ``name`` (sorted); None when it
    does not answer."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    try:
        response = dns.query.udp(query, HOST, port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return None
    return sorted(rr.address for rrset in response.answer for rr in rrset)


def _own(path: Path) -> None:
    """Hand a folder to the unprivileged user the server runs as."""
    if os.geteuid() == 0:
        for p in [path, *path.rglob("*")]:
            shutil.chown(p, UNPRIVILEGED, "nogroup")


class KnotDns:
    name = "knot"

    def __init__(self, layout: DevLayout, creds: DevCredentials) -> None:
        self.port = layout.ports["knot"]
        self.dir = layout.data(self.name)
        self._tsig_secret = creds.tsig_secret

    def prepare(self) -> None:
        for sub in ("db", "zones", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        zonefile = self.dir / "zones" / f"{ZONE}zone"
        if not zonefile.exists():  # Knot owns the zone once it runs; never overwrite updates
            zonefile.write_text(_zone_text(REGION_ADDRESSES["region-a"]))
        write_private(
            self.dir / "knot.conf",
            f"""\
server:
    listen: {HOST}@{self.port}
    rundir: {self.dir / "run"}

database:
    storage: {self.dir / "db"}

log:
  - target: stderr
    any: warning

key:
  - id: {TSIG_KEY_NAME}
    algorithm: hmac-sha256
    secret: {self._tsig_secret}

acl:
  - id: tsig-update
    key: {TSIG_KEY_NAME}
    action: update

template:
  - id: default
    storage: {self.dir / "zones"}
    file: "%s.zone"
    # Updates live in the journal; flushing the zone file caused ~1 s stalls (INFRA.md).
    zonefile-sync: -1
    # "difference" (not "-no-serial"): the zone file's serial stays 1, so Knot sees the file
    # unchanged and keeps the journal's updates; "-no-serial" re-applied the stale file on
    # every start and silently reverted every update made before a restart.
    zonefile-load: difference
    journal-content: all

zone:
  - domain: {ZONE}
    acl: tsig-update
""",
        )
        _own(self.dir)

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [find_binary("knotd"), "-c", str(self.dir / "knot.conf")],
            user=UNPRIVILEGED,
        )

    def ready(self) -> bool:
        return soa_answers(self.port)

    def configure(self) -> None:
        """The zone is loaded from its file; nothing else to create."""

    def endpoints(self) -> Mapping[str, str]:
        return {"dns": f"{HOST}:{self.port}", "zone": ZONE, "tsig_key": TSIG_KEY_NAME}


class PowerDns:
    name = "pdns"

    def __init__(self, layout: DevLayout, creds: DevCredentials) -> None:
        self.dns_port = layout.ports["pdns_dns"]
        self.api_port = layout.ports["pdns_api"]
        self.dir = layout.data(self.name)
        self._api_key = creds.pdns_api_key

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}/api/v1/servers/localhost"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        db = self.dir / "pdns.sqlite3"
        if not db.exists():
            with sqlite3.connect(db) as conn:
                conn.executescript(PDNS_SCHEMA.read_text())
        # The API key lives in a 0600 config file, never on the command line (visible in ps).
        write_private(
            self.dir / "pdns.conf",
            f"""\
launch=gsqlite3
gsqlite3-database={db}
local-address={HOST}
local-port={self.dns_port}
api=yes
api-key={self._api_key}
webserver=yes
webserver-address={HOST}
webserver-port={self.api_port}
webserver-allow-from=127.0.0.0/8
enable-lua-records=yes
security-poll-suffix=
socket-dir={self.dir}
daemon=no
guardian=no
disable-syslog=yes
write-pid=no
loglevel=4
""",
        )
        _own(self.dir)

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            self.name,
            [find_binary("pdns_server"), f"--config-dir={self.dir}"],
            user=UNPRIVILEGED,
        )

    def _api(self, method: str, path: str, body: object | None = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - fixed loopback http URL
            self.api_url + path,
            data=data,
            method=method,
            headers={"X-API-Key": self._api_key, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0

    def ready(self) -> bool:
        return self._api("GET", "") == 200

    def configure(self) -> None:
        if self._api("GET", f"/zones/{ZONE}") == 200:
            return
        status = self._api(
            "POST",
            "/zones",
            {
                "name": ZONE,
                "kind": "Native",
                "nameservers": [f"ns1.{ZONE}"],
                "rrsets": [
                    _rrset(f"ns1.{ZONE}", "A", [HOST]),
                    _rrset(f"{RECORD}.{ZONE}", "A", [REGION_ADDRESSES["region-a"]]),
                ],
            },
        )
        if status != 201:
            raise FatalError(f"PowerDNS refused to create zone {ZONE}: HTTP {status}")

    def endpoints(self) -> Mapping[str, str]:
        return {"dns": f"{HOST}:{self.dns_port}", "api": self.api_url, "zone": ZONE}


def _rrset(name: str, rtype: str, contents: list[str], ttl: int = 30) -> dict[str, object]:
    return {
        "name": name,
        "type": rtype,
        "ttl": ttl,
        "changetype": "REPLACE",
        "records": [{"content": c, "disabled": False} for c in contents],
    }


def _zone_text(address: str) -> str:
    return f"""\
$ORIGIN {ZONE}
$TTL 30
@       SOA  ns1 hostmaster 1 60 30 600 30
@       NS   ns1
ns1     A    {HOST}
{RECORD}    A    {address}
"""
