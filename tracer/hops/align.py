"""Placing one packet's observations on its expected path, and where along it the packet stopped.

``align`` takes the hops a CNI model expects and the capture points where the packet was seen (in time order)
and gives each observation its hop. Points on a named node match hops on that node; a point with no node (an
unqualified interface name, a single capture) can match a hop on any node, but within one packet it stands for
one node only (a capture point cannot be on both ends of a tunnel). Observations are taken in order and each
goes to the first matching hop not before the previous one, so a veth seen twice (source and destination pod on
one node) fills both hops. Points without a node that did not see the packet are not counted as capturing it
(nothing says which node they were on).
"""

from __future__ import annotations

from dataclasses import dataclass

from tracer.hops import roles as R
from tracer.hops.models import Hop

_POD_SIDE = {R.VETH, R.CALI}


def role_matches(point_role: str, hop_role: str) -> bool:
    """A veth and a cali are the same thing in two CNIs' words; an unknown role matches nothing."""
    if point_role == hop_role:
        return True
    return point_role in _POD_SIDE and hop_role in _POD_SIDE


def point_matches(point, hop: Hop, point_has_pod: bool) -> bool:
    """Whether a capture point can be where ``hop`` is (role, node, and the pod's own interface if known)."""
    if not role_matches(point.role, hop.role):
        return False
    if point.node is not None and hop.node is not None and point.node != hop.node:
        return False
    if hop.iface is not None:
        return point.name == hop.iface
    # An interface known to belong to another pod is not this pod's.
    return not (point_has_pod and hop.role in (*_POD_SIDE, R.POD_ETH0))


@dataclass(frozen=True)
class Alignment:
    """Hop per observation (-1 when none fits), which hops were captured, and the point to expect at each."""

    hop_of_obs: tuple[int, ...]
    captured: tuple[bool, ...]
    expect_point: tuple[int, ...]     # a point id per hop (-1 when not captured)
    last_seen: int                    # hop index of the furthest hop seen, -1 when none
    next_expected: int                # first captured hop after ``last_seen`` that did not see it, else -1


def align(hops: list[Hop], obs_points: list[int], points: list, pod_points: set[int]) -> Alignment:
    """Align observations (point ids in time order) to ``hops``; see the module docstring."""
    candidates = [[pid for pid, p in enumerate(points) if point_matches(p, hop, pid in pod_points)]
                  for hop in hops]
    by_point: dict[int, list[int]] = {}
    for h, cands in enumerate(candidates):
        for pid in cands:
            by_point.setdefault(pid, []).append(h)
    # Points without a node stand for one node within a packet, and so do all such points of one capture file
    # (one file is one machine's capture): the first hop one of them is placed on binds that file's points (to
    # the hop's node, or to its side of the path when the endpoints' nodes are unknown). Two unnamed files, say
    # node-a.pcap and node-b.pcap, bind separately.
    def side_key(h: int) -> object:
        return hops[h].node if hops[h].node is not None else ("side", hops[h].side)

    def group(pid: int) -> object:
        return getattr(points[pid], "file", None) or ("point", pid)

    bound: dict[object, object] = {}
    cur = 0
    out: list[int] = []
    for pid in obs_points:
        options = by_point.get(pid, [])
        if not options and getattr(points[pid], "inferred", False):
            # A point whose role was only guessed from its traffic (one unnamed capture mixing interfaces, like
            # tcpdump -i any) goes to the first hop a capture could show, rather than nowhere.
            options = [h for h, hop in enumerate(hops) if hop.observable and hop.role != R.POD_ETH0
                       and (points[pid].node is None or hop.node in (None, points[pid].node))]
        anon = points[pid].node is None
        if anon and group(pid) in bound:
            options = [h for h in options if side_key(h) == bound[group(pid)]]
        ahead = [h for h in options if h >= cur]
        pick = ahead[0] if ahead else (options[0] if options else -1)
        if pick >= 0:
            cur = max(cur, pick + (1 if ahead else 0))
            if anon and group(pid) not in bound:
                bound[group(pid)] = side_key(pick)
        out.append(pick)
    seen = set(h for h in out if h >= 0)
    captured = []
    expect = []
    for h, hop in enumerate(hops):
        usable = [pid for pid in candidates[h]
                  if points[pid].node is not None or bound.get(group(pid), None) == side_key(h)]
        captured.append((bool(usable) and hop.observable) or h in seen)
        expect.append(usable[0] if usable else -1)
    last = max(seen) if seen else -1
    nxt = -1
    if last >= 0:
        nxt = next((h for h in range(last + 1, len(hops)) if captured[h] and h not in seen), -1)
    return Alignment(tuple(out), tuple(captured), tuple(expect), last, nxt)
