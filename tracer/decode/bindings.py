"""scapy, configured once for tracer: quiet, layer modules only, and the overlay ports bound in one block.

Importing this module is how the rest of ``tracer.decode`` gets scapy. It silences scapy's loggers before the
layer modules load (their import-time warnings would land in the terminal under the TUI), imports only the layer
modules tracer dissects (``scapy.all`` costs ~0.7 s and pulls in everything), and holds every ``bind_layers`` call
tracer makes. ``bind_vxlan_ports`` adds the ``--vxlan-port`` values at run time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

# Before any layer module: scapy logs route/interface warnings while importing them.
for _name in ("scapy", "scapy.runtime", "scapy.loading", "scapy.interactive"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from scapy.config import conf  # noqa: E402

conf.verb = 0  # no "Sent 1 packets." and friends
conf.logLevel = logging.ERROR  # scapy re-applies this to its own logger

from scapy.contrib import erspan as _erspan  # noqa: E402,F401  (binds GRE 0x88BE/0x22EB → ERSPAN II/III)
from scapy.contrib.geneve import GENEVE  # noqa: E402
from scapy.fields import BitField, FlagsField, ThreeBytesField, X3BytesField, XByteField  # noqa: E402
from scapy.fields import XShortEnumField  # noqa: E402
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP  # noqa: E402,F401  (GRE/ICMP/TCP: register their bindings)
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback  # noqa: E402,F401
from scapy.layers.l2 import LoopbackOpenBSD  # noqa: E402,F401
from scapy.data import ETHER_TYPES  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402
from scapy.packet import Packet, bind_layers  # noqa: E402


# ---------------------------------------------------------------- port-extender tags scapy does not ship
class VNTag(Packet):
    """Cisco VN-Tag (EtherType 0x8926): a fabric-extender port tag between the MACs and the real EtherType.

    Seen on captures from UCS / Nexus 2000 uplinks; the index skips it the same way (tracer.decode.fields).
    """

    name = "VN-Tag"
    fields_desc = [BitField("dir", 0, 1), BitField("ptr", 0, 1), BitField("dvif_id", 0, 14),
                   BitField("looped", 0, 1), BitField("reserved", 0, 1), BitField("version", 0, 2),
                   BitField("svif_id", 0, 12), XShortEnumField("type", 0x0800, ETHER_TYPES)]


class ETag(Packet):
    """IEEE 802.1BR E-Tag (EtherType 0x893F): a bridge port extender tag, 6 bytes before the EtherType."""

    name = "E-Tag"
    fields_desc = [BitField("pcp", 0, 3), BitField("dei", 0, 1), BitField("ingress_ecid_base", 0, 12),
                   BitField("reserved", 0, 2), BitField("grp", 0, 2), BitField("ecid_base", 0, 12),
                   BitField("ingress_ecid_ext", 0, 8), BitField("ecid_ext", 0, 8),
                   XShortEnumField("type", 0x0800, ETHER_TYPES)]

for _name in ("scapy", "scapy.runtime", "scapy.loading"):
    logging.getLogger(_name).setLevel(logging.ERROR)

# ---------------------------------------------------------------- the overlay ports (one block, who uses each)
# scapy.layers.vxlan already binds most of these; they are repeated here so tracer's decode does not depend on
# what a scapy release happens to bind, and so this block is the one place to read which port means what.
bind_layers(UDP, VXLAN, dport=4789)  # IANA / RFC 7348: Calico VXLAN (vxlan.calico, VNI 4096), Cilium, VTEPs
bind_layers(UDP, VXLAN, dport=8472)  # Linux kernel's pre-IANA default: flannel (flannel.1, VNI 1)
bind_layers(UDP, GENEVE, dport=6081)  # RFC 8926: OVN-Kubernetes, Antrea, AWS Gateway Load Balancer
bind_layers(GENEVE, Ether, proto=0x6558)  # Geneve "transparent Ethernet bridging" payload (OVN, Antrea)
bind_layers(GENEVE, IP, proto=0x0800)  # Geneve carrying bare IPv4 (GCP, GWLB)
bind_layers(GENEVE, IPv6, proto=0x86DD)  # Geneve carrying bare IPv6

class VXLANPlain(Packet):
    """VXLAN exactly as RFC 7348 lays it out: flags, 24 reserved bits, VNI, 8 reserved bits; Ethernet follows.

    The dissection uses it on tracer's VXLAN ports when scapy's flag-driven reading does not give an 8-byte
    header followed by Ethernet (scapy reads reserved bits as VXLAN-GPE/GBP fields; VXLAN-GBP and OpenStack
    deployments set them), so the tree matches the index, which ignores reserved bits (issue 2).
    """

    name = "VXLAN"
    fields_desc = [FlagsField("flags", 0x08, 8, ["OAM", "R", "NextProtocol", "Instance", "V1", "V2", "R", "G"]),
                   X3BytesField("reserved1", 0), ThreeBytesField("vni", 0), XByteField("reserved2", 0)]


bind_layers(VXLANPlain, Ether)
bind_layers(Ether, VNTag, type=0x8926)  # Cisco VN-Tag (FEX uplinks)
bind_layers(Ether, ETag, type=0x893F)  # IEEE 802.1BR port extension
for _tag in (VNTag, ETag):
    for _cls, _type in ((IP, 0x0800), (IPv6, 0x86DD), (ARP, 0x0806), (Dot1Q, 0x8100), (Dot1AD, 0x88A8)):
        bind_layers(_tag, _cls, type=_type)

DEFAULT_VXLAN_PORTS = (4789, 8472)
#: Destination ports scapy.layers.vxlan binds to VXLAN beyond tracer's: VXLAN-GPE 4790, NSH 6633, Cisco ACI
#: 48879. The index does not count them as VXLAN; the dissection keeps scapy's view of their headers.
SCAPY_ONLY_VXLAN_PORTS = frozenset({4790, 6633, 48879})
_bound: set[int] = set(DEFAULT_VXLAN_PORTS)
_lock = threading.Lock()


def bind_vxlan_ports(ports: Iterable[int]) -> None:
    """Decode UDP to each of ``ports`` as VXLAN too (``--vxlan-port N``: a cluster that moved its VTEP port).

    Idempotent and thread-safe; ports outside 1..65535 are ignored. scapy's bindings are process-wide, so a port
    bound once stays bound for the life of the process.
    """
    new = {int(p) for p in ports if 0 < int(p) <= 0xFFFF} - _bound
    if not new:
        return
    with _lock:
        for port in sorted(new - _bound):
            bind_layers(UDP, VXLAN, dport=port)  # user-given VXLAN port (--vxlan-port)
            _bound.add(port)


def bound_vxlan_ports() -> frozenset[int]:
    """The UDP destination ports currently decoded as VXLAN by tracer's own bindings."""
    return frozenset(_bound)
