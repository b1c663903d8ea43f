"""Rows of ``tracer show``: the public JSON/CSV keys computed from the index, and table/jsonl/csv output.

Cells are computed a chunk of rows at a time with numpy (number → text conversion and the null masks are array
operations; addresses and names are formatted once per distinct value and gathered), so printing a million
packets takes seconds, not minutes. ``KEYS`` is the public interface of issue 2 (never rename; add freely).
Later work adds columns (node, role, packet_id, verdict …) through ``ExtraColumn``.

Null rules: ``src``/``dst``/``proto`` need an outermost IP header; ``sport``/``dport`` a port-carrying protocol
(TCP, UDP, SCTP, UDP-Lite, DCCP) with ports present (not a non-first fragment); ``inner_*`` only for
encapsulated packets; ``ttl``, ``ip_id`` (IPv4 only), ``tcp_flags`` and ``icmp_type`` describe the innermost IP
packet — the pod's packet, whose TTL and IP ID identify it across capture points.

Text never carries terminal control characters: table and CSV cells escape C0/C1 controls as ``\\xNN``; JSON
escapes them as JSON does.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from tracer.decode.fields import ENCAP_NAMES, FRAG

KEYS = ("no", "ts", "file", "point", "linktype", "len", "caplen", "src", "dst", "proto", "sport", "dport",
        "encap", "vni", "inner_src", "inner_dst", "inner_proto", "inner_sport", "inner_dport", "ttl", "ip_id",
        "tcp_flags", "icmp_type", "info")
#: Keys whose JSON values are strings (the others are numbers).
STRING_KEYS = frozenset({"file", "point", "src", "dst", "encap", "inner_src", "inner_dst", "tcp_flags", "info"})
PORTED = (6, 17, 132, 136, 33)
TCP_FLAG_LETTERS = "FSRPAUEC"        # bit 0 (FIN) … bit 7 (CWR): SYN+ACK -> "SA"
PROTO_NAMES = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
               51: "AH", 58: "ICMPv6", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP"}
ICMP_NAMES = {(1, 0): "echo reply", (1, 3): "unreachable", (1, 8): "echo request", (1, 11): "time exceeded",
              (1, 5): "redirect", (58, 1): "unreachable", (58, 2): "packet too big", (58, 3): "time exceeded",
              (58, 128): "echo request", (58, 129): "echo reply", (58, 133): "router solicitation",
              (58, 134): "router advertisement", (58, 135): "neighbor solicitation",
              (58, 136): "neighbor advertisement"}
CHUNK = 65536

# C0 controls, DEL and C1 controls -> \xNN (a terminal would act on them).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}


def escape_text(text: str) -> str:
    """``text`` with terminal control characters made visible (``\\x1b`` instead of ESC)."""
    return text.translate(_CONTROL)


@dataclass(frozen=True)
class ExtraColumn:
    """A column added by later work: ``values(index, rows)`` -> one JSON-able value (or None) per row."""

    name: str
    values: Callable[[object, np.ndarray], Sequence[object]]
    width: int = 12          # table width


def tcp_flags_text(flags: int) -> str:
    return "".join(letter for bit, letter in enumerate(TCP_FLAG_LETTERS) if flags >> bit & 1)


_FLAG_TEXT = np.array([tcp_flags_text(i) for i in range(256)], dtype=object)
_INT_TEXT = np.array([str(i) for i in range(65536)], dtype=object)


def _ints(values: np.ndarray) -> np.ndarray:
    """Integer column -> object array of decimal strings."""
    values = np.asarray(values)
    if values.size and values.dtype.kind in "ui" and values.min() >= 0 and values.max() < 65536:
        return _INT_TEXT[values.astype(np.intp)]
    return values.astype(np.int64).astype(str).astype(object)


def _nullable(text: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = text.copy()
    out[~valid] = None
    return out


class RowCells:
    """Cells of one chunk of rows: ``cells[key]`` is an object array of str (or None for null)."""

    def __init__(self, index, rows: np.ndarray, extra: Sequence[ExtraColumn] = ()) -> None:
        self.index = index
        self.rows = rows
        ix = index
        col = lambda name: ix[name][rows]  # noqa: E731
        n = len(rows)
        src_ids = col("source")
        sources = ix.sources
        c: dict[str, np.ndarray] = {}
        c["no"] = (rows + 1).astype(str).astype(object)
        ts = col("ts_ns")
        self.ts_ns = ts
        sec, frac = np.divmod(ts, 1_000_000_000)
        c["ts"] = np.char.add(np.char.add(sec.astype(str), "."), np.char.zfill(frac.astype(str), 9)).astype(object)
        c["file"] = np.array([s.file for s in sources] + [None], dtype=object)[src_ids]
        c["point"] = np.array([s.point for s in sources] + [None], dtype=object)[src_ids]
        c["linktype"] = np.array([str(s.linktype) for s in sources] + [None], dtype=object)[src_ids]
        c["len"] = col("origlen").astype(str).astype(object)
        c["caplen"] = col("caplen").astype(str).astype(object)
        o_ver, i_ver = col("o_ver"), col("i_ver")
        flags = col("flags")
        encap = col("encap")
        has_ip = o_ver != 0
        c["src"] = self._addrs(o_ver, col("o_src"))
        c["dst"] = self._addrs(o_ver, col("o_dst"))
        o_proto = col("o_proto")
        c["proto"] = _nullable(_ints(o_proto), has_ip)
        o_sport, o_dport = col("o_sport"), col("o_dport")
        o_ported = has_ip & np.isin(o_proto, PORTED) & ((o_sport != 0) | (o_dport != 0))
        c["sport"] = _nullable(_ints(o_sport), o_ported)
        c["dport"] = _nullable(_ints(o_dport), o_ported)
        enc = encap != 0
        c["encap"] = np.array(ENCAP_NAMES + (None,) * (256 - len(ENCAP_NAMES)), dtype=object)[encap]
        vni = col("vni")
        c["vni"] = _nullable(vni.astype(str).astype(object), vni >= 0)
        inner = enc & (i_ver != 0)
        i_proto = col("i_proto")
        i_sport, i_dport = col("i_sport"), col("i_dport")
        i_ported = (i_ver != 0) & np.isin(i_proto, PORTED) & ((flags & FRAG) == 0)
        c["inner_src"] = _nullable(self._addrs(i_ver, col("i_src")), inner)
        c["inner_dst"] = _nullable(self._addrs(i_ver, col("i_dst")), inner)
        c["inner_proto"] = _nullable(_ints(i_proto), inner)
        c["inner_sport"] = _nullable(_ints(i_sport), inner & i_ported)
        c["inner_dport"] = _nullable(_ints(i_dport), inner & i_ported)
        c["ttl"] = _nullable(_ints(col("i_ttl")), i_ver != 0)
        c["ip_id"] = _nullable(_ints(col("i_ipid")), i_ver == 4)
        is_tcp = (i_ver != 0) & (i_proto == 6) & ((flags & FRAG) == 0)
        c["tcp_flags"] = _nullable(_FLAG_TEXT[col("tcp_flags")], is_tcp)
        is_icmp = (i_ver != 0) & np.isin(i_proto, (1, 58)) & ((flags & FRAG) == 0)
        icmp_type = col("icmp_type")
        c["icmp_type"] = _nullable(_ints(icmp_type), is_icmp)
        c["info"] = self._info(c, n, encap, vni, i_ver, i_proto, i_sport, i_dport, is_tcp, is_icmp,
                               icmp_type, col, flags, src_ids)
        for ext in extra:
            values = ext.values(index, rows)
            c[ext.name] = np.array([None if v is None else v for v in values], dtype=object)
        self.cells = c
        self.extra = tuple(extra)

    def _addrs(self, ver: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Address text per row (None where ver is 0), formatting each distinct address once."""
        key = (ver.astype(np.uint64) << np.uint64(32)) | value.astype(np.uint64)
        uniq, inv = np.unique(key, return_inverse=True)
        table = np.array([self.index.addr(int(k) >> 32, int(k) & 0xFFFFFFFF) for k in uniq.tolist()] + [None],
                         dtype=object)
        return table[inv.reshape(-1)] if len(uniq) else np.full(len(ver), None, dtype=object)

    def _info(self, c, n, encap, vni, i_ver, i_proto, i_sport, i_dport, is_tcp, is_icmp, icmp_type, col,
              flags, src_ids) -> np.ndarray:
        """A short human summary: ``VXLAN vni 1: TCP 10.244.1.3:41000 → 10.244.2.5:80 [S] seq=…``."""
        out = np.empty(n, dtype=object)
        if n == 0:
            return out
        isrc = self._addrs(i_ver, col("i_src"))
        idst = self._addrs(i_ver, col("i_dst"))
        i_ported = (i_ver != 0) & np.isin(i_proto, PORTED) & ((flags & FRAG) == 0)
        pname = np.array([PROTO_NAMES.get(p, f"proto {p}") for p in range(256)], dtype=object)[i_proto]
        sport_t, dport_t = _ints(i_sport), _ints(i_dport)
        seq, ack = col("tcp_seq"), col("tcp_ack")
        tflags = _FLAG_TEXT[col("tcp_flags")]
        icmp_code = col("icmp_code")
        ilen = col("i_len")
        enc_name = np.array([(e or "").upper() for e in ENCAP_NAMES] + [""] * (256 - len(ENCAP_NAMES)),
                            dtype=object)[encap]
        linktypes = np.array([s.linktype for s in self.index.sources] + [0], dtype=np.int64)[src_ids]
        parts = [None] * n
        lists = [x.tolist() for x in (i_ver, isrc, idst, i_ported, pname, sport_t, dport_t, is_tcp, tflags, seq,
                                      ack, is_icmp, icmp_type, icmp_code, ilen, encap, enc_name, vni, flags,
                                      linktypes)]
        for k, (ver, s, d, ported, pn, sp, dp, tcp, tf, sq, ak, icmp, it, ic, il, en, ename, v, fl, lt) in \
                enumerate(zip(*lists)):
            if ver == 0:
                text = f"non-IP frame (linktype {lt})"
            elif ported:
                text = f"{pn} {s}:{sp} → {d}:{dp}"
                if tcp:
                    text += f" [{tf}] seq={sq} ack={ak}"
                text += f" len={il}"
            elif icmp:
                kind = ICMP_NAMES.get((1 if ver == 4 else 58, it), f"type {it} code {ic}")
                text = f"{pn} {s} → {d} {kind}"
            else:
                text = f"{pn} {s} → {d} len={il}"
                if fl & FRAG:
                    text += " fragment"
            if en:
                text = f"{ename} vni {v}: {text}" if v >= 0 else f"{ename}: {text}"
            if fl & 1:
                text += " [truncated]"
            parts[k] = text
        out[:] = parts
        return out


def _json_values(values: np.ndarray, is_string: bool) -> list[str]:
    if is_string:
        table: dict[object, str] = {}
        return [table.get(v) or table.setdefault(v, "null" if v is None else json.dumps(v)) for v in values.tolist()]
    return ["null" if v is None else v for v in values.tolist()]


def _json_extra(values: np.ndarray) -> list[str]:
    return [json.dumps(v) if not isinstance(v, str) else json.dumps(v) for v in values.tolist()]


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
        self._t0: int | None = None

    def write(self, index, rows: np.ndarray | None = None) -> int:
        """Write ``rows`` of ``index`` (all rows when None); returns the number written."""
        if rows is None:
            rows = np.arange(len(index), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        written = 0
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            cells = RowCells(index, chunk, self.extra)
            getattr(self, f"_{self.fmt}")(cells)
            written += len(chunk)
        if not self._header_done and self.fmt == "csv":
            self._csvw.writerow(self.keys)
            self._header_done = True
        return written

    def _jsonl(self, cells: RowCells) -> None:
        c = cells.cells
        cols = []
        for key in KEYS:
            cols.append(_json_values(c[key], key in STRING_KEYS))
        for ext in self.extra:
            cols.append(_json_extra(c[ext.name]))
        template = "{" + ", ".join(f'"{k}": %s' for k in self.keys) + "}\n"
        self.out.write("".join(template % row for row in zip(*cols)))

    def _csv(self, cells: RowCells) -> None:
        if not self._header_done:
            self._csvw.writerow(self.keys)
            self._header_done = True
        cols = [[escape_text(v) if isinstance(v, str) else v for v in cells.cells[k].tolist()] for k in self.keys]
        self._csvw.writerows(zip(*cols))

    def _table_header(self) -> None:
        head = f"{'no':>7} {'time (UTC)':<15} {'point':<18} {'source':<21} {'destination':<21} {'proto':<6} " \
               f"{'len':>5}  info"
        for ext in self.extra:
            head += f"  {ext.name:<{ext.width}}"
        self.out.write(head + "\n")

    def _table(self, cells: RowCells) -> None:
        if not self._header_done:
            self._table_header()
            self._header_done = True
        c = cells.cells
        ts = cells.ts_ns
        times = _clock(ts)
        point = c["point"].copy()
        nopoint = np.equal(point, None)
        point[nopoint] = c["file"][nopoint]
        src = _endpoint(c["src"], c["sport"])
        dst = _endpoint(c["dst"], c["dport"])
        proto = c["encap"].copy()
        noenc = np.equal(proto, None)
        pn = np.array([PROTO_NAMES.get(p, str(p)) for p in range(256)], dtype=object)
        o_proto = np.array([int(p) if p is not None else -1 for p in c["proto"].tolist()])
        proto[noenc] = np.where(o_proto[noenc] >= 0, pn[np.clip(o_proto[noenc], 0, 255)], "-")
        lines = []
        extras = [c[e.name].tolist() for e in self.extra]
        for k, (no, t, pt, s, d, pr, ln, info) in enumerate(zip(c["no"].tolist(), times, point.tolist(),
                                                                src.tolist(), dst.tolist(), proto.tolist(),
                                                                c["len"].tolist(), c["info"].tolist())):
            line = f"{no:>7} {t:<15} {escape_text(_fit(pt or '-', 18)):<18} {s:<21} {d:<21} {pr:<6} {ln:>5}  " \
                   f"{escape_text(info)}"
            for e, vals in zip(self.extra, extras):
                v = vals[k]
                line += f"  {escape_text('-' if v is None else str(v)):<{e.width}}"
            lines.append(line)
        self.out.write("\n".join(lines) + ("\n" if lines else ""))


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _endpoint(addr: np.ndarray, port: np.ndarray) -> np.ndarray:
    out = np.empty(len(addr), dtype=object)
    out[:] = [("-" if a is None else (f"[{a}]:{p}" if ":" in a else f"{a}:{p}") if p is not None else a)
              for a, p in zip(addr.tolist(), port.tolist())]
    return out


def _clock(ts_ns: np.ndarray) -> list[str]:
    """``HH:MM:SS.ffffff`` (UTC) per timestamp."""
    sec, frac = np.divmod(ts_ns, 1_000_000_000)
    day = np.mod(sec, 86400)
    h, rem = np.divmod(day, 3600)
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
