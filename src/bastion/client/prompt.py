"""How the client reaches the person at the keyboard, and whether there is one.

Every question and message of a sign-in goes through a :class:`Prompt`, so a script, a test,
the CLI and the shell each decide how they are shown. The default, :class:`TerminalPrompt`,
writes to stderr (stdout stays for results), reads passwords with ``getpass`` and opens
the system browser with ``webbrowser``.

Whether anyone can answer (:func:`presence`), in this order:

- ``interactive=False`` (or ``BASTION_INTERACTIVE=0``): nobody. A sign-in that needs a
  person raises :class:`~bastion.client.errors.SignInRequired` (exit 4) at once; nothing is
  shown and nothing waits.
- a ``prompt`` given to connect, or a terminal (stdin and stderr are TTYs): a person who can
  type. Every sign-in method may be used.
- ``interactive=True`` (or ``BASTION_INTERACTIVE=1``), stderr a terminal, or a REPL or a
  notebook (``sys.ps1``, IPython): a person who can watch but not type. The device code and
  its link are shown (on stderr) instead of prompting (the terminal method gives way to the
  device code) and the sign-in waits at most the code's lifetime.
- otherwise (a scheduled job, a plain script with its output sent elsewhere): nobody, as
  with ``interactive=False``. A job never waits for a person who is not there.
"""

from __future__ import annotations

import os
import sys
from typing import Literal, Protocol, runtime_checkable


@runtime_checkable
class Prompt(Protocol):
    """The person's side of a sign-in."""

    def ask(self, message: str, *, secret: bool = False) -> str:
        """Ask a question (a user name, a password, a one-time code) and return the answer."""
        ...

    def show(self, message: str) -> None:
        """Tell the person something (a device code and its link, where the browser is)."""
        ...

    def open_url(self, url: str) -> bool:
        """Open ``url`` in a browser; False when none could be opened."""
        ...


class TerminalPrompt:
    """Prompts on the terminal: stderr for messages, getpass for secrets."""

    def ask(self, message: str, *, secret: bool = False) -> str:
        if secret:
            import getpass

            return getpass.getpass(message, stream=sys.stderr)
        sys.stderr.write(message)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError("no answer: stdin is closed")
        return line.rstrip("\r\n")

    def show(self, message: str) -> None:
        sys.stderr.write(message.rstrip("\n") + "\n")
        sys.stderr.flush()

    def open_url(self, url: str) -> bool:
        import webbrowser

        try:
            return webbrowser.open(url, new=1, autoraise=True)
        except webbrowser.Error:
            return False


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def has_terminal() -> bool:
    return _isatty(sys.stdin) and _isatty(sys.stderr)


#: who can answer a sign-in: nobody, a person who can only watch (a device code), or a
#: person who can type (a password, a one-time code)
Presence = Literal["nobody", "watching", "typing"]


def _env_interactive() -> bool | None:
    env = os.environ.get("BASTION_INTERACTIVE", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    return None


def in_repl() -> bool:
    """A Python REPL or a notebook (IPython, Jupyter): a person reads what is shown."""
    if hasattr(sys, "ps1"):
        return True
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return bool(callable(get) and get() is not None)


def presence(interactive: bool | None, *, prompt_given: bool) -> Presence:
    """Who can answer a sign-in (see the module's rules)."""
    wanted = interactive if interactive is not None else _env_interactive()
    if wanted is False:
        return "nobody"
    if prompt_given or has_terminal():
        return "typing"
    if wanted or _isatty(sys.stderr) or in_repl():
        return "watching"
    return "nobody"


def has_display() -> bool:
    """A browser can be shown: always on macOS and Windows; on Linux and other Unixes only
    in a graphical session (``DISPLAY`` or ``WAYLAND_DISPLAY``)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
