"""flannel's UDP backend: the pod packet inside UDP 8285, decoded here so the same packet is recognised on
``flannel0`` (the TUN device) and on the underlay.

The capture index decodes VXLAN, Geneve and IP-in-IP; flannel's UDP backend carries a bare IPv4 packet as the UDP
payload (no header of its own), which no standard dissector knows. ``inner_columns`` reads the few such frames
from disk and fills the innermost-packet columns for them (IPv4 header, TCP/UDP ports, TCP seq/ack/flags, ICMP
type/id/seq) — plain byte parsing, bounded by the frame length; anything short or odd is left as it was.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

ENCAP_FLANNEL_UDP = 7   # our own code in the analysis's copy of ``encap`` (the index's codes end at 6)
_LINK_OFFSET = {1: 14, 113: 16, 101: 0, 12: 0, 228: 0, 276: 20}   # Ethernet, Linux SLL, raw IP, SLL2
_FIELDS = ("i_ver", "i_src", "i_dst", "i_proto", "i_ttl", "i_ipid", "i_sport", "i_dport", "i_len", "tcp_flags",
           "tcp_seq", "tcp_ack", "icmp_type", "icmp_id", "icmp_seq", "encap")


def ip_offset(frame: bytes, linktype: int) -> int | None:
    """Offset of the IPv4 header in a frame of that link type (Ethernet with VLAN tags, SLL, raw), or None."""
    off = _LINK_OFFSET.get(linktype)
    if off is None:
        return None
    if linktype == 1:
        ethertype = frame[12:14]
        while ethertype in (b"\x81\x00", b"\x88\xa8") and len(frame) >= off + 4:
            ethertype = frame[off + 2:off + 4]
            off += 4
        if ethertype != b"\x08\x00":
            return None
    return off


def parse_inner(frame: bytes, linktype: int) -> dict[str, int] | None:
    """The inner IPv4 packet's fields of one flannel-UDP frame, or None when it is not one."""
    off = ip_offset(frame, linktype)
    if off is None or len(frame) < off + 28 or frame[off] >> 4 != 4:
        return None
    outer_ihl = (frame[off] & 0x0F) * 4
    inner = off + outer_ihl + 8
    if len(frame) < inner + 20 or frame[inner] >> 4 != 4:
        return None
    ihl = (frame[inner] & 0x0F) * 4
    total, ipid = struct.unpack_from("!HH", frame, inner + 2)
    ttl, proto = frame[inner + 8], frame[inner + 9]
    src, dst = struct.unpack_from("!II", frame, inner + 12)
    out = dict(i_ver=4, i_src=src, i_dst=dst, i_proto=proto, i_ttl=ttl, i_ipid=ipid, i_len=total, i_sport=0,
               i_dport=0, tcp_flags=0, tcp_seq=0, tcp_ack=0, icmp_type=0, icmp_id=0, icmp_seq=0,
               encap=ENCAP_FLANNEL_UDP)
    l4 = inner + ihl
    if proto in (6, 17) and len(frame) >= l4 + 4:
        out["i_sport"], out["i_dport"] = struct.unpack_from("!HH", frame, l4)
        if proto == 6 and len(frame) >= l4 + 14:
            out["tcp_seq"], out["tcp_ack"] = struct.unpack_from("!II", frame, l4 + 4)
            out["tcp_flags"] = frame[l4 + 13]
    elif proto == 1 and len(frame) >= l4 + 8:
        out["icmp_type"] = frame[l4]
        out["icmp_id"], out["icmp_seq"] = struct.unpack_from("!HH", frame, l4 + 4)
    return out


def inner_columns(index: Any, columns: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """``columns`` with the inner fields of the flannel-UDP ``rows`` filled in (copies of the touched columns)."""
    if len(rows) == 0 or not hasattr(index, "frame"):
        return columns
    out = dict(columns)
    for name in _FIELDS:
        out[name] = np.array(columns[name], copy=True)
    sources = index.sources
    src_col = columns["source"]
    for row in rows.tolist():
        linktype = getattr(sources[int(src_col[row])], "linktype", 1)
        try:
            fields = parse_inner(index.frame(row), linktype)
        except (OSError, ValueError):
            fields = None
        if fields is None:
            continue
        for name, value in fields.items():
            out[name][row] = value
    return out
