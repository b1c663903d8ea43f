"""The display filter: a Wireshark-style expression compiled to boolean numpy masks over the packet index.

``compile_filter(expr, fields)`` parses once and returns a ``Filter``; ``Filter.mask(index)`` evaluates it over
every indexed row with whole-column numpy operations (never a Python loop per packet), so it stays instant on a
million packets and can be re-run as a live index grows.

The syntax is the subset of Wireshark's that people already type (issue 2, "Display filter"):

- tests: ``FIELD`` (present), ``FIELD OP VALUE``, ``FIELD in {V1 V2 A..B}`` (commas optional), ``FIELD not in {…}``;
  ``OP`` is ``== != < <= > >=``, their words ``eq ne lt le gt ge``, ``=== !==`` (``all_eq any_ne``), and
  ``contains`` / ``matches`` (``~``) for text;
- logic: ``and &&``, ``or ||``, ``xor ^^``, ``not !``, parentheses; ``not`` binds tighter than ``and``, ``and``
  than ``or``/``xor``;
- values: integers (decimal, ``0x…`` hex, ``0…`` octal), ``true``/``false``, IPv4/IPv6 addresses and CIDR
  blocks, strings with or without quotes (``verdict == deny``, ``k8s.ns == "python"``);
- text fields (``frame.interface_name``, ``frame.point``, caller fields) also take ``contains`` and ``matches``.

Semantics follow Wireshark 4: a field may occur more than once in a packet (``ip.src`` is both the outer and the
inner header of an encapsulated packet, ``tcp.port`` both ports), ``==`` and the orderings hold when ANY occurrence
matches, ``!=`` when the field is present and NO occurrence equals the value, and any comparison on an absent
field is false. ``outer.FIELD`` / ``inner.FIELD`` pin the outermost or the innermost IP packet; on a packet that is
not encapsulated both are the packet itself. Fields the index records only for the innermost packet (TCP flags,
sequence numbers, ICMP type/code) exist under ``outer.`` only when the packet is not encapsulated.

Known differences from Wireshark, all consequences of what the index records: a middle header of a three-level
tunnel is not matched; ``vxlan.vni``/``geneve.vni`` describe the outermost tunnel; TCP sequence numbers are
absolute (Wireshark shows relative ones); non-first IP fragments carry no ports (no reassembly); an ICMP error's
quoted header is not matched by ``ip.*``/``tcp.*``.

Callers add fields (``k8s.ns``, ``verdict``…) as resolvers ``(index, op, value) -> mask``; ``op`` is the canonical
operator (``== != < <= > >= contains matches``) and ``value`` the literal text with quotes removed.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracer.errors import FilterError

FieldResolver = Callable[[Any, str, Any], np.ndarray]
MAX_NESTING = 100  # parenthesised levels; deeper input is hostile, not a filter someone typed

# Column bits and codes from the index contract (docs/CONTRACTS.md); repeated here as plain numbers so the filter
# needs nothing from the decoder at import time.
_FRAG = 0x02  # ``flags``: the innermost IP packet is a non-first fragment (no layer 4 fields)
ENCAP_CODES = {"vxlan": 1, "geneve": 2, "ipip": 3, "ip6in4": 4, "ip4in6": 5, "gre": 6, "ip6in6": 7}
TCP_FLAG_BITS = {"fin": 0x01, "syn": 0x02, "reset": 0x04, "rst": 0x04, "push": 0x08, "psh": 0x08, "ack": 0x10,
                 "urg": 0x20, "ece": 0x40, "cwr": 0x80}
IP_PROTO_NAMES = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "udp": 17, "ipv6": 41, "gre": 47, "esp": 50,
                  "ah": 51, "icmpv6": 58, "sctp": 132}

# ---------------------------------------------------------------- tokens
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>===|!==|==|!=|<=|>=|&&|\|\||\^\^|[<>=!~(){},])
      | (?P<word>[A-Za-z0-9_.:/\-]+)""",
    re.X,
)
_OPS = {"==": "==", "eq": "==", "any_eq": "==", "=": "==", "!=": "!=", "ne": "!=", "all_ne": "!=",
        "===": "===", "all_eq": "===", "!==": "!==", "any_ne": "!==", "<": "<", "lt": "<", "<=": "<=",
        "le": "<=", ">": ">", "gt": ">", ">=": ">=", "ge": ">=", "contains": "contains", "matches": "matches",
        "~": "matches"}
_KEYWORDS = {"and", "or", "xor", "not", "in", *(k for k in _OPS if k.isalpha() or "_" in k)}


@dataclass(frozen=True)
class _Tok:
    kind: str  # "str", "op", "word", "end"
    text: str
    pos: int

    @property
    def low(self) -> str:
        return self.text.lower() if self.kind == "word" else self.text


def _tokens(expr: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            if expr[pos] in "\"'":
                raise FilterError(f"unterminated string starting at column {pos + 1}", pos)
            raise FilterError(f"unexpected character {expr[pos]!r} at column {pos + 1}", pos)
        if m.lastgroup != "ws":
            out.append(_Tok(m.lastgroup, m.group(), pos))
        pos = m.end()
    out.append(_Tok("end", "", len(expr)))
    return out


def _unquote(tok: _Tok) -> str:
    if tok.kind != "str":
        return tok.text
    return re.sub(r"\\(.)", r"\1", tok.text[1:-1])


# ---------------------------------------------------------------- evaluation context
class _Ctx:
    """One evaluation over one index: column views cut to ``len(index)``, cached for the whole expression."""

    def __init__(self, index: Any, start: int = 0, stop: int | None = None) -> None:
        self.index = index
        total = len(index)
        self.stop = total if stop is None else max(0, min(int(stop), total))
        self.start = max(0, min(int(start), self.stop))
        self.n = self.stop - self.start
        self._cols: dict[str, np.ndarray] = {}
        self._occ: dict[tuple[str, str | None], tuple[list[Occ], np.ndarray]] = {}
        self._addr6: tuple[np.ndarray, np.ndarray] | None = None

    def col(self, name: str) -> np.ndarray:
        got = self._cols.get(name)
        if got is None:
            if name == "frame.number":
                got = np.arange(self.start + 1, self.stop + 1, dtype=np.int64)
            elif name == "ts0":  # the first packet's time, for frame.time_relative
                got = np.asarray(self.index["ts_ns"])[:1]
            else:
                got = np.asarray(self.index[name])[self.start : self.stop]
            self._cols[name] = got
        return got

    def occurrences(self, field: _Field, pin: str | None) -> tuple[list[Occ], np.ndarray]:
        """A field's occurrences and where any is present, computed once per evaluation (``a == 1 or a == 2``)."""
        key = (field.name, pin)
        got = self._occ.get(key)
        if got is None:
            occs = field.occ(self, pin)
            present = self.none()
            for p, _ in occs:
                present |= p
            got = self._occ[key] = (occs, present)
        return got

    def source_text(self, attr: str) -> list[str | None]:
        """``attr`` of every ``index.sources`` entry (a handful of capture files/interfaces, not packets)."""
        return [getattr(src, attr, None) for src in getattr(self.index, "sources", ())]

    def all(self) -> np.ndarray:
        return np.ones(self.n, bool)

    def none(self) -> np.ndarray:
        return np.zeros(self.n, bool)

    def addr6_matching(self, net: ipaddress.IPv6Network) -> np.ndarray:
        """Ids of the index's IPv6 table that lie inside ``net``, by a vectorised prefix test over the table."""
        ids, addrs = self._addr6_table()
        if not len(ids):
            return ids
        packed = np.frombuffer(net.network_address.packed, np.uint8)
        full, rem = divmod(net.prefixlen, 8)
        hit = np.all(addrs[:, :full] == packed[:full], axis=1)
        if rem:
            keep = np.uint8((0xFF << (8 - rem)) & 0xFF)
            hit &= (addrs[:, full] & keep) == (packed[full] & keep)
        return ids[hit]

    def _addr6_table(self) -> tuple[np.ndarray, np.ndarray]:
        if self._addr6 is None:
            table = getattr(self.index, "addr6", None)
            if table is not None and hasattr(table, "__len__"):
                ids = np.arange(len(table), dtype=np.uint32)
                raw = [table[int(i)] for i in ids]  # one entry per distinct address, not per packet
            else:  # only the contract's ``index.addr(6, id)``: the distinct ids actually present
                parts = [self.col(c)[self.col(v) == 6] for v, cs in (("o_ver", ("o_src", "o_dst")),
                                                                     ("i_ver", ("i_src", "i_dst"))) for c in cs]
                ids = np.unique(np.concatenate(parts)).astype(np.uint32) if parts else np.zeros(0, np.uint32)
                raw = [ipaddress.IPv6Address(self.index.addr(6, int(i))).packed for i in ids]
            addrs = np.frombuffer(b"".join(raw), np.uint8).reshape(-1, 16)
            self._addr6 = (ids, addrs)
        return self._addr6


# An occurrence of a field in every row: (present mask, values); a field yields one per header it can appear in.
Occ = tuple[np.ndarray, np.ndarray]


# ---------------------------------------------------------------- the field table
@dataclass(frozen=True)
class _Field:
    """How one filter field reads the index.

    ``occ(ctx, pin)`` returns the field's occurrences; ``pin`` is None, "outer" or "inner". ``kind`` says how to
    read literals: "proto" (presence only), "uint", "bool", "ip4", "ip6", "encap", "time".
    """

    name: str
    kind: str
    occ: Callable[[_Ctx, str | None], list[Occ]]
    layered: bool = True  # accepts outer./inner.
    bits: int = 0  # largest value for "uint" fields, in bits
    doc: str = ""


def _levels(pin: str | None) -> tuple[str, ...]:
    return {None: ("o", "i"), "outer": ("o",), "inner": ("i",)}[pin]


def _ip_present(ctx: _Ctx, lv: str, ver: int) -> np.ndarray:
    return ctx.col(f"{lv}_ver") == ver


def _l4_present(ctx: _Ctx, lv: str, protos: tuple[int, ...], ver: int | None = None) -> np.ndarray:
    """Layer 4 header ``protos`` present at level ``lv``: right protocol and not a non-first fragment."""
    v = ctx.col(f"{lv}_ver")
    ok = (v == ver) if ver else (v != 0)
    proto = ctx.col(f"{lv}_proto")
    ok &= (proto == protos[0]) if len(protos) == 1 else np.isin(proto, protos)
    frag = (ctx.col("flags") & _FRAG) != 0
    if lv == "o":  # the outer header is the innermost one only when nothing is encapsulated
        frag &= ctx.col("encap") == 0
    return ok & ~frag


def _innermost(ctx: _Ctx, pin: str | None, present: np.ndarray) -> np.ndarray:
    """Innermost-only fields exist under ``outer.`` only for packets that are not encapsulated."""
    return present & (ctx.col("encap") == 0) if pin == "outer" else present


def _ip_field(ver: int, *cols: str) -> Callable[[_Ctx, str | None], list[Occ]]:
    def occ(ctx: _Ctx, pin: str | None) -> list[Occ]:
        return [(_ip_present(ctx, lv, ver), ctx.col(f"{lv}_{c}")) for lv in _levels(pin) for c in cols]
    return occ


def _ip_presence(ver: int) -> Callable[[_Ctx, str | None], list[Occ]]:
    def occ(ctx: _Ctx, pin: str | None) -> list[Occ]:
        return [(_ip_present(ctx, lv, ver), ctx.col(f"{lv}_ver")) for lv in _levels(pin)]
    return occ


def _l4_field(protos: tuple[int, ...], *cols: str) -> Callable[[_Ctx, str | None], list[Occ]]:
    def occ(ctx: _Ctx, pin: str | None) -> list[Occ]:
        out = []
        for lv in _levels(pin):
            present = _l4_present(ctx, lv, protos)
            out += [(present, ctx.col(f"{lv}_{c}")) for c in (cols or ("proto",))]
        return out
    return occ


def _inner_field(proto: int, ver: int, value: Callable[[_Ctx], np.ndarray]):
    def occ(ctx: _Ctx, pin: str | None) -> list[Occ]:
        return [(_innermost(ctx, pin, _l4_present(ctx, "i", (proto,), ver)), value(ctx))]
    return occ


def _column(col: str, present: Callable[[_Ctx], np.ndarray] | None = None):
    def occ(ctx: _Ctx, pin: str | None) -> list[Occ]:
        return [(present(ctx) if present else ctx.all(), ctx.col(col))]
    return occ


def _encap_is(code: int) -> Callable[[_Ctx], np.ndarray]:
    return lambda ctx: ctx.col("encap") == code


def _flag_bit(bit: int) -> Callable[[_Ctx], np.ndarray]:
    return lambda ctx: (ctx.col("tcp_flags") & bit) != 0


def _source_text(attr: str) -> Callable[[_Ctx, str | None], list[Occ]]:
    """A text attribute of each packet's ``Source``: values are source ids, compared through ``ctx.source_text``."""
    def occ(ctx: _Ctx, pin: str | None) -> list[Occ]:
        texts = ctx.source_text(attr)
        known = np.array([t is not None for t in texts] or [False], bool)
        src = ctx.col("source")
        return [(known[np.minimum(src, len(known) - 1)], src)]
    occ.attr = attr  # type: ignore[attr-defined]
    return occ


def _build_fields() -> dict[str, _Field]:
    f: dict[str, _Field] = {}

    def add(name: str, kind: str, occ, *, layered: bool = True, bits: int = 0, doc: str = "") -> None:
        f[name] = _Field(name, kind, occ, layered, bits, doc)

    add("frame", "proto", lambda ctx, pin: [(ctx.all(), ctx.col("caplen"))], layered=False)
    add("frame.number", "uint", _column("frame.number"), layered=False, bits=63, doc="1-based row number")
    add("frame.len", "uint", _column("origlen"), layered=False, bits=32, doc="length on the wire")
    add("frame.cap_len", "uint", _column("caplen"), layered=False, bits=32, doc="captured length")
    add("frame.time_epoch", "time", _column("ts_ns"), layered=False, doc="seconds since the epoch")
    add("frame.time_relative", "time",
        lambda ctx, pin: [(ctx.all(), ctx.col("ts_ns") - (ctx.col("ts0")[0] if len(ctx.col("ts0")) else 0))],
        layered=False, doc="seconds since the first packet")

    add("ip", "proto", _ip_presence(4))
    for name, cols in (("src", ("src",)), ("dst", ("dst",)), ("addr", ("src", "dst"))):
        add(f"ip.{name}", "ip4", _ip_field(4, *cols))
        add(f"ipv6.{name}", "ip6", _ip_field(6, *cols))
    add("ip.proto", "uint", _ip_field(4, "proto"), bits=8)
    add("ip.ttl", "uint", _ip_field(4, "ttl"), bits=8)
    add("ip.id", "uint", _ip_field(4, "ipid"), bits=16)
    add("ipv6", "proto", _ip_presence(6))
    add("ipv6.nxt", "uint", _ip_field(6, "proto"), bits=8, doc="upper-layer protocol after extension headers")
    add("ipv6.hlim", "uint", _ip_field(6, "ttl"), bits=8)

    for proto, num in (("tcp", 6), ("udp", 17), ("sctp", 132)):
        add(proto, "proto", _l4_field((num,)))
        add(f"{proto}.port", "uint", _l4_field((num,), "sport", "dport"), bits=16)
        add(f"{proto}.srcport", "uint", _l4_field((num,), "sport"), bits=16)
        add(f"{proto}.dstport", "uint", _l4_field((num,), "dport"), bits=16)
    add("tcp.flags", "uint", _inner_field(6, 0, lambda ctx: ctx.col("tcp_flags")), bits=8)
    for name, bit in TCP_FLAG_BITS.items():
        add(f"tcp.flags.{name}", "bool", _inner_field(6, 0, _flag_bit(bit)))
    add("tcp.seq", "uint", _inner_field(6, 0, lambda ctx: ctx.col("tcp_seq")), bits=32, doc="absolute")
    add("tcp.ack", "uint", _inner_field(6, 0, lambda ctx: ctx.col("tcp_ack")), bits=32, doc="absolute")
    add("tcp.seq_raw", "uint", _inner_field(6, 0, lambda ctx: ctx.col("tcp_seq")), bits=32)
    add("tcp.ack_raw", "uint", _inner_field(6, 0, lambda ctx: ctx.col("tcp_ack")), bits=32)

    for proto, num, ver in (("icmp", 1, 4), ("icmpv6", 58, 6)):
        add(proto, "proto", lambda ctx, pin, num=num, ver=ver: [
            (_ip_present(ctx, lv, ver) & (ctx.col(f"{lv}_proto") == num), ctx.col(f"{lv}_proto"))
            for lv in _levels(pin)])
        add(f"{proto}.type", "uint", _inner_field(num, ver, lambda ctx: ctx.col("icmp_type")), bits=8)
        add(f"{proto}.code", "uint", _inner_field(num, ver, lambda ctx: ctx.col("icmp_code")), bits=8)
    add("icmp.ident", "uint", _inner_field(1, 4, lambda ctx: ctx.col("icmp_id")), bits=16)
    add("icmp.seq", "uint", _inner_field(1, 4, lambda ctx: ctx.col("icmp_seq")), bits=16)
    add("icmpv6.echo.identifier", "uint", _inner_field(58, 6, lambda ctx: ctx.col("icmp_id")), bits=16)
    add("icmpv6.echo.sequence_number", "uint", _inner_field(58, 6, lambda ctx: ctx.col("icmp_seq")), bits=16)

    for name, code in ENCAP_CODES.items():
        add(name, "proto", _column("encap", _encap_is(code)), layered=False, doc="outermost tunnel")
    add("vxlan.vni", "uint", _column("vni", _encap_is(1)), layered=False, bits=24)
    add("geneve.vni", "uint", _column("vni", _encap_is(2)), layered=False, bits=24)
    add("encap", "encap", _column("encap", lambda ctx: ctx.col("encap") != 0), layered=False,
        doc="outermost tunnel: " + " ".join(ENCAP_CODES))
    add("encap.depth", "uint", _column("depth"), layered=False, bits=8)
    add("frame.interface_name", "text", _source_text("iface"), layered=False, doc="pcapng if_name")
    add("frame.point", "text", _source_text("point"), layered=False, doc="capture point, e.g. node-1/flannel.1")
    return f


FIELDS: dict[str, _Field] = _build_fields()
#: Names Wireshark users type that the index cannot answer, with the reason given instead of "unknown field".
NOT_INDEXED = {
    "arp": "ARP", "eth": "Ethernet headers", "vlan": "VLAN tags", "dns": "DNS", "http": "HTTP",
    "tls": "TLS", "ssh": "SSH", "ntp": "NTP", "igmp": "IGMP",
}


# ---------------------------------------------------------------- literals
@dataclass(frozen=True)
class _Value:
    """A literal read for one field: an int, a (low, high) range, a network, or text; ``pos`` for errors."""

    kind: str  # "int", "range", "net4", "net6", "text"
    a: Any
    b: Any = None
    pos: int = 0


def _err_value(field: _Field, text: str, pos: int, want: str) -> FilterError:
    return FilterError(f"{field.name}: {text!r} is not {want} (column {pos + 1})", pos)


def _parse_int(field: _Field, text: str, pos: int) -> int:
    low = text.lower()
    if field.kind == "bool" and low in ("true", "false"):
        return int(low == "true")
    if field.name in ("ip.proto", "ipv6.nxt") and low in IP_PROTO_NAMES:
        return IP_PROTO_NAMES[low]
    try:  # Wireshark reads 0x.. as hex and a leading 0 as octal (010 == 8)
        value = int(text, 8) if re.fullmatch(r"0[0-7]+", text) else int(text, 0)
    except ValueError:
        raise _err_value(field, text, pos, "a number") from None
    top = 1 if field.kind == "bool" else (1 << field.bits) - 1
    if not 0 <= value <= top:
        raise FilterError(f"{field.name}: {text} is out of range (0..{top}) (column {pos + 1})", pos)
    return value


def _parse_value(field: _Field, tok: _Tok) -> _Value:
    text, pos = _unquote(tok), tok.pos
    kind = field.kind
    if kind in ("uint", "bool"):
        if ".." in text and tok.kind == "word":
            lo, _, hi = text.partition("..")
            return _Value("range", _parse_int(field, lo, pos), _parse_int(field, hi, pos + len(lo) + 2), pos)
        return _Value("int", _parse_int(field, text, pos), pos=pos)
    if kind == "time":
        try:
            return _Value("int", round(float(text) * 1e9), pos=pos)
        except ValueError:
            raise _err_value(field, text, pos, "a time in seconds") from None
    if kind in ("ip4", "ip6"):
        if ".." in text:
            lo, _, hi = text.partition("..")
            a, b = _parse_addr(field, lo, pos), _parse_addr(field, hi, pos + len(lo) + 2)
            if kind == "ip6":
                raise FilterError(f"{field.name}: address ranges are not supported for IPv6 (column {pos + 1})",
                                  pos)
            return _Value("range", int(a.network_address), int(b.broadcast_address), pos)
        net = _parse_addr(field, text, pos)
        return _Value("net4" if kind == "ip4" else "net6", net, pos=pos)
    if kind == "text":
        return _Value("text", text, pos=pos)
    if kind == "encap":
        code = ENCAP_CODES.get(text.lower())
        if code is None:
            raise _err_value(field, text, pos, "one of " + " ".join(ENCAP_CODES))
        return _Value("int", code, pos=pos)
    raise FilterError(f"{field.name} is a protocol: test it alone, without a value (column {pos + 1})", pos)


def _parse_addr(field: _Field, text: str, pos: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    v6 = field.kind == "ip6"
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _err_value(field, text, pos, "an IPv6 address or CIDR" if v6 else "an IPv4 address or CIDR") from None
    if isinstance(net, ipaddress.IPv6Network) != v6:
        other = "ipv6" if not v6 else "ip"
        suffix = field.name.split(".", 1)[1]
        raise FilterError(f"{field.name}: {text} is an IPv{6 if not v6 else 4} address; use {other}.{suffix} "
                          f"(column {pos + 1})", pos)
    return net


def _check_op(field: _Field, op: str, lits: Sequence[_Value], optok: _Tok) -> None:
    """Reject at compile time what a field's values cannot do (so a bad filter fails before any work)."""
    pos = optok.pos
    if field.kind == "text":
        if op in _ORDER:
            raise FilterError(f"{field.name} supports ==, !=, contains and matches (column {pos + 1})", pos)
        if op == "matches":
            for lit in lits:
                try:
                    re.compile(lit.a)
                except re.error as exc:
                    raise FilterError(f"{field.name}: bad regular expression: {exc} (column {lit.pos + 1})",
                                      lit.pos) from None
        return
    if op in ("contains", "matches"):
        raise FilterError(f"{field.name} does not support '{optok.text}' (column {pos + 1})", pos)
    if op in ("<", "<=", ">", ">="):
        for lit in lits:
            if lit.kind == "net6" or lit.kind == "range" or (lit.kind == "net4" and lit.a.prefixlen != 32):
                what = "IPv6 addresses" if lit.kind == "net6" else "a range or CIDR block"
                raise FilterError(f"{field.name}: {what} support only == and != (column {pos + 1})", pos)
        if field.kind == "encap":
            raise FilterError(f"encap supports only == and != (column {pos + 1})", pos)


def _order_value(lit: _Value) -> int:
    """The number an ordering compares with: the literal, or a single IPv4 address as an integer."""
    return int(lit.a.network_address) if lit.kind == "net4" else int(lit.a)


# ---------------------------------------------------------------- comparisons (vectorised)
def _membership(ctx: _Ctx, lits: Sequence[_Value]) -> Callable[[np.ndarray], np.ndarray]:
    """``values ∈ lits`` for a whole column: one ``np.isin`` over IPv6 ids, or one sorted-interval lookup.

    Numbers, ranges and IPv4 CIDR blocks all become closed intervals; they are merged and searched with
    ``np.searchsorted``, so ``tcp.port in {…}`` with thousands of values still costs one pass over the column.
    """
    nets6 = [lit for lit in lits if lit.kind == "net6"]
    if nets6:
        ids = np.unique(np.concatenate([ctx.addr6_matching(lit.a) for lit in nets6]))
        return lambda values: np.isin(values, ids)
    spans = []
    for lit in lits:
        if lit.kind == "net4":
            spans.append((int(lit.a.network_address), int(lit.a.broadcast_address)))
        elif lit.kind == "range":
            spans.append((min(lit.a, lit.b), max(lit.a, lit.b)))
        else:
            spans.append((lit.a, lit.a))
    spans.sort()
    merged = [list(spans[0])]
    for lo, hi in spans[1:]:
        if lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    if len(merged) == 1:
        lo, hi = merged[0]
        return (lambda values: values == lo) if lo == hi else (lambda values: (values >= lo) & (values <= hi))
    los = np.array([m[0] for m in merged], np.int64)
    his = np.array([m[1] for m in merged], np.int64)
    small: list[np.ndarray] = []  # the lookup table for 8/16-bit columns, built on first use

    def inside(values: np.ndarray) -> np.ndarray:
        if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
            # ports, protocols, TTLs: one gather from a 64 Ki-entry table beats comparing every interval
            if not small:
                span = np.arange(1 << 16, dtype=np.int64)
                k = np.searchsorted(los, span, side="right") - 1
                small.append((k >= 0) & (span <= his[np.maximum(k, 0)]))
            return small[0][values]
        k = np.searchsorted(los, values, side="right") - 1
        return (k >= 0) & (values <= his[np.maximum(k, 0)])
    return inside


def _text_test(ctx: _Ctx, field: _Field, op: str, lits: Sequence[_Value]) -> Callable[[np.ndarray], np.ndarray]:
    """For text held per source: decide once per source (case-sensitive, as Wireshark), then look rows up by id.

    ``==``/``!=``/``in`` compare whole strings; ``contains`` a substring; ``matches`` a Python regular expression
    (Wireshark uses PCRE; the common subset is the same). ``===``/``!==`` reduce to ``==`` (one value per row).
    """
    texts = ctx.source_text(field.occ.attr)  # type: ignore[attr-defined]
    if op == "contains":
        hit = [t is not None and any(lit.a in t for lit in lits) for t in texts]
    elif op == "matches":
        rxs = [re.compile(lit.a) for lit in lits]
        hit = [t is not None and any(rx.search(t) for rx in rxs) for t in texts]
    else:
        hit = [t is not None and any(lit.a == t for lit in lits) for t in texts]
    table = np.array(hit or [False], bool)
    return lambda ids: table[np.minimum(ids, len(table) - 1)]


_ORDER = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


# ---------------------------------------------------------------- the compiled tree
Node = Callable[[_Ctx], np.ndarray]


def _test_builtin(field: _Field, pin: str | None, op: str | None, lits: Sequence[_Value], pos: int) -> Node:
    """Wireshark 4 semantics over a field's occurrences: ``==``/``in``/orderings hold when ANY present occurrence
    matches; ``!=`` (all_ne) when the field is present and NO occurrence equals; ``===`` (all_eq) when present
    and every present occurrence equals; ``!==`` (any_ne) when some present occurrence differs."""
    def run(ctx: _Ctx) -> np.ndarray:
        occs, any_present = ctx.occurrences(field, pin)
        present = any_present.copy()
        if op is None:
            return present
        if field.kind == "text":
            test = _text_test(ctx, field, op, lits)
        elif op in _ORDER:
            order, bound = _ORDER[op], _order_value(lits[0])
            test = lambda values: order(values, bound)  # noqa: E731
        else:
            test = _membership(ctx, lits)
        hit = ctx.none()
        for p, vals in occs:
            same = test(vals)
            hit |= p & (~same if op in ("===", "!==") else same)
        return present & ~hit if op in ("!=", "===") else hit
    return run


def _test_resolver(name: str, resolver: FieldResolver, op: str, lits: Sequence[str], pos: int) -> Node:
    def run(ctx: _Ctx) -> np.ndarray:
        out = ctx.none()
        for text in lits:  # several values only for "in {…}": any of them
            try:
                got = np.asarray(resolver(ctx.index, op, text), dtype=bool).reshape(-1)
            except FilterError as exc:
                if exc.position is not None:
                    raise
                raise FilterError(str(exc), pos) from None
            got = got[ctx.start : ctx.stop]  # resolvers answer for every row of the index
            out[: len(got)] |= got
        return out
    return run


class _Parser:
    def __init__(self, expr: str, extra: Mapping[str, FieldResolver]) -> None:
        self.expr = expr
        self.toks = _tokens(expr)
        self.i = 0
        self.depth = 0
        self.extra = extra

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def unexpected(self, want: str = "") -> FilterError:
        tok = self.tok
        if tok.kind == "end":
            return FilterError(f"unexpected end of filter{', expected ' + want if want else ''}", tok.pos)
        tail = f", expected {want}" if want else ""
        return FilterError(f"unexpected token '{tok.text}' at column {tok.pos + 1}{tail}", tok.pos)

    def parse(self) -> Node:
        if self.tok.kind == "end":
            return lambda ctx: ctx.all()
        node = self.or_()
        if self.tok.kind != "end":
            raise self.unexpected("'and', 'or' or the end")
        return node

    def or_(self) -> Node:
        parts, xors = [self.and_()], []
        while self.tok.low in ("or", "||", "xor", "^^"):
            xors.append(self.take().low in ("xor", "^^"))
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]

        def run(ctx: _Ctx) -> np.ndarray:  # a loop, not nested closures: 10,000 "or"s must not recurse
            out = parts[0](ctx)
            for xor, part in zip(xors, parts[1:]):
                out = out ^ part(ctx) if xor else out | part(ctx)
            return out
        return run

    def and_(self) -> Node:
        parts = [self.not_()]
        while self.tok.low in ("and", "&&"):
            self.take()
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]

        def run(ctx: _Ctx) -> np.ndarray:
            out = parts[0](ctx)
            for part in parts[1:]:
                out = out & part(ctx)
            return out
        return run

    def not_(self) -> Node:
        flips = 0
        while self.tok.low in ("not", "!"):
            self.take()
            flips += 1
        inner = self.primary()
        return (lambda ctx: ~inner(ctx)) if flips % 2 else inner

    def primary(self) -> Node:
        tok = self.tok
        if tok.text == "(" and tok.kind == "op":
            self.depth += 1
            if self.depth > MAX_NESTING:  # parentheses recurse in the parser: bound them (issue 7)
                raise FilterError(f"parentheses nest deeper than {MAX_NESTING} at column {tok.pos + 1}", tok.pos)
            self.take()
            node = self.or_()
            self.depth -= 1
            if self.tok.text != ")":
                raise self.unexpected("')'")
            self.take()
            return node
        if tok.kind != "word" or tok.low in _KEYWORDS:
            raise self.unexpected("a field name")
        self.take()
        return self.test(tok)

    def test(self, ftok: _Tok) -> Node:
        name = ftok.text
        resolver = self.extra.get(name)
        field, pin = None, None
        if resolver is None:
            field, pin = self.lookup(ftok)
        optok = self.tok
        op = self.operator()
        if op is None:
            if resolver is not None:
                raise FilterError(f"{name} needs a value, e.g. {name} == VALUE (column {ftok.pos + 1})", ftok.pos)
            return _test_builtin(field, pin, None, (), ftok.pos)
        lit_toks = self.set_() if op in ("in", "not in") else [self.value()]
        cmp = "==" if op in ("in", "not in") else op
        if resolver is not None:
            node = _test_resolver(name, resolver, cmp, [_unquote(t) for t in lit_toks], ftok.pos)
        else:
            if field.kind == "proto":
                raise FilterError(f"{field.name} is a protocol: test it alone, without a value "
                                  f"(column {ftok.pos + 1})", ftok.pos)
            lits = [_parse_value(field, t) for t in lit_toks]
            _check_op(field, cmp, lits, optok)
            node = _test_builtin(field, pin, cmp, lits, ftok.pos)
        if op == "not in":
            present = _test_builtin(field, pin, None, (), ftok.pos) if field else (lambda ctx: ctx.all())
            return lambda ctx, inner=node: present(ctx) & ~inner(ctx)
        return node

    def lookup(self, ftok: _Tok) -> tuple[_Field, str | None]:
        name, pin = ftok.text, None
        for prefix in ("outer.", "inner."):
            if name.startswith(prefix):
                name, pin = name[len(prefix):], prefix[:-1]
        field = FIELDS.get(name)
        if field is None:
            base = name.split(".", 1)[0]
            if base in NOT_INDEXED:
                raise FilterError(f"{name}: {NOT_INDEXED[base]} is not recorded in the packet index, so it cannot be "
                                  f"filtered on (column {ftok.pos + 1})", ftok.pos)
            known = [*FIELDS, *self.extra]
            near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise FilterError(f"unknown field '{ftok.text}' at column {ftok.pos + 1}{hint}", ftok.pos)
        if pin and not field.layered:
            raise FilterError(f"{name} has no outer/inner copy; drop '{pin}.' (column {ftok.pos + 1})", ftok.pos)
        return field, pin

    def operator(self) -> str | None:
        tok = self.tok
        if tok.kind in ("op", "word") and tok.low in _OPS:
            self.take()
            return _OPS[tok.low]
        if tok.kind == "word" and tok.low == "in":
            self.take()
            return "in"
        if tok.kind == "word" and tok.low == "not" and self.toks[self.i + 1].low == "in":
            self.i += 2
            return "not in"
        return None

    def value(self) -> _Tok:
        tok = self.tok
        if tok.kind == "str" or (tok.kind == "word" and tok.low not in ("and", "or", "xor", "not", "in")):
            return self.take()
        raise self.unexpected("a value")

    def set_(self) -> list[_Tok]:
        if self.tok.text != "{":
            raise self.unexpected("'{'")
        self.take()
        out: list[_Tok] = []
        while self.tok.text != "}":
            if out and self.tok.text == ",":
                self.take()
            out.append(self.value())
        self.take()
        if not out:
            raise FilterError(f"empty set at column {self.toks[self.i - 1].pos + 1}", self.toks[self.i - 1].pos)
        return out


class Filter:
    """A compiled display filter: ``mask(index)`` is a bool array, one entry per indexed row."""

    def __init__(self, expr: str, node: Node) -> None:
        self.expr = expr
        self._node = node

    def mask(self, index: Any, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Which rows ``start..stop`` (default: all ``len(index)``) of ``index`` the filter matches, in row order.

        Evaluating a range of the whole index (rather than a sliced copy) keeps ``frame.number`` and
        ``frame.time_relative`` right for a capture shown batch by batch as it is indexed.
        """
        ctx = _Ctx(index, start, stop)
        out = np.asarray(self._node(ctx), dtype=bool)
        return out if out.shape == (ctx.n,) else np.broadcast_to(out, (ctx.n,)).copy()

    def __repr__(self) -> str:
        return f"Filter({self.expr!r})"


def compile_filter(expr: str, fields: Mapping[str, FieldResolver] | None = None) -> Filter:
    """Parse ``expr`` into a ``Filter``; an empty expression matches every packet.

    Raises ``FilterError(message, position)`` for bad syntax, an unknown field (with a "did you mean"), or a
    value the field cannot hold; ``position`` is the 0-based character offset of the offending token.
    """
    if not isinstance(expr, str):
        raise FilterError("a display filter is text", 0)
    return Filter(expr, _Parser(expr, dict(fields or {})).parse())


def field_names() -> list[str]:
    """Every built-in field name (for help text and completion)."""
    return sorted(FIELDS)
