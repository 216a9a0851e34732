"""Examples at the end of every built-in command's ``--help``, as ``gh`` and ``az`` show them.

Kept in one table, so that a command without examples is easy to see (a test checks that
every built-in command has some); :func:`add_examples` puts them in each parser's epilog.
"""

from __future__ import annotations

import argparse

from bastion.cli.flags import Parser

#: the command's words after ``bastion`` -> (what it does, the command line)
EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "connect": [
        ("sign in to a tenant (the profile is named after it)",
         "bastion connect --url https://bastion.example.org --tenant contoso"),
        ("over SSH: a code to enter on another device",
         "bastion connect --url https://bastion.example.org --tenant contoso --method device"),
        ("sign in again to the current profile", "bastion connect --force"),
        ("a second profile, trusting the company's CA",
         "bastion connect --url https://bastion.example.org --tenant fabrikam --profile lab "
         "--ca-bundle ca.pem"),
        ("a scheduled job, as an application with its certificate (no prompt, ever)",
         "bastion connect --url https://bastion.example.org --tenant contoso --profile jobs "
         "--app-id 2f1c0a4e-8d3b-4f7a-9e61-5b0c2d7a9f13 --certificate /etc/bastion/app.pem"),
        ("in a pod, with the platform's federated token (read again at every renewal)",
         "bastion connect --url https://bastion.example.org --tenant contoso --app-id "
         "2f1c0a4e-8d3b-4f7a-9e61-5b0c2d7a9f13 --federated-token-file "
         "/var/run/secrets/tokens/bastion"),
    ],
    "auth status": [
        ("who is signed in, and until when", "bastion auth status"),
        ("in a script: exit 4 when not signed in",
         "bastion auth status --profile prod -o json"),
    ],
    "disconnect": [
        ("sign out of the current profile", "bastion disconnect"),
        ("sign out of another profile", "bastion disconnect --profile lab"),
    ],
    "profile list": [("every profile, the current one marked", "bastion profile list")],
    "profile add": [
        ("a profile to sign in to later",
         "bastion profile add prod --url https://bastion.example.org --tenant contoso"),
        ("change its proxy",
         "bastion profile add prod --url https://bastion.example.org --tenant contoso "
         "--proxy http://proxy.example.org:3128 --replace"),
    ],
    "profile use": [("make a profile the current one", "bastion profile use prod")],
    "profile remove": [("sign out of a profile and remove it", "bastion profile remove lab")],
    "shell": [
        ("a prompt on the current profile", "bastion shell"),
        ("on another profile", "bastion shell --profile lab"),
    ],
    "serve": [
        ("serve HTTPS with your certificate",
         "bastion serve --port 8443 --tls-cert cert.pem --tls-key key.pem"),
        ("behind a reverse proxy on this machine",
         "bastion serve --port 8080 --insecure-http --trusted-proxy 127.0.0.1"),
    ],
    "demo": [
        ("a demo server with test tenants and users", "bastion demo"),
        ("over HTTPS with a local CA", "bastion demo --tls"),
    ],
    "tenant create": [
        ("a tenant and its first administrator (the password is read from stdin)",
         "bastion tenant create contoso --admin admin@contoso --password-stdin < pw.txt"),
    ],
    "tenant set": [
        ("sign-ins last 8 hours at most",
         "bastion tenant set contoso --session-lifetime 28800"),
    ],
    "tenant show": [("a tenant's settings", "bastion tenant show contoso")],
    "user create": [
        ("a user who must register a second factor",
         "bastion user create alex@contoso --tenant contoso --mfa enforced --password-stdin"),
    ],
    "user disable": [
        ("stop a user signing in", "bastion user disable alex@contoso --tenant contoso"),
    ],
    "user enable": [
        ("let a user sign in again", "bastion user enable alex@contoso --tenant contoso"),
    ],
    "user report": [
        ("users whose name or password fails today's rules",
         "bastion user report --tenant contoso"),
    ],
    "user unlock": [
        ("end a lockout after failed sign-ins",
         "bastion user unlock alex@contoso --tenant contoso"),
    ],
    "user set-password": [
        ("a new password, read from stdin",
         "bastion user set-password alex@contoso --tenant contoso --password-stdin < pw.txt"),
    ],
    "user set-mfa": [
        ("require a second factor, registering a new one",
         "bastion user set-mfa alex@contoso enforced --tenant contoso --reset"),
    ],
    "client create": [
        ("a public client with a loopback redirect",
         "bastion client create reports --tenant contoso --name Reports "
         "--redirect-uri http://127.0.0.1/callback"),
    ],
    "audit verify": [
        ("check a tenant's audit chain", "bastion audit verify --tenant contoso"),
        ("check it against a hash kept elsewhere",
         "bastion audit verify --tenant contoso --anchor 1200:3f5a…"),
    ],
    "audit tail": [
        ("the last 20 audit records as JSON lines", "bastion audit tail --tenant contoso -n 20"),
    ],
    "completion": [
        ("complete bastion's commands and flags in bash",
         "bastion completion bash"),
    ],
    "audit head": [
        ("the signed head as one JSON line, to keep for a later verify --anchor",
         "bastion audit head --tenant contoso --export"),
    ],
}  # fmt: skip


def epilog(command: str) -> str | None:
    found = EXAMPLES.get(command)
    if not found:
        return None
    lines = ["examples:"]
    for what, line in found:
        lines += [f"  # {what}", f"  {line}", ""]
    return "\n".join(lines).rstrip() + "\n"


def leaves(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command that runs something (no subcommands of its own), with its words."""
    subcommands = parser.subcommands if isinstance(parser, Parser) else {}
    if not subcommands:
        return [(" ".join(words), parser)]
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for name, sub in subcommands.items():
        found += leaves(sub, (*words, name))
    return found


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Put each built-in command's examples after its options in ``--help``."""
    for command, sub in leaves(parser):
        text = epilog(command)
        if text is None:
            continue
        sub.epilog = f"{sub.epilog}\n\n{text}" if sub.epilog else text
        if sub.formatter_class is argparse.HelpFormatter:
            sub.formatter_class = ExamplesFormatter


class ExamplesFormatter(argparse.HelpFormatter):
    """Wraps the description and notes as usual, but keeps the examples' lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        head, marker, examples = text.partition("examples:\n")
        filled = super()._fill_text(head, width, indent) if head.strip() else ""
        if not marker:
            return filled
        return (filled + "\n\n" if filled else "") + marker + examples
