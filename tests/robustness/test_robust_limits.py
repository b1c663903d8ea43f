"""Resource limits that hostile captures probe: interface counts, per-file and across files.

The index stores a packet's source (file × interface) in a uint16 column; pcapng readers cap interfaces per
file, so only many files together can exhaust the ids. Beyond the limit tracer must keep what it read and
warn, never crash.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracer.fuzz import build as B

from .capwalk import walk
from .runner import run_cli

FRAME = B.ethernet(B.ipv4(B.udp(b"x", 1, 2), B.IP_UDP), B.ETH_IPV4)


def _many_interfaces(path: Path, interfaces: int) -> None:
    """A pcapng with ``interfaces`` IDBs and a packet on the first and on the last of them."""
    blocks = [B.shb(), *(B.idb(1, name=f"node{i}/eth0") for i in range(interfaces))]
    blocks += [B.epb(B.Record(FRAME, interface=0)), B.epb(B.Record(FRAME, interface=interfaces - 1))]
    path.write_bytes(b"".join(blocks))


def test_sources_beyond_uint16_across_files(tmp_path: Path, capsys) -> None:
    """17 files × 4096 interfaces (69,632 sources > 65,535): one-line warning and the packets that fit, no crash."""
    files = []
    for k in range(17):
        path = tmp_path / f"f{k:02d}.pcapng"
        _many_interfaces(path, 4096)
        files.append(str(path))
    assert len(walk(Path(files[0]).read_bytes()).packet_ends) == 2
    result = run_cli(["show", "--format", "jsonl", *files], capsys, timeout=120)
    assert result.problem() is None, result.problem()
    rows = [line for line in result.out.splitlines() if line.strip()]
    # The first 15 files fit entirely (15 × 4096 = 61,440 sources); nothing of theirs may be lost.
    assert 30 <= len(rows) < 34, len(rows)
    assert "interfaces" in result.err


def _epb_ticks(ticks: int) -> bytes:
    """An EPB on interface 0 whose 64-bit timestamp is ``ticks`` (in the interface's if_tsresol units)."""
    import struct

    body = struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(FRAME), len(FRAME))
    return B.pcapng_block(6, body + FRAME + b"\0" * (-len(FRAME) % 4))


def _tsoffset(seconds: int) -> B.Option:
    import struct

    return B.Option(14, struct.pack("<q", seconds))


TIMESTAMP_CASES = {
    "tsoffset int64 max": B.shb() + B.idb(1, options=[_tsoffset(2**63 - 1)]) + _epb_ticks(5),
    "tsoffset int64 min": B.shb() + B.idb(1, options=[_tsoffset(-(2**63))]) + _epb_ticks(5),
    "tsoffset 2^62 with seconds resolution": B.shb() + B.idb(1, tsresol=0, options=[_tsoffset(2**62)]) + _epb_ticks(2**63),
    "ticks 2^64-1 at seconds resolution": B.shb() + B.idb(1, tsresol=0) + _epb_ticks(2**64 - 1),
    "ticks 2^64-1 at 2^0 resolution": B.shb() + B.idb(1, tsresol=0x80) + _epb_ticks(2**64 - 1),
    "tsresol 2^-127": B.shb() + B.idb(1, tsresol=0x80 | 127) + _epb_ticks(2**64 - 1),
    "tsresol 10^-127": B.shb() + B.idb(1, tsresol=127) + _epb_ticks(2**64 - 1),
    "good packet, then an IDB with a huge tsoffset": B.shb() + B.idb(1) + _epb_ticks(1) +
    B.idb(1, options=[_tsoffset(2**63 - 1)]) + B.epb(B.Record(FRAME, interface=1)),
}


def test_extreme_timestamps(tmp_path: Path, capsys) -> None:
    """Timestamp fields at their limits (if_tsoffset, if_tsresol, 64-bit ticks): rows or one error line, through
    every command that reads captures; a good packet before the bad interface is kept."""
    from .runner import commands

    problems = []
    for name, data in TIMESTAMP_CASES.items():
        path = tmp_path / "ts.pcapng"
        path.write_bytes(data)
        for argv in (["show", "--format", "jsonl"], ["show", "--format", "table"], ["stats"], ["flows"],
                     ["path", "--packet", "1"]):
            if argv[0] not in commands():
                continue
            result = run_cli([*argv, str(path)], capsys)
            if why := result.problem():
                problems.append(f"{name}, tracer {argv[0]}: {why}")
            elif name.startswith("good packet") and argv[-1] == "jsonl" and len(result.out.splitlines()) != 1:
                problems.append(f"{name}: the packet before the bad IDB was not kept ({result.err.strip()!r})")
    assert not problems, "\n".join(problems)


def _open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd"))


def test_loading_many_captures_does_not_leak_descriptors(public_captures: Path, tmp_path: Path) -> None:
    """A process that indexes captures again and again (a long TUI session, a script, this harness) keeps its
    descriptors: each dropped index closes its files, gzip spools included, and refused files close too."""
    import gc
    import os

    from tracer.capture.index import load_index
    from tracer.errors import TracerError

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    refused = tmp_path / "not-a-capture.pcap"
    refused.write_bytes(b"hello, not a capture")
    inputs = [public_captures / "vxlan-4789-http-vni1-zeek.pcap", public_captures / "pcap-gzip-compressed-tls-scapy.pcap.gz",
              public_captures / "pcapng-ens33-docker0-tls-gopacket.pcapng", refused]
    for path in inputs:  # warm up: imports, thread pools, caches
        try:
            load_index([str(path)])
        except TracerError:
            pass
    gc.collect()
    before = _open_fds()
    for _ in range(40):
        for path in inputs:
            try:
                index = load_index([str(path)])
                index.frame(0)
                del index
            except TracerError:
                pass
    gc.collect()
    leaked = _open_fds() - before
    assert leaked <= 4, f"{leaked} descriptors left open after 160 loads"
