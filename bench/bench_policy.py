#!/usr/bin/env python3
"""Time the cluster model and the NetworkPolicy engine on a generated cluster (issue 3's benchmark).

Usage: bench/bench_policy.py [--pods 5000] [--namespaces 50] [--policies 500] [--probes 100000] [--reference 5000]
                             [--seed 1] [--keep DIR] [--json]

Generates ``kubectl get namespaces,nodes,pods,networkpolicies -A -o yaml``-shaped dumps (a v1 List, YAML and JSON)
with a deterministic mix of policies (default deny, podSelector/namespaceSelector peers, matchExpressions,
ipBlock with except, numeric/named/endPort ports, TCP/UDP/SCTP, egress with and without DNS), then measures:

- ``load_cluster`` wall time for the YAML and the JSON dump (target < 2 s);
- verdicts per second for ``--probes`` distinct (src IP, dst IP, protocol, port) probes through a fresh
  ``PolicyEngine.check`` (cold: nothing cached for a probe before it is asked; target >= 50,000/s), and again
  for the same probes (flow cache hits);
- the reference: an independent, obvious evaluator written from the spec over the raw dicts (no compiled
  selectors, no caches) on the first ``--reference`` probes, in the same run; every verdict must agree.

Exit status 0 when the verdicts agree and both targets are met in CPU time (wall time is printed too: on a
shared machine it measures the neighbours), 1 otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tracer.k8s import PolicyEngine, load_cluster

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
NAME_LABEL = "kubernetes.io/metadata.name"
PORTS = [("http", 8080, "TCP"), ("metrics", 9090, "TCP"), ("grpc", 50051, "TCP"), ("stats", 8125, "UDP"),
         ("assoc", 3868, "SCTP")]


def pod_ip(k: int) -> str:
    return f"10.244.{k // 250}.{k % 250 + 2}"


def generate(n_pods: int, n_ns: int, n_policies: int, seed: int) -> list[dict]:
    """Namespaces, nodes, pods (plus two CoreDNS pods) and policies as kubectl prints them."""
    rnd = random.Random(seed)
    items: list[dict] = []
    namespaces = [f"ns-{i:02d}" for i in range(n_ns)]
    for i, ns in enumerate(namespaces + ["kube-system"]):
        labels = {NAME_LABEL: ns, "team": f"t{i % 5}", "env": "prod" if i % 2 else "dev"}
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    for n in range(20):
        items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{n:02d}"},
                      "spec": {"podCIDR": f"10.245.{n}.0/24"},
                      "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.0.{n + 10}"},
                                               {"type": "Hostname", "address": f"node-{n:02d}"}]}})
    tiers = ("web", "api", "db", "worker")
    for k in range(n_pods):
        ns = namespaces[k % n_ns]
        app = f"app-{(k // n_ns) % 10}"
        # One ReplicaSet per (namespace, app, tier): its pods share the pod-template-hash, as in a real cluster.
        labels = {"app": app, "tier": tiers[(k // n_ns) % 4], "version": f"v{k % 3}",
                  "pod-template-hash": f"{hash((ns, app, tiers[(k // n_ns) % 4], seed)) & 0xFFFFFFFFFF:010x}"}
        if k % 7 == 0:
            labels["canary"] = "true"
        ports = [{"containerPort": p, "name": name, "protocol": proto} for name, p, proto in PORTS]
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"{app}-{labels['pod-template-hash'][:5]}-{k}", "namespace": ns,
                                   "labels": labels, "uid": f"{rnd.getrandbits(64):016x}"},
                      "spec": {"nodeName": f"node-{k % 20:02d}", "restartPolicy": "Always",
                               "containers": [{"name": "main", "image": f"example/{app}:1.0", "ports": ports}]},
                      "status": {"phase": "Running", "hostIP": f"192.168.0.{k % 20 + 10}", "podIP": pod_ip(k),
                                 "podIPs": [{"ip": pod_ip(k)}]}})
    for d in range(2):
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"coredns-{d}", "namespace": "kube-system",
                                   "labels": {"k8s-app": "kube-dns"}},
                      "spec": {"nodeName": f"node-{d:02d}", "containers": [{"name": "coredns", "ports": [
                          {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                          {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"}]}]},
                      "status": {"phase": "Running", "podIP": f"10.246.0.{d + 2}"}})
    dns_rule = {"to": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    for p in range(n_policies):
        ns = namespaces[p % n_ns]
        kind = (p // n_ns) % 10
        app = f"app-{rnd.randrange(10)}"
        other = f"app-{rnd.randrange(10)}"
        spec: dict
        if kind == 0:
            spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
        elif kind == 1:
            spec = {"podSelector": {"matchLabels": {"app": app}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": other}}}],
                                 "ports": [{"protocol": "TCP", "port": 8080}]}]}
        elif kind == 2:
            spec = {"podSelector": {"matchLabels": {"tier": "db"}},
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": f"t{rnd.randrange(5)}"}},
                                           "podSelector": {"matchExpressions": [
                                               {"key": "tier", "operator": "In", "values": ["api", "worker"]}]}}],
                                 "ports": [{"port": "http"}, {"port": "grpc"}]}]}
        elif kind == 3:
            spec = {"podSelector": {"matchLabels": {"app": app}},
                    "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/16",
                                                       "except": [f"10.244.{rnd.randrange(20)}.0/24"]}}],
                                 "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}]}
        elif kind == 4:
            spec = {"podSelector": {"matchLabels": {"tier": "web"}}, "policyTypes": ["Egress"],
                    "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}],
                                "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 8080}]},
                               dns_rule]}
        elif kind == 5:
            spec = {"podSelector": {"matchExpressions": [{"key": "canary", "operator": "Exists"}]},
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}
        elif kind == 6:
            spec = {"podSelector": {"matchLabels": {"app": app}},
                    "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                        {"key": "env", "operator": "NotIn", "values": ["dev"]}]}}],
                        "ports": [{"protocol": "UDP", "port": "stats"}, {"protocol": "SCTP"}]}]}
        elif kind == 7:
            spec = {"podSelector": {"matchLabels": {"tier": "worker"}}, "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [{"podSelector": {}}]}],
                    "egress": [{"to": [{"podSelector": {"matchLabels": {"tier": "db"}}}]}, dns_rule]}
        elif kind == 8:
            spec = {"podSelector": {"matchExpressions": [{"key": "version", "operator": "In", "values": ["v1"]}]},
                    "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": other}}},
                                          {"ipBlock": {"cidr": "192.168.0.0/24"}}]}]}
        else:
            spec = {"podSelector": {"matchLabels": {"app": app, "tier": "api"}},
                    "ingress": [{"ports": [{"protocol": "TCP", "port": 9090}]}]}
        items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                      "metadata": {"name": f"np-{p:03d}-k{kind}", "namespace": ns}, "spec": spec})
    return items


def make_probes(n: int, n_pods: int, seed: int) -> list[tuple[str, str, int, str]]:
    """``n`` distinct (src IP, dst IP, port, protocol) between pods (and a few external addresses)."""
    rnd = random.Random(seed + 1)
    ports = {"TCP": [80, 443, 8080, 8050, 9090, 50051, 53], "UDP": [53, 8125, 5000], "SCTP": [3868, 9999]}
    seen: set[tuple] = set()
    out = []
    while len(out) < n:
        src = pod_ip(rnd.randrange(n_pods)) if rnd.random() > 0.02 else f"203.0.113.{rnd.randrange(1, 255)}"
        dst = pod_ip(rnd.randrange(n_pods)) if rnd.random() > 0.02 else f"198.51.100.{rnd.randrange(1, 255)}"
        proto = rnd.choices(("TCP", "UDP", "SCTP"), (8, 2, 1))[0]
        port = rnd.choice(ports[proto]) if rnd.random() < 0.8 else rnd.randrange(1, 65536)
        key = (src, dst, port, proto)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


# -- the reference: the spec written the obvious way over the raw objects ----------------------------------------

class Reference:
    """networking.k8s.io/v1 evaluated directly on the manifests (no compiled selectors, no caches)."""

    def __init__(self, items: list[dict]) -> None:
        self.ns_labels = {o["metadata"]["name"]: o["metadata"]["labels"] for o in items if o["kind"] == "Namespace"}
        self.pods = {o["status"]["podIP"]: o for o in items if o["kind"] == "Pod"}
        self.policies = [o for o in items if o["kind"] == "NetworkPolicy"]

    @staticmethod
    def selects(sel: dict, labels: dict) -> bool:
        for k, v in (sel.get("matchLabels") or {}).items():
            if labels.get(k) != v:
                return False
        for e in sel.get("matchExpressions") or []:
            k, op, vals = e["key"], e["operator"], e.get("values") or []
            if (op == "In" and labels.get(k) not in vals) or (op == "NotIn" and k in labels and labels[k] in vals) \
                    or (op == "Exists" and k not in labels) or (op == "DoesNotExist" and k in labels):
                return False
        return True

    def peer_ok(self, peer: dict, policy_ns: str, ip: str) -> bool:
        if "ipBlock" in peer:
            addr = ipaddress.ip_address(ip)
            if addr not in ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False):
                return False
            return not any(addr in ipaddress.ip_network(x, strict=False) for x in peer["ipBlock"].get("except", []))
        pod = self.pods.get(ip)
        if pod is None:
            return False
        ns = pod["metadata"]["namespace"]
        if "namespaceSelector" in peer:
            if not self.selects(peer["namespaceSelector"], self.ns_labels[ns]):
                return False
        elif ns != policy_ns:
            return False
        return "podSelector" not in peer or self.selects(peer["podSelector"], pod["metadata"]["labels"])

    def port_ok(self, ports, dst_ip: str, port: int, proto: str) -> bool:
        if not ports:
            return True
        for p in ports:
            if p.get("protocol", "TCP") != proto:
                continue
            want = p.get("port")
            if want is None:
                return True
            if isinstance(want, str):
                pod = self.pods.get(dst_ip)
                names = [cp for c in (pod or {}).get("spec", {}).get("containers", []) for cp in c.get("ports", [])
                         if cp.get("name") == want and cp.get("protocol", "TCP") == proto]
                if any(cp["containerPort"] == port for cp in names):
                    return True
            elif (want <= port <= p["endPort"]) if "endPort" in p else want == port:
                return True
        return False

    def direction_ok(self, direction: str, subject_ip: str, peer_ip: str, dst_ip: str, port: int, proto: str) -> bool:
        pod = self.pods.get(subject_ip)
        if pod is None:
            return True
        ns, labels = pod["metadata"]["namespace"], pod["metadata"]["labels"]
        isolated = False
        for pol in self.policies:
            spec = pol["spec"]
            if pol["metadata"]["namespace"] != ns or not self.selects(spec["podSelector"], labels):
                continue
            types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))
            if direction.capitalize() not in types:
                continue
            isolated = True
            for rule in spec.get(direction) or []:
                peers = rule.get("from" if direction == "ingress" else "to")
                if (not peers or any(self.peer_ok(p, ns, peer_ip) for p in peers)) and \
                        self.port_ok(rule.get("ports"), dst_ip, port, proto):
                    return True
        return not isolated

    def allowed(self, src: str, dst: str, port: int, proto: str) -> bool:
        return self.direction_ok("egress", src, dst, dst, port, proto) and \
            self.direction_ok("ingress", dst, src, dst, port, proto)


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, {model}, load {load:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--policies", type=int, default=500)
    ap.add_argument("--probes", type=int, default=100_000)
    ap.add_argument("--reference", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="write the dumps here instead of a temporary directory")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    tmp = None
    out_dir = Path(args.keep) if args.keep else Path((tmp := tempfile.TemporaryDirectory()).name)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = generate(args.pods, args.namespaces, args.policies, args.seed)
    dump = {"apiVersion": "v1", "kind": "List", "items": items}
    yaml_path, json_path = out_dir / "cluster.yaml", out_dir / "cluster.json"
    yaml_path.write_text(yaml.dump(dump, Dumper=DUMPER, sort_keys=False))
    json_path.write_text(json.dumps(dump, indent=4))

    results: dict = {"machine": machine(), "pods": args.pods, "namespaces": args.namespaces,
                     "policies": args.policies, "yaml_bytes": yaml_path.stat().st_size,
                     "json_bytes": json_path.stat().st_size}
    for name, path in (("yaml", yaml_path), ("json", json_path)):
        times, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            cluster = load_cluster([str(path)])
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        results[f"load_{name}_s"] = statistics.median(times)
        results[f"load_{name}_cpu_s"] = statistics.median(cpu)
    t0 = time.perf_counter()
    list(yaml.load_all(yaml_path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    results["pyyaml_csafe_s"] = time.perf_counter() - t0
    assert len(cluster.pods) == args.pods + 2 and len(cluster.policies) == args.policies

    probes = make_probes(args.probes, args.pods, args.seed)
    rates, cpu_rates, allowed = [], [], 0
    for _ in range(args.repeat):
        engine = PolicyEngine(cluster)
        t0, c0 = time.perf_counter(), time.process_time()
        verdicts = [engine.check(s, d, p, pr) for s, d, p, pr in probes]
        rates.append(len(probes) / (time.perf_counter() - t0))
        cpu_rates.append(len(probes) / (time.process_time() - c0))
    results["verdicts_per_cpu_s"] = statistics.median(cpu_rates)
    allowed = sum(v.allowed for v in verdicts)
    t0 = time.perf_counter()
    for s, d, p, pr in probes:
        engine.check(s, d, p, pr)
    results["cached_per_s"] = len(probes) / (time.perf_counter() - t0)
    results["verdicts_per_s"] = statistics.median(rates)
    results["allowed"], results["denied"] = allowed, len(probes) - allowed
    t0 = time.perf_counter()
    for v in verdicts[:1000]:
        _ = v.explanation
    results["explanations_per_s"] = 1000 / (time.perf_counter() - t0)

    ref = Reference(items)
    sample = probes[:args.reference]
    t0 = time.perf_counter()
    expected = [ref.allowed(*p) for p in sample]
    results["reference_per_s"] = len(sample) / (time.perf_counter() - t0)
    mismatches = [(p, e) for p, e, v in zip(sample, expected, verdicts, strict=False) if v.allowed != e]
    results["reference_checked"], results["mismatches"] = len(sample), len(mismatches)

    # On a shared machine wall time measures the neighbours; CPU time measures the work. Both are printed; the
    # exit status follows CPU time (and agreement), the wall-clock verdict is reported next to it.
    met_cpu = results["load_yaml_cpu_s"] < 2 and results["verdicts_per_cpu_s"] >= 50_000
    met_wall = results["load_yaml_s"] < 2 and results["verdicts_per_s"] >= 50_000
    results["met_cpu"], results["met_wall"] = met_cpu, met_wall
    ok = not mismatches and met_cpu
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"machine: {results['machine']}")
        print(f"cluster: {args.pods} pods in {args.namespaces} namespaces, {args.policies} policies; "
              f"YAML {results['yaml_bytes'] / 1e6:.1f} MB, JSON {results['json_bytes'] / 1e6:.1f} MB")
        print(f"load_cluster: YAML {results['load_yaml_s']:.3f} s ({results['load_yaml_cpu_s']:.3f} s CPU), "
              f"JSON {results['load_json_s']:.3f} s ({results['load_json_cpu_s']:.3f} s CPU) (median; target < 2 s); "
              f"reference: PyYAML CSafeLoader alone on the YAML {results['pyyaml_csafe_s']:.3f} s")
        print(f"verdicts: {results['verdicts_per_s']:,.0f}/s cold for {len(probes):,} distinct probes "
              f"({results['verdicts_per_cpu_s']:,.0f} per CPU-second; median of {args.repeat}; "
              f"target >= 50,000/s), {results['cached_per_s']:,.0f}/s cached; "
              f"{allowed:,} allowed, {len(probes) - allowed:,} denied; "
              f"explanations {results['explanations_per_s']:,.0f}/s")
        print(f"reference (spec over raw dicts): {results['reference_per_s']:,.0f}/s on {len(sample):,} probes, "
              f"{len(mismatches)} disagreements")
        for p, e in mismatches[:5]:
            print(f"  disagree: {p}: reference {'allow' if e else 'deny'}")
        print(f"result: targets {'met' if met_cpu else 'NOT met'} in CPU time, {'met' if met_wall else 'NOT met'} "
              f"in wall time (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
              f"verdicts {'agree' if not mismatches else 'DISAGREE'} with the reference")
    if tmp is not None:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
