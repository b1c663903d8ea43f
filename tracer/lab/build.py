"""Build and tear down a lab topology in network namespaces with pyroute2, programmed as the CNI would.

``up(plan)`` makes: a switch namespace (``trl-wire``, bridge ``trl-ul0``) that is the underlay; one namespace per
node with ``eth0`` on that switch; one namespace per pod with ``eth0`` paired to the node's ``vethXXXXXXXX``
(flannel, in the ``cni0`` bridge) or ``caliXXXXXXXXXXX`` (Calico, routed with proxy ARP); the overlay device and
its routes, neighbours and FDB entries exactly as flanneld / Felix program them; an outside client namespace on the
underlay. kube-proxy's rules and the pods' servers are added by ``tracer.lab.kubeproxy`` and
``tracer.lab.workloads``. ``down()`` removes every namespace with the lab prefix and the processes inside them.
"""

from __future__ import annotations

import ipaddress
import os
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tracer.errors import TracerError
from tracer.lab import netns
from tracer.lab.plan import (CALI_HOST_MAC, CALICO_BGP, CALICO_GW, CALICO_IPIP, CALICO_PORT, CALICO_VNI, CALICO_VXLAN,
                             CLIENT_IP, CLIENT_NS, ROUTER_IP, FLANNEL_PORT, FLANNEL_VNI, FLANNEL_VXLAN, OVERLAY_MTU, UNDERLAY,
                             WIRE_BRIDGE, WIRE_NS, LabPlan, NodePlan, PodPlan)


# RTNH_F_ONLINK: the gateway is on the link even though no address of ours covers it (flannel's "onlink").
RTNH_F_ONLINK = 4


class LabError(TracerError):
    """The lab cannot be built or used here (not root, missing kernel feature, not up)."""


@contextmanager
def rtnl(name: str | None):
    """An IPRoute socket inside namespace ``name`` (None: the current one); never creates a namespace."""
    ipr = IPRoute(netns=name, flags=0) if name else IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _idx(ipr: IPRoute, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LabError(f"lab interface {ifname} is missing")
    return found[0]


def _up(ipr: IPRoute, ifname: str, **kw) -> int:
    i = _idx(ipr, ifname)
    ipr.link("set", index=i, state="up", **kw)
    return i


def kernel_has_ipip() -> bool:
    """Whether this kernel can make an IP-in-IP tunnel (tried in a throw-away namespace)."""
    probe = "trl-probe-ipip"
    netns.create(probe)
    try:
        with rtnl(probe) as ipr:
            ipr.link("add", ifname="tunl-probe", kind="ipip")
        return True
    except NetlinkError:
        return False
    finally:
        netns.remove(probe)


def check_mode(mode: str) -> None:
    """Refuse a mode this kernel cannot build, before anything is touched."""
    if mode == CALICO_IPIP and not kernel_has_ipip():
        raise LabError("calico-ipip needs the kernel's ipip module, which this kernel lacks (creating an ipip "
                       "link fails); use calico-vxlan, or open the synthesized capture in captures/calico-ipip/")


def up(plan: LabPlan) -> None:
    """Build the whole topology of ``plan`` (the namespaces must not exist yet)."""
    check_mode(plan.mode)
    _wire()
    for node in plan.nodes:
        _node(plan, node)
    _client()
    for pod in plan.pods:
        _pod(plan, pod)
    for node in plan.nodes:
        _overlay(plan, node)


def _new_ns(name: str) -> None:
    """A fresh namespace without IPv6, so router solicitations and DAD do not clutter the captures."""
    netns.create(name)
    netns.sysctl(name, "net.ipv6.conf.all.disable_ipv6", 1)
    netns.sysctl(name, "net.ipv6.conf.default.disable_ipv6", 1)


def _wire() -> None:
    _new_ns(WIRE_NS)
    with rtnl(WIRE_NS) as ipr:
        ipr.link("add", ifname=WIRE_BRIDGE, kind="bridge")
        _up(ipr, WIRE_BRIDGE)
        _up(ipr, "lo")


def _plug(ns: str, port: str, mac: str, ip: str, *, extra_ip: str | None = None,
          gateway: str | None = None) -> None:
    """A veth from the underlay switch into ``ns`` where it is called eth0, with ``ip``/24 on it."""
    with rtnl(WIRE_NS) as ipr:
        ipr.link("add", ifname=port, kind="veth", peer={"ifname": "eth0", "net_ns_fd": netns.path(ns)})
        _up(ipr, port, master=_idx(ipr, WIRE_BRIDGE))
    with rtnl(ns) as ipr:
        i = _idx(ipr, "eth0")
        ipr.link("set", index=i, address=mac)
        ipr.addr("add", index=i, address=ip, prefixlen=UNDERLAY.prefixlen)
        if extra_ip:
            ipr.addr("add", index=i, address=extra_ip, prefixlen=UNDERLAY.prefixlen)
        _up(ipr, "eth0")
        _up(ipr, "lo")
        if gateway:
            ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=i)


def _node(plan: LabPlan, node: NodePlan) -> None:
    _new_ns(node.netns)
    # A real node has a default route; Calico's proxy ARP for 169.254.1.1 only answers when one exists.
    _plug(node.netns, node.wire_port, node.mac, node.ip, gateway=ROUTER_IP)
    netns.sysctl(node.netns, "net.ipv4.ip_forward", 1)
    if plan.mode in (FLANNEL_VXLAN, "host-gw"):
        with rtnl(node.netns) as ipr:
            # The bridge plugin's cni0: the pods' gateway, holding the subnet's .1.
            ipr.link("add", ifname="cni0", kind="bridge")
            i = _idx(ipr, "cni0")
            ipr.link("set", index=i, address="e6:" + node.mac[3:], mtu=_pod_mtu(plan))
            ipr.addr("add", index=i, address=node.gateway_ip,
                     prefixlen=ipaddress.ip_network(node.pod_cidr).prefixlen)
            _up(ipr, "cni0")
        # kube-proxy needs bridged traffic to cross iptables (br_netfilter), or same-node Service replies
        # skip the un-DNAT; kubeadm's preflight insists on the same setting.
        try:
            netns.sysctl(node.netns, "net.bridge.bridge-nf-call-iptables", 1)
        except OSError:
            pass


def _pod_mtu(plan: LabPlan) -> int:
    return OVERLAY_MTU if plan.mode in (FLANNEL_VXLAN, CALICO_VXLAN) else 1500


def _client() -> None:
    _new_ns(CLIENT_NS)
    _plug(CLIENT_NS, CLIENT_NS, "02:00:00:00:01:00", CLIENT_IP, extra_ip=ROUTER_IP)


def _pod(plan: LabPlan, pod: PodPlan) -> None:
    node = plan.node(pod.node)
    _new_ns(pod.netns)
    calico = plan.mode.startswith("calico")
    with rtnl(node.netns) as ipr:
        ipr.link("add", ifname=pod.host_iface, kind="veth",
                 peer={"ifname": "eth0", "net_ns_fd": netns.path(pod.netns)})
        i = _idx(ipr, pod.host_iface)
        if calico:
            # Felix: every cali veth has the same MAC, answers ARP for anything (proxy ARP) and is the
            # route to exactly one pod IP (/32, scope link).
            ipr.link("set", index=i, address=CALI_HOST_MAC, mtu=_pod_mtu(plan))
            _up(ipr, pod.host_iface)
            ipr.route("add", dst=f"{pod.ip}/32", oif=i, scope=253)
        else:
            ipr.link("set", index=i, mtu=_pod_mtu(plan))
            _up(ipr, pod.host_iface, master=_idx(ipr, "cni0"))
    if calico:
        netns.sysctl_path(node.netns, f"net/ipv4/conf/{pod.host_iface}/proxy_arp", 1)
        netns.sysctl_path(node.netns, f"net/ipv4/neigh/{pod.host_iface}/proxy_delay", 0)
        netns.sysctl_path(node.netns, f"net/ipv4/conf/{pod.host_iface}/forwarding", 1)
    with rtnl(pod.netns) as ipr:
        i = _idx(ipr, "eth0")
        ipr.link("set", index=i, address=pod.mac, mtu=_pod_mtu(plan))
        _up(ipr, "eth0")
        _up(ipr, "lo")
        if calico:
            ipr.addr("add", index=i, address=pod.ip, prefixlen=32)
            ipr.route("add", dst=f"{CALICO_GW}/32", oif=i, scope=253)
            ipr.route("add", dst="0.0.0.0/0", gateway=CALICO_GW, oif=i)
        else:
            ipr.addr("add", index=i, address=pod.ip, prefixlen=ipaddress.ip_network(node.pod_cidr).prefixlen)
            ipr.route("add", dst="0.0.0.0/0", gateway=node.gateway_ip, oif=i)


def _overlay(plan: LabPlan, node: NodePlan) -> None:
    peers = [p for p in plan.nodes if p.name != node.name]
    with rtnl(node.netns) as ipr:
        eth0 = _idx(ipr, "eth0")
        if plan.mode == "host-gw":
            # flannel host-gw: the peer's pod subnet is reached through the peer node's own IP.
            for p in peers:
                ipr.route("add", dst=p.pod_cidr, gateway=p.ip, oif=eth0)
            return
        if plan.mode in (FLANNEL_VXLAN, CALICO_VXLAN):
            dev, vni, port = (("flannel.1", FLANNEL_VNI, FLANNEL_PORT) if plan.mode == FLANNEL_VXLAN
                              else ("vxlan.calico", CALICO_VNI, CALICO_PORT))
            # flanneld and Felix both create the device with learning off and program every peer statically.
            ipr.link("add", ifname=dev, kind="vxlan", vxlan_id=vni, vxlan_port=port, vxlan_local=node.ip,
                     vxlan_link=eth0, vxlan_learning=0, vxlan_udp_csum=0, address=node.tunnel_mac, mtu=OVERLAY_MTU)
            vx = _up(ipr, dev)
            ipr.addr("add", index=vx, address=node.tunnel_ip, prefixlen=32)
            for p in peers:
                # flannel: "10.244.M.0/24 via 10.244.M.0 dev flannel.1 onlink"; Calico the same per /26 block.
                dst = p.pod_cidr if plan.mode == FLANNEL_VXLAN else f"{p.tunnel_ip}/26"
                ipr.route("add", dst=dst, gateway=p.tunnel_ip, oif=vx, flags=RTNH_F_ONLINK)
                ipr.neigh("add", dst=p.tunnel_ip, lladdr=p.tunnel_mac, ifindex=vx, state=0x80)   # PERMANENT
                ipr.fdb("add", ifindex=vx, lladdr=p.tunnel_mac, dst=p.ip)
            if plan.mode == CALICO_VXLAN:
                ipr.route("add", dst=f"{node.tunnel_ip}/26", type="blackhole")
            return
        if plan.mode == CALICO_BGP:
            # Calico BGP (no encapsulation): BIRD learns each peer's block and routes it via the peer node's IP.
            own = ipaddress.ip_network(node.pod_cidr).network_address
            for p in peers:
                block = ipaddress.ip_network(p.pod_cidr).network_address
                ipr.route("add", dst=f"{block}/26", gateway=p.ip, oif=eth0, proto=12)   # RTPROT_BIRD
            ipr.route("add", dst=f"{own}/26", type="blackhole", proto=12)
            return
        if plan.mode == CALICO_IPIP:
            ipr.link("add", ifname="tunl0", kind="ipip")
            tun = _up(ipr, "tunl0", mtu=1480)
            ipr.addr("add", index=tun, address=node.tunnel_ip, prefixlen=32)
            for p in peers:
                ipr.route("add", dst=f"{p.tunnel_ip}/26", gateway=p.ip, oif=tun, flags=RTNH_F_ONLINK)
            ipr.route("add", dst=f"{node.tunnel_ip}/26", type="blackhole")


def down() -> list[str]:
    """Remove every lab namespace and stop every process inside them; returns the namespaces removed."""
    names = netns.ours()
    netns.kill(netns.pids_inside(names))
    for name in names:
        try:
            netns.remove(name)
        except OSError:
            pass
    return names


def check_root() -> None:
    """The lab makes namespaces and links: it needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root to create network namespaces: run it with sudo")
