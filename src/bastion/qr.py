"""QR codes."""

from __future__ import annotations

import io

import segno


def svg(data: str) -> str:
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="svg", scale=4, xmldecl=False, svgns=True)
    return out.getvalue().decode()


def terminal(data: str) -> str:
    matrix = segno.make(data, error="m").matrix
    size = len(matrix)
    pad = 2
    rows = [[0] * (size + 2 * pad) for _ in range(pad)]
    rows += [[0] * pad + list(r) + [0] * pad for r in matrix]
    rows += [[0] * (size + 2 * pad) for _ in range(pad + 1)]
    lines = []
    for y in range(0, size + 2 * pad, 2):
        line = ""
        for x in range(size + 2 * pad):
            top, bottom = rows[y][x], rows[y + 1][x]
            line += {(0, 0): "\u2588", (1, 1): " ", (1, 0): "\u2584", (0, 1): "\u2580"}[
                (top, bottom)
            ]
        lines.append(line)
    return "\n".join(lines)
