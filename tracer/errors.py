"""Errors that reach the user as one line on stderr and a non-zero exit status.

Raise ``TracerError`` (or a subclass) for anything the user can fix: bad input files, bad filters, bad YAML,
unknown interfaces, missing permissions. The CLI prints ``tracer: <message>`` and exits with ``exit_code``;
it never shows a traceback for these.
"""


class TracerError(Exception):
    """A user-facing error: one clear line, exit status ``exit_code`` (2 by default)."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class CaptureError(TracerError):
    """A capture file could not be read at all (nothing usable in it)."""


class FilterError(TracerError):
    """A display filter does not parse or names an unknown field; ``position`` points at the token."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class ClusterError(TracerError):
    """Cluster state (YAML/JSON dumps) is malformed; the message names file, object and field."""


# C0 controls (newline included: a message is one line), DEL, C1 controls, bidi marks/embeddings/overrides/
# isolates and the BOM. File names and packet-derived text end up in messages, and file names are attacker-
# controlled too (captures copied off a node); a terminal would act on these ("Trojan Source", CVE-2021-42574).
_UNSAFE = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_UNSAFE.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF)})


def one_line(text: str) -> str:
    """``text`` safe to print as one terminal line: every control character shown as ``\\xNN`` / ``\\uNNNN``."""
    return text.translate(_UNSAFE)

