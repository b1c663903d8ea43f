"""Hypothesis strategies for hostile frames and capture files, built on ``tracer.fuzz.build``.

Every length, count and type field is drawn either honest (``None``: the builder computes it) or as any value
its width allows, so one strategy covers well-formed stacks and every kind of lie. Frames nest tunnels past the
decoders' depth limit (VXLAN in Geneve in GRE in IP-in-IP …) and chain VLAN tags and IPv6 extension headers
past their limits; a final mutation step overwrites random bytes and truncates.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import strategies as st

from tracer.fuzz import build as B

#: CI runs a bounded number of cases; ``TRACER_FUZZ_EXAMPLES=100000`` runs a long local campaign.
EXAMPLES = int(os.environ.get("TRACER_FUZZ_EXAMPLES", "0")) or None

LINKTYPES = [1, 0, 12, 14, 101, 108, 113, 228, 229, 276]  # what the decoders branch on
HUGE = [0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]  # sizes an attacker writes to make us allocate


#: CI replays the same cases every run (a red build must mean a change broke something, not that the dice found an
#: old bug); a long campaign (TRACER_FUZZ_EXAMPLES set) explores with fresh randomness.
DERANDOMIZE = EXAMPLES is None
#: Hang detection is each case's alarm (10 s); the deadline only catches gross slowness on a loaded machine.
DEADLINE = timedelta(seconds=20)


def examples(ci: int) -> int:
    """Examples for one test: ``ci`` in CI, the environment's figure in a long campaign."""
    return EXAMPLES or ci


def lie(bits: int) -> st.SearchStrategy[int | None]:
    """``None`` (honest) most of the time, else any value of the field's width, edges favoured."""
    top = (1 << bits) - 1
    return st.one_of(st.none(), st.none(), st.integers(0, top), st.sampled_from([0, 1, top, top - 1, top >> 1]))


def ip4_addr() -> st.SearchStrategy[int]:
    return st.sampled_from([0x0AF40103, 0x0AF40205, 0xC0A80264, 0x7F000001, 0, 0xFFFFFFFF])


@st.composite
def transport(draw) -> tuple[bytes, int]:
    """Innermost payload: (bytes, IP protocol)."""
    payload = draw(st.binary(max_size=24))
    kind = draw(st.sampled_from(["tcp", "udp", "icmp", "icmp6", "other"]))
    if kind == "tcp":
        opts = draw(st.binary(max_size=44))
        return B.tcp(payload, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)),
                     flags=draw(st.integers(0, 255)), data_offset=draw(lie(4)), options=opts), B.IP_TCP
    if kind == "udp":
        return B.udp(payload, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)),
                     length=draw(lie(16))), B.IP_UDP
    if kind == "icmp":
        return B.icmp(payload, type_=draw(st.sampled_from([0, 8, 3, 11, 255]))), B.IP_ICMP
    if kind == "icmp6":
        return B.icmp(payload, type_=draw(st.sampled_from([128, 129, 1, 135]))), B.IP_ICMP6
    return payload, draw(st.integers(0, 255))


@st.composite
def ip_packet(draw, inner: bytes, proto: int) -> tuple[bytes, int]:
    """Wrap ``inner`` (of IP protocol ``proto``) in an IPv4 or IPv6 header that may lie: (bytes, EtherType)."""
    if draw(st.booleans()):
        frag = draw(st.sampled_from([0, 0, 0, 0x2000, 0x0001, 0x4000, draw(st.integers(0, 0xFFFF))]))
        pkt = B.ipv4(inner, proto, src=draw(ip4_addr()), dst=draw(ip4_addr()), ihl=draw(lie(4)),
                     total_length=draw(lie(16)), options=draw(st.binary(max_size=40)), frag=frag,
                     version=draw(st.sampled_from([4, 4, 4, 6, 0, 15])))
        return pkt, B.ETH_IPV4
    # IPv6, with a chain of extension headers that may be longer than any decoder's limit.
    chain = draw(st.lists(st.sampled_from([B.IP_HOPOPT, 43, 60, B.IP_FRAG6, 51]),
                          max_size=draw(st.sampled_from([0, 0, 0, 2, 12]))))
    body, nh = inner, proto
    for ext in reversed(chain):
        if ext == B.IP_FRAG6:
            body = B.ipv6_frag(body, nh, offset=draw(st.sampled_from([0, 0, 1, 0x1FFF])), more=draw(st.booleans()))
        else:
            body = B.ipv6_ext(body, nh, hdr_ext_len=draw(lie(8)), body=draw(st.binary(max_size=14)))
        nh = ext
    return B.ipv6(body, nh, payload_length=draw(lie(16))), B.ETH_IPV6


@st.composite
def ethernet_frame(draw, payload: bytes, ethertype: int) -> bytes:
    vlans = draw(st.lists(st.integers(0, 0xFFFF), max_size=draw(st.sampled_from([0, 0, 2, 8]))))
    return B.ethernet(payload, ethertype, vlans=vlans)


TUNNELS = ["vxlan", "flannel", "geneve", "geneve-ip", "gre", "gre-teb", "ipip", "erspan"]


@st.composite
def tunnelled(draw, max_depth: int = 6) -> tuple[bytes, int]:
    """An IP packet nested in up to ``max_depth`` tunnels (beyond the decode limit of 3): (bytes, EtherType)."""
    inner, proto = draw(transport())
    pkt, ethertype = draw(ip_packet(inner, proto))
    for kind in draw(st.lists(st.sampled_from(TUNNELS), max_size=draw(st.sampled_from([1, 2, 3, max_depth])))):
        if kind in ("vxlan", "flannel"):
            eth = draw(ethernet_frame(pkt, ethertype))
            port = B.PORT_VXLAN if kind == "vxlan" else B.PORT_FLANNEL
            flags = draw(st.sampled_from([0x08, 0x08, 0x00, 0x88, 0xFF]))
            body = B.udp(B.vxlan(eth, draw(st.integers(0, 0xFFFFFF)), flags=flags,
                                 reserved=draw(st.integers(0, 0xFFFFFF))), draw(st.integers(0, 65535)), port,
                         length=draw(lie(16)))
            pkt, ethertype = draw(ip_packet(body, B.IP_UDP))
        elif kind in ("geneve", "geneve-ip"):
            opts = b"".join(B.geneve_option(draw(st.binary(max_size=12)), length=draw(lie(5)))
                            for _ in range(draw(st.integers(0, 4))))
            if kind == "geneve":
                content, gproto = draw(ethernet_frame(pkt, ethertype)), B.ETH_TEB
            else:
                content, gproto = pkt, ethertype
            body = B.udp(B.geneve(content, draw(st.integers(0, 0xFFFFFF)), protocol=gproto, options=opts,
                                  opt_len=draw(lie(6)), version=draw(st.sampled_from([0, 0, 1, 3]))),
                         draw(st.integers(0, 65535)), B.PORT_GENEVE, length=draw(lie(16)))
            pkt, ethertype = draw(ip_packet(body, B.IP_UDP))
        elif kind in ("gre", "gre-teb", "erspan"):
            if kind == "gre":
                content, gproto = pkt, ethertype
            elif kind == "gre-teb":
                content, gproto = draw(ethernet_frame(pkt, ethertype)), B.ETH_TEB
            else:  # ERSPAN II: 8-byte header before an Ethernet frame
                content, gproto = draw(st.binary(min_size=8, max_size=8)) + draw(ethernet_frame(pkt, ethertype)), 0x88BE
            body = B.gre(content, gproto, checksum=draw(st.booleans()),
                         key=draw(st.one_of(st.none(), st.integers(0, 0xFFFFFFFF))),
                         seq=draw(st.one_of(st.none(), st.integers(0, 0xFFFFFFFF))),
                         flags=draw(st.one_of(st.none(), st.none(), st.integers(0, 0xFFFF))))
            pkt, ethertype = draw(ip_packet(body, B.IP_GRE))
        else:  # IP-in-IP: 4in4 / 6in4 / 4in6 / 6in6 by the inner and outer versions drawn
            pkt, ethertype = draw(ip_packet(pkt, B.IP_IPIP if ethertype == B.ETH_IPV4 else B.IP_IPV6))
    return pkt, ethertype


@st.composite
def link_frame(draw, linktype: int) -> bytes:
    """A tunnelled IP packet behind the link header of ``linktype``, then mutated."""
    pkt, ethertype = draw(tunnelled())
    if linktype == 1:
        frame = draw(ethernet_frame(pkt, ethertype))
    elif linktype == 113:  # Linux cooked v1: 16-byte header, protocol last
        frame = draw(st.binary(min_size=14, max_size=14)) + ethertype.to_bytes(2, "big") + pkt
    elif linktype == 276:  # Linux cooked v2: protocol first, 20 bytes
        frame = ethertype.to_bytes(2, "big") + draw(st.binary(min_size=18, max_size=18)) + pkt
    elif linktype in (0, 108):  # BSD loopback: 4-byte address family (host order for 0)
        af = 2 if ethertype == B.ETH_IPV4 else draw(st.sampled_from([10, 24, 28, 30]))
        frame = af.to_bytes(4, "little" if linktype == 0 else "big") + pkt
    else:
        frame = pkt
    return draw(mutated(frame))


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten and maybe truncated (most cases stay structurally intact)."""
    data = bytearray(data)
    if data and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if data and draw(st.integers(0, 3)) == 0:
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


@st.composite
def frames_batch(draw) -> tuple[list[bytes], list[int]]:
    """A batch of frames with their link types (some link types arbitrary)."""
    n = draw(st.integers(1, 4))
    linktypes = [draw(st.one_of(st.sampled_from(LINKTYPES), st.integers(0, 0xFFFF))) for _ in range(n)]
    return [draw(link_frame(lt)) for lt in linktypes], linktypes


# --- files ------------------------------------------------------------------------------------------------

def _samples() -> list[bytes]:
    """A few honest overlay frames (Ethernet) that file-level cases carry; frame-level fuzzing is separate."""
    tcp4 = B.ipv4(B.tcp(b"GET / HTTP/1.1\r\n"), B.IP_TCP)
    inner = B.ethernet(tcp4, B.ETH_IPV4)
    return [
        B.ethernet(tcp4, B.ETH_IPV4),
        B.ethernet(B.ipv4(B.udp(B.vxlan(inner, 1), 40000, B.PORT_FLANNEL), B.IP_UDP), B.ETH_IPV4),
        B.ethernet(B.ipv4(B.udp(B.geneve(inner, 7), 40000, B.PORT_GENEVE), B.IP_UDP), B.ETH_IPV4, vlans=[5]),
        B.ethernet(B.ipv4(tcp4, B.IP_IPIP), B.ETH_IPV4),
        B.ethernet(B.ipv6(B.icmp(type_=128), B.IP_ICMP6), B.ETH_IPV6),
        B.ethernet(B.ipv4(B.gre(tcp4, B.ETH_IPV4, key=9), B.IP_GRE), B.ETH_IPV4),
    ]


SAMPLE_FRAMES = _samples()


@st.composite
def records(draw, linktype: int, max_records: int = 6) -> list[B.Record]:
    """Packet records whose caplen/origlen may lie (by a little or by gigabytes) about honest or random data."""
    out = []
    for _ in range(draw(st.integers(0, max_records))):
        data = draw(st.one_of(st.sampled_from(SAMPLE_FRAMES), st.binary(max_size=64)))
        out.append(B.Record(data, caplen=draw(st.one_of(lie(32), st.sampled_from(HUGE))),
                            origlen=draw(lie(32)), ts_sec=draw(st.integers(0, 0xFFFFFFFF)),
                            ts_frac=draw(st.integers(0, 0xFFFFFFFF)), interface=draw(st.sampled_from([0, 0, 1, 7]))))
    return out


@st.composite
def pcap_bytes(draw) -> bytes:
    """A classic pcap whose header fields and record lengths may lie, then mutated and maybe truncated."""
    linktype = draw(st.one_of(st.sampled_from(LINKTYPES), st.integers(0, 0xFFFFFFFF)))
    data = B.pcap_file(draw(records(linktype & 0xFFFF)), linktype=linktype,
                       snaplen=draw(st.one_of(st.just(262144), st.integers(0, 0xFFFFFFFF))),
                       magic=draw(st.sampled_from([B.PCAP_MAGIC_US, B.PCAP_MAGIC_NS])),
                       big_endian=draw(st.booleans()),
                       version=draw(st.sampled_from([(2, 4), (2, 4), (2, 2), (1, 0), (3, 0)])))
    return draw(mutated(data))


@st.composite
def options(draw) -> list[B.Option]:
    return [B.Option(draw(st.sampled_from([1, 2, 3, 4, 9, 10, 14, 0x8000, 0xFFFF])), draw(st.binary(max_size=20)),
                     length=draw(lie(16))) for _ in range(draw(st.integers(0, 3)))]


@st.composite
def pcapng_bytes(draw) -> bytes:
    """A pcapng file: sections of SHB/IDB/EPB/SPB/unknown blocks whose block and option lengths may lie."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        bo = draw(st.sampled_from(["<", ">"]))
        out.append(B.shb(bo, options=draw(options()), version=draw(st.sampled_from([(1, 0), (1, 0), (0, 1), (2, 0)])),
                         total_length=draw(lie(32))))
        linktypes = [draw(st.sampled_from(LINKTYPES)) for _ in range(draw(st.integers(0, 3)))]
        blocks = []
        for lt in linktypes:
            blocks.append(B.idb(lt, bo, snaplen=draw(st.one_of(st.just(262144), st.integers(0, 0xFFFFFFFF))),
                                name=draw(st.one_of(st.none(), st.text(max_size=12), st.binary(max_size=12))),
                                tsresol=draw(st.one_of(st.none(), st.integers(0, 255))),
                                options=draw(options()) + draw(st.lists(st.builds(
                                    lambda s: B.Option(14, s.to_bytes(8, "little" if bo == "<" else "big", signed=True)),
                                    st.integers(-(2**63), 2**63 - 1)), max_size=1)),  # if_tsoffset, seconds
                                total_length=draw(lie(32))))
        for r in draw(records(linktypes[0] if linktypes else 1)):
            kind = draw(st.sampled_from(["epb", "epb", "spb", "unknown"]))
            if kind == "epb":
                blocks.append(B.epb(r, bo, options=draw(options()), total_length=draw(lie(32)),
                                    trailing_length=draw(lie(32))))
            elif kind == "spb":
                blocks.append(B.spb(r, bo, total_length=draw(lie(32))))
            else:
                blocks.append(B.pcapng_block(draw(st.sampled_from([2, 4, 5, 0xBAD, 0x40000BAD, 0x12345678])),
                                             r.data, bo, total_length=draw(lie(32))))
        # Blocks out of order too: a packet before its IDB must be refused cleanly, not crash.
        out.extend(draw(st.permutations(blocks)) if draw(st.integers(0, 5)) == 0 else blocks)
    return draw(mutated(b"".join(out)))
