"""The upstream netpol e2e model (kubernetes/kubernetes test/e2e/network/netpol/), rebuilt as cluster dumps.

Namespaces x, y, z (labelled ``ns: <name>`` and ``kubernetes.io/metadata.name``), pods named a, b, c labelled
``pod: <name>``, one container per (port, protocol) with a port named ``serve-<port>-<proto>`` (as upstream's
model.go names them), and a ``Reachability`` truth table with upstream's helpers (``expect``, ``expect_peer``,
``expect_all_ingress``, ``expect_all_egress``). Loopback (a pod to itself) is ignored, as upstream does
(``ignoreLoopback = true``: CNIs disagree on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
ALL_PODS = tuple(f"{ns}/{p}" for ns in NAMESPACES for p in POD_NAMES)


def pod_ip(pod: str) -> str:
    ns, name = pod.split("/")
    return f"10.244.{NAMESPACES.index(ns) + 1}.{POD_NAMES.index(name) + 10}"


def cluster_objects(pods: tuple[str, ...], ports: tuple[int, ...], protocols: tuple[str, ...],
                    ns_labels: dict[str, dict[str, str]] | None = None,
                    pod_labels: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """Namespace, Node and Pod objects as ``kubectl get -o yaml`` prints them."""
    items: list[dict] = []
    for ns in NAMESPACES:
        labels = {"ns": ns, "kubernetes.io/metadata.name": ns, **(ns_labels or {}).get(ns, {})}
        items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    for i in (1, 2):
        items.append({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i}"},
                      "spec": {"podCIDR": f"10.244.{i}.0/24"},
                      "status": {"addresses": [{"type": "InternalIP", "address": f"192.168.0.{i}"}]}})
    for k, pod in enumerate(pods):
        ns, name = pod.split("/")
        containers = [{"name": f"cont-{port}-{proto.lower()}", "image": "registry.k8s.io/e2e-test-images/agnhost",
                       "ports": [{"containerPort": port, "name": f"serve-{port}-{proto.lower()}",
                                  "protocol": proto}]}
                      for port in ports for proto in protocols]
        labels = {"pod": name, **(pod_labels or {}).get(pod, {})}
        items.append({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": ns, "labels": labels},
                      "spec": {"nodeName": f"node-{k % 2 + 1}", "containers": containers},
                      "status": {"phase": "Running", "podIP": pod_ip(pod), "podIPs": [{"ip": pod_ip(pod)}]}})
    return items


def write_cluster(directory: Path, pods: tuple[str, ...], ports: tuple[int, ...], protocols: tuple[str, ...],
                  policies: list[tuple[str, str]], **labels: dict) -> list[str]:
    """Write the model as a v1 List and each (namespace, manifest) policy as its own file; return the paths."""
    cluster = directory / "cluster.yaml"
    cluster.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                       "items": cluster_objects(pods, ports, protocols, **labels)}))
    paths = [str(cluster)]
    for n, (ns, manifest) in enumerate(policies):
        doc = yaml.safe_load(manifest)
        doc.setdefault("apiVersion", "networking.k8s.io/v1")
        doc.setdefault("kind", "NetworkPolicy")
        doc["metadata"]["namespace"] = ns
        path = directory / f"policy-{n}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc))
        paths.append(str(path))
    return paths


@dataclass
class Reachability:
    """Upstream's expected truth table: every (from, to) starts at ``default``."""

    pods: tuple[str, ...]
    default: bool = True
    expected: dict[tuple[str, str], bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.expected = {(f, t): self.default for f in self.pods for t in self.pods}

    def expect(self, src: str, dst: str, ok: bool) -> None:
        self.expected[(src, dst)] = ok

    @staticmethod
    def _matches(pod: str, ns: str | None, name: str | None) -> bool:
        pns, pname = pod.split("/")
        return (ns is None or ns == pns) and (name is None or name == pname)

    def expect_peer(self, src: tuple[str | None, str | None], dst: tuple[str | None, str | None], ok: bool) -> None:
        """``ExpectPeer(&Peer{Namespace, Pod}, &Peer{...}, ok)``: None is upstream's empty field (any)."""
        for f in self.pods:
            for t in self.pods:
                if self._matches(f, *src) and self._matches(t, *dst):
                    self.expected[(f, t)] = ok

    def expect_all_ingress(self, dst: str, ok: bool) -> None:
        for f in self.pods:
            self.expected[(f, dst)] = ok

    def expect_all_egress(self, src: str, ok: bool) -> None:
        for t in self.pods:
            self.expected[(src, t)] = ok

    def mismatches(self, engine, port: int, protocol: str) -> list[str]:
        """Pairs where the engine disagrees with upstream, loopback ignored, with the engine's explanation."""
        out = []
        for (f, t), want in self.expected.items():
            if f == t:
                continue
            v = engine.check(f, t, port, protocol)
            if v.allowed != want:
                out.append(f"{f} -> {t} {protocol}/{port}: expected {'allow' if want else 'deny'}, got "
                           f"{v.verdict}: {v.explanation.splitlines()[0]}")
        return out
