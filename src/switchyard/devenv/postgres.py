"""PostgreSQL 15 clusters: one per region and one for the control plane (the witness)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import psycopg

from switchyard.devenv.layout import HOST, DevCredentials, DevLayout, write_private
from switchyard.devenv.process import ProcessSpec
from switchyard.errors import FatalError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or str(PG_BIN / name)
    if not Path(found).exists():
        raise FatalError(f"PostgreSQL binary {name!r} not found; run scripts/bootstrap.sh")
    return found


class PostgresCluster:
    """A cluster with ``wal_level=logical`` and one application database."""

    def __init__(
        self, name: str, port_key: str, database: str, layout: DevLayout, creds: DevCredentials
    ) -> None:
        self.name = name
        self.port = layout.ports[port_key]
        self.database = database
        self.dir = layout.data(name)
        self._password = creds.postgres_password

    @property
    def datadir(self) -> Path:
        return self.dir / "data"

    def url(self, database: str | None = None, driver: str = "postgresql+psycopg") -> str:
        db = database or self.database
        return f"{driver}://{PG_USER}:{self._password}@{HOST}:{self.port}/{db}"

    def conninfo(self, database: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(
            host=HOST,
            port=self.port,
            user=PG_USER,
            password=self._password,
            dbname=database,
            connect_timeout=2,
        )

    def fresh_database(self, name: str) -> str:
        """Drop ``name`` if it exists, create it empty, and return its SQLAlchemy URL (for
        tests and benchmarks that need a database of their own)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def prepare(self) -> None:
        if (self.datadir / "PG_VERSION").exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.dir / "initdb.pw"
        write_private(pwfile, self._password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.dir, PG_USER, PG_USER)
            shutil.chown(pwfile, PG_USER, PG_USER)
        try:
            subprocess.run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    PG_USER,
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                capture_output=True,
                user=PG_USER if os.geteuid() == 0 else None,
            )
        except subprocess.CalledProcessError as exc:
            raise FatalError(
                f"initdb for {self.name} failed: {exc.stderr.decode()[-500:]}"
            ) from None
        finally:
            pwfile.unlink(missing_ok=True)

    def process(self) -> ProcessSpec:
        settings = {
            "port": str(self.port),
            "listen_addresses": HOST,
            "unix_socket_directories": str(self.dir),
            "wal_level": "logical",
            "max_replication_slots": "16",
            "max_wal_senders": "16",
            # Bound what an abandoned replication slot can pin (CDC safety, see runbooks).
            "max_slot_wal_keep_size": "1GB",
            "log_min_messages": "warning",
        }
        argv = [_pg_bin("postgres"), "-D", str(self.datadir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
        return ProcessSpec(self.name, argv, user=PG_USER, stop_signal=signal.SIGINT)

    def ready(self) -> bool:
        try:
            with psycopg.connect(self.conninfo()) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def configure(self) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def endpoints(self) -> Mapping[str, str]:
        return {"postgres": f"postgresql://{PG_USER}@{HOST}:{self.port}/{self.database}"}
