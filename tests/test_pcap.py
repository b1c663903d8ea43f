"""Classic pcap reading: both magics, both byte orders, gzip by magic, caplen bounds, growing input."""

from __future__ import annotations

import gzip
import os
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from capture_writers import pcap_bytes
from tracer.capture.index import load_index
from tracer.errors import CaptureError

T0 = 1_700_000_000_123_456_789


def _frames(n: int) -> list[bytes]:
    return [bytes(Ether() / IP(src="10.244.1.3", dst="10.244.2.5", id=k) / TCP(sport=40000 + k, dport=80))
            for k in range(n)]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_variants_read_ts_lengths_and_offsets(tmp_path: Path, order: str, nano: bool) -> None:
    """µs and ns magic in either byte order give the same packets, ns-exact for ns files, µs-exact for µs files."""
    frames = _frames(5)
    stamps = [T0 + k * 1_000_001 for k in range(5)]
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_bytes(list(zip(stamps, frames)), order=order, nano=nano, origlens=[1000] * 5))
    index = load_index([str(path)])
    assert len(index) == 5
    want = np.array(stamps) if nano else np.array(stamps) // 1000 * 1000
    assert index["ts_ns"].tolist() == want.tolist()
    assert index["caplen"].tolist() == [len(f) for f in frames]
    assert index["origlen"].tolist() == [1000] * 5
    for row, frame in enumerate(frames):
        assert index.frame(row) == frame
    assert index["i_ipid"].tolist() == list(range(5))
    assert index.warnings == []


def test_scapy_written_pcap_roundtrip(tmp_path: Path) -> None:
    """A file written by scapy's wrpcap: every frame comes back byte-for-byte at its offset."""
    pkts = [Ether() / IP(src="192.168.0.1", dst="192.168.0.2") / UDP(sport=1000 + k, dport=53) / (b"x" * k)
            for k in range(50)]
    path = tmp_path / "s.pcap"
    wrpcap(str(path), pkts)
    index = load_index([str(path)])
    assert len(index) == 50
    assert [index.frame(r) for r in range(50)] == [bytes(p) for p in pkts]
    assert index["o_sport"].tolist() == [1000 + k for k in range(50)]


def test_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    """A gzip-compressed pcap named .pcap is read through a spool; frames read from the spool."""
    frames = _frames(3)
    path = tmp_path / "plain-name.pcap"
    path.write_bytes(gzip.compress(pcap_bytes([(T0 + k, f) for k, f in enumerate(frames)])))
    index = load_index([str(path)])
    assert len(index) == 3
    assert index.frame(2) == frames[2]
    assert index.sources[0].file == str(path)


def test_public_gzip_capture(public_captures: Path) -> None:
    """The corpus's gzip pcap holds 4 packets (MANIFEST, tshark)."""
    index = load_index([str(public_captures / "pcap-gzip-compressed-tls-scapy.pcap.gz")])
    assert len(index) == 4


def test_truncated_gzip_keeps_packets_and_warns(tmp_path: Path) -> None:
    """A gzip stream cut short keeps the records decoded before the cut, with a warning."""
    frames = _frames(200)
    data = gzip.compress(pcap_bytes([(T0 + k, f) for k, f in enumerate(frames)]))
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    index = load_index([str(path)])
    assert 0 < len(index) < 200
    assert len(index.warnings) == 1 and "kept" in index.warnings[0]
    assert index.frame(len(index) - 1) == frames[len(index) - 1]


def test_caplen_beyond_limit_ends_file_and_keeps_earlier(tmp_path: Path) -> None:
    """A record announcing a 4 GB caplen is garbage: the packets before it are kept, nothing huge is allocated."""
    good = pcap_bytes([(T0 + k, f) for k, f in enumerate(_frames(3))])
    bad = good + bytes.fromhex("00000000 00000000 ffffffff ffffffff") + b"junk"
    path = tmp_path / "bad.pcap"
    path.write_bytes(bad)
    index = load_index([str(path)])
    assert len(index) == 3
    assert "caplen 4294967295" in index.warnings[0] and "(kept 3 packets)" in index.warnings[0]


def test_caplen_above_snaplen_is_kept_with_a_warning(public_captures: Path) -> None:
    """Snaplen 1 but caplen 8 (zeek trunc-hdr): the packet is read (as tshark does) and the oddity reported."""
    index = load_index([str(public_captures / "caplen-exceeds-snaplen-zeek.pcap")])
    assert len(index) == 1 and index["caplen"][0] == 8
    assert "exceeds the file's snaplen 1" in index.warnings[0]


@pytest.mark.parametrize("cut", [24 + 5, 24 + 16 + 10])
def test_record_cut_short(tmp_path: Path, cut: int) -> None:
    """A file ending inside the second record's header or data keeps the first record."""
    frames = _frames(2)
    data = pcap_bytes([(T0, frames[0]), (T0 + 1, frames[1])])
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: 24 + 16 + len(frames[0]) + cut - 24])
    index = load_index([str(path)])
    assert len(index) == 1
    assert "kept 1 packets" in index.warnings[0]


def test_header_only_is_an_empty_capture(tmp_path: Path) -> None:
    """A valid header and no records is an empty capture, not an error."""
    path = tmp_path / "empty.pcap"
    path.write_bytes(pcap_bytes([]))
    assert len(load_index([str(path)])) == 0


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\xd4\xc3\xb2\xa1" + b"\0" * 10, "truncated pcap file header"),
    (b"GIF89a....", "not a pcap or pcapng file"),
])
def test_unreadable_files_raise_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message) as info:
        load_index([str(path)])
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_stdin_spool_reads_as_it_arrives(tmp_path: Path) -> None:
    """`tracer show -` prints the first packets while the writer is still writing (spooled stdin)."""
    frames = _frames(3)
    data = pcap_bytes([(T0 + k, f) for k, f in enumerate(frames)])
    first = 24 + 16 + len(frames[0])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tracer", "show", "--format", "jsonl", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(data[:first])
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no row within 30 s while stdin is still open"
        line = proc.stdout.readline()          # arrives before stdin is closed
        assert b'"no": 1' in line
        proc.stdin.write(data[first:])
        proc.stdin.close()
        rest = proc.stdout.read()
        assert rest.count(b"\n") == 2
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
