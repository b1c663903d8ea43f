"""Display-filter fields the TUI adds to the capture core's syntax: ``k8s.ns``, ``k8s.pod``, ``k8s.node``,
``hop.role`` and ``verdict``.

Each resolver is ``(index, op, value) -> mask`` (the filter contract). Names come from the cluster model and
the hop analysis the session holds; they are resolved once per distinct address (``np.unique``), never once
per packet. ``k8s.*`` match when either end of the (inner) conversation matches, like ``ip.addr`` (and ``!=`` when neither
end does, as in Wireshark);
``k8s.node`` also matches packets captured on that node. Without a cluster or hop analysis the field raises
``FilterError`` saying what is missing, rather than silently matching nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from tracer.errors import FilterError
from tracer.ui.session import VERDICT_CODES, Session, object_labels

EQ = {"==", "eq", "="}
NE = {"!=", "ne"}
CONTAINS = {"contains"}
MATCHES = {"matches", "~"}


def _predicate(field: str, op: str, value: Any) -> Callable[[str | None], bool]:
    want = str(value).strip().strip("'\"")
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


def _endpoint_attr(session: Session, ver: int, value: int, name: str) -> str | None:
    if session.cluster is None or ver == 0:
        return None
    try:
        ep = session.cluster.resolve_ip(session.index.addr(ver, value))
    except Exception:  # noqa: BLE001 - an unresolvable address simply has no name
        return None
    if ep is None or getattr(ep, "kind", None) not in ("pod", "node", "service"):
        return None
    if name == "pod":
        if getattr(ep, "kind", None) != "pod":
            return None
        ns, pod = getattr(ep, "namespace", None), getattr(ep, "name", None)
        return f"{ns}/{pod}" if ns and pod else pod
    if name == "node":
        return getattr(ep, "node", None) or (getattr(ep, "name", None) if ep.kind == "node" else None)
    return getattr(ep, "namespace", None)


def _by_address(session: Session, index: Any, field: str, attr: str, op: str, value: Any) -> np.ndarray:
    if session.cluster is None:
        raise FilterError(f"{field} needs cluster state (--cluster PATH)")
    if op in NE:
        # As Wireshark's ``ip.addr != x`` (3.6+): neither end is x — not "some end is not x", which is almost
        # always true for a two-ended field.
        return ~_by_address(session, index, field, attr, "==", value)
    pred = _predicate(field, op, value)
    n = session.total
    ver = np.asarray(index["i_ver"][:n]).astype(np.uint64)
    mask = np.zeros(n, dtype=bool)
    for side in ("i_src", "i_dst"):
        keys = (ver << np.uint64(32)) | np.asarray(index[side][:n]).astype(np.uint64)
        uniq, inverse = np.unique(keys, return_inverse=True)
        hit = np.array([pred(_endpoint_attr(session, int(k >> np.uint64(32)), int(k & np.uint64(0xFFFFFFFF)),
                                            attr)) for k in uniq], dtype=bool)
        mask |= hit[inverse]
    if attr in ("ns", "pod"):
        # The hop analysis names the pod behind a Service or NodePort address too (the DNATed backend, which
        # is what NetworkPolicy judges), so `k8s.ns == python` also keeps the client's leg to the NodePort.
        for column in ("src_pod", "dst_pod"):
            col = session.analysis_column(column)
            if col is None or col.dtype.kind not in "OUS":
                continue
            labels, inverse = np.unique(object_labels(col[:n]), return_inverse=True)
            names = [str(s) or None for s in labels]
            if attr == "ns":
                names = [s.split("/", 1)[0] if s else None for s in names]
            mask |= np.array([pred(s) for s in names], dtype=bool)[inverse]
    return mask


def _node_of_capture(session: Session, index: Any, op: str, value: Any) -> np.ndarray:
    pred = _predicate("k8s.node", op, value)
    n = session.total
    col = session.analysis_column("node")
    if col is not None and col.dtype.kind in "OUS":
        labels, inverse = np.unique(object_labels(col[:n]), return_inverse=True)
        return np.array([pred(s or None) for s in labels], dtype=bool)[inverse]
    nodes = np.array([pred(getattr(src, "node", None)) for src in index.sources] or [False], dtype=bool)
    return nodes[np.asarray(index["source"][:n])]


def _names_column(session: Session, column: str, names: dict[int, str | None], field: str, op: str,
                  value: Any) -> np.ndarray:
    col = session.analysis_column(column)
    if col is None:
        why = session.missing.get("analysis", "the hop analysis has not finished")
        raise FilterError(f"{field} needs the hop analysis ({why})")
    pred = _predicate(field, op, value)
    col = col[: session.total]
    if col.dtype.kind in "OUS":
        col = object_labels(col)
    uniq, inverse = np.unique(col, return_inverse=True)
    if col.dtype.kind in "OUS":
        hit = [pred(str(v) or None) for v in uniq]
    else:
        hit = [pred(names.get(int(v), str(int(v)))) for v in uniq]
    return np.array(hit, dtype=bool)[inverse] if len(uniq) else np.zeros(0, dtype=bool)


def make_resolvers(session: Session) -> dict[str, Callable[[Any, str, Any], np.ndarray]]:
    """The TUI's extra filter fields over this session."""
    try:
        from tracer.hops.roles import ROLES

        role_names = dict(enumerate(ROLES))
    except ImportError:
        role_names = {}

    def k8s_node(index: Any, op: str, value: Any) -> np.ndarray:
        captured = _node_of_capture(session, index, op, value)
        if session.cluster is None:
            return captured
        return captured | _by_address(session, index, "k8s.node", "node", op, value)

    return {
        "k8s.ns": lambda index, op, value: _by_address(session, index, "k8s.ns", "ns", op, value),
        "k8s.pod": lambda index, op, value: _by_address(session, index, "k8s.pod", "pod", op, value),
        "k8s.node": k8s_node,
        "hop.role": lambda index, op, value: _names_column(session, "role", role_names, "hop.role", op, value),
        "verdict": lambda index, op, value: _names_column(session, "verdict", VERDICT_CODES, "verdict", op,
                                                          value),
    }
