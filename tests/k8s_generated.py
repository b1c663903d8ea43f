"""A generated cluster (namespaces, pods, policies as kubectl prints them), probes, and an independent reference
evaluator written from the networking.k8s.io/v1 spec over the raw dicts: used by bench/bench_policy.py at scale and
by tests/test_k8s_differential.py on small random clusters.

The reference is deliberately the obvious code (no compiled selectors, no caches, ``ipaddress`` per probe) so that
it shares no logic with ``tracer.k8s``; it covers pods and external addresses (no nodes, Services, hostNetwork).
"""

from __future__ import annotations

import ipaddress
import random
import zlib

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
                  "pod-template-hash": f"{zlib.crc32(f'{ns}/{app}/{tiers[(k // n_ns) % 4]}/{seed}'.encode()):010x}"}
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
        if src == dst and src in self.pods:
            return True   # "a Pod cannot block access to itself" (Kubernetes documentation)
        return self.direction_ok("egress", src, dst, dst, port, proto) and \
            self.direction_ok("ingress", dst, src, dst, port, proto)
