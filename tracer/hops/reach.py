"""Observed vs policy: a pod × pod matrix joining NetworkPolicy verdicts with what the captures show.

Each cell (source pod, destination pod) holds the policy's verdict for the flows seen between them (or, when none
was seen, for a new connection on the probe port), what the captures show — ``delivered``, ``dropped`` (and
where), ``seen`` (delivery not observable from the capture points), ``not observed`` — and the two mismatches an
engineer cares about: "policy allows but the packets die" (a datapath problem) and "policy denies but the packets
are delivered" (the CNI is not enforcing NetworkPolicy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALLOWS_BUT_DIES = "policy allows but the packets die"
DENIES_BUT_DELIVERED = "policy denies but the packets are delivered"
MAX_ALL_PODS = 40   # above this many pods, the matrix holds only pods that appear in the captures


@dataclass
class ReachCell:
    """One source → destination pod pair."""

    src: str
    dst: str
    policy: str                      # allow | deny | mixed (per port/protocol) | unknown
    observed: str                    # delivered | dropped | seen | not observed
    dropped_after: str | None = None
    mismatch: str | None = None
    explanation: str = ""
    flows: list[int] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "policy": self.policy, "observed": self.observed,
                "dropped_after": self.dropped_after, "mismatch": self.mismatch, "explanation": self.explanation,
                "flows": self.flows, "ports": self.ports}


@dataclass
class ReachMatrix:
    """Pods (rows = sources, columns = destinations) and the cells between them."""

    pods: list[str]
    cells: dict[tuple[str, str], ReachCell]
    other_flows: int = 0             # flows with a non-pod end (node, external): not in the matrix
    probe: str = ""

    def cell(self, src: str, dst: str) -> ReachCell | None:
        return self.cells.get((src, dst))

    @property
    def mismatches(self) -> list[ReachCell]:
        return [c for c in self.cells.values() if c.mismatch]

    def to_json(self) -> dict[str, Any]:
        return {"pods": self.pods, "probe": self.probe, "other_flows": self.other_flows,
                "cells": [self.cells[(s, d)].to_json() for s in self.pods for d in self.pods if (s, d) in self.cells],
                "mismatches": [c.to_json() for c in self.mismatches]}


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""


def reach(analysis: Any, cluster: Any = None, *, port: int | None = None, protocol: str = "TCP") -> ReachMatrix:
    """The observed-vs-policy matrix for ``analysis`` (which must have been run with a cluster).

    ``port``/``protocol``: the connection judged for pairs with no observed flow (default: the ports the
    destination pod was reached on in the captures, else TCP/80, like ``tracer policy matrix``).
    """
    facts = analysis.facts
    cluster = cluster if cluster is not None else facts.cluster
    engine = facts.engine
    flows = analysis.flows()
    pod_flows: dict[tuple[str, str], list[Any]] = {}
    other = 0
    for f in flows:
        if f.src_pod and f.dst_pod:
            pod_flows.setdefault((f.src_pod, f.dst_pod), []).append(f)
        else:
            other += 1
    all_pods = sorted({name for name, _ in facts.pods.values()})
    seen_pods = sorted({p for pair in pod_flows for p in pair})
    pods = all_pods if len(all_pods) <= MAX_ALL_PODS else seen_pods
    reached_on: dict[str, set[tuple[int | None, str]]] = {}
    for (_, dst), fl in pod_flows.items():
        for f in fl:
            reached_on.setdefault(dst, set()).add((f.dport if f.proto in ("TCP", "UDP", "SCTP") else None, f.proto))
    cells: dict[tuple[str, str], ReachCell] = {}
    for src in pods:
        for dst in pods:
            fl = pod_flows.get((src, dst))
            cells[(src, dst)] = _observed_cell(src, dst, fl) if fl else _policy_cell(
                engine, src, dst, port, protocol, reached_on.get(dst))
    probe = f"{protocol}/{port}" if port is not None else "the ports each pod was reached on, else TCP/80"
    del cluster
    return ReachMatrix(pods, cells, other, probe)


def _observed_cell(src: str, dst: str, flows: list[Any]) -> ReachCell:
    verdicts = {f.verdict or "unknown" for f in flows}
    policy = verdicts.pop() if len(verdicts) == 1 else "mixed"
    dropped = [f for f in flows if f.dropped_after]
    delivered = [f for f in flows if f.delivered]
    if dropped:
        observed = "dropped"
    elif delivered:
        observed = "delivered"
    else:
        observed = "seen"
    ports = sorted({f"{f.proto}/{f.dport}" if f.proto in ("TCP", "UDP", "SCTP") else f.proto for f in flows})
    mismatches = []
    dies = [f for f in dropped if f.verdict == "allow"]
    leaks = [f for f in delivered if f.verdict == "deny"]
    lines = []
    if dies:
        mismatches.append(ALLOWS_BUT_DIES)
        lines.append(f"{ALLOWS_BUT_DIES} ({', '.join(_port(f) for f in dies)}): a datapath problem; last seen at "
                     f"{dies[0].dropped_after}")
    if leaks:
        mismatches.append(DENIES_BUT_DELIVERED)
        lines.append(f"{DENIES_BUT_DELIVERED} ({', '.join(_port(f) for f in leaks)}): the CNI is not enforcing "
                     "NetworkPolicy")
    for f in flows:
        lines.append(f"flow {f.flow_id} {_port(f)}: {f.explanation}")
    return ReachCell(src, dst, policy, observed, dropped[0].dropped_after if dropped else None,
                     "; ".join(mismatches) or None, "\n".join(lines), [f.flow_id for f in flows], ports)


def _port(f: Any) -> str:
    return f"{f.proto}/{f.dport}" if f.proto in ("TCP", "UDP", "SCTP") else f.proto


def _policy_cell(engine: Any, src: str, dst: str, port: int | None, protocol: str,
                 reached: set[tuple[int | None, str]] | None) -> ReachCell:
    if engine is None:
        return ReachCell(src, dst, "unknown", "not observed", explanation="no policy engine (no cluster)")
    probes = [(port, protocol)] if port is not None else sorted(reached or {(80, "TCP")}, key=str)
    verdicts = []
    lines = []
    for p, proto in probes:
        try:
            v = engine.check(src, dst, p, protocol=proto)
        except Exception as exc:  # noqa: BLE001 - a pod the engine cannot judge: say so in the cell
            lines.append(f"{proto}/{p}: cannot evaluate: {exc}")
            verdicts.append("unknown")
            continue
        verdicts.append(v.verdict)
        lines.append(f"{proto}/{p}: {_first_line(v.explanation)}" if p is not None else _first_line(v.explanation))
    kinds = set(verdicts)
    policy = kinds.pop() if len(kinds) == 1 else "mixed"
    ports = [f"{proto}/{p}" if p is not None else proto for p, proto in probes]
    return ReachCell(src, dst, policy, "not observed", explanation="not observed in the captures; " +
                     "; ".join(lines), ports=ports)
