"""What the authority's rules, the command plane and the HTTP edge use of the server's
long-lived parts.

The server assembly builds them once per process (``bastion.server.context.ServerContext``)
and hands them down; the layers below it know only this description, so none of them
imports the assembly.
"""

from __future__ import annotations

from typing import Protocol

from bastion.audit.group_commit import AuditReads
from bastion.audit.refusals import AnonymousRefusals
from bastion.authority.clients import Client
from bastion.authority.federated_keys import FederatedKeys
from bastion.authority.keys import SigningKeys
from bastion.authority.passwords import PasswordHasher
from bastion.authority.token_validation import VerifiedTokens
from bastion.authority.ttl_cache import TtlCache
from bastion.core.clock import Clock
from bastion.core.config import Settings
from bastion.core.secrets_at_rest import Keyring
from bastion.directory.tenants import Tenant
from bastion.store import housekeeping
from bastion.store.engine import Store
from bastion.store.group_commit import GroupCommit


class Authority(Protocol):
    settings: Settings
    store: Store
    keyring: Keyring
    clock: Clock
    hasher: PasswordHasher
    keys: SigningKeys
    tenants: TtlCache[str, Tenant]
    clients: TtlCache[tuple[str, str], Client]
    #: the store's writer queue: concurrent units of work share one transaction
    #: (``bastion.store.group_commit``); token grants go through it
    writes: GroupCommit
    #: audit records of read commands, through ``writes`` (``bastion.audit.group_commit``)
    audit_reads: AuditReads
    #: access tokens whose signature was checked lately (``token_validation``)
    verified_tokens: VerifiedTokens
    #: refusals of anonymous callers, recorded at most once per source and minute
    anonymous_refusals: AnonymousRefusals
    #: crashes, counted apart from refusals so that neither hides the other
    crash_records: AnonymousRefusals
    #: when this process last purged expired rows
    housekeeping: housekeeping.Schedule
    #: keys of the external issuers applications' federated credentials name
    federated_keys: FederatedKeys

    def now(self) -> float: ...
