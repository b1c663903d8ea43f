"""Bad input: one line on stderr naming the file and the problem; exit 2 if nothing readable, else keep, warn, 0.

Cases built in tmp_path with the independent writers in ``capture_writers`` (so each damage is exactly the one
named), plus the 14 deliberately corrupt files of the public corpus.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

import capture_writers as W
from tracer.cli import main

T0 = 1_700_000_000_000_000_000
FRAMES = [bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", id=k) / TCP(dport=80)) for k in range(3)]
GOOD_PCAP = W.pcap_bytes([(T0 + k, f) for k, f in enumerate(FRAMES)])
GOOD_PCAPNG = W.shb() + W.idb(name="eth0") + b"".join(W.epb("<", 0, k, f) for k, f in enumerate(FRAMES))


def _show(capsys, *paths: Path | str) -> tuple[int, str, str]:
    code = main(["show", "--format", "jsonl", *map(str, paths)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# (name, bytes, words the error line must contain): nothing readable -> exit 2, one line naming the file.
UNREADABLE = [
    ("not-a-capture.pcap", b"<html>hello</html>\n", "not a pcap or pcapng file"),
    ("empty.pcap", b"", "empty file"),
    ("short-header.pcap", GOOD_PCAP[:23], "truncated pcap file header"),
    ("three-bytes.pcapng", GOOD_PCAPNG[:3], "truncated file"),
    ("short-shb.pcapng", GOOD_PCAPNG[:16], "cut short"),
    ("bad-version.pcap", GOOD_PCAP[:4] + struct.pack("<HH", 3, 0) + GOOD_PCAP[8:], "unsupported pcap version 3.0"),
    ("reserved-linktype.pcap", GOOD_PCAP[:20] + struct.pack("<I", 0x00300001) + GOOD_PCAP[24:], "reserved bits"),
    ("first-record-garbage.pcap", GOOD_PCAP[:24] + b"\xff" * 40, "exceeds the maximum"),
    ("idb-length-lies.pcapng", W.shb() + struct.pack("<II", 1, 4) + b"\0" * 16, "total length 4 is invalid"),
    ("block-not-mult4.pcapng", W.shb() + struct.pack("<II", 1, 21) + b"\0" * 24, "multiple of 4"),
    ("packet-before-idb.pcapng", W.shb() + W.epb("<", 0, 1, FRAMES[0]), "declares 0"),
    ("bad-bom.pcapng", GOOD_PCAPNG[:8] + b"\x01\x02\x03\x04" + GOOD_PCAPNG[12:], "byte-order magic"),
]


@pytest.mark.parametrize("name, data, words", UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_unreadable_input_is_one_line_exit_2(tmp_path: Path, capsys, name: str, data: bytes, words: str) -> None:
    path = _write(tmp_path, name, data)
    code, out, err = _show(capsys, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"tracer: {path}: ") and words in err


# (name, bytes, packets kept, words of the warning): damage after N good packets -> keep N, warn once, exit 0.
DAMAGED = [
    ("cut-in-record-data.pcap", GOOD_PCAP[:-10], 2, "cut short"),
    ("cut-in-record-header.pcap", GOOD_PCAP + b"\0" * 7, 3, "truncated record header"),
    ("garbage-record.pcap", GOOD_PCAP + struct.pack("<IIII", 1, 2, 0x7FFFFFFF, 5) + b"x" * 100, 3,
     "caplen 2147483647 exceeds the maximum"),
    ("cut-block.pcapng", GOOD_PCAPNG[:-5], 2, "cut short"),
    ("block-length-lies.pcapng", GOOD_PCAPNG + struct.pack("<II", 6, 0x10000) + b"\0" * 40, 3, "cut short"),
    ("trailer-lies.pcapng", GOOD_PCAPNG[:-4] + b"\0\0\0\0", 2, "trailing length"),
    ("zero-length-block.pcapng", GOOD_PCAPNG + struct.pack("<II", 6, 0) + b"\0" * 40, 3, "total length 0"),
]


@pytest.mark.parametrize("name, data, kept, words", DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damage_after_good_packets_keeps_them(tmp_path: Path, capsys, name: str, data: bytes, kept: int,
                                              words: str) -> None:
    path = _write(tmp_path, name, data)
    code, out, err = _show(capsys, path)
    assert code == 0 and len(out.splitlines()) == kept
    assert err.count("\n") == 1 and words in err
    assert err.startswith(f"tracer: warning: {path}: ") and err.rstrip().endswith(f"(kept {kept} packets)")


def test_unknown_linktype_is_indexed_without_decode(tmp_path: Path, capsys) -> None:
    """Link type 147 (user 0): packets are listed with their lengths, nothing decoded, no error."""
    path = _write(tmp_path, "user0.pcap", W.pcap_bytes([(T0, FRAMES[0])], linktype=147))
    code, out, err = _show(capsys, path)
    assert code == 0 and err == "" and '"linktype": 147' in out and '"src": null' in out


def test_caplen_above_snaplen_warns_and_keeps(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "snap.pcap", W.pcap_bytes([(T0, FRAMES[0])], snaplen=20))
    code, out, err = _show(capsys, path)
    assert code == 0 and len(out.splitlines()) == 1
    assert "exceeds the file's snaplen 20" in err and err.count("\n") == 1


def test_one_bad_file_among_good_ones(tmp_path: Path, capsys) -> None:
    """Several files: an unreadable one is a warning; the readable ones are shown, exit 0."""
    good = _write(tmp_path, "good.pcap", GOOD_PCAP)
    bad = _write(tmp_path, "bad.pcap", b"nonsense")
    code, out, err = _show(capsys, good, bad, tmp_path / "missing.pcap")
    assert code == 0 and len(out.splitlines()) == 3
    assert err.count("\n") == 2 and "bad.pcap: not a pcap" in err and "missing.pcap: No such file" in err


def test_all_files_unreadable_is_exit_2(tmp_path: Path, capsys) -> None:
    code, out, err = _show(capsys, tmp_path / "a.pcap", tmp_path / "b.pcap")
    assert code == 2 and out == "" and err.count("\n") == 1


@pytest.mark.parametrize("caplen", [0xFFFFFFFF, 1 << 31])
def test_huge_caplen_allocates_nothing_big(tmp_path: Path, caplen: int) -> None:
    """A record announcing a 4 GB frame is rejected without allocating anything near its size."""
    from tracer.capture.index import load_index

    data = GOOD_PCAP + struct.pack("<IIII", 1, 2, caplen, caplen) + b"x" * 64
    path = _write(tmp_path, "huge.pcap", data)
    tracemalloc.start()
    try:
        index = load_index([str(path)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(index) == 3 and peak < 32 << 20


def test_huge_snaplen_and_caplen_in_pcapng_are_bounded_by_the_block(tmp_path: Path) -> None:
    """An EPB whose caplen exceeds its block is damage, even when the IDB's snaplen allows it."""
    from tracer.capture.index import load_index

    block = bytearray(W.epb("<", 0, 9, FRAMES[0]))
    struct.pack_into("<I", block, 20, 0xFFFFFF00)
    path = _write(tmp_path, "epb.pcapng", W.shb() + W.idb(snaplen=0xFFFFFFFF) + W.epb("<", 0, 1, FRAMES[1])
                  + bytes(block))
    index = load_index([str(path)])
    assert len(index) == 1 and "caplen 4294967040 exceeds the block" in index.warnings[0]


# The 14 corrupt files of the public corpus: (exit status, words in the one stderr line, packets shown).
PUBLIC_CORRUPT = {
    "corrupt-empty-file-libpcap.pcap": (2, "empty file", 0),
    "corrupt-garbage-after-record6-suricata.pcap": (0, "caplen 4325376 exceeds the maximum", 6),
    "corrupt-pcap-invalid-version-libpcap.pcap": (2, "unsupported pcap version 1.4", 0),
    "corrupt-pcap-linktype-reserved-bits-libpcap.pcap": (2, "reserved bits", 0),
    "corrupt-pcap-truncated-file-header-23B-libpcap.pcap": (2, "truncated pcap file header (23 of 24 bytes)", 0),
    "corrupt-pcapng-block-len-not-mult4-libpcap.pcapng": (2, "total length 21 is invalid", 0),
    "corrupt-pcapng-block-len-too-small-libpcap.pcapng": (2, "total length 4 is invalid", 0),
    "corrupt-pcapng-idb-tsresol-too-high-libpcap.pcapng": (2, "if_tsresol", 0),
    "corrupt-pcapng-invalid-version-libpcap.pcapng": (2, "unsupported pcapng version 0.1", 0),
    # libpcap rejects a section without interfaces; it is structurally sound and simply holds no packet.
    "corrupt-pcapng-no-idb-libpcap.pcapng": (0, "", 0),
    "corrupt-pcapng-packet-before-idb-libpcap.pcapng": (2, "declares 0", 0),
    "corrupt-pcapng-shb-option-too-long-libpcap.pcapng": (2, "trailing length", 0),
    "corrupt-pcapng-truncated-shb-libpcap.pcapng": (2, "cut short", 0),
    # tshark shows record 2 (a garbage header announcing 1.4 GB) as a frame; tracer keeps the one real packet.
    "corrupt-record-huge-caplen-suricata.pcap": (0, "caplen 1409179648 exceeds the maximum", 1),
}


@pytest.mark.parametrize("name", sorted(PUBLIC_CORRUPT))
def test_public_corrupt_files(public_captures: Path, capsys, name: str) -> None:
    code, out, err = _show(capsys, public_captures / name)
    want_code, words, packets = PUBLIC_CORRUPT[name]
    assert code == want_code and len(out.splitlines()) == packets
    assert words in err and err.count("\n") == (1 if words else 0)
