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
        if getattr(path, "cni_reason", None):
            head += f" ({inert(path.cni_reason)})"
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
    extra = getattr(path, "extra_observations", None) or []
    if extra:
        lines.append("also seen, off the model path: " + ", ".join(f"{inert(o['point'])} (no {o['no']})"
                                                               for o in extra))
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


_OBSERVED = {"delivered": "→", "dropped": "✗", "seen": "?", "not observed": "·"}


def format_reach(matrix: Any) -> str:
    """The matrix (row = from, column = to; cell = policy + observed mark, ``!`` on a mismatch), then the
    mismatches with their explanations."""
    if not matrix.pods:
        return "no pods in the cluster state"
    names = [inert(p) for p in matrix.pods]
    width = max(8, *(len(n) for n in names))
    lines = ["policy  · observed: → delivered  ✗ dropped  ? seen (delivery unknown)  · not observed  ! mismatch",
             f"pairs with no observed flow are judged on {inert(matrix.probe)}", ""]
    cell_w = 9
    lines.append(" " * (width + 2) + "  ".join(f"{i + 1:<{cell_w}}" for i in range(len(names))))
    for i, src in enumerate(matrix.pods):
        cells = []
        for dst in matrix.pods:
            c = matrix.cell(src, dst)
            if c is None:
                cells.append(f"{'':<{cell_w}}")
                continue
            text = f"{c.policy} {_OBSERVED.get(c.observed, '?')}" + (" !" if c.mismatch else "")
            cells.append(f"{text:<{cell_w}}")
        lines.append(f"{names[i]:<{width}}  " + "  ".join(cells).rstrip() + f"   ({i + 1})")
    mism = matrix.mismatches
    lines.append("")
    lines.append(f"{len(mism)} mismatch{'es' if len(mism) != 1 else ''}" + (":" if mism else ""))
    for c in mism:
        lines.append(f"  {inert(c.src)} → {inert(c.dst)}: {inert(c.mismatch)}")
        for line in c.explanation.splitlines()[:4]:
            lines.append(f"    {inert(line)}")
    if matrix.other_flows:
        lines.append(f"{matrix.other_flows} flow(s) with a node or external end are not in the matrix "
                     "(see tracer flows)")
    return "\n".join(lines)
