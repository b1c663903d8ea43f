"""``tracer ifaces [--json]``: the node's links with kind and role, routes to pod subnets, VXLAN FDB, CNI mode."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ifaces", help="discover the node's CNI interfaces, routes and VXLAN FDB",
                              description="List this node's links with their kind and CNI role, pod-subnet routes, "
                              "VXLAN FDB entries and neighbours, and derive the CNI mode and the map of remote pod "
                              "subnets to node IPs.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--netns", metavar="NAME", help="look inside a named network namespace (e.g. a lab node)")
    p.add_argument("--subnet-env", metavar="PATH",
                   help="flannel's subnet.env (default /run/flannel/subnet.env for the host's namespace)")
    p.add_argument("--hostname", metavar="NAME", help="the node's name (default: host name, or the namespace's)")
    p.add_argument("--cluster-yaml", metavar="PATH",
                   help="also write what the node knows (itself and the remote nodes with their pod subnets) as a "
                   "Kubernetes List of Nodes, for --cluster when kubectl is out of reach")
    p.set_defaults(func=run)


def _say(text: str = "") -> None:
    """Print text-mode output with control characters escaped: interface names may hold any byte but '/', ':'
    and blanks (so ESC sequences and bidi overrides), and subnet.env is a file on the node."""
    from tracer.errors import one_line

    print("\n".join(one_line(part) for part in text.split("\n")))


def run(args: argparse.Namespace) -> int:
    from tracer.node.discover import discover

    info = discover(args.netns, subnet_env=args.subnet_env, hostname=args.hostname)
    if args.cluster_yaml:
        from tracer.node.facts import write_cluster_yaml

        write_cluster_yaml(info, args.cluster_yaml)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    _say(f"node {info.hostname}: CNI mode {info.mode or 'unknown'}")
    _say(f"{'IFACE':<16} {'KIND':<9} {'ROLE':<13} {'MAC':<18} ADDRESSES / DETAILS")
    for l in info.links:
        details = list(l.addresses)
        if l.vxlan:
            details.append(f"vni {l.vxlan['vni']} port {l.vxlan['port']} local {l.vxlan['local']}"
                           f"{' nolearning' if not l.vxlan['learning'] else ''}")
        if l.ports:
            details.append("ports " + ",".join(l.ports))
        if l.master:
            details.append(f"in {l.master}")
        if l.peer_netns:
            details.append(f"peer #{l.peer_index} in {l.peer_netns}")
        _say(f"{l.name:<16} {l.kind:<9} {l.role:<13} {l.mac or '-':<18} {'  '.join(details)}")
    pod_routes = [r for r in info.routes if r.type != "local" and r.dst != "default"]
    if pod_routes:
        _say("\nROUTES")
        for r in pod_routes:
            via = f"via {r.gateway} " if r.gateway else ""
            extra = " onlink" if r.onlink else ""
            if r.type != "unicast":
                _say(f"  {r.dst:<18} {r.type}")
            else:
                _say(f"  {r.dst:<18} {via}dev {r.dev}{extra}")
    if info.fdb:
        _say("\nVXLAN FDB")
        for f in info.fdb:
            _say(f"  {f.mac} dev {f.dev} dst {f.dst}{' permanent' if f.permanent else ''}")
    if info.neighbours:
        _say("\nNEIGHBOURS")
        for n in info.neighbours:
            _say(f"  {n.ip:<15} {n.mac or '-':<18} dev {n.dev} {n.state}")
    if info.flannel_env:
        _say("\nFLANNEL subnet.env")
        for k, v in info.flannel_env.items():
            _say(f"  {k}={v}")
    if info.subnet_map:
        _say("\nREMOTE POD SUBNETS")
        for subnet, node in info.subnet_map.items():
            _say(f"  {subnet:<18} -> node {node}")
    return 0
