"""Property tests: random overlay stacks built with scapy decode to exactly the fields they were built with.

Each example is a batch of packets: a link layer (Ethernet with 0-3 VLAN tags, Linux SLL/SLL2, raw IP, BSD
NULL), an outer IPv4/IPv6 header (IPv6 with random extension headers), 0-3 nested tunnels (VXLAN on a VXLAN port,
Geneve with options, IP-in-IP in all four combinations, GRE with random checksum/key/sequence words carrying IP
or Ethernet) and an innermost TCP/UDP/ICMP/ICMPv6 echo. The frames are serialised, packed into one buffer with
random gaps, decoded in one ``decode_frames`` call, and every column is compared with what was built.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoReply, ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import GRE, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from tracer.decode.addr6 import Addr6Table
from tracer.decode.fields import COLUMNS, DEFAULT_VXLAN_PORTS, ENCAP_NAMES, decode_frames

MACS = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # explicit: no ARP lookup, no warnings
VXLAN_PORTS = frozenset(DEFAULT_VXLAN_PORTS) | {4799}

u8, u16, u32 = (st.integers(0, 2**b - 1) for b in (8, 16, 32))
ipv4 = st.integers(1, 2**32 - 1)
ipv6 = st.binary(min_size=16, max_size=16)


@dataclass
class Expected:
    """What the decode must report for one built frame (column name -> value); IPv6 ids checked by bytes."""

    cols: dict[str, int] = field(default_factory=dict)
    addr6: dict[str, bytes] = field(default_factory=dict)


@st.composite
def ip_header(draw, ver: int) -> tuple[Packet, dict, dict, bool]:
    """An IP header (IPv6 possibly with extension headers): expected fields, IPv6 addresses, is a fragment."""
    ttl = draw(st.integers(1, 255))
    if ver == 4:
        src, dst, ipid = draw(ipv4), draw(ipv4), draw(u16)
        hdr = IP(src=str(ipaddress.IPv4Address(src)), dst=str(ipaddress.IPv4Address(dst)), ttl=ttl, id=ipid,
                 flags=draw(st.sampled_from(["", "DF"])))
        return hdr, dict(ver=4, src=src, dst=dst, ttl=ttl, ipid=ipid), {}, False
    src, dst = draw(ipv6), draw(ipv6)
    hdr: Packet = IPv6(src=str(ipaddress.IPv6Address(src)), dst=str(ipaddress.IPv6Address(dst)), hlim=ttl)
    exts = draw(st.lists(st.sampled_from(["hbh", "rt", "dst", "frag0"]), max_size=3))
    for ext in exts:
        hdr = hdr / {"hbh": IPv6ExtHdrHopByHop, "rt": IPv6ExtHdrRouting, "dst": IPv6ExtHdrDestOpt,
                     "frag0": lambda: IPv6ExtHdrFragment(offset=0, m=1, id=7)}[ext]()
    return hdr, dict(ver=6, ttl=ttl, ipid=0), dict(src=src, dst=dst), "frag0" in exts


@st.composite
def ethernet(draw) -> Packet:
    """Ethernet with 0-2 VLAN tags (802.1Q or 802.1ad outer)."""
    frame: Packet = Ether(**MACS)
    for _ in range(draw(st.integers(0, 2))):
        frame = frame / draw(st.sampled_from([Dot1Q, Dot1AD]))(vlan=draw(st.integers(0, 4095)))
    return frame


@st.composite
def stack(draw) -> tuple[bytes, int, Expected]:
    """One frame: (bytes, LINKTYPE, expected columns)."""
    levels = draw(st.integers(0, 3))
    vers = [draw(st.sampled_from([4, 4, 6])) for _ in range(levels + 1)]
    tunnels = []
    for level in range(levels):
        kinds = ["vxlan", "geneve-eth", "geneve-ip", "ipip", "gre-ip", "gre-eth"]
        tunnels.append(draw(st.sampled_from(kinds)))

    exp = Expected()
    # Innermost payload first, then wrap outwards.
    hdr, ipf, a6, frag = draw(ip_header(vers[-1]))
    outer_frag = frag
    l4 = draw(st.sampled_from(["tcp", "udp", "icmp"]))
    inner_cols = dict(tcp_flags=0, tcp_seq=0, tcp_ack=0, icmp_type=0, icmp_code=0, icmp_id=0, icmp_seq=0)
    sport = dport = 0
    if l4 == "tcp":
        sport, dport, fl, seq, ack = draw(u16), draw(u16), draw(u8), draw(u32), draw(u32)
        payload = TCP(sport=sport, dport=dport, flags=fl, seq=seq, ack=ack)
        inner_cols.update(tcp_flags=fl, tcp_seq=seq, tcp_ack=ack)
        proto = 6
    elif l4 == "udp":
        sport, dport = draw(u16), draw(u16)
        if dport in VXLAN_PORTS or dport == 6081:
            dport = 53
        payload = UDP(sport=sport, dport=dport) / Raw(draw(st.binary(max_size=24)))
        proto = 17
    else:
        ident, seq, reply = draw(u16), draw(u16), draw(st.booleans())
        if vers[-1] == 4:
            payload = ICMP(type=0 if reply else 8, id=ident, seq=seq)
            inner_cols.update(icmp_type=0 if reply else 8)
            proto = 1
        else:
            payload = (ICMPv6EchoReply if reply else ICMPv6EchoRequest)(id=ident, seq=seq)
            inner_cols.update(icmp_type=129 if reply else 128)
            proto = 58
        inner_cols.update(icmp_id=ident, icmp_seq=seq)
    pkt: Packet = hdr / payload
    ip_len = len(bytes(pkt))
    exp.cols.update({f"i_{k}": v for k, v in ipf.items()})
    exp.cols.update(i_proto=proto, i_sport=sport, i_dport=dport, i_len=ip_len, **inner_cols)
    exp.addr6.update({f"i_{k}": v for k, v in a6.items()})

    outer_ports = (sport, dport)
    encap = 0
    vni = -1
    for level in reversed(range(levels)):
        kind = tunnels[level]
        hdr, ipf, a6, outer_frag = draw(ip_header(vers[level]))
        inner_ver = vers[level + 1]
        outer_ports = (0, 0)
        if kind == "vxlan":
            vni = draw(st.integers(0, 2**24 - 1))
            port = draw(st.sampled_from(sorted(VXLAN_PORTS)))
            sp = draw(u16)
            pkt = hdr / UDP(sport=sp, dport=port) / VXLAN(vni=vni, flags=draw(st.sampled_from([0x08, 0x88]))) \
                / draw(ethernet()) / pkt
            outer_ports, encap = (sp, port), 1
        elif kind.startswith("geneve"):
            vni = draw(st.integers(0, 2**24 - 1))
            opts = [GeneveOptions(classid=0x0102, type=draw(u8), data=draw(st.binary(min_size=4, max_size=8)))
                    for _ in range(draw(st.integers(0, 2)))]
            opts = [o for o in opts if len(o.data) % 4 == 0]
            sp = draw(u16)
            if kind == "geneve-eth":
                body = GENEVE(vni=vni, proto=0x6558, options=opts) / draw(ethernet()) / pkt
            else:
                body = GENEVE(vni=vni, proto=0x0800 if inner_ver == 4 else 0x86DD, options=opts) / pkt
            pkt = hdr / UDP(sport=sp, dport=6081) / body
            outer_ports, encap = (sp, 6081), 2
        elif kind == "ipip":
            pkt = hdr / pkt
            encap = {(4, 4): 3, (4, 6): 4, (6, 4): 5, (6, 6): 7}[vers[level], inner_ver]
            vni = -1
        else:
            opts = dict(chksum_present=draw(st.integers(0, 1)), key_present=draw(st.integers(0, 1)),
                        seqnum_present=draw(st.integers(0, 1)), key=draw(u32), sequence_number=draw(u32))
            if kind == "gre-eth":
                pkt = hdr / GRE(proto=0x6558, **opts) / draw(ethernet()) / pkt
            else:
                pkt = hdr / GRE(proto=0x0800 if inner_ver == 4 else 0x86DD, **opts) / pkt
            encap, vni = 6, -1
        if level == 0:
            exp.cols.update({f"o_{k}": v for k, v in ipf.items()})
            exp.addr6.update({f"o_{k}": v for k, v in a6.items()})
            exp.cols["o_proto"] = {"vxlan": 17, "geneve-eth": 17, "geneve-ip": 17, "gre-ip": 47,
                                   "gre-eth": 47}.get(kind, 4 if inner_ver == 4 else 41)
    if levels == 0:
        exp.cols.update({k.replace("i_", "o_", 1): v for k, v in exp.cols.items() if k.startswith("i_")})
        del exp.cols["o_len"]
        exp.addr6.update({k.replace("i_", "o_", 1): v for k, v in exp.addr6.items()})
    else:
        exp.cols.update(o_sport=outer_ports[0], o_dport=outer_ports[1])
    # a first fragment (offset 0) keeps its ports: only OFRAG, and only for the outermost header
    exp.cols.update(encap=encap, vni=vni, depth=levels, flags=4 if outer_frag else 0)

    link = draw(st.sampled_from(["eth", "eth", "raw", "sll", "sll2", "null"]))
    outer_ver = vers[0]
    if link == "eth":
        frame, linktype = bytes(draw(ethernet()) / pkt), 1
    elif link == "raw":
        frame, linktype = bytes(pkt), draw(st.sampled_from([101, 228 if outer_ver == 4 else 229]))
    elif link == "sll":
        frame, linktype = bytes(CookedLinux(proto=0x0800 if outer_ver == 4 else 0x86DD) / pkt), 113
    elif link == "sll2":
        frame, linktype = bytes(CookedLinuxV2(proto=0x0800 if outer_ver == 4 else 0x86DD) / pkt), 276
    else:
        family = 2 if outer_ver == 4 else draw(st.sampled_from([10, 24, 28, 30]))
        frame, linktype = struct.pack("<I", family) + bytes(pkt), 0
    return frame, linktype, exp


def decode(frames: list[bytes], linktypes: list[int], gaps: list[bytes]) -> tuple[dict, Addr6Table]:
    """Pack frames into one buffer with garbage between them and decode them in one call."""
    buf, offsets = bytearray(), []
    for frame, gap in zip(frames, gaps):
        buf += gap
        offsets.append(len(buf))
        buf += frame
    table = Addr6Table()
    cols = decode_frames(np.frombuffer(bytes(buf), np.uint8), np.array(offsets, np.int64),
                         np.array([len(f) for f in frames], np.uint32), np.array(linktypes, np.uint16),
                         vxlan_ports=VXLAN_PORTS, addr6=table)
    return cols, table


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(stack(), min_size=1, max_size=6), st.data())
def test_random_overlay_stacks_decode_to_what_was_built(frames, data) -> None:
    """Every column equals what the scapy stack was built with, for any mix of layouts in one batch."""
    gaps = [data.draw(st.binary(max_size=7)) for _ in frames]
    cols, table = decode([f for f, _, _ in frames], [lt for _, lt, _ in frames], gaps)
    assert set(cols) == set(COLUMNS)
    for name, col in cols.items():
        assert col.dtype == COLUMNS[name], name
        assert len(col) == len(frames)
    for k, (_, lt, exp) in enumerate(frames):
        event(f"depth {exp.cols['depth']}, outermost tunnel {ENCAP_NAMES[exp.cols['encap']]}, linktype {lt}")
        got = {name: int(cols[name][k]) for name in exp.cols}
        assert got == exp.cols, f"frame {k}: encap {ENCAP_NAMES[exp.cols['encap']]}"
        for name, raw in exp.addr6.items():
            assert table[int(cols[name][k])] == raw, name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stack(), st.data())
def test_any_truncation_never_raises_and_keeps_outer_fields(built, data) -> None:
    """A frame cut anywhere decodes without raising; cut inside a header it sets TRUNC and never invents
    fields: whatever it still reports for the outer IP header equals what was built."""
    frame, linktype, exp = built
    cut = data.draw(st.integers(0, len(frame)))
    cols, table = decode([frame[:cut]], [linktype], [b""])
    if int(cols["o_ver"][0]):
        assert int(cols["o_ver"][0]) == exp.cols["o_ver"]
        for name in ("o_src", "o_dst") if exp.cols["o_ver"] == 4 else ():
            assert int(cols[name][0]) == exp.cols[name]
        for name, raw in exp.addr6.items():
            if name.startswith("o_"):
                assert table[int(cols[name][0])] == raw
    if cut < len(frame) and int(cols["o_ver"][0]) == 0:
        assert int(cols["flags"][0]) & 1, "an outer IP header cut short must set TRUNC"
