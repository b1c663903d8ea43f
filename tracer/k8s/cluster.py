"""The cluster model: namespaces, nodes, pods, Services, endpoints and NetworkPolicies, and IP resolution.

``load_cluster(paths)`` reads kubectl dumps and manifests (``tracer.k8s.objects``), validates the kinds it uses
(Namespace, Node, Pod, Service, Endpoints, EndpointSlice, NetworkPolicy; others are skipped and counted in
``cluster.skipped``) and indexes them. ``cluster.resolve_ip(ip)`` answers what an address is:
- ``pod``: a pod's IP (``status.podIP``/``podIPs``) — not a hostNetwork pod, which shares its node's IP;
- ``node``: a node's InternalIP/ExternalIP, its own addresses on the pod network (flannel ``cni0``/``flannel.1``,
  Calico tunnel addresses), and hostNetwork pods on it;
- ``service``: a Service ClusterIP/external IP (and, via ``resolve(ip, port)``, a NodePort on a node address);
- ``external``: anything else.

Every namespace, dumped or only referenced, carries ``kubernetes.io/metadata.name`` as the API server sets it.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tracer.errors import ClusterError
from tracer.k8s.gcpause import paused_gc
from tracer.k8s.netpol import NetworkPolicy, compile_policy
from tracer.k8s.objects import RawObject, printable, read_objects, show
from tracer.k8s.selectors import LabelSet

NAME_LABEL = "kubernetes.io/metadata.name"
USED_KINDS = ("Namespace", "Node", "Pod", "Service", "Endpoints", "EndpointSlice", "NetworkPolicy")


def canonical_ip(text: str) -> tuple[str, int, int]:
    """(canonical text, version, integer value) of an IP address; ValueError if it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"{show(text)} is not an IP address")
    addr = ipaddress.ip_address(text.strip())
    return str(addr), addr.version, int(addr)


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: LabelSet

    @property
    def label_map(self) -> dict[str, str]:
        return self.labels.labels


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    addresses: tuple[str, ...]       # InternalIP and ExternalIP addresses, canonical
    internal_ips: tuple[str, ...]
    pod_cidrs: tuple[str, ...]
    cni_ips: tuple[str, ...] = ()    # the node's own addresses on the pod network (tunnel, bridge): see cni_addresses


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str | None
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    labels: LabelSet
    node: str | None
    ips: tuple[str, ...]             # canonical pod IPs (podIPs, podIP)
    host_network: bool
    ports: tuple[ContainerPort, ...]
    phase: str | None
    key: str = field(init=False, compare=False)       # "namespace/name", computed once (a hot dict key)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.namespace}/{self.name}")

    @property
    def ip(self) -> str | None:
        return self.ips[0] if self.ips else None

    @property
    def label_map(self) -> dict[str, str]:
        return self.labels.labels

    def named_port(self, name: str, protocol: str) -> int | None:
        """The containerPort called ``name`` with ``protocol`` (how NetworkPolicy resolves named ports)."""
        for p in self.ports:
            if p.name == name and p.protocol == protocol:
                return p.port
        return None


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str | None
    protocol: str
    port: int
    target_port: int | str           # a number or a container-port name
    node_port: int | None


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    selector: dict[str, str] | None
    ports: tuple[ServicePort, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def cluster_ip(self) -> str | None:
        return self.cluster_ips[0] if self.cluster_ips else None


@dataclass(frozen=True, slots=True)
class EndpointSet:
    """The backends of a Service as an Endpoints object or one EndpointSlice lists them."""

    namespace: str
    service: str
    addresses: tuple[str, ...]
    ports: tuple[tuple[str | None, int, str], ...]   # (name, port, protocol)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What an address (or ``ns/pod``) is in this cluster; what the policy engine judges."""

    kind: str                         # pod | node | service | external
    ip: str | None
    namespace: str | None = None
    name: str | None = None
    node: str | None = None
    pod: Pod | None = None
    service: Service | None = None
    host_network: bool = False
    version: int = 0
    value: int = 0
    ns_labels: LabelSet | None = None   # labels of a pod's namespace (what namespaceSelector sees)
    is_policy_pod: bool = field(init=False, compare=False)
    """A pod NetworkPolicy can select: a pod that is not on the host network (computed once: checked per rule)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_policy_pod", self.kind == "pod" and self.pod is not None
                           and not self.host_network)

    @property
    def labels(self) -> dict[str, str]:
        return self.pod.label_map if self.pod is not None else {}

    def __str__(self) -> str:
        if self.kind == "pod":
            return f"{self.namespace}/{self.name}"
        if self.kind == "node":
            who = f"{self.namespace}/{self.name} (hostNetwork on node {self.node})" if self.pod else f"node {self.name}"
            return who if self.ip is None or self.pod else f"{who} ({self.ip})"
        if self.kind == "service":
            return f"service {self.namespace}/{self.name} ({self.ip})"
        return str(self.ip)


def _str(raw: RawObject, value: Any, field: str, default: str | None = None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise raw.error(field, f"must be a string, not {type(value).__name__} {show(value)}")
    return value


def _map(raw: RawObject, value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise raw.error(field, f"must be a mapping, not {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise raw.error(f"{field}.{k}", f"keys and values must be strings, got {show(v)} (quote it in YAML)")
        out[k] = v
    return out


def _dict(raw: RawObject, value: Any, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise raw.error(field, f"must be a mapping, not {type(value).__name__}")
    return value


def _list(raw: RawObject, value: Any, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise raw.error(field, f"must be a list, not {type(value).__name__}")
    return value


def _ip(raw: RawObject, value: Any, field: str) -> str:
    try:
        return canonical_ip(value)[0]
    except (ValueError, TypeError):
        raise raw.error(field, f"{show(value)} is not an IP address") from None


def _int(raw: RawObject, value: Any, field: str, lo: int = 0, hi: int = 65535) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise raw.error(field, f"must be a number from {lo} to {hi}, not {show(value)}")
    return value


def _protocol(raw: RawObject, value: Any, field: str) -> str:
    proto = "TCP" if value is None else value
    if not isinstance(proto, str) or proto.upper() not in ("TCP", "UDP", "SCTP"):
        raise raw.error(field, f"unknown protocol {show(value)} (expected TCP, UDP or SCTP)")
    return proto.upper()


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def need_name(raw: RawObject) -> str:
    """metadata.name, a DNS subdomain as the API server requires (so ``ns/name`` is unambiguous)."""
    name = raw.metadata.get("name")
    if not isinstance(name, str) or not name:
        raise raw.error("metadata.name", "missing or not a string")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise raw.error("metadata.name", f"{show(name)} is not a valid object name (lower-case DNS subdomain)")
    return name


def need_namespace(raw: RawObject) -> str:
    """metadata.namespace (``default`` when absent), a DNS label as the API server requires."""
    ns = raw.metadata.get("namespace", "default")
    if ns is None:
        ns = "default"
    if not isinstance(ns, str) or len(ns) > 63 or not _DNS_LABEL.match(ns):
        raise raw.error("metadata.namespace", f"{show(ns)} is not a valid namespace name (lower-case DNS label)")
    return ns


_need_name = need_name


def parse_namespace(raw: RawObject) -> Namespace:
    name = _need_name(raw)
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise raw.error("metadata.name", f"{show(name)} is not a valid namespace name (lower-case DNS label)")
    labels = _map(raw, raw.metadata.get("labels"), "metadata.labels")
    labels[NAME_LABEL] = name  # the API server sets it on every namespace and never lets it differ
    return Namespace(name, LabelSet.of(labels))


def parse_node(raw: RawObject) -> Node:
    name = _need_name(raw)
    spec = _dict(raw, raw.body.get("spec"), "spec")
    status = _dict(raw, raw.body.get("status"), "status")
    addresses, internal = [], []
    for i, entry in enumerate(_list(raw, status.get("addresses"), "status.addresses")):
        entry = _dict(raw, entry, f"status.addresses[{i}]")
        kind = entry.get("type")
        if kind not in ("InternalIP", "ExternalIP"):
            continue  # Hostname, InternalDNS: not addresses packets carry
        ip = _ip(raw, entry.get("address"), f"status.addresses[{i}].address")
        addresses.append(ip)
        if kind == "InternalIP":
            internal.append(ip)
    cidrs = [c for c in _list(raw, spec.get("podCIDRs"), "spec.podCIDRs")]
    if spec.get("podCIDR") and spec["podCIDR"] not in cidrs:
        cidrs.insert(0, spec["podCIDR"])
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            raise raw.error(f"spec.podCIDRs[{i}]", f"{show(cidr)} is not a CIDR") from None
    annotations = _map(raw, raw.metadata.get("annotations"), "metadata.annotations")
    return Node(name, _map(raw, raw.metadata.get("labels"), "metadata.labels"), annotations,
                tuple(addresses), tuple(internal), tuple(cidrs), cni_addresses(annotations, cidrs))


# Calico records the node's own addresses on the pod network in annotations (tunnel interfaces tunl0,
# vxlan.calico, wireguard.cali); flannel records the node's public IP.
CALICO_ADDRESS_ANNOTATIONS = ("projectcalico.org/IPv4IPIPTunnelAddr", "projectcalico.org/IPv4VXLANTunnelAddr",
                              "projectcalico.org/IPv6VXLANTunnelAddr", "projectcalico.org/IPv4WireguardInterfaceAddr",
                              "projectcalico.org/IPv4Address", "projectcalico.org/IPv6Address",
                              "flannel.alpha.coreos.com/public-ip", "flannel.alpha.coreos.com/public-ipv6")


def cni_addresses(annotations: dict[str, str], pod_cidrs: list[str]) -> tuple[str, ...]:
    """Addresses a node itself sends from besides its InternalIP: Calico's tunnel addresses and flannel's
    ``flannel.1`` (the podCIDR's network address) and ``cni0`` bridge (its first address), from which the node —
    kubelet probes included — talks to its own pods. Unparseable annotations are ignored (they are hints)."""
    out: list[str] = []
    for key in CALICO_ADDRESS_ANNOTATIONS:
        value = annotations.get(key, "").split("/")[0].strip()
        try:
            out.append(canonical_ip(value)[0])
        except ValueError:
            continue
    if any(k.startswith("flannel.alpha.coreos.com/") for k in annotations):
        for cidr in pod_cidrs:
            net = ipaddress.ip_network(cidr, strict=False)
            if net.num_addresses >= 4:
                out += [str(net.network_address), str(net.network_address + 1)]
    return tuple(dict.fromkeys(out))


def parse_pod(raw: RawObject) -> Pod:
    name = _need_name(raw)
    ns = need_namespace(raw)
    spec = _dict(raw, raw.body.get("spec"), "spec")
    status = _dict(raw, raw.body.get("status"), "status")
    ports = []
    for group in ("containers", "initContainers"):
        for c, container in enumerate(_list(raw, spec.get(group), f"spec.{group}")):
            container = _dict(raw, container, f"spec.{group}[{c}]")
            for p, port in enumerate(_list(raw, container.get("ports"), f"spec.{group}[{c}].ports")):
                where = f"spec.{group}[{c}].ports[{p}]"
                port = _dict(raw, port, where)
                ports.append(ContainerPort(_str(raw, port.get("name"), f"{where}.name"),
                                           _int(raw, port.get("containerPort"), f"{where}.containerPort", 1),
                                           _protocol(raw, port.get("protocol"), f"{where}.protocol")))
    ips = []
    for i, entry in enumerate(_list(raw, status.get("podIPs"), "status.podIPs")):
        entry = _dict(raw, entry, f"status.podIPs[{i}]")
        ip = _ip(raw, entry.get("ip"), f"status.podIPs[{i}].ip")
        if ip not in ips:
            ips.append(ip)
    if status.get("podIP"):
        ip = _ip(raw, status["podIP"], "status.podIP")
        if ip not in ips:
            ips.insert(0, ip)
    host_network = spec.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        raise raw.error("spec.hostNetwork", f"must be true or false, not {show(host_network)}")
    return Pod(ns, name, LabelSet.of(_map(raw, raw.metadata.get("labels"), "metadata.labels")),
               _str(raw, spec.get("nodeName"), "spec.nodeName"), tuple(ips), host_network, tuple(ports),
               _str(raw, status.get("phase"), "status.phase"))


def parse_service(raw: RawObject) -> Service:
    name = _need_name(raw)
    ns = need_namespace(raw)
    spec = _dict(raw, raw.body.get("spec"), "spec")
    status = _dict(raw, raw.body.get("status"), "status")
    cluster_ips = []
    for i, ip in enumerate([spec.get("clusterIP"), *_list(raw, spec.get("clusterIPs"), "spec.clusterIPs")]):
        if ip in (None, "", "None"):
            continue  # headless Services have no virtual IP
        ip = _ip(raw, ip, "spec.clusterIP" if i == 0 else f"spec.clusterIPs[{i - 1}]")
        if ip not in cluster_ips:
            cluster_ips.append(ip)
    external = [_ip(raw, ip, f"spec.externalIPs[{i}]")
                for i, ip in enumerate(_list(raw, spec.get("externalIPs"), "spec.externalIPs"))]
    lb = _dict(raw, status.get("loadBalancer"), "status.loadBalancer")
    for i, entry in enumerate(_list(raw, lb.get("ingress"), "status.loadBalancer.ingress")):
        entry = _dict(raw, entry, f"status.loadBalancer.ingress[{i}]")
        if entry.get("ip"):
            external.append(_ip(raw, entry["ip"], f"status.loadBalancer.ingress[{i}].ip"))
    ports = []
    for i, port in enumerate(_list(raw, spec.get("ports"), "spec.ports")):
        where = f"spec.ports[{i}]"
        port = _dict(raw, port, where)
        number = _int(raw, port.get("port"), f"{where}.port", 1)
        target = port.get("targetPort", number)
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if isinstance(target, bool) or not isinstance(target, (int, str)):
            raise raw.error(f"{where}.targetPort", f"must be a number or a port name, not {show(target)}")
        node_port = port.get("nodePort")
        ports.append(ServicePort(_str(raw, port.get("name"), f"{where}.name"),
                                 _protocol(raw, port.get("protocol"), f"{where}.protocol"), number, target,
                                 None if node_port is None else _int(raw, node_port, f"{where}.nodePort", 1)))
    selector = spec.get("selector")
    return Service(ns, name, _str(raw, spec.get("type"), "spec.type", "ClusterIP"), tuple(cluster_ips),
                   tuple(external), None if selector is None else _map(raw, selector, "spec.selector"), tuple(ports))


def parse_endpoints(raw: RawObject) -> list[EndpointSet]:
    name = _need_name(raw)
    ns = need_namespace(raw)
    out = []
    if raw.kind == "Endpoints":
        for s, subset in enumerate(_list(raw, raw.body.get("subsets"), "subsets")):
            subset = _dict(raw, subset, f"subsets[{s}]")
            addrs = [_ip(raw, _dict(raw, a, f"subsets[{s}].addresses[{i}]").get("ip"),
                         f"subsets[{s}].addresses[{i}].ip")
                     for i, a in enumerate(_list(raw, subset.get("addresses"), f"subsets[{s}].addresses"))]
            ports = [(p.get("name"), _int(raw, p.get("port"), f"subsets[{s}].ports[{i}].port", 1),
                      _protocol(raw, p.get("protocol"), f"subsets[{s}].ports[{i}].protocol"))
                     for i, p in enumerate(_list(raw, subset.get("ports"), f"subsets[{s}].ports"))
                     if isinstance(p, dict)]
            out.append(EndpointSet(ns, name, tuple(addrs), tuple(ports)))
        return out
    service = _map(raw, raw.metadata.get("labels"), "metadata.labels").get("kubernetes.io/service-name")
    if not service:
        return []
    addrs = []
    for e, ep in enumerate(_list(raw, raw.body.get("endpoints"), "endpoints")):
        ep = _dict(raw, ep, f"endpoints[{e}]")
        ready = _dict(raw, ep.get("conditions"), f"endpoints[{e}].conditions").get("ready", True)
        if ready is False:
            continue
        addrs += [_ip(raw, a, f"endpoints[{e}].addresses[{i}]")
                  for i, a in enumerate(_list(raw, ep.get("addresses"), f"endpoints[{e}].addresses"))]
    ports = [(p.get("name"), _int(raw, p.get("port"), f"ports[{i}].port", 1),
              _protocol(raw, p.get("protocol"), f"ports[{i}].protocol"))
             for i, p in enumerate(_list(raw, raw.body.get("ports"), "ports")) if isinstance(p, dict)
             and p.get("port") is not None]
    return [EndpointSet(ns, service, tuple(addrs), tuple(ports))]


@dataclass
class Cluster:
    """The cluster state; build it with ``load_cluster``."""

    namespaces: dict[str, Namespace] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    endpoints: list[EndpointSet] = field(default_factory=list)
    policies: list[NetworkPolicy] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)     # kind → objects of kinds tracer does not use
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the lookups after the object lists changed."""
        for pod in self.pods:
            self.namespace(pod.namespace)
        for pol in self.policies:
            self.namespace(pol.namespace)
        self._pods = {p.key: p for p in self.pods}
        self._nodes = {n.name: n for n in self.nodes}
        self._pods_by_ns: dict[str, list[Pod]] = {}
        for p in self.pods:
            self._pods_by_ns.setdefault(p.namespace, []).append(p)
        self._node_ips: dict[str, Node] = {}
        for n in self.nodes:
            for ip in n.addresses:
                self._node_ips.setdefault(ip, n)
        for n in self.nodes:
            for ip in n.cni_ips:   # after every InternalIP: a hint never takes an address from another node
                self._node_ips.setdefault(ip, n)
        self._pod_ips: dict[str, Pod] = {}
        self._host_ips: dict[str, Pod] = {}
        # Pods that have finished (Succeeded/Failed) keep their IP in the dump but it may have been reused.
        for p in sorted(self.pods, key=lambda p: p.phase in ("Succeeded", "Failed")):
            if p.host_network:
                for ip in p.ips:
                    self._host_ips.setdefault(ip, p)
                continue
            for ip in p.ips:
                self._pod_ips.setdefault(ip, p)
        self._services = {s.key: s for s in self.services}
        self._service_ips: dict[str, Service] = {}
        for s in self.services:
            for ip in (*s.cluster_ips, *s.external_ips):
                self._service_ips.setdefault(ip, s)
        self._node_ports: dict[tuple[int, str], Service] = {}
        for s in self.services:
            for p in s.ports:
                if p.node_port:
                    self._node_ports.setdefault((p.node_port, p.protocol), s)
        self._policies_by_ns: dict[str, list[NetworkPolicy]] = {}
        for pol in self.policies:
            self._policies_by_ns.setdefault(pol.namespace, []).append(pol)
        self._policies = {pol.key: pol for pol in self.policies}
        self._resolved: dict[str, Endpoint] = {}   # address text → Endpoint, as asked (packets repeat addresses)
        self.version = getattr(self, "version", 0) + 1

    # -- lookups -------------------------------------------------------------------------------------------------
    def namespace(self, name: str) -> Namespace:
        """The namespace, created with only its name label when the dump references but does not list it."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = Namespace(name, LabelSet.of({NAME_LABEL: name}))
        return ns

    def pod(self, namespace: str, name: str) -> Pod | None:
        return self._pods.get(f"{namespace}/{name}")

    def node(self, name: str) -> Node | None:
        return self._nodes.get(name)

    def pods_in(self, namespace: str) -> list[Pod]:
        return self._pods_by_ns.get(namespace, [])

    def policies_in(self, namespace: str) -> list[NetworkPolicy]:
        return self._policies_by_ns.get(namespace, [])

    def policy(self, key: str) -> NetworkPolicy | None:
        return self._policies.get(key)

    def service(self, key: str) -> Service | None:
        return self._services.get(key)

    # -- resolution ----------------------------------------------------------------------------------------------
    def resolve_ip(self, ip: str) -> Endpoint:
        """What ``ip`` is: pod, node (hostNetwork pods included), service, or external. ValueError if not an IP."""
        found = self._resolved.get(ip)
        if found is not None:
            return found
        if len(self._resolved) >= 1 << 20:
            self._resolved.clear()
        found = self._resolved[ip] = self._resolve_ip(ip)
        return found

    def _resolve_ip(self, ip: str) -> Endpoint:
        text, version, value = canonical_ip(ip)
        pod = self._pod_ips.get(text)
        if pod is not None:
            return Endpoint("pod", text, pod.namespace, pod.name, pod.node, pod, version=version, value=value,
                            ns_labels=self.namespace(pod.namespace).labels)
        node = self._node_ips.get(text)
        if node is not None:
            return Endpoint("node", text, None, node.name, node.name, version=version, value=value)
        host = self._host_ips.get(text)
        if host is not None:
            return Endpoint("node", text, host.namespace, host.name, host.node, host, host_network=True,
                            version=version, value=value)
        svc = self._service_ips.get(text)
        if svc is not None:
            return Endpoint("service", text, svc.namespace, svc.name, service=svc, version=version, value=value)
        return Endpoint("external", text, version=version, value=value)

    def resolve(self, ip: str, port: int | None = None, protocol: str = "TCP") -> Endpoint:
        """Like ``resolve_ip``, and a node address with a Service's NodePort resolves to that Service."""
        ep = self.resolve_ip(ip)
        if ep.kind == "node" and port is not None:
            svc = self._node_ports.get((int(port), protocol.upper()))
            if svc is not None:
                return Endpoint("service", ep.ip, svc.namespace, svc.name, ep.node, service=svc,
                                version=ep.version, value=ep.value)
        return ep

    def pod_endpoint(self, pod: Pod, version: int | None = None) -> Endpoint:
        """An Endpoint for a pod, using its address of IP ``version`` when it has one (dual-stack)."""
        ip = next((i for i in pod.ips if version is None or ipaddress.ip_address(i).version == version), None)
        if ip is None:
            ip = pod.ip
        text, ver, value = canonical_ip(ip) if ip else (None, 0, 0)
        if pod.host_network:
            return Endpoint("node", text, pod.namespace, pod.name, pod.node, pod, host_network=True,
                            version=ver, value=value)
        return Endpoint("pod", text, pod.namespace, pod.name, pod.node, pod, version=ver, value=value,
                        ns_labels=self.namespace(pod.namespace).labels)

    def endpoint(self, spec: str | Endpoint, version: int | None = None) -> Endpoint:
        """``NAMESPACE/POD`` or an IP address as an Endpoint; ClusterError naming what is unknown."""
        if isinstance(spec, Endpoint):
            return spec
        if not isinstance(spec, str) or not spec.strip():
            raise ClusterError(f"{show(spec)} is neither NAMESPACE/POD nor an IP address")
        spec = spec.strip()
        try:
            return self.resolve_ip(spec)
        except ValueError:
            pass
        if spec.count("/") != 1:
            raise ClusterError(f"{show(spec)} is neither NAMESPACE/POD nor an IP address")
        ns, name = spec.split("/")
        pod = self.pod(ns, name)
        if pod is None:
            known = ", ".join(p.key for p in self.pods_in(ns)[:5])
            hint = f" (pods in {ns}: {known})" if known else f" (no pods in namespace {show(ns)})"
            raise ClusterError(printable(f"no pod {spec} in the cluster state{hint}"))
        return self.pod_endpoint(pod, version)

    def service_backends(self, key: str) -> list[str]:
        """IP addresses of a Service's backends: from Endpoints/EndpointSlices, else its selector over pods."""
        svc = self._services.get(key)
        if svc is None:
            return []
        ips = [ip for es in self.endpoints if es.namespace == svc.namespace and es.service == svc.name
               for ip in es.addresses]
        if ips or any(es.namespace == svc.namespace and es.service == svc.name for es in self.endpoints):
            return list(dict.fromkeys(ips))
        if not svc.selector:
            return []
        return [p.ip for p in self.pods_in(svc.namespace) if p.ip and not p.host_network
                and p.phase not in ("Succeeded", "Failed")
                and all(p.label_map.get(k) == v for k, v in svc.selector.items())]

    def service_targets(self, svc: Service, port: int, protocol: str = "TCP",
                        node_port: bool = False) -> list[tuple[Endpoint, int]]:
        """(backend, target port) for a Service port: what kube-proxy DNATs to and NetworkPolicy judges."""
        sp = next((p for p in svc.ports if p.protocol == protocol.upper()
                   and (p.node_port if node_port else p.port) == port), None)
        if sp is None:
            return []
        out = []
        for ip in self.service_backends(svc.key):
            ep = self.resolve_ip(ip)
            target = sp.target_port
            if isinstance(target, str):
                target = ep.pod.named_port(target, sp.protocol) if ep.pod is not None else None
                if target is None:
                    continue
            out.append((ep, int(target)))
        return out

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {k}" for k, n in sorted(self.skipped.items()))
        return (f"{len(self.namespaces)} namespaces, {len(self.nodes)} nodes, {len(self.pods)} pods, "
                f"{len(self.services)} services, {len(self.policies)} network policies"
                + (f"; skipped {skipped}" if skipped else ""))


_PARSERS = {"Namespace": parse_namespace, "Node": parse_node, "Pod": parse_pod, "Service": parse_service,
            "NetworkPolicy": compile_policy}


def load_cluster(paths: list[str] | str) -> Cluster:
    """Read cluster state from files/directories; ClusterError naming file, object and field on bad input.

    An object given again (same kind, namespace and name) replaces the earlier one, as ``kubectl apply`` would:
    ``--cluster dump.yaml --cluster fixed-policy.yaml`` answers "what if I applied this fix?". Replacements are
    counted in ``cluster.skipped`` as ``replaced <Kind>``.
    """
    if isinstance(paths, str):
        paths = [paths]
    with paused_gc():   # hundreds of thousands of long-lived containers: see tracer.k8s.gcpause
        return _load(paths)


def _load(paths: list[str]) -> Cluster:
    objects: dict[tuple[str, str | None, str], Any] = {}
    skipped: Counter = Counter()
    files: list[str] = []
    for raw in read_objects([str(p) for p in paths]):
        if raw.file not in files:
            files.append(raw.file)
        kind = raw.body.get("kind")
        if not isinstance(kind, str):
            raise raw.error("kind", "missing (every Kubernetes object names its kind)")
        if kind not in USED_KINDS:
            skipped[kind] += 1
            continue
        api = raw.body.get("apiVersion")
        if kind == "NetworkPolicy" and api is not None and api != "networking.k8s.io/v1":
            raise raw.error("apiVersion", f"{show(api)}: only networking.k8s.io/v1 NetworkPolicy is understood")
        obj = parse_endpoints(raw) if kind in ("Endpoints", "EndpointSlice") else _PARSERS[kind](raw)
        ident = (kind, None if kind in ("Namespace", "Node") else (raw.namespace or "default"), raw.name)
        if ident in objects:
            skipped[f"replaced {kind}"] += 1
        objects[ident] = obj
    namespaces: dict[str, Namespace] = {}
    nodes, pods, services, endpoints, policies = [], [], [], [], []
    lists = {"Node": nodes, "Pod": pods, "Service": services, "NetworkPolicy": policies}
    for (kind, _, _), obj in objects.items():
        if kind == "Namespace":
            namespaces[obj.name] = obj
        elif kind in ("Endpoints", "EndpointSlice"):
            endpoints += obj
        else:
            lists[kind].append(obj)
    return Cluster(namespaces, nodes, pods, services, endpoints, policies, skipped, files)
