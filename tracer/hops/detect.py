"""Which CNI mode is in use: from ``--cni``, node annotations, the traffic, or interface names (in that order).

- ``--cni MODE`` overrides everything.
- Node annotations: flannel writes ``flannel.alpha.coreos.com/backend-type`` (vxlan, host-gw, udp); Calico writes
  ``projectcalico.org/IPv4IPIPTunnelAddr`` (IPIP) or ``IPv4VXLANTunnelAddr`` (VXLAN); Calico without either
  routes natively (BGP).
- Traffic: VXLAN with VNI 4096 or on UDP 4789 is Calico VXLAN, other VXLAN (UDP 8472, VNI 1) flannel; IP protocol 4
  is Calico IPIP; UDP 8285 is flannel's UDP backend.
- Interface names: flannel.1, vxlan.calico, tunl0, flannel0, cali*, cni0.

``flow_mode`` refines the capture-wide mode per flow from the encapsulation that flow was actually seen with:
one capture can hold two CNIs (a migration) and Calico CrossSubnet encapsulates only some node pairs.
"""

from __future__ import annotations

import numpy as np

from tracer.hops import models as M
from tracer.hops import roles as R

ANNOTATION_FLANNEL = "flannel.alpha.coreos.com/backend-type"
ANNOTATION_CALICO_IPIP = "projectcalico.org/IPv4IPIPTunnelAddr"
ANNOTATION_CALICO_VXLAN = "projectcalico.org/IPv4VXLANTunnelAddr"
ANNOTATION_CALICO_ANY = "projectcalico.org/IPv4Address"

# Per-row wire classes (``wire_class``): what encapsulation a row shows.
WIRE_NONE, WIRE_FLANNEL_VXLAN, WIRE_CALICO_VXLAN, WIRE_IPIP, WIRE_FLANNEL_UDP = 0, 1, 2, 3, 4
WIRE_MODE = {WIRE_FLANNEL_VXLAN: M.FLANNEL_VXLAN, WIRE_CALICO_VXLAN: M.CALICO_VXLAN, WIRE_IPIP: M.CALICO_IPIP,
             WIRE_FLANNEL_UDP: M.FLANNEL_UDP}
WIRE_ENCAP = {WIRE_FLANNEL_VXLAN: "vxlan", WIRE_CALICO_VXLAN: "vxlan", WIRE_IPIP: "ipip",
              WIRE_FLANNEL_UDP: "udp"}


def wire_class(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Per row, which CNI encapsulation it carries (``WIRE_*``), from encap type, VNI and outer UDP port."""
    encap = columns["encap"]
    vni = columns["vni"]
    out = np.zeros(len(encap), dtype=np.uint8)
    vx = encap == 1
    calico = vx & ((vni == 4096) | (columns["o_dport"] == 4789))
    out[vx] = WIRE_FLANNEL_VXLAN
    out[calico] = WIRE_CALICO_VXLAN
    out[encap == 3] = WIRE_IPIP
    out[(encap == 0) & (columns["o_proto"] == 17) & ((columns["o_dport"] == 8285) | (columns["o_sport"] == 8285))] = \
        WIRE_FLANNEL_UDP
    return out


def mode_from_annotations(annotations: dict[str, dict[str, str]]) -> tuple[str | None, str]:
    """The mode the nodes' annotations announce, with the reason, or (None, "")."""
    for node, ann in sorted(annotations.items()):
        backend = ann.get(ANNOTATION_FLANNEL)
        if backend:
            mode = {"vxlan": M.FLANNEL_VXLAN, "host-gw": M.FLANNEL_HOST_GW, "udp": M.FLANNEL_UDP}.get(backend.lower())
            if mode:
                return mode, f"node {node}: {ANNOTATION_FLANNEL}={backend}"
        if ann.get(ANNOTATION_CALICO_VXLAN):
            return M.CALICO_VXLAN, f"node {node}: {ANNOTATION_CALICO_VXLAN}"
        if ann.get(ANNOTATION_CALICO_IPIP):
            return M.CALICO_IPIP, f"node {node}: {ANNOTATION_CALICO_IPIP}"
        if ann.get(ANNOTATION_CALICO_ANY):
            return M.CALICO_BGP, f"node {node}: Calico without a tunnel address (BGP)"
    return None, ""


def mode_from_traffic(wire: np.ndarray) -> tuple[str | None, str]:
    """The most common CNI encapsulation in the capture, or (None, "") when nothing is encapsulated."""
    counts = np.bincount(wire, minlength=5)
    counts[WIRE_NONE] = 0
    if counts.sum() == 0:
        return None, ""
    best = int(counts.argmax())
    what = {WIRE_FLANNEL_VXLAN: "VXLAN (flannel: UDP 8472 / VNI 1)", WIRE_CALICO_VXLAN: "VXLAN VNI 4096 / UDP 4789",
            WIRE_IPIP: "IP-in-IP (protocol 4)", WIRE_FLANNEL_UDP: "UDP 8285"}[best]
    return WIRE_MODE[best], f"traffic: {int(counts[best])} packets of {what}"


def mode_from_ifaces(ifaces: list[str], roles: list[str] | None = None) -> tuple[str | None, str]:
    """The mode the capture points' interface names (or their roles inferred from traffic) imply, or (None, "")."""
    names = set(ifaces)
    inferred = set(roles or ())
    for role, mode in ((R.IPIP_DEV, M.CALICO_IPIP), (R.TUN_DEV, M.FLANNEL_UDP), (R.CALI, M.CALICO_BGP)):
        if role in inferred and not names:
            return mode, f"a capture point inferred to be a {role}"
    for name, mode in (("vxlan.calico", M.CALICO_VXLAN), ("tunl0", M.CALICO_IPIP), ("flannel0", M.FLANNEL_UDP)):
        if name in names:
            return mode, f"interface {name}"
    if any(n.startswith("flannel.") for n in names):
        return M.FLANNEL_VXLAN, "interface flannel.1"
    roles = {R.role_of_iface(n) for n in names}
    if R.CALI in roles:
        return M.CALICO_BGP, "cali* interfaces without a tunnel device"
    if R.BRIDGE in roles or R.VETH in roles:
        return M.FLANNEL_HOST_GW, "cni0/veth interfaces without a tunnel device"
    return None, ""


def detect_mode(*, cni: str | None, annotations: dict[str, dict[str, str]], wire: np.ndarray,
                ifaces: list[str], roles: list[str] | None = None) -> tuple[str, str]:
    """The capture-wide CNI mode and why (see the module docstring for the order); flannel VXLAN by default."""
    if cni:
        return M.normalise_mode(cni), f"--cni {cni}"
    for found in (mode_from_annotations(annotations), mode_from_traffic(wire), mode_from_ifaces(ifaces, roles)):
        if found[0]:
            return found
    return M.FLANNEL_VXLAN, "default (nothing in the capture or cluster names a CNI)"


def flow_mode(global_mode: str, flow_wire: int, forced: bool) -> str:
    """The mode for one flow: the capture-wide mode, unless the flow itself was seen with another encapsulation.

    A flow seen unencapsulated between nodes under CrossSubnet is routed natively (BGP); one seen in VXLAN under a
    flannel capture-wide default is VXLAN; ``forced`` (``--cni``) always wins.
    """
    if forced:
        return global_mode
    if flow_wire != WIRE_NONE:
        seen = WIRE_MODE[flow_wire]
        if global_mode == M.CALICO_IPIP_CROSSSUBNET and seen == M.CALICO_IPIP:
            return global_mode
        return seen
    return global_mode
