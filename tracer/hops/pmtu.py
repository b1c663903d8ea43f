"""Path-MTU evidence: ICMP "fragmentation needed" (v4 type 3 code 4) and ICMPv6 "packet too big" in the capture.

When encapsulated packets die between nodes, the usual culprit is the MTU (VXLAN adds 50 bytes, IP-in-IP 20); a
router or the node itself often says so with one of these ICMP errors, addressed to the sender. ``pmtu_errors``
finds them on the index columns and reads the reported next-hop MTU from the frame (bytes 6-7 of the ICMP header
for IPv4, 4-7 for ICMPv6); ``for_sender`` picks the ones a flow's initiator received.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracer.hops.udp_backend import ip_offset


@dataclass(frozen=True)
class PmtuError:
    """One ICMP error: where it was seen (row), who sent it, to whom, and the MTU it reports (None if unread)."""

    row: int
    src: str
    dst_key: int        # address key of the packet's destination (the sender being told to shrink)
    mtu: int | None


def _mtu(frame: bytes, linktype: int, v6: bool) -> int | None:
    off = ip_offset(frame, linktype) if not v6 else None
    if v6:
        # Ethernet + fixed IPv6 header (no extension headers before ICMPv6 in practice).
        off = 14 if linktype == 1 else (0 if linktype in (101, 12, 229) else None)
        if off is None or len(frame) < off + 48:
            return None
        return struct.unpack_from("!I", frame, off + 40 + 4)[0]
    if off is None or len(frame) < off + 28:
        return None
    ihl = (frame[off] & 0x0F) * 4
    if len(frame) < off + ihl + 8:
        return None
    return struct.unpack_from("!H", frame, off + ihl + 6)[0] or None


def pmtu_errors(index: Any, columns: dict[str, np.ndarray], dst_key: np.ndarray,
                limit: int = 1000) -> list[PmtuError]:
    """Every ICMP frag-needed / packet-too-big in the capture (at most ``limit``), unencapsulated ones read for
    their MTU."""
    proto = columns["i_proto"]
    v4 = (proto == 1) & (columns["icmp_type"] == 3) & (columns["icmp_code"] == 4)
    v6 = (proto == 58) & (columns["icmp_type"] == 2)
    rows = np.flatnonzero(v4 | v6)[:limit]
    out = []
    for r in rows.tolist():
        mtu = None
        if columns["encap"][r] == 0 and hasattr(index, "frame"):
            linktype = getattr(index.sources[int(columns["source"][r])], "linktype", 1)
            try:
                mtu = _mtu(index.frame(r), linktype, bool(v6[r]))
            except (OSError, ValueError, struct.error):
                mtu = None
        src = index.addr(int(columns["i_ver"][r]), int(columns["i_src"][r])) if hasattr(index, "addr") else "?"
        out.append(PmtuError(r, src or "?", int(dst_key[r]), mtu))
    return out


def for_sender(errors: list[PmtuError], sender_key: int) -> list[PmtuError]:
    """The errors addressed to one sender."""
    return [e for e in errors if e.dst_key == sender_key]
