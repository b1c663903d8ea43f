"""What discovery finds on a node, as plain dataclasses, and what tracer derives from it.

``NodeInfo`` holds links (with kind and role), addresses, routes, VXLAN FDB entries, neighbours and flannel's
subnet.env. ``derive_mode`` names the CNI mode the way the hop-path engine does (``tracer.hops.models``);
``remote_subnets`` maps each remote pod subnet to the node IP that owns it, following what the kernel would do:
route → gateway (the peer's VTEP address) → neighbour entry (the peer's VTEP MAC) → FDB entry (the peer's node IP);
for host-gw and IP-in-IP the route's gateway is the node IP itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field

# Roles use the hop-path engine's names (tracer.hops.roles) so live captures line up with its models.
POD_ETH0, VETH, CALI, BRIDGE = "pod-eth0", "veth", "cali", "bridge"
VXLAN_DEV, IPIP_DEV, TUN_DEV, HOST_ETH0 = "vxlan-device", "ipip-device", "tun-device", "host-eth0"
LOOPBACK, OTHER = "loopback", "other"
# Roles whose interfaces a live capture without --iface should listen on.
CNI_ROLES = (VETH, CALI, BRIDGE, VXLAN_DEV, IPIP_DEV, TUN_DEV, HOST_ETH0)


@dataclass
class Link:
    """One network interface: kind from the kernel (IFLA_INFO_KIND), role in the CNI's path."""

    index: int
    name: str
    kind: str                 # vxlan, bridge, veth, ipip, tun, device (no kind: a physical NIC), ...
    role: str
    mac: str | None
    mtu: int | None
    state: str | None
    master: str | None = None                # bridge this link is a port of
    addresses: list[str] = field(default_factory=list)   # "10.244.0.1/24"
    vxlan: dict | None = None     # {"vni", "port", "local", "learning", "link"}
    ports: list[str] | None = None          # a bridge's ports
    peer_index: int | None = None           # veth: the peer's ifindex (in peer_netns when set)
    peer_netns_id: int | None = None
    peer_netns: str | None = None           # the peer's namespace name, when it is a named one


@dataclass
class Route:
    dst: str                  # "10.244.1.0/24", "default"
    gateway: str | None
    dev: str | None
    onlink: bool = False
    type: str = "unicast"     # unicast, blackhole, local, ...
    scope: str = "universe"


@dataclass
class FdbEntry:
    """A VXLAN forwarding entry: a remote VTEP MAC and the node IP its frames are sent to."""

    dev: str
    mac: str
    dst: str | None
    permanent: bool


@dataclass
class Neighbour:
    dev: str
    ip: str
    mac: str | None
    state: str


@dataclass
class NodeInfo:
    """Everything discovery saw on one node (one network namespace)."""

    hostname: str
    netns: str | None
    links: list[Link]
    routes: list[Route]
    fdb: list[FdbEntry]
    neighbours: list[Neighbour]
    flannel_env: dict[str, str] | None = None

    def link(self, name: str) -> Link | None:
        return next((l for l in self.links if l.name == name), None)

    @property
    def mode(self) -> str | None:
        return derive_mode(self)

    @property
    def subnet_map(self) -> dict[str, str]:
        return remote_subnets(self)

    def cni_interfaces(self) -> list[Link]:
        """The interfaces on a packet's path through this node's CNI (what ``tracer live`` picks by default)."""
        return [l for l in self.links if l.role in CNI_ROLES and l.state != "down"]

    def node_ips(self) -> list[str]:
        return [a.split("/")[0] for l in self.links if l.role == HOST_ETH0 for a in l.addresses]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mode"] = self.mode
        d["remote_subnets"] = self.subnet_map
        return d


def role_for(name: str, kind: str, vxlan: dict | None = None, underlay: set[str] | None = None,
             peer_netns: bool = False) -> str:
    """The role of a link from its kind and name.

    Calico's host-side veths are ``cali*``; the bridge plugin's are ``veth*``; any other veth whose peer lives in
    another namespace is treated as a pod veth too. The underlay is the device that carries the default route or
    that a tunnel is bound to; a veth that *is* the underlay (a lab node's eth0) is the host's eth0.
    """
    if name == "lo":
        return LOOPBACK
    if underlay and name in underlay:
        return HOST_ETH0
    if kind == "vxlan":
        return VXLAN_DEV
    if kind == "ipip":
        return IPIP_DEV
    if kind == "tun" and name.startswith("flannel"):
        return TUN_DEV
    if kind == "bridge":
        return BRIDGE
    if kind == "veth":
        if name.startswith("cali"):
            return CALI
        if name == "eth0" or not peer_netns and not name.startswith("veth"):
            return POD_ETH0 if name == "eth0" else OTHER
        return VETH
    if kind == "device" and name.startswith(("eth", "ens", "enp", "eno", "bond", "em")):
        return HOST_ETH0
    return OTHER


def derive_mode(info: NodeInfo) -> str | None:
    """The CNI mode this node runs, from its devices and routes (hop-path engine names), or None."""
    kinds = {l.name: l for l in info.links}
    for l in info.links:
        if l.kind == "vxlan" and l.vxlan:
            if l.name == "vxlan.calico" or l.vxlan.get("vni") == 4096:
                return "calico-vxlan"
            if l.name.startswith("flannel") or l.vxlan.get("port") == 8472:
                return "flannel-vxlan"
    tunl = kinds.get("tunl0")
    if tunl and tunl.kind == "ipip" and any(r.dev == "tunl0" for r in info.routes):
        return "calico-ipip"
    if any(l.role == TUN_DEV for l in info.links):
        return "flannel-udp"
    cali = any(l.role == CALI for l in info.links)
    if cali:
        return "calico-bgp"
    if kinds.get("cni0") or kinds.get("cbr0"):
        if remote_subnets(info):
            return "flannel-host-gw"
        return "flannel-host-gw" if info.flannel_env else None
    return None


def _pod_networks(info: NodeInfo) -> list[ipaddress.IPv4Network]:
    nets = []
    if info.flannel_env and info.flannel_env.get("FLANNEL_NETWORK"):
        try:
            nets.append(ipaddress.ip_network(info.flannel_env["FLANNEL_NETWORK"], strict=False))
        except ValueError:
            pass
    return nets


def remote_subnets(info: NodeInfo) -> dict[str, str]:
    """Remote pod subnet → the node IP that owns it, from routes, neighbours and the VXLAN FDB."""
    by_name = {l.name: l for l in info.links}
    neigh = {(n.dev, n.ip): n.mac for n in info.neighbours if n.mac}
    fdb = {(f.dev, f.mac): f.dst for f in info.fdb if f.dst}
    underlay_nets = []
    for l in info.links:
        if l.role == HOST_ETH0:
            for a in l.addresses:
                underlay_nets.append(ipaddress.ip_interface(a).network)
    pod_nets = _pod_networks(info)
    out: dict[str, str] = {}
    for r in info.routes:
        if r.dst == "default" or r.type != "unicast" or not r.gateway or not r.dev:
            continue
        link = by_name.get(r.dev)
        if link is None:
            continue
        if link.role == VXLAN_DEV:
            mac = neigh.get((r.dev, r.gateway))
            node = fdb.get((r.dev, mac)) if mac else None
            if node:
                out[r.dst] = node
        elif link.role == IPIP_DEV:
            out[r.dst] = r.gateway
        elif link.role == HOST_ETH0:
            # host-gw / Calico BGP: a pod subnet routed straight to a peer node on the underlay.
            gw = ipaddress.ip_address(r.gateway)
            dst = ipaddress.ip_network(r.dst, strict=False)
            if any(gw in n for n in underlay_nets) and not any(dst.overlaps(n) for n in underlay_nets):
                if not pod_nets or any(dst.subnet_of(p) for p in pod_nets if p.version == dst.version):
                    out[r.dst] = r.gateway
    return out
