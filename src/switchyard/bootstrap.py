"""The one composition root: builds adapters from settings and wires them together.

Nothing else in the package constructs clients, engines or settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from switchyard import __version__
from switchyard.adapters.credential_keeper import CredentialKeeper, LeasedLogin
from switchyard.adapters.credentials_vault import VaultCredentialLeases
from switchyard.adapters.probes import ProbeClients
from switchyard.adapters.secrets_vault import VaultSecretStore
from switchyard.adapters.vault_session import VaultSession, auth_from_settings
from switchyard.api.auth import TokenTable
from switchyard.api.context import ApiContext
from switchyard.controller.loop import Controller
from switchyard.db import migrate
from switchyard.db.engine import make_engine, unit_of_work
from switchyard.db.region_state import RegionState, seed_region_state
from switchyard.db.regions import ensure_regions
from switchyard.dialog.admission import LaneLimits, ServingLimits
from switchyard.dialog.app import create_runtime_app
from switchyard.dialog.chunking import CHUNKER_VERSION
from switchyard.dialog.contact import ContactMiddleware, ControlPlaneContact
from switchyard.dialog.documents import load_corpus, load_document
from switchyard.dialog.embedding import Embedder, MiniLmEmbedder
from switchyard.dialog.golden import load_golden
from switchyard.dialog.index import SearchIndex, build_index
from switchyard.dialog.intents import DEFAULT_INTENTS, IntentClassifier
from switchyard.dialog.live_index import LiveIndex, reconcile
from switchyard.dialog.llm import LlmGateway, LlmSettings
from switchyard.dialog.manager import DialogManager
from switchyard.dialog.retrieval import Retriever
from switchyard.dialog.runtime import DialogRuntime
from switchyard.dialog.sessions import stored_documents
from switchyard.dialog.store import IndexMismatchError, IndexStore
from switchyard.dialog.tools import HttpTicketTool, ToolRegistry
from switchyard.domain.region import Region, RegionRole, initial_epoch
from switchyard.domain.secrets import Secret, SecretValue
from switchyard.errors import ConfigError, TransientError
from switchyard.observability.logging import Redactor, log_event
from switchyard.observability.metrics import (
    ApiMetrics,
    CdcMetrics,
    ControllerMetrics,
    DialogMetrics,
    ReplicationGauges,
)
from switchyard.ports.control import ControlStore
from switchyard.ports.credentials import CredentialLeases
from switchyard.ports.objects import ObjectStore
from switchyard.ports.secrets import SecretStore
from switchyard.settings import Settings
from switchyard.snapshots.gate import golden_gate
from switchyard.snapshots.restore import Restorer, live_restorer
from switchyard.snapshots.status import SnapshotWatch
from switchyard.snapshots.sync import RestoreRequest, runtime_restorer
from switchyard.topology import RegionSpec, Topology, load_topology

_log = logging.getLogger(__name__)


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


def build_vault_session(settings: Settings, redactor: Redactor) -> VaultSession:
    """The process's Vault login (token or AppRole); builds without I/O, logs in on first use."""
    auth = auth_from_settings(
        token=settings.vault_token,
        role_id=settings.vault_role_id,
        secret_id=settings.vault_secret_id,
    )
    return VaultSession(settings.vault_addr, auth, redactor=redactor)


def build_secret_store(
    settings: Settings, redactor: Redactor, session: VaultSession | None = None
) -> VaultSecretStore:
    session = session or build_vault_session(settings, redactor)
    return VaultSecretStore(
        session.addr, session.auth, mount=settings.vault_kv_mount, session=session
    )


def build_credential_leases(
    settings: Settings, redactor: Redactor, session: VaultSession | None = None
) -> VaultCredentialLeases:
    """Database logins from Vault's database engine (mounted at ``database/``), through
    ``session`` (the secret store's login, so one token serves both). Builds without I/O."""
    session = session or build_vault_session(settings, redactor)
    return VaultCredentialLeases(session.addr, session.auth, session=session)


def _vault_session(secrets: SecretStore) -> VaultSession | None:
    """The Vault login behind ``secrets``, to share with other Vault adapters."""
    return secrets.session if isinstance(secrets, VaultSecretStore) else None


def start_credential_keeper(
    name: str, secrets: SecretStore, *logins: LeasedLogin
) -> CredentialKeeper:
    """Keep the Vault token behind ``secrets`` (when it is Vault's) and ``logins`` alive, on a
    daemon thread (see ``switchyard.adapters.credential_keeper``); stop it on shutdown."""
    steps = [login.keep_alive for login in logins]
    if isinstance(secrets, VaultSecretStore):
        steps.insert(0, secrets.session.keep_alive)
    return CredentialKeeper(name, steps).start()


def build_core(settings: Settings, redactor: Redactor) -> Core:
    topology = load_topology(settings.topology_file)
    secrets = build_secret_store(settings, redactor)
    url = _with_credentials(
        make_url(settings.require_control_db_url()), secrets.read(settings.control_db_secret)
    )
    return Core(settings, topology, secrets, make_engine(url.reveal()), url)


def _with_credentials(url: URL, creds: SecretValue) -> Secret:
    """``url`` with the username and password from a Vault secret, wrapped so it prints masked."""
    with_creds = url.set(
        username=creds.get("username").reveal(), password=creds.get("password").reveal()
    )
    return Secret(with_creds.render_as_string(hide_password=False))


def build_api_context(core: Core) -> ApiContext:
    tokens = core.secrets.read(core.settings.api_tokens_secret)
    table = TokenTable.from_secret(f"vault:{core.settings.api_tokens_secret}", tokens.data)
    from switchyard.adapters.control_postgres import PostgresControlStore
    from switchyard.adapters.replication_postgres import PostgresReplicationMonitor

    metrics = ApiMetrics.create(__version__)
    return ApiContext(
        engine=core.engine,
        tokens=table,
        metrics=metrics,
        expected_revision=migrate.head_revision(),
        control=PostgresControlStore(core.engine),
        replication=PostgresReplicationMonitor(_region_engines(core)),
        replication_gauges=ReplicationGauges.create(metrics.registry),
        snapshot_stores={
            r.name: build_object_store(r, core.secrets, quick=True) for r in core.topology.regions
        },
    )


def _region_engines(core: Core) -> dict[str, Engine]:
    """An engine per region with the control plane's static credentials for its database
    (read lazily: nothing connects until used)."""
    return {
        name: s.engine for name, s in control_region_stores(core.topology, core.secrets).items()
    }


def prepare_store(core: Core) -> list[Region]:
    """Migrate the control-plane store to head and record the topology's new regions."""
    migrate.upgrade(core.control_db_url.reveal())
    with unit_of_work(core.engine) as session:
        return ensure_regions(
            session=session,
            specs=[(r.name, r.initial_role) for r in core.topology.regions],
        )


# -- the dialog runtime of one region ----------------------------------------------------------


@dataclass(frozen=True)
class RegionStore:
    """A region's database: its spec, an engine with Vault-issued credentials, and the URL
    (masked) for migrations."""

    spec: RegionSpec
    engine: Engine
    url: Secret
    login: LeasedLogin | None = None  # the leased login, when the engine logs in with one


def build_region_store(settings: Settings, region: str, redactor: Redactor) -> RegionStore:
    spec = region_spec(settings, region)
    secrets = build_secret_store(settings, redactor)
    return _region_store(spec, secrets)


def region_spec(settings: Settings, region: str) -> RegionSpec:
    """The topology's entry for ``region``; ConfigError naming the file if there is none."""
    return named_region(load_topology(settings.topology_file), settings.topology_file, region)


def named_region(topology: Topology, source: Path, region: str) -> RegionSpec:
    """``topology``'s entry for ``region``; ConfigError naming ``source`` if there is none."""
    names = [r.name for r in topology.regions]
    if region not in names:
        raise ConfigError(
            str(source),
            "regions",
            f"no region named {region!r}; the topology has {', '.join(names)}",
        )
    return topology.region(region)


def _region_store(
    spec: RegionSpec,
    secrets: SecretStore,
    leases: CredentialLeases | None = None,
    *,
    token_generation: Callable[[], int] = lambda: 0,
    withheld: Callable[[], str | None] = lambda: None,
    statement_timeout_seconds: float | None = None,
) -> RegionStore:
    """The region's engine, logged in one of two ways, chosen by the caller:

    - ``leases`` given and the topology names a ``lease_role`` (the runtime): a login issued
      for that role (see ``_leased_engine``), so fencing the region (revoking the role) locks
      the runtime out and ends its pooled connections. It may read and write rows, not migrate;
      ``url`` then carries no credentials.
    - otherwise (migrations, seeding the region's state): the static ``credentials_secret``.
    """
    db = spec.database
    address = URL.create("postgresql+psycopg", host=db.host, port=db.port, database=db.name)
    if leases is not None and db.lease_role is not None:
        url = Secret(address.render_as_string(hide_password=False))
        engine, login = _leased_engine(url, leases, db.lease_role, token_generation, withheld)
        return RegionStore(spec, engine, url, login)
    url = _with_credentials(address, secrets.read(db.credentials_secret))
    engine = make_engine(url.reveal(), statement_timeout_seconds=statement_timeout_seconds)
    return RegionStore(spec, engine, url)


def control_region_stores(topology: Topology, secrets: SecretStore) -> dict[str, RegionStore]:
    """The control plane's connections to every region's database (static credentials),
    every statement and lock wait limited so that it fits inside a saga step (see
    ``LoopSettings.region_statement_timeout_seconds``): a region database that hangs costs
    the step, never the leader's lease."""
    from switchyard.controller.view import loop_settings

    limit = loop_settings(topology).region_statement_timeout_seconds
    return {
        r.name: _region_store(r, secrets, statement_timeout_seconds=limit) for r in topology.regions
    }


def _leased_engine(
    url: Secret,
    leases: CredentialLeases,
    role: str,
    token_generation: Callable[[], int] = lambda: 0,
    withheld: Callable[[], str | None] = lambda: None,
) -> tuple[Engine, LeasedLogin]:
    """An engine whose connections log in with the current lease of ``role`` (a
    ``LeasedLogin``), issued on the first connection (so a runtime still starts while its
    database or Vault is down; until a lease is issued every connection attempt tries again,
    failing with ``TransientError``).

    The login lasts while a ``CredentialKeeper`` runs its ``keep_alive``: renewed at 2/3 of
    the TTL, re-issued near ``max_ttl`` or after the Vault token changed, and then the pool is
    disposed so new connections use the new login while those in use finish their request.
    A lease Vault no longer knows (fencing revoked it, or it expired) is never replaced:
    reconnecting fails (the runtime answers 503 and is not ready) until a restart. While
    ``withheld()`` gives a reason (no controller in touch) nothing is renewed or re-issued.
    """
    engine = make_engine(url.reveal())
    login = LeasedLogin(
        leases,
        role,
        token_generation=token_generation,
        on_replaced=engine.dispose,
        withheld=withheld,
    )

    @event.listens_for(engine, "do_connect")
    def _log_in(dialect: object, record: object, cargs: object, cparams: dict[str, object]) -> None:
        lease = login.login()
        cparams["user"] = lease.username
        cparams["password"] = lease.password.reveal()

    return engine, login


def prepare_region_store(store: RegionStore) -> RegionState:
    """Migrate the region's schema to head and record its initial role (once; the control
    plane owns it afterwards). Returns the recorded state."""
    migrate.upgrade(store.url.reveal(), schema=migrate.REGION)
    role = store.spec.initial_role
    with unit_of_work(store.engine) as session:
        return seed_region_state(
            session=session, region=store.spec.name, role=role, epoch=initial_epoch(role)
        )


@dataclass(frozen=True)
class RuntimeParts:
    app: FastAPI
    runtime: DialogRuntime
    host: str
    port: int
    keeper: CredentialKeeper | None = None  # keeps the Vault token and database lease alive


def build_runtime(
    settings: Settings, region: str, redactor: Redactor, *, embedder: Embedder | None = None
) -> RuntimeParts:
    """Everything ``switchyard runtime --region NAME`` serves, ready to run.

    The index is loaded from ``<data_dir>/<region>/index`` when one was saved by this model and
    chunker, otherwise built from the corpus folder; then documents added through the API
    (recorded in the region's database) are indexed if missing. A database that is down at
    start-up does not stop the runtime: it serves what it has and reports not ready.
    """
    spec = region_spec(settings, region)
    session = build_vault_session(settings, redactor)
    secrets = build_secret_store(settings, redactor, session)
    contact = ControlPlaneContact(settings.runtime_contact_timeout_seconds)
    store = _region_store(
        spec,
        secrets,
        build_credential_leases(settings, redactor, session),
        token_generation=lambda: session.token_generation,
        withheld=contact.withheld,
    )
    embedder = embedder or MiniLmEmbedder()
    index_store = IndexStore(settings.data_dir / region / "index")
    index = LiveIndex(
        _open_index(index_store, embedder, settings.corpus_dir, store.engine), index_store
    )
    api_metrics = ApiMetrics.create(__version__)
    tokens = secrets.read(settings.api_tokens_secret)
    runtime = DialogRuntime(
        region=region,
        engine=store.engine,
        embedder=embedder,
        index=index,
        retriever=Retriever(embedder),
        classifier=IntentClassifier(DEFAULT_INTENTS, embedder.embed),
        manager=DialogManager(),
        tools=ToolRegistry([HttpTicketTool(settings.ticket_url)] if settings.ticket_url else []),
        metrics=DialogMetrics.create(api_metrics.registry),
        llm=_llm_gateway(settings, secrets),
        limits=_serving_limits(settings),
    )
    app = create_runtime_app(
        runtime,
        TokenTable.from_secret(f"vault:{settings.api_tokens_secret}", tokens.data),
        api_metrics,
        _snapshot_restorer(settings, region, secrets, index, embedder, runtime.retriever),
    )
    # Controllers' probes mark contact (plain ASGI, nothing on the request path but a look at
    # the headers).
    app.add_middleware(ContactMiddleware, contact=contact)
    url = urlsplit(str(spec.runtime_url))
    logins = [store.login] if store.login is not None else []
    keeper = start_credential_keeper(f"credentials-{region}", secrets, *logins)
    return RuntimeParts(app, runtime, url.hostname or "127.0.0.1", url.port or 80, keeper)


def _open_index(
    store: IndexStore, embedder: Embedder, corpus_dir: Path, engine: Engine
) -> SearchIndex:
    index: SearchIndex | None = None
    if store.current_path() is not None:
        try:
            index = store.load(model_id=embedder.model_id, chunker_version=CHUNKER_VERSION)
        except IndexMismatchError as exc:
            log_event(_log, "index.rebuild", level=logging.WARNING, reason=str(exc))
    desired = load_corpus(corpus_dir) if corpus_dir.is_dir() else []
    try:
        with unit_of_work(engine) as session:
            stored = stored_documents(session=session)
        desired += [load_document(d, content, media) for d, media, content in stored]
    except TransientError as exc:
        log_event(_log, "index.documents_unavailable", level=logging.WARNING, reason=str(exc))
    if index is None:
        built = build_index(desired, embedder)
        store.save(built)
        return built
    reconciled = reconcile(index, desired, embedder)
    if reconciled is not index:
        store.save(reconciled)
    return reconciled


def _serving_limits(settings: Settings) -> ServingLimits:
    chat = LaneLimits(
        max_concurrency=settings.chat_max_concurrency,
        queue_size=settings.chat_queue_size,
        queue_timeout_seconds=settings.chat_queue_timeout_seconds,
    )
    return ServingLimits(chat=chat)


def _llm_gateway(settings: Settings, secrets: SecretStore) -> LlmGateway | None:
    if settings.llm_url is None:
        return None
    api_key = None
    if settings.llm_api_key_secret is not None:
        api_key = secrets.read(settings.llm_api_key_secret).get("api_key")
    return LlmGateway(
        LlmSettings(
            base_url=settings.llm_url,
            model=settings.llm_model,
            api_key=api_key,
            max_concurrency=settings.llm_max_concurrency,
            queue_timeout_seconds=settings.llm_queue_timeout_seconds,
        )
    )


# -- the controller of one vantage point ---------------------------------------------------


@dataclass
class ControllerProcess:
    """A controller ready to run, and what must be closed when it stops."""

    controller: Controller
    metrics: ControllerMetrics
    probe_clients: ProbeClients
    closers: list[Callable[[], None]]

    def close(self) -> None:
        for close in self.closers:
            close()


def build_controller(settings: Settings, vantage: str, redactor: Redactor) -> ControllerProcess:
    """Everything ``switchyard controller --vantage NAME`` runs, built without I/O except
    reading the topology and the secrets it needs from Vault."""
    from switchyard.adapters.checks_http import HttpRegionChecks
    from switchyard.adapters.clock import SystemClock
    from switchyard.adapters.control_postgres import PostgresControlStore
    from switchyard.adapters.dns_registry import build_dns_provider
    from switchyard.adapters.lease_postgres import PostgresLeaseStore
    from switchyard.adapters.probes import ReadinessProbe
    from switchyard.adapters.regions_postgres import PostgresRegionDatabases
    from switchyard.adapters.replication_postgres import PostgresReplicationMonitor
    from switchyard.controller.loop import ControllerParts
    from switchyard.controller.probing import probes_for_region
    from switchyard.controller.saga import Gslb, SagaParts, SagaRunner
    from switchyard.controller.view import loop_settings

    core = build_core(settings, redactor)
    topology = core.topology
    if vantage not in topology.vantages:
        raise ConfigError(
            str(settings.topology_file),
            "vantages",
            f"no vantage point named {vantage!r}; the topology has {', '.join(topology.vantages)}",
        )
    loop = loop_settings(topology)
    stores = control_region_stores(topology, core.secrets)
    clients = ProbeClients(vantage=vantage)  # runtimes count its probes as contact
    health = []
    readiness = []
    for spec in topology.regions:
        health += probes_for_region(spec, topology.probes, clients, stores[spec.name].url)
        readiness.append(ReadinessProbe(spec.name, str(spec.runtime_url), clients=clients))
    metrics = ControllerMetrics.create(regions=[r.name for r in topology.regions])
    control = PostgresControlStore(core.engine)
    leases = PostgresLeaseStore(core.engine)
    regions = PostgresRegionDatabases({name: s.engine for name, s in stores.items()})
    replication = PostgresReplicationMonitor({name: s.engine for name, s in stores.items()})
    checks = HttpRegionChecks(
        {r.name: r for r in topology.regions}, topology.probes.canary, loop.probe_timeout_seconds
    )
    dns = topology.dns
    gslb = Gslb(
        name=f"{dns.record}.{dns.zone}",
        ttl=dns.ttl_seconds,
        addresses={r.name: str(r.address) for r in topology.regions},
        providers=[build_dns_provider(p, dns.zone, core.secrets) for p in dns.providers],
    )
    lease_roles = {r.name: r.database.lease_role for r in topology.regions if r.database.lease_role}
    clock = SystemClock()
    saga = SagaRunner(
        SagaParts(
            store=control,
            leases=leases,
            regions=regions,
            checks=checks,
            gslb=gslb,
            credentials=(
                build_credential_leases(settings, redactor, _vault_session(core.secrets))
                if lease_roles
                else None
            ),
            lease_roles=lease_roles,
            clock=clock,
            step_timeout_seconds=loop.step_timeout_seconds,
            lease_ttl_seconds=loop.lease_ttl_seconds,
            isolation_timeout_seconds=loop.isolation_timeout_seconds,
            observation_gap_seconds=loop.rule.freshness.total_seconds(),
            on_step=metrics.step_done,
            replication=replication,
        )
    )
    controller = Controller(
        ControllerParts(
            vantage=vantage,
            store=control,
            leases=leases,
            health_probes=health,
            readiness_probes=readiness,
            saga=saga,
            regions=regions,
            clock=clock,
            settings=loop,
            metrics=metrics,
            replication=replication,
            snapshots=SnapshotWatch(
                {r.name: build_object_store(r, core.secrets, quick=True) for r in topology.regions}
            ),
        )
    )
    keeper = start_credential_keeper(f"credentials-{vantage}", core.secrets)
    return ControllerProcess(
        controller, metrics, clients, [keeper.stop, regions.dispose, core.engine.dispose]
    )


# -- change data capture -----------------------------------------------------------------------


@dataclass
class CdcProcess:
    """A CDC source or sink ready to run, its metrics, and what to close when it stops."""

    run: Callable[[Callable[[], bool]], None]
    metrics: CdcMetrics
    closers: list[Callable[[], None]]

    def close(self) -> None:
        for close in self.closers:
            close()


def cdc_topic(topology: Topology, region: str) -> str:
    return f"{topology.kafka.topic_prefix}.cdc.{region}"


def _libpq(url: Secret) -> Secret:
    """A SQLAlchemy URL as a libpq connection URI (psycopg's driver suffix dropped)."""
    return Secret(url.reveal().replace("postgresql+psycopg://", "postgresql://", 1))


def cdc_database_urls(
    settings: Settings, regions: tuple[str, ...], redactor: Redactor
) -> dict[str, Secret]:
    """libpq URIs (static credentials from Vault) of ``regions``' databases."""
    secrets = build_secret_store(settings, redactor)
    urls = {}
    for name in regions:
        store = _region_store(region_spec(settings, name), secrets)
        store.engine.dispose()
        urls[name] = _libpq(store.url)
    return urls


def build_cdc_source(settings: Settings, region: str, redactor: Redactor) -> CdcProcess:
    """``switchyard cdc source --region NAME``: the region's slot → its topic."""
    from switchyard.adapters.events_kafka import KafkaPublisher, KafkaTopics
    from switchyard.replication.source import ChangeSource, SourceSettings

    topology = load_topology(settings.topology_file)
    spec = region_spec(settings, region)
    conninfo = cdc_database_urls(settings, (region,), redactor)[region]
    kafka = topology.kafka.bootstrap_servers
    metrics = CdcMetrics.create()
    published = metrics.published_rows.labels(source=region)
    source = ChangeSource(
        SourceSettings(
            region=region,
            conninfo=conninfo,
            database=spec.database.name,
            topic=cdc_topic(topology, region),
        ),
        lambda: KafkaPublisher(kafka, client_id=f"switchyard-cdc-source-{region}", linger_ms=1),
        KafkaTopics(kafka),
        on_published=published.inc,
    )
    return CdcProcess(source.run, metrics, [])


def build_cdc_sink(settings: Settings, region: str, redactor: Redactor) -> CdcProcess:
    """``switchyard cdc sink --region NAME``: every other region's topic → this region's
    database, while it is a standby."""
    from switchyard.adapters.events_kafka import KafkaPublisher, KafkaSubscriber, KafkaTopics
    from switchyard.replication.sink import Applied, ChangeSink, SinkSettings

    topology = load_topology(settings.topology_file)
    region_spec(settings, region)
    conninfo = cdc_database_urls(settings, (region,), redactor)[region]
    kafka = topology.kafka.bootstrap_servers
    sources = {r.name: cdc_topic(topology, r.name) for r in topology.regions if r.name != region}
    metrics = CdcMetrics.create()
    prefix = topology.kafka.topic_prefix
    group = f"{prefix}.cdc-sink.{region}"

    def applied(batch: Applied) -> None:
        # Two regions: one source. With more, the sink would report per source.
        source = next(iter(sources))
        labels = {"source": source, "target": region}
        metrics.applied_rows.labels(**labels).inc(batch.rows)
        metrics.applied_transactions.labels(**labels).inc(batch.transactions)
        metrics.dead_letters.labels(**labels).inc(batch.parked)
        metrics.stale_refused.labels(**labels).inc(batch.stale)
        for commit_ms in batch.commit_ms:
            metrics.apply_delay.labels(**labels).observe(
                max(0.0, (batch.applied_ms - commit_ms) / 1000)
            )

    sink = ChangeSink(
        SinkSettings(
            region=region,
            conninfo=conninfo,
            topics=sources,
            dead_letter_topic=f"{prefix}.cdc.dead-letter.{region}",
            group_id=group,
        ),
        lambda: KafkaSubscriber(kafka, group_id=group, client_id=f"switchyard-cdc-sink-{region}"),
        lambda: KafkaPublisher(kafka, client_id=f"switchyard-cdc-sink-{region}"),
        KafkaTopics(kafka),
        on_applied=applied,
        on_gap=lambda source, gap: metrics.gaps.labels(
            source=source, target=region, reason=gap.reason.value
        ).inc(),
    )
    return CdcProcess(sink.run, metrics, [])


# -- snapshots ---------------------------------------------------------------------------------


def build_object_store(
    spec: RegionSpec, secrets: SecretStore, *, quick: bool = False
) -> ObjectStore:
    """The region's bucket, with the S3 keys from Vault (``bucket.credentials_secret``).

    ``quick``: one attempt with short timeouts, for status reads that must not hold up an API
    answer or a controller cycle (an unreachable bucket reads as "unknown")."""
    from switchyard.adapters.objects_s3 import S3ObjectStore

    creds = secrets.read(spec.bucket.credentials_secret)
    return S3ObjectStore(
        str(spec.bucket.endpoint),
        spec.bucket.name,
        access_key_id=creds.get("access_key_id").reveal(),
        secret_access_key=creds.get("secret_access_key"),
        attempts=1 if quick else 4,
        connect_timeout=1.0 if quick else 5.0,
        read_timeout=2.0 if quick else 60.0,
    )


class SnapshotContext:
    """What ``switchyard snapshot ...`` works with; every part built on first use and kept
    (``snapshot sync --every`` asks for them each round)."""

    def __init__(self, settings: Settings, redactor: Redactor) -> None:
        self.settings = settings
        self.topology = load_topology(settings.topology_file)
        self.regions = [r.name for r in self.topology.regions]
        self._redactor = redactor
        self._secrets: SecretStore | None = None
        self._stores: dict[str, ObjectStore] = {}
        self._restorer: RestoreRequest | None = None
        self._control: ControlStore | None = None

    @property
    def secrets(self) -> SecretStore:
        if self._secrets is None:
            self._secrets = build_secret_store(self.settings, self._redactor)
        return self._secrets

    def spec(self, region: str) -> RegionSpec:
        return named_region(self.topology, self.settings.topology_file, region)

    def store(self, region: str) -> ObjectStore:
        if region not in self._stores:
            self._stores[region] = build_object_store(self.spec(region), self.secrets)
        return self._stores[region]

    def index_store(self, region: str) -> IndexStore:
        """The index a runtime of ``region`` on this machine keeps (see ``build_runtime``)."""
        return IndexStore(self.settings.data_dir / self.spec(region).name / "index")

    def restorer(self) -> RestoreRequest:
        if self._restorer is None:
            token = self.secrets.read(self.settings.api_tokens_secret).get("operator")
            urls = {r.name: str(r.runtime_url) for r in self.topology.regions}
            self._restorer = runtime_restorer(urls, token.reveal())
        return self._restorer

    def primary(self) -> str:
        """The primary as the control store records it."""
        if self._control is None:
            from switchyard.adapters.control_postgres import PostgresControlStore

            self._control = PostgresControlStore(build_core(self.settings, self._redactor).engine)
        regions = self._control.regions()
        primary = next((r.name for r in regions if r.role is RegionRole.PRIMARY), None)
        if primary is None:
            raise TransientError("the control store names no primary region right now")
        return primary


def build_snapshot_context(settings: Settings, redactor: Redactor) -> SnapshotContext:
    return SnapshotContext(settings, redactor)


def _snapshot_restorer(
    settings: Settings,
    region: str,
    secrets: SecretStore,
    index: LiveIndex,
    embedder: Embedder,
    retriever: Retriever,
) -> Restorer | None:
    """The runtime's restore entry point, or None when it cannot gate (no golden file)."""
    if not settings.golden_file.is_file():
        log_event(
            _log,
            "snapshot.restore_disabled",
            level=logging.WARNING,
            reason=f"no golden questions at {settings.golden_file}",
        )
        return None
    return live_restorer(
        index,
        build_object_store(region_spec(settings, region), secrets),
        region=region,
        model_id=embedder.model_id,
        chunker_version=CHUNKER_VERSION,
        gate=golden_gate(load_golden(settings.golden_file), retriever),
        now=lambda: datetime.now(UTC),
    )
