"""What the hop analysis needs from the cluster model, read once: nodes, pods, Services and the policy engine.

``ClusterFacts`` turns a ``tracer.k8s`` ``Cluster`` (or nothing) into plain lookups keyed by IP string, so the
analysis never walks Kubernetes objects per packet: pod IP → (namespace/name, node), node IP → node, Service
ClusterIP:port → (namespace/name, backends), node pod CIDRs, and the CNI annotations on nodes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` present on ``obj`` (attribute or mapping key); the k8s model is read, not assumed."""
    for name in names:
        if isinstance(obj, dict):
            if name in obj and obj[name] is not None:
                return obj[name]
        else:
            value = getattr(obj, name, None)
            if value is not None:
                return value
    return default


def _items(container: Any) -> list[Any]:
    if container is None:
        return []
    if isinstance(container, dict):
        return list(container.values())
    return list(container)


@dataclass
class ServiceFacts:
    """One Service: its name, its virtual addresses and, per service port, the target port and backends."""

    name: str                                   # namespace/name
    ips: set[str] = field(default_factory=set)  # ClusterIPs and external IPs
    ports: dict[tuple[int, str], int] = field(default_factory=dict)       # (port, proto) → targetPort
    node_ports: dict[tuple[int, str], int] = field(default_factory=dict)  # (nodePort, proto) → targetPort
    backends: set[str] = field(default_factory=set)   # endpoint IPs


@dataclass
class ClusterFacts:
    """Plain lookups over the cluster state; empty when no cluster was given."""

    cluster: Any = None
    pods: dict[str, tuple[str, str | None]] = field(default_factory=dict)   # ip → (ns/name, node)
    node_ips: dict[str, str] = field(default_factory=dict)                  # ip → node
    node_cidrs: list[tuple[Any, str]] = field(default_factory=list)         # (ip_network, node)
    node_annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, ServiceFacts] = field(default_factory=dict)         # ns/name → facts
    service_ips: dict[str, str] = field(default_factory=dict)               # ip → ns/name
    engine: Any = None

    @property
    def present(self) -> bool:
        return self.cluster is not None

    def node_of_ip(self, ip: str) -> str | None:
        """The node an IP lives on: a pod's node, a node's own address, or the node whose podCIDR holds it."""
        if ip in self.pods:
            return self.pods[ip][1]
        if ip in self.node_ips:
            return self.node_ips[ip]
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for net, node in self.node_cidrs:
            if addr.version == net.version and addr in net:
                return node
        return None

    def kind_of_ip(self, ip: str) -> str | None:
        """``pod``, ``node``, ``service`` or ``external`` per the cluster; None without a cluster."""
        if not self.present:
            return None
        if ip in self.pods:
            return "pod"
        if ip in self.node_ips:
            return "node"
        if ip in self.service_ips:
            return "service"
        if self.node_of_ip(ip) is not None:
            return "pod"   # inside a node's pod CIDR: a pod the dump does not list
        return "external"


def load_facts(cluster: Any) -> ClusterFacts:
    """Read nodes, pods, Services and Endpoints/EndpointSlices out of a ``tracer.k8s`` cluster (or None)."""
    facts = ClusterFacts(cluster=cluster)
    if cluster is None:
        return facts
    for node in _items(_get(cluster, "nodes")):
        name = _get(node, "name")
        if not name:
            continue
        facts.node_annotations[name] = dict(_get(node, "annotations", default={}) or {})
        for ip in _get(node, "addresses", "internal_ips", "ips", default=()) or ():
            ip = _get(ip, "address", default=ip) if not isinstance(ip, str) else ip
            if isinstance(ip, str):
                facts.node_ips[ip] = name
        cidrs = _get(node, "pod_cidrs", "podCIDRs", default=None) or []
        single = _get(node, "pod_cidr", "podCIDR")
        if single:
            cidrs = [*cidrs, single]
        for cidr in cidrs:
            try:
                facts.node_cidrs.append((ipaddress.ip_network(cidr, strict=False), name))
            except ValueError:
                continue
        for ip in _get(node, "cni_ips", default=()) or ():   # the model's own list of tunnel/bridge addresses
            if isinstance(ip, str):
                facts.node_ips.setdefault(ip, name)
        ann = facts.node_annotations[name]
        for key in ("projectcalico.org/IPv4IPIPTunnelAddr", "projectcalico.org/IPv4VXLANTunnelAddr",
                    "flannel.alpha.coreos.com/public-ip"):
            addr = ann.get(key)
            if addr:
                facts.node_ips.setdefault(addr.split("/")[0], name)
        if not any(k.startswith("projectcalico.org/") for k in ann):
            # flannel gives flannel.1 (or flannel0) the subnet's network address and cni0 the first host address:
            # traffic from or to them (NodePort SNAT, kubelet probes) is the node's, not a pod's.
            for net, node in facts.node_cidrs:
                if node == name and net.version == 4 and net.num_addresses >= 4:
                    facts.node_ips.setdefault(str(net.network_address), name)
                    facts.node_ips.setdefault(str(net.network_address + 1), name)
    for pod in _items(_get(cluster, "pods")):
        ns = _get(pod, "namespace", default="default")
        name = _get(pod, "name")
        node = _get(pod, "node", "node_name", "nodeName")
        if _get(pod, "host_network", "hostNetwork", default=False):
            continue
        ips = list(_get(pod, "ips", "pod_ips", default=()) or ())
        single = _get(pod, "ip", "pod_ip", "podIP")
        if single and single not in ips:
            ips.append(single)
        for ip in ips:
            ip = ip if isinstance(ip, str) else _get(ip, "ip")
            if ip:
                facts.pods[ip] = (f"{ns}/{name}", node)
    for svc in _items(_get(cluster, "services")):
        ns = _get(svc, "namespace", default="default")
        name = f"{ns}/{_get(svc, 'name')}"
        sf = ServiceFacts(name)
        for ip in [*(_get(svc, "cluster_ips", "clusterIPs", default=()) or ()),
                   _get(svc, "cluster_ip", "clusterIP"), *(_get(svc, "external_ips", default=()) or ())]:
            if ip and ip != "None":
                sf.ips.add(ip)
        for port in _get(svc, "ports", default=()) or ():
            proto = str(_get(port, "protocol", default="TCP")).upper()
            p = _get(port, "port")
            target = _get(port, "target_port", "targetPort", default=p)
            try:
                target_num = int(target)
            except (TypeError, ValueError):
                target_num = -1   # a named port: resolved per backend pod, not here
            if p is not None:
                sf.ports[(int(p), proto)] = target_num
            np_ = _get(port, "node_port", "nodePort")
            if np_:
                sf.node_ports[(int(np_), proto)] = target_num
        facts.services[name] = sf
        for ip in sf.ips:
            facts.service_ips[ip] = name
    _read_endpoints(cluster, facts)
    try:
        from tracer.k8s import PolicyEngine  # noqa: PLC0415 - only with a cluster

        facts.engine = PolicyEngine(cluster)
    except ImportError:
        facts.engine = None
    return facts


def _read_endpoints(cluster: Any, facts: ClusterFacts) -> None:
    backends = _get(cluster, "service_backends")
    for svc_name, sf in facts.services.items():
        ips: set[str] = set()
        if callable(backends):
            try:
                ips = {b if isinstance(b, str) else _get(b, "ip") for b in backends(svc_name) or ()}
            except Exception:  # noqa: BLE001 - an unknown shape of the k8s model: fall back to the objects
                ips = set()
        sf.backends = {ip for ip in ips if ip}
    for obj in _items(_get(cluster, "endpoints", "endpoint_slices", "endpointslices")):
        svc = _get(obj, "service", "service_name", "name")
        ns = _get(obj, "namespace", default="default")
        key = svc if svc and "/" in str(svc) else f"{ns}/{svc}"
        if key not in facts.services:
            continue
        for addr in _get(obj, "addresses", "ips", default=()) or ():
            ip = addr if isinstance(addr, str) else _get(addr, "ip")
            if ip:
                facts.services[key].backends.add(ip)
