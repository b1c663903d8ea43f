#!/usr/bin/env python3
"""Time ``tracer.decode.fields.decode_frames`` alone on a classic pcap (default: a 1M-packet overlay capture).

Usage: bench/bench_decode.py [FILE.pcap] [--batch 65536] [--repeat 3] [--ipv6-overlay N]

The record walk (offsets, caplens) is done once up front and not timed: this measures the header decode that
the index runs per batch, on the mmapped file, the way ``PacketIndex`` calls it. Without FILE it writes a
1,000,000-packet capture with ../shared/tools/gen_overlay_pcap.py into a temporary directory.
``--ipv6-overlay N`` instead times N in-memory frames of IPv6 underlay / VXLAN / IPv6 pod traffic / TCP (64
distinct frames built with scapy, repeated), the IPv6 path (address interning) the generator does not cover.
"""

from __future__ import annotations

import argparse
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tracer.decode.addr6 import Addr6Table
from tracer.decode.fields import DEFAULT_VXLAN_PORTS, ENCAP_NAMES, decode_frames

GEN = Path(__file__).resolve().parent.parent.parent / "shared" / "tools" / "gen_overlay_pcap.py"


def walk_pcap(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Record offsets and caplens of a little-endian classic pcap (bench input only)."""
    magic, = struct.unpack_from("<I", buf, 0)
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        sys.exit("bench_decode: needs a little-endian classic pcap")
    linktype = struct.unpack_from("<I", buf, 20)[0] & 0xFFFF
    data = buf.tobytes() if not isinstance(buf, (bytes, mmap.mmap)) else buf
    offs, caps = [], []
    pos, size, unpack = 24, len(data), struct.Struct("<8xII").unpack_from
    while pos + 16 <= size:
        cap, _ = unpack(data, pos)
        offs.append(pos + 16)
        caps.append(cap)
        pos += 16 + cap
    return np.array(offs, np.int64), np.array(caps, np.uint32), linktype


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--batch", type=int, default=65536)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ipv6-overlay", type=int, metavar="N")
    args = ap.parse_args()
    if args.ipv6_overlay:
        buf, offsets, caplens, linktype, path = ipv6_overlay(args.ipv6_overlay)
        run(buf, offsets, caplens, linktype, path, args)
        return
    tmp = None
    path = args.file
    if path is None:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "overlay-1m.pcap")
        subprocess.run([sys.executable, str(GEN), "1000000", path, "--seed", "1"], check=True,
                       stdout=subprocess.DEVNULL)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    buf = np.frombuffer(mm, np.uint8)
    offsets, caplens, linktype = walk_pcap(mm)
    run(buf, offsets, caplens, linktype, path, args)
    del buf
    mm.close()
    if tmp is not None:
        tmp.cleanup()


def ipv6_overlay(n: int):
    """n frames of Ether/IPv6/UDP 4789/VXLAN/Ether/IPv6/TCP from 64 distinct ones, packed in memory."""
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.layers.vxlan import VXLAN

    macs = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    frames = [bytes(Ether(**macs) / IPv6(src=f"fd00::{i % 3 + 1}", dst=f"fd00::{(i + 1) % 3 + 1}") /
                    UDP(sport=40000 + i, dport=4789) / VXLAN(vni=4096) / Ether(**macs) /
                    IPv6(src=f"fd10:244::{i}", dst=f"fd10:244:1::{i % 7}") / TCP(sport=30000 + i, dport=80) /
                    (b"x" * (i * 20))) for i in range(64)]
    pick = np.arange(n) % len(frames)
    caplens = np.array([len(f) for f in frames], np.uint32)[pick]
    buf = np.frombuffer(b"".join(frames[k] for k in pick), np.uint8)
    offsets = np.concatenate([[0], np.cumsum(caplens[:-1], dtype=np.int64)]).astype(np.int64)
    return buf, offsets, caplens, 1, "synthetic IPv6 VXLAN overlay in memory"


def run(buf, offsets, caplens, linktype, path, args) -> None:
    n = len(offsets)
    linktypes = np.full(n, linktype, np.uint16)
    ports = frozenset(DEFAULT_VXLAN_PORTS)
    best = best_cpu = float("inf")
    for _ in range(args.repeat):
        table = Addr6Table()
        t0, c0 = time.perf_counter(), time.process_time()
        parts = [decode_frames(buf, offsets[i:i + args.batch], caplens[i:i + args.batch],
                               linktypes[i:i + args.batch], vxlan_ports=ports, addr6=table)
                 for i in range(0, n, args.batch)]
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    encap = np.concatenate([p["encap"] for p in parts])
    mix = ", ".join(f"{ENCAP_NAMES[k] or 'none'} {c}" for k, c in zip(*np.unique(encap, return_counts=True)))
    print(f"file: {path} ({n} packets, linktype {linktype}); batch {args.batch}; best of {args.repeat}")
    print(f"encap mix: {mix}")
    print(f"decode_frames: {best:.3f} s = {n / best / 1e6:.2f} M packets/s "
          f"({best / n * 1e9:.0f} ns/packet); CPU time {best_cpu:.3f} s = {n / best_cpu / 1e6:.2f} M/s")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (a busy shared machine reads slower)")


if __name__ == "__main__":
    main()
