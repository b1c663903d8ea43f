"""Rows of ``tracer show``: the public JSON/CSV keys computed from the index, and table/jsonl/csv output.

Cells are computed a chunk of rows at a time, column by column: numbers become text with numpy, addresses and
names are formatted once per distinct value and gathered, and the ``info`` summary is one ``%`` template per
kind of packet — so printing a million packets takes seconds, not minutes. ``KEYS`` is the public interface of
issue 2 (never rename; add freely). Later work adds columns (node, role, packet_id, verdict …) through
``ExtraColumn``.

Null rules: ``src``/``dst``/``proto`` need an outermost IP header; ``sport``/``dport`` a port-carrying protocol
(TCP, UDP, SCTP, UDP-Lite, DCCP) with ports present (not a non-first fragment); ``inner_*`` only for
encapsulated packets; ``ttl``, ``ip_id`` (IPv4 only), ``tcp_flags`` and ``icmp_type`` describe the innermost IP
packet — the pod's packet, whose TTL and IP ID identify it across capture points. ``ts`` is exact: seconds and
nine decimals from the integer nanoseconds.

Text never carries terminal control characters: table and CSV cells escape C0/C1 controls as ``\\xNN``
(interface names and file names are the only text that comes from the input); JSON escapes them as JSON does.
CSV string cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab, CR, LF, NUL or their
full-width forms) get a leading ``'``, as OWASP's CSV-injection advice says: a pcapng ``if_name`` of
``=HYPERLINK("http://…")`` must not become a live link in the on-call engineer's spreadsheet. Numeric cells (``-1``
included) are never touched, nor is jsonl.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from tracer.decode.fields import ENCAP_NAMES, FRAG, TRUNC

KEYS = ("no", "ts", "file", "point", "linktype", "len", "caplen", "src", "dst", "proto", "sport", "dport",
        "encap", "vni", "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport", "ttl", "ip_id",
        "tcp_flags", "icmp_type", "info")
#: Keys whose JSON values are strings (the others are numbers).
STRING_KEYS = frozenset({"file", "point", "src", "dst", "encap", "inner_src", "inner_dst", "tcp_flags", "info"})
PORTED = (6, 17, 132, 136, 33)
TCP_FLAG_LETTERS = "FSRPAUEC"        # bit 0 (FIN) … bit 7 (CWR): SYN+ACK -> "SA"
PROTO_NAMES = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
               51: "AH", 58: "ICMPv6", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP"}
ICMP_NAMES = {(4, 0): "echo reply", (4, 3): "unreachable", (4, 8): "echo request", (4, 11): "time exceeded",
              (4, 5): "redirect", (6, 1): "unreachable", (6, 2): "packet too big", (6, 3): "time exceeded",
              (6, 128): "echo request", (6, 129): "echo reply", (6, 133): "router solicitation",
              (6, 134): "router advertisement", (6, 135): "neighbor solicitation",
              (6, 136): "neighbor advertisement"}
CHUNK = 65536

# C0 controls, DEL and C1 controls -> \xNN (a terminal would act on them).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
# Bidi marks, embeddings, overrides and isolates (and the BOM) reorder or hide what the reader sees
# ("Trojan Source", CVE-2021-42574) -> \uNNNN, as tracer.ui.safe and tracer.hops.report treat them.
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF)})


def escape_text(text: str) -> str:
    """``text`` with terminal control characters made visible (``\\x1b`` instead of ESC)."""
    return text.translate(_CONTROL)


# Leading characters that make Excel, LibreOffice Calc or Google Sheets read a cell as a formula (OWASP "CSV
# Injection": = + - @ tab CR; ASVS 1.2.10 adds NUL; LF and the full-width forms U+FF1D/FF0B/FF0D/FF20 as a precaution).
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_FORMULA_FIRST = frozenset(_FORMULA_LEAD)


def csv_text(text: str) -> str:
    """A CSV string cell: controls escaped, and a leading ``'`` when a spreadsheet would run it as a formula."""
    text = escape_text(text)
    # A lone "-" (standard input's file name) is no formula in any spreadsheet: scripts keep reading it as is.
    return "'" + text if text.startswith(_FORMULA_LEAD) and text != "-" else text


@dataclass(frozen=True)
class ExtraColumn:
    """A column added by later work: ``values(index, rows)`` -> one JSON-able value (or None) per row."""

    name: str
    values: Callable[[object, np.ndarray], Sequence[object]]
    width: int = 12          # table width


def tcp_flags_text(flags: int) -> str:
    return "".join(letter for bit, letter in enumerate(TCP_FLAG_LETTERS) if flags >> bit & 1)


def _objects(values: Sequence[object]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


_FLAG_TEXT = _objects([tcp_flags_text(i) for i in range(256)])
_INT_TEXT = _objects([str(i) for i in range(65536)])
_PROTO_TEXT = _objects([PROTO_NAMES.get(p, f"proto {p}") for p in range(256)])
_PROTO_SHORT = _objects([PROTO_NAMES.get(p, str(p)) for p in range(256)])
_ENCAP_TEXT = _objects(list(ENCAP_NAMES) + [None] * (256 - len(ENCAP_NAMES)))


def _ints(values: np.ndarray) -> np.ndarray:
    """Integer column -> object array of decimal strings."""
    values = np.asarray(values)
    if values.size and values.dtype.kind in "ui" and values.min() >= 0 and values.max() < 65536:
        return _INT_TEXT[values.astype(np.intp)]
    return _objects(values.astype(np.int64).astype(str).tolist())


class _Coded:
    """A string column held as a small table of distinct values and one code per row."""

    def __init__(self, table: list[str | None], codes: np.ndarray) -> None:
        self.table = _objects(table)
        self.codes = codes

    def values(self) -> np.ndarray:
        return self.table[self.codes]

    def json(self) -> list[str]:
        return _objects(["null" if v is None else json.dumps(v) for v in self.table])[self.codes].tolist()

    def bracketed(self) -> np.ndarray:
        """Addresses with IPv6 ones in brackets (``[fd00::1]``), for ``addr:port``."""
        return _objects([f"[{v}]" if v and ":" in v else v for v in self.table])[self.codes]

    def escaped(self) -> list[str | None]:
        return _objects([None if v is None else escape_text(v) for v in self.table])[self.codes].tolist()

    def csv(self) -> list[str | None]:
        return _objects([None if v is None else csv_text(v) for v in self.table])[self.codes].tolist()

    def nulled(self, valid: np.ndarray) -> _Coded:
        codes = self.codes.copy()
        codes[~valid] = len(self.table)
        return _Coded(list(self.table) + [None], codes)


class _Num:
    """A numeric column as text, with the rows where it is null."""

    def __init__(self, text: np.ndarray, valid: np.ndarray | None = None) -> None:
        self.text = text
        self.valid = valid

    def values(self) -> np.ndarray:
        if self.valid is None:
            return self.text
        out = self.text.copy()
        out[~self.valid] = None
        return out

    def json(self) -> list[str]:
        if self.valid is None:
            return self.text.tolist()
        out = self.text.copy()
        out[~self.valid] = "null"
        return out.tolist()


class RowCells:
    """Cells of one chunk of rows (``rows``: index row numbers) for every key, plus the extra columns."""

    def __init__(self, index, rows: np.ndarray, extra: Sequence[ExtraColumn] = ()) -> None:
        self.index = index
        self.rows = rows = np.asarray(rows, dtype=np.int64)
        self.n = n = len(rows)
        col = lambda name: index[name][rows]  # noqa: E731
        c: dict[str, _Coded | _Num | list[str]] = {}
        src_ids = col("source").astype(np.intp)
        self.src_ids = src_ids
        sources = index.sources
        c["no"] = _Num(_objects((rows + 1).astype(str).tolist()))
        self.ts_ns = ts = col("ts_ns")
        sec, frac = np.divmod(ts, 1_000_000_000)
        c["ts"] = _Num(_objects([f"{s}.{f:09d}" for s, f in zip(sec.tolist(), frac.tolist())]))
        c["file"] = _Coded([s.file for s in sources], src_ids)
        c["point"] = _Coded([s.point for s in sources], src_ids)
        c["linktype"] = _Num(_objects([str(s.linktype) for s in sources])[src_ids] if sources else
                             _objects([]))
        c["len"] = _Num(_ints(col("origlen")))
        c["caplen"] = _Num(_ints(col("caplen")))
        o_ver, i_ver = col("o_ver"), col("i_ver")
        flags = col("flags")
        self.encap = encap = col("encap")
        has_ip = o_ver != 0
        c["src"] = self._addrs(o_ver, col("o_src"))
        c["dst"] = self._addrs(o_ver, col("o_dst"))
        o_proto = col("o_proto")
        c["proto"] = _Num(_ints(o_proto), has_ip)
        self.o_proto = np.where(has_ip, o_proto.astype(np.int16), -1)
        o_sport, o_dport = col("o_sport"), col("o_dport")
        self.o_ported = o_ported = has_ip & np.isin(o_proto, PORTED) & ((o_sport != 0) | (o_dport != 0))
        c["sport"] = _Num(_ints(o_sport), o_ported)
        c["dport"] = _Num(_ints(o_dport), o_ported)
        enc = encap != 0
        c["encap"] = _Coded(list(ENCAP_NAMES) + [None] * (256 - len(ENCAP_NAMES)), encap.astype(np.intp))
        vni = col("vni")
        c["vni"] = _Num(_objects(vni.astype(str).tolist()), vni >= 0)
        inner = enc & (i_ver != 0)
        i_proto = col("i_proto")
        i_sport, i_dport = col("i_sport"), col("i_dport")
        nofrag = (flags & FRAG) == 0
        i_ported = (i_ver != 0) & np.isin(i_proto, PORTED) & nofrag
        isrc, idst = self._addrs(i_ver, col("i_src")), self._addrs(i_ver, col("i_dst"))
        c["inner_src"] = isrc.nulled(inner)
        c["inner_dst"] = idst.nulled(inner)
        c["inner_proto"] = _Num(_ints(i_proto), inner)
        sport_t, dport_t = _ints(i_sport), _ints(i_dport)
        c["inner_sport"] = _Num(sport_t, inner & i_ported)
        c["inner_dport"] = _Num(dport_t, inner & i_ported)
        c["ttl"] = _Num(_ints(col("i_ttl")), i_ver != 0)
        c["ip_id"] = _Num(_ints(col("i_ipid")), i_ver == 4)
        is_tcp = (i_ver != 0) & (i_proto == 6) & nofrag
        tflags = col("tcp_flags").astype(np.intp)
        c["tcp_flags"] = _Coded(_FLAG_TEXT.tolist() + [None], np.where(is_tcp, tflags, 256))
        is_icmp = (i_ver != 0) & np.isin(i_proto, (1, 58)) & nofrag
        icmp_type = col("icmp_type")
        c["icmp_type"] = _Num(_ints(icmp_type), is_icmp)
        c["info"] = self._info(col, encap, vni, i_ver, i_proto, isrc, idst, sport_t, dport_t, i_ported, is_tcp,
                               is_icmp, icmp_type, flags, src_ids)
        self.extra = tuple(extra)
        for ext in extra:
            values = ext.values(index, rows)
            c[ext.name] = values if isinstance(values, np.ndarray) and values.dtype.kind in "iu" \
                else _objects(list(values))
        self.cells = c

    def _addrs(self, ver: np.ndarray, value: np.ndarray) -> _Coded:
        """Address text per row (None where ver is 0), formatting each distinct address once."""
        key = (ver.astype(np.uint64) << np.uint64(32)) | value.astype(np.uint64)
        uniq, inv = np.unique(key, return_inverse=True)
        table = [self.index.addr(k >> 32, k & 0xFFFFFFFF) for k in uniq.tolist()]
        return _Coded(table, inv.reshape(-1).astype(np.intp))

    def _info(self, col, encap, vni, i_ver, i_proto, isrc: _Coded, idst: _Coded, sport_t, dport_t, i_ported,
              is_tcp, is_icmp, icmp_type, flags, src_ids) -> list[str]:
        """A short summary: ``VXLAN vni 1: TCP 10.244.1.3:41000 → 10.244.2.5:80 [S] seq=… ack=… len=60``."""
        n = self.n
        body = np.empty(n, dtype=object)
        if n == 0:
            return []
        s_all, d_all = isrc.values(), idst.values()
        s_br, d_br = isrc.bracketed(), idst.bracketed()      # [v6]:port, as in URLs
        pname = _PROTO_TEXT[i_proto]
        ilen = _ints(col("i_len"))

        def fill(mask: np.ndarray, template: str, *parts) -> None:
            idx = np.flatnonzero(mask)
            if len(idx):
                body[idx] = [template % t for t in zip(*(p[idx].tolist() for p in parts))]

        tcp = i_ported & is_tcp
        fill(tcp, "%s %s:%s → %s:%s [%s] seq=%s ack=%s len=%s", pname, s_br, sport_t, d_br, dport_t,
             _FLAG_TEXT[col("tcp_flags")], col("tcp_seq"), col("tcp_ack"), ilen)
        fill(i_ported & ~is_tcp, "%s %s:%s → %s:%s len=%s", pname, s_br, sport_t, d_br, dport_t, ilen)
        kinds = np.empty(n, dtype=object)
        icmp_rows = np.flatnonzero(is_icmp)
        if len(icmp_rows):
            kinds[icmp_rows] = [ICMP_NAMES.get((4 if v == 4 else 6, t), f"type {t} code {c}") for v, t, c in
                                zip(i_ver[icmp_rows].tolist(), icmp_type[icmp_rows].tolist(),
                                    col("icmp_code")[icmp_rows].tolist())]
        fill(is_icmp, "%s %s → %s %s", pname, s_all, d_all, kinds)
        other = (i_ver != 0) & ~i_ported & ~is_icmp
        frag = _objects(["", " fragment"])[((flags & FRAG) != 0).astype(np.intp)]
        fill(other, "%s %s → %s len=%s%s", pname, s_all, d_all, ilen, frag)
        linktypes = _objects([f"non-IP frame (linktype {s.linktype})" for s in self.index.sources] or [""])
        noip = np.flatnonzero(i_ver == 0)
        if len(noip):
            body[noip] = linktypes[src_ids[noip]]
            body[noip[encap[noip] != 0]] = "non-IP inner frame (ARP or other)"
            plain = noip[encap[noip] == 0]
            if len(plain) <= 4096:         # a peek at the EtherType (ARP, LLDP…): one small read per such row
                body[plain] = [link_summary(self.index, int(r)) or text
                               for r, text in zip(self.rows[plain].tolist(), body[plain].tolist())]
        # Tunnel prefix per distinct (encap, vni); "[truncated]" suffix when a header was cut short.
        key = (encap.astype(np.int64) << 32) | (vni.astype(np.int64) & 0xFFFFFFFF)
        uniq, inv = np.unique(key, return_inverse=True)
        prefixes = []
        for k in uniq.tolist():
            e, v = k >> 32, k & 0xFFFFFFFF
            name = (ENCAP_NAMES[e] if e < len(ENCAP_NAMES) else f"encap {e}") or ""
            v = v - (1 << 32) if v >= 1 << 31 else v
            prefixes.append("" if not e else f"{name.upper()} vni {v}: " if v >= 0 else f"{name.upper()}: ")
        out = _objects(prefixes)[inv.reshape(-1)] + body
        trunc = np.flatnonzero(flags & TRUNC)
        if len(trunc):
            out[trunc] = out[trunc] + " [truncated]"
        return out.tolist()

    # ----- per output format -------------------------------------------------------------------------------
    def json_columns(self, keys: Sequence[str]) -> list[list[str]]:
        cols = []
        for key in keys:
            cell = self.cells[key]
            if key == "info":
                # Our own ASCII text plus "→": no quote, backslash or control character to escape.
                cols.append([f'"{s}"'.replace("→", "\\u2192") for s in cell])
            elif isinstance(cell, (_Coded, _Num)):
                cols.append(cell.json())
            else:
                cols.append(_json_values(cell))
        return cols

    def csv_columns(self, keys: Sequence[str]) -> list[list[object]]:
        cols = []
        for key in keys:
            cell = self.cells[key]
            if isinstance(cell, _Coded):
                cols.append(cell.csv())
            elif key == "info":
                # Our own text, which starts with a protocol or tunnel name; checked anyway, it is cheap.
                cols.append([csv_text(v) if v[:1] in _FORMULA_FIRST else v for v in cell])
            elif isinstance(cell, _Num):
                cols.append(cell.values().tolist())         # numbers stay numbers: "-1" is not a formula
            else:
                values = cell.tolist() if isinstance(cell, np.ndarray) else list(cell)
                cols.append([csv_text(v) if isinstance(v, str) else v for v in values])
        return cols


def _json_values(values) -> list[str]:
    """JSON text per value, encoding each distinct value once (extra columns repeat a handful of values)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "iu":
            return values.astype(str).tolist()
        values = values.tolist()
    memo: dict[tuple[type, object], str] = {}
    out = []
    ap = out.append
    for v in values:
        try:
            key = (v.__class__, v)
            text = memo.get(key)
            if text is None:
                text = memo[key] = json.dumps(v)
        except TypeError:               # unhashable (a list): encode it as it is
            text = json.dumps(v)
        ap(text)
    return out


class RowWriter:
    """Writes rows of an index to a text stream as ``table``, ``jsonl`` or ``csv``."""

    def __init__(self, out: io.TextIOBase, fmt: str = "table", extra: Sequence[ExtraColumn] = ()) -> None:
        if fmt not in ("table", "jsonl", "csv"):
            raise ValueError(f"unknown format {fmt!r}")
        self.out = out
        self.fmt = fmt
        self.extra = tuple(extra)
        self.keys = KEYS + tuple(e.name for e in self.extra)
        self._header_done = False
        self._csvw = csv.writer(out, lineterminator="\n") if fmt == "csv" else None

    def write(self, index, rows: np.ndarray | None = None) -> int:
        """Write ``rows`` of ``index`` (all rows when None); returns the number written."""
        if rows is None:
            rows = np.arange(len(index), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        self._header()
        for start in range(0, len(rows), CHUNK):
            cells = RowCells(index, rows[start:start + CHUNK], self.extra)
            getattr(self, f"_{self.fmt}")(cells)
        return len(rows)

    def _header(self) -> None:
        if self._header_done:
            return
        self._header_done = True
        if self.fmt == "csv":
            self._csvw.writerow(self.keys)
        elif self.fmt == "table":
            head = f"{'no':>7} {'time (UTC)':<15} {'point':<18} {'source':<21} {'destination':<21} {'proto':<6} " \
                   f"{'len':>5}  info"
            for ext in self.extra:
                head += f"  {ext.name:<{ext.width}}"
            self.out.write(head + "\n")

    def _jsonl(self, cells: RowCells) -> None:
        template = "{" + ", ".join(f'"{k}": %s' for k in self.keys) + "}\n"
        self.out.write("".join(map(template.__mod__, zip(*cells.json_columns(self.keys)))))

    def _csv(self, cells: RowCells) -> None:
        self._csvw.writerows(zip(*cells.csv_columns(self.keys)))

    def _table(self, cells: RowCells) -> None:
        c = cells.cells
        n = cells.n
        if n == 0:
            return
        # Without a capture point, several files are told apart by their name.
        several = len({s.file_id for s in cells.index.sources}) > 1
        points = [_fit(escape_text(s.point or (os.path.basename(s.file) if several else "-")), 18)
                  for s in cells.index.sources]
        point = _objects(points)[cells.src_ids] if points else _objects(["-"] * n)
        src = _endpoints(c["src"], c["sport"], cells.o_ported)
        dst = _endpoints(c["dst"], c["dport"], cells.o_ported)
        proto = _ENCAP_TEXT[cells.encap.astype(np.intp)]
        plain = np.flatnonzero(np.equal(proto, None))
        proto[plain] = np.where(cells.o_proto[plain] >= 0, _PROTO_SHORT[np.clip(cells.o_proto[plain], 0, 255)],
                                "-")
        columns = [c["no"].text.tolist(), _clock(cells.ts_ns), point.tolist(), src, dst, proto.tolist(),
                   c["len"].text.tolist(), c["info"]]
        template = "%7s %-15s %-18s %-21s %-21s %-6s %5s  %s"
        for ext in self.extra:
            values = c[ext.name]
            values = values.tolist() if isinstance(values, np.ndarray) else list(values)
            columns.append([escape_text("-" if v is None else str(v)) for v in values])
            template += f"  %-{ext.width}s"
        self.out.write("".join(map((template + "\n").__mod__, zip(*columns))))


ETHERTYPES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x888E: "EAPOL", 0x8809: "LACP/slow protocols",
              0x0800: "IPv4 (cut short)", 0x86DD: "IPv6 (cut short)", 0x8847: "MPLS", 0x8848: "MPLS",
              0x8863: "PPPoE discovery", 0x8864: "PPPoE session", 0x88E5: "MACsec", 0x8906: "FCoE",
              0x9000: "loopback test"}
_VLAN = (0x8100, 0x88A8, 0x9100)


def link_summary(index, row: int) -> str | None:
    """What a non-IP frame is, from its link header (Ethernet with VLAN tags, SLL, SLL2); None if unknown."""
    linktype = index.sources[int(index["source"][row])].linktype
    head = index.frame(row)[:64]
    if linktype == 1:
        pos = 12
        while len(head) >= pos + 2 and int.from_bytes(head[pos:pos + 2], "big") in _VLAN:
            pos += 4
    elif linktype == 113:
        pos = 14
    elif linktype == 276:
        pos = 0
    else:
        return None
    if len(head) < pos + 2:
        return "frame cut short in its link header"
    kind = int.from_bytes(head[pos:pos + 2], "big")
    if kind < 0x0600 and linktype == 1:
        # 802.3 length field: LLC follows; DSAP 0x42 is spanning tree.
        return "STP (802.3 LLC)" if head[pos + 2:pos + 3] == b"\x42" else f"802.3 LLC, length {kind}"
    return ETHERTYPES.get(kind, f"EtherType 0x{kind:04x}")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _endpoints(addr: _Coded, port: _Num, ported: np.ndarray) -> list[str]:
    """``addr:port`` (``[v6]:port``) where there are ports, the address alone otherwise, ``-`` without IP."""
    shown = _objects(["-" if a is None else a for a in addr.table])[addr.codes]
    bracket = addr.bracketed()
    idx = np.flatnonzero(ported)
    if len(idx):
        shown[idx] = bracket[idx] + ":" + port.text[idx]
    return shown.tolist()


def _clock(ts_ns: np.ndarray) -> list[str]:
    """``HH:MM:SS.ffffff`` (UTC) per timestamp."""
    sec, frac = np.divmod(ts_ns, 1_000_000_000)
    h, rem = np.divmod(np.mod(sec, 86400), 3600)
    m, s = np.divmod(rem, 60)
    us = frac // 1000
    return [f"{a:02d}:{b:02d}:{c:02d}.{d:06d}" for a, b, c, d in zip(h.tolist(), m.tolist(), s.tolist(),
                                                                      us.tolist())]


def iso_time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


def iter_json_rows(index, rows: np.ndarray | None = None) -> Iterator[dict[str, object]]:
    """Rows as dicts with ``KEYS`` (for tests and for callers that want Python objects)."""
    buf = io.StringIO()
    RowWriter(buf, "jsonl").write(index, rows)
    for line in buf.getvalue().splitlines():
        yield json.loads(line)
