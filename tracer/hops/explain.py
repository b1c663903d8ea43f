"""Sentences for where a packet or flow stopped, joined with the NetworkPolicy verdict, and what to check next.

A stop is judged against the verdict: a deny explains it when the packet died where that policy is enforced
(egress on the source node before the packet leaves the pod's interface, ingress on the destination node at the
pod's interface); an allow means the datapath lost it, and the hint names what usually breaks at the hop that
missed it (FDB/route for VXLAN, MTU for encapsulated sizes, rp_filter on tunnel devices, a filter on the veth).
"""

from __future__ import annotations

from typing import Any

from tracer.hops import roles as R

# Bytes each encapsulation adds to the inner IP packet (outer IP + UDP + VXLAN + inner Ethernet, or outer IP).
OVERHEAD = {"vxlan": 50, "ipip": 20, "udp": 28}
UNDERLAY_MTU = 1500


def denied_direction(verdict_obj: Any) -> str | None:
    """``egress`` or ``ingress`` when that side of a Verdict denies (egress first: it is checked first)."""
    if verdict_obj is None:
        return None
    for side in ("egress", "ingress"):
        dv = getattr(verdict_obj, side, None)
        if dv is not None and getattr(dv, "allowed", True) is False:
            return side
    return None


def hint_for(next_role: str | None, mode: str | None, inner_len: int, next_side: str | None = None) -> str:
    """What usually loses a packet just before a hop of ``next_role`` (the one that did not see it)."""
    encap = {"flannel-vxlan": "vxlan", "calico-vxlan": "vxlan", "calico-ipip": "ipip",
             "calico-ipip-crosssubnet": "ipip", "flannel-udp": "udp"}.get(mode or "")
    hints = []
    if next_role == R.HOST_ETH0 and next_side == "dst":
        if encap == "vxlan":
            hints.append("lost between the nodes: check the sender's VXLAN FDB and neighbour entries for the peer "
                         "(bridge fdb show dev flannel.1 / vxlan.calico; ip neigh) and that UDP 8472/4789 passes "
                         "the underlay and host firewalls")
        elif encap == "ipip":
            hints.append("lost between the nodes: IP protocol 4 must pass the underlay and cloud security groups")
        else:
            hints.append("lost between the nodes: check the route to the peer pod subnet via the peer node IP "
                         "(ip route) and the underlay")
    elif next_role in (R.VXLAN_DEV, R.IPIP_DEV, R.TUN_DEV) and next_side == "dst":
        hints.append("arrived at the node but was not decapsulated: tunnel device down or wrong VNI/port, or "
                     "rp_filter dropping it (sysctl net.ipv4.conf.all.rp_filter / the tunnel device's)")
    elif next_role in (R.VXLAN_DEV, R.IPIP_DEV, R.TUN_DEV, R.HOST_ETH0):
        hints.append("never left the source node: check the route to the peer pod subnet (ip route get), the "
                     "FORWARD chain (iptables -S FORWARD) and, for VXLAN, the FDB entry for the peer VTEP")
    elif next_role == R.BRIDGE:
        hints.append("not forwarded to the bridge: check the route to the pod subnet on cni0, the FORWARD chain "
                     "and rp_filter on the receiving interface")
    elif next_role in (R.VETH, R.CALI):
        hints.append("not delivered to the pod's interface: a filter on the veth (iptables/nft rule, a policy "
                     "agent), the bridge FDB, or the pod's route/ARP entry on the node")
    elif next_role == R.POD_ETH0:
        hints.append("reached the pod's veth but not the pod: check the pod's own stack and rp_filter in the pod")
    if encap and inner_len and inner_len + OVERHEAD[encap] > UNDERLAY_MTU:
        hints.append(f"the packet is {inner_len} bytes: with {OVERHEAD[encap]} bytes of {encap} overhead it "
                     f"exceeds a {UNDERLAY_MTU}-byte underlay MTU (check the pod MTU and PMTU/ICMP frag-needed)")
    return "; ".join(hints)


def summary(verdict_text: str) -> str:
    """The first line of the policy engine's explanation (the rest details each direction)."""
    return (verdict_text or "").strip().splitlines()[0] if (verdict_text or "").strip() else ""


def _verdict_join(*, verdict: str | None, verdict_text: str, verdict_obj: Any, cluster: bool, dropped: bool,
                  stop_side: str | None, hint: str, delivered: bool | None,
                  nodes: tuple[str | None, str | None] = (None, None)) -> str:
    verdict_text = summary(verdict_text)
    if not cluster:
        if dropped:
            return ("no cluster state given (--cluster): cannot tell a policy drop from a datapath loss"
                    + (f"; {hint}" if hint else ""))
        return ""
    if verdict == "deny":
        side = denied_direction(verdict_obj)
        src_node, dst_node = nodes
        where = {"egress": f"egress, enforced on the source node{' ' + src_node if src_node else ''}",
                 "ingress": f"ingress, enforced on the destination node{' ' + dst_node if dst_node else ''}"}.get(
            side or "", "enforced on the node")
        dv = getattr(verdict_obj, side, None) if side else None
        policies = tuple(getattr(dv, "policies", ()) or ())
        if policies:
            where += f" by {', '.join(policies)}"
        if dropped:
            text = f"consistent with a NetworkPolicy deny ({where}): {verdict_text}"
            if side == "ingress" and stop_side == "src":
                text += "; but it stopped before reaching the destination node: look at the datapath too"
            if side == "egress" and stop_side == "dst":
                text += "; but it left the source node, where egress is enforced: look at the datapath too"
            return text
        if delivered:
            return (f"policy denies but the packets were delivered: the CNI is not enforcing NetworkPolicy "
                    f"(flannel alone does not): {verdict_text}")
        return f"policy denies ({where}): {verdict_text}"
    if verdict == "allow":
        if dropped:
            return "policy allows: the datapath lost it" + (f" ({hint})" if hint else "")
        return f"policy allows: {verdict_text}" if verdict_text else "policy allows"
    return f"policy verdict unknown: {verdict_text}" if verdict_text else ""


def packet_explanation(*, hops, views, alignment, dropped: bool, verdict: str | None, verdict_text: str,
                       verdict_obj: Any, forward: bool, inner_len: int, mode: str | None, cluster: bool) -> str:
    """One paragraph for ``tracer path``: where the packet went, where it stopped, and why that may be."""
    seen = [v for v in views if v.seen]
    parts = []
    if not hops:
        return "no hop model for this packet"
    captured = sum(1 for v in views if v.captured)
    parts.append(f"{mode}: seen at {len(seen)} of {captured} captured hops ({len(views)} in the model)")
    nat = [v for v in views if v.nat]
    if nat:
        parts.append("rewritten by the node's netfilter (kube-proxy NAT) before "
                     + "; before ".join(f"{v.point}: {v.nat}" for v in nat))
    stop_side = None
    hint = ""
    if dropped and alignment.next_expected >= 0:
        nxt = views[alignment.next_expected]
        last = views[alignment.last_seen]
        stop_side = hops[alignment.last_seen].side
        parts.append(f"last seen at {last.point}, expected next {nxt.point}")
        hint = hint_for(hops[alignment.next_expected].role, mode, inner_len, hops[alignment.next_expected].side)
    elif seen:
        parts.append(f"last seen at {seen[-1].point}")
    last = alignment.last_seen
    delivered = last >= 0 and (last == len(hops) - 1 or (
        hops[last].side == "dst" and hops[last].role in (R.VETH, R.CALI, R.POD_ETH0)))
    ends = (hops[0].node, hops[-1].node) if forward else (hops[-1].node, hops[0].node)
    join = _verdict_join(verdict=verdict, verdict_text=verdict_text, verdict_obj=verdict_obj, cluster=cluster,
                         dropped=dropped, stop_side=stop_side, hint=hint, delivered=delivered, nodes=ends)
    if not forward and verdict == "allow":
        join = "a reply of an allowed connection: allowed (NetworkPolicy is stateful)" + (
            f"; the datapath lost it ({hint})" if dropped and hint else "")
    if join:
        parts.append(join)
    elif dropped and hint:
        parts.append(hint)
    return ". ".join(parts) + "."


def flow_explanation(*, dropped_after: str | None, expected_next: str | None, delivered: bool | None,
                     verdict: str | None, verdict_text: str, verdict_obj: Any, cluster: bool, packets: int,
                     dropped_packets: int, replies: bool, mode: str | None, next_hop: Any,
                     inner_len: int, nodes: tuple[str | None, str | None] = (None, None),
                     stop_side: str | None = None) -> str:
    """One sentence per flow for ``tracer flows``."""
    parts = []
    if dropped_after:
        where = f"stops at {dropped_after}" + (f" (expected next {expected_next})" if expected_next else "")
        parts.append(f"{dropped_packets} of {packets} packets dropped: {where}")
    elif delivered:
        parts.append("delivered" + (" (replies seen)" if replies else ""))
    else:
        parts.append("seen; delivery not observable from these capture points")
    hint = ""
    if dropped_after and next_hop is not None:
        hint = hint_for(next_hop.role, mode, inner_len, next_hop.side)
    join = _verdict_join(verdict=verdict, verdict_text=verdict_text, verdict_obj=verdict_obj, cluster=cluster,
                         dropped=bool(dropped_after), stop_side=stop_side, hint=hint, delivered=delivered,
                         nodes=nodes)
    if join:
        parts.append(join)
    elif hint:
        parts.append(hint)
    return ". ".join(parts) + "."
