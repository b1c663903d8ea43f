"""Vectorised header decode for the packet index: link layer → IP → TCP/UDP/ICMP, through overlay tunnels.

``decode_frames`` turns a batch of frames (offsets into one byte buffer) into the index columns from ``encap`` to
``flags`` (docs/CONTRACTS.md). It never loops over packets in Python: each frame's first ``HEAD`` bytes are copied
with one gather, then every header is read for the whole batch at once with one numpy gather of a fixed-size
big-endian record (a strided "record at every byte" view of the buffer, indexed by the header positions), and
each layout is a boolean mask over the batch. Rare layouts (IPv6 extension headers, VLAN stacks, truncated headers)
are the same gathers over smaller subsets; frames whose headers run past ``HEAD`` are decoded again from the file.

Rules (issue 2, "Overlay decode"):
- link types: Ethernet (1) with up to ``MAX_VLAN_TAGS`` 802.1Q/802.1ad/QinQ (or VN-Tag/E-Tag) tags, Linux SLL
  (113) and SLL2 (276), raw IP (101, 228 IPv4, 229 IPv6, and the BSD raw values 12 and 14), BSD loopback/NULL (0,
  host byte order) and OpenBSD LOOP (108, network order); any other link type decodes nothing (``o_ver`` 0).
- IPv4: IHL (< 5 → addresses kept, no layer 4), non-first fragment → no layer 4 and ``FRAG``; total length 0
  (Linux BIG TCP / GSO super-frames) → the packet runs to the end of the capture (``i_len`` is then the captured
  length, at most 65535).
- IPv6: hop-by-hop, routing, fragment, destination options and AH extension headers are skipped (at most
  ``MAX_EXT_HEADERS``); ``*_proto`` is the upper-layer protocol after them; payload length 0 (BIG TCP, jumbo) →
  to the end of the capture.
- tunnels: VXLAN on the given UDP destination ports (I flag set and a plausible inner Ethernet frame; reserved
  bits ignored), Geneve (UDP 6081; Ethernet or bare IPv4/IPv6 payload), IP-in-IP (4in4, 6in4, 4in6, 6in6), GRE
  version 0 with optional checksum/key/sequence (IPv4, IPv6, transparent Ethernet, ERSPAN II/III), also in UDP
  (4754, RFC 8086). At most ``MAX_DEPTH`` nested levels; ``encap``/``vni`` describe the outermost tunnel,
  ``depth`` counts the levels, ``i_*`` the innermost IP packet (0 when the innermost tunnel carries no IP, e.g.
  ARP between VTEPs).
- checksums are never validated (veth captures carry partial, offloaded checksums).
- a header cut short by caplen sets ``TRUNC`` and keeps the fields decoded before it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tracer.decode.addr6 import Addr6Table

# ---------------------------------------------------------------- public constants
DEFAULT_VXLAN_PORTS = (4789, 8472)  # 4789: IANA / RFC 7348, Calico VXLAN; 8472: Linux vxlan default, flannel
GENEVE_PORT = 6081  # RFC 8926
GRE_UDP_PORT = 4754  # RFC 8086 GRE-in-UDP

ENCAP_NONE, ENCAP_VXLAN, ENCAP_GENEVE, ENCAP_IPIP, ENCAP_IP6IN4, ENCAP_IP4IN6, ENCAP_GRE, ENCAP_IP6IN6 = range(8)
#: ``encap`` column value → name used by ``tracer show`` (None for 0: not encapsulated).
ENCAP_NAMES: tuple[str | None, ...] = (None, "vxlan", "geneve", "ipip", "ip6in4", "ip4in6", "gre", "ip6in6")

TRUNC = 0x01  # a header was cut short by caplen
FRAG = 0x02  # the innermost IP packet is a non-first fragment: no layer 4 fields
OFRAG = 0x04  # the outermost IP packet is a fragment (first or not)

MAX_VLAN_TAGS = 4
MAX_EXT_HEADERS = 8
MAX_DEPTH = 3

#: Columns produced by ``decode_frames`` with their dtypes, in contract order.
COLUMNS: dict[str, np.dtype] = {
    name: np.dtype(dt)
    for name, dt in (
        ("encap", np.uint8), ("vni", np.int32), ("depth", np.uint8),
        ("o_ver", np.uint8), ("o_src", np.uint32), ("o_dst", np.uint32), ("o_proto", np.uint8),
        ("o_ttl", np.uint8), ("o_ipid", np.uint16), ("o_sport", np.uint16), ("o_dport", np.uint16),
        ("i_ver", np.uint8), ("i_src", np.uint32), ("i_dst", np.uint32), ("i_proto", np.uint8),
        ("i_ttl", np.uint8), ("i_ipid", np.uint16), ("i_sport", np.uint16), ("i_dport", np.uint16),
        ("i_len", np.uint16), ("tcp_flags", np.uint8), ("tcp_seq", np.uint32), ("tcp_ack", np.uint32),
        ("icmp_type", np.uint8), ("icmp_code", np.uint8), ("icmp_id", np.uint16), ("icmp_seq", np.uint16),
        ("flags", np.uint8),
    )
}

# ---------------------------------------------------------------- protocol numbers
ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_TEB = 0x0800, 0x86DD, 0x0806, 0x6558
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad, pre-standard QinQ
VNTAG, ETAG = 0x8926, 0x893F  # Cisco VN-Tag (FEX), IEEE 802.1BR E-Tag: also skipped before the EtherType
ERSPAN2, ERSPAN3 = 0x88BE, 0x22EB
#: EtherTypes accepted as "a plausible inner Ethernet frame" behind a VXLAN header.
VXLAN_INNER_ETHERTYPES = (ETH_IPV4, ETH_IPV6, ETH_ARP, *VLAN_TPIDS)
IPV6_EXT = (0, 43, 60, 44, 51)  # hop-by-hop, routing, destination options, fragment, AH
PORTED = (6, 17, 132, 136, 33)  # TCP, UDP, SCTP, UDP-Lite, DCCP: source and destination port first
ICMP_ECHO = {1: (0, 8), 58: (128, 129)}  # echo reply / request carry id and sequence
NULL_AF_INET6 = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS

# ---------------------------------------------------------------- header records (big-endian, packed)
_IP4 = np.dtype([("vihl", "u1"), ("tos", "u1"), ("tot", ">u2"), ("id", ">u2"), ("frag", ">u2"),
                 ("ttl", "u1"), ("proto", "u1"), ("csum", ">u2"), ("src", ">u4"), ("dst", ">u4")])
_IP6 = np.dtype([("vtc", ">u4"), ("plen", ">u2"), ("nh", "u1"), ("hlim", "u1"), ("src", "V16"), ("dst", "V16")])
_EXT = np.dtype([("nh", "u1"), ("len", "u1"), ("fo", ">u2")])
_TCP = np.dtype([("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"),
                 ("flags", "u1")])
_ICMP = np.dtype([("type", "u1"), ("code", "u1"), ("csum", ">u2"), ("id", ">u2"), ("seq", ">u2")])
_VXLAN_ETH = np.dtype([("flags", "u1"), ("r", "V3"), ("vni", ">u4"), ("macs", "V12"), ("type", ">u2")])
_GENEVE = np.dtype([("vo", "u1"), ("flags", "u1"), ("ptype", ">u2"), ("vni", ">u4")])
_GRE = np.dtype([("fv", ">u2"), ("ptype", ">u2")])
_U8, _BE16, _BE32, _LE32 = np.dtype("u1"), np.dtype(">u2"), np.dtype(">u4"), np.dtype("<u4")

# next-header kinds handed from a tunnel to the level inside it
_NEXT_ETHER = 1


def decode_frames(
    buf: np.ndarray,
    offsets: np.ndarray,
    caplens: np.ndarray,
    linktypes: np.ndarray,
    *,
    vxlan_ports: Iterable[int] = frozenset(DEFAULT_VXLAN_PORTS),
    addr6: Addr6Table,
) -> dict[str, np.ndarray]:
    """Decode the frames at ``buf[offsets[k] : offsets[k] + caplens[k]]`` into the index columns (``COLUMNS``).

    ``linktypes[k]`` is the frame's LINKTYPE_ value; IPv6 addresses are interned into ``addr6``. Never raises
    on packet bytes: anything undecodable is left 0 (``vni`` -1) and cut headers set ``TRUNC``.
    """
    data = _Bytes(buf)
    ports = _port_set(vxlan_ports)
    offsets = np.asarray(offsets, np.int64)
    caplens = np.asarray(caplens, np.int64)
    linktypes = np.asarray(linktypes)
    n = len(offsets)
    if n <= CHUNK:
        return _decode_chunk(data, offsets, caplens, linktypes, ports, addr6)
    out = empty_columns(n)
    for at in range(0, n, CHUNK):
        part = _decode_chunk(data, offsets[at:at + CHUNK], caplens[at:at + CHUNK], linktypes[at:at + CHUNK],
                             ports, addr6)
        for name, col in out.items():
            col[at:at + CHUNK] = part[name]
    return out


#: Rows decoded at once. Every temporary array of a chunk stays below glibc's mmap threshold and in cache:
#: with 64k rows each int64 temporary is a fresh 512 KiB mmap whose pages fault in on every use (measured:
#: 80k page faults and 1.7x the CPU time per million packets).
CHUNK = 16384


def _decode_chunk(data: "_Bytes", offsets: np.ndarray, caplens: np.ndarray, linktypes: np.ndarray,
                  ports: tuple[int, ...], addr6: Addr6Table) -> dict[str, np.ndarray]:
    n = len(offsets)
    if n == 0:
        return empty_columns(0)
    # Pass 1 over a compact copy of every frame's first HEAD bytes: the batch's frames are scattered over a
    # large mmapped file, and each header gather straight from it costs a cache (and TLB) miss per packet;
    # one gather of the heads, then all header reads run over sequential memory.
    heads, head_len = _heads(data, offsets, caplens)
    first = _Decoder(_Bytes(heads.reshape(-1), zeros_at=n * HEAD), ports, addr6)
    out = first.run(np.arange(n, dtype=np.int64) * HEAD, head_len, linktypes)
    # Pass 2, from the file itself, for the few frames whose headers run past HEAD bytes or whose IP length
    # comes from the capture length (BIG TCP): their head copy is not the whole story.
    redo = np.flatnonzero(first.redo & (caplens > head_len))
    if redo.size:
        again = _Decoder(data, ports, addr6).run(offsets[redo], caplens[redo], linktypes[redo])
        for name, col in out.items():
            col[redo] = again[name]
    return out


#: Bytes of each frame copied for the vectorised pass: Ethernet + VLAN + IPv6 + UDP + VXLAN + Ethernet + IPv6 + TCP
#: is 148. Frames needing more (IP options, long Geneve options, deeper nesting) are decoded again from the file.
HEAD = 160


def _heads(data: "_Bytes", offsets: np.ndarray, caplens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An (n + 1, HEAD) uint8 copy of each frame's first HEAD bytes (zero padded; the extra last row is all
    zeros) and how many bytes of each are real."""
    n = len(offsets)
    start = np.minimum(np.maximum(offsets, 0), data.size)  # (np.clip costs more in Python than in the loop)
    head_len = np.maximum(np.minimum(np.minimum(caplens, data.size - start), HEAD), 0)
    whole = start + HEAD <= data.size
    view = data.view(np.dtype(f"V{HEAD}"))
    if view is None:
        heads = np.zeros((n + 1, HEAD), np.uint8)
    else:  # one gather of n + 1 rows (the last a dummy, zeroed): no second copy to append the zero row
        heads = view[np.append(np.where(whole, start, 0), 0)].view(np.uint8).reshape(n + 1, HEAD)
        heads[n] = 0
    tail = np.flatnonzero(~whole)  # frames within HEAD bytes of the buffer's end: copy byte by byte
    if tail.size:
        at = np.arange(HEAD)
        real = at < head_len[tail, None]
        if data.size:
            heads[tail] = np.where(real, data.buf[np.minimum(start[tail, None] + at, data.size - 1)], 0)
        else:
            heads[tail] = 0
    return heads, head_len


def _port_set(ports: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted({int(p) for p in ports if 0 <= int(p) <= 0xFFFF}))


def _isin(a: np.ndarray, values: Iterable[int]) -> np.ndarray:
    """``np.isin`` for a handful of constants (a chain of compares is several times faster)."""
    hit = np.zeros(a.shape, bool)
    for v in values:
        hit |= a == v
    return hit


def empty_columns(n: int) -> dict[str, np.ndarray]:
    """Columns for n packets with nothing decoded (``vni`` -1): what undecodable frames get."""
    out = {name: np.zeros(n, dt) for name, dt in COLUMNS.items()}
    out["vni"].fill(-1)
    return out


# ---------------------------------------------------------------- index helpers
# A row selection is either slice(None) (every row: views, no copies) or an int64 index array.
Sel = slice | np.ndarray


def _where(mask: np.ndarray) -> Sel | None:
    """The rows where ``mask`` holds: None when none, slice(None) when all, else their indices."""
    if mask.all():
        return slice(None)
    if not mask.any():
        return None
    return np.flatnonzero(mask)


def _compose(outer: Sel, inner: Sel) -> Sel:
    """Rows of the full batch for ``inner``, a selection within the rows ``outer`` selected."""
    if isinstance(inner, slice):
        return outer
    if isinstance(outer, slice):
        return inner
    return outer[inner]


class _Bytes:
    """Gathers fixed-size records starting at arbitrary byte positions of one uint8 buffer.

    For each record dtype it keeps a view with one (overlapping) record at every byte offset (stride 1), so
    reading a whole header for m packets is a single fancy-index gather of m records.
    """

    def __init__(self, buf: np.ndarray, zeros_at: int | None = None) -> None:
        if not isinstance(buf, np.ndarray):  # bytes, memoryview, mmap
            buf = np.frombuffer(buf, np.uint8)
        if buf.dtype != np.uint8 or buf.ndim != 1 or not buf.flags.c_contiguous:
            buf = np.ascontiguousarray(buf, dtype=np.uint8).reshape(-1)
        self.buf = buf
        self.size = int(buf.size)
        self.zeros_at = zeros_at  # where HEAD zero bytes lie: a gather aimed there reads an all-zero record
        self._views: dict[np.dtype, np.ndarray] = {}

    def take(self, dt: np.dtype, pos: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Records of ``dt`` at byte ``pos`` where ``ok``, zero where not.

        ``ok`` must imply ``0 <= pos`` and ``pos + dt.itemsize <= self.size`` (callers check against frame ends,
        which never pass the buffer end).
        """
        view = self.view(dt)
        if view is None:
            return np.zeros(len(pos), dt)
        if ok.all():
            rec = view[pos]
        elif self.zeros_at is not None:
            rec = view[np.where(ok, pos, self.zeros_at)]
        else:
            rec = view[np.where(ok, pos, 0)]
            rec.view(np.uint8).reshape(len(rec), dt.itemsize)[~ok] = 0
        return rec.view(dt) if dt.names else rec

    def view(self, dt: np.dtype) -> np.ndarray | None:
        """The buffer as one ``dt`` record starting at every byte (None when it is shorter than one record).

        Structured records are viewed as opaque bytes and reinterpreted after the gather: numpy's fancy indexing
        of a structured dtype copies field by field (about 10x slower than a plain void copy).
        """
        view = self._views.get(dt)
        if view is None and self.size >= dt.itemsize:
            raw = np.dtype(f"V{dt.itemsize}") if dt.names else dt
            view = self._views[dt] = np.ndarray((self.size - dt.itemsize + 1,), raw, buffer=self.buf,
                                                strides=(1,))
        return view


class _Level:
    """One IP header (and its layer 4) decoded for m rows of the batch; all fields 0 where ``ok`` is False.

    Field arrays are created on first use: a field set for every row at once (``put`` with slice(None)) is
    never zero-filled first, which matters because zero-filling two dozen arrays per level costs as much as
    decoding the common layout.
    """

    FIELDS: dict[str, np.dtype] = {
        name: np.dtype(dt)
        for name, dt in (
            ("ok", bool), ("ver", np.uint8), ("src", np.uint32), ("dst", np.uint32), ("proto", np.uint8),
            ("ttl", np.uint8), ("ipid", np.uint16), ("ilen", np.uint16), ("l4pos", np.int64), ("l4end", np.int64),
            # l4ok: a layer 4 header starts at l4pos (IP header complete, not a later fragment);
            # cut: the IP packet is longer than what was captured; by_end: its length came from the capture
            ("l4ok", bool), ("cut", bool), ("by_end", bool), ("nonfirst", bool), ("isfrag", bool),
            ("trunc", bool), ("sport", np.uint16), ("dport", np.uint16), ("tcp_flags", np.uint8),
            ("tcp_seq", np.uint32), ("tcp_ack", np.uint32), ("icmp_type", np.uint8), ("icmp_code", np.uint8),
            ("icmp_id", np.uint16), ("icmp_seq", np.uint16),
        )
    }

    def __init__(self, m: int) -> None:
        self.m = m

    def __getattr__(self, name: str) -> np.ndarray:  # only for fields not set yet
        dt = _Level.FIELDS.get(name)
        if dt is None:
            raise AttributeError(name)
        arr = np.zeros(self.m, dt)
        setattr(self, name, arr)
        return arr

    def put(self, name: str, ix: Sel, values) -> None:
        """Set field ``name`` at rows ``ix`` (slice(None): every row) to ``values``."""
        if isinstance(ix, slice) and name not in self.__dict__:
            dt = _Level.FIELDS[name]
            if np.ndim(values):
                self.__dict__[name] = np.array(values, dtype=dt)
            else:
                self.__dict__[name] = np.full(self.m, values, dt)
        else:
            getattr(self, name)[ix] = values


_IP_COLUMNS = ("ver", "src", "dst", "proto", "ttl", "ipid", "sport", "dport")
_INNER_ONLY = ("tcp_flags", "tcp_seq", "tcp_ack", "icmp_type", "icmp_code", "icmp_id", "icmp_seq")
_INNER_COLUMNS = tuple(f"i_{c}" for c in _IP_COLUMNS) + ("i_len",) + _INNER_ONLY


class _Tunnels:
    """What the tunnel check found for m rows: outer kind/VNI and where the next level starts."""

    def __init__(self, m: int, end: np.ndarray) -> None:
        self.kind = np.zeros(m, np.uint8)
        self.vni = np.full(m, -1, np.int32)
        self.next = np.zeros(m, np.uint8)  # _NEXT_ETHER, 4 or 6
        self.pos = np.zeros(m, np.int64)
        self.end = end.copy()
        self.trunc = np.zeros(m, bool)

    def found(self, ix: Sel, hit: np.ndarray, kind, nxt, pos, vni=None) -> None:
        """Record tunnels at rows ``ix`` where ``hit``."""
        every = hit.all()
        rows = ix if every else _compose(ix, np.flatnonzero(hit))
        for col, value in ((self.kind, kind), (self.next, nxt), (self.pos, pos), (self.vni, vni)):
            if value is not None:
                col[rows] = value if every or not np.ndim(value) else value[hit]


class _Decoder:
    """One decode pass over rows whose bytes live in ``data``; ``redo`` marks rows whose decode depended on
    where the bytes ended (truncated headers, lengths taken from the capture length)."""

    def __init__(self, data: _Bytes, vxlan_ports: tuple[int, ...], addr6: Addr6Table) -> None:
        self.b = data
        self.vxlan_ports = vxlan_ports
        self.addr6 = addr6

    # ------------------------------------------------------------ driver
    def run(self, offsets: np.ndarray, caplens: np.ndarray, linktypes: np.ndarray) -> dict[str, np.ndarray]:
        n = len(offsets)
        out = self.out = empty_columns(n)
        self.redo = np.zeros(n, bool)
        if n == 0:
            return out
        start = np.maximum(offsets, 0)
        end = np.maximum(np.minimum(start + np.maximum(caplens, 0), self.b.size), start)
        ver, pos, trunc = self._link(linktypes, start, end)
        self._flag(slice(None), trunc, TRUNC)

        sel = _where(ver != 0)
        if sel is None:
            return out
        cur_ver, cur_pos, cur_end = ver[sel], pos[sel], end[sel]
        for level in range(MAX_DEPTH + 1):
            lv = self._ip(cur_ver, cur_pos, cur_end)
            self._write(sel, lv, level)
            if level == MAX_DEPTH:
                break
            tun = self._tunnels(lv, cur_ver)
            self._flag(sel, tun.trunc, TRUNC)
            ex = _where(tun.kind != 0)
            if ex is None:
                break
            rows = _compose(sel, ex)
            if level == 0:
                out["encap"][rows] = tun.kind[ex]
                out["vni"][rows] = tun.vni[ex]
            out["depth"][rows] = level + 1
            nxt, npos, nend = tun.next[ex], tun.pos[ex], tun.end[ex]
            eth = _where(nxt == _NEXT_ETHER)
            if eth is not None:
                v, p, t = self._ether(npos[eth], nend[eth])
                nxt[eth] = v
                npos[eth] = p
                self._flag(_compose(rows, eth), t, TRUNC)
            gone = _where(nxt == 0)
            if gone is not None:  # a tunnel without an inner IP packet (ARP, …): no innermost fields
                for name in _INNER_COLUMNS:
                    out[name][_compose(rows, gone)] = 0
            keep = _where(nxt != 0)
            if keep is None:
                break
            sel = _compose(rows, keep)
            cur_ver, cur_pos, cur_end = nxt[keep], npos[keep], nend[keep]
        return out

    def _flag(self, sel: Sel, mask: np.ndarray, bit: int) -> None:
        hit = _where(mask)
        if hit is not None:
            rows = _compose(sel, hit)
            self.out["flags"][rows] |= bit
            if bit == TRUNC:
                self.redo[rows] = True

    def _write(self, sel: Sel, lv: _Level, level: int) -> None:
        out = self.out
        for name in _IP_COLUMNS:
            if level == 0:
                out[f"o_{name}"][sel] = getattr(lv, name)
                out[f"i_{name}"][:] = out[f"o_{name}"]
            else:
                out[f"i_{name}"][sel] = getattr(lv, name)
        out["i_len"][sel] = lv.ilen
        hit = _where(lv.by_end)
        if hit is not None:
            self.redo[_compose(sel, hit)] = True
        for name in _INNER_ONLY:
            out[name][sel] = getattr(lv, name)
        self._flag(sel, lv.trunc, TRUNC)
        self._flag(sel, lv.nonfirst, FRAG)
        if level == 0:
            self._flag(sel, lv.isfrag, OFRAG)

    # ------------------------------------------------------------ link layer
    def _link(self, lt: np.ndarray, start: np.ndarray, end: np.ndarray):
        """(IP version 0/4/6, position of the IP header, truncated) per frame, from its link type."""
        n = len(lt)
        ver = np.zeros(n, np.uint8)
        pos = start.copy()
        trunc = np.zeros(n, bool)
        take = self.b.take

        def put(ix, v, p, t):
            ver[ix], pos[ix], trunc[ix] = v, p, t

        ix = _where(lt == 1)
        if ix is not None:
            put(ix, *self._ether(start[ix], end[ix]))
        for code, hlen, type_at in ((113, 16, 14), (276, 20, 0)):  # Linux cooked v1 / v2: protocol field
            ix = _where(lt == code)
            if ix is not None:
                s, e = start[ix], end[ix]
                ok = s + hlen <= e
                put(ix, *self._ethertype(take(_BE16, s + type_at, ok), s + hlen, e, ok))
        ix = _where(_isin(lt, (101, 12, 14, 228, 229)))
        if ix is not None:
            s, e, t = start[ix], end[ix], lt[ix]
            ok = s + 1 <= e
            nib = take(_U8, s, ok) >> 4
            v = np.where(((nib == 4) & (t != 229)) | ((nib == 6) & (t != 228)), nib, 0)
            put(ix, v, s, ~ok)
        ix = _where((lt == 0) | (lt == 108))
        if ix is not None:
            s, e = start[ix], end[ix]
            ok = s + 4 <= e
            be = take(_BE32, s, ok)
            le = take(_LE32, s, ok)
            # NULL (0) is in the capturing host's byte order: the small value is the right one.
            fam = np.where((lt[ix] == 108) | (be < 256), be, le)
            v = np.where(fam == 2, 4, np.where(_isin(fam, NULL_AF_INET6), 6, 0))
            put(ix, v, s + 4, ~ok)
        return ver, pos, trunc

    def _ether(self, s: np.ndarray, e: np.ndarray):
        """Ethernet II at ``s``: (IP version, IP header position, truncated)."""
        ok = s + 14 <= e
        return self._ethertype(self.b.take(_BE16, s + 12, ok), s + 14, e, ok)

    def _ethertype(self, et: np.ndarray, p: np.ndarray, e: np.ndarray, ok: np.ndarray):
        """Skip VLAN and other tags (bounded) after an EtherType; map the final one to an IP version."""
        trunc = ~ok
        et = et.astype(np.uint16)
        p = p.copy()
        for _ in range(MAX_VLAN_TAGS):
            vlan = (et == 0x8100) | (et == 0x88A8) | (et == 0x9100)
            tag = vlan | (et == VNTAG) | (et == ETAG)
            if not tag.any():
                break
            # the tag's own bytes, then the next EtherType: 802.1Q/ad TCI 2, Cisco VN-Tag 4, 802.1BR E-Tag 6
            size = np.where(vlan, 4, np.where(et == VNTAG, 6, 8))
            have = tag & (p + size <= e)
            trunc |= tag & ~have
            inner = self.b.take(_BE16, p + size - 2, have)
            et = np.where(tag, inner, et)  # a cut tag leaves EtherType 0: nothing more decodes
            p = np.where(have, p + size, p)
        ver = np.where(et == ETH_IPV4, 4, np.where(et == ETH_IPV6, 6, 0)).astype(np.uint8)
        return ver, p, trunc

    # ------------------------------------------------------------ IP
    def _ip(self, ver: np.ndarray, pos: np.ndarray, end: np.ndarray) -> _Level:
        lv = _Level(len(pos))
        ix = _where(ver == 4)
        if ix is not None:
            self._ip4(lv, ix, pos[ix], end[ix])
        ix = _where(ver == 6)
        if ix is not None:
            self._ip6(lv, ix, pos[ix], end[ix])
        self._l4(lv)
        return lv

    def _ip4(self, lv: _Level, ix: Sel, p: np.ndarray, e: np.ndarray) -> None:
        have = p + 20 <= e
        h = self.b.take(_IP4, p, have)
        tot = h["tot"].astype(np.int64)
        ip_end = p + tot
        # The common case in bulk: a 20-byte header, a plausible length, not a fragment.
        clean = have & (h["vihl"] == 0x45) & ((h["frag"] & 0x3FFF) == 0) & (tot >= 20)
        every = clean.all()
        fast = ix if every else _compose(ix, np.flatnonzero(clean))
        c = slice(None) if every else clean
        lv.put("ok", fast, True)
        lv.put("ver", fast, 4)
        lv.put("src", fast, h["src"][c])
        lv.put("dst", fast, h["dst"][c])
        lv.put("proto", fast, h["proto"][c])
        lv.put("ttl", fast, h["ttl"][c])
        lv.put("ipid", fast, h["id"][c])
        lv.put("ilen", fast, tot[c])
        lv.put("l4pos", fast, p[c] + 20)
        lv.put("l4end", fast, np.minimum(ip_end[c], e[c]))
        lv.put("cut", fast, ip_end[c] > e[c])
        lv.put("l4ok", fast, True)
        if not every:
            rest = np.flatnonzero(~clean)
            raw = h.view(f"V{_IP4.itemsize}")[rest].view(_IP4)
            self._ip4_rare(lv, _compose(ix, rest), p[rest], e[rest], raw, have[rest])

    def _ip4_rare(self, lv: _Level, ix: Sel, p: np.ndarray, e: np.ndarray, h: np.ndarray,
                  have: np.ndarray) -> None:
        """IPv4 headers with options, fragments, bogus lengths or cut short."""
        vihl = h["vihl"]
        ok = have & ((vihl >> 4) == 4)
        if not ok.all():
            h[~ok] = np.zeros((), _IP4)
        hl = (vihl & 15).astype(np.int64) * 4
        tot = h["tot"].astype(np.int64)
        # Total length 0: Linux BIG TCP / GSO super-frame; the packet is what was captured.
        sized = (tot >= hl) & (tot > 0)
        ip_end = np.where(sized, p + tot, e)
        l4end = np.minimum(ip_end, e)
        off = h["frag"] & 0x1FFF
        header_in = p + hl <= e
        lv.put("ok", ix, ok)
        lv.put("ver", ix, np.where(ok, 4, 0))
        lv.put("src", ix, h["src"])
        lv.put("dst", ix, h["dst"])
        lv.put("proto", ix, h["proto"])
        lv.put("ttl", ix, h["ttl"])
        lv.put("ipid", ix, h["id"])
        lv.put("ilen", ix, np.where(tot > 0, tot, np.minimum(l4end - p, 0xFFFF)))
        lv.put("l4pos", ix, p + hl)
        lv.put("l4end", ix, l4end)
        lv.put("cut", ix, ok & (ip_end > e))
        lv.put("by_end", ix, ok & ~sized)
        lv.put("nonfirst", ix, ok & (off != 0))
        lv.put("isfrag", ix, ok & ((off != 0) | ((h["frag"] & 0x2000) != 0)))
        lv.put("l4ok", ix, ok & (hl >= 20) & header_in & (off == 0))
        lv.put("trunc", ix, ~have | (ok & (hl >= 20) & ~header_in))

    def _ip6(self, lv: _Level, ix: Sel, p: np.ndarray, e: np.ndarray) -> None:
        have = p + 40 <= e
        h = self.b.take(_IP6, p, have)
        ok = have & ((h["vtc"] >> 28) == 6)
        m = len(p)
        src = np.zeros(m, np.uint32)
        dst = np.zeros(m, np.uint32)
        if ok.any():
            ids = self.addr6.intern(np.concatenate([h["src"][ok], h["dst"][ok]]))
            src[ok], dst[ok] = np.split(ids, 2)
        plen = h["plen"].astype(np.int64)
        # Payload length 0: BIG TCP or a jumbogram; the packet is what was captured.
        ip_end = np.where(plen > 0, p + 40 + plen, e)
        l4end = np.minimum(ip_end, e)
        cut = ok & (ip_end > e)
        nh = np.where(ok, h["nh"], 0).astype(np.uint8)
        q = p + 40
        alive = ok.copy()
        nonfirst = np.zeros(m, bool)
        isfrag = np.zeros(m, bool)
        trunc = ~have
        for _ in range(MAX_EXT_HEADERS):
            x = np.flatnonzero(alive & _isin(nh, IPV6_EXT))
            if not x.size:
                break
            qx, t = q[x], nh[x]
            fits = qx + 8 <= l4end[x]
            trunc[x] |= ~fits & cut[x]
            r = self.b.take(_EXT, qx, fits)
            frag = fits & (t == 44)
            isfrag[x] |= frag
            nonfirst[x] |= frag & ((r["fo"] >> 3) != 0)
            size = np.where(t == 44, 8, np.where(t == 51, (r["len"].astype(np.int64) + 2) * 4,
                                                 (r["len"].astype(np.int64) + 1) * 8))
            nh[x] = np.where(fits, r["nh"], t)
            q[x] = qx + np.where(fits, size, 0)
            alive[x] = fits
        still_ext = _isin(nh, IPV6_EXT)
        lv.put("ok", ix, ok)
        lv.put("ver", ix, np.where(ok, 6, 0))
        lv.put("src", ix, src)
        lv.put("dst", ix, dst)
        lv.put("proto", ix, nh)
        lv.put("ttl", ix, h["hlim"])
        lv.put("ilen", ix, np.minimum(np.where(plen > 0, plen + 40, l4end - p), 0xFFFF))
        lv.put("l4pos", ix, q)
        lv.put("l4end", ix, l4end)
        lv.put("cut", ix, cut)
        lv.put("by_end", ix, ok & (plen == 0))
        lv.put("nonfirst", ix, nonfirst)
        lv.put("isfrag", ix, isfrag)
        lv.put("l4ok", ix, alive & ~still_ext & ~nonfirst & (q <= l4end))
        lv.put("trunc", ix, trunc)

    # ------------------------------------------------------------ layer 4
    def _l4(self, lv: _Level) -> None:
        take = self.b.take
        proto, p, e = lv.proto, lv.l4pos, lv.l4end
        # TCP, UDP, SCTP, UDP-Lite and DCCP all start with the two ports: one gather of a TCP-sized prefix
        # for every row (most rows are one of them), masked, instead of a gather and scatter per protocol.
        ported = lv.l4ok & _isin(proto, PORTED)
        fits = ported & (p + _TCP.itemsize <= e)
        r = take(_TCP, p, fits)
        lv.sport, lv.dport = r["sport"].astype(np.uint16), r["dport"].astype(np.uint16)
        tcp = fits & (proto == 6)
        if tcp.any():
            lv.tcp_seq = np.where(tcp, r["seq"], 0).astype(np.uint32)
            lv.tcp_ack = np.where(tcp, r["ack"], 0).astype(np.uint32)
            lv.tcp_flags = np.where(tcp, r["flags"], 0).astype(np.uint8)
        # TCP needs 20 bytes, the others 8 (SCTP's and DCCP's longer headers hold nothing indexed).
        lv.trunc |= lv.cut & ported & (p + np.where(proto == 6, 20, 8) > e)
        part = np.flatnonzero(ported & ~fits)  # fewer than 14 bytes: keep what a short capture still holds
        if part.size:
            pp, ee, t = p[part], e[part], proto[part] == 6
            for arr, dt, at, only_tcp in (("sport", _BE16, 0, False), ("dport", _BE16, 2, False),
                                          ("tcp_seq", _BE32, 4, True), ("tcp_ack", _BE32, 8, True),
                                          ("tcp_flags", _U8, 13, True)):
                have = pp + at + dt.itemsize <= ee
                if only_tcp:
                    have &= t
                getattr(lv, arr)[part] = take(dt, pp + at, have)
        icmp = _where(lv.l4ok & (((lv.proto == 1) & (lv.ver == 4)) | ((lv.proto == 58) & (lv.ver == 6))))
        if icmp is not None:
            p, e = lv.l4pos[icmp], lv.l4end[icmp]
            r = take(_ICMP, p, p + 8 <= e)
            typ, code = r["type"], r["code"]
            short = p + 8 > e
            if short.any():
                typ, code = typ.copy(), code.copy()
                tc = take(_BE16, p[short], p[short] + 2 <= e[short])
                typ[short], code[short] = tc >> 8, tc & 0xFF
                lv.trunc[icmp] |= short & lv.cut[icmp]
            echo = np.where(lv.ver[icmp] == 4, _isin(typ, ICMP_ECHO[1]), _isin(typ, ICMP_ECHO[58]))
            lv.icmp_type[icmp], lv.icmp_code[icmp] = typ, code
            lv.icmp_id[icmp] = np.where(echo, r["id"], 0)
            lv.icmp_seq[icmp] = np.where(echo, r["seq"], 0)

    # ------------------------------------------------------------ tunnels
    def _tunnels(self, lv: _Level, ver: np.ndarray) -> _Tunnels:
        tun = _Tunnels(len(lv.ok), lv.l4end)
        take = self.b.take
        udp = lv.l4ok & (lv.proto == 17)
        ix = _where(udp & _isin(lv.dport, self.vxlan_ports))
        if ix is not None:
            p, e = lv.l4pos[ix], lv.l4end[ix]
            fits = p + 8 + 22 <= e  # UDP, VXLAN, inner Ethernet up to its EtherType
            tun.trunc[ix] |= ~fits & lv.cut[ix]
            r = take(_VXLAN_ETH, p + 8, fits)
            # The I flag says the VNI is valid; reserved bits are ignored (VXLAN-GBP and OpenStack set them).
            hit = fits & ((r["flags"] & 0x08) != 0) & _isin(r["type"], VXLAN_INNER_ETHERTYPES)
            tun.found(ix, hit, ENCAP_VXLAN, _NEXT_ETHER, p + 16, (r["vni"] >> 8).astype(np.int32))
        ix = _where(udp & (lv.dport == GENEVE_PORT) & (tun.kind == 0))
        if ix is not None:
            p, e = lv.l4pos[ix], lv.l4end[ix]
            fits = p + 16 <= e
            tun.trunc[ix] |= ~fits & lv.cut[ix]
            r = take(_GENEVE, p + 8, fits)
            pt = r["ptype"]
            nxt = np.where(pt == ETH_TEB, _NEXT_ETHER, np.where(pt == ETH_IPV4, 4, np.where(pt == ETH_IPV6, 6, 0)))
            hit = fits & ((r["vo"] >> 6) == 0) & (nxt != 0)
            at = p + 16 + (r["vo"] & 0x3F).astype(np.int64) * 4
            tun.found(ix, hit, ENCAP_GENEVE, nxt, at, (r["vni"] >> 8).astype(np.int32))
        ix = _where(lv.l4ok & ((lv.proto == 4) | (lv.proto == 41)))
        if ix is not None:
            inner = np.where(lv.proto[ix] == 4, 4, 6)
            kind = np.where(ver[ix] == 4, np.where(inner == 4, ENCAP_IPIP, ENCAP_IP6IN4),
                            np.where(inner == 4, ENCAP_IP4IN6, ENCAP_IP6IN6))
            tun.found(ix, np.ones(len(inner), bool), kind, inner, lv.l4pos[ix])
        ix = _where(lv.l4ok & (lv.proto == 47))
        if ix is not None:
            self._gre(tun, ix, lv.l4pos[ix], lv.l4end[ix], lv.cut[ix])
        ix = _where(udp & (lv.dport == GRE_UDP_PORT) & (tun.kind == 0))
        if ix is not None:  # GRE-in-UDP: the GRE header right after the UDP header
            self._gre(tun, ix, lv.l4pos[ix] + 8, lv.l4end[ix], lv.cut[ix])
        return tun

    def _gre(self, tun: _Tunnels, ix: Sel, p: np.ndarray, e: np.ndarray, cut: np.ndarray) -> None:
        """GRE version 0 (RFC 2784/2890): optional checksum, key and sequence words, then the payload."""
        fits = p + 4 <= e
        tun.trunc[ix] |= ~fits & cut
        r = self.b.take(_GRE, p, fits)
        fv, pt = r["fv"].astype(np.int64), r["ptype"]
        # version 1 is PPTP's enhanced GRE (PPP inside); the routing bit (RFC 1701) is obsolete: not decoded.
        plain = fits & ((fv & 7) == 0) & ((fv & 0x4000) == 0)
        hl = 4 + 4 * (((fv >> 15) & 1) + ((fv >> 13) & 1) + ((fv >> 12) & 1))
        at = p + hl
        nxt = np.where(pt == ETH_IPV4, 4, np.where(pt == ETH_IPV6, 6, 0))
        nxt = np.where(pt == ETH_TEB, _NEXT_ETHER, nxt)
        # ERSPAN type II has an 8-byte header only when the sequence bit is set (type I has none);
        # type III has 12 bytes plus an 8-byte platform subheader when its O flag (last bit) is set.
        span2 = pt == ERSPAN2
        at = np.where(span2 & ((fv & 0x1000) != 0), at + 8, at)
        span3 = plain & (pt == ERSPAN3) & (at + 12 <= e)
        o_flag = self.b.take(_U8, at + 11, span3) & 1
        at = np.where(span3, at + 12 + 8 * o_flag.astype(np.int64), at)
        nxt = np.where(span2 | span3, _NEXT_ETHER, nxt)
        tun.found(ix, plain & (nxt != 0), ENCAP_GRE, nxt, at)
