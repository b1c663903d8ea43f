"""``tracer policy check|matrix|explain``: NetworkPolicy verdicts from cluster dumps, explained rule by rule."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

PROBE_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")


def clean(text: str) -> str:
    """Text for the terminal: cluster dumps are hostile input too (YAML/JSON escapes can put ESC into a label
    value), so control characters but newlines are shown as \\xNN."""
    from tracer.k8s.objects import printable  # noqa: PLC0415 - only when the command runs

    return printable(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("policy", help="NetworkPolicy verdicts: check a connection, print the truth table, "
                              "explain a policy",
                              description="Judge connections against the NetworkPolicies in cluster dumps "
                              "(kubectl get namespaces,nodes,pods,services,endpointslices,networkpolicies -A -o yaml), "
                              "as networking.k8s.io/v1 and the upstream conformance tests define them.")
    sub = p.add_subparsers(dest="policy_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    def cluster_option(q: argparse.ArgumentParser) -> None:
        q.add_argument("--cluster", action="append", required=True, metavar="PATH",
                       help="cluster state: a YAML/JSON file (v1 List, multi-document, single objects) or a "
                       "directory of them; repeatable")

    check = sub.add_parser("check", help="is a connection allowed, and why",
                           description="The verdict on new connections, with the policy, rule, peer and port that "
                           "decided it in each direction. SRC/DST: NAMESPACE/POD or an IP address.")
    cluster_option(check)
    check.add_argument("--from", dest="src", metavar="SRC", help="NAMESPACE/POD or IP address")
    check.add_argument("--to", dest="dst", metavar="DST", help="NAMESPACE/POD, IP address, Service IP")
    check.add_argument("--port", type=int, metavar="N", help="destination port")
    check.add_argument("--protocol", default="TCP", type=str.upper, metavar="PROTO",
                       help="TCP (default), UDP, SCTP or ICMP")
    check.add_argument("--probes", metavar="FILE",
                       help="YAML list of mappings with keys from, to, port, protocol (other keys ignored)")
    check.add_argument("--json", action="store_true", help="JSON: an object, or an array for --probes")
    check.set_defaults(func=run_check)

    matrix = sub.add_parser("matrix", help="the pods × pods truth table (row = from, column = to)",
                            description="Whether every pod may connect to every other pod on one port, printed as "
                            "the upstream e2e tests print reachability ('.' allowed, 'X' denied).")
    cluster_option(matrix)
    matrix.add_argument("--port", type=int, default=80, metavar="N", help="destination port (default 80)")
    matrix.add_argument("--protocol", default="TCP", type=str.upper, metavar="PROTO", help="TCP (default), UDP, SCTP")
    matrix.add_argument("--namespace", action="append", metavar="NS", help="only pods of this namespace "
                        "(repeatable)")
    matrix.add_argument("--json", action="store_true",
                        help='JSON: {"pods": [...], "port": N, "protocol": P, "allowed": [[bool, ...], ...]}')
    matrix.set_defaults(func=run_matrix)

    explain = sub.add_parser("explain", help="which pods a policy selects and what it allows",
                             description="A NetworkPolicy in plain words: the pods it selects, its policy types, "
                             "each rule, named ports resolved, and the egress-without-DNS pitfall.")
    cluster_option(explain)
    explain.add_argument("policy", metavar="NAMESPACE/POLICY")
    explain.set_defaults(func=run_explain)


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from tracer.k8s import PolicyEngine, load_cluster  # noqa: PLC0415 - only when the command runs

    cluster = load_cluster(args.cluster)
    if cluster.skipped:
        # Said once on stderr (stdout stays clean for --json): what was not used, or replaced by a later file.
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(cluster.skipped.items()))
        print(clean(f"tracer: note: {counts} (kinds tracer does not use are skipped; a later object replaces an "
                    "earlier one with the same name)"), file=sys.stderr)
    return cluster, PolicyEngine(cluster)


def _protocol(value: Any, where: str) -> str:
    from tracer.errors import TracerError  # noqa: PLC0415

    proto = "TCP" if value is None else value
    if not isinstance(proto, str) or proto.upper() not in PROBE_PROTOCOLS:
        raise TracerError(f"{where}: unknown protocol {value!r} (expected TCP, UDP, SCTP or ICMP)")
    return proto.upper()


def _port(value: Any, protocol: str, where: str) -> int | None:
    from tracer.errors import TracerError  # noqa: PLC0415

    if value is None:
        if protocol == "ICMP":
            return None
        raise TracerError(f"{where}: port: missing (a {protocol} connection has a destination port)")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise TracerError(f"{where}: port: {value!r} is not a port number (1-65535)")
    return value if protocol != "ICMP" else None


def read_probes(path: str) -> list[dict[str, Any]]:
    """Probes from a YAML list of mappings (from, to, port, protocol); TracerError naming file, entry and key."""
    from tracer.errors import ClusterError, TracerError  # noqa: PLC0415
    from tracer.k8s.objects import read_yaml_file  # noqa: PLC0415

    try:
        docs = read_yaml_file(path)
    except ClusterError as exc:
        raise TracerError(str(exc)) from None
    data = docs[0] if len(docs) == 1 else docs
    if isinstance(data, dict) and isinstance(data.get("probes"), list):
        data = data["probes"]
    if not isinstance(data, list):
        raise TracerError(f"{path}: expected a YAML list of probes (mappings with from, to, port, protocol)")
    probes = []
    for i, entry in enumerate(data):
        where = f"{path}: probe {i + 1}"
        if not isinstance(entry, dict):
            raise TracerError(f"{where}: expected a mapping with from, to, port, protocol")
        for key in ("from", "to"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise TracerError(f"{where}: {key}: missing (NAMESPACE/POD or an IP address)")
        proto = _protocol(entry.get("protocol"), where)
        probes.append({"from": entry["from"].strip(), "to": entry["to"].strip(),
                       "port": _port(entry.get("port"), proto, where), "protocol": proto})
    return probes


def _result(v: Any, probe: dict[str, Any]) -> dict[str, Any]:
    out = v.to_dict()
    out.update({"from": probe["from"], "to": probe["to"], "port": probe["port"], "protocol": probe["protocol"],
                "src": str(v.src), "dst": str(v.dst), "src_kind": v.src.kind, "dst_kind": v.dst.kind})
    return out


def run_check(args: argparse.Namespace) -> int:
    from tracer.errors import TracerError  # noqa: PLC0415

    if args.probes:
        if args.src or args.dst or args.port is not None:
            raise TracerError("policy check: give either --probes FILE or --from/--to/--port, not both")
        probes = read_probes(args.probes)
    else:
        missing = [o for o, v in (("--from", args.src), ("--to", args.dst)) if not v]
        if missing:
            raise TracerError(f"policy check: {' and '.join(missing)} required (or --probes FILE)")
        proto = _protocol(args.protocol, "--protocol")
        probes = [{"from": args.src, "to": args.dst, "port": _port(args.port, proto, "--port"), "protocol": proto}]
    _, engine = _load(args)
    verdicts = engine.check_many([(p["from"], p["to"], p["port"], p["protocol"]) for p in probes])
    results = [_result(v, p) for v, p in zip(verdicts, probes, strict=True)]
    if args.json:
        json.dump(results if args.probes else results[0], sys.stdout, indent=2)
        print()
    else:
        print(clean("\n\n".join(r["explanation"] for r in results)))
    return 0


def run_matrix(args: argparse.Namespace) -> int:
    from tracer.errors import TracerError  # noqa: PLC0415

    proto = _protocol(args.protocol, "--protocol")
    port = _port(args.port, proto, "--port")
    cluster, engine = _load(args)
    pods = [p for p in cluster.pods if not p.host_network and (not args.namespace or p.namespace in args.namespace)]
    pods.sort(key=lambda p: (p.namespace, p.name))
    if not pods:
        raise TracerError("policy matrix: no pods" + (f" in namespace(s) {', '.join(args.namespace)}"
                                                       if args.namespace else " in the cluster state"))
    if len(pods) > 1000:
        print(f"tracer: note: {len(pods):,} pods make {len(pods) ** 2:,} verdicts; --namespace NS narrows the table",
              file=sys.stderr)
    table = engine.matrix(pods, port, proto)
    names = [p.key for p in pods]
    if args.json:
        json.dump({"pods": names, "port": port, "protocol": proto, "allowed": table}, sys.stdout)
        print()
        return 0
    print(f"reachability on {proto}/{port} ('.' allowed, 'X' denied; row = from, column = to)")
    # The table itself exactly as upstream's TruthTable.PrettyPrint (test/e2e/network/netpol/truthtable.go).
    print("\t".join(["-", *names]))
    for name, row in zip(names, table, strict=True):
        print("\t".join([name, *("." if ok else "X" for ok in row)]))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from tracer.errors import TracerError  # noqa: PLC0415
    from tracer.k8s.explain import policy_text  # noqa: PLC0415

    if args.policy.count("/") != 1:
        raise TracerError(f"policy explain: {args.policy!r} is not NAMESPACE/POLICY")
    cluster, engine = _load(args)
    policy = cluster.policy(args.policy)
    if policy is None:
        ns = args.policy.split("/")[0]
        known = ", ".join(p.name for p in cluster.policies_in(ns)) or "none"
        raise TracerError(f"no NetworkPolicy {args.policy} in the cluster state (policies in {ns}: {known})")
    print(clean(policy_text(policy, engine)))
    return 0
