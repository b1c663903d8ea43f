"""The packet list's columns: widths for a terminal width and the cell text of one packet row.

Pure formatting over the columnar index (no Textual): the list widget asks for the rows it is about to paint
and gets plain strings back, which it turns into inert ``Text``. Times are rendered in UTC with a fixed
number of digits so screenshots and snapshot tests are deterministic.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from tracer.ui.safe import clean

TIME_FORMATS = ("relative", "absolute", "delta")

PROTO_NAMES = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
               58: "ICMPv6", 89: "OSPF", 112: "VRRP", 132: "SCTP"}
ENCAP_LABELS = {0: "–", 1: "VXLAN", 2: "Geneve", 3: "IPIP", 4: "6in4", 5: "4in6", 6: "GRE"}
TCP_FLAG_NAMES = ((0x02, "SYN"), (0x10, "ACK"), (0x01, "FIN"), (0x04, "RST"), (0x08, "PSH"), (0x20, "URG"),
                  (0x40, "ECE"), (0x80, "CWR"))
ICMP_TYPES = {0: "Echo reply", 3: "Destination unreachable", 5: "Redirect", 8: "Echo request",
              11: "Time exceeded"}
ICMP6_TYPES = {1: "Destination unreachable", 2: "Packet too big", 3: "Time exceeded", 128: "Echo request",
               129: "Echo reply", 133: "Router solicitation", 134: "Router advertisement",
               135: "Neighbor solicitation", 136: "Neighbor advertisement"}


@dataclass(frozen=True)
class ColumnWidths:
    """Character widths of the list's columns for one terminal width; ``info`` takes what is left."""

    no: int
    time: int
    point: int
    conv: int
    proto: int
    encap: int
    info: int
    mark: int = 2
    verdict: int = 2

    @classmethod
    def fit(cls, width: int, total_rows: int, time_format: str = "relative") -> ColumnWidths:
        """Columns for ``width`` cells: generous on wide terminals, squeezed (point and info first) at 80."""
        no = max(4, len(str(max(total_rows, 1))))
        time = 15 if time_format == "absolute" else (12 if width >= 110 else 10)
        proto, encap = 6, 8
        if width >= 170:
            point, conv = 22, 64  # room for the dimmed outer node pair too
        elif width >= 150:
            point, conv = 22, 52
        elif width >= 130:
            point, conv = 18, 46
        elif width >= 110:
            point, conv = 18, 38
        else:  # 80 columns: no Info (the layers pane has it); the conversation gets what is left
            point, conv, proto, encap = 9, 0, 5, 7
        # mark, then each column and its separator, then the one-cell verdict mark
        fixed = 2 + no + 1 + time + 1 + point + 1 + conv + 1 + proto + 1 + encap + 1 + 1 + 1
        info = max(width - fixed, 0)
        if conv == 0:
            conv, info = max(info - 1, 8), 0
        return cls(no=no, time=time, point=point, conv=conv, proto=proto, encap=encap, info=info)


def format_time(ts_ns: int, mode: str, *, first_ns: int, prev_ns: int | None) -> str:
    """The Time cell: seconds since the first packet, UTC wall clock, or seconds since the previous row shown."""
    if mode == "absolute":
        seconds, ns = divmod(int(ts_ns), 1_000_000_000)
        try:
            stamp = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
        except (OverflowError, OSError, ValueError):  # a hostile timestamp outside what a clock can show
            return f"{seconds}.{ns // 1000:06d}"
        return f"{stamp:%H:%M:%S}.{ns // 1000:06d}"
    base = first_ns if mode == "relative" or prev_ns is None else prev_ns
    delta = (int(ts_ns) - int(base)) / 1e9
    return f"{delta:.6f}"


def proto_label(ver: int, proto: int, linktype: int | None = None) -> str:
    """Protocol name of the innermost IP payload; ``non-IP`` when the frame carries no IP at all."""
    if ver == 0:
        return "non-IP"
    return PROTO_NAMES.get(int(proto), str(int(proto)))


def encap_label(encap: int, vni: int) -> str:
    """``VXLAN 1`` / ``Geneve 10`` / ``IPIP`` / ``–`` for the outermost encapsulation."""
    label = ENCAP_LABELS.get(int(encap), f"encap {int(encap)}")
    if int(encap) in (1, 2) and int(vni) >= 0:
        return f"{label} {int(vni)}"
    return label


def tcp_flags_label(flags: int) -> str:
    names = [name for bit, name in TCP_FLAG_NAMES if flags & bit]
    return ", ".join(names)


def endpoint(addr: str | None, port: int, proto: int, name: str | None) -> str:
    """``python/tomcat:8080`` when the pod is known, else ``10.244.1.3:8080``; no port for portless protocols."""
    host = name or addr or "–"
    if addr and ":" in addr and not name:
        host = f"[{addr}]"
    if proto in (6, 17, 132) and port:
        return f"{host}:{port}"
    return host


def info_text(row: dict[str, int]) -> str:
    """A short, wireshark-like summary of the innermost packet from the index columns alone."""
    proto = row["i_proto"]
    if row["i_ver"] == 0:
        return f"non-IP frame, {row['caplen']} bytes"
    if row["flags"] & 0x02:
        return "IP fragment"
    if proto == 6:
        flags = tcp_flags_label(row["tcp_flags"])
        return (f"{row['i_sport']} → {row['i_dport']} [{flags}] Seq={row['tcp_seq']} Ack={row['tcp_ack']}"
                f" Len={row['i_len']}")
    if proto == 17:
        return f"{row['i_sport']} → {row['i_dport']} Len={row['i_len']}"
    if proto == 1 or proto == 58:
        names = ICMP_TYPES if proto == 1 else ICMP6_TYPES
        kind = names.get(row["icmp_type"], f"type {row['icmp_type']} code {row['icmp_code']}")
        if row["icmp_type"] in ((0, 8) if proto == 1 else (128, 129)):
            return f"{kind} id={row['icmp_id']} seq={row['icmp_seq']}"
        return kind
    return f"{PROTO_NAMES.get(proto, 'proto ' + str(proto))} Len={row['i_len']}"


def squeeze(endpoint_text: str, limit: int) -> str:
    """``python/tomcat-8tqr4vzfqx-vzfqx:8080`` → ``python/tomcat-8…-vzfqx:8080``: cut in the middle of the name so
    both its start (namespace, workload) and its end (pod suffix, port) stay readable."""
    if len(endpoint_text) <= limit or limit < 8:
        return endpoint_text
    host, sep, port = endpoint_text.rpartition(":")
    if not sep or not port.isdigit():
        host, port, sep = endpoint_text, "", ""
    room = limit - len(sep) - len(port) - 1
    if room < 4:
        return endpoint_text[: limit - 1] + "…"
    head = (2 * room + 2) // 3  # the start (namespace/workload) tells more than the pod's hash suffix
    tail = room - head
    return f"{host[:head]}…{host[len(host) - tail:] if tail else ''}{sep}{port}"


def conversation(src: str, dst: str, width: int) -> str:
    """``src → dst`` in ``width`` cells, each side squeezed in its middle when both do not fit."""
    text = f"{src} → {dst}"
    if len(text) <= width:
        return text
    total = width - 3

    def keep(side: str, other: str) -> bool:
        # An address is never cut if the other side keeps 8 cells; a short name stays whole if the other keeps 14.
        return len(side) <= total - min(len(other), 8 if "/" not in side else 14)

    if keep(src, dst):
        return f"{src} → {squeeze(dst, total - len(src))}"
    if keep(dst, src):
        return f"{squeeze(src, total - len(dst))} → {dst}"
    side = total // 2
    return f"{squeeze(src, side)} → {squeeze(dst, total - side)}"


def fit(text: str, width: int) -> str:
    """``text`` cut or padded to exactly ``width`` cells (single-width characters assumed), ``…`` when cut."""
    text = clean(text)
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.ljust(width)
