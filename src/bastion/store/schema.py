"""Every table Bastion stores, with what each field means.

Every row belongs to a tenant (``tenant_id``); no query crosses tenants. Times are Unix
seconds (float) taken from the injected clock, so tests can move them. Secrets are never
stored as given: passwords and recovery codes as Argon2id hashes, tokens and codes as keyed
hashes (``*_hash``, HMAC-SHA-256), TOTP seeds and signing keys sealed with AES-GCM.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_TENANT_FK = "tenants.id"

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(36), primary_key=True),
    #: the URL name, as in ``/t/{name}``
    Column("name", String(63), nullable=False, unique=True),
    Column("display_name", String(256), nullable=False),
    #: sign-in policy; see ``bastion.directory.tenants.TenantPolicy``
    Column("policy", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: user principal name, stored lower-case; unique within the tenant
    Column("upn", String(320), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False),
    #: ``disabled`` | ``enabled`` (must register at next sign-in) | ``enforced``
    Column("mfa_state", String(16), nullable=False),
    #: Argon2id PHC string, or NULL when no password has been set (cannot sign in)
    Column("password_hash", Text, nullable=True),
    #: no longer read: failures are counted in ``throttles`` (decision 0019)
    Column("password_failures", Integer, nullable=False, default=0),
    #: no longer read: failures are counted in ``throttles`` (decision 0019)
    Column("recovery_failures", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    #: the user's department ("" for none); role group scopes can filter on it
    Column("department", String(128), nullable=False, server_default=""),
    #: when an administrator last ended every sign-in of the user (a password reset, a factor
    #: reset, a disable, Revoke-UserSession); sign-ins from before are refused at every
    #: command (docs/decisions/0020). NULL: never.
    Column("sessions_valid_after", Float, nullable=True),
    #: the password failed the rules for new passwords (A1) when it was last used to sign
    #: in: a password set before the rules, listed by Export-UserRuleReport. Never the
    #: password or why it failed.
    Column("password_fails_rules", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("tenant_id", "upn"),
    Index(None, "tenant_id", "department"),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

group_members = Table(
    "group_members",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("group_id", String(36), ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("group_id", "user_id"),
)

factors = Table(
    "factors",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    #: ``totp`` (WebAuthn and push later)
    Column("kind", String(16), nullable=False),
    #: the TOTP seed, sealed with AES-GCM; associated data is the factor id
    Column("secret_sealed", LargeBinary, nullable=False),
    #: false until the first code confirms the enrollment
    Column("confirmed", Boolean, nullable=False),
    #: the last accepted TOTP time step; a step at or below it is refused (A4)
    Column("last_step", Integer, nullable=True),
    #: no longer read: failures are counted in ``throttles`` (decision 0019)
    Column("failures", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Index(None, "user_id"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    #: the code's public lookup prefix (not secret); the rest is only in ``code_hash``
    Column("lookup", String(8), nullable=False),
    #: Argon2id hash of the whole code
    Column("code_hash", Text, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Index(None, "user_id", "lookup"),
)

clients = Table(
    "clients",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), primary_key=True),
    Column("client_id", String(128), primary_key=True),
    Column("name", String(256), nullable=False),
    #: NULL for public clients; keyed hash of the generated secret otherwise
    Column("secret_hash", String(64), nullable=True),
    #: exact redirect URIs; loopback ``http://127.0.0.1/...`` entries match any port
    Column("redirect_uris", JSON, nullable=False),
    #: grant types this client may use
    Column("grant_types", JSON, nullable=False),
    #: may this client use the authorization-challenge (terminal) sign-in
    Column("first_party", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("alg", String(16), nullable=False),
    #: the private JWK (JSON), sealed; associated data is the kid
    Column("private_sealed", LargeBinary, nullable=False),
    #: the public JWK (JSON), published in the JWKS
    Column("public_jwk", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "tenant_id"),
)

sessions = Table(
    "sessions",
    metadata,
    #: the ``sid`` claim; not a secret (browser cookies are in ``web_sessions``)
    Column("id", String(43), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    #: last active authentication (any factor); ``auth_time`` in tokens
    Column("auth_time", Float, nullable=False),
    #: last second-factor authentication, or NULL (used for step-up)
    Column("mfa_time", Float, nullable=True),
    #: RFC 8176 method references of the sign-in
    Column("amr", JSON, nullable=False),
    Column("acr", String(64), nullable=False),
    #: last refresh or page visit; the idle timeout counts from here
    Column("last_active_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index(None, "user_id"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    #: keyed hash of the ``__Host-bastion`` cookie value (>= 128 random bits)
    Column("cookie_hash", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: ``anonymous`` | ``password`` (first factor done) | ``enroll`` | ``authenticated``;
    #: ``challenge``: a terminal sign-in's ``auth_session`` (no cookie; its own hash key);
    #: ``signed_in``: the ``auth_session`` of a token response, for a step-up of ``session_id``
    Column("stage", String(16), nullable=False),
    Column("user_id", String(36), nullable=True),
    Column("session_id", String(43), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True),
    #: the id of the pending authorization request or device code this page flow serves
    Column("continuation", JSON, nullable=True),
    #: the TOTP seed being enrolled, sealed; NULL outside enrollment
    Column("pending_secret", LargeBinary, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

auth_requests = Table(
    "auth_requests",
    metadata,
    #: random id carried through the sign-in pages, so no URL from a parameter is followed
    Column("id", String(43), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: the validated authorization request (client, redirect, PKCE, scope, resource, state)
    Column("params", JSON, nullable=False),
    Column("expires_at", Float, nullable=False),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("session_id", String(43), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("resource", Text, nullable=True),
    Column("nonce", Text, nullable=True),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    #: the refresh-token family issued on redemption, revoked on a second redemption (T3)
    Column("family_id", String(43), nullable=True),
)

device_codes = Table(
    "device_codes",
    metadata,
    Column("device_code_hash", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: 8 letters from BCDFGHJKLMNPQRSTVWXZ, stored without the dash
    Column("user_code", String(16), nullable=False),
    Column("client_id", String(128), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("resource", Text, nullable=True),
    #: ``pending`` | ``approved`` | ``denied`` | ``consumed``
    Column("status", String(16), nullable=False),
    Column("session_id", String(43), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=True),
    Column("interval", Integer, nullable=False),
    Column("last_poll_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    #: RFC 9470 step-up asked with the request: the approver's sign-in must be younger than
    #: ``max_age`` seconds and meet ``acr_values`` (a list), else the second factor is asked
    Column("max_age", Integer, nullable=True),
    Column("acr_values", JSON, nullable=True),
    UniqueConstraint("tenant_id", "user_code"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: every token rotated from one grant shares a family; reuse revokes the family (T5)
    Column("family_id", String(43), nullable=False),
    Column("session_id", String(43), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("client_id", String(128), nullable=False),
    #: scopes consented at sign-in (``openid``, ``profile``, ``offline_access``)
    Column("scopes", JSON, nullable=False),
    #: the audience of the last access token; a refresh naming none gets this one again
    Column("resource", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    #: when this token was exchanged for its successor
    Column("used_at", Float, nullable=True),
    #: keyed hash of the successor, for the lost-response grace window
    Column("successor_hash", String(64), nullable=True),
    Column("revoked_at", Float, nullable=True),
    Index(None, "family_id"),
    Index(None, "session_id"),
)

revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: kept until the token would have expired anyway
    Column("expires_at", Float, nullable=False),
)

attempt_counters = Table(
    "attempt_counters",
    metadata,
    #: e.g. ``user_code:source:127.0.0.1`` or ``user_code:user:{id}``
    Column("key", String(200), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("count", Integer, nullable=False),
)

throttles = Table(
    "throttles",
    metadata,
    #: what is counted (``bastion.authority.throttle``): ``pwd:{tenant}:{name digest}``,
    #: ``otp:{user}``, ``recovery:{user}`` or ``source:{tenant}:{address}``
    Column("key", String(200), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: consecutive failures; a success (or ``bastion user unlock``) sets it back to 0
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", Float, nullable=False),
    #: no attempt is checked before this time (A3)
    Column("blocked_until", Float, nullable=False),
    #: the ``blocked_until`` whose first refused attempt was audited (one record per block)
    Column("noted_until", Float, nullable=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("time", Float, nullable=False),
    #: e.g. ``sign_in.success``, ``sign_in.failure``, ``token.refresh_reuse``
    Column("type", String(64), nullable=False),
    Column("actor_id", String(36), nullable=True),
    Column("actor_name", String(320), nullable=True),
    Column("client_id", String(128), nullable=True),
    Column("source", String(64), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    #: structured detail; never a secret (codes and tokens only as keyed hashes)
    Column("data", JSON, nullable=False),
    #: the record's place in its tenant's hash chain: 1, 2, 3, ... with no gap (L4)
    Column("seq", BigInteger, nullable=False),
    #: ``hash`` of the tenant's record ``seq - 1``; 64 zeros for ``seq`` 1
    Column("prev_hash", String(64), nullable=False),
    #: SHA-256 (hex) of the canonical JSON of the fields above and ``prev_hash``
    #: (``bastion.audit.chain.record_hash``)
    Column("hash", String(64), nullable=False),
    Index(None, "tenant_id", "time"),
    Index(None, "tenant_id", "seq", unique=True),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    #: one row per tenant with audit records; ``record()`` locks it to append in order
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), primary_key=True),
    #: ``seq`` and ``hash`` of the tenant's last record (0 and 64 zeros before the first)
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    #: ``seq`` of the last checkpoint written; the next is due ``CHECKPOINT_EVERY`` later
    Column("checkpoint_seq", BigInteger, nullable=False),
    #: HMAC of (tenant, seq, hash) under the audit-head key, renewed at every append
    Column("signature", String(64), nullable=True),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), primary_key=True),
    #: the record this checkpoint vouches for, and that record's ``hash``
    Column("seq", BigInteger, primary_key=True),
    Column("hash", String(64), nullable=False),
    #: HMAC-SHA-256 (hex) of (tenant_id, seq, hash) under the ``audit-checkpoint`` key
    Column("signature", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    #: a write retried with the same ``Idempotency-Key`` by the same caller gets this answer
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), primary_key=True),
    Column("subject", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    #: ``service/Command`` and a SHA-256 of the parameters: a key reused for another request
    #: is refused rather than answered with an unrelated result
    Column("command", String(128), nullable=False),
    Column("parameters_digest", String(64), nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Index(None, "created_at"),
)

role_groups = Table(
    "role_groups",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    #: names of the built-in roles (derived from the services) this group grants
    Column("roles", JSON, nullable=False),
    #: NULL (every object) or a filter on the directory users whose objects it may touch:
    #: ``{"department": "Sales"}`` or ``{"group": "<group id>"}``
    Column("scope", JSON, nullable=True),
    #: one built-in role group per built-in role, named after it; it cannot be removed
    Column("built_in", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

role_group_members = Table(
    "role_group_members",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column(
        "role_group_id",
        String(36),
        ForeignKey("role_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: a user, group or application id (ids are unique across all three); removed with it
    Column("member_id", String(36), primary_key=True),
    #: ``user`` | ``group`` | ``app``
    Column("member_kind", String(8), nullable=False),
    Index(None, "member_id"),
)

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: the owning directory user (``user`` mailboxes); NULL for shared and room mailboxes
    #: and for an inactive mailbox whose user was removed while it was on litigation hold
    Column("user_id", String(36), ForeignKey("users.id"), nullable=True),
    #: ``user`` | ``shared`` | ``room``
    Column("type", String(8), nullable=False),
    Column("display_name", String(256), nullable=False),
    #: lower-case; also in ``mail_addresses`` with ``is_primary``
    Column("primary_address", String(320), nullable=False),
    #: the other addresses, lower-case, sorted (a copy of the mailbox's ``mail_addresses``
    #: rows that are not primary, so a listing page is one query)
    Column("aliases", JSON, nullable=False),
    Column("quota_mb", Integer, nullable=False),
    #: where mail is forwarded to, or NULL
    Column("forwarding_address", String(320), nullable=True),
    #: with forwarding: keep a copy in this mailbox too
    Column("deliver_and_forward", Boolean, nullable=False),
    Column("litigation_hold", Boolean, nullable=False),
    Column("litigation_hold_since", Float, nullable=True),
    #: kept after its user was removed because it was on hold (read-only, no owner)
    Column("inactive", Boolean, nullable=False),
    #: usage statistics, as reported by the mail store
    Column("item_count", Integer, nullable=False),
    Column("total_size_bytes", BigInteger, nullable=False),
    Column("last_logon_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "primary_address"),
    Index(None, "user_id"),
)

mail_addresses = Table(
    "mail_addresses",
    metadata,
    #: every address of every mailbox, primary and aliases: unique in the tenant
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column(
        "mailbox_id", String(36), ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False
    ),
    Column("is_primary", Boolean, nullable=False),
    Index(None, "mailbox_id"),
)

mailbox_permissions = Table(
    "mailbox_permissions",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column(
        "mailbox_id", String(36), ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("trustee_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    #: ``FullAccess`` | ``SendAs``
    Column("access_right", String(16), primary_key=True),
    Column("created_at", Float, nullable=False),
    Index(None, "trustee_id"),
)

sites = Table(
    "sites",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: the site's path, e.g. ``/sites/sales``; unique in the tenant
    Column("url", String(512), nullable=False),
    Column("title", String(256), nullable=False),
    #: NULL once the owner was removed from the directory (an ownerless site)
    Column("owner_id", String(36), ForeignKey("users.id"), nullable=True),
    Column("storage_quota_mb", Integer, nullable=False),
    Column("storage_used_mb", Integer, nullable=False),
    #: ``Disabled`` | ``ExistingExternalUsers`` | ``ExternalUsers`` | ``Anyone``
    Column("sharing", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "url"),
    Index(None, "owner_id"),
)

site_members = Table(
    "site_members",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("site_id", String(36), ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    #: ``Visitor`` (read) | ``Member`` (edit) | ``Owner`` (full control)
    Column("role", String(16), nullable=False),
    Index(None, "user_id"),
)

chat_policies = Table(
    "chat_policies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: ``meeting`` | ``messaging``
    Column("kind", String(16), nullable=False),
    #: ``Global`` is the one that applies to users with no assignment
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False, default=""),
    #: the policy's settings; their names and types are declared by the chat service
    Column("settings", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "kind", "name"),
)

chat_policy_assignments = Table(
    "chat_policy_assignments",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column(
        "policy_id", String(36), ForeignKey("chat_policies.id", ondelete="CASCADE"), nullable=False
    ),
    Index(None, "policy_id"),
)

applications = Table(
    "applications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    #: the client id the application signs in with (a UUID, shown as ``appId``)
    Column("app_id", String(36), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("enabled", Boolean, nullable=False),
    #: NULL (anywhere) or the source networks tokens may be issued to and used from
    Column("allowed_networks", JSON, nullable=True),
    #: tokens issued before this moment are refused (a removed certificate or credential)
    Column("valid_after", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("app_id"),
    UniqueConstraint("tenant_id", "display_name"),
)

application_certificates = Table(
    "application_certificates",
    metadata,
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column(
        "application_id",
        String(36),
        ForeignKey("applications.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    #: hex SHA-256 of the certificate's DER (``x5t#S256`` is its base64url form)
    Column("thumbprint", String(64), primary_key=True),
    #: hex SHA-1 of the DER (``x5t``), for clients that name a certificate by it
    Column("thumbprint_sha1", String(40), nullable=False),
    #: the certificate, public part only (PEM)
    Column("certificate", Text, nullable=False),
    #: ``RSA`` | ``EC``: decides the signature algorithms its key may use
    Column("key_type", String(8), nullable=False),
    Column("not_before", Float, nullable=False),
    Column("not_after", Float, nullable=False),
    Column("added_at", Float, nullable=False),
    Index(None, "thumbprint_sha1"),
)

federated_credentials = Table(
    "federated_credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(36), ForeignKey(_TENANT_FK), nullable=False),
    Column(
        "application_id",
        String(36),
        ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    #: the external issuer's exact ``iss``; its keys come from its discovery document
    Column("issuer", String(512), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("audience", String(512), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("application_id", "issuer", "subject", "audience"),
)
