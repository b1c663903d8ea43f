"""Capture-point names and interface roles: what a point is in the CNI's path.

A capture point is ``NODE/IFACE`` or ``pod:NAMESPACE/NAME`` (see the capture core's naming rules); an unqualified
interface name is a point on an unknown node. ``role_of_iface`` maps an interface name to its role by the names
flannel, Calico and Linux give their devices; ``infer_roles`` looks at what a point carries when its name says
nothing (a single unnamed capture) and marks the answer ``inferred``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Roles, in the order a packet leaving a pod meets them.
POD_ETH0 = "pod-eth0"
VETH = "veth"            # host side of a pod's veth pair (flannel bridge plugin)
CALI = "cali"            # host side of a pod's veth pair (Calico)
BRIDGE = "bridge"        # cni0 / cbr0
VXLAN_DEV = "vxlan-device"   # flannel.1 / vxlan.calico
IPIP_DEV = "ipip-device"     # tunl0
TUN_DEV = "tun-device"       # flannel0 (flannel UDP backend)
HOST_ETH0 = "host-eth0"      # the node's underlay interface
UNKNOWN = "unknown"

ROLES = (POD_ETH0, VETH, CALI, BRIDGE, VXLAN_DEV, IPIP_DEV, TUN_DEV, HOST_ETH0, UNKNOWN)
ROLE_CODE = {r: i for i, r in enumerate(ROLES)}
# Roles of the host side of a pod's interface: where a pod's own IP and MAC show up unencapsulated.
POD_SIDE = (VETH, CALI)

_NAME_RULES = (
    (re.compile(r"^veth[0-9a-z]*$", re.I), VETH),
    (re.compile(r"^cali[0-9a-z]*$", re.I), CALI),
    (re.compile(r"^(cni0|cbr0|docker0|br-[0-9a-f]+)$"), BRIDGE),
    (re.compile(r"^(flannel\.\d+|vxlan\.calico|vxlan[-.]?v?\d*)$"), VXLAN_DEV),
    (re.compile(r"^tunl\d+$"), IPIP_DEV),
    (re.compile(r"^flannel\d+$"), TUN_DEV),
    (re.compile(r"^(eth\d+|ens\w*|enp\w*|eno\w*|bond\w*|em\d+)$"), HOST_ETH0),
)


@dataclass(frozen=True)
class Point:
    """A capture point split into its parts: ``node`` and ``iface`` (or ``pod`` for ``pod:NS/NAME``)."""

    name: str
    node: str | None
    iface: str | None
    pod: str | None = None


def parse_point(name: str | None, node: str | None = None, iface: str | None = None) -> Point:
    """Split a capture point name; ``node``/``iface`` from the capture core fill what the name leaves out."""
    if not name:
        return Point(name or (iface or ""), node, iface)
    if name.startswith("pod:"):
        return Point(name, node, "eth0", pod=name[4:])
    if "/" in name:
        n, _, i = name.partition("/")
        return Point(name, n or node, i or iface)
    return Point(name, node, name if iface is None else iface)


def role_of_iface(iface: str | None) -> str | None:
    """The role an interface name announces (``veth1a2b`` → veth, ``flannel.1`` → vxlan-device), or None."""
    if not iface:
        return None
    for pattern, role in _NAME_RULES:
        if pattern.match(iface):
            return role
    return None


def role_of_point(point: Point) -> str | None:
    """The role of a named point: ``pod:NS/NAME`` is the pod's own eth0; else by interface name."""
    if point.pod is not None:
        return POD_ETH0
    return role_of_iface(point.iface)


@dataclass(frozen=True)
class PointRole:
    """The role decided for one capture point, and whether it came from traffic rather than from a name."""

    role: str
    inferred: bool
    reason: str


def infer_role(encap: np.ndarray, i_ver: np.ndarray, o_proto: np.ndarray, o_dport: np.ndarray,
               linktype: int, macs: list[bytes], i_ttl: np.ndarray | None = None) -> PointRole:
    """Guess a point's role from what it carries (its rows' columns and the first 12 bytes of a few frames).

    Encapsulated traffic (VXLAN, IP-in-IP, flannel UDP on 8285) is the underlay: host eth0. Pod traffic on a
    raw-IP link is a tunnel device (tunl0). With Calico's ``ee:ee:ee:ee:ee:ee`` host MAC it is a cali interface;
    with a bridge-plugin pod MAC (``0a:58:…``) a pod's veth (or the bridge: one capture cannot tell them apart).
    Routed pod traffic (TTL one below 64/128/255) between two locally administered MACs is what a VXLAN device
    shows (flannel's VTEP MACs); between other MACs it is a routed underlay (host-gw eth0).
    """
    n = len(encap)
    if n == 0:
        return PointRole(UNKNOWN, True, "no packets")
    ip = i_ver != 0
    n_ip = int(ip.sum()) or 1
    enc = encap != 0
    udp8285 = (o_proto == 17) & (o_dport == 8285)
    if enc.sum() * 2 >= n_ip or udp8285.sum() * 2 >= n_ip:
        what = "VXLAN" if (encap == 1).any() else ("IP-in-IP" if (encap == 3).any() else "encapsulated")
        if udp8285.sum() * 2 >= n_ip:
            what = "flannel UDP (8285)"
        return PointRole(HOST_ETH0, True, f"carries {what} traffic: the underlay")
    if linktype in (101, 12, 228):   # LINKTYPE_RAW, DLT_RAW, LINKTYPE_IPV4: no link header
        return PointRole(IPIP_DEV, True, "raw IP pod traffic without a link header: a tunnel device")
    if not macs:
        return PointRole(VETH, True, "unencapsulated IP traffic")
    calico = sum(m[:6] == b"\xee" * 6 or m[6:12] == b"\xee" * 6 for m in macs)
    if calico * 2 >= len(macs):
        return PointRole(CALI, True, "pod traffic to/from ee:ee:ee:ee:ee:ee (Calico's host-side veth MAC)")
    pod_mac = sum(m[:2] == b"\x0a\x58" or m[6:8] == b"\x0a\x58" for m in macs)
    if pod_mac * 2 >= len(macs):
        return PointRole(VETH, True, "pod traffic with bridge-plugin pod MACs (0a:58:…): a pod's veth")
    routed = False
    if i_ttl is not None and ip.any():
        ttl = i_ttl[ip]
        routed = np.isin(ttl, (63, 127, 254)).sum() * 2 >= len(ttl)
    local = sum(bool(m[0] & 0x02) and bool(m[6] & 0x02) for m in macs if len(m) >= 12)
    if routed and local * 2 >= len(macs):
        return PointRole(VXLAN_DEV, True, "routed pod traffic between locally administered MACs (VTEP MACs): "
                                          "a VXLAN device")
    if routed:
        return PointRole(HOST_ETH0, True, "routed pod traffic between node MACs: a routed underlay (host-gw)")
    return PointRole(VETH, True, "unencapsulated pod traffic on an Ethernet link")
