"""``tracer show FILE... [--format table|jsonl|csv] [--filter EXPR] [--vxlan-port N]...``: one row per packet.

One file is printed while it is indexed (batch by batch, so ``tcpdump -U -w - | tracer show -`` prints packets
as they arrive); several files are merged by timestamp first. Keys and formats: ``tracer.capture.rows``.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_VXLAN_PORTS = (4789, 8472)


def vxlan_ports(extra: list[int] | None) -> tuple[int, ...]:
    """The default VXLAN ports plus the ones given with ``--vxlan-port`` (in order, no duplicates)."""
    ports = list(DEFAULT_VXLAN_PORTS)
    for p in extra or ():
        if p not in ports:
            ports.append(p)
    return tuple(ports)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port out of range 1-65535: {value}")
    return value


def add_capture_arguments(parser: argparse.ArgumentParser) -> None:
    """FILE... and --vxlan-port, shared by show and stats."""
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="pcap/pcapng files (gzip too), '-' for stdin; FILE@NODE/IFACE names the capture point")
    parser.add_argument("--vxlan-port", dest="vxlan_ports", type=_port, action="append", metavar="N",
                        help="also decode UDP port N as VXLAN (besides 4789 and 8472); repeatable")


def register(subparsers) -> None:
    parser = subparsers.add_parser("show", help="print one row per packet (table, jsonl, csv)",
                                   description="Print one row per packet, in merged timestamp order.")
    add_capture_arguments(parser)
    parser.add_argument("--format", choices=("table", "jsonl", "csv"), default="table",
                        help="table (default, for people), jsonl (stable, for scripts) or csv")
    parser.add_argument("--filter", metavar="EXPR", help="display filter, e.g. 'vxlan and tcp.port == 80'")
    # Hop keys (issue 4): node role packet_id hop_index hop_count src_pod dst_pod flow_id service verdict last_seen.
    parser.add_argument("--cluster", action="append", default=[], metavar="PATH",
                        help="cluster state (kubectl … -o yaml dumps) for pods, Services and verdicts; repeatable")
    parser.add_argument("--cni", metavar="MODE", default=None, help="CNI mode instead of detecting it")
    parser.set_defaults(func=run)


def _compile(expr: str | None, fields=None):
    if not expr:
        return None
    from tracer.capture.filter import compile_filter

    return compile_filter(expr, fields)


def _cluster_fields(lazy):
    """The cluster filter fields (k8s.ns, k8s.pod, k8s.node, hop.role, verdict) over this command's analysis.

    The same resolvers as the TUI's `/` prompt (``tracer.hops.fields``), so a filter typed there prints the same
    rows here. They read their context lazily: it is filled in (index, hop analysis) once the capture is indexed.
    """
    from tracer.hops.fields import FieldContext, make_resolvers

    ctx = FieldContext(cluster=lazy.cluster)
    return ctx, make_resolvers(ctx)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tracer.capture.index import IndexBuilder
    from tracer.capture.rows import RowWriter

    from tracer.hops.load import check_cni, load_cluster_paths
    from tracer.hops.rows import LazyAnalysis, hop_columns

    # Hop keys need the whole capture: stdin alone still streams (hop keys null) unless --cluster/--cni ask for them.
    hops = args.files != ["-"] or bool(args.cluster) or args.cni is not None
    lazy = LazyAnalysis(load_cluster_paths(args.cluster), check_cni(args.cni), enabled=hops)
    session, fields = _cluster_fields(lazy) if hops and args.filter else (None, None)
    flt = _compile(args.filter, fields)       # a bad filter fails before any file is read
    builder = IndexBuilder(args.files, vxlan_ports=vxlan_ports(args.vxlan_ports))
    writer = RowWriter(sys.stdout, args.format, hop_columns(lazy, args.format))
    stream = len(args.files) == 1 and not hops   # one file keeps file order: rows go out as they are indexed
    printed = 0
    for _ in builder.run():
        index = builder.index
        if stream and len(index) > printed:
            printed = _emit(writer, index, printed, len(index), flt, np)
            sys.stdout.flush()
    index = builder.index
    if session is not None:
        session.index, session.total, session.analysis = index, len(index), lazy.get(index)
    if len(index) > printed:
        _emit(writer, index, printed, len(index), flt, np)
    elif printed == 0:
        writer.write(index, np.zeros(0, np.int64))     # the header of an empty table/csv
    sys.stdout.flush()
    for warning in index.warnings:
        print(f"tracer: warning: {warning}", file=sys.stderr)
    return 0


def _emit(writer, index, start: int, stop: int, flt, np) -> int:
    rows = np.arange(start, stop, dtype=np.int64)
    if flt is not None:
        # The whole index with a range keeps frame.number and frame.time_relative absolute across batches.
        rows = start + np.flatnonzero(flt.mask(index, start, stop))
    writer.write(index, rows)
    return stop
