"""What the hop analysis reports: capture points, a packet's hop ladder, flows — plain dataclasses with the
JSON forms that ``tracer path`` and ``tracer flows`` print (public keys: issue 4, docs/CONTRACTS.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PointInfo:
    """A capture point: its name, node, interface, role (``inferred`` when from traffic) and time coverage."""

    id: int
    name: str
    node: str | None
    iface: str | None
    role: str
    inferred: bool
    reason: str
    first_ns: int
    last_ns: int
    file: str | None = None    # the capture file it came from (unnamed points of one file are one machine)


@dataclass
class HopView:
    """One hop of a packet's path as ``tracer path`` reports it."""

    index: int
    point: str
    role: str
    node: str | None
    seen: bool
    no: int | None
    row: int | None
    ts_ns: int | None
    delta_us: float | None
    encap: str | None
    ttl: int | None
    captured: bool
    nat: str | None = None
    inferred: bool = False    # the point's role came from its traffic, not its name

    @property
    def ts(self) -> float | None:
        return None if self.ts_ns is None else self.ts_ns / 1e9

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "point": self.point, "role": self.role, "node": self.node, "seen": self.seen,
                "no": self.no, "ts": self.ts, "delta_us": self.delta_us, "encap": self.encap, "ttl": self.ttl,
                "captured": self.captured, "nat": self.nat, "inferred": self.inferred}


@dataclass
class PacketPath:
    """A packet's hop ladder, where it stopped, the clock offsets used, and the policy verdict joined with it."""

    packet_id: int | None
    hops: list[HopView]
    dropped_after: str | None
    expected_next: str | None
    last_seen: str | None
    clock_offsets: dict[str, float]
    verdict: str | None
    explanation: str
    cni: str | None
    flow_id: int | None = None
    service: str | None = None
    src_pod: str | None = None
    dst_pod: str | None = None
    extra_observations: list[dict[str, Any]] = field(default_factory=list)
    policy: str | None = None     # the policy engine's full explanation (both directions)
    cni_reason: str | None = None  # why this CNI mode (--cni, annotations, traffic, interface names)

    def to_json(self) -> dict[str, Any]:
        return {"hops": [h.to_json() for h in self.hops], "packet_id": self.packet_id,
                "dropped_after": self.dropped_after, "expected_next": self.expected_next,
                "last_seen": self.last_seen, "clock_offsets": self.clock_offsets, "verdict": self.verdict,
                "explanation": self.explanation, "cni": self.cni, "flow_id": self.flow_id, "service": self.service,
                "src_pod": self.src_pod, "dst_pod": self.dst_pod, "unplaced": self.extra_observations,
                "policy": self.policy, "cni_reason": self.cni_reason}


@dataclass
class Flow:
    """Both directions of one connection, keyed by the initiator's pod-level (post-DNAT, inner) tuple."""

    flow_id: int
    src: str
    dst: str
    sport: int
    dport: int
    proto: str
    src_pod: str | None
    dst_pod: str | None
    packets: int
    points: list[str]
    verdict: str | None
    dropped_after: str | None
    explanation: str
    service: str | None = None
    cni: str | None = None
    first_no: int = 0
    delivered: bool | None = None
    dropped_packets: int = 0
    policy: str | None = None
    addressed_to: str | None = None   # what the initiator sent to, before kube-proxy's DNAT ("ip:port")
    client: str | None = None         # the initiator before masquerade (NodePort), "ip:port"

    def to_json(self) -> dict[str, Any]:
        return {"flow_id": self.flow_id, "src": self.src, "dst": self.dst, "sport": self.sport, "dport": self.dport,
                "proto": self.proto, "src_pod": self.src_pod, "dst_pod": self.dst_pod, "packets": self.packets,
                "points": self.points, "verdict": self.verdict, "dropped_after": self.dropped_after,
                "explanation": self.explanation, "service": self.service, "cni": self.cni,
                "first_no": self.first_no, "delivered": self.delivered, "dropped_packets": self.dropped_packets,
                "addressed_to": self.addressed_to, "client": self.client}
