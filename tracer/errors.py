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
