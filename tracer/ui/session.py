"""What the TUI is looking at: the growing packet index, the rows shown, marks, cluster and hop analysis.

``Session`` is the app's model and imports no Textual: workers fill it (index batches, cluster, analysis),
widgets read it to paint. Parts of the core that are not importable (not written yet, or broken) are
recorded in ``missing`` with the reason, so each pane can say honestly what it cannot show.
"""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracer.hops.fields import analysis_column
from tracer.ui import columns as C

CELL_BLOCK = 64  # rows formatted together (a screen is 20-60 rows)
ROW_COLUMNS = ("ts_ns", "caplen", "source", "encap", "vni", "o_ver", "o_src", "o_dst", "i_ver", "i_src", "i_dst",
               "i_proto", "i_sport", "i_dport", "i_len", "tcp_flags", "tcp_seq", "tcp_ack", "icmp_type",
               "icmp_code", "icmp_id", "icmp_seq", "flags")


def optional_import(name: str) -> tuple[Any | None, str | None]:
    """Import a core module that may not exist yet: (module, None) or (None, why not)."""
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, f"{name} not available yet ({exc})"
    except Exception as exc:  # noqa: BLE001 - a broken core module: the pane says so, the app still runs
        return None, f"{name} cannot be imported: {type(exc).__name__}: {exc}"


def core_function(*candidates: str) -> tuple[Any | None, str | None]:
    """The first of ``"package.module:function"`` that exists: (function, None) or (None, why not)."""
    problems = []
    for candidate in candidates:
        module_name, _, func = candidate.partition(":")
        module, why = optional_import(module_name)
        if module is not None and callable(getattr(module, func, None)):
            return getattr(module, func), None
        problems.append(why or f"{module_name}.{func} not available yet")
    return None, problems[0]


@dataclass
class RowCells:
    """The text of one painted packet row, already cleaned of control characters."""

    row: int
    no: str
    time: str
    point: str
    src: str
    dst: str
    outer: str  # "node-a → node-b" for encapsulated packets, else ""
    proto: str
    encap: str
    info: str
    verdict: str | None
    dropped: bool = False  # the hop analysis saw this packet stop short of its destination


@dataclass
class Session:
    """The state shared by the panes; the app mutates it only on the UI thread (workers post messages)."""

    paths: list[str]
    cluster_paths: list[str] = field(default_factory=list)
    cni: str | None = None
    vxlan_ports: tuple[int, ...] = (4789, 8472)
    index: Any = None
    count: int = 0  # rows of the index known to be valid (the loader reports them; the index may be growing)
    view: np.ndarray | None = None  # index rows shown, ascending; None = every row
    filter_expr: str = ""
    marks: set[int] = field(default_factory=set)
    cluster: Any = None
    analysis: Any = None
    missing: dict[str, str] = field(default_factory=dict)  # part -> why it cannot be shown
    loading: bool = False
    analyse: bool = True  # run the hop analysis once the index is complete
    live: Any = None  # a tracer.capture.live.LiveCapture whose spool is being followed (tracer live)
    follow: bool = False  # the input grows (live capture): keep reading until the user stops it (Esc)
    cancelled: bool = False
    time_format: str = "relative"
    _cells: OrderedDict = field(default_factory=OrderedDict)
    _names: dict = field(default_factory=dict)
    _first_ns: int | None = None

    # ----- rows ---------------------------------------------------------------------------------------------
    @property
    def total(self) -> int:
        return 0 if self.index is None else self.count

    @property
    def shown(self) -> int:
        return self.total if self.view is None else len(self.view)

    def view_row(self, pos: int) -> int:
        """The index row painted at list position ``pos``."""
        return int(pos) if self.view is None else int(self.view[pos])

    def view_pos(self, row: int) -> int | None:
        """The list position of index row ``row``, or None when the active filter hides it."""
        if self.view is None:
            return row if 0 <= row < self.total else None
        pos = int(np.searchsorted(self.view, row))
        return pos if pos < len(self.view) and int(self.view[pos]) == row else None

    def set_view(self, rows: np.ndarray | None, expr: str) -> None:
        self.view = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.filter_expr = expr
        self._cells.clear()  # delta times depend on the previous row shown

    def invalidate(self) -> None:
        self._cells.clear()
        self._first_ns = None

    # ----- naming -------------------------------------------------------------------------------------------
    def point_label(self, source_id: int) -> str:
        src = self.index.sources[source_id]
        if src.point:
            return src.point
        if src.iface:
            return src.iface
        return os.path.basename(src.file)

    def endpoint_name(self, ver: int, value: int) -> str | None:
        """``namespace/pod`` (or node / ``svc:ns/name``) for an address when a cluster is loaded, else None."""
        if self.cluster is None or ver == 0:
            return None
        key = (int(ver), int(value))
        if key not in self._names:
            self._names[key] = _endpoint_label(self.cluster, self.index.addr(ver, value))
        return self._names[key]

    def verdict(self, row: int) -> str | None:
        col = self.analysis_column("verdict")
        if col is None:
            return None
        return col[row]

    def analysis_column(self, name: str) -> Any:
        """The hop analysis's per-row column ``name`` (array-like: ``col[row]``, ``col[:n]``), or None until the
        analysis covers every row."""
        return analysis_column(self, name)

    # ----- cells --------------------------------------------------------------------------------------------
    def cells(self, pos: int) -> RowCells:
        """The cells of list position ``pos``. Built a block of rows at a time from a window of the index
        (``index.slice``), so painting never materialises a whole rebuilt column of a compact index, and
        cached: scrolling back repaints from the cache."""
        key = (pos, self.time_format)
        hit = self._cells.get(key)
        if hit is not None:
            self._cells.move_to_end(key)
            return hit
        start = pos - pos % CELL_BLOCK
        for p, cells in zip(range(start, start + CELL_BLOCK), self._make_block(start)):
            self._cells[(p, self.time_format)] = cells
        while len(self._cells) > 4096:
            self._cells.popitem(last=False)
        return self._cells[key]

    def _window(self, rows: np.ndarray) -> tuple[Any, np.ndarray]:
        """(index window holding ``rows``, positions of ``rows`` in it): one slice when the rows are close
        together, else the whole index (a sparse filter's rows are far apart)."""
        lo, hi = int(rows.min()), int(rows.max()) + 1
        if hi - lo <= 16 * CELL_BLOCK and hasattr(self.index, "slice"):
            return self.index.slice(lo, hi), rows - lo
        return self.index, rows

    def _make_block(self, start: int) -> list[RowCells]:
        stop = min(start + CELL_BLOCK, self.shown)
        positions = np.arange(start, stop)
        rows = positions if self.view is None else self.view[start:stop]
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return []
        window, at = self._window(rows)
        cols = {name: np.asarray(window[name])[at].tolist() for name in ROW_COLUMNS}
        prev_ns = None
        if start > 0:
            prev_row = self.view_row(start - 1)
            prev_win = self.index.slice(prev_row, prev_row + 1) if hasattr(self.index, "slice") else None
            prev_ns = int(prev_win["ts_ns"][0]) if prev_win is not None else int(self.index["ts_ns"][prev_row])
        first_ns = self.first_ns()
        hops = self._hop_block(rows)
        out = []
        for k, row in enumerate(rows.tolist()):
            r = {name: int(values[k]) for name, values in cols.items()}
            out.append(self._row_cells(row, r, first_ns, prev_ns, {name: v[k] for name, v in hops.items()}))
            prev_ns = r["ts_ns"]
        return out

    def _hop_block(self, rows: np.ndarray) -> dict[str, list[Any]]:
        """The hop analysis's cells for a block of rows, each column looked up once for the whole block."""
        out: dict[str, list[Any]] = {}
        for name in ("src_pod", "dst_pod", "verdict", "dropped"):
            col = self.analysis_column(name)
            if col is not None:
                out[name] = np.asarray(col[rows]).tolist()
        return out

    def value(self, name: str, row: int) -> int:
        """One cell of the index (through a one-row window: no whole-column rebuild of a compact index)."""
        if hasattr(self.index, "slice"):
            return int(self.index.slice(row, row + 1)[name][0])
        return int(self.index[name][row])

    def first_ns(self) -> int:
        if not self.total:
            return 0
        if self._first_ns is None:
            head = self.index.slice(0, 1) if hasattr(self.index, "slice") else self.index
            self._first_ns = int(head["ts_ns"][0])
        return self._first_ns

    def _row_cells(self, row: int, r: dict[str, int], first_ns: int, prev_ns: int | None,
                   hops: dict[str, Any]) -> RowCells:
        """One row's cells; ``hops`` holds its hop-analysis cells (``_hop_block``), empty without an analysis."""
        idx = self.index
        proto = r["i_proto"]
        src_pod, dst_pod = hops.get("src_pod"), hops.get("dst_pod")
        src = C.endpoint(idx.addr(r["i_ver"], r["i_src"]) if r["i_ver"] else None, r["i_sport"], proto,
                         (str(src_pod) if src_pod else None) or self.endpoint_name(r["i_ver"], r["i_src"]))
        dst = C.endpoint(idx.addr(r["i_ver"], r["i_dst"]) if r["i_ver"] else None, r["i_dport"], proto,
                         (str(dst_pod) if dst_pod else None) or self.endpoint_name(r["i_ver"], r["i_dst"]))
        outer = ""
        if r["encap"] and r["o_ver"]:
            o_src = self.endpoint_name(r["o_ver"], r["o_src"]) or idx.addr(r["o_ver"], r["o_src"])
            o_dst = self.endpoint_name(r["o_ver"], r["o_dst"]) or idx.addr(r["o_ver"], r["o_dst"])
            outer = f"{o_src} → {o_dst}"
        return RowCells(
            row=row,
            no=str(row + 1),
            time=C.format_time(r["ts_ns"], self.time_format, first_ns=first_ns, prev_ns=prev_ns),
            point=self.point_label(r["source"]),
            src=src,
            dst=dst,
            outer=outer,
            proto=C.proto_label(r["i_ver"], proto),
            encap=C.encap_label(r["encap"], r["vni"]),
            info=self._info(row, r),
            verdict=hops.get("verdict"),
            dropped=bool(hops.get("dropped", False)),
        )

    def _info(self, row: int, r: dict[str, int]) -> str:
        if r["i_ver"] == 0:
            # Name a non-IP frame from its link header (ARP, LLDP, STP…), as `tracer show` does; only the
            # visible rows get here, so reading their first bytes costs nothing worth caching.
            from tracer.capture.rows import link_summary

            try:
                kind = link_summary(self.index, row)
            except (OSError, ValueError, IndexError):
                kind = None
            if kind:
                return f"{kind}, {r['caplen']} bytes"
        return C.info_text(r)


def _endpoint_label(cluster: Any, ip: str | None) -> str | None:
    """A short name for an address from the cluster model: pods as ``ns/name``, nodes by name."""
    if ip is None:
        return None
    try:
        ep = cluster.resolve_ip(ip)
    except Exception:  # noqa: BLE001 - a name is a nicety; the address is still shown
        return None
    if ep is None:
        return None
    kind = getattr(ep, "kind", None)
    name = getattr(ep, "name", None)
    ns = getattr(ep, "namespace", None)
    if kind == "pod" and name:
        return f"{ns}/{name}" if ns else name
    if kind == "node" and name:
        return name
    if kind == "service" and name:
        return f"svc:{ns}/{name}" if ns else f"svc:{name}"
    return None
