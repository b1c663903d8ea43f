"""The live spool's pcapng writer and capture-filter compiler, checked against tshark, tcpdump and an
independent block walker (no root needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.live_helpers import isb_counters, walk_pcapng
from tracer.capture.live_bpf import compile_bpf
from tracer.capture.pcapng_writer import DIR_INBOUND, DIR_OUTBOUND, Interface, PcapngFile, packet_block
from tracer.errors import FilterError

ETH_IP_UDP = bytes.fromhex(
    "0a580af40102" "0a580af40002" "0800"                       # Ethernet: pod MACs, IPv4
    "4500001c1234400040110000" "0af40002" "0af40102"           # IPv4 10.244.0.2 -> 10.244.1.2, id 0x1234
    "a1b20035" "00080000")                                     # UDP 41394 -> 53, no payload
T0 = 1_764_144_000_123_456_789


def _write(path, n=5, *, stats=None) -> None:
    f = PcapngFile(str(path), [Interface("node1/veth0a1b2c3d", 1), Interface("node1/cni0", 1)])
    blocks = [packet_block(k % 2, T0 + k * 1000, ETH_IP_UDP, len(ETH_IP_UDP),
                           DIR_INBOUND if k % 2 == 0 else DIR_OUTBOUND) for k in range(n)]
    f.write_blocks(blocks, n)
    f.close(stats)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_points_ns_timestamps_and_direction(tmp_path) -> None:
    """One IDB per point (if_name NODE/IFACE), nanosecond timestamps and epb_flags direction survive in tshark."""
    p = tmp_path / "s.pcapng"
    _write(p, 4)
    out = subprocess.run(["tshark", "-r", str(p), "-T", "fields", "-e", "frame.interface_name", "-e",
                          "frame.time_epoch", "-e", "ip.id", "-e", "frame.packet_flags_direction"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in out if line]
    assert [r[0] for r in rows] == ["node1/veth0a1b2c3d", "node1/cni0"] * 2
    assert rows[1][1] == "1764144000.123457789"     # T0 + 1000 ns, to the nanosecond
    assert {r[2] for r in rows} == {"0x1234"}
    assert [int(r[3], 16) for r in rows] == [1, 2, 1, 2]


def test_isb_carries_kernel_counters(tmp_path) -> None:
    """close() writes one ISB per interface with isb_ifrecv / isb_ifdrop as given."""
    p = tmp_path / "s.pcapng"
    _write(p, 3, stats=[(0, 10, 4, T0), (1, 7, 0, T0)])
    assert isb_counters(p.read_bytes()) == {0: (10, 4), 1: (7, 0)}


def test_truncated_spool_keeps_complete_blocks(tmp_path) -> None:
    """A spool cut inside its last block (a SIGKILL mid-write) still reads: every complete packet, no traceback."""
    p = tmp_path / "s.pcapng"
    _write(p, 6)
    data = p.read_bytes()
    blocks, _ = walk_pcapng(data)
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[:len(data) - 20])            # inside the 6th EPB
    res = subprocess.run([sys.executable, "-m", "tracer", "show", "--format", "jsonl", str(cut)],
                         capture_output=True, text=True)
    assert "Traceback" not in res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines() if line]
    assert sum(1 for t, _ in blocks if t == 6) == 6
    assert len(rows) == 5
    assert [r["point"] for r in rows] == ["node1/veth0a1b2c3d", "node1/cni0"] * 2 + ["node1/veth0a1b2c3d"]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
@pytest.mark.parametrize("expr", ["udp port 8472", "tcp and host 10.244.1.2", "icmp or arp"])
def test_bpf_matches_tcpdump(expr) -> None:
    """The kernel filter is libpcap's own program: identical to `tcpdump -ddd` for Ethernet."""
    out = subprocess.run(["tcpdump", "-ddd", expr], capture_output=True, text=True, check=True).stdout.split("\n")
    expected = [tuple(int(x) for x in line.split()) for line in out[1:] if line.strip()]
    assert compile_bpf(expr) == expected


def test_bad_bpf_is_a_filter_error() -> None:
    """A filter that does not compile raises FilterError naming the expression."""
    with pytest.raises(FilterError, match="bogus"):
        compile_bpf("bogus ((")


@pytest.mark.parametrize(("target", "message"), [("/nonexistent-dir/x.pcapng", "no such directory"),
                                                 ("/", "is a directory")])
def test_bad_write_target_is_one_line_before_capturing(target, message) -> None:
    """A --write target that cannot be written fails at once with one line (before any socket is opened)."""
    res = subprocess.run([sys.executable, "-m", "tracer", "live", "-i", "lo", "--write", target, "--quiet",
                          "--duration", "0.1"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr
