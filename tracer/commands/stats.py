"""``tracer stats FILE... [--json]``: a capinfos-like summary, and how fast the full index was built.

It builds the complete index (every decoded column) and prints no per-packet rows, so it is also what the
benchmark times. Counts are per capture point, link type, outermost encapsulation (and VNI) and innermost IP
protocol (the pod's protocol for overlay traffic).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tracer.commands.show import add_capture_arguments, vxlan_ports


def register(subparsers) -> None:
    parser = subparsers.add_parser("stats", help="capinfos-like summary and indexing speed",
                                   description="Summarise captures: packets, bytes, time span, capture points, "
                                   "link types, encapsulations, IP protocols, and indexing speed.")
    add_capture_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def summarize(index, seconds: float) -> dict:
    """The summary of a complete index as a JSON-able dict (the keys of ``tracer stats --json``)."""
    import numpy as np

    from tracer.capture.rows import PROTO_NAMES
    from tracer.decode.fields import ENCAP_NAMES

    n = len(index)
    ts = index["ts_ns"]
    src = index["source"]
    out: dict = {
        "files": [cf.name for cf in index.files if cf is not None],
        "packets": n,
        "bytes": int(index["origlen"].sum(dtype=np.int64)),
        "captured_bytes": int(index["caplen"].sum(dtype=np.int64)),
        "first_ts": int(ts.min()) / 1e9 if n else None,
        "last_ts": int(ts.max()) / 1e9 if n else None,
        "duration": (int(ts.max()) - int(ts.min())) / 1e9 if n else 0.0,
    }
    per_source = np.bincount(src, minlength=len(index.sources)) if n else np.zeros(len(index.sources), int)
    points: dict[str, int] = {}
    linktypes: dict[str, int] = {}
    for s in index.sources:
        count = int(per_source[s.id])
        name = s.point or s.iface or s.file
        if s.ifindex is not None:
            name += f" (ifindex {s.ifindex})"
        points[name] = points.get(name, 0) + count
        linktypes[str(s.linktype)] = linktypes.get(str(s.linktype), 0) + count
    out["points"] = {k: v for k, v in points.items() if v}
    out["linktypes"] = {k: v for k, v in linktypes.items() if v}
    encap = np.bincount(index["encap"], minlength=len(ENCAP_NAMES)) if n else np.zeros(len(ENCAP_NAMES), int)
    out["encap"] = {(ENCAP_NAMES[i] if i < len(ENCAP_NAMES) else str(i)) or "none": int(c)
                    for i, c in enumerate(encap) if c}
    vnis: dict[str, int] = {}
    if n:
        vni = index["vni"]
        has = vni >= 0
        for kind in np.unique(index["encap"][has]):
            values, counts = np.unique(vni[has & (index["encap"] == kind)], return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                vnis[f"{ENCAP_NAMES[int(kind)]} {v}"] = c
    out["vni"] = vnis
    protos: dict[str, int] = {}
    if n:
        ip = index["i_ver"] != 0
        values, counts = np.unique(index["i_proto"][ip], return_counts=True)
        protos = {PROTO_NAMES.get(int(p), str(int(p))): int(c) for p, c in zip(values, counts)}
        if (~ip).any():
            protos["non-IP"] = int((~ip).sum())
    out["ip_proto"] = protos
    out["index_seconds"] = round(seconds, 6)
    out["packets_per_second"] = round(n / seconds) if seconds > 0 else None
    out["index_bytes_per_packet"] = round(index.bytes_used() / n, 1) if n else None
    out["warnings"] = list(index.warnings)
    return out


def run(args: argparse.Namespace) -> int:
    from tracer.capture.index import IndexBuilder
    from tracer.capture.rows import escape_text, iso_time

    started = time.perf_counter()
    builder = IndexBuilder(args.files, vxlan_ports=vxlan_ports(args.vxlan_ports))
    for _ in builder.run(batch=65536):
        pass
    seconds = time.perf_counter() - started
    index = builder.index
    info = summarize(index, seconds)
    for warning in index.warnings:
        print(f"tracer: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(info, indent=None))
        return 0
    lines = [
        ("files", ", ".join(escape_text(f) for f in info["files"])),
        ("packets", f"{info['packets']:,}"),
        ("bytes", f"{info['bytes']:,} on the wire, {info['captured_bytes']:,} captured"),
    ]
    if info["packets"]:
        first, last = index["ts_ns"].min(), index["ts_ns"].max()
        lines += [("first packet", iso_time(int(first))), ("last packet", iso_time(int(last))),
                  ("duration", f"{info['duration']:.6f} s")]
    lines += [
        ("capture points", _counts(info["points"], escape_text)),
        ("link types", _counts(info["linktypes"])),
        ("encapsulation", _counts(info["encap"])),
        ("VNIs", _counts(info["vni"]) or "-"),
        ("IP protocols", _counts(info["ip_proto"])),
        ("indexing", f"{seconds:.3f} s, {info['packets_per_second'] or 0:,} packets/s, "
                     f"{info['index_bytes_per_packet'] or 0} index bytes/packet"),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    return 0


def _counts(counts: dict, esc=str) -> str:
    return ", ".join(f"{esc(k)}: {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"
