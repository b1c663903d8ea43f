"""Edge cases of the index decode (``tracer.decode.fields``) and the IPv6 address table, as tables.

Frames are built with scapy (or by hand where scapy would "fix" a malformed header) and decoded with
``decode_frames``; each row states the rule it checks.
"""

from __future__ import annotations

import ipaddress
import struct

import numpy as np
import pytest
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from tracer.decode.addr6 import Addr6Table
from tracer.decode.fields import (
    CHUNK, COLUMNS, DEFAULT_VXLAN_PORTS, ENCAP_NAMES, FRAG, HEAD, MAX_DEPTH, OFRAG, TRUNC, decode_frames,
    empty_columns,
)

MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
PORTS = frozenset(DEFAULT_VXLAN_PORTS)


def E():
    return Ether(**MACS)


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def decode(frames: list[bytes], linktype: int = 1, ports=PORTS, table: Addr6Table | None = None):
    buf = b"".join(frames)
    offsets = np.cumsum([0] + [len(f) for f in frames[:-1]], dtype=np.int64)
    return decode_frames(np.frombuffer(buf, np.uint8), offsets, np.array([len(f) for f in frames], np.uint32),
                         np.full(len(frames), linktype, np.uint16), vxlan_ports=ports,
                         addr6=table if table is not None else Addr6Table())


def one(frame: bytes, linktype: int = 1, ports=PORTS) -> dict[str, int]:
    cols = decode([frame], linktype, ports)
    return {name: int(col[0]) for name, col in cols.items()}


def encap(row: dict[str, int]) -> str | None:
    return ENCAP_NAMES[row["encap"]]


INNER = IP(src="10.244.1.3", dst="10.244.2.4", ttl=63, id=321) / TCP(sport=40000, dport=8080, flags="S", seq=7)
UNDERLAY = IP(src="172.31.7.111", dst="172.31.7.112", ttl=64, id=99)


def vxlan_frame(port: int = 8472, vxlan: bytes | None = None, inner=None) -> bytes:
    """flannel-style VXLAN; ``vxlan`` replaces the 8-byte VXLAN header when given."""
    body = bytes(E() / (inner if inner is not None else INNER))
    head = vxlan if vxlan is not None else bytes(VXLAN(vni=1))
    return bytes(E() / UNDERLAY / UDP(sport=5555, dport=port) / Raw(head + body))


# ------------------------------------------------------------------ VXLAN recognition
@pytest.mark.parametrize(
    "frame, ports, want_encap, want_vni",
    [
        pytest.param(vxlan_frame(), PORTS, "vxlan", 1, id="flannel 8472 VNI 1"),
        pytest.param(vxlan_frame(4789, bytes(VXLAN(vni=4096))), PORTS, "vxlan", 4096, id="calico 4789 VNI 4096"),
        pytest.param(bytes(E() / UNDERLAY / UDP(dport=8472) / Raw(b"hello, not vxlan")), PORTS, None, -1,
                     id="8472 short payload is plain UDP"),
        pytest.param(vxlan_frame(vxlan=b"\x00\x00\x00\x00\x00\x00\x01\x00"), PORTS, None, -1,
                     id="8472 without the I flag is plain UDP"),
        pytest.param(bytes(E() / UNDERLAY / UDP(dport=8472) / Raw(b"\x08" + b"\x00" * 7 + b"z" * 40)), PORTS, None,
                     -1, id="I flag but no plausible inner Ethernet"),
        pytest.param(vxlan_frame(vxlan=bytes.fromhex("ff01d1f200000b00")), PORTS, "vxlan", 11,
                     id="reserved bits set (OpenStack) still VXLAN"),
        pytest.param(vxlan_frame(vxlan=bytes.fromhex("8800abcd00002a00")), PORTS, "vxlan", 42,
                     id="VXLAN-GBP G bit and group policy id"),
        pytest.param(vxlan_frame(vxlan=bytes.fromhex("0800000000002aff")), PORTS, "vxlan", 42,
                     id="reserved low byte after the VNI ignored"),
        pytest.param(vxlan_frame(4789), frozenset({8472}), None, -1, id="port not configured: plain UDP"),
        pytest.param(vxlan_frame(9999), frozenset({8472, 9999}), "vxlan", 1, id="extra --vxlan-port"),
        pytest.param(vxlan_frame(inner=Dot1Q(vlan=7) / INNER), PORTS, "vxlan", 1, id="tagged inner frame"),
    ],
)
def test_vxlan_is_recognised_only_when_plausible(frame, ports, want_encap, want_vni) -> None:
    """VXLAN needs a configured UDP destination port, the I flag and a plausible inner Ethernet frame;
    reserved bits never matter."""
    row = one(frame, ports=ports)
    assert (encap(row), row["vni"]) == (want_encap, want_vni)
    assert row["o_dport"] == UDP(bytes(frame[34:42])).dport
    assert row["flags"] == 0
    if want_encap:
        assert (row["depth"], row["i_src"], row["i_dport"], row["tcp_flags"]) == (1, ip4("10.244.1.3"), 8080, 2)
    else:
        assert (row["depth"], row["i_src"], row["i_proto"]) == (0, row["o_src"], 17)


def test_vxlan_with_arp_inside_has_no_inner_ip() -> None:
    """A tunnel whose payload is not IP (ARP between VTEPs) is still the tunnel, with no innermost fields."""
    row = one(vxlan_frame(inner=ARP(psrc="10.244.1.1", pdst="10.244.1.2")))
    assert (encap(row), row["vni"], row["depth"], row["i_ver"], row["i_src"], row["i_sport"]) == \
        ("vxlan", 1, 1, 0, 0, 0)


# ------------------------------------------------------------------ truncation at every header boundary
FULL = bytes(E() / Dot1Q(vlan=5) / UNDERLAY / UDP(sport=5555, dport=8472) / VXLAN(vni=1) / E() / INNER)
# (first byte of each header, name); the frame ends at len(FULL)
BOUNDARIES = [(0, "ethernet"), (14, "vlan"), (18, "outer ip"), (38, "udp"), (46, "vxlan"), (54, "inner ethernet"),
              (68, "inner ip"), (88, "tcp")]


def _expect_at(cut: int) -> dict[str, int]:
    """What must survive a cut at ``cut`` bytes: every header wholly inside the cut, nothing after."""
    want: dict[str, int] = {}
    if cut >= 38:
        want.update(o_ver=4, o_src=ip4("172.31.7.111"), o_ttl=64, o_ipid=99, o_proto=17)
    else:
        want.update(o_ver=0)
    if cut >= 42:
        want.update(o_sport=5555, o_dport=8472)
    if cut >= 68:  # VXLAN needs its header and the inner EtherType to be recognised
        want.update(encap=1, vni=1, depth=1)
    else:
        want.update(encap=0, vni=-1, depth=0)
    if cut >= 88:
        want.update(i_ver=4, i_src=ip4("10.244.1.3"), i_ttl=63, i_ipid=321)
    elif cut >= 68:
        want.update(i_ver=0)
    if cut >= 92:
        want.update(i_sport=40000, i_dport=8080)
    if cut >= 96:
        want.update(tcp_seq=7)
    if cut >= 102:
        want.update(tcp_flags=2)
    return want


@pytest.mark.parametrize("cut", sorted({b + d for b, _ in BOUNDARIES for d in (-1, 0, 1, 4)} - {-1}))
def test_truncated_at_every_header_boundary(cut: int) -> None:
    """A frame cut short keeps every field of the headers before the cut and sets TRUNC."""
    row = one(FULL[:cut])
    want = _expect_at(cut)
    assert {k: row[k] for k in want} == want
    assert row["flags"] & TRUNC, "a cut header must set TRUNC"


def test_whole_frame_is_not_truncated() -> None:
    row = one(FULL)
    assert row["flags"] == 0 and row["depth"] == 1 and row["tcp_flags"] == 2


# ------------------------------------------------------------------ malformed IPv4 / fragments / loops
def raw_ip4(ihl: int, proto: int, payload: bytes, frag: int = 0, total: int | None = None) -> bytes:
    """An IPv4 header by hand (scapy would repair IHL and lengths)."""
    hdr = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, total if total is not None else 20 + len(payload), 7, frag,
                      9, proto, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return hdr + payload


UDP_8472_VXLAN = bytes(UDP(sport=1, dport=8472) / VXLAN(vni=1) / E() / INNER)


@pytest.mark.parametrize(
    "frame, want",
    [
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(4, 17, UDP_8472_VXLAN),
                     dict(o_ver=4, o_src=ip4("10.0.0.1"), o_proto=17, o_sport=0, encap=0, depth=0, flags=0),
                     id="IHL 4 (< 5): addresses kept, no layer 4"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(0, 6, b"x" * 40),
                     dict(o_ver=4, o_src=ip4("10.0.0.1"), o_sport=0, depth=0), id="IHL 0"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(15, 6, b"x" * 10),
                     dict(o_ver=4, o_sport=0, flags=TRUNC), id="IHL 15 past the captured bytes"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(5, 17, UDP_8472_VXLAN, frag=0x0010),
                     dict(o_ver=4, o_sport=0, o_dport=0, encap=0, depth=0, flags=FRAG | OFRAG),
                     id="non-first fragment: no ports, no tunnel"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(5, 17, UDP_8472_VXLAN, frag=0x2000),
                     dict(o_ver=4, o_dport=8472, encap=1, depth=1, i_dport=8080, flags=OFRAG),
                     id="first fragment (MF): ports and tunnel decoded"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(5, 6, bytes(TCP(sport=1, dport=2)), total=0),
                     dict(o_ver=4, o_dport=2, i_len=40, flags=0), id="total length 0 (BIG TCP) uses caplen"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + raw_ip4(5, 6, bytes(TCP(sport=1, dport=2)), total=3),
                     dict(o_ver=4, o_dport=2, flags=0), id="total length < header: caplen bounds it"),
        pytest.param(bytes(E())[:12] + b"\x08\x00" + bytes([0x65]) + raw_ip4(5, 6, b"")[1:],
                     dict(o_ver=0), id="EtherType IPv4 but version nibble 6"),
        pytest.param(bytes(E() / UNDERLAY / ICMP(type=3, code=1) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(dport=53)),
                     dict(icmp_type=3, icmp_code=1, icmp_id=0, depth=0, i_src=ip4("172.31.7.111")),
                     id="ICMP error quoting IP is no tunnel"),
        pytest.param(bytes(E() / UNDERLAY / ICMP(type=8, id=5, seq=9)),
                     dict(icmp_type=8, icmp_id=5, icmp_seq=9), id="ICMP echo id and sequence"),
        pytest.param(bytes(E() / UNDERLAY / GRE(version=1, proto=0x880B) / Raw(b"\x00" * 40)),
                     dict(o_proto=47, encap=0, depth=0), id="PPTP enhanced GRE (version 1) not a tunnel"),
        pytest.param(bytes(E() / UNDERLAY / GRE(routing_present=1, proto=0x0800) / Raw(b"\x00" * 4) / INNER),
                     dict(o_proto=47, encap=0), id="GRE with the obsolete routing bit not decoded"),
        pytest.param(bytes(E() / UNDERLAY / GRE(key_present=1, key=77, seqnum_present=1) / INNER),
                     dict(encap=6, vni=-1, depth=1, i_dport=8080), id="GRE key and sequence skipped"),
        pytest.param(bytes(E() / UNDERLAY / UDP(dport=4754) / GRE(proto=0x0800) / INNER),
                     dict(encap=6, o_dport=4754, depth=1, i_dport=8080), id="GRE-in-UDP (RFC 8086)"),
        pytest.param(bytes(E() / UNDERLAY / UDP(dport=6081) / GENEVE(version=1, proto=0x6558) / E() / INNER),
                     dict(encap=0, o_dport=6081), id="Geneve version 1 not decoded"),
        pytest.param(bytes(E() / UNDERLAY / UDP(dport=6081) / GENEVE(vni=9, proto=0x0800) / INNER),
                     dict(encap=2, vni=9, i_src=ip4("10.244.1.3")), id="Geneve carrying bare IPv4"),
        pytest.param(bytes(E() / Dot1Q() / Dot1Q() / Dot1Q() / Dot1Q() / Dot1Q() / UNDERLAY),
                     dict(o_ver=0, flags=0), id="more VLAN tags than decoded: no IP, no error"),
        pytest.param(bytes(E() / IPv6(src="fd00::1", dst="fd00::2") /
                           IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
                           IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
                           IPv6ExtHdrDestOpt() / UDP(dport=53)),
                     dict(o_ver=6, o_sport=0, o_dport=0), id="IPv6 extension chain longer than the bound"),
        pytest.param(bytes(E() / IPv6(src="fd00::1", dst="fd00::2", plen=65530) / TCP(sport=3, dport=4)),
                     dict(o_ver=6, o_dport=4, i_len=0xFFFF, flags=0), id="IPv6 length past 65535 saturates i_len"),
        pytest.param(bytes(E() / IPv6(src="fd00::1", dst="fd00::2", plen=0) / TCP(sport=3, dport=4)),
                     dict(o_ver=6, o_dport=4, i_len=60), id="IPv6 payload length 0 (BIG TCP) uses caplen"),
    ],
)
def test_malformed_and_unusual_headers(frame: bytes, want: dict[str, int]) -> None:
    """Malformed or unusual headers decode as far as they are sound, never raise, never invent fields."""
    row = one(frame)
    assert {k: row[k] for k in want} == want


def _ipip(levels: int) -> bytes:
    pkt = IP(src="10.9.9.9", dst="10.8.8.8") / UDP(sport=1, dport=2)
    for i in range(levels):
        pkt = IP(src=f"10.0.0.{i + 1}", dst="10.0.1.1") / pkt
    return bytes(E() / pkt)


def _vxlan_nest(levels: int) -> bytes:
    pkt = E() / IP(src="10.9.9.9", dst="10.8.8.8") / UDP(sport=1, dport=2)
    for i in range(levels):
        pkt = E() / IP(src=f"10.0.0.{i + 1}", dst="10.0.1.1") / UDP(dport=4789) / VXLAN(vni=i + 1) / pkt
    return bytes(pkt)


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 7, 12])
@pytest.mark.parametrize("build, kind", [(_ipip, "ipip"), (_vxlan_nest, "vxlan")])
def test_nested_tunnels_stop_at_max_depth(levels: int, build, kind: str) -> None:
    """Nesting decodes at most MAX_DEPTH levels; encap/vni are the outermost tunnel's; inner is the deepest
    IP header decoded (a loop of tunnels never runs away)."""
    row = one(build(levels))
    depth = min(levels, MAX_DEPTH)
    assert (encap(row), row["depth"]) == (kind, depth)
    assert row["o_src"] == ip4(f"10.0.0.{levels}")
    if kind == "vxlan":
        assert row["vni"] == levels
    if levels <= MAX_DEPTH:
        assert (row["i_src"], row["i_dport"]) == (ip4("10.9.9.9"), 2)
    else:
        assert row["i_src"] == ip4(f"10.0.0.{levels - MAX_DEPTH}")


def test_ipip_carrying_vxlan_reports_the_outermost_tunnel() -> None:
    """encap and vni describe the outermost encapsulation: IPIP outside VXLAN has no VNI."""
    row = one(bytes(E() / IP(src="1.1.1.1", dst="2.2.2.2") / UNDERLAY / UDP(dport=8472) / VXLAN(vni=5) / E() / INNER))
    assert (encap(row), row["vni"], row["depth"], row["i_dport"]) == ("ipip", -1, 2, 8080)


# ------------------------------------------------------------------ link types
V4 = bytes(IP(src="10.1.1.1", dst="10.2.2.2") / UDP(sport=7, dport=9))
V6 = bytes(IPv6(src="fd00::7", dst="fd00::9") / UDP(sport=7, dport=9))
ETH4, ETH6 = bytes(E())[:12] + b"\x08\x00", bytes(E())[:12] + b"\x86\xdd"


@pytest.mark.parametrize(
    "frame, linktype, ver",
    [
        (ETH4 + V4, 1, 4), (ETH6 + V6, 1, 6),
        (b"\x00\x00" + b"\x00" * 12 + b"\x08\x00" + V4, 113, 4),  # Linux SLL: protocol at 14
        (b"\x86\xdd" + b"\x00" * 18 + V6, 276, 6),  # SLL2: protocol first
        (V4, 101, 4), (V6, 101, 6), (V4, 228, 4), (V6, 229, 6), (V4, 12, 4), (V6, 14, 6),
        (V6, 228, 0), (V4, 229, 0),  # raw IPv4-only / IPv6-only link types refuse the other version
        (struct.pack("<I", 2) + V4, 0, 4), (struct.pack(">I", 2) + V4, 0, 4),  # NULL: either host order
        (struct.pack("<I", 30) + V6, 0, 6), (struct.pack("<I", 24) + V6, 0, 6), (struct.pack(">I", 28) + V6, 0, 6),
        (struct.pack(">I", 2) + V4, 108, 4), (struct.pack(">I", 10) + V6, 108, 6),  # OpenBSD LOOP
        (ETH4 + V4, 147, 0), (ETH4 + V4, 105, 0),  # not decoded: link type only
    ],
)
def test_link_types(frame: bytes, linktype: int, ver: int) -> None:
    """Each supported link type reaches the IP header; unknown ones decode nothing and never fail."""
    row = one(frame, linktype)
    assert row["o_ver"] == ver
    if ver:
        assert (row["o_sport"], row["o_dport"]) == (7, 9)
    else:
        assert row == one(b"", 147) | {"flags": row["flags"]}


# ------------------------------------------------------------------ batches, buffers, hostile offsets
def test_headers_beyond_the_head_copy_decode_from_the_file() -> None:
    """Headers that run past the bytes copied for the fast pass (IP options, long Geneve options, big
    frames) still decode exactly."""
    inner = IP(src="10.244.1.3", dst="10.244.2.4", options=[b"\x01" * 40]) / TCP(sport=1, dport=2, flags="A")
    frame = bytes(E() / Dot1Q() / Dot1Q() / IP(src="1.1.1.1", dst="2.2.2.2", options=[b"\x01" * 40]) /
                  UDP(dport=4789) / VXLAN(vni=3) / E() / Dot1Q() / inner / Raw(b"p" * 1000))
    assert len(frame) > HEAD
    row = one(frame)
    assert (encap(row), row["vni"], row["i_src"], row["i_dport"], row["tcp_flags"], row["flags"]) == \
        ("vxlan", 3, ip4("10.244.1.3"), 2, 0x10, 0)


def test_big_batch_equals_frame_by_frame() -> None:
    """A batch larger than one internal chunk decodes exactly as each frame alone (rows never mix)."""
    frames = [FULL, bytes(E() / UNDERLAY / INNER), FULL[:50], bytes(E() / IPv6(src="fd00::1", dst="fd00::2") /
                                                                     UDP(dport=8472) / VXLAN() / E() / INNER), V4]
    batch = [frames[(k * 7) % len(frames)] for k in range(CHUNK + 5)]
    table = Addr6Table()
    cols = decode(batch, table=table)
    for k in (0, 1, 2, 3, 4, CHUNK - 1, CHUNK, CHUNK + 4):
        alone = decode([batch[k]], table=table)
        assert {n: int(c[k]) for n, c in cols.items()} == {n: int(c[0]) for n, c in alone.items()}, k


def test_hostile_offsets_and_lengths_never_raise() -> None:
    """Caplens past the end of the buffer and frames at its very end are cut, flagged, never read beyond."""
    buf = FULL[:60]
    cols = decode_frames(np.frombuffer(buf, np.uint8), np.array([0, 10, 59, 60, 10**9], np.int64),
                         np.array([10**6, 50, 1, 0, 64], np.uint32), np.ones(5, np.uint16),
                         vxlan_ports=PORTS, addr6=Addr6Table())
    assert cols["o_ver"][0] == 4 and cols["flags"][0] & TRUNC
    assert list(cols["o_ver"][2:]) == [0, 0, 0]


def test_empty_batch_and_column_dtypes() -> None:
    cols = decode_frames(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.uint32),
                         np.zeros(0, np.uint16), vxlan_ports=PORTS, addr6=Addr6Table())
    assert {n: c.dtype for n, c in cols.items()} == COLUMNS
    assert all(len(c) == 0 for c in cols.values())
    assert list(empty_columns(2)["vni"]) == [-1, -1]


# ------------------------------------------------------------------ IPv6 address table
def test_addr6_table_interns_in_batches_and_formats() -> None:
    """Equal addresses get equal ids across batches; ids are dense and format in RFC 5952 form."""
    table = Addr6Table()
    a = ipaddress.IPv6Address("fd00::1").packed
    b = ipaddress.IPv6Address("2001:db8::ff00:42:8329").packed
    ids1 = table.intern(np.frombuffer(a + b + a, np.uint8).reshape(3, 16))
    ids2 = table.intern(np.frombuffer(b + a, np.uint8).reshape(2, 16))
    assert ids1[0] == ids1[2] == ids2[1] and ids1[1] == ids2[0] and ids1[0] != ids1[1]
    assert sorted({int(i) for i in ids1}) == [0, 1] and len(table) == 2
    assert table[int(ids1[1])] == b and table.format(int(ids1[1])) == "2001:db8::ff00:42:8329"
    assert table.id_of("fd00::1") == ids1[0] and table.id_of("::2") is None
    assert table.intern(np.zeros((0, 16), np.uint8)).dtype == np.uint32


def test_ipv6_columns_hold_table_ids() -> None:
    table = Addr6Table()
    cols = decode([ETH6 + V6, ETH6 + V6], table=table)
    assert table.format(int(cols["o_src"][0])) == "fd00::7" and table.format(int(cols["i_dst"][1])) == "fd00::9"


def test_addr6_hash_collision_falls_back_to_exact_interning() -> None:
    """Two different addresses whose 64-bit dedup keys collide still get different ids."""
    mult = 0x9E3779B97F4A7C15
    lo1, hi1, hi2 = 0x1111, 0, 5
    lo2 = (lo1 ^ (hi2 * mult)) & (2**64 - 1)  # same key: lo ^ (hi * mult)
    a = struct.pack("<QQ", lo1, hi1)
    b = struct.pack("<QQ", lo2, hi2)
    table = Addr6Table()
    ids = table.intern(np.frombuffer(a + b + a, np.uint8).reshape(3, 16))
    assert ids[0] == ids[2] != ids[1]
    assert (table[int(ids[0])], table[int(ids[1])]) == (a, b)


# ------------------------------------------------------------------ BIG TCP (tshark 4.0 calls these malformed)
def _first_frame(path) -> bytes:
    """The first record of a classic little-endian pcap (the BIG TCP files are such)."""
    raw = path.read_bytes()
    caplen = struct.unpack_from("<I", raw, 24 + 8)[0]
    return raw[24 + 16:24 + 16 + caplen]


@pytest.mark.shared
def test_big_tcp_ipv4_vxlan_decodes_through_to_inner_tcp(public_captures) -> None:
    """Outer IPv4 total length 0 (BIG TCP, 80 kB frame): the decode uses caplen and agrees with scapy, which
    also reads through (tshark 4.0 and tcpdump stop at the outer header)."""
    frame = _first_frame(public_captures / "vxlan-bigtcp-ipv4-in-ipv4-tcpdump.pcap")
    assert len(frame) > 65535
    want = Ether(frame)
    row = one(frame)
    outer, inner = want[IP], want[IP].payload[IP]
    assert (row["o_src"], row["o_dst"], row["o_dport"]) == (ip4(outer.src), ip4(outer.dst), want[UDP].dport)
    assert (encap(row), row["vni"], row["depth"]) == ("vxlan", want[VXLAN].vni, 1)
    assert (row["i_src"], row["i_dst"], row["i_sport"], row["i_dport"]) == \
        (ip4(inner.src), ip4(inner.dst), want[TCP].sport, want[TCP].dport)
    assert (row["tcp_seq"], row["tcp_ack"], row["tcp_flags"]) == (want[TCP].seq, want[TCP].ack, int(want[TCP].flags))
    assert row["flags"] & TRUNC == 0


@pytest.mark.shared
def test_big_tcp_ipv6_vxlan_decodes_through_to_inner_tcp(public_captures) -> None:
    """IPv6 payload length 0 without a jumbo option (BIG TCP): decoded with caplen. The oracle is scapy applied
    at each header's offset, since scapy (like tshark 4.0) stops at a payload length of 0."""
    frame = _first_frame(public_captures / "vxlan-bigtcp-ipv6-in-ipv6-tcpdump.pcap")
    table = Addr6Table()
    cols = decode([frame], table=table)
    row = {name: int(col[0]) for name, col in cols.items()}
    outer = IPv6(frame[14:54])
    udp = UDP(frame[54:])
    inner = udp[IPv6]
    inner_at = 54 + 8 + 8 + 14
    tcp = TCP(frame[inner_at + 40:])
    assert (table.format(row["o_src"]), table.format(row["o_dst"]), row["o_ttl"]) == \
        (outer.src, outer.dst, outer.hlim)
    assert (row["o_proto"], row["o_sport"], row["o_dport"]) == (17, udp.sport, udp.dport)
    assert (encap(row), row["vni"], row["depth"]) == ("vxlan", udp[VXLAN].vni, 1)
    assert (table.format(row["i_src"]), table.format(row["i_dst"]), row["i_proto"]) == \
        (inner.src, inner.dst, inner.nh)
    assert (row["i_sport"], row["i_dport"], row["tcp_seq"], row["tcp_flags"]) == \
        (tcp.sport, tcp.dport, tcp.seq, int(tcp.flags))
