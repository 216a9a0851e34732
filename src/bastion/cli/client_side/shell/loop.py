"""``bastion shell``: an interactive prompt on one signed-in connection (S14).

It takes commands in PowerShell form (``Get-Mailbox -Identity alice -ResultSize 10``,
``shell/pwsh.py``) and in CLI form (``mail get-mailbox --identity alice``), completes command
names, parameter names and allowed values from the catalogs, keeps its history in the
configuration directory (leaving out lines that name a password, secret or token), and
prints results as tables. ``exit``, ``quit`` or Ctrl-D leave; Ctrl-C abandons the line or
the running command. With stdin not a terminal it reads one command per line, for scripts.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bastion.cli.client_side.services.params import kebab_command, normalize, params_of
from bastion.cli.flags import SessionFlags, add_global_options
from bastion.client.errors import ClientError, UsageError
from bastion.core.errors import BastionError

if TYPE_CHECKING:
    from bastion.cli.client_side.services.run import Invocation
    from bastion.client.catalog import CommandInfo
    from bastion.client.connection import Connection

#: -ResultSize when none is given: every object, as the command line lists every object
#: (Exchange's cmdlets stop at 1000 with a warning; a script reading the result would not
#: see it, docs/decisions/0026)
DEFAULT_RESULT_SIZE = "unlimited"
EXITS = frozenset({"exit", "quit", "logout"})
SENSITIVE = ("password", "secret", "token", "recovery", "credential")

HELP = """\
Commands, in PowerShell form or CLI form:
  Get-Mailbox -Identity alice -ResultSize 10       -Name value, -Switch, -Switch:$false,
  Set-Mailbox alice -Aliases @('a@x','b@x')          'quoted', @('a','b') or a,b arrays
  mail get-mailbox --identity alice --output json  every option of the bastion command
  help COMMAND                                     a command's help and parameters
  exit                                             leave (or Ctrl-D)
TAB completes command names, parameter names and allowed values.
"""


def register(commands: Any) -> None:
    shell = commands.add_parser(
        "shell",
        help="an interactive prompt: commands in PowerShell or CLI form, with completion",
    )
    add_global_options(shell)
    shell.set_defaults(handler=lambda args: run(ShellOptions(SessionFlags.from_args(args))))


@dataclass(frozen=True)
class ShellOptions:
    session: SessionFlags


def run(options: ShellOptions) -> int:
    from bastion.cli.client_side.open_connection import open_connection

    conn = open_connection(options.session)
    try:
        conn.sign_in()
        return Shell(conn).run()
    finally:
        conn.close()


class Shell:
    def __init__(self, conn: Connection) -> None:
        from bastion.cli.client_side.services import cached_catalogs as cached

        self.conn = conn
        self.services = sorted(cached.services(conn) or conn.services)
        self.catalogs = {service: cached.catalog(conn, service) for service in self.services}
        #: every command of every service, by its normalized name
        self.commands: dict[str, CommandInfo] = {}
        for service in self.services:
            for info in self.catalogs[service].commands.values():
                self.commands.setdefault(normalize(info.name), info)
        #: the exit code of the last command, and of the last one that failed
        self.status = self.failed = 0

    @property
    def prompt(self) -> str:
        who = f"[{self.conn.profile}] " if self.conn.profile else ""
        return f"{who}{self.conn.tenant}> "

    def run(self) -> int:
        if not sys.stdin.isatty():
            for line in sys.stdin:
                if self.line(line) is False:
                    break
            return self.failed
        from prompt_toolkit import PromptSession

        from bastion.cli.client_side.shell.completer import Completer

        session: PromptSession[str] = PromptSession(
            history=self._history(), completer=Completer(self), complete_while_typing=False
        )
        print(
            f"Connected to {self.conn.issuer}. 'help' for help, 'exit' or Ctrl-D to leave.",
            file=sys.stderr,
        )
        while True:
            try:
                line = session.prompt(self.prompt)
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if self.line(line) is False:
                break
        return 0

    def _history(self) -> Any:
        from prompt_toolkit.history import FileHistory

        path = self.conn.settings.config_dir / "shell_history"

        class ScrubbedHistory(FileHistory):
            """Lines naming a password, secret or token stay out of the file."""

            def store_string(self, string: str) -> None:
                if not any(word in string.lower() for word in SENSITIVE):
                    super().store_string(string)

        from bastion.client import files

        files.private_dir(path.parent)
        if not path.exists():
            files.write_private(path, b"")
        return ScrubbedHistory(str(path))

    # -- one line ----------------------------------------------------------------------

    def line(self, text: str) -> bool | None:
        """Run one line; False when it asks to leave."""
        text = text.strip()
        if not text or text.startswith("#"):
            return None
        first = text.split(None, 1)[0]
        if first.lower() in EXITS:
            return False
        try:
            self.status = self._run(text, first)
        except (ClientError, BastionError) as exc:
            from bastion.cli.error_line import one_line

            print(f"error: {one_line(exc)}", file=sys.stderr)
            self.status = exc.exit_code
        except SystemExit as exc:  # --help
            self.status = int(exc.code or 0) if not isinstance(exc.code, str) else 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            self.status = 130
        if self.status:
            self.failed = self.status
        return None

    def _run(self, text: str, first: str) -> int:
        from bastion.cli.client_side.services import run as services

        if first.lower() in ("help", "get-help", "?"):
            return self._help(text.split()[1:])
        if first in self.services:
            try:
                words = shlex.split(text)
            except ValueError as exc:
                raise UsageError(f"{exc}.", hint="Close the quotes.") from None
            if len(words) < 2:
                from bastion.cli.client_side.services.arguments import service_help

                catalog = self.catalogs[first]
                sys.stdout.write(service_help(catalog, prog=first, where=self.conn.issuer))
                return 0
            info = services.find_command(self.conn, first, words[1])
            prog = f"{first} {kebab_command(info)}"
            return services.run_command(
                self.conn, info, words[2:], prog=prog, typed=words, default_output="table"
            )
        return services.execute(self.conn, self.pwsh(text))

    def find(self, name: str) -> CommandInfo:
        info = self.commands.get(normalize(name))
        if info is None:
            import difflib

            close = difflib.get_close_matches(
                name, sorted(i.name for i in self.commands.values()), n=1
            )
            raise UsageError(
                f"there is no command '{name}'.",
                hint=(f"Did you mean {close[0]}? " if close else "")
                + "'help' shows how to type commands; TAB completes their names.",
            )
        return info

    def pwsh(self, text: str) -> Invocation:
        from bastion.cli.client_side.services.listing import ListingOptions
        from bastion.cli.client_side.services.run import Invocation
        from bastion.cli.client_side.shell import pwsh

        parsed = pwsh.parse(text)
        info = self.find(parsed.command)
        bound = pwsh.bind(info.name, params_of(info), parsed.tokens, lists=info.lists)
        missing = [p for p in params_of(info) if p.required and p.name not in bound.params]
        if missing:
            raise UsageError(
                f"{info.name} needs {', '.join('-' + p.pwsh for p in missing)}.",
                hint=f"'help {info.name}' shows its parameters.",
            )
        invocation = Invocation(info=info, params=bound.params, format="table")
        if info.lists:
            size = bound.result_size or DEFAULT_RESULT_SIZE
            unlimited = size == "unlimited"
            limit = None if unlimited else int(size)
            invocation.listing = ListingOptions(
                page_size=min(limit, 1000) if limit else 1000,
                cursor=bound.cursor,
                limit=limit,
                more=lambda cursor: _more(text, cursor),
                continues=lambda cursor: f"{text} -Cursor {cursor}",
            )
        return invocation

    def _help(self, words: list[str]) -> int:
        if not words:
            sys.stdout.write(HELP)
            names = sorted(i.name for i in self.commands.values())
            print(f"\nCommands of {self.conn.issuer}: {', '.join(names)}")
            return 0
        info = self.find(words[-1])
        sys.stdout.write(pwsh_help(info))
        return 0


def pwsh_help(info: CommandInfo) -> str:
    """A command's help with its parameters in PowerShell form."""
    lines = [info.name, "", *("  " + line for line in info.help.strip().splitlines()), ""]
    params = params_of(info)
    if params:
        lines.append("Parameters:")
        for p in params:
            lines.append(f"  -{p.pwsh} <{p.type_text}>")
            lines.append(f"      {p.help_text()}".replace("%%", "%"))
    if info.lists:
        lines.append("  -ResultSize <number or Unlimited>")
        lines.append("      How many to list (default Unlimited: every one).")
    if info.sensitive:
        lines += ["", "Sensitive: it needs a recent second factor, which you may be asked for."]
    lines += ["", f"CLI form: {info.service} {kebab_command(info)} --help"]
    return "\n".join(lines) + "\n"


def _more(text: str, cursor: str | None) -> str:
    how = "-ResultSize Unlimited lists every one"
    if cursor:
        how += f"; this continues: {text} -Cursor {cursor}"
    return how
