"""``tracer flows FILE...``: every connection (both directions together), its pods, verdict and where it died."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    from tracer.hops.load import add_hop_options  # noqa: PLC0415

    p = subparsers.add_parser("flows", help="one line per flow: pods, packets, verdict, where it stopped",
                              description="Group the packets of all captures into flows (both directions of a "
                              "connection together, by the initiator's pod-level tuple: inner when "
                              "encapsulated, after kube-proxy's DNAT) and say where each one's packets stop.")
    p.add_argument("files", nargs="+", metavar="FILE", help="capture files (FILE@POINT names a capture point)")
    add_hop_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracer.hops.load import analyze_files, print_warnings  # noqa: PLC0415
    from tracer.hops.report import format_flows  # noqa: PLC0415

    index, analysis = analyze_files(args.files, args.cluster, args.cni, args.vxlan_ports)
    flows = analysis.flows()
    if args.json:
        print(json.dumps([f.to_json() for f in flows], indent=2))
    else:
        print(format_flows(flows))
    print_warnings(index)
    return 0
