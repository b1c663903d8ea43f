"""Which node each address lives on, and which pod each veth/cali belongs to: from the cluster, else the traffic.

With cluster state: pod IPs and their nodeName, node addresses, Node ``spec.podCIDR``. Without (or for what it
does not list), the traffic says it:

- an encapsulated packet carries pod addresses inside node addresses: the inner source lives on the outer
  source's node, the inner destination on the outer destination's node (VTEP/outer IPs carrying a pod subnet);
- a node's underlay interface (``NODE/eth0``) sees its own address in every encapsulated packet: that names it;
- a pod-side interface (``NODE/vethXXXX``, ``pod:NS/NAME``) sees one pod address in (nearly) every packet: that
  pod is local to the node and owns the interface (the issue's "a veth is matched to its pod by its IP").

Addresses are keyed as ``version << 32 | value`` (the index's IPv4 integer or IPv6 table id).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracer.hops import roles as R
from tracer.hops.identity import hash_columns
from tracer.hops.cluster_facts import ClusterFacts

KIND_UNKNOWN, KIND_POD, KIND_NODE, KIND_SERVICE, KIND_EXTERNAL = 0, 1, 2, 3, 4
KIND_NAMES = {KIND_POD: "pod", KIND_NODE: "node", KIND_SERVICE: "service", KIND_EXTERNAL: "external"}
# Share of a pod-side point's packets that must carry one address for it to be that pod's interface.
DOMINANT_SHARE = 0.9


def addr_key(ver: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``ver << 32 | value`` as int64: one integer per address across IPv4 and the IPv6 table."""
    return (ver.astype(np.int64) << 32) | value.astype(np.int64)


@dataclass
class Topology:
    """Node names (codes), and per address key: node code, kind, pod name; per point: the pod it belongs to."""

    nodes: list[str] = field(default_factory=list)
    node_code: dict[str, int] = field(default_factory=dict)
    node_addr: dict[str, str] = field(default_factory=dict)   # node → its underlay address (text)
    addr_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))   # sorted
    addr_node: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))   # node code or -1
    addr_kind: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int8))
    addr_text: list[str] = field(default_factory=list)
    addr_pod: list[str | None] = field(default_factory=list)   # ns/name when the cluster names it
    addr_service: list[str | None] = field(default_factory=list)
    point_pod: dict[int, int] = field(default_factory=dict)    # point id → address key of its pod
    learned: list[str] = field(default_factory=list)           # what the traffic taught, for explanations

    def code(self, node: str | None) -> int:
        """The code of a node name, adding it when new; -1 for None."""
        if node is None:
            return -1
        if node not in self.node_code:
            self.node_code[node] = len(self.nodes)
            self.nodes.append(node)
        return self.node_code[node]

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Positions of address keys in the table (-1 when absent)."""
        if len(self.addr_keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self.addr_keys, keys)
        pos = np.minimum(pos, len(self.addr_keys) - 1)
        return np.where(self.addr_keys[pos] == keys, pos, -1)


def _dominant(keys: np.ndarray) -> tuple[int, int, int]:
    """(most common key, its count, total) of an array of keys."""
    if len(keys) == 0:
        return -1, 0, 0
    uniq, counts = np.unique(keys, return_counts=True)
    best = int(counts.argmax())
    return int(uniq[best]), int(counts[best]), len(keys)


def direction_evidence(group: np.ndarray, row_node: np.ndarray, ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: is it the first / the last observation of its packet on its node (of at least two there)?

    One node has one clock, so the order of a packet's observations on that node is reliable: on the sender the
    pod's interface sees it first and the underlay last; on the receiver the other way round. ``group`` is a
    packet grouping (-1 for none), ``row_node`` the node code of each row's capture point (-1 for none).
    """
    n = len(group)
    first = np.zeros(n, dtype=bool)
    last = np.zeros(n, dtype=bool)
    ok = np.flatnonzero((group >= 0) & (row_node >= 0))
    if len(ok) == 0:
        return first, last
    key = group[ok] * (int(row_node.max()) + 2) + row_node[ok]
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
    t = ts_ns[ok][order]
    tmin = np.repeat(np.minimum.reduceat(t, starts), sizes)
    tmax = np.repeat(np.maximum.reduceat(t, starts), sizes)
    multi = np.repeat(sizes >= 2, sizes)
    rows = ok[order]
    first[rows] = multi & (t == tmin) & (tmin != tmax)
    last[rows] = multi & (t == tmax) & (tmin != tmax)
    return first, last


def _vote(keys: np.ndarray) -> int | None:
    """The key with a clear majority (more than half of the votes), or None."""
    best, count, total = _dominant(keys)
    return best if total and count * 2 > total else None


def build_topology(columns: dict[str, np.ndarray], row_point: np.ndarray, points: list, facts: ClusterFacts,
                   addr_text, group: np.ndarray | None = None, ts_ns: np.ndarray | None = None) -> Topology:
    """Learn the topology (see the module docstring). ``points[i]`` has ``node`` and ``role``;
    ``addr_text(ver, value)`` renders an address; ``group`` (a packet grouping) and ``ts_ns`` give the order of a
    packet's observations within each node, which says which end of a link is local."""
    topo = Topology()
    for p in points:
        topo.code(p.node)
    n = len(row_point)
    i_ver = columns["i_ver"]
    src_key = addr_key(i_ver, columns["i_src"])
    dst_key = addr_key(i_ver, columns["i_dst"])
    o_src_key = addr_key(columns["o_ver"], columns["o_src"])
    o_dst_key = addr_key(columns["o_ver"], columns["o_dst"])
    has_ip = i_ver != 0
    all_keys = np.unique(np.concatenate([src_key[has_ip], dst_key[has_ip]]))
    texts = [addr_text(int(k) >> 32, int(k) & 0xFFFFFFFF) or "" for k in all_keys.tolist()]
    key_of_text = dict(zip(texts, all_keys.tolist()))
    point_node = np.array([topo.code(p.node) for p in points] + [-1], dtype=np.int64)
    row_node = point_node[row_point] if n else np.empty(0, dtype=np.int64)
    if group is not None and ts_ns is not None:
        first, last = direction_evidence(group, row_node, ts_ns)
    else:
        first = last = np.zeros(n, dtype=bool)

    node_of: dict[int, str] = {}
    kind_of: dict[int, int] = {}

    # A named node's underlay interface: outbound packets (last seen there on that node) carry its address as
    # outer source, inbound ones (first seen there) as outer destination.
    encap = (columns["encap"] != 0) & (columns["o_ver"] != 0)
    outer_node: dict[int, str] = {}
    for pid, p in enumerate(points):
        if p.role != R.HOST_ETH0 or p.node is None:
            continue
        mine = (row_point == pid) & encap
        votes = np.concatenate([o_src_key[mine & last], o_dst_key[mine & first]])
        best = _vote(votes)
        if best is None:
            # No other point on this node to order against: the address in every packet, if only one is.
            rows = np.flatnonzero(mine)
            if len(rows):
                both = np.concatenate([o_src_key[rows], o_dst_key[rows]])
                cand, count, _ = _dominant(both)
                others = np.unique(both)
                in_all = [k for k in others.tolist()
                          if np.count_nonzero((o_src_key[rows] == k) | (o_dst_key[rows] == k)) == len(rows)]
                best = in_all[0] if len(in_all) == 1 else None
                del cand, count
        if best is not None:
            outer_node[best] = p.node
    for ip, node in facts.node_ips.items():
        k = key_of_text.get(ip)
        if k is None:
            k = _text_key(ip, columns, addr_text)
        if k is not None:
            outer_node.setdefault(k, node)
            node_of[k] = node
            kind_of[k] = KIND_NODE
    # Outer addresses of encapsulated packets are nodes; name them by IP when nothing better is known.
    if encap.any():
        for k in np.unique(np.concatenate([o_src_key[encap], o_dst_key[encap]])).tolist():
            if k not in outer_node:
                name = addr_text(k >> 32, k & 0xFFFFFFFF) or str(k)
                outer_node[k] = facts.node_ips.get(name, name)
            node_of.setdefault(k, outer_node[k])
            kind_of.setdefault(k, KIND_NODE)

    # Inner addresses inside encapsulation live on the outer address's node.
    if encap.any():
        for inner, outer in ((src_key, o_src_key), (dst_key, o_dst_key)):
            i_e, o_e = inner[encap], outer[encap]
            _, at = np.unique(hash_columns([i_e, o_e]), return_index=True)   # distinct (inner, outer) pairs
            for ik, ok in zip(i_e[at].tolist(), o_e[at].tolist()):
                if ik not in node_of and ok in outer_node:
                    node_of[ik] = outer_node[ok]
                    kind_of.setdefault(ik, KIND_POD)
        topo.learned.append("pod addresses → nodes from the outer headers of encapsulated packets")

    # Pod-side points: the pod behind the interface is the source of what it sees first on its node and the
    # destination of what it sees last; without that order, the one address in (nearly) every packet, preferring
    # one already known to live on this node.
    pod_ip = {name: ip for ip, (name, _) in facts.pods.items()}
    for pid, p in enumerate(points):
        if p.role not in (R.VETH, R.CALI, R.POD_ETH0):
            continue
        if p.role == R.POD_ETH0 and (p.iface or "").startswith("pod:") and p.iface[4:] in pod_ip:
            k = key_of_text.get(pod_ip[p.iface[4:]])
            if k is not None:          # the cluster names the pod behind this capture point
                topo.point_pod[pid] = k
                continue
        mine = (row_point == pid) & has_ip
        rows = np.flatnonzero(mine)
        if not len(rows):
            continue
        best = _vote(np.concatenate([src_key[mine & first], dst_key[mine & last]]))
        if best is None:
            # Rows holding each address (as source or destination, counted once when both).
            s_k, d_k = src_key[rows], dst_key[rows]
            both = np.concatenate([s_k, d_k[d_k != s_k]])
            uniq, counts = np.unique(both, return_counts=True)
            cands = uniq[counts >= DOMINANT_SHARE * len(rows)].tolist()
            if len(cands) > 1 and p.node is not None:
                cands = [k for k in cands if node_of.get(k) == p.node]
            if len(cands) > 1:
                local = {k for k, _ in facts.pods.items()}
                cands = [k for k in cands if texts_of(k, all_keys, texts) in local and
                         facts.pods[texts_of(k, all_keys, texts)][1] in (p.node, None)] or cands
            best = cands[0] if len(cands) == 1 else None
        if best is not None:
            topo.point_pod[pid] = best
            if p.node is not None:
                node_of.setdefault(best, p.node)
            kind_of.setdefault(best, KIND_POD)

    # Cluster facts win over what the traffic suggests.
    pod_name: dict[int, str] = {}
    service_name: dict[int, str] = {}
    if facts.present:
        for k, text in zip(all_keys.tolist(), texts):
            kind = facts.kind_of_ip(text)
            kind_of[k] = {"pod": KIND_POD, "node": KIND_NODE, "service": KIND_SERVICE,
                          "external": KIND_EXTERNAL}.get(kind or "", KIND_UNKNOWN)
            node = facts.node_of_ip(text)
            if node is not None:
                node_of[k] = node
            if text in facts.pods:
                pod_name[k] = facts.pods[text][0]
            if text in facts.service_ips:
                service_name[k] = facts.service_ips[text]
    else:
        _prefix_fallback(all_keys, texts, node_of, kind_of)
        # A pod-subnet network address (x.y.z.0) is the node's tunnel address (flannel.1 takes its /24's network
        # address; Calico usually gives its tunnel the block's first address): the node's own, not a pod's.
        for k, text in zip(all_keys.tolist(), texts):
            if kind_of.get(k) == KIND_POD and text.endswith(".0") and ":" not in text:
                kind_of[k] = KIND_NODE

    for k, node in outer_node.items():
        text = addr_text(k >> 32, k & 0xFFFFFFFF)
        if text and node:
            topo.node_addr.setdefault(node, text)
    for ip, node in facts.node_ips.items():   # InternalIP first (tunnel addresses were added after it)
        topo.node_addr.setdefault(node, ip)
    topo.addr_keys = all_keys
    topo.addr_text = texts
    topo.addr_node = np.array([topo.code(node_of.get(k)) for k in all_keys.tolist()], dtype=np.int64)
    topo.addr_kind = np.array([kind_of.get(k, KIND_UNKNOWN) for k in all_keys.tolist()], dtype=np.int8)
    topo.addr_pod = [pod_name.get(k) for k in all_keys.tolist()]
    topo.addr_service = [service_name.get(k) for k in all_keys.tolist()]
    return topo


def texts_of(key: int, keys: np.ndarray, texts: list[str]) -> str:
    pos = int(np.searchsorted(keys, key))
    return texts[pos] if pos < len(keys) and keys[pos] == key else ""


def _text_key(ip: str, columns: dict[str, np.ndarray], addr_text) -> int | None:
    """The key of an IPv4 address given as text (node addresses may appear only as outer addresses)."""
    try:
        parts = [int(x) for x in ip.split(".")]
    except ValueError:
        return None
    if len(parts) != 4:
        return None
    return (4 << 32) | (parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3])


def _prefix_fallback(keys: np.ndarray, texts: list[str], node_of: dict[int, str], kind_of: dict[int, int]) -> None:
    """Without cluster state: an address in a /24 where every learned pod is on one node is on that node too.

    flannel gives each node a /24 by default and Calico's /26 blocks sit inside one node's /24 more often than
    not; a /24 that holds pods of two nodes is left alone.
    """
    by_net: dict[str, set[str]] = {}
    for k, text in zip(keys.tolist(), texts):
        if k in node_of and kind_of.get(k) == KIND_POD and text and ":" not in text:
            by_net.setdefault(text.rsplit(".", 1)[0], set()).add(node_of[k])
    for k, text in zip(keys.tolist(), texts):
        if k in node_of or not text or ":" in text:
            continue
        nodes = by_net.get(text.rsplit(".", 1)[0])
        if nodes and len(nodes) == 1:
            node_of[k] = next(iter(nodes))
            kind_of[k] = KIND_POD
