"""How the client reaches the person at the keyboard, and whether there is one.

Every question and message of a sign-in goes through a :class:`Prompt`, so a script, a test,
the CLI and the shell each decide how they are shown. The default, :class:`TerminalPrompt`,
writes to stderr (stdout stays for results), reads passwords with ``getpass`` and opens
the system browser with ``webbrowser``.

Whether anyone can answer (``interactive``):

- ``interactive=False`` (or ``BASTION_INTERACTIVE=0``): nobody. A sign-in that needs a
  person raises :class:`~bastion.client.errors.SignInRequired` at once; nothing is shown
  and nothing waits.
- ``interactive=True`` (or ``BASTION_INTERACTIVE=1``), or a ``prompt`` given to connect: a
  person is there.
- otherwise, a person is assumed there. With a terminal (stdin and stderr are TTYs) every
  sign-in method may be used. With no terminal (a notebook, an editor's console, output
  piped away) nothing can be typed, so the terminal method gives way to the device code,
  whose code and link are shown (on stderr) instead of prompting; it waits at most the
  code's lifetime. Scheduled jobs should say ``interactive=False``.
"""

from __future__ import annotations

import os
import sys
from typing import Protocol, runtime_checkable


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


def resolve_interactive(interactive: bool | None) -> bool:
    """Whether a person may be asked (see the module's rules)."""
    if interactive is not None:
        return interactive
    env = os.environ.get("BASTION_INTERACTIVE", "").strip().lower()
    return env not in ("0", "false", "no", "off")


def can_type(prompt_given: bool) -> bool:
    """Whether typed answers are possible: a terminal, or a prompt object given to connect."""
    return prompt_given or has_terminal()


def has_display() -> bool:
    """A browser can be shown: always on macOS and Windows; on Linux and other Unixes only
    in a graphical session (``DISPLAY`` or ``WAYLAND_DISPLAY``)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
