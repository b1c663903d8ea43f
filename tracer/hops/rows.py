"""The hop keys ``tracer show`` gains, as ``tracer.capture.rows.ExtraColumn`` hooks over a lazily run analysis.

Keys (public interface, issue 4): ``node role packet_id hop_index hop_count src_pod dst_pod flow_id service
verdict last_seen``. ``hop_index`` is 1-based within ``hop_count`` hops of the packet's CNI path; ids are
0-based; ``verdict`` is null without ``--cluster``. The analysis needs the whole capture, so it runs on the first
chunk of rows asked for (the index is complete by then); with ``enabled=False`` (stdin streamed row by row)
every hop key is null.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HOP_KEYS = ("node", "role", "packet_id", "hop_index", "hop_count", "src_pod", "dst_pod", "flow_id", "service",
            "verdict", "last_seen")
_INT_KEYS = frozenset({"packet_id", "hop_index", "hop_count", "flow_id"})
_WIDTH = {"node": 12, "role": 12, "hop": 5, "verdict": 7}


class LazyAnalysis:
    """Runs ``analyze`` once per index (on first use) with the command line's cluster and CNI mode."""

    def __init__(self, cluster: Any = None, cni: str | None = None, enabled: bool = True) -> None:
        self.cluster = cluster
        self.cni = cni
        self.enabled = enabled
        self._key: tuple[int, int] | None = None
        self._analysis: Any = None

    def get(self, index: Any) -> Any:
        if not self.enabled:
            return None
        key = (id(index), len(index))
        if self._key != key:
            from tracer.hops.analysis import analyze  # noqa: PLC0415

            self._analysis = analyze(index, cluster=self.cluster, cni=self.cni)
            self._key = key
        return self._analysis


def _values(lazy: LazyAnalysis, key: str):
    def values(index: Any, rows: np.ndarray) -> list[Any]:
        analysis = lazy.get(index)
        if analysis is None:
            return [None] * len(rows)
        if key == "hop":
            idx = analysis.columns["hop_index"][rows]
            cnt = analysis.columns["hop_count"][rows]
            return [f"{i}/{c}" if i > 0 else None for i, c in zip(idx.tolist(), cnt.tolist())]
        col = analysis.columns[key][rows]
        if key in _INT_KEYS:
            return np.where(col >= 0, col, None).tolist()
        return col.tolist()
    return values


def hop_columns(lazy: LazyAnalysis, fmt: str = "jsonl") -> list[Any]:
    """The extra columns for ``RowWriter``: every hop key for jsonl/csv; a compact few for the table."""
    from tracer.capture.rows import ExtraColumn  # noqa: PLC0415

    keys = ("node", "role", "hop", "verdict") if fmt == "table" else HOP_KEYS
    return [ExtraColumn(k, _values(lazy, k), _WIDTH.get(k, 12)) for k in keys]
