"""``bastion SERVICE COMMAND [parameters] [options]``: every command of every service, from
the catalogs.

The parser of a command is built from its catalog entry, which the library keeps on disk:
with the catalog cached, ``bastion mail get-mailbox --identity alice`` sends one request,
the command itself. Nothing heavier than the client library and ``json`` is imported on that
path (no rich, prompt_toolkit, pydantic or SQLAlchemy): output in other formats, queries and
progress bars import what they need when asked for.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.cli.client_side.services import cached_catalogs
from bastion.cli.client_side.services import checkpoint as checkpoints
from bastion.cli.client_side.services.listing import ListingOptions
from bastion.cli.client_side.services.params import kebab_command, normalize
from bastion.cli.flags import (
    Parser,
    add_global_options,
    default_format,
    opt,
    properties,
)
from bastion.client.errors import SignInRequired, UsageError

if TYPE_CHECKING:
    from bastion.client.catalog import CommandInfo
    from bastion.client.connection import Connection


def main(
    argv: list[str], service_at: int, command_at: int | None, *, builtin: Sequence[str]
) -> int:
    """Run ``argv``, in which ``argv[service_at]`` names a service and ``argv[command_at]``
    (if any) its command; every other word is an option or a parameter. ``builtin`` are the
    built-in commands, which a mistyped word may have meant."""
    service = argv[service_at]
    command = argv[command_at] if command_at is not None else None
    rest = [w for i, w in enumerate(argv) if i not in (service_at, command_at)]
    early = _early(rest)
    profile = opt(early, "profile")
    resume = opt(early, "resume")
    saved_in = resume or opt(early, "checkpoint")
    if (
        command is not None
        and saved_in
        and Path(saved_in).parent.is_dir()  # else reading or saving it says what is wrong
        and "-h" not in rest
        and "--help" not in rest
    ):
        # one run at a time per checkpoint, from before it is read until the run ends
        with checkpoints.one_run(Path(saved_in)):
            return _main(argv, service, command, rest, early, profile, builtin)
    return _main(argv, service, command, rest, early, profile, builtin)


def _main(
    argv: list[str],
    service: str,
    command: str | None,
    rest: list[str],
    early: argparse.Namespace,
    profile: str | None,
    builtin: Sequence[str],
) -> int:
    resume = opt(early, "resume")
    if profile is None and resume:
        profile = checkpoints.peek_profile(resume)
    conn = _open(early, profile, service, builtin)
    try:
        _check_service(conn, service, builtin)
        if command is None:
            return _service_help(conn, service, rest)
        info = find_command(conn, service, command)
        prog = f"bastion {service} {kebab_command(info)}"
        return run_command(conn, info, rest, prog=prog, typed=argv)
    finally:
        conn.close()


def _open(
    early: argparse.Namespace, profile: str | None, word: str, builtin: Sequence[str]
) -> Connection:
    from bastion.cli.client_side.open_connection import open_connection
    from bastion.client import profiles

    if profile is None and profiles.current_profile() is None:
        close = difflib.get_close_matches(word, builtin, n=1)
        if close:  # a mistyped built-in command, rather than a service
            raise UsageError(
                f"'{word}' is not a bastion command (did you mean '{close[0]}'?).",
                hint="'bastion --help' lists the commands; service commands need a profile "
                "first: bastion connect --url URL --tenant NAME.",
            )
        raise SignInRequired(
            f"there is no profile yet, so no server to run '{word}' on.",
            hint="Sign in first: bastion connect --url URL --tenant NAME.",
        )
    return open_connection(early, profile=profile)


def _early(words: list[str]) -> argparse.Namespace:
    """The options needed before the command's parser exists (it is built from the catalog,
    which the profile's server provides)."""
    parser = Parser(prog="bastion", add_help=False, allow_abbrev=False)
    add_global_options(parser)
    parser.add_argument("--resume", default=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(words)
    return args


def _check_service(conn: Connection, service: str, builtin: Sequence[str]) -> None:
    from bastion.cli.client_side.services import cached_catalogs as cached

    if service in (cached.services(conn) or conn.discovery().services):
        return
    known = conn.discovery(refresh=True).services
    if service in known:
        return
    close = difflib.get_close_matches(service, [*known, *builtin], n=1)
    raise UsageError(
        f"'{service}' is neither a bastion command nor a service of {conn.issuer}.",
        hint=(f"Did you mean '{close[0]}'? " if close else "")
        + f"Its services: {', '.join(sorted(known)) or 'none'}; 'bastion --help' lists "
        "the commands.",
    )


def _service_help(conn: Connection, service: str, rest: list[str]) -> int:
    from bastion.cli.client_side.services import cached_catalogs as cached
    from bastion.cli.client_side.services.arguments import service_help

    text = service_help(cached.catalog(conn, service), prog=f"bastion {service}", where=conn.issuer)
    if "-h" in rest or "--help" in rest:
        sys.stdout.write(text)
        return 0
    sys.stderr.write(text)
    return 2


def find_command(conn: Connection, service: str, word: str) -> CommandInfo:
    """A command by its CLI name (``get-mailbox``) or its catalog name (``Get-Mailbox``);
    the catalog is fetched again once when it does not have it (the server may have added
    it since the catalog was cached)."""
    from bastion.cli.client_side.services import cached_catalogs as cached

    for refresh in (False, True):
        catalog = conn.catalog(service, refresh=True) if refresh else cached.catalog(conn, service)
        for info in catalog.commands.values():
            if normalize(info.name) == normalize(word):
                return info
    names = [kebab_command(i) for i in catalog.commands.values()]
    close = difflib.get_close_matches(word.lower(), names, n=1)
    raise UsageError(
        f"the {service} service has no command '{word}'.",
        hint=(f"Did you mean '{close[0]}'? " if close else "")
        + f"'bastion {service} --help' lists its commands.",
    )


@dataclass
class Invocation:
    """A command to run and how to show its result: what the CLI's words or the shell's
    PowerShell-form line come down to."""

    info: CommandInfo
    params: dict[str, Any]
    format: str
    #: properties picked (exact names), in order
    properties: list[str] | None = None
    query: str | None = None
    #: the columns of a table or CSV (default: from the output schema)
    columns: list[str] | None = None
    #: how to page through a listing command (None for other commands)
    listing: ListingOptions | None = None


def run_command(
    conn: Connection,
    info: CommandInfo,
    words: list[str],
    *,
    prog: str,
    typed: list[str],
    default_output: str | None = None,
) -> int:
    """Parse ``words`` (parameters and options) for ``info``, run it, write its result."""
    return execute(
        conn,
        parse_command(conn, info, words, prog=prog, typed=typed, default_output=default_output),
    )


def parse_command(
    conn: Connection,
    info: CommandInfo,
    words: list[str],
    *,
    prog: str,
    typed: list[str],
    default_output: str | None = None,
) -> Invocation:
    from bastion.cli.client_side.services.arguments import command_parser, missing, values_of
    from bastion.cli.render.formats import resolve_properties, schema_columns

    parser, params = command_parser(info, prog=prog)
    args = parser.parse_args(words)
    given = values_of(args, params)
    resumed: checkpoints.Checkpoint | None = None
    if info.lists and opt(args, "resume"):
        resumed = _resumed(conn, info, Path(opt(args, "resume")), given)
        given = dict(resumed.parameters)
    else:
        absent = missing(params, given)
        if absent:
            flags = ", ".join(p.flag for p in absent)
            raise UsageError(
                f"{prog} needs {flags}.", hint=f"Run '{prog} --help' for its parameters."
            )
    saved = resumed.output if resumed else {}
    fmt = opt(args, "output") or saved.get("format") or default_output or default_format()
    picked = properties(args) or saved.get("properties")
    known = schema_columns(info.output)
    if picked and known:
        picked = resolve_properties(picked, known)
    invocation = Invocation(
        info=info,
        params=given,
        format=fmt,
        properties=picked,
        query=opt(args, "query"),
        columns=saved.get("columns"),
    )
    if info.lists:
        invocation.listing = _listing_options(conn, info, args, invocation, resumed, typed)
    return invocation


def execute(conn: Connection, inv: Invocation) -> int:
    """Run a command and write its result; returns the exit code."""
    from bastion.cli.render.formats import Writer, pick, query, scalar_columns, schema_columns

    info = inv.info
    columns = inv.properties or inv.columns
    if columns is None and inv.query is None:
        output = info.output
        columns = scalar_columns(output) if inv.format == "table" else schema_columns(output)
    writer = Writer(inv.format, columns=columns)
    conn.sign_in()
    if inv.listing is not None:
        from bastion.cli.client_side.services import listing

        ck = inv.listing.resumed
        if ck is not None and ck.complete:
            print(
                f"(the listing saved in {ck.path} is complete: nothing to resume)", file=sys.stderr
            )
            writer.close()
            return 0
        return listing.run(
            conn,
            info,
            inv.params,
            writer,
            inv.listing,
            expression=inv.query,
            properties=inv.properties,
        )
    try:
        result = conn.invoke(info.service, info.name, **inv.params)
    except UsageError as exc:
        cached_catalogs.refresh_after(conn, info, exc)
        raise
    if inv.query is not None:
        result = query(inv.query, result)
    if inv.properties:
        result = pick(result, inv.properties)
    writer.value(result)
    return 0


def _resumed(
    conn: Connection, info: CommandInfo, path: Path, given: dict[str, Any]
) -> checkpoints.Checkpoint:
    from bastion.cli.client_side.services import cached_catalogs as cached

    ck = checkpoints.load(path)
    if (ck.service, ck.command) != (info.service, info.name):
        raise UsageError(
            f"{path} is the checkpoint of '{ck.service} {ck.command}', not of "
            f"'{info.service} {info.name}'.",
            hint=f"Resume it with: bastion {ck.service} "
            f"{kebab_command(cached.catalog(conn, ck.service).commands.get(ck.command) or info)} "
            f"--resume {path}",
        )
    if ck.issuer != conn.issuer:
        raise UsageError(
            f"{path} is a listing of {ck.issuer}, not of {conn.issuer}.",
            hint="Resume it with the profile it was made with (--profile).",
        )
    if given and given != ck.parameters:
        raise UsageError(
            "a resumed listing keeps the parameters it was started with.",
            hint="Leave the parameters out with --resume.",
        )
    return ck


def _listing_options(
    conn: Connection,
    info: CommandInfo,
    args: argparse.Namespace,
    inv: Invocation,
    resumed: checkpoints.Checkpoint | None,
    typed: list[str],
) -> ListingOptions:
    checkpoint = opt(args, "checkpoint")
    path = Path(checkpoint) if checkpoint else (resumed.path if resumed else None)
    fresh = checkpoint and resumed is None and path is not None
    # never overwrite another file, nor a listing that can still be resumed
    if fresh and path is not None and path.exists() and not checkpoints.load(path).complete:
        raise UsageError(
            f"{path} holds a listing that is not finished.",
            hint=f"Continue it with --resume {path}, or remove the file to start over.",
        )
    if inv.query is not None and path is not None:
        raise UsageError(
            "--query needs the whole result in memory: it cannot be used with --checkpoint "
            "or --resume.",
            hint="Pick properties with --property, or filter the jsonl output.",
        )
    first: int | None = opt(args, "first")
    if first is not None and path is not None:
        raise UsageError(
            "--first cannot be used with --checkpoint or --resume: a checkpoint is for a "
            "listing of every object.",
            hint="Leave out --first, or --checkpoint.",
        )
    page_size = opt(args, "page_size") or (resumed.page_size if resumed else None)
    if first is not None and page_size is None:
        page_size = min(first, 1000)  # ends on a page's end: the cursor printed goes on
    return ListingOptions(
        page_size=page_size,
        cursor=resumed.cursor if resumed else opt(args, "cursor"),
        limit=first,
        checkpoint=path,
        resumed=resumed,
        command=["bastion", *_without_paging(redacted(typed))],
        resume_command=resume_command(conn, info, args),
        argv=redacted(typed),
    )


def redacted(words: list[str]) -> list[str]:
    """The words with the password of a proxy URL hidden."""
    from bastion.client.http import redact

    out = list(words)
    for i, word in enumerate(out):
        if word == "--proxy" and i + 1 < len(out):
            out[i + 1] = redact(out[i + 1])
        elif word.startswith("--proxy="):
            out[i] = "--proxy=" + redact(word.split("=", 1)[1])
    return out


def _without_paging(words: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("--cursor", "--resume", "--checkpoint", "--first"):
            skip = True
            continue
        if word == "--all" or word.startswith(
            ("--cursor=", "--resume=", "--checkpoint=", "--first=")
        ):
            continue
        out.append(word)
    return out


def resume_command(conn: Connection, info: CommandInfo, args: argparse.Namespace) -> list[str]:
    """``bastion [--profile P] [session options] SERVICE COMMAND`` (before ``--resume``)."""
    from bastion.client.http import redact

    words = ["bastion"]
    if conn.profile:
        words += ["--profile", conn.profile]
    for name, flag in (("timeout", "--timeout"), ("retries", "--retries")):
        if opt(args, name) is not None:
            words += [flag, str(opt(args, name))]
    if opt(args, "ca_bundle"):
        words += ["--ca-bundle", str(opt(args, "ca_bundle"))]
    proxy = opt(args, "proxy")
    if proxy:
        words += ["--proxy", redact(proxy)]
    if opt(args, "non_interactive"):
        words.append("--non-interactive")
    return [*words, info.service, kebab_command(info)]
