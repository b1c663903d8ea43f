"""Clock offsets between nodes, estimated NTP-style from packets that cross between them in both directions.

Captures taken on different nodes carry each node's own clock. For a packet from node A to node B, the
difference between its first observation on B and its last on A is ``delay + (θ_B − θ_A)``; for B → A it is
``delay − (θ_B − θ_A)``. Taking the smallest difference in each direction (NTP's minimum-delay filter: the
samples least disturbed by queueing) and assuming a symmetric path gives ``θ_B − θ_A = (d_AB − d_BA) / 2``.
Offsets are relative to a reference node (the one with most observations); a node linked to no other by
two-way traffic is reported as not estimated and left at 0.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ClockEstimate:
    """Per-node offsets in ns (subtract from that node's timestamps) and how each was obtained."""

    offsets_ns: dict[str, int] = field(default_factory=dict)
    reference: str | None = None
    estimated: dict[str, bool] = field(default_factory=dict)
    samples: dict[tuple[str, str], int] = field(default_factory=dict)   # (from, to) → packets used
    one_way_ns: dict[tuple[str, str], int] = field(default_factory=dict)  # (a, b) → estimated wire delay

    def seconds(self) -> dict[str, float]:
        """Offsets in seconds per node that was estimated (with the reference at 0), as ``tracer path`` reports.

        Empty when no node pair was seen both ways: nothing was estimated, and a 0 would look like a measurement.
        """
        done = {n for n, ok in self.estimated.items() if ok}
        if len(done) < 2:
            return {}
        return {n: self.offsets_ns[n] / 1e9 for n in sorted(done)}


def crossing_delays(packet: np.ndarray, node: np.ndarray, ts_ns: np.ndarray, src_node: np.ndarray,
                    dst_node: np.ndarray, point: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each packet seen on its source node and on its destination node: (src, dst, first-on-dst − last-on-src).

    ``packet``, ``node``, ``ts_ns``: per row; ``src_node``/``dst_node``: per row, the nodes of the packet's
    endpoints (codes, -1 unknown). With ``point`` (per row), a packet seen twice at one point is left out: that
    is two packets sharing a key (or a retransmission), whose timings would corrupt the minimum.
    Returns three arrays over the packets that qualify.
    """
    ok = (packet >= 0) & (node >= 0) & (src_node >= 0) & (dst_node >= 0) & (src_node != dst_node)
    if point is not None and ok.any():
        rows = np.flatnonzero(ok)
        pair = packet[rows] * (int(point.max()) + 1) + point[rows]
        uniq, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
        dup_packets = np.unique(packet[rows][counts[inverse.ravel()] > 1])
        ok &= ~np.isin(packet, dup_packets)
    on_src = ok & (node == src_node)
    on_dst = ok & (node == dst_node)
    if not on_src.any() or not on_dst.any():
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    n_pk = int(packet.max()) + 1
    leave = np.full(n_pk, np.iinfo(np.int64).min, dtype=np.int64)
    arrive = np.full(n_pk, np.iinfo(np.int64).max, dtype=np.int64)
    _reduce(np.maximum, leave, packet[on_src], ts_ns[on_src])
    _reduce(np.minimum, arrive, packet[on_dst], ts_ns[on_dst])
    pk_src = np.full(n_pk, -1, dtype=np.int64)
    pk_dst = np.full(n_pk, -1, dtype=np.int64)
    pk_src[packet[ok]] = src_node[ok]
    pk_dst[packet[ok]] = dst_node[ok]
    both = (leave != np.iinfo(np.int64).min) & (arrive != np.iinfo(np.int64).max)
    return pk_src[both], pk_dst[both], arrive[both] - leave[both]


def _reduce(ufunc: np.ufunc, out: np.ndarray, keys: np.ndarray, values: np.ndarray) -> None:
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    out[k[starts]] = ufunc(out[k[starts]], ufunc.reduceat(values[order], starts))


def estimate_offsets(node_names: list[str], src: np.ndarray, dst: np.ndarray, delay: np.ndarray,
                     weights: dict[str, int] | None = None) -> ClockEstimate:
    """Solve per-node offsets from crossing delays (see the module docstring)."""
    est = ClockEstimate()
    if not node_names:
        return est
    best: dict[tuple[int, int], int] = {}
    count: dict[tuple[int, int], int] = {}
    if len(delay):
        pair = src * (len(node_names) + 1) + dst
        order = np.argsort(pair, kind="stable")
        ps = pair[order]
        starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])
        mins = np.minimum.reduceat(delay[order], starts)
        sizes = np.diff(np.r_[starts, len(ps)])
        for s, m, c in zip(ps[starts].tolist(), mins.tolist(), sizes.tolist()):
            a, b = divmod(s, len(node_names) + 1)
            best[(a, b)] = m
            count[(a, b)] = c
    # θ_b − θ_a for every pair seen both ways.
    rel: dict[int, list[tuple[int, int]]] = {}
    for (a, b), d_ab in best.items():
        if (b, a) in best and a < b:
            d_ba = best[(b, a)]
            diff = (d_ab - d_ba) // 2
            rel.setdefault(a, []).append((b, diff))
            rel.setdefault(b, []).append((a, -diff))
            est.one_way_ns[(node_names[a], node_names[b])] = (d_ab + d_ba) // 2
    for (a, b), c in count.items():
        est.samples[(node_names[a], node_names[b])] = c
    weights = weights or {}
    ref = max(range(len(node_names)), key=lambda i: (weights.get(node_names[i], 0), -i))
    est.reference = node_names[ref]
    offsets = {ref: 0}
    queue = deque([ref])
    while queue:
        a = queue.popleft()
        for b, diff in rel.get(a, ()):
            if b not in offsets:
                offsets[b] = offsets[a] + diff
                queue.append(b)
    for i, name in enumerate(node_names):
        est.offsets_ns[name] = int(offsets.get(i, 0))
        est.estimated[name] = i in offsets
    return est
