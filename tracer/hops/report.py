"""Plain-text renderings of hop paths, flows and the reachability matrix for the terminal.

Every string that came from a capture or a cluster dump (interface names, pod names, policy names) goes
through ``inert`` first: control characters become visible stand-ins, so a hostile pcapng ``if_name`` cannot
drive the terminal. No Rich here: the core stays free of UI libraries.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def inert(value: object) -> str:
    """``str(value)`` with terminal control characters replaced by ``�`` (None prints as ``-``)."""
    if value is None:
        return "-"
    return _CONTROL.sub("\ufffd", value if isinstance(value, str) else str(value))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]


def format_path(path: Any) -> str:
    """The hop ladder of one packet: one line per hop, then where it stopped and the verdict."""
    head = f"packet {path.packet_id}" if path.packet_id is not None else "packet"
    if path.cni:
        head += f" · {inert(path.cni)}"
    if path.flow_id is not None:
        head += f" · flow {path.flow_id}"
    if path.service:
        head += f" · service {inert(path.service)}"
    lines = [head]
    rows = []
    for h in path.hops:
        seen = "●" if h.seen else ("○" if h.captured else "·")
        role = inert(h.role) + (" (inferred)" if getattr(h, "inferred", False) else "")
        rows.append([str(h.index), seen, inert(h.point), role, inert(h.node), "-" if h.no is None else str(h.no),
                     "-" if h.delta_us is None else f"{h.delta_us:+.1f}", inert(h.encap), inert(h.ttl)])
    if rows:
        lines += ["  " + x for x in _table(["#", "", "point", "role", "node", "no", "Δt µs", "encap", "ttl"], rows)]
        lines.append("  ● seen  ○ captured, not seen  · not captured")
    if path.dropped_after:
        lines.append(f"last seen at {inert(path.dropped_after)}, expected next {inert(path.expected_next)}")
    if path.clock_offsets:
        lines.append("clock offsets: " + ", ".join(f"{inert(k)} {v * 1e6:+.1f} µs"
                                                   for k, v in path.clock_offsets.items()))
    if path.verdict:
        lines.append(f"verdict: {inert(path.verdict)}")
    lines.append(inert(path.explanation))
    if getattr(path, "policy", None):
        lines += ["policy:"] + ["  " + inert(line) for line in path.policy.splitlines()]
    return "\n".join(lines)


def format_flows(flows: list[Any]) -> str:
    """One line per flow: tuple, pods, packets, verdict, where it stopped."""
    rows = []
    for f in flows:
        ports = f":{f.sport} → " if f.proto in ("TCP", "UDP", "SCTP") else " → "
        dport = f":{f.dport}" if f.proto in ("TCP", "UDP", "SCTP") else ""
        rows.append([str(f.flow_id), inert(f.proto), inert(f.src) + ports + inert(f.dst) + dport,
                     inert(f.src_pod), inert(f.dst_pod), str(f.packets), inert(f.verdict),
                     inert(f.dropped_after), inert(f.explanation)])
    return "\n".join(_table(["flow", "proto", "tuple", "src pod", "dst pod", "pkts", "verdict", "dropped after",
                             "explanation"], rows))
