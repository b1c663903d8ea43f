"""The child-process block walk of large pcapng files gives exactly the in-process walk's index.

Every file is indexed twice: with the walker (threshold lowered to 256 KiB, the child's start observed) and without
it; every column, the warnings, the NRB names and the sources must be equal. Damaged files must also keep the
packets an independent count says come before the damage.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

import tracer.capture.index as index_module
import tracer.capture.pcapng as pcapng
import tracer.capture.walker as walker
from capture_writers import assert_same_index, block, epb, idb, nrb, shb, spb
from tracer.capture.index import load_index
from tracer.errors import CaptureError

T0 = 1_700_000_000_000_000_000
FRAMES = [bytes(Ether() / IP(src="10.244.1.3", dst="10.244.2.5") / TCP(sport=40000, dport=80) / (b"x" * n))
          for n in (0, 7, 300, 1460)] + \
    [bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=53, dport=5353) / b"q")]


def _indexes(path: Path, monkeypatch: pytest.MonkeyPatch, *, walked_share: float | None = None,
             must_start: bool = True):
    """(index with the walker, index without it); ``walked_share``: most packets must come from the child."""
    started = []
    popen = walker.subprocess.Popen
    local_walk = pcapng.PcapngReader._walk
    in_process = []

    def spy(*args, **kwargs):
        started.append(args[0])
        return popen(*args, **kwargs)

    def counting_walk(self, *args):
        idx = local_walk(self, *args)
        in_process.append(len(idx))
        return idx

    monkeypatch.setattr(walker.subprocess, "Popen", spy)
    monkeypatch.setattr(walker, "WALKER_MIN_BYTES", 1 << 18)
    monkeypatch.setattr(pcapng.PcapngReader, "_walk", counting_walk)
    walked = load_index([str(path)])
    assert len(started) == (1 if must_start else len(started))   # the walk did run in a child
    if walked_share is not None:
        assert sum(in_process) <= (1 - walked_share) * len(walked)
    monkeypatch.setattr(walker.subprocess, "Popen", popen)
    monkeypatch.setattr(walker, "WALKER_MIN_BYTES", 1 << 62)
    local = load_index([str(path)])
    return walked, local


def _isb(order: str, iface: int, ticks: int) -> bytes:
    return block(order, 5, struct.pack(order + "III", iface, ticks >> 32, ticks & 0xFFFFFFFF))


@cache
def _mixed() -> tuple[list[tuple[str, bytes]], int]:
    """Three sections (little-, big-, little-endian), about 7 MB: EPB runs broken up by SPB, NRB, ISB, a
    custom block and an unknown block type; interfaces with if_tsresol (ns, ms, 2^-20 s), if_tsoffset and a
    small snaplen. Returns the blocks as (kind, bytes) and the packet count."""
    blocks: list[tuple[str, bytes]] = []
    packets = 0
    for sec, order in enumerate("<><"):
        blocks.append(("shb", shb(order)))
        blocks.append(("idb", idb(order, name=f"node{sec}/eth0", tsresol=9)))
        blocks.append(("idb", idb(order, name=f"node{sec}/flannel.1", tsresol=3, tsoffset=-5 + sec)))
        blocks.append(("idb", idb(order, name=f"node{sec}/cni0", tsresol=0x94, snaplen=200)))
        for k in range(3500):
            ns = T0 + sec * 10**12 + k * 1_000_003
            iface = (k * 5 + sec) % 3
            ticks = [ns, ns // 1_000_000, (ns << 20) // 10**9][iface]
            if iface == 1:
                ticks = (ns - (-5 + sec) * 10**9) // 1_000_000
            blocks.append(("epb", epb(order, iface, ticks, FRAMES[(k * 7) % 5])))
            packets += 1
            if k % 700 == 350:
                blocks.append(("spb", spb(order, FRAMES[k % 5])))
                packets += 1
                blocks.append(("nrb", nrb(order, [(bytes([10, 244, sec, k % 250]), f"pod-{sec}-{k}.default"),
                                                  (bytes(15) + b"\x01", f"v6-{k}")])))
                blocks.append(("isb", _isb(order, 0, ticks)))
                blocks.append(("custom", block(order, 0x00000BAD, struct.pack(order + "I", 32473) + b"abcd")))
                blocks.append(("unknown", block(order, 0x1234, b"\0" * 8)))
    return blocks, packets


def _write(path: Path, blocks: list[tuple[str, bytes]]) -> list[int]:
    path.write_bytes(b"".join(b for _, b in blocks))
    offsets, off = [], 0
    for _, b in blocks:
        offsets.append(off)
        off += len(b)
    return offsets


def test_mixed_sections_and_block_kinds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mixed-endian sections, SPB, NRB, ISB, custom and unknown blocks: equal to the in-process walk."""
    blocks, packets = _mixed()
    path = tmp_path / "mixed.pcapng"
    _write(path, blocks)
    walked, local = _indexes(path, monkeypatch, walked_share=0.8)
    assert_same_index(walked, local)
    assert len(walked) == packets
    assert len(walked.sources) == 9
    assert "pod-1-350.default" in walked.names["10.244.1.100"]
    assert walked.warnings and "snaplen 200" in walked.warnings[0]   # the small snaplen's note, once


DAMAGES = ["cut-block-body", "cut-block-header", "cut-epb-header", "length-zero", "length-odd", "length-huge",
           "trailer", "bad-bom", "iface-out-of-range", "caplen-over-block", "garbage-type-length"]


@pytest.mark.parametrize("section", [0, 1])
@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str, section: int) -> None:
    """A file damaged in a little- or big-endian section keeps exactly the packets before the damage."""
    blocks, _ = _mixed()
    starts = [k for k, (kind, _) in enumerate(blocks) if kind == "shb"]
    # The 2,500th EPB of the section (past the walker's start); for a bad byte-order magic, the next section's
    # header (its packets are lost, the earlier ones kept).
    epbs = [k for k in range(starts[section], starts[section + 1]) if blocks[k][0] == "epb"]
    at = starts[section + 1] if damage == "bad-bom" else epbs[2500]
    order = "<>"[section]
    path = tmp_path / "damaged.pcapng"
    offsets = _write(path, blocks)
    data = bytearray(path.read_bytes())
    pos = offsets[at]
    if damage == "cut-block-body":
        data = data[:pos + 40]
    elif damage == "cut-block-header":
        data = data[:pos + 6]
    elif damage == "cut-epb-header":
        data = data[:pos + 20]          # type and length readable, the rest of the 32-byte minimum missing
    elif damage == "length-zero":
        data[pos + 4:pos + 8] = struct.pack(order + "I", 0)
    elif damage == "length-odd":
        data[pos + 4:pos + 8] = struct.pack(order + "I", len(blocks[at][1]) + 2)
    elif damage == "length-huge":
        data[pos + 4:pos + 8] = struct.pack(order + "I", 0x7FFFFFF0)
    elif damage == "trailer":
        end = pos + len(blocks[at][1])
        data[end - 4:end] = struct.pack(order + "I", 36)
    elif damage == "bad-bom":
        data[pos + 8:pos + 12] = b"\x01\x02\x03\x04"
    elif damage == "iface-out-of-range":
        data[pos + 8:pos + 12] = struct.pack(order + "I", 3)
    elif damage == "caplen-over-block":
        data[pos + 20:pos + 24] = struct.pack(order + "I", len(blocks[at][1]))
    elif damage == "garbage-type-length":
        data[pos:pos + 8] = b"\xde\xad\xbe\xef\x03\x00\x00\x00"
    path.write_bytes(bytes(data))
    walked, local = _indexes(path, monkeypatch)
    assert_same_index(walked, local)
    before = sum(kind in ("epb", "spb") for kind, _ in blocks[:at])
    assert len(walked) == before
    assert walked.warnings and f"kept {before} packets" in walked.warnings[-1]


@pytest.mark.parametrize("program", [
    # Dies after half a value: the parent cannot trust the chunk and walks on by itself.
    "import sys; sys.stdout.buffer.write(b'\\0' * 12)",
    # Streams offsets of a chain that is not the file's (every block one word late): rejected, walked here.
    "import sys, struct; sys.stdout.buffer.write(struct.pack('=8192q', *range(int(sys.argv[2]) // 4 + 1, "
    "int(sys.argv[2]) // 4 + 8193)))",
    # The right first block, then only every other block of the chain (real EPBs, each valid on its own).
    "import mmap, struct, sys\n"
    "mm = mmap.mmap(int(sys.argv[1]), 0, access=mmap.ACCESS_READ)\n"
    "i, out = int(sys.argv[2]), []\n"
    "while i + 8 <= len(mm) and len(out) < 4000:\n"
    "    out.append(i // 4); i += struct.unpack_from('<I', mm, i + 4)[0]\n"
    "sys.stdout.buffer.write(struct.pack(f'={len(out[2::2]) + 1}q', out[0], *out[2::2]))",
    # The right chain, then silence long before the end.
    None,
], ids=["dies-mid-value", "wrong-chain", "skips-blocks", "stops-early"])
def test_walker_failures_fall_back_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          program: str | None) -> None:
    """Whatever the child streams (garbage, a wrong chain, too little), the index is the in-process one."""
    blocks, packets = _mixed()
    path = tmp_path / "mixed.pcapng"
    _write(path, blocks)
    if program is None:
        program = pcapng._WALKER.replace("while not end:", "for _ in range(3):")
    monkeypatch.setattr(pcapng, "_WALKER", program)
    walked, local = _indexes(path, monkeypatch)
    assert_same_index(walked, local)
    assert len(walked) == packets


@pytest.mark.parametrize("hops", [False, True])
def test_generated_overlay_pcapng(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_dir: Path,
                                  hops: bool) -> None:
    """../shared's generator (--pcapng, and --hops: many named interfaces): equal, and walked by the child."""
    path = tmp_path / "overlay.pcapng"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "--pcapng",
                    *(["--hops"] if hops else []), "8000", str(path)], check=True, capture_output=True)
    assert path.stat().st_size > 2 << 20
    walked, local = _indexes(path, monkeypatch, walked_share=0.7)
    assert_same_index(walked, local)
    assert len(walked) == 8000
    assert not walked.warnings


@pytest.mark.parametrize("seed", range(16))
def test_random_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Random bytes overwritten anywhere or in block headers/trailers, sometimes a random cut: equal."""
    rng = random.Random(seed)
    blocks, _ = _mixed()
    path = tmp_path / "random.pcapng"
    offsets = _write(path, blocks)
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            at = rng.randrange(len(data) // 5, len(data) - 8)       # anywhere (mostly frame bytes)
        else:                                                      # a block's header or trailer word
            k = rng.randrange(len(blocks) // 5, len(blocks))
            at = offsets[k] + rng.choice((0, 4, 8, 12, 16, 20, 24, len(blocks[k][1]) - 4))
        width = rng.choice((1, 2, 4))
        data[at:at + width] = rng.randbytes(width)
    if rng.random() < 0.3:
        data = data[:rng.randrange(len(data) // 4, len(data))]
    path.write_bytes(bytes(data))
    walked, local = _indexes(path, monkeypatch, must_start=False)
    assert_same_index(walked, local)


def test_public_pcapng_captures(public_captures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every public pcapng capture (all block types, mixed-endian sections, ISBs, SPBs, 95 IDBs, corrupt files),
    walked by a child from its second record on, indexes exactly as in-process (or fails with the same error)."""
    files = sorted(p for p in public_captures.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\n\r\r\n")
    assert len(files) >= 20
    started = []
    popen = walker.subprocess.Popen

    def spy(*args, **kwargs):
        started.append(args[0])
        return popen(*args, **kwargs)

    monkeypatch.setattr(walker.subprocess, "Popen", spy)
    monkeypatch.setattr(index_module, "FIRST_BATCH", 1)
    for path in files:
        results = []
        for threshold in (-1, 1 << 62):              # always a walker, never one
            monkeypatch.setattr(walker, "WALKER_MIN_BYTES", threshold)
            try:
                results.append(load_index([str(path)]))
            except CaptureError as exc:
                results.append(str(exc))
        walked, local = results
        if isinstance(walked, str) or isinstance(local, str):
            assert walked == local, path.name
        else:
            assert_same_index(walked, local)
    assert len(started) >= len(files) // 2           # most files had a second record to walk in the child
