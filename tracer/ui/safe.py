"""Inert text for hostile strings: packet bytes, DNS names, HTTP payloads, interface and pod names.

Everything that came from a capture or a cluster dump reaches the screen through ``clean`` (a ``str`` with
every terminal control character replaced by a visible stand-in) and, when a Rich renderable is needed,
through ``plain`` (a ``rich.text.Text`` built from that string, so ``[bold red]`` stays literal text and is
never parsed as markup). Nothing here raises on any input.
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 controls (incl. ESC, which starts ANSI CSI/OSC sequences), DEL, C1 controls (0x9b is a one-byte CSI on
# some terminals), and the Unicode bidi overrides/isolates that can reorder what the reader sees (CVE-2021-42574).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _stand_in(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures" block: ␛ for ESC, ␀ for NUL…
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def clean(value: object) -> str:
    """``str(value)`` with every control character replaced by a visible, harmless stand-in."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not take the UI down
        text = "<unprintable>"
    return _CONTROL.sub(_stand_in, text)


def plain(value: object, style: str = "") -> Text:
    """A ``Text`` holding ``clean(value)`` literally: no markup, no emoji codes, no control characters."""
    return Text(clean(value), style=style, no_wrap=True, end="")


def ascii_byte(byte: int) -> str:
    """One byte for the hex view's ASCII column: printable ASCII as itself, everything else as ``.``."""
    return chr(byte) if 0x20 <= byte < 0x7F else "."
