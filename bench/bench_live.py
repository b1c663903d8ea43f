#!/usr/bin/env python3
"""Live-capture benchmark: tracer live against tcpdump on the same veth, in the same run (needs root).

A throw-away namespace ``trl-bench`` holds a veth pair ``fa`` ↔ ``fb``. tcpdump (``-B`` the same kernel buffer as
tracer) and ``tracer live --quiet --write`` both capture on ``fb`` while ``tracer.lab.flood`` sends paced 64-byte
UDP frames out of ``fa`` for a few seconds at each rate. Each tool's own report gives captured packets and kernel
drops; captured packets/s is over the flood's duration. Also records tracer's peak RSS (VmHWM) and the size of a
``--ring-mb`` spool under the same flood. Prints a table; ``--json`` for machine-readable figures.

Target (issue 6): at 100,000 packets/s, tracer captures >= 50% of tcpdump's rate with < 0.1% drops.

Usage: sudo python3 bench/bench_live.py [--rates 100000,200000] [--seconds 3] [--buffer-mb 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from machine import cpu_model  # noqa: E402 - bench/ is the script's directory, on sys.path

NS = "trl-bench"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def setup() -> None:
    from pyroute2 import IPRoute, netns

    if os.path.exists(f"/run/netns/{NS}"):
        netns.remove(NS)
    netns.create(NS)
    with IPRoute(netns=NS, flags=0) as ipr:
        ipr.link("add", ifname="fa", kind="veth", peer="fb")
        for name in ("fa", "fb", "lo"):
            ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")


def teardown() -> None:
    from pyroute2 import netns

    if os.path.exists(f"/run/netns/{NS}"):
        netns.remove(NS)


def inns(*argv: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{NS}", "--", *argv]


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def one_rate(pps: int, seconds: float, buffer_mb: int, tmp: str, ring_mb: int | None = None,
             with_tcpdump: bool = True) -> dict:
    """One flood at ``pps`` with both captures running; every process it starts is gone when it returns."""
    started: list[subprocess.Popen] = []
    try:
        return _one_rate(pps, seconds, buffer_mb, tmp, ring_mb, with_tcpdump, started)
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()


def _one_rate(pps: int, seconds: float, buffer_mb: int, tmp: str, ring_mb: int | None, with_tcpdump: bool,
              started: list) -> dict:
    td_out = os.path.join(tmp, "td.pcap")
    tr_out = os.path.join(tmp, "tr.pcapng")
    procs = {}
    if with_tcpdump:
        procs["tcpdump"] = subprocess.Popen(inns("tcpdump", "-i", "fb", "-n", "-B", str(buffer_mb * 1024), "-w",
                                                 td_out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            text=True)
    tr_cmd = [sys.executable, "-m", "tracer", "live", "--iface", "fb", "--quiet", "--write", tr_out,
              "--buffer-mb", str(buffer_mb)]
    if ring_mb:
        tr_cmd += ["--ring-mb", str(ring_mb)]
    procs["tracer"] = subprocess.Popen(inns(*tr_cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started.extend(procs.values())
    time.sleep(1.5)      # both listening
    flood = subprocess.Popen(inns(sys.executable, "-m", "tracer.lab.flood", "fa", str(pps), str(seconds)),
                             stdout=subprocess.PIPE, text=True)
    started.append(flood)
    tracer_pid = None
    peak = 0
    spool_peak = 0
    while flood.poll() is None:
        if tracer_pid is None:
            tracer_pid = procs["tracer"].pid     # nsenter execs tracer in place
        peak = max(peak, _hwm(tracer_pid))
        spool_peak = max(spool_peak, sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)
                                          if f.startswith("tr.pcapng")))
        time.sleep(0.1)
    sent = json.loads(flood.stdout.read())
    time.sleep(0.5)      # let the last blocks retire
    if tracer_pid:
        peak = max(peak, _hwm(tracer_pid))
    for p in procs.values():
        p.send_signal(signal.SIGINT)
    out = {name: p.communicate(timeout=60)[1] for name, p in procs.items()}
    res = {"rate_target": pps, "sent": sent["sent"], "flood_pps": sent["pps"], "seconds": sent["seconds"],
           "tracer_peak_rss_mb": round(peak / 1e6, 1), "tracer_spool_peak_mb": round(spool_peak / 1e6, 2)}
    m = re.search(r"captured (\d+) packets.*?(?:kernel dropped (\d+)|no kernel drops)", out["tracer"])
    if not m:
        raise SystemExit(f"tracer did not report: {out['tracer']}")
    cap, drop = int(m.group(1)), int(m.group(2) or 0)
    res["tracer"] = {"captured": cap, "dropped": drop, "pps": round(cap / sent["seconds"]),
                     "drop_pct": round(100 * drop / max(cap + drop, 1), 4)}
    if with_tcpdump:
        c = int(re.search(r"(\d+) packets captured", out["tcpdump"]).group(1))
        d = int(re.search(r"(\d+) packets dropped by kernel", out["tcpdump"]).group(1))
        res["tcpdump"] = {"captured": c, "dropped": d, "pps": round(c / sent["seconds"]),
                          "drop_pct": round(100 * d / max(c + d, 1), 4)}
        res["ratio"] = round(res["tracer"]["pps"] / max(res["tcpdump"]["pps"], 1), 3)
    for f in os.listdir(tmp):
        os.unlink(os.path.join(tmp, f))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="100000,200000,400000")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--buffer-mb", type=int, default=8)
    ap.add_argument("--ring-mb", type=int, default=4, help="ring size for the bounded-spool run (0: skip)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_live needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    machine = {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
               "loadavg_before": os.getloadavg()}
    results = []
    setup()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            for pps in (int(r) for r in args.rates.split(",")):
                results.append(one_rate(pps, args.seconds, args.buffer_mb, tmp))
            ring = (one_rate(int(args.rates.split(",")[0]), args.seconds, args.buffer_mb, tmp, ring_mb=args.ring_mb,
                             with_tcpdump=False) if args.ring_mb else None)
    finally:
        teardown()
    machine["loadavg_after"] = os.getloadavg()
    if args.json:
        print(json.dumps({"machine": machine, "results": results, "ring": ring}, indent=1))
        return 0
    print(f"machine: {machine['nproc']} cores, {machine['cpu']}, kernel {machine['kernel']}, "
          f"load {machine['loadavg_before'][0]:.2f} -> {machine['loadavg_after'][0]:.2f}")
    print(f"{'target pps':>10} {'sent pps':>9} | {'tracer pps':>10} {'drops':>8} {'drop %':>7} | "
          f"{'tcpdump pps':>11} {'drops':>8} {'drop %':>7} | {'ratio':>5} {'RSS MB':>6}")
    for r in results:
        t, d = r["tracer"], r["tcpdump"]
        print(f"{r['rate_target']:>10} {r['flood_pps']:>9} | {t['pps']:>10} {t['dropped']:>8} {t['drop_pct']:>7} | "
              f"{d['pps']:>11} {d['dropped']:>8} {d['drop_pct']:>7} | {r['ratio']:>5} {r['tracer_peak_rss_mb']:>6}")
    if ring:
        print(f"--ring-mb {args.ring_mb} at {ring['rate_target']} pps for {ring['seconds']} s: spool peak "
              f"{ring['tracer_spool_peak_mb']} MB on disk, tracer peak RSS {ring['tracer_peak_rss_mb']} MB, "
              f"drops {ring['tracer']['dropped']}")
    first = results[0]
    ok = first["ratio"] >= 0.5 and first["tracer"]["drop_pct"] < 0.1
    print(f"target at {first['rate_target']} pps (>= 50% of tcpdump, < 0.1% drops): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
