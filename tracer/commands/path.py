"""``tracer path FILE... --packet NO``: the hop ladder of one packet across every capture point."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    from tracer.hops.load import add_hop_options  # noqa: PLC0415 - cheap module, no numpy at import

    p = subparsers.add_parser("path", help="the hop path of one packet: where it was seen, where it died",
                              description="Place one packet on its CNI hop path across all the captures given "
                              "(NODE__IFACE.pcap files, FILE@NODE/IFACE, pcapng interfaces named NODE/IFACE), "
                              "with per-hop Δt (clock-skew corrected), where it was last seen and the "
                              "NetworkPolicy verdict.")
    p.add_argument("files", nargs="+", metavar="FILE", help="capture files (FILE@POINT names a capture point)")
    p.add_argument("--packet", type=int, required=True, metavar="NO", help="the packet's number (as in tracer show)")
    add_hop_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tracer.errors import TracerError  # noqa: PLC0415
    from tracer.hops.analysis import analyze  # noqa: PLC0415
    from tracer.hops.load import load_files, print_warnings  # noqa: PLC0415
    from tracer.hops.report import format_path  # noqa: PLC0415

    index, cluster, mode = load_files(args.files, args.cluster, args.cni, args.vxlan_ports)
    if len(index) == 0:
        raise TracerError("no packets in the capture")
    if not 1 <= args.packet <= len(index):
        raise TracerError(f"no packet {args.packet}: the capture has packets 1 to {len(index)}")
    path = analyze(index, cluster=cluster, cni=mode).path(args.packet - 1)
    if args.json:
        print(json.dumps(path.to_json(), indent=2))
    else:
        print(format_path(path))
    print_warnings(index)
    return 0
