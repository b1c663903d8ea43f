"""Display-filter fields over the cluster model and the hop analysis: ``k8s.ns``, ``k8s.pod``, ``k8s.node``,
``hop.role`` and ``verdict`` — the names the TUI's ``/`` prompt and ``tracer show --filter`` add to the capture
core's syntax.

Each resolver is ``(index, op, value) -> mask`` (the filter contract, ``tracer.capture.filter``). They read a
*context* lazily — any object with ``index``, ``total`` (rows to judge), ``cluster``, ``analysis`` and ``missing``
(part → why it is not there); the TUI's ``Session`` is one — so a resolver made before the capture is indexed
sees the analysis once it exists. Names are resolved once per distinct address (``np.unique``) or per distinct
label of a hop-analysis column (``LabelColumn.mask``), never once per packet.

``k8s.*`` match when either end of the (inner) conversation matches, like ``ip.addr`` (and ``!=`` when neither end
does, as in Wireshark); ``k8s.ns``/``k8s.pod`` also match the pod behind a Service or NodePort address (the DNATed
backend the hop analysis names); ``k8s.node`` also matches packets captured on that node. A field whose data is
missing (no cluster, analysis not finished) raises ``FilterError`` saying what is missing rather than silently
matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tracer.errors import FilterError

EQ = {"==", "eq", "="}
NE = {"!=", "ne"}
CONTAINS = {"contains"}
MATCHES = {"matches", "~"}
Resolver = Callable[[Any, str, Any], np.ndarray]


def bare(value: Any) -> str:
    """A filter value as text without surrounding quotes (``deny``, ``"deny"`` and ``'deny'`` are one value)."""
    return str(value).strip().strip("'\"")


def predicate(field: str, op: str, value: Any) -> Callable[[str | None], bool]:
    """The test a label must pass for ``field op value``; string values may be quoted or not."""
    want = bare(value)
    if op in EQ:
        return lambda s: s == want
    if op in NE:
        return lambda s: s != want
    if op in CONTAINS:
        return lambda s: s is not None and want in s
    if op in MATCHES:
        try:
            rx = re.compile(want)
        except re.error as exc:
            raise FilterError(f"{field}: bad regular expression: {exc}") from None
        return lambda s: s is not None and rx.search(s) is not None
    raise FilterError(f"{field} supports ==, !=, contains and matches, not {op}")


def analysis_column(ctx: Any, name: str) -> Any:
    """The hop analysis's per-row column ``name`` when it covers every row of the context, else None."""
    analysis = getattr(ctx, "analysis", None)
    if analysis is None:
        return None
    cols = getattr(analysis, "columns", None) or {}
    col = cols.get(name)
    if col is None or len(col) < ctx.total:
        return None
    return col


def _endpoint_attr(ctx: Any, ver: int, value: int, name: str) -> str | None:
    if ctx.cluster is None or ver == 0:
        return None
    try:
        ep = ctx.cluster.resolve_ip(ctx.index.addr(ver, value))
    except Exception:  # noqa: BLE001 - an unresolvable address simply has no name
        return None
    kind = getattr(ep, "kind", None)
    if ep is None or kind not in ("pod", "node", "service"):
        return None
    if name == "pod":
        if kind != "pod":
            return None
        ns, pod = getattr(ep, "namespace", None), getattr(ep, "name", None)
        return f"{ns}/{pod}" if ns and pod else pod
    if name == "node":
        return getattr(ep, "node", None) or (getattr(ep, "name", None) if kind == "node" else None)
    return getattr(ep, "namespace", None)


def _by_address(ctx: Any, index: Any, field: str, attr: str, op: str, value: Any) -> np.ndarray:
    if ctx.cluster is None:
        raise FilterError(f"{field} needs cluster state (--cluster PATH)")
    if op in NE:
        # As Wireshark's ``ip.addr != x`` (3.6+): neither end is x — not "some end is not x", which is almost
        # always true for a two-ended field.
        return ~_by_address(ctx, index, field, attr, "==", value)
    pred = predicate(field, op, value)
    n = ctx.total
    ver = np.asarray(index["i_ver"][:n]).astype(np.uint64)
    mask = np.zeros(n, dtype=bool)
    for side in ("i_src", "i_dst"):
        keys = (ver << np.uint64(32)) | np.asarray(index[side][:n]).astype(np.uint64)
        uniq, inverse = np.unique(keys, return_inverse=True)
        hit = np.array([pred(_endpoint_attr(ctx, int(k >> np.uint64(32)), int(k & np.uint64(0xFFFFFFFF)), attr))
                        for k in uniq], dtype=bool)
        mask |= hit[inverse]
    if attr in ("ns", "pod"):
        # The hop analysis names the pod behind a Service or NodePort address too (the DNATed backend, which
        # is what NetworkPolicy judges), so `k8s.ns == python` also keeps the client's leg to the NodePort.
        label_pred = pred if attr == "pod" else (lambda s: pred(s.split("/", 1)[0] if s else None))
        for column in ("src_pod", "dst_pod"):
            col = analysis_column(ctx, column)
            if col is not None:
                mask |= col.mask(label_pred, slice(0, n))
    return mask


def _node_of_capture(ctx: Any, index: Any, op: str, value: Any) -> np.ndarray:
    pred = predicate("k8s.node", op, value)
    n = ctx.total
    col = analysis_column(ctx, "node")
    if col is not None:
        return col.mask(pred, slice(0, n))
    nodes = np.array([pred(getattr(src, "node", None)) for src in index.sources] or [False], dtype=bool)
    return nodes[np.asarray(index["source"][:n])]


VERDICTS = ("allow", "deny", "unknown")


def _known_value(field: str, op: str, value: Any, known: tuple[str, ...]) -> None:
    """A field with a fixed set of values refuses any other with ``==``/``!=``: a typo (``verdict == dney``)
    is an error naming the values, not a filter that silently matches nothing (or everything)."""
    want = bare(value)
    if (op in EQ or op in NE) and want not in known:
        raise FilterError(f"{field} is one of {', '.join(known)}, not {want!r}")


def _hop_column(ctx: Any, column: str, field: str, op: str, value: Any) -> np.ndarray:
    if field == "verdict" and getattr(ctx, "cluster", None) is None:
        # Verdicts come from NetworkPolicy: without cluster state every row's verdict is unknown (None), and a
        # filter on it would silently match nothing.
        raise FilterError("verdict needs cluster state (--cluster PATH)")
    col = analysis_column(ctx, column)
    if col is None:
        why = (getattr(ctx, "missing", None) or {}).get("analysis", "the hop analysis has not finished")
        raise FilterError(f"{field} needs the hop analysis ({why})")
    return col.mask(predicate(field, op, value), slice(0, ctx.total))


@dataclass
class FieldContext:
    """What the resolvers read, for a caller without a TUI session (``tracer show --filter``): fill ``index``,
    ``total`` and ``analysis`` once the capture is indexed."""

    cluster: Any = None
    index: Any = None
    total: int = 0
    analysis: Any = None
    missing: dict[str, str] = field(default_factory=dict)


def make_resolvers(ctx: Any) -> dict[str, Resolver]:
    """The filter fields over ``ctx`` (see the module docstring), ready for ``compile_filter(fields=...)``."""
    from tracer.hops.roles import ROLES  # noqa: PLC0415

    def hop_role(index: Any, op: str, value: Any) -> np.ndarray:
        _known_value("hop.role", op, value, ROLES)
        return _hop_column(ctx, "role", "hop.role", op, value)

    def verdict(index: Any, op: str, value: Any) -> np.ndarray:
        _known_value("verdict", op, value, VERDICTS)
        return _hop_column(ctx, "verdict", "verdict", op, value)

    def k8s_node(index: Any, op: str, value: Any) -> np.ndarray:
        captured = _node_of_capture(ctx, index, op, value)
        if ctx.cluster is None:
            return captured
        return captured | _by_address(ctx, index, "k8s.node", "node", op, value)

    return {
        "k8s.ns": lambda index, op, value: _by_address(ctx, index, "k8s.ns", "ns", op, value),
        "k8s.pod": lambda index, op, value: _by_address(ctx, index, "k8s.pod", "pod", op, value),
        "k8s.node": k8s_node,
        "hop.role": hop_role,
        "verdict": verdict,
    }
