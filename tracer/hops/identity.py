"""The same physical packet at every capture point: a ``packet_id`` per index row, with array operations only.

Two observations are the same packet when they agree on what no hop rewrites: the innermost IP version and
protocol, IP ID, IP length, TCP seq/ack, ICMP type/id/seq, and one endpoint — TTL, MACs and encapsulation
differ between hops and are left out. kube-proxy's DNAT rewrites the destination of a request and the source
of its reply (un-DNAT), masquerade rewrites the source: so rows are grouped twice, once on the key with the
source (``key_src``: stable across DNAT) and once on the key with the destination (``key_dst``: stable across
un-DNAT and SNAT), and a packet is a connected component of both groupings.

Equal keys far apart in time are different packets (a retransmission with the same IP ID, IPv6 which has no
IP ID): consecutive observations of one key more than ``window_ns`` apart start a new packet. Rewrites happen
inside one node (one clock), so the destination key uses the tighter ``nat_window_ns``.
"""

from __future__ import annotations

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


def hash_columns(cols: list[np.ndarray]) -> np.ndarray:
    """A 64-bit hash per row of several integer columns (collisions ~ n² / 2⁶⁴: none in practice)."""
    with np.errstate(over="ignore"):
        h = np.full(len(cols[0]), U64(0x243F6A8885A308D3))
        for k, c in enumerate(cols):
            h = _fmix(h * _GOLDEN + c.astype(U64) + U64(k + 1))
    return h


def packet_keys(columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(key_src, key_dst)``: per-row hashes of the stable fields with the source / destination endpoint."""
    stable = [columns[f] for f in STABLE_FIELDS]
    key_src = hash_columns(stable + [columns["i_src"], columns["i_sport"]])
    key_dst = hash_columns(stable + [columns["i_dst"], columns["i_dport"]])
    return key_src, key_dst


def group_by_key(key: np.ndarray, ts_ns: np.ndarray, window_ns: int,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Group rows with equal ``key`` whose consecutive timestamps are at most ``window_ns`` apart.

    Returns int64 group numbers (arbitrary order); rows where ``valid`` is False get -1.
    """
    n = len(key)
    out = np.full(n, -1, dtype=np.int64)
    rows = np.arange(n) if valid is None else np.flatnonzero(valid)
    if len(rows) == 0:
        return out
    order = rows[np.lexsort((ts_ns[rows], key[rows]))]
    k = key[order]
    t = ts_ns[order]
    new = np.empty(len(order), dtype=bool)
    new[0] = True
    np.not_equal(k[1:], k[:-1], out=new[1:])
    new[1:] |= (t[1:] - t[:-1]) > window_ns
    out[order] = np.cumsum(new) - 1
    return out


def _group_min(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """For each row, the minimum of ``labels`` over the rows of its group (rows with group -1 keep theirs)."""
    ok = groups >= 0
    g = groups[ok]
    if len(g) == 0:
        return labels
    mins = np.full(int(g.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(mins, g, labels[ok]) if len(g) < 4096 else _reduce_min(mins, g, labels[ok])
    out = labels.copy()
    out[ok] = mins[g]
    return out


def _reduce_min(mins: np.ndarray, g: np.ndarray, lab: np.ndarray) -> None:
    # np.minimum.at is slow on large inputs; a sort + reduceat does the same in O(n log n) vectorised.
    order = np.argsort(g, kind="stable")
    gs = g[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    mins[gs[starts]] = np.minimum.reduceat(lab[order], starts)


def components(group_a: np.ndarray, group_b: np.ndarray, max_rounds: int = 64) -> np.ndarray:
    """Connected components of rows linked by sharing a group in ``group_a`` or in ``group_b``.

    Label propagation: every row starts with its ``group_a`` number and repeatedly takes the minimum over its
    groups; it converges in a couple of rounds because rewrites chain at most a few groups.
    """
    label = group_a.copy()
    for _ in range(max_rounds):
        new = _group_min(_group_min(label, group_b), group_a)
        if np.array_equal(new, label):
            break
        label = new
    return label


def renumber_by_first_row(label: np.ndarray) -> np.ndarray:
    """Dense ids 0..k-1 ordered by each label's first row (so packet ids follow display order); -1 stays -1."""
    out = np.full(len(label), -1, dtype=np.int64)
    ok = np.flatnonzero(label >= 0)
    if len(ok) == 0:
        return out
    uniq, first, inverse = np.unique(label[ok], return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    out[ok] = rank[inverse]
    return out


def assign_packet_ids(columns: dict[str, np.ndarray], ts_ns: np.ndarray, *, window_ns: int = 100_000_000,
                      nat_window_ns: int = 20_000_000) -> np.ndarray:
    """``packet_id`` per row (int64, -1 for rows without an IP packet), equal for every observation of a packet.

    ``ts_ns`` should already be corrected for clock offsets between nodes (see ``clocks``), so that one
    packet's observations on different nodes are close in time.
    """
    valid = (columns["i_ver"] != 0) & ((columns["flags"] & 0x1) == 0)
    # Headers cut short by the snap length still have addresses and IP ID; keep them if the IP header is whole.
    valid |= (columns["i_ver"] != 0) & (columns["i_len"] > 0)
    key_src, key_dst = packet_keys(columns)
    g_src = group_by_key(key_src, ts_ns, window_ns, valid)
    g_dst = group_by_key(key_dst, ts_ns, nat_window_ns, valid)
    return renumber_by_first_row(components(g_src, g_dst))
