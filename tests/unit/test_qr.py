"""QR codes for TOTP enrolment: an inline SVG and a terminal rendering."""

from __future__ import annotations

from bastion.core import qr

URI = "otpauth://totp/Bastion%20Contoso%3Aada%40contoso?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def test_svg_is_an_inline_element() -> None:
    out = qr.svg(URI)
    assert out.lstrip().startswith("<svg")
    assert "<?xml" not in out
    assert out.rstrip().endswith("</svg>")


def test_short_data_is_still_a_full_qr_code() -> None:
    lines = qr.terminal("a").splitlines()
    # version 1 is 21 modules; a Micro QR would be smaller
    assert len(lines[0]) == 21 + 2 * qr.QUIET_ZONE


def test_terminal_lines_have_equal_width_and_a_quiet_zone() -> None:
    lines = qr.terminal(URI).splitlines()
    assert len(lines) > 10
    assert len({len(line) for line in lines}) == 1
    assert set(lines[0]) == {"\u2588"} and set(lines[-1]) <= {"\u2588", "\u2580"}
    assert all(line[: qr.QUIET_ZONE] == "\u2588" * qr.QUIET_ZONE for line in lines)
    assert set("".join(lines)) <= {"\u2588", "\u2580", "\u2584", " "}
