"""pcapng reading: sections of either byte order, several IDBs and their options, EPB/SPB, NRB, damage."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

import capture_writers as W
from tracer.capture.index import load_index
from tracer.errors import CaptureError


def _frame(k: int) -> bytes:
    return bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", id=k) / UDP(sport=1000 + k, dport=2000))


def test_sections_of_both_byte_orders_and_interfaces(tmp_path: Path) -> None:
    """Two sections (LE then BE), interface ids restarting per section, each IDB's options kept."""
    data = (W.shb("<") + W.idb("<", name="node-a/eth0", description="uplink", snaplen=65535)
            + W.idb("<", name="cni0", linktype=1, tsresol=9)
            + W.epb("<", 0, 1_700_000_000_000_001, _frame(0))       # µs ticks (default resolution)
            + W.epb("<", 1, 1_700_000_000_000_000_002, _frame(1))   # ns ticks (if_tsresol 9)
            + W.shb(">") + W.idb(">", name="pod:prod/api-0", tsresol=0x80 | 20, tsoffset=10)
            + W.epb(">", 0, 5 << 20, _frame(2)))                    # 5 s in 2^-20 units, +10 s offset
    path = tmp_path / "multi.pcapng"
    path.write_bytes(data)
    index = load_index([str(path)])
    assert len(index) == 3
    assert index["ts_ns"].tolist() == [1_700_000_000_000_001_000, 1_700_000_000_000_000_002, 15_000_000_000]
    assert [index.frame(r) for r in range(3)] == [_frame(0), _frame(1), _frame(2)]
    srcs = [index.sources[s] for s in index["source"].tolist()]
    assert [s.iface for s in srcs] == ["node-a/eth0", "cni0", "pod:prod/api-0"]
    assert [s.point for s in srcs] == ["node-a/eth0", "cni0", "pod:prod/api-0"]
    assert [s.node for s in srcs] == ["node-a", None, None]
    assert srcs[0].description == "uplink" and srcs[0].snaplen == 65535
    assert index["o_sport"].tolist() == [1000, 1001, 1002]


def test_simple_packet_blocks_and_unknown_blocks(tmp_path: Path) -> None:
    """SPBs are packets on interface 0 (caplen bounded by snaplen); unknown block types are skipped."""
    data = (W.shb() + W.idb(snaplen=40) + W.block("<", 0x0BAD, b"\0" * 8)
            + W.spb("<", _frame(0)[:40], origlen=len(_frame(0))) + W.block("<", 0x7777, b"")
            + W.spb("<", _frame(1)[:40], origlen=len(_frame(1))))
    path = tmp_path / "spb.pcapng"
    path.write_bytes(data)
    index = load_index([str(path)])
    assert len(index) == 2
    assert index["caplen"].tolist() == [40, 40]
    assert index["origlen"].tolist() == [len(_frame(0))] * 2
    assert index.frame(1) == _frame(1)[:40]


def test_name_resolution_block_is_kept(tmp_path: Path) -> None:
    """NRB entries are exposed as address -> names."""
    data = W.shb() + W.nrb("<", [(bytes([10, 0, 0, 1]), "api.prod")]) + W.idb() + W.epb("<", 0, 1, _frame(0))
    path = tmp_path / "nrb.pcapng"
    path.write_bytes(data)
    index = load_index([str(path)])
    assert index.names == {"10.0.0.1": ["api.prod"]}


def test_public_mixed_endian_sections(public_captures: Path) -> None:
    """test202: three sections (BE, LE, BE). tshark's 11 frames include 3 custom blocks, which carry no packet."""
    index = load_index([str(public_captures / "pcapng-suite-test202-multi-section-mixed-endian-be.pcapng")])
    assert len(index) == 11 - 3
    assert {index.sources[s].linktype for s in index["source"].tolist()} == {0, 1}


def test_public_interface_names(public_captures: Path) -> None:
    """gopacket test300: 3 IDBs (ens33, ens33, docker0), all 32 packets on docker0."""
    index = load_index([str(public_captures / "pcapng-ens33-docker0-tls-gopacket.pcapng")])
    assert len(index) == 32
    assert {index.sources[s].iface for s in index["source"].tolist()} == {"docker0"}


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d[:-3], "cut short"),
    (lambda d: d[:-4] + b"\x01\x00\x00\x00", "trailing length"),
])
def test_damaged_last_block_keeps_earlier_packets(tmp_path: Path, mutate, message: str) -> None:
    data = W.shb() + W.idb() + W.epb("<", 0, 1, _frame(0)) + W.epb("<", 0, 2, _frame(1))
    path = tmp_path / "d.pcapng"
    path.write_bytes(mutate(data))
    index = load_index([str(path)])
    assert len(index) == 1
    assert message in index.warnings[0] and "(kept 1 packets)" in index.warnings[0]


def test_packet_for_undeclared_interface_is_damage(tmp_path: Path) -> None:
    data = W.shb() + W.idb() + W.epb("<", 0, 1, _frame(0)) + W.epb("<", 3, 2, _frame(1))
    path = tmp_path / "i.pcapng"
    path.write_bytes(data)
    index = load_index([str(path)])
    assert len(index) == 1 and "interface 3" in index.warnings[0]


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "n.pcapng"
    path.write_bytes(W.shb() + W.epb("<", 0, 1, _frame(0)))
    with pytest.raises(CaptureError, match="interface 0"):
        load_index([str(path)])


@pytest.mark.parametrize("order", ["<", ">"])
def test_runs_of_packets_in_either_byte_order(tmp_path: Path, order: str) -> None:
    """Long EPB runs (the vectorised path) read the same in little- and big-endian sections."""
    frames = [_frame(k) for k in range(300)]
    data = W.shb(order) + W.idb(order, name="eth0", tsresol=9) + b"".join(
        W.epb(order, 0, 1_700_000_000_000_000_000 + k, f, origlen=len(f) + k) for k, f in enumerate(frames))
    path = tmp_path / f"run{order == '>'}.pcapng"
    path.write_bytes(data)
    index = load_index([str(path)])
    assert index["ts_ns"].tolist() == [1_700_000_000_000_000_000 + k for k in range(300)]
    assert index["origlen"].tolist() == [len(f) + k for k, f in enumerate(frames)]
    assert index["i_ipid"].tolist() == list(range(300))
    assert index.frame(299) == frames[299]
