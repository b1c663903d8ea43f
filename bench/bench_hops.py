#!/usr/bin/env python3
"""Benchmark: packet identity across 20 capture points totalling 1 M packets (target >= 500,000 packets/s).

The input is two ``gen_overlay_pcap.py --pcapng --hops`` captures (different seeds, 500 k records each, every
logical packet recorded at each hop it crosses) whose interfaces are renamed ``node1/…`` and ``node2/…``: 20
capture points. The figures printed:

- ``identity``: ``tracer.hops.identity.assign_packet_ids`` on the index columns (array operations only) — the
  figure the issue specifies;
- ``reference``: the same grouping done the obvious way, one Python dict lookup per packet (the baseline an
  engineer would write first), run in the same process on the same columns; both partitions must agree;
- ``analyze``: the whole hop analysis (roles, topology, clocks, identity, flows, paths, drops), for context, and
  how much resident memory it adds per packet.

Usage: ``python3 bench/bench_hops.py [--records 500000] [--keep DIR]`` (needs ../shared/tools).
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe  # noqa: E402 - bench/ is the script's directory, on sys.path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRACER_SHARED", REPO.parent / "shared"))
GEN = SHARED / "tools" / "gen_overlay_pcap.py"
TARGET = 500_000


def rename_interfaces(data: bytes, prefix: str) -> bytes:
    """Rewrite every pcapng IDB's ``if_name`` to ``prefix/if_name`` (little-endian files, as the generator writes)."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        block = data[pos:pos + blen]
        if btype == 1:
            body = block[8:-4]
            head, opts = body[:8], body[8:]
            new_opts = b""
            o = 0
            while o + 4 <= len(opts):
                code, olen = struct.unpack_from("<HH", opts, o)
                value = opts[o + 4:o + 4 + olen]
                o += 4 + olen + (-olen % 4)
                if code == 2:
                    value = f"{prefix}/".encode() + value
                new_opts += struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
                if code == 0:
                    break
            body = head + new_opts
            block = struct.pack("<II", 1, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
        out.append(block)
        pos += blen
    return b"".join(out)


def make_inputs(directory: Path, records: int) -> list[str]:
    paths = []
    for seed, node in ((1, "node1"), (2, "node2")):
        raw = directory / f"gen-{seed}.pcapng"
        subprocess.run([sys.executable, str(GEN), str(records), str(raw), "--pcapng", "--hops", "--seed", str(seed)],
                       check=True, capture_output=True)
        named = directory / f"{node}.pcapng"
        named.write_bytes(rename_interfaces(raw.read_bytes(), node))
        raw.unlink()
        paths.append(str(named))
    return paths


def reference_identity(index) -> np.ndarray:
    """Packet ids by one dict lookup per row on (stable fields, source endpoint); DNAT-free input needs no more."""
    names = ("i_ver", "i_proto", "i_ipid", "i_len", "tcp_seq", "tcp_ack", "icmp_type", "icmp_id", "icmp_seq",
             "i_src", "i_sport")
    cols = [index[n].tolist() for n in names]
    ts = index["ts_ns"].tolist()
    seen: dict[tuple, tuple[int, int]] = {}
    out = np.full(len(ts), -1, dtype=np.int64)
    next_id = 0
    for row, key in enumerate(zip(*cols)):
        if key[0] == 0:
            continue
        prev = seen.get(key)
        if prev is None or ts[row] - prev[1] > 100_000_000:
            pid = next_id
            next_id += 1
        else:
            pid = prev[0]
        seen[key] = (pid, ts[row])
        out[row] = pid
    return out


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    ok = (a >= 0) | (b >= 0)
    pairs = np.unique(np.stack([a[ok], b[ok]], axis=1), axis=0)
    return len(pairs) == len(np.unique(a[ok])) == len(np.unique(b[ok]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=500_000, help="records per node capture (two nodes)")
    ap.add_argument("--keep", help="write the inputs here and keep them")
    args = ap.parse_args()
    if not GEN.exists():
        print(f"bench_hops: {GEN} not found (set TRACER_SHARED)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    from tracer.capture.index import load_index
    from tracer.capture.memory import release_freed_memory
    from tracer.hops.analysis import analyze
    from tracer.hops.identity import assign_packet_ids

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(args.keep) if args.keep else Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        paths = make_inputs(directory, args.records)
        t0 = time.perf_counter()
        index = load_index(paths)
        t_index = time.perf_counter() - t0
        n = len(index)
        points = {s.point for s in index.sources}
        ts = index["ts_ns"].astype(np.int64)

        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            pid = assign_packet_ids(index, ts)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = reference_identity(index)
        t_ref = time.perf_counter() - t0
        agree = same_partition(pid, ref)
        for name in index.columns if not callable(index.columns) else index.columns():
            index[name]           # the index's own column caches, before measuring what the analysis adds
        del ref
        release_freed_memory()   # the reference run's garbage must not count either way
        rss0 = _rss()
        t0 = time.perf_counter()
        analysis = analyze(index)
        t_an = time.perf_counter() - t0
        grown = _rss() - rss0

    print(f"machine: {describe()}")
    print(f"input: {n} packets at {len(points)} capture points ({len(np.unique(pid[pid >= 0]))} physical packets), "
          f"indexed in {t_index:.2f} s")
    print(f"identity   (tracer, arrays): {best:.3f} s  {n / best:,.0f} packets/s  (target >= {TARGET:,})")
    print(f"reference  (dict per packet): {t_ref:.3f} s  {n / t_ref:,.0f} packets/s  -> {t_ref / best:.1f}x slower")
    print(f"analyze    (whole hop analysis): {t_an:.3f} s  {n / t_an:,.0f} packets/s, "
          f"{len(analysis.flows())} flows, resident memory +{grown / n:.0f} bytes/packet")
    print(f"partitions agree: {agree}")
    return 0 if agree and n / best >= TARGET else 1


def _rss() -> int:
    """Resident set size in bytes (Linux), 0 elsewhere."""
    try:
        return int(open("/proc/self/statm", encoding="ascii").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
