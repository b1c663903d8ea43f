"""``tracer lab up|down|status|traffic|policy|capture``: the flannel/Calico lab in network namespaces."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lab", help="build flannel/Calico topologies in network namespaces (root)",
                              description="Rebuild the tutorial's cluster in network namespaces: nodes on an "
                              "underlay, pods, kube-proxy Services, a NetworkPolicy deny. Needs root.")
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = sub.add_parser("up", help="build a lab (tears down any previous one)")
    up.add_argument("mode", metavar="MODE", help="flannel-vxlan | host-gw | calico-vxlan | calico-bgp | calico-ipip")
    up.add_argument("--nodes", type=int, choices=(2, 3), default=2, help="number of nodes (default 2)")
    up.set_defaults(func=_up)
    sub.add_parser("down", help="remove every lab namespace and process").set_defaults(func=_down)
    st = sub.add_parser("status", help="nodes and pods with namespaces, interfaces, IPs, MACs")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)
    tr = sub.add_parser("traffic", help="generate the lab's traffic mix once and report what got through")
    tr.add_argument("--json", action="store_true", help="machine-readable output")
    tr.add_argument("--parallel", action="store_true", help="run the flows at once instead of one after another")
    tr.set_defaults(func=_traffic)
    po = sub.add_parser("policy", help="drop traffic on a pod's veth as a NetworkPolicy deny would")
    po.add_argument("--remove", action="store_true", help="remove the deny")
    po.set_defaults(func=_policy)
    cap = sub.add_parser("capture", help="capture every node interface while generating traffic")
    cap.add_argument("outdir", metavar="OUTDIR")
    cap.add_argument("--no-deny", action="store_true", help="do not apply the NetworkPolicy deny first")
    cap.add_argument("--pods", action="store_true", help="also capture each pod's own eth0 (points pod:NS/NAME)")
    cap.add_argument("--skew", action="append", default=[], metavar="NODE=MS",
                     help="shift NODE's timestamps by MS milliseconds (a node whose clock is off); repeatable")
    cap.set_defaults(func=_capture)


def _up(args: argparse.Namespace) -> int:
    from tracer.lab import lifecycle

    plan = lifecycle.up(args.mode, args.nodes)
    print(f"lab {plan.mode} up: {len(plan.nodes)} nodes, {len(plan.pods)} pods "
          f"({', '.join(n.netns for n in plan.nodes)}); `tracer lab status` lists them, `tracer lab down` removes it")
    return 0


def _down(args: argparse.Namespace) -> int:
    from tracer.lab import lifecycle

    removed = lifecycle.down()
    print(f"lab down: removed {len(removed)} network namespaces" if removed else "no lab was up")
    return 0


def _status(args: argparse.Namespace) -> int:
    from tracer.lab import lifecycle

    st = lifecycle.status(lifecycle.current())
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"mode {st['mode']}")
    for n in st["nodes"]:
        print(f"node {n['name']}  netns {n['netns']}  {n['ip']}  podCIDR {n['pod_cidr']}")
        for i in n["interfaces"]:
            print(f"    {i['name']:<16} {i['kind'] or 'device':<7} {i['mac'] or '':<18} {' '.join(i['addresses'])}")
    for p in st["pods"]:
        print(f"pod {p['namespace']}/{p['name']}  on {p['node']}  netns {p['netns']}  {p['ip']}  {p['mac']}  "
              f"host side {p['host_iface']}")
    for s in st["services"]:
        np_ = f"  NodePort {s['node_port']}" if s["node_port"] else ""
        print(f"service {s['namespace']}/{s['name']}  {s['cluster_ip']}:{s['port']}/{s['protocol']}{np_}")
    if st["policy"]:
        print(f"deny: {st['policy']['name']} on {st['policy']['node']}/{st['policy']['iface']}")
    return 0


def _traffic(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tracer.lab import lifecycle, traffic

    flows = traffic.run(lifecycle.current(), parallel=args.parallel)
    if args.json:
        print(json.dumps([asdict(f) for f in flows], indent=2))
    else:
        for f in flows:
            got = "answered" if f.ok else "no answer"
            note = "" if f.ok == f.expect else "   <-- unexpected"
            print(f"{f.label:<44} {f.proto:<5} {f.locality:<11} {got}{note}")
    return 0 if all(f.ok == f.expect for f in flows) else 1


def _policy(args: argparse.Namespace) -> int:
    from tracer.lab import lifecycle, policy, state

    plan = lifecycle.current()
    if args.remove:
        policy.remove(plan)
        print("deny removed")
    else:
        deny = policy.default_deny(plan)
        policy.apply(plan, deny)
        print(f"deny {deny['namespace']}/{deny['name']}: {deny['pod']}:{deny['port']}/{deny['protocol']} only from "
              f"namespace {deny['allow_namespace']}; dropping on {deny['node']}/{deny['iface']}")
    state.save(plan)
    return 0


def _capture(args: argparse.Namespace) -> int:
    from tracer.lab import capture, lifecycle

    from tracer.lab.build import LabError

    skew = {}
    for item in args.skew:
        node, sep, ms = item.partition("=")
        try:
            skew[node] = float(ms)
        except ValueError:
            raise LabError(f"--skew {item!r}: expected NODE=MILLISECONDS, e.g. node2=25") from None
        if not sep or not node:
            raise LabError(f"--skew {item!r}: expected NODE=MILLISECONDS, e.g. node2=25")
    result = capture.run(lifecycle.current(), args.outdir, deny=not args.no_deny, pods=args.pods, skew_ms=skew)
    print(result.summary())
    return 0
