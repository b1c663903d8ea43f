#!/usr/bin/env python3
"""Benchmark: display filters over the packet index against tshark's ``-Y`` on the same packets, and dissection.

    python3 bench/bench_filter.py [--packets 1000000] [--tshark-packets 100000] [--runs 3]

Uses ``bench/out/overlay-<N>.pcap`` (written by ``../shared/tools/gen_overlay_pcap.py`` as bench_index.py does;
reused when present). In one run:

- tracer: ``load_index`` once (not timed here: bench_index.py does that), then for each filter the best of
  ``--runs`` of ``compile_filter(expr).mask(index)`` over all N rows: milliseconds and rows/s;
- tshark: ``tshark -r SUBSET -d udp.port==8472,vxlan -Y expr -T fields -e frame.number`` on the first
  ``--tshark-packets`` packets (editcap; tshark needs minutes for a million): seconds and packets/s; the frame
  numbers must equal tracer's mask over those rows (exit status 1 otherwise);
- dissection: ``dissect`` of 1,000 rows spread over the file, mean milliseconds per packet.

Figures go to docs/BENCHMARKS.md by hand, with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GENERATOR = Path(os.environ.get("TRACER_SHARED", REPO.parent / "shared")) / "tools" / "gen_overlay_pcap.py"
FILTERS = (
    "vxlan.vni == 1 and tcp.flags.syn == 1",
    "ip.addr == 10.244.1.0/24 && tcp.port == 8080",
    "ip.proto == 4 or icmp",
    "ip.src == 10.244.1.3",
    "tcp.port in {80, 443, 8080, 5432..5440}",
    "not tcp and frame.len > 100",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--tshark-packets", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    import numpy as np

    from tracer.capture.filter import compile_filter
    from tracer.capture.index import load_index
    from tracer.decode.dissect import dissect

    out = HERE / "out"
    out.mkdir(exist_ok=True)
    path = out / f"overlay-{args.packets}.pcap"
    if not path.exists():
        subprocess.run([sys.executable, str(GENERATOR), str(args.packets), str(path)], check=True)
    index = load_index([str(path)])
    n = len(index)
    print(f"capture: {path} ({n:,} packets)")
    print(f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}")

    tshark = shutil.which("tshark")
    subset = out / f"overlay-{args.packets}-first-{args.tshark_packets}.pcap"
    if tshark and not subset.exists():
        subprocess.run(["editcap", "-r", str(path), str(subset), f"1-{args.tshark_packets}"], check=True,
                       capture_output=True)
    m = min(args.tshark_packets, n)
    ok = True
    print(f"{'filter':48} {'tracer (all rows)':>26} {'tshark -Y (first rows)':>28} {'ratio':>8}")
    for expr in FILTERS:
        flt = compile_filter(expr)
        best = min(_timed(lambda: flt.mask(index)) for _ in range(args.runs))
        mask = flt.mask(index)
        line = f"{expr:48} {best * 1e3:9.1f} ms {n / best / 1e6:8.1f} M rows/s"
        if tshark:
            started = time.perf_counter()
            got = subprocess.run([tshark, "-n", "-r", str(subset), "-d", "udp.port==8472,vxlan", "-Y", expr,
                                  "-T", "fields", "-e", "frame.number"], capture_output=True, text=True,
                                 check=True).stdout
            took = time.perf_counter() - started
            same = [int(x) - 1 for x in got.split()] == np.flatnonzero(mask[:m]).tolist()
            ok &= same
            ratio = (n / best) / (m / took)  # rows per second, tracer over tshark
            line += f" {took:8.2f} s {m / took / 1e3:8.1f} k pkts/s {ratio:7.0f}x{'' if same else '  MISMATCH'}"
        print(line)
    rows = np.linspace(0, n - 1, num=min(1000, n), dtype=np.int64)
    linktype = int(index.sources[0].linktype)
    frames = [index.frame(int(r)) for r in rows]
    started = time.perf_counter()
    for frame in frames:
        dissect(frame, linktype)
    took = time.perf_counter() - started
    print(f"dissect: {took / len(frames) * 1e3:.2f} ms per packet (mean of {len(frames)})")
    return 0 if ok else 1


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
