"""``bastion demo``: the tenant ``contoso`` with an account for each built-in role and a
seeded population (``--mailboxes N``: people in departments with mailboxes, sites and chat
policies; ``bastion.server.seed``), ready to sign in.

Idempotent: the first run creates the tenant and users and keeps their generated passwords
and the admin's TOTP secret in ``demo-credentials.json`` (mode 0600) in the data directory,
so that later runs print the same ones.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bastion.authority import factor_store
from bastion.authority.clients import CLI_CLIENT_ID
from bastion.authority.factors import totp
from bastion.core import qr
from bastion.core.config import Settings
from bastion.directory import users
from bastion.directory.tenants import find_tenant
from bastion.server import seed
from bastion.server.bootstrap import new_tenant, new_user, set_password
from bastion.server.context import ServerContext
from bastion.server.serving import Listen

TENANT = "contoso"


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    mfa: str
    roles: tuple[str, ...]
    registers_totp: bool


DEMO_USERS = (
    DemoUser("admin@contoso", "Ada Admin", "enforced", ("Global Administrator",), True),
    DemoUser("pat@contoso", "Pat Enrolling", "enabled", ("Helpdesk",), False),
    # MFA disabled, so no role: a role holder always signs in with two factors (A8)
    DemoUser("sam@contoso", "Sam Password", "disabled", (), False),
    # one account for each other built-in role, each with an authenticator registered
    DemoUser("mona@contoso", "Mona Mail", "enforced", ("Mail Recipients Administrator",), True),
    DemoUser("sid@contoso", "Sid Sites", "enforced", ("Sites Administrator",), True),
    DemoUser("cole@contoso", "Cole Chat", "enforced", ("Chat Administrator",), True),
    DemoUser("aud@contoso", "Aud Auditor", "enforced", ("Audit Reader",), True),
    DemoUser("rory@contoso", "Rory Reporting", "enforced", ("Read-Only Reporting",), True),
)


def _credentials_file(settings: Settings) -> Path:
    return settings.data_dir / "demo-credentials.json"


def _load_credentials(path: Path) -> dict[str, Any]:
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {"users": {}}


def _save_credentials(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(tmp, path)


def ensure_demo(auth: ServerContext) -> dict[str, Any]:
    """Create what is missing; return the users' credentials."""
    path = _credentials_file(auth.settings)
    creds = _load_credentials(path)
    with auth.store.begin() as conn:
        tenant = find_tenant(conn, TENANT) or new_tenant(
            auth, conn, name=TENANT, display_name="Contoso"
        )
        for spec in DEMO_USERS:
            entry = creds["users"].setdefault(spec.username, {})
            user = users.find_user(conn, tenant.id, spec.username)
            if user is not None and "password" in entry:
                continue
            # A new account, or one whose credentials file was lost: give it credentials.
            entry["password"] = "demo-" + secrets.token_urlsafe(9)
            if user is None:
                user = new_user(
                    auth,
                    conn,
                    tenant,
                    upn=spec.username,
                    display_name=spec.display_name,
                    password=entry["password"],
                    mfa_state=spec.mfa,
                    roles=list(spec.roles),
                )
            else:
                set_password(auth, conn, user, entry["password"])
            if spec.registers_totp:
                secret = totp.generate_secret()
                factor_store.add_totp(
                    conn,
                    auth.keyring,
                    tenant_id=tenant.id,
                    user_id=user.id,
                    secret=secret,
                    accepted_step=None,
                    now=auth.now(),
                )
                entry["totp_secret"] = totp.secret_to_base32(secret)
    _save_credentials(path, creds)
    return creds


def _seed(auth: ServerContext, count: int, err: TextIO) -> None:
    with auth.store.begin() as conn:
        tenant = find_tenant(conn, TENANT)
    assert tenant is not None
    last_shown = [0.0]
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last_shown[0] >= 2 or done == total:
            last_shown[0] = now
            rate = done / max(now - started, 1e-6)
            err.write(f"  seeded {done:,} of {total:,} people ({rate:,.0f}/s)\n")
            err.flush()

    have = seed.seeded_count(auth.store, tenant.id, TENANT)
    if have < count:
        err.write(f"Seeding {count - have:,} people with mailboxes, sites and chat policies...\n")
        result = seed.seed_population(
            auth.store, tenant.id, domain=TENANT, count=count, now=auth.now(), progress=progress
        )
        err.write(f"  done in {result.seconds:,.1f} s\n")
        err.flush()


def describe(creds: dict[str, Any], *, issuer: str, ca_file: Path | None) -> dict[str, Any]:
    listed = []
    for spec in DEMO_USERS:
        entry = creds["users"][spec.username]
        item: dict[str, Any] = {
            "username": spec.username,
            "password": entry["password"],
            "mfa": spec.mfa,
            "roles": list(spec.roles),
        }
        if "totp_secret" in entry:
            item["totp_secret"] = entry["totp_secret"]
        listed.append(item)
    info: dict[str, Any] = {"issuer": issuer, "tenant": TENANT, "client_id": CLI_CLIENT_ID}
    if ca_file is not None:
        info["ca_file"] = str(ca_file)
    info["users"] = listed
    return info


def run_demo(
    settings: Settings,
    *,
    host: str,
    port: int,
    tls: bool,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    mailboxes: int = 2000,
) -> Listen:
    auth = ServerContext.open(settings)
    try:
        creds = ensure_demo(auth)
        _seed(auth, mailboxes, err)
    finally:
        auth.close()
    listen = Listen(host=host, port=port)
    ca_file = None
    if tls:
        from bastion.server.tls import ensure_local_tls

        local = ensure_local_tls(settings.data_dir / "tls")
        ca_file = local.ca_file
        listen = Listen(host=host, port=port, tls_cert=local.cert_file, tls_key=local.key_file)
    scheme = "https" if tls else "http"
    shown_host = f"[{host}]" if ":" in host else host
    issuer = f"{scheme}://{shown_host}:{port}/t/{TENANT}"
    info = describe(creds, issuer=issuer, ca_file=ca_file)
    if as_json:
        out.write(json.dumps(info) + "\n")
        out.flush()
    _explain(info, err if as_json else out)
    return listen


def _explain(info: dict[str, Any], stream: TextIO) -> None:
    issuer = info["issuer"]
    lines = [
        "",
        f"Bastion demo: tenant '{info['tenant']}' at {issuer}",
        "",
        "Users:",
    ]
    for user in info["users"]:
        lines.append(
            f"  {user['username']:<16} password {user['password']:<18} MFA {user['mfa']:<9}"
            f" roles: {', '.join(user['roles']) or 'none'}"
        )
    lines += [
        "",
        "Sign in from any browser on this machine:",
        f"  device sign-in page:  {issuer}/device",
        f"  discovery document:   {issuer}/.well-known/openid-configuration",
    ]
    if "ca_file" in info:
        lines.append(f"  the local CA to trust: {info['ca_file']}")
    admin = info["users"][0]
    lines += [
        "",
        f"{admin['username']} has an authenticator registered. Add it to your app by scanning",
        "this code, or by typing the secret:",
        f"  {admin['totp_secret']}",
        "",
    ]
    stream.write("\n".join(lines) + "\n")
    uri = totp.provisioning_uri(
        totp.base32_to_secret(admin["totp_secret"]),
        account=admin["username"],
        issuer="Bastion Contoso",
    )
    stream.write(qr.terminal(uri) + "\n")
    stream.write(
        "pat@contoso will be asked to register an authenticator at first sign-in.\n"
        "Press Ctrl-C to stop the server.\n\n"
    )
    stream.flush()
