"""The authority's long-lived parts, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.audit import chain as audit_chain
from bastion.audit.group_commit import AuditReads
from bastion.audit.refusals import AnonymousRefusals
from bastion.authority.clients import Client
from bastion.authority.federated_keys import FederatedKeys
from bastion.authority.keys import SigningKeys, opens_stored_keys
from bastion.authority.passwords import PasswordHasher
from bastion.authority.token_validation import VerifiedTokens
from bastion.authority.ttl_cache import TtlCache
from bastion.core import data_files
from bastion.core.clock import Clock, OffsetFileClock, SystemClock
from bastion.core.config import Settings
from bastion.core.errors import ConfigError
from bastion.core.secrets_at_rest import Keyring, load_or_create_master_key
from bastion.directory.tenants import Tenant
from bastion.services import SERVICES
from bastion.store import housekeeping
from bastion.store.engine import Store, open_store, upgrade
from bastion.store.group_commit import GroupCommit

#: the services ``--service`` and ``BASTION_SERVICE_URLS`` may name
SERVICE_NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)


@dataclass
class ServerContext:
    settings: Settings
    store: Store
    keyring: Keyring
    clock: Clock
    hasher: PasswordHasher
    keys: SigningKeys
    tenants: TtlCache[str, Tenant] = field(default_factory=TtlCache)
    clients: TtlCache[tuple[str, str], Client] = field(default_factory=TtlCache)
    #: the store's writer queue: concurrent units of work share one transaction
    #: (``bastion.store.group_commit``); token grants go through it
    #: the store's writer queue: concurrent units of work share one transaction
    #: (``bastion.store.group_commit``); token grants go through it
    writes: GroupCommit = field(init=False)
    #: audit records of read commands, through ``writes`` (``bastion.audit.group_commit``)
    audit_reads: AuditReads = field(init=False)
    #: access tokens whose signature was checked lately (``token_validation``)
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    #: keys of the external issuers applications' federated credentials name
    federated_keys: FederatedKeys = field(init=False)
    #: refusals of anonymous callers, recorded at most once per source and minute
    anonymous_refusals: AnonymousRefusals = field(default_factory=AnonymousRefusals)
    #: crashes, counted apart from refusals so that neither hides the other
    crash_records: AnonymousRefusals = field(default_factory=AnonymousRefusals)
    #: when this process last purged expired rows
    housekeeping: housekeeping.Schedule = field(default_factory=housekeeping.Schedule)

    def __post_init__(self) -> None:
        self.writes = GroupCommit(self.store)
        self.audit_reads = AuditReads(self.writes)
        self.federated_keys = FederatedKeys(self.clock)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> ServerContext:
        settings.check(service_names=SERVICE_NAMES)
        # every start: the data directory and the files in it are the service user's alone
        data_files.tighten(settings.data_dir, settings.resolved_database_url)
        keyring = Keyring(load_or_create_master_key(settings.resolved_master_key_file))
        store = _open_store(settings, keyring, migrate=migrate)
        audit_chain.configure(store, keyring)  # signs audit checkpoints (decision 0008)
        clock: Clock = (
            OffsetFileClock(settings.clock_offset_file)
            if settings.clock_offset_file
            else SystemClock()
        )
        return cls(
            settings=settings,
            store=store,
            keyring=keyring,
            clock=clock,
            hasher=PasswordHasher(settings.argon2),
            keys=SigningKeys(keyring),
        )

    def now(self) -> float:
        return self.clock.now()

    def close(self) -> None:
        self.writes.close()
        self.store.dispose()


def _open_store(settings: Settings, keyring: Keyring, *, migrate: bool) -> Store:
    """The database, refused unless ``keyring`` opens the keys it holds: every process of
    one deployment holds the same master key. Checked before any migration runs, since one
    that signs something (0011) must sign with the deployment's key."""
    store = open_store(settings.resolved_database_url, migrate=False)
    try:
        with store.read() as conn:
            same_key = opens_stored_keys(conn, keyring)
        if not same_key:
            # Typically a second host of one PostgreSQL database started without a copy of
            # the master key file, for which a fresh key was just made.
            raise ConfigError(
                f"the master key at {settings.resolved_master_key_file} does not open the keys "
                "stored in this database.",
                hint="Every server of one database uses the same master key file: copy it from "
                "a server of this deployment (or point BASTION_MASTER_KEY_FILE at it).",
            )
        if migrate:
            upgrade(store.engine, keyring)
    except BaseException:
        store.dispose()
        raise
    return store
