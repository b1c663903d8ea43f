"""Resource limits that hostile captures probe: interface counts, per-file and across files.

The index stores a packet's source (file × interface) in a uint16 column; pcapng readers cap interfaces per
file, so only many files together can exhaust the ids. Beyond the limit tracer must keep what it read and
warn, never crash.
"""

from __future__ import annotations

from pathlib import Path

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
