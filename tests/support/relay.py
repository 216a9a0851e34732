"""Copying bytes between two sockets, for the TCP relays tests put in front of servers."""

from __future__ import annotations

import contextlib
import socket


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy what ``source`` sends to ``sink`` until either side closes, then shut both."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for end in (source, sink):
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
