"""Fuzz targets: feed hostile bytes to tracer's readers and decoders and check the rules that must hold.

Shared by the hypothesis tests (``tests/fuzz/``) and the atheris entry (``scripts/fuzz_atheris.py``). Each
target returns normally when tracer behaved and raises ``AssertionError`` (or lets the offending exception
escape) when it did not. The rules, from issue 7 and docs/CONTRACTS.md:

- opening a file may fail only with a ``TracerError`` (one clear line for the user), nothing else;
- an opened index is consistent: every column has ``len(index)`` rows, ``frame(row)`` has ``caplen`` bytes;
- ``decode_frames`` never raises on packet bytes and returns every column with one value per frame;
- ``dissect`` of any frame returns layers whose byte spans lie inside the frame, with plain-string values.

Time and memory bounds are the caller's job (the tests wrap each case in an alarm and tracemalloc).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np

from tracer.errors import TracerError

VXLAN_PORTS = (4789, 8472)
# Rows per fuzz case whose raw frame and dissection are checked: enough to reach every record of a fuzzed
# file, bounded so one case with thousands of tiny records stays fast.
MAX_ROWS_CHECKED = 64


def check_index_file(path: str, *, dissect_rows: bool = True) -> int:
    """Open ``path`` as the CLI and TUI do and check the index; returns packets indexed, -1 if refused."""
    from tracer.capture.index import load_index

    try:
        index = load_index([path], vxlan_ports=VXLAN_PORTS)
    except TracerError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip(), f"error is not one line: {exc!r}"
        return -1
    n = len(index)
    for name in ("ts_ns", "offset", "caplen", "origlen", "source", "encap", "vni", "i_ver", "flags"):
        assert len(index[name]) == n, f"column {name} has {len(index[name])} rows, index has {n}"
    caplens = np.asarray(index["caplen"])
    for row in range(min(n, MAX_ROWS_CHECKED)):
        frame = index.frame(row)
        assert len(frame) == int(caplens[row]), f"row {row}: frame has {len(frame)} bytes, caplen {caplens[row]}"
        if dissect_rows:
            source = index.sources[int(index["source"][row])]
            check_dissect(frame, int(source.linktype))
    for w in index.warnings:
        assert "\n" not in w.strip(), f"warning is not one line: {w!r}"
    return n


def check_bytes_as_file(data: bytes, *, suffix: str = ".pcap", dissect_rows: bool = True) -> int:
    """``check_index_file`` on ``data`` written to a temporary file (removed afterwards)."""
    fd, path = tempfile.mkstemp(prefix="tracer-fuzz-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return check_index_file(path, dissect_rows=dissect_rows)
    finally:
        os.unlink(path)


def check_decode(frames: Sequence[bytes], linktypes: Sequence[int]) -> dict[str, np.ndarray]:
    """Run ``decode_frames`` over ``frames`` packed in one buffer; every column must have one value per frame."""
    from tracer.decode.addr6 import Addr6Table
    from tracer.decode.fields import decode_frames

    n = len(frames)
    offsets = np.zeros(n, dtype=np.int64)
    caplens = np.zeros(n, dtype=np.uint32)
    pos = 0
    for k, frame in enumerate(frames):
        offsets[k], caplens[k] = pos, len(frame)
        pos += len(frame)
    buf = np.frombuffer(b"".join(frames) or b"\0", dtype=np.uint8)
    columns = decode_frames(buf, offsets, caplens, np.asarray(linktypes, dtype=np.uint16),
                            vxlan_ports=frozenset(VXLAN_PORTS), addr6=Addr6Table())
    for name in ("encap", "vni", "depth", "o_ver", "i_ver", "i_proto", "i_sport", "i_dport", "flags"):
        assert name in columns, f"decode_frames returned no {name} column"
    for name, col in columns.items():
        assert len(col) == n, f"column {name} has {len(col)} values for {n} frames"
    depth = np.asarray(columns["depth"])
    assert n == 0 or int(depth.max()) <= 3, f"depth {int(depth.max())} > 3 (encapsulation levels are capped)"
    return columns


def check_dissect(frame: bytes, linktype: int) -> None:
    """``dissect`` returns layers with plain-string fields whose byte spans stay inside the frame."""
    from tracer.decode.dissect import dissect

    result = dissect(frame, linktype, vxlan_ports=VXLAN_PORTS)
    size = len(frame)
    for layer in result.layers:
        assert isinstance(layer.name, str)
        assert 0 <= layer.offset <= size and layer.length >= 0, f"layer {layer.name} span {layer.offset}+{layer.length}"
        for f in layer.fields:
            assert isinstance(f.value, str), f"field {layer.name}.{f.name} value is {type(f.value).__name__}"
            assert f.offset >= 0 and f.length >= 0, f"field {layer.name}.{f.name} span {f.offset}+{f.length}"


def check_one_input(data: bytes) -> None:
    """A single entry for byte-only fuzzers (atheris): the first byte picks the target, the rest is the input."""
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    if mode == 0:
        check_bytes_as_file(rest)
    elif mode == 1 and len(rest) >= 2:
        linktype = int.from_bytes(rest[:2], "little")
        check_decode([rest[2:]], [linktype])
    elif mode == 2 and rest:
        check_dissect(rest, (1, 101, 113, 276, 0)[rest[0] % 5])
    else:
        # Several frames in one buffer: a decoder must not read one frame's bytes from its neighbour.
        cut = len(rest) // 2
        check_decode([rest[:cut], rest[cut:]], [1, 1])
