"""The lab's address plan and workloads: which nodes, pods, Services and NetworkPolicy a lab mode builds.

Everything here is pure data computed from ``(mode, nodes)``; ``tracer.lab.build`` turns it into network
namespaces. The plan follows the tutorial: nodes on a shared underlay (172.31.7.0/24, like the tutorial's
172.31.7.111-113), namespaces ``linux`` and ``python`` each with an nginx and a tomcat pod, a ``test`` pod in
``default`` and CoreDNS in ``kube-system``, spread over the nodes so nginx → tomcat crosses nodes; Services as
kube-proxy programs them (ClusterIPs in 10.96.0.0/12, NodePorts 30008 for linux/nginx and 30014 for
python/nginx).

Every network namespace and every link outside a lab namespace starts with ``PREFIX`` so that ``tracer lab down``
can remove exactly what the lab made and nothing else.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import asdict, dataclass, field

PREFIX = "trl-"
WIRE_NS = PREFIX + "wire"          # the underlay switch (a bridge) lives in its own namespace
WIRE_BRIDGE = PREFIX + "ul0"
CLIENT_NS = PREFIX + "client"      # an outside user on the underlay, reaching the NodePorts
UNDERLAY = ipaddress.ip_network("172.31.7.0/24")
CLIENT_IP = "172.31.7.100"
ROUTER_IP = "172.31.7.1"          # the underlay's default gateway (also held by the client namespace)
NODE_IP_BASE = 111                 # node1 = 172.31.7.111, as in the tutorial

FLANNEL_VXLAN = "flannel-vxlan"
HOST_GW = "host-gw"
CALICO_VXLAN = "calico-vxlan"
CALICO_IPIP = "calico-ipip"
CALICO_BGP = "calico-bgp"
MODES = (FLANNEL_VXLAN, HOST_GW, CALICO_VXLAN, CALICO_IPIP, CALICO_BGP)
# The hop-path engine's names for the same modes (tracer.hops.models).
CNI_MODE = {FLANNEL_VXLAN: "flannel-vxlan", HOST_GW: "flannel-host-gw", CALICO_VXLAN: "calico-vxlan",
            CALICO_IPIP: "calico-ipip", CALICO_BGP: "calico-bgp"}
MODE_ALIASES = {"flannel-host-gw": HOST_GW, "flannel": FLANNEL_VXLAN, "calico": CALICO_VXLAN}

FLANNEL_VNI, FLANNEL_PORT = 1, 8472      # flannel's vxlan backend defaults (VNI 1, the Linux port 8472)
CALICO_VNI, CALICO_PORT = 4096, 4789     # Calico's vxlan.calico defaults (VNI 4096, the IANA port 4789)
CALI_HOST_MAC = "ee:ee:ee:ee:ee:ee"      # Calico gives every host-side cali veth this MAC
CALICO_GW = "169.254.1.1"                # Calico pods' default gateway, answered by proxy ARP
OVERLAY_MTU = 1450                       # 1500 minus the 50-byte VXLAN overhead
CLUSTER_CIDR = "10.244.0.0/16"


@dataclass
class PodPlan:
    """One pod: its Kubernetes identity, where it runs, its addresses and what it serves."""

    namespace: str
    name: str
    app: str
    node: str
    ip: str
    mac: str
    netns: str
    host_iface: str            # host side of the pod's veth (vethXXXXXXXX or caliXXXXXXXXXXX)
    ports: list[dict] = field(default_factory=list)   # containerPorts: name, containerPort, protocol

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class NodePlan:
    """One node: its namespace, underlay address and the pod subnet it owns."""

    name: str
    index: int
    netns: str
    ip: str
    mac: str
    pod_cidr: str              # Node spec.podCIDR
    gateway_ip: str            # cni0 address (flannel) or the tunnel address (Calico)
    tunnel_ip: str | None      # flannel.1 / vxlan.calico address (the subnet's .0), None for host-gw
    tunnel_mac: str | None     # the VTEP MAC
    wire_port: str             # the node's port on the underlay switch


@dataclass
class ServicePlan:
    """A Service as kube-proxy (iptables mode) programs it."""

    namespace: str
    name: str
    cluster_ip: str
    port: int
    target_port: int
    protocol: str
    selector: dict
    node_port: int | None = None
    port_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class LabPlan:
    """Everything one lab is made of; saved as the lab's state so later commands find it again."""

    mode: str
    nodes: list[NodePlan]
    pods: list[PodPlan]
    services: list[ServicePlan]
    pids: list[int] = field(default_factory=list)
    policy: dict | None = None        # the applied deny, see tracer.lab.policy

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def pod(self, key: str) -> PodPlan:
        """A pod by ``ns/name``, by name, or by ``ns/app`` (``linux/nginx``)."""
        for p in self.pods:
            if key in (p.key, p.name, f"{p.namespace}/{p.app}"):
                return p
        raise KeyError(key)

    def service(self, key: str) -> ServicePlan:
        for s in self.services:
            if key in (s.key, s.name):
                return s
        raise KeyError(key)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LabPlan:
        return cls(mode=d["mode"], nodes=[NodePlan(**n) for n in d["nodes"]],
                   pods=[PodPlan(**p) for p in d["pods"]], services=[ServicePlan(**s) for s in d["services"]],
                   pids=list(d.get("pids", [])), policy=d.get("policy"))


def _hex(*parts: str, n: int) -> str:
    """A deterministic hex suffix, like the random ones CNI plugins and ReplicaSets give."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _pod_name(app: str, ns: str) -> str:
    h = hashlib.sha256(f"{ns}/{app}".encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"   # the alphabet Kubernetes uses for generated names
    rs = "".join(alphabet[int(h[i:i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))
    return f"{app}-{rs[:10]}-{rs[5:10]}" if app not in ("test",) else app


def _mac(prefix: bytes, key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    raw = prefix + digest[: 6 - len(prefix)]
    return ":".join(f"{b:02x}" for b in raw)


# (namespace, app, node number for 2 nodes, for 3 nodes, ports) — nginx → tomcat crosses nodes in both
# namespaces; test and linux/nginx share node1 (same-node traffic); CoreDNS is on the last node.
_WORKLOADS = (
    ("linux", "nginx", 1, 1, [("http", 80, "TCP")]),
    ("linux", "tomcat", 2, 2, [("http", 8080, "TCP")]),
    ("python", "nginx", 2, 3, [("http", 80, "TCP")]),
    ("python", "tomcat", 1, 1, [("http", 8080, "TCP")]),
    ("default", "test", 1, 1, []),
    ("kube-system", "coredns", 2, 3, [("dns", 53, "UDP"), ("echo", 7, "UDP")]),
)

# (namespace, name, ClusterIP, port, targetPort, protocol, NodePort, selector app)
_SERVICES = (
    ("linux", "nginx", "10.96.100.10", 80, 80, "TCP", 30008, "nginx"),
    ("linux", "tomcat", "10.96.100.11", 8080, 8080, "TCP", None, "tomcat"),
    ("python", "nginx", "10.96.200.10", 80, 80, "TCP", 30014, "nginx"),
    ("python", "tomcat", "10.96.200.11", 8080, 8080, "TCP", None, "tomcat"),
    ("kube-system", "kube-dns", "10.96.0.10", 53, 53, "UDP", None, "coredns"),
)


def canonical_mode(mode: str) -> str:
    """The lab mode for a user's spelling (``flannel-host-gw`` is ``host-gw``)."""
    mode = MODE_ALIASES.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"unknown lab mode {mode!r} (one of: {', '.join(MODES)})")
    return mode


def make_plan(mode: str, nodes: int = 2) -> LabPlan:
    """The full plan for ``mode`` on ``nodes`` nodes (2 or 3); deterministic, so captures are reproducible."""
    mode = canonical_mode(mode)
    if nodes not in (2, 3):
        raise ValueError("the lab has 2 or 3 nodes")
    calico = mode.startswith("calico")
    node_plans = []
    for i in range(nodes):
        name = f"node{i + 1}"
        if calico:
            # Calico IPAM hands each node a /26 block; the Node's podCIDR (from kube-controller-manager) is
            # a /24 that Calico ignores. We keep both inside 10.244.128+i.0/24 so the map stays readable.
            block = ipaddress.ip_network(f"10.244.{128 + i}.0/26")
            pod_cidr = f"10.244.{128 + i}.0/24"
            tunnel_ip = str(block.network_address)
            gw = CALICO_GW
        else:
            pod_cidr = f"10.244.{i}.0/24"
            tunnel_ip = f"10.244.{i}.0" if mode == FLANNEL_VXLAN else None
            gw = f"10.244.{i}.1"
        has_vtep = mode in (FLANNEL_VXLAN, CALICO_VXLAN)
        node_plans.append(NodePlan(
            name=name, index=i, netns=f"{PREFIX}{name}", ip=f"172.31.7.{NODE_IP_BASE + i}",
            mac=_mac(b"\x06\x1f", f"{name}/eth0"), pod_cidr=pod_cidr, gateway_ip=gw,
            tunnel_ip=tunnel_ip if (has_vtep or mode == CALICO_IPIP) else None,
            tunnel_mac=_mac(b"\x5a", f"{mode}/{name}/vtep") if has_vtep else None,
            wire_port=f"{PREFIX}{name}",
        ))
    pods = []
    next_host = {n.name: 2 for n in node_plans}
    for ns, app, n2, n3, ports in _WORKLOADS:
        node = node_plans[(n2 if nodes == 2 else n3) - 1]
        host = next_host[node.name]
        next_host[node.name] += 1
        base = ipaddress.ip_network(node.pod_cidr).network_address
        ip = str(base + host)
        name = _pod_name(app, ns)
        if calico:
            host_iface = "cali" + _hex(ns, name, n=11)   # Calico: "cali" + 11 hex of the workload endpoint
        else:
            host_iface = "veth" + _hex(ns, name, n=8)    # the bridge plugin: "veth" + 8 hex
        # The bridge plugin derives the pod MAC from its IP (0a:58 + IPv4), which makes hops easy to read.
        mac = "0a:58:" + ":".join(f"{int(o):02x}" for o in ip.split("."))
        pods.append(PodPlan(
            namespace=ns, name=name, app=app, node=node.name, ip=ip, mac=mac,
            netns=f"{PREFIX}pod-{ns}-{app}", host_iface=host_iface,
            ports=[{"name": pn, "containerPort": p, "protocol": proto} for pn, p, proto in ports],
        ))
    services = [ServicePlan(namespace=ns, name=name, cluster_ip=cip, port=port, target_port=tport, protocol=proto,
                            node_port=np_, selector={"app": app}, port_name="dns" if proto == "UDP" else "http")
                for ns, name, cip, port, tport, proto, np_, app in _SERVICES]
    return LabPlan(mode=mode, nodes=node_plans, pods=pods, services=services)


def backends(plan: LabPlan, svc: ServicePlan) -> list[PodPlan]:
    """The pods a Service selects (same namespace, every selector label matches)."""
    return [p for p in plan.pods if p.namespace == svc.namespace and p.app == svc.selector.get("app")]
