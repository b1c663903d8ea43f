#!/usr/bin/env python3
"""Benchmark: tracer's full packet index against tshark on the same 1,000,000-packet overlay capture.

    python3 bench/bench_index.py [--packets 1000000] [--runs 3] [--skip-tshark] [--pcapng] [--out-dir DIR]

Generates ``bench/out/overlay-<N>.pcap`` (``--pcapng``: ``overlay-<N>.pcapng``, the generator's pcapng with
several interfaces; ``--out-dir`` puts it elsewhere, e.g. /tmp) with ``../shared/tools/gen_overlay_pcap.py``
(flannel VXLAN, Calico IPIP, same-node traffic; reused when present), then in one run:

- tracer: ``load_index`` in a fresh process (every decoded column; what ``tracer stats`` builds), best and median
  of ``--runs``: wall seconds, CPU seconds (the walker process's apart), packets/s, peak RSS, index bytes/packet;
- time to the first 1,000 rows: ``IndexBuilder(...).run()`` until its first progress report, in a fresh process;
- tshark: ``tshark -r F -T fields -d udp.port==8472,vxlan -e …`` (outer and inner addresses, protocol, ports,
  VNI) to /dev/null: wall seconds and peak RSS;

and prints the figures and the targets of issue 2 (>= 1.5 M packets/s, >= 40x tshark, <= 64 index bytes per
packet, first 1,000 rows < 0.1 s). Figures go to docs/BENCHMARKS.md by hand, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from machine import describe  # noqa: E402 - bench/ is the script's directory, on sys.path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GENERATOR = Path(os.environ.get("TRACER_SHARED", REPO.parent / "shared")) / "tools" / "gen_overlay_pcap.py"
TSHARK_FIELDS = ("frame.time_epoch", "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.id", "tcp.srcport",
                 "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags", "vxlan.vni")


def child_index(path: str) -> None:
    """Full index in this (fresh) process; print one JSON line of figures."""
    t_import = time.perf_counter()
    from tracer.capture.index import load_index

    imported = time.perf_counter() - t_import
    wall, cpu = time.perf_counter(), time.process_time()
    index = load_index([path])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)     # the walker process (reaped when the walk ends)
    print(json.dumps({"packets": len(index), "wall": wall, "cpu": cpu, "import": imported, "rss": rss,
                      "index_bytes": index.bytes_used(), "threads": index.thread_seconds,
                      "walker_cpu": kids.ru_utime + kids.ru_stime}))


def child_first(path: str) -> None:
    """Time from IndexBuilder() to its first progress report (>= 1,000 rows readable)."""
    t_import = time.perf_counter()
    from tracer.capture.index import IndexBuilder

    imported = time.perf_counter() - t_import
    started = time.perf_counter()
    builder = IndexBuilder([path])
    progress = next(iter(builder.run()))
    first = time.perf_counter() - started
    row = builder.index["ts_ns"][999], builder.index.frame(999)   # the rows are really there
    del row
    print(json.dumps({"rows": progress.rows, "seconds": first, "import": imported}))


def _run_child(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _tshark(path: Path) -> dict:
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-d", "udp.port==8472,vxlan"]
    for field in TSHARK_FIELDS:
        cmd += ["-e", field]
    started = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(cmd, stdout=devnull, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"tshark failed (status {status}): {' '.join(cmd)}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss * 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-tshark", action="store_true")
    parser.add_argument("--pcapng", action="store_true", help="benchmark the generator's pcapng output")
    parser.add_argument("--out-dir", type=Path, default=HERE / "out", help="where the capture is generated/cached")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        {"index": child_index, "first": child_first}[args.child[0]](args.child[1])
        return 0

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    path = (out / f"overlay-{args.packets}.{'pcapng' if args.pcapng else 'pcap'}").resolve()
    if not path.exists():
        if not GENERATOR.exists():
            raise SystemExit(f"generator not found: {GENERATOR}")
        print(f"generating {path} ({args.packets:,} packets) …", flush=True)
        subprocess.run([sys.executable, str(GENERATOR), *(["--pcapng"] if args.pcapng else []), str(args.packets),
                        str(path)], check=True)
    size = path.stat().st_size
    print(f"machine: {describe()}")
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    print(f"capture: {shown}: {size / 1e6:.1f} MB, {args.packets:,} packets")

    runs = [_run_child("index", path) for _ in range(args.runs)]
    packets = runs[0]["packets"]
    walls = sorted(r["wall"] for r in runs)
    cpus = sorted(r["cpu"] for r in runs)
    best, median = walls[0], statistics.median(walls)
    rss = max(r["rss"] for r in runs)
    bpp = runs[0]["index_bytes"] / packets
    firsts = sorted(_run_child("first", path)["seconds"] for _ in range(args.runs))
    print(f"tracer full index: {packets:,} packets; wall best {best:.3f} s ({packets / best / 1e6:.2f} M pkt/s), "
          f"median {median:.3f} s ({packets / median / 1e6:.2f} M pkt/s); CPU best {cpus[0]:.3f} s "
          f"({packets / cpus[0] / 1e6:.2f} M pkt/s)")
    crit = min(max(r["threads"].values()) for r in runs)
    main_cpu = min(r["threads"]["main"] for r in runs)
    decode = min(r["threads"]["decode"] for r in runs)
    print(f"tracer per-thread CPU (best): record walk + append {main_cpu:.3f} s, decode {decode:.3f} s; they "
          f"overlap, so an idle 2-core machine would wait about {crit:.3f} s ({packets / crit / 1e6:.2f} M pkt/s, "
          "an estimate)")
    walker = min(r.get("walker_cpu", 0.0) for r in runs)
    print(f"tracer walker process CPU (best): {walker:.3f} s (not in the CPU figure above; 0 when the walk ran "
          "in-process)")
    print(f"tracer peak RSS: {rss / 2**20:.0f} MiB (file is mmapped: page cache shared, not counted as index)")
    print(f"tracer index bytes/packet: {bpp:.1f}")
    print(f"tracer first 1,000 rows: best {firsts[0] * 1000:.1f} ms, median {statistics.median(firsts) * 1000:.1f} ms "
          f"(after imports)")
    verdicts = [("packets/s >= 1.5 M", packets / best >= 1.5e6), ("index bytes/packet <= 64", bpp <= 64),
                ("first 1,000 rows < 0.1 s", firsts[0] < 0.1)]
    if not args.skip_tshark:
        if shutil.which("tshark") is None:
            print("tshark: not installed (apt-get install tshark), ratio not measured")
        else:
            ts = _tshark(path)
            ratio = ts["wall"] / best
            print(f"tshark -T fields: wall {ts['wall']:.2f} s ({packets / ts['wall'] / 1e3:.0f} k pkt/s), CPU "
                  f"{ts['cpu']:.2f} s, peak RSS {ts['rss'] / 2**20:.0f} MiB")
            print(f"ratio tracer/tshark (wall, best): {ratio:.1f}x; CPU: {ts['cpu'] / cpus[0]:.1f}x")
            verdicts.append(("ratio >= 40x tshark", ratio >= 40))
    for name, ok in verdicts:
        print(f"  target {name}: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
