"""Export packets to pcapng: one IDB per capture point (its name kept), pod names as packet comments.

Writes to a temporary file next to the target and renames it into place, so an interrupted export leaves
either the old file or a complete new one. Names taken from captures are cleaned of control characters
before they are written (exported files are opened by other tools and terminals).
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Iterable

from tracer.errors import TracerError
from tracer.ui.safe import clean

SHB_MAGIC = 0x1A2B3C4D
OPT_COMMENT, IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 1, 2, 3, 9


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(kind: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def _text(value: str) -> bytes:
    # Cut at 4000 bytes without splitting a character: pcapng string options are UTF-8.
    return clean(value).encode("utf-8")[:4000].decode("utf-8", "ignore").encode("utf-8")


def export_pcapng(index, rows: Iterable[int], path: str, *,
                  comment: Callable[[int], str | None] | None = None) -> int:
    """Write index rows ``rows`` (in that order) to ``path`` as pcapng; return the number of packets written.
    No rows: ``TracerError``, and ``path`` is left as it was."""
    target = os.path.abspath(os.path.expanduser(path))  # "~/incident.pcapng" as a shell would read it
    directory = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tracer-export-", suffix=".pcapng", dir=directory)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_block(0x0A0D0D0A, struct.pack("<IHHq", SHB_MAGIC, 1, 0, -1)))
            interfaces: dict[int, int] = {}
            ts_col, src_col, orig_col = index["ts_ns"], index["source"], index["origlen"]
            for row in rows:
                row = int(row)
                sid = int(src_col[row])
                if sid not in interfaces:
                    src = index.sources[sid]
                    opts = b""
                    name = src.point or src.iface
                    if name:
                        opts += _option(IF_NAME, _text(name))
                    if src.description:
                        opts += _option(IF_DESCRIPTION, _text(src.description))
                    opts += _option(IF_TSRESOL, bytes([9])) + _option(0, b"")
                    snaplen = int(src.snaplen or 0) & 0xFFFFFFFF
                    out.write(_block(1, struct.pack("<HHI", int(src.linktype), 0, snaplen) + opts))
                    interfaces[sid] = len(interfaces)
                data = index.frame(row)
                ts = int(ts_col[row])
                opts = b""
                note = comment(row) if comment else None
                if note:
                    opts = _option(OPT_COMMENT, _text(note)) + _option(0, b"")
                body = struct.pack("<IIIII", interfaces[sid], (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF,
                                   len(data), max(int(orig_col[row]), len(data)))
                body += data + b"\0" * ((-len(data)) % 4) + opts
                out.write(_block(6, body))
                written += 1
            out.flush()
            os.fsync(out.fileno())
        if not written:
            # An empty file would silently replace an earlier export of the same name.
            raise TracerError("no packets to export (the filter shows none and none is marked)")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return written
