"""CNI path models: the ordered hops a packet crosses between two endpoints for each flannel/Calico mode.

A hop is a (node, role) pair, optionally pinned to one interface (the veth or cali of a known pod). The paths
are the ones the CNIs build (see the flannel and Calico docs):

- flannel VXLAN: pod eth0 → veth → cni0 → flannel.1 → eth0 ⇢ eth0 → flannel.1 → cni0 → veth → pod eth0
  (UDP 8472, VNI 1). host-gw: the same without flannel.1 (routed via the peer node IP). UDP backend: flannel0
  (a TUN device) in place of flannel.1, UDP 8285.
- Calico IPIP: pod eth0 → cali → tunl0 → eth0 ⇢ eth0 → tunl0 → cali → pod eth0 (IP protocol 4); CrossSubnet
  encapsulates only between nodes in different subnets, else it is BGP routing. Calico VXLAN: vxlan.calico,
  UDP 4789, VNI 4096. Calico BGP: pod eth0 → cali → eth0 ⇢ eth0 → cali → pod eth0.
- Same node: veth → cni0 → veth (flannel), cali → cali (Calico); never on eth0.
- Pod ↔ outside (node IPs, external hosts): the half of the path up to or from host eth0.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracer.hops import roles as R

FLANNEL_VXLAN = "flannel-vxlan"
FLANNEL_HOST_GW = "flannel-host-gw"
FLANNEL_UDP = "flannel-udp"
CALICO_IPIP = "calico-ipip"
CALICO_IPIP_CROSSSUBNET = "calico-ipip-crosssubnet"
CALICO_VXLAN = "calico-vxlan"
CALICO_BGP = "calico-bgp"

MODES = (FLANNEL_VXLAN, FLANNEL_HOST_GW, FLANNEL_UDP, CALICO_IPIP, CALICO_IPIP_CROSSSUBNET, CALICO_VXLAN,
         CALICO_BGP)
# Spellings accepted by --cni, as users and the CNIs' own config call the modes.
ALIASES = {
    "vxlan": FLANNEL_VXLAN, "flannel": FLANNEL_VXLAN, "flannel-vxlan": FLANNEL_VXLAN,
    "host-gw": FLANNEL_HOST_GW, "hostgw": FLANNEL_HOST_GW, "flannel-host-gw": FLANNEL_HOST_GW,
    "flannel-hostgw": FLANNEL_HOST_GW,
    "udp": FLANNEL_UDP, "flannel-udp": FLANNEL_UDP,
    "ipip": CALICO_IPIP, "calico": CALICO_IPIP, "calico-ipip": CALICO_IPIP, "calico-ipip-always": CALICO_IPIP,
    "crosssubnet": CALICO_IPIP_CROSSSUBNET, "calico-crosssubnet": CALICO_IPIP_CROSSSUBNET,
    "calico-ipip-crosssubnet": CALICO_IPIP_CROSSSUBNET,
    "calico-vxlan": CALICO_VXLAN, "bgp": CALICO_BGP, "calico-bgp": CALICO_BGP,
}

# What each mode puts on the wire between nodes: (encapsulation name, tunnel-device role or None).
_TUNNEL = {
    FLANNEL_VXLAN: ("vxlan", R.VXLAN_DEV),
    FLANNEL_HOST_GW: (None, None),
    FLANNEL_UDP: ("udp", R.TUN_DEV),
    CALICO_IPIP: ("ipip", R.IPIP_DEV),
    CALICO_IPIP_CROSSSUBNET: ("ipip", R.IPIP_DEV),
    CALICO_VXLAN: ("vxlan", R.VXLAN_DEV),
    CALICO_BGP: (None, None),
}
# Expected outer UDP port / VNI per VXLAN-style mode (used by detection and by hints).
# How the CNIs name their devices, for hops no capture point stands for: (role, calico?) → name.
DEVICE_NAMES = {
    (R.BRIDGE, False): "cni0", (R.BRIDGE, True): "cni0",
    (R.VXLAN_DEV, False): "flannel.1", (R.VXLAN_DEV, True): "vxlan.calico",
    (R.IPIP_DEV, False): "tunl0", (R.IPIP_DEV, True): "tunl0",
    (R.TUN_DEV, False): "flannel0", (R.TUN_DEV, True): "flannel0",
    (R.HOST_ETH0, False): "eth0", (R.HOST_ETH0, True): "eth0",
}
WIRE = {FLANNEL_VXLAN: (8472, 1), CALICO_VXLAN: (4789, 4096), FLANNEL_UDP: (8285, None)}


def normalise_mode(mode: str | None) -> str | None:
    """The canonical name of a ``--cni`` value, or None for None; unknown names raise ValueError."""
    if mode is None:
        return None
    key = mode.strip().lower().replace("_", "-")
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(f"unknown CNI mode {mode!r} (one of: {', '.join(MODES)})")


def is_calico(mode: str) -> bool:
    return mode.startswith("calico")


@dataclass(frozen=True)
class Hop:
    """One expected hop: on ``node`` (None when unknown), an interface of ``role``, pinned to ``iface`` if known.

    ``side`` is ``src`` for hops on the sending node and ``dst`` on the receiving node; ``encap`` names the
    encapsulation the packet carries at this hop (``vxlan``, ``ipip``, ``udp``) or None. ``observable`` is False
    for a hop a capture there would not show: a bridge forwarding between two of its ports (``tcpdump -i cni0``
    sees only what the bridge delivers to or sends from the host), so not seeing it there proves nothing.
    """

    node: str | None
    role: str
    iface: str | None = None
    side: str = "src"
    encap: str | None = None
    observable: bool = True


def expected_path(mode: str, src_node: str | None, dst_node: str | None, *, src_is_pod: bool = True,
                  dst_is_pod: bool = True, src_iface: str | None = None, dst_iface: str | None = None,
                  same_subnet: bool | None = None, src_is_node: bool = False,
                  dst_is_node: bool = False, src_pod_point: str | None = None,
                  dst_pod_point: str | None = None) -> list[Hop]:
    """The hops a packet crosses from a source to a destination endpoint under ``mode``.

    ``*_is_pod``: the endpoint is a pod (its path starts/ends at its eth0 and veth/cali); ``*_is_node``: it is a
    node's own address (host network), whose packets start/end in the host stack. Anything else is outside
    the cluster: the path ends/starts at the node's eth0. ``same_subnet`` matters only for Calico CrossSubnet.
    ``*_iface`` pin the pod's veth/cali hop to a capture point, ``*_pod_point`` its eth0 hop (``pod:NS/NAME``).
    """
    calico = is_calico(mode)
    pod_role = R.CALI if calico else R.VETH
    encap, tunnel = _TUNNEL[mode]
    if mode == CALICO_IPIP_CROSSSUBNET and same_subnet:
        encap, tunnel = None, None

    def pod_half(node: str | None, iface: str | None, side: str) -> list[Hop]:
        eth0 = src_pod_point if side == "src" else dst_pod_point
        hops = [Hop(node, R.POD_ETH0, eth0, side), Hop(node, pod_role, iface, side)]
        if not calico:
            hops.append(Hop(node, R.BRIDGE, None, side))
        return hops if side == "src" else hops[::-1]

    same_node = src_node is not None and src_node == dst_node
    if same_node:
        if src_is_pod and dst_is_pod:
            head = pod_half(src_node, src_iface, "src")
            tail = pod_half(dst_node, dst_iface, "dst")
            if not calico:
                # One bridge, veth → cni0 → veth, forwarded between ports: invisible on cni0 itself.
                head[-1] = Hop(src_node, R.BRIDGE, None, "src", None, observable=False)
                tail = tail[1:]
            return head + tail
        if src_is_pod:
            return pod_half(src_node, src_iface, "src")
        if dst_is_pod:
            return pod_half(dst_node, dst_iface, "dst")
        return [Hop(src_node, R.HOST_ETH0, None, "src")]

    pod_to_pod = (src_is_pod or src_is_node) and (dst_is_pod or dst_is_node)
    hops: list[Hop] = []
    if src_is_pod:
        hops += pod_half(src_node, src_iface, "src")
    if pod_to_pod and tunnel:
        hops.append(Hop(src_node, tunnel, None, "src"))
    hops.append(Hop(src_node, R.HOST_ETH0, None, "src", encap if pod_to_pod else None))
    if dst_node is None and not (dst_is_pod or dst_is_node):
        return hops   # to the outside world: the path ends where the packet leaves the node
    dst: list[Hop] = [Hop(dst_node, R.HOST_ETH0, None, "dst", encap if pod_to_pod else None)]
    if pod_to_pod and tunnel:
        dst.append(Hop(dst_node, tunnel, None, "dst"))
    if dst_is_pod:
        dst += pod_half(dst_node, dst_iface, "dst")
    if src_node is None and not (src_is_pod or src_is_node):
        return dst   # from the outside world: the path starts where the packet enters the node
    return hops + dst
