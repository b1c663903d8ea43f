"""Tiny, independent capture writers for tests (struct only): classic pcap and pcapng in either byte order; and
``assert_same_index``, the column-by-column comparison the walker tests make of two indexes of one file.

They are written from the file format specs, not from tracer's readers, so a reader bug does not hide itself.
"""

from __future__ import annotations

import struct


def pcap_bytes(frames: list[tuple[int, bytes]], *, order: str = "<", nano: bool = False, linktype: int = 1,
               snaplen: int = 65535, origlens: list[int] | None = None) -> bytes:
    """A classic pcap file: ``frames`` are (timestamp ns, bytes)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for k, (ts, data) in enumerate(frames):
        sec, ns = divmod(ts, 1_000_000_000)
        frac = ns if nano else ns // 1000
        orig = origlens[k] if origlens else len(data)
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def block(order: str, btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def shb(order: str = "<") -> bytes:
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order: str = "<", *, linktype: int = 1, snaplen: int = 0, name: str | None = None,
        description: str | None = None, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    opts = b""
    if name is not None:
        opts += _option(order, 2, name.encode())
    if description is not None:
        opts += _option(order, 3, description.encode())
    if tsresol is not None:
        opts += _option(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += _option(order, 14, struct.pack(order + "q", tsoffset))
    if opts:
        opts += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def epb(order: str, iface: int, ticks: int, data: bytes, origlen: int | None = None) -> bytes:
    body = struct.pack(order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if origlen is None else origlen) + _pad(data)
    return block(order, 6, body)


def spb(order: str, data: bytes, origlen: int | None = None) -> bytes:
    return block(order, 3, struct.pack(order + "I", len(data) if origlen is None else origlen) + _pad(data))


def nrb(order: str, entries: list[tuple[bytes, str]]) -> bytes:
    body = b""
    for addr, name in entries:
        value = addr + name.encode() + b"\0"
        body += struct.pack(order + "HH", 1 if len(addr) == 4 else 2, len(value)) + _pad(value)
    body += struct.pack(order + "HH", 0, 0)
    return block(order, 4, body)


def assert_same_index(a, b) -> None:
    """Two indexes of the same capture are equal: every column, the warnings, NRB names and sources."""
    import numpy as np  # noqa: PLC0415 - the writers above need only struct

    assert len(a) == len(b)
    for name in a.columns:
        assert np.array_equal(a[name], b[name]), name
    assert a.warnings == b.warnings
    assert a.names == b.names
    assert a.sources == b.sources
