"""Byte-level builders for hostile captures: frames and pcap/pcapng files whose every length can lie.

Each builder computes the honest value of a length/count field when given ``None`` and writes whatever it is
given otherwise, so a fuzzer can draw "consistent" and "lying" headers from one code path. Written with
``struct`` only (no scapy, no tracer readers), so the fuzz inputs do not share a parser's assumptions.

Layouts: IEEE 802.3/802.1Q; RFC 791 IPv4 (IHL, options), RFC 8200 IPv6 (+ extension headers), RFC 768 UDP,
RFC 9293 TCP (data offset, options), RFC 792 ICMP, RFC 7348 VXLAN, RFC 8926 Geneve (option length in 4-byte
words), RFC 2784/2890 GRE (C/K/S flags); pcap savefile; pcapng (draft-ietf-opsawg-pcapng) SHB/IDB/EPB/SPB.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

# EtherTypes and IP protocol numbers the decoders branch on.
ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_VLAN, ETH_QINQ, ETH_TEB = 0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x6558
IP_ICMP, IP_IPIP, IP_TCP, IP_UDP, IP_IPV6, IP_GRE, IP_FRAG6, IP_HOPOPT, IP_ICMP6 = 1, 4, 6, 17, 41, 47, 44, 0, 58
PORT_VXLAN, PORT_FLANNEL, PORT_GENEVE = 4789, 8472, 6081


def _n(value: int | None, honest: int, bits: int) -> int:
    """The honest value unless told otherwise, wrapped to the field width (a fuzzer may pass anything)."""
    return (honest if value is None else value) & ((1 << bits) - 1)


def ethernet(payload: bytes, ethertype: int, *, vlans: Sequence[int] = (), dst: bytes = b"\x02" * 6,
             src: bytes = b"\x04" * 6) -> bytes:
    """An Ethernet II frame, optionally with 802.1Q tags (outermost first)."""
    tags = b"".join(struct.pack("!HH", ETH_VLAN, vid & 0xFFFF) for vid in vlans)
    # Each tag's TPID is written before its TCI; the last tag is followed by the real EtherType.
    return dst + src + tags + struct.pack("!H", ethertype & 0xFFFF) + payload


def ipv4(payload: bytes, proto: int, *, src: int = 0x0AF40103, dst: int = 0x0AF40205, ihl: int | None = None,
         total_length: int | None = None, options: bytes = b"", ttl: int = 64, ident: int = 1,
         frag: int = 0, version: int = 4) -> bytes:
    """An IPv4 header (+ payload); ``ihl`` in 4-byte words and ``total_length`` may lie."""
    options = options + b"\x00" * (-len(options) % 4)
    honest_ihl = 5 + len(options) // 4
    vihl = ((version & 0xF) << 4) | _n(ihl, honest_ihl, 4)
    tl = _n(total_length, 20 + len(options) + len(payload), 16)
    head = struct.pack("!BBHHHBBHII", vihl, 0, tl, ident & 0xFFFF, frag & 0xFFFF, ttl & 0xFF, proto & 0xFF, 0,
                       src & 0xFFFFFFFF, dst & 0xFFFFFFFF)
    return head + options + payload


def ipv6(payload: bytes, nh: int, *, src: bytes = b"\xfd" + b"\x00" * 14 + b"\x01",
         dst: bytes = b"\xfd" + b"\x00" * 14 + b"\x02", payload_length: int | None = None, hlim: int = 64) -> bytes:
    """An IPv6 header (+ payload); ``payload_length`` may lie."""
    plen = _n(payload_length, len(payload), 16)
    return struct.pack("!IHBB", 6 << 28, plen, nh & 0xFF, hlim & 0xFF) + src[:16].ljust(16, b"\0") + \
        dst[:16].ljust(16, b"\0") + payload


def ipv6_ext(payload: bytes, nh: int, *, hdr_ext_len: int | None = None, body: bytes = b"") -> bytes:
    """A generic IPv6 extension header (hop-by-hop/routing/destination): length in 8-byte units beyond the first."""
    body = body + b"\x00" * (-(len(body) + 2) % 8)
    honest = (len(body) + 2) // 8 - 1
    return struct.pack("!BB", nh & 0xFF, _n(hdr_ext_len, honest, 8)) + body + payload


def ipv6_frag(payload: bytes, nh: int, *, offset: int = 0, more: bool = False, ident: int = 7) -> bytes:
    """An IPv6 Fragment header (RFC 8200 4.5): 13-bit offset in 8-byte units, M flag."""
    return struct.pack("!BBHI", nh & 0xFF, 0, ((offset & 0x1FFF) << 3) | int(more), ident & 0xFFFFFFFF) + payload


def udp(payload: bytes, sport: int, dport: int, *, length: int | None = None) -> bytes:
    return struct.pack("!HHHH", sport & 0xFFFF, dport & 0xFFFF, _n(length, 8 + len(payload), 16), 0) + payload


def tcp(payload: bytes = b"", sport: int = 40000, dport: int = 80, *, flags: int = 0x02, seq: int = 1,
        ack: int = 0, data_offset: int | None = None, options: bytes = b"") -> bytes:
    """A TCP header; ``data_offset`` (4-byte words) may lie."""
    options = options + b"\x01" * (-len(options) % 4)
    doff = _n(data_offset, 5 + len(options) // 4, 4)
    return struct.pack("!HHIIBBHHH", sport & 0xFFFF, dport & 0xFFFF, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       doff << 4, flags & 0xFF, 65535, 0, 0) + options + payload


def icmp(payload: bytes = b"", *, type_: int = 8, code: int = 0, ident: int = 1, seq: int = 1) -> bytes:
    return struct.pack("!BBHHH", type_ & 0xFF, code & 0xFF, 0, ident & 0xFFFF, seq & 0xFFFF) + payload


def vxlan(inner: bytes, vni: int, *, flags: int = 0x08, reserved: int = 0) -> bytes:
    """A VXLAN header (I flag 0x08 set by default) before an inner Ethernet frame."""
    return struct.pack("!B3sI", flags & 0xFF, (reserved & 0xFFFFFF).to_bytes(3, "big"),
                       ((vni & 0xFFFFFF) << 8)) + inner


def geneve(inner: bytes, vni: int, *, protocol: int = ETH_TEB, options: bytes = b"",
           opt_len: int | None = None, version: int = 0) -> bytes:
    """A Geneve header; ``opt_len`` counts 4-byte words of options (6 bits) and may lie."""
    options = options + b"\x00" * (-len(options) % 4)
    first = ((version & 0x3) << 6) | _n(opt_len, len(options) // 4, 6)
    return struct.pack("!BBH", first, 0, protocol & 0xFFFF) + ((vni & 0xFFFFFF) << 8).to_bytes(4, "big") + \
        options + inner


def geneve_option(data: bytes, *, opt_class: int = 0x0101, opt_type: int = 1, length: int | None = None) -> bytes:
    """One Geneve TLV option: its 5-bit length counts 4-byte words of data and may lie."""
    data = data + b"\x00" * (-len(data) % 4)
    return struct.pack("!HBB", opt_class & 0xFFFF, opt_type & 0xFF, _n(length, len(data) // 4, 5)) + data


def gre(inner: bytes, protocol: int, *, checksum: bool = False, key: int | None = None, seq: int | None = None,
        flags: int | None = None) -> bytes:
    """A GRE header (RFC 2784/2890); ``flags`` overrides the flag/version word so C/K/S can lie about fields."""
    word = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    if flags is not None:
        word = flags & 0xFFFF
    out = struct.pack("!HH", word, protocol & 0xFFFF)
    if checksum:
        out += b"\x00\x00\x00\x00"
    if key is not None:
        out += struct.pack("!I", key & 0xFFFFFFFF)
    if seq is not None:
        out += struct.pack("!I", seq & 0xFFFFFFFF)
    return out + inner


# --- capture files ---------------------------------------------------------------------------------------

PCAP_MAGIC_US, PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D


@dataclass
class Record:
    """One pcap record or pcapng packet; ``caplen``/``origlen`` default to the data's length and may lie."""

    data: bytes
    caplen: int | None = None
    origlen: int | None = None
    ts_sec: int = 1_700_000_000
    ts_frac: int = 0
    interface: int = 0


def pcap_file(records: Sequence[Record], *, linktype: int = 1, snaplen: int = 262144, magic: int = PCAP_MAGIC_US,
              big_endian: bool = False, version: tuple[int, int] = (2, 4)) -> bytes:
    """A classic pcap savefile; the link-type word is written whole (reserved bits included)."""
    bo = ">" if big_endian else "<"
    out = [struct.pack(bo + "IHHiIII", magic, version[0] & 0xFFFF, version[1] & 0xFFFF, 0, 0,
                       snaplen & 0xFFFFFFFF, linktype & 0xFFFFFFFF)]
    for r in records:
        out.append(struct.pack(bo + "IIII", r.ts_sec & 0xFFFFFFFF, r.ts_frac & 0xFFFFFFFF,
                               _n(r.caplen, len(r.data), 32), _n(r.origlen, len(r.data), 32)))
        out.append(r.data)
    return b"".join(out)


@dataclass
class Option:
    """A pcapng option; ``length`` may lie about the value's size."""

    code: int
    value: bytes
    length: int | None = None


def pcapng_options(options: Sequence[Option], bo: str = "<", *, end: bool = True) -> bytes:
    out = []
    for o in options:
        out.append(struct.pack(bo + "HH", o.code & 0xFFFF, _n(o.length, len(o.value), 16)))
        out.append(o.value + b"\x00" * (-len(o.value) % 4))
    if end and options:
        out.append(struct.pack(bo + "HH", 0, 0))
    return b"".join(out)


def pcapng_block(btype: int, body: bytes, bo: str = "<", *, total_length: int | None = None,
                 trailing_length: int | None = None) -> bytes:
    """``type, total_length, body, total_length``; either length may lie."""
    body = body + b"\x00" * (-len(body) % 4)
    honest = 12 + len(body)
    return struct.pack(bo + "II", btype & 0xFFFFFFFF, _n(total_length, honest, 32)) + body + \
        struct.pack(bo + "I", _n(trailing_length, honest, 32))


def shb(bo: str = "<", *, options: Sequence[Option] = (), version: tuple[int, int] = (1, 0),
        section_length: int = -1, **lengths: int | None) -> bytes:
    body = struct.pack(bo + "IHHq", 0x1A2B3C4D, version[0] & 0xFFFF, version[1] & 0xFFFF, section_length) + \
        pcapng_options(options, bo)
    return pcapng_block(0x0A0D0D0A, body, bo, **lengths)


def idb(linktype: int = 1, bo: str = "<", *, snaplen: int = 262144, name: str | bytes | None = None,
        tsresol: int | None = None, options: Sequence[Option] = (), **lengths: int | None) -> bytes:
    opts = list(options)
    if name is not None:
        opts.append(Option(2, name.encode() if isinstance(name, str) else name))
    if tsresol is not None:
        opts.append(Option(9, bytes([tsresol & 0xFF])))
    body = struct.pack(bo + "HHI", linktype & 0xFFFF, 0, snaplen & 0xFFFFFFFF) + pcapng_options(opts, bo)
    return pcapng_block(1, body, bo, **lengths)


def epb(r: Record, bo: str = "<", *, options: Sequence[Option] = (), **lengths: int | None) -> bytes:
    ts = (r.ts_sec * 1_000_000 + r.ts_frac) & 0xFFFFFFFFFFFFFFFF
    body = struct.pack(bo + "IIIII", r.interface & 0xFFFFFFFF, ts >> 32, ts & 0xFFFFFFFF,
                       _n(r.caplen, len(r.data), 32), _n(r.origlen, len(r.data), 32))
    body += r.data + b"\x00" * (-len(r.data) % 4) + pcapng_options(options, bo)
    return pcapng_block(6, body, bo, **lengths)


def spb(r: Record, bo: str = "<", **lengths: int | None) -> bytes:
    return pcapng_block(3, struct.pack(bo + "I", _n(r.origlen, len(r.data), 32)) + r.data, bo, **lengths)


@dataclass
class Section:
    """One pcapng section: its interfaces (link type, if_name) and packet records."""

    interfaces: list[tuple[int, str | bytes | None]] = field(default_factory=lambda: [(1, "eth0")])
    records: list[Record] = field(default_factory=list)
    big_endian: bool = False


def pcapng_file(sections: Sequence[Section]) -> bytes:
    """An honest pcapng file: per section an SHB, its IDBs, then its packets as EPBs."""
    out = []
    for s in sections:
        bo = ">" if s.big_endian else "<"
        out.append(shb(bo))
        out.extend(idb(lt, bo, name=name) for lt, name in s.interfaces)
        out.extend(epb(r, bo) for r in s.records)
    return b"".join(out)
