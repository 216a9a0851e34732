"""QR codes (ISO/IEC 18004) for TOTP enrolment, drawn by segno.

Always a full QR Code, never a Micro QR (which phone cameras do not read), with error
correction level M and the four-module quiet zone the standard asks for.
"""

from __future__ import annotations

import io

import segno

#: light modules around the symbol (ISO/IEC 18004: at least 4)
QUIET_ZONE = 4

# (top, bottom) module pair -> character; dark modules are blank and light ones are drawn,
# as for qrencode's UTF-8 output: it reads on the usual light-on-dark terminal.
_HALF_BLOCKS = {(0, 0): "\u2588", (1, 1): " ", (1, 0): "\u2584", (0, 1): "\u2580"}


def _make(data: str) -> segno.QRCode:
    return segno.make_qr(data, error="m")


def svg(data: str) -> str:
    """An inline ``<svg>`` element (no XML declaration) for an HTML page; dark modules black."""
    out = io.BytesIO()
    _make(data).save(
        out,
        kind="svg",
        scale=4,
        border=QUIET_ZONE,
        dark="#000",
        light="#fff",
        xmldecl=False,
        svgns=True,
    )
    return out.getvalue().decode()


def terminal(data: str) -> str:
    """Lines of Unicode half blocks, two module rows per line, quiet zone included."""
    matrix = _make(data).matrix
    width = len(matrix[0]) + 2 * QUIET_ZONE
    blank = [0] * width
    rows = [blank] * QUIET_ZONE
    rows += [[0] * QUIET_ZONE + [1 if m else 0 for m in row] + [0] * QUIET_ZONE for row in matrix]
    rows += [blank] * QUIET_ZONE
    if len(rows) % 2:
        rows.append(blank)
    lines = []
    for y in range(0, len(rows), 2):
        lines.append(
            "".join(_HALF_BLOCKS[(t, b)] for t, b in zip(rows[y], rows[y + 1], strict=True))
        )
    return "\n".join(lines)
