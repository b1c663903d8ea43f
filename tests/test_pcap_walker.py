"""The child-process record walk of large classic pcap files gives exactly the in-process walk's index."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

import tracer.capture.pcap as pcap
import tracer.capture.walker as walker
from capture_writers import assert_same_index, pcap_bytes
from tracer.capture.index import load_index

T0 = 1_700_000_000_000_000_000


def _big(order: str) -> bytes:
    """About 20 MB of varied frames (60 to 1514 bytes), past the walker threshold."""
    base = [bytes(Ether() / IP(src="10.244.1.3", dst="10.244.2.5") / TCP(sport=40000, dport=80) / (b"x" * n))
            for n in (0, 7, 300, 1460)]
    base.append(bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=53, dport=5353) / b"q"))
    frames = [(T0 + k * 1000, base[(k * 7) % 5]) for k in range(40_000)]
    return pcap_bytes(frames, order=order)


def _indexes(path: Path, monkeypatch: pytest.MonkeyPatch):
    started = []
    popen = walker.subprocess.Popen

    def spy(*args, **kwargs):
        started.append(args[0])
        return popen(*args, **kwargs)

    monkeypatch.setattr(walker.subprocess, "Popen", spy)
    monkeypatch.setattr(walker, "WALKER_MIN_BYTES", 1 << 20)
    walked = load_index([str(path)])
    assert len(started) == 1                     # the walk did run in a child
    monkeypatch.setattr(walker.subprocess, "Popen", popen)
    monkeypatch.setattr(walker, "WALKER_MIN_BYTES", 1 << 62)
    local = load_index([str(path)])
    return walked, local


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("damage", ["none", "cut-frame", "cut-header", "garbage-caplen"])
def test_walker_index_equals_in_process_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str,
                                            damage: str) -> None:
    data = bytearray(_big(order))
    offsets = []
    off = 24
    while off < len(data):
        offsets.append(off)
        off += 16 + struct.unpack_from(order + "I", data, off + 8)[0]
    at = offsets[31_337]
    if damage == "cut-frame":
        data = data[:at + 20]
    elif damage == "cut-header":
        data = data[:at + 9]
    elif damage == "garbage-caplen":
        data[at + 8:at + 12] = struct.pack(order + "I", 0x7FFFFFFF)
    path = tmp_path / "big.pcap"
    path.write_bytes(bytes(data))
    walked, local = _indexes(path, monkeypatch)
    assert_same_index(walked, local)
    assert len(walked) == (len(offsets) if damage == "none" else 31_337)
    assert walked["offset"].tolist() == [o + 16 for o in offsets[:len(walked)]]
    if damage != "none":
        assert walked.warnings and "kept 31337 packets" in walked.warnings[0]


@pytest.mark.parametrize("program", [
    "pass",                                                    # exits at once, nothing written
    "import sys; sys.stdout.buffer.write(b'\\0' * 12)",        # dies after half a value
    None,                                                      # the right offsets, then silence
], ids=["silent", "dies-mid-value", "stops-early"])
def test_walker_failures_fall_back_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          program: str | None) -> None:
    """Whatever a failing child streams, the rest is walked in-process: no packet lost, no false warning."""
    path = tmp_path / "big.pcap"
    path.write_bytes(_big("<"))
    if program is None:
        program = pcap._WALKER.replace("while not end:", "for _ in range(2):")
    monkeypatch.setattr(pcap, "_WALKER", program)
    walked, local = _indexes(path, monkeypatch)
    assert_same_index(walked, local)
    assert len(walked) == 40_000 and not walked.warnings
