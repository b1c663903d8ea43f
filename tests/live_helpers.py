"""Test helpers for live capture: an independent pcapng block walker (not tracer's reader)."""

from __future__ import annotations

import struct


def walk_pcapng(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """(complete blocks as (type, body), bytes of a trailing incomplete block). Little-endian files only."""
    blocks, pos = [], 0
    while pos + 12 <= len(data):
        btype, total = struct.unpack_from("<II", data, pos)
        if total < 12 or pos + total > len(data):
            break
        assert struct.unpack_from("<I", data, pos + total - 4)[0] == total, "trailer length mismatch"
        blocks.append((btype, data[pos + 8:pos + total - 4]))
        pos += total
    return blocks, len(data) - pos


def options(body: bytes, start: int) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    pos = start
    while pos + 4 <= len(body):
        code, length = struct.unpack_from("<HH", body, pos)
        if code == 0:
            break
        out.setdefault(code, []).append(body[pos + 4:pos + 4 + length])
        pos += 4 + length + (-length % 4)
    return out


def isb_counters(data: bytes) -> dict[int, tuple[int, int]]:
    """Interface id → (isb_ifrecv, isb_ifdrop) from the last ISB of each interface."""
    out = {}
    for btype, body in walk_pcapng(data)[0]:
        if btype == 5:
            iface = struct.unpack_from("<I", body)[0]
            opts = options(body, 12)
            out[iface] = (struct.unpack("<Q", opts[4][0])[0], struct.unpack("<Q", opts[5][0])[0])
    return out
