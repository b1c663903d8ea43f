"""``tracer reach FILE... --cluster PATH``: pod × pod matrix of NetworkPolicy verdicts vs what the captures show."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    from tracer.hops.load import add_hop_options  # noqa: PLC0415

    p = subparsers.add_parser("reach", help="pod × pod matrix: what policy says vs what the captures show",
                              description="For every pair of pods, the NetworkPolicy verdict joined with the "
                              "captured flows between them (delivered, dropped and where, not observed), flagging "
                              "'policy allows but the packets die' and 'policy denies but the packets are "
                              "delivered'.")
    p.add_argument("files", nargs="+", metavar="FILE", help="capture files (FILE@POINT names a capture point)")
    add_hop_options(p, cluster_required=True)
    p.add_argument("--port", type=int, default=None, metavar="N",
                   help="port judged for pairs with no observed flow (default: the ports each pod was reached on, "
                   "else 80)")
    p.add_argument("--protocol", default="TCP", type=str.upper, metavar="PROTO", help="with --port: TCP, UDP, SCTP")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracer.errors import TracerError  # noqa: PLC0415
    from tracer.hops.load import analyze_files, print_warnings  # noqa: PLC0415
    from tracer.hops.reach import reach  # noqa: PLC0415
    from tracer.hops.report import format_reach  # noqa: PLC0415

    if args.port is not None and not 0 < args.port < 65536:
        raise TracerError(f"port out of range 1-65535: {args.port}")
    index, analysis = analyze_files(args.files, args.cluster, args.cni, args.vxlan_ports)
    matrix = reach(analysis, port=args.port, protocol=args.protocol)
    if args.json:
        print(json.dumps(matrix.to_json(), indent=2))
    else:
        print(format_reach(matrix))
    print_warnings(index)
    return 0
