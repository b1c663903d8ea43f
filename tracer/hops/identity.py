"""The same physical packet at every capture point: a ``packet_id`` per index row, with array operations only.

Two observations are the same packet when they agree on what no hop rewrites: the innermost IP version and
protocol, IP ID, IP length, TCP seq/ack, ICMP type/id/seq, and one endpoint — TTL, MACs and encapsulation
differ between hops and are left out. kube-proxy's DNAT rewrites the destination of a request and the source
of its reply (un-DNAT), masquerade rewrites the source: so rows are grouped twice, once on the key with the
source (``key_src``: stable across DNAT) and once on the key with the destination (``key_dst``: stable across
un-DNAT and SNAT), and a packet is a connected component of the groupings. TCP and ICMP echo rows, whose
sequence numbers or echo id/seq make the stable fields unique on their own, are grouped on those alone
(``key_any``): that survives every rewrite at once, including NodePort's DNAT plus masquerade.

Equal keys far apart in time are different packets (a retransmission with the same IP ID, IPv6 which has no
IP ID): consecutive observations of one key more than ``window_ns`` apart start a new packet. Rewrites happen
inside one node (one clock), so the destination key uses the tighter ``nat_window_ns``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

U64 = np.uint64
_GOLDEN = U64(0x9E3779B97F4A7C15)
_M1 = U64(0xBF58476D1CE4E5B9)
_M2 = U64(0x94D049BB133111EB)

# Fields that survive every hop of one packet (the endpoint is added per key).
STABLE_FIELDS = ("i_ver", "i_proto", "i_ipid", "i_len", "tcp_seq", "tcp_ack", "icmp_type", "icmp_id", "icmp_seq")


def _fmix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole word."""
    h = h ^ (h >> U64(30))
    h = h * _M1
    h = h ^ (h >> U64(27))
    h = h * _M2
    return h ^ (h >> U64(31))


def hash_columns(cols: list) -> np.ndarray:
    """A 64-bit hash per row of several integer columns (collisions ~ n² / 2⁶⁴: none in practice). A column may
    be given as a function returning it, so a caller can have it built only while it is hashed."""
    h = None
    with np.errstate(over="ignore"):
        for k, c in enumerate(cols):
            c = c() if callable(c) else c
            if h is None:
                h = np.full(len(c), U64(0x243F6A8885A308D3))
            h = _fmix(h * _GOLDEN + c.astype(U64) + U64(k + 1))
    return h


def _stable_hash(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Hash of the fields no hop rewrites, packed into three 64-bit words first (fewer mixing rounds)."""
    u = lambda name: np.asarray(columns[name]).astype(U64)  # noqa: E731
    w1 = (u("i_ver") << U64(56)) | (u("i_proto") << U64(48)) | (u("i_ipid") << U64(32)) | (u("i_len") << U64(16)) \
        | u("icmp_type")
    w2 = (u("tcp_seq") << U64(32)) | u("tcp_ack")
    w3 = (u("icmp_id") << U64(16)) | u("icmp_seq")
    return hash_columns([w1, w2, w3])


def _with_endpoint(stable: np.ndarray, addr: np.ndarray, port: np.ndarray) -> np.ndarray:
    word = (np.asarray(addr).astype(U64) << U64(16)) | np.asarray(port).astype(U64)
    with np.errstate(over="ignore"):
        return _fmix(stable * _GOLDEN + word)


def packet_keys(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(key_src, key_dst)``: per-row hashes of the stable fields with the source / destination endpoint."""
    stable = _stable_hash(columns)
    return (_with_endpoint(stable, columns["i_src"], columns["i_sport"]),
            _with_endpoint(stable, columns["i_dst"], columns["i_dport"]))


def all_keys(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(key_src, key_dst, key_stable)`` computed from one stable hash."""
    stable = _stable_hash(columns)
    return (_with_endpoint(stable, columns["i_src"], columns["i_sport"]),
            _with_endpoint(stable, columns["i_dst"], columns["i_dport"]), stable)


def stable_key(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Per-row hash of the stable fields alone (no endpoint): survives DNAT and SNAT together."""
    return _stable_hash(columns)


@dataclass(frozen=True)
class Grouping:
    """Rows grouped by key: ``ids`` per row (-1 outside), and the rows sorted by group with each group's start,
    so a per-group reduction is one ``reduceat`` (no sort)."""

    ids: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    def group_min(self, label: np.ndarray) -> np.ndarray:
        """For each row, the minimum of ``label`` over its group (rows outside keep theirs)."""
        if len(self.order) == 0:
            return label
        mins = np.minimum.reduceat(label[self.order], self.starts)
        out = label.copy()
        out[self.order] = np.repeat(mins, np.diff(np.r_[self.starts, len(self.order)]))
        return out


def grouping(key: np.ndarray, ts_ns: np.ndarray, window_ns: int, valid: np.ndarray | None = None) -> Grouping:
    """Group rows with equal ``key`` whose consecutive timestamps are at most ``window_ns`` apart."""
    n = len(key)
    ids = np.full(n, -1, dtype=np.int64)
    rows = np.arange(n) if valid is None else np.flatnonzero(valid)
    if len(rows) == 0:
        return Grouping(ids, rows.astype(np.int64), np.empty(0, dtype=np.int64))
    # Sort by (key, time) in one unstable sort: the low bits of the 64-bit hash are replaced by the row's rank
    # in time, which makes every value unique and orders equal keys by time (a lexsort costs ~6x more). The hash
    # keeps 64 - log2(n) bits: ~44 for a million rows, collisions stay negligible.
    t_rows = ts_ns[rows]
    bits = max(1, int(len(rows)).bit_length())
    if len(rows) < 2 or bool(np.all(t_rows[1:] >= t_rows[:-1])):
        rank = np.arange(len(rows), dtype=np.uint64)
    else:
        rank = np.empty(len(rows), dtype=np.uint64)
        rank[np.argsort(t_rows, kind="stable")] = np.arange(len(rows), dtype=np.uint64)
    shift = np.uint64(bits)
    composite = ((key[rows] >> shift) << shift) | rank
    order = rows[np.argsort(composite)]
    k = key[order] >> shift
    t = ts_ns[order]
    new = np.empty(len(order), dtype=bool)
    new[0] = True
    np.not_equal(k[1:], k[:-1], out=new[1:])
    new[1:] |= (t[1:] - t[:-1]) > window_ns
    ids[order] = np.cumsum(new) - 1
    return Grouping(ids, order, np.flatnonzero(new))


def group_by_key(key: np.ndarray, ts_ns: np.ndarray, window_ns: int,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Group numbers per row (see ``grouping``); rows where ``valid`` is False get -1."""
    return grouping(key, ts_ns, window_ns, valid).ids


def components(*groupings: "Grouping | np.ndarray", max_rounds: int = 64) -> np.ndarray:
    """Connected components of rows linked by sharing a group in any of ``groupings``.

    Label propagation: every row starts with its first grouping's number and repeatedly takes the minimum over
    its groups; it converges in a couple of rounds because rewrites chain at most a few groups. Rows outside
    every grouping get -1.
    """
    gs = [g if isinstance(g, Grouping) else _as_grouping(g) for g in groupings]
    first = gs[0].ids
    label = first.copy()
    # Rows only in a later grouping start from a number of their own, above every first-grouping number.
    spare = np.flatnonzero(first < 0)
    label[spare] = int(first.max(initial=-1)) + 1 + spare
    for _ in range(max_rounds):
        new = label
        for g in gs:
            new = g.group_min(new)
        if np.array_equal(new, label):
            break
        label = new
    inside = np.zeros(len(first), dtype=bool)
    for g in gs:
        inside |= g.ids >= 0
    return np.where(inside, label, -1)


def _as_grouping(ids: np.ndarray) -> Grouping:
    ok = np.flatnonzero(ids >= 0)
    order = ok[np.argsort(ids[ok], kind="stable")]
    g = ids[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.empty(0, dtype=np.int64)
    return Grouping(ids, order, starts)


def renumber_by_first_row(label: np.ndarray) -> np.ndarray:
    """Dense ids 0..k-1 ordered by each label's first row (so packet ids follow display order); -1 stays -1."""
    out = np.full(len(label), -1, dtype=np.int64)
    ok = np.flatnonzero(label >= 0)
    if len(ok) == 0:
        return out
    lab = label[ok]
    first = np.full(int(lab.max()) + 1, len(label), dtype=np.int64)
    # Assigning in reverse row order leaves each label's first row (NumPy applies repeated indices in order).
    first[lab[::-1]] = ok[::-1]
    present = np.flatnonzero(first < len(label))
    rank = np.empty(len(first), dtype=np.int64)
    rank[present[np.argsort(first[present])]] = np.arange(len(present))
    out[ok] = rank[lab]
    return out


def assign_packet_ids(columns: dict[str, np.ndarray], ts_ns: np.ndarray, *, window_ns: int = 100_000_000,
                      nat_window_ns: int = 20_000_000) -> np.ndarray:
    """``packet_id`` per row (int64, -1 for rows without an IP packet), equal for every observation of a packet.

    ``ts_ns`` should already be corrected for clock offsets between nodes (see ``clocks``), so that one
    packet's observations on different nodes are close in time.
    """
    valid = columns["i_ver"] != 0
    key_src, key_dst, key_any = all_keys(columns)
    # TCP (seq/ack) and ICMP echo (id/seq) carry enough entropy to be matched on the stable fields alone, which
    # no NAT touches; other rows are matched on the source side, plus the destination side for rewritten
    # sources. One sort serves both kinds (their keys come from different hashes).
    proto = columns["i_proto"]
    strong = valid & (((proto == 6) & ((columns["tcp_seq"] != 0) | (columns["tcp_ack"] != 0)))
                      | (((proto == 1) | (proto == 58)) & (columns["icmp_id"] != 0)))
    groups = [grouping(np.where(strong, key_any, key_src), ts_ns, window_ns, valid)]
    weak = valid & ~strong
    if weak.any():
        groups.append(grouping(key_dst, ts_ns, nat_window_ns, weak))
    return renumber_by_first_row(components(*groups))
