"""Dissection of one packet (tracer/decode/dissect.py): layer order, encapsulation levels, and byte spans.

Stacks are built with scapy, serialised, and dissected back; every asserted span is checked against bytes
computed independently of the dissector (socket/struct packing of what was built). Real captures from ../shared
must dissect packet by packet without an exception.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Ether, Loopback
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from tracer.decode.dissect import Dissection, Dissector, dissect, hexdump_rows

MAC = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
POD_MAC = dict(src="0a:58:0a:f4:01:03", dst="0a:58:0a:f4:02:05")
POD_TCP = IP(src="10.244.1.3", dst="10.244.2.5", ttl=63) / TCP(sport=33000, dport=8080, flags="S")


def ip4(a: str) -> bytes:
    return socket.inet_aton(a)


def u16(v: int) -> bytes:
    return struct.pack("!H", v)


# name → (packet, expected (layer name, level) in order, spans: (layer position, field, expected bytes))
STACKS = {
    "flannel-vxlan-8472-vni1": (
        Ether(**MAC) / IP(src="192.168.0.10", dst="192.168.0.11") / UDP(sport=41000, dport=8472) / VXLAN(vni=1)
        / Ether(**POD_MAC) / POD_TCP / Raw(b"GET /"),
        [("Ethernet", 0), ("IP", 0), ("UDP", 0), ("VXLAN", 0), ("Ethernet", 1), ("IP", 1), ("TCP", 1), ("Raw", 1)],
        [(1, "src", ip4("192.168.0.10")), (1, "dst", ip4("192.168.0.11")), (2, "dport", u16(8472)),
         (3, "vni", (1).to_bytes(3, "big")), (5, "src", ip4("10.244.1.3")), (6, "sport", u16(33000)),
         (6, "dport", u16(8080)), (5, "ttl", bytes([63])), (4, "type", u16(0x0800))],
    ),
    "calico-ipip": (
        Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / IP(src="192.168.100.7", dst="192.168.200.9")
        / TCP(sport=45000, dport=80, flags="PA") / Raw(b"x" * 20),
        [("Ethernet", 0), ("IP", 0), ("IP", 1), ("TCP", 1), ("Raw", 1)],
        [(1, "proto", bytes([4])), (1, "src", ip4("10.0.0.1")), (2, "src", ip4("192.168.100.7")),
         (2, "dst", ip4("192.168.200.9")), (3, "sport", u16(45000)), (3, "dport", u16(80))],
    ),
    "calico-vxlan-4789-vni4096": (
        Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=52000, dport=4789) / VXLAN(vni=4096)
        / Ether(**POD_MAC) / IP(src="192.168.100.7", dst="192.168.200.9") / ICMP(type=8, id=7, seq=1),
        [("Ethernet", 0), ("IP", 0), ("UDP", 0), ("VXLAN", 0), ("Ethernet", 1), ("IP", 1), ("ICMP", 1)],
        [(2, "dport", u16(4789)), (3, "vni", (4096).to_bytes(3, "big")), (5, "src", ip4("192.168.100.7")),
         (6, "id", u16(7)), (6, "seq", u16(1))],
    ),
    "geneve-6081": (
        Ether(**MAC) / IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=50000, dport=6081)
        / GENEVE(vni=0x0C012E, proto=0x6558) / Ether(**POD_MAC) / IPv6(src="fd00:10::1", dst="fd00:10::2")
        / UDP(sport=41000, dport=53),
        [("Ethernet", 0), ("IP", 0), ("UDP", 0), ("GENEVE", 0), ("Ethernet", 1), ("IPv6", 1), ("UDP", 1)],
        [(2, "dport", u16(6081)), (3, "vni", (0x0C012E).to_bytes(3, "big")), (3, "proto", u16(0x6558)),
         (5, "src", socket.inet_pton(socket.AF_INET6, "fd00:10::1")), (6, "dport", u16(53))],
    ),
    "gre-in-ipv4": (
        Ether(**MAC) / IP(src="172.16.1.1", dst="172.16.1.2") / GRE() / IP(src="10.2.0.1", dst="10.2.0.2")
        / TCP(sport=5000, dport=6000, flags="R"),
        [("Ethernet", 0), ("IP", 0), ("GRE", 0), ("IP", 1), ("TCP", 1)],
        [(2, "proto", u16(0x0800)), (3, "src", ip4("10.2.0.1")), (4, "dport", u16(6000))],
    ),
    "vxlan-in-vxlan": (
        Ether(**MAC) / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(dport=4789) / VXLAN(vni=3) / Ether(**POD_MAC)
        / IP(src="3.3.3.3", dst="4.4.4.4") / UDP(dport=8472) / VXLAN(vni=2) / Ether(**POD_MAC) / POD_TCP,
        [("Ethernet", 0), ("IP", 0), ("UDP", 0), ("VXLAN", 0), ("Ethernet", 1), ("IP", 1), ("UDP", 1),
         ("VXLAN", 1), ("Ethernet", 2), ("IP", 2), ("TCP", 2)],
        [(3, "vni", (3).to_bytes(3, "big")), (7, "vni", (2).to_bytes(3, "big")), (9, "src", ip4("10.244.1.3"))],
    ),
}


def field(d: Dissection, layer: int, name: str):
    found = [f for f in d.layers[layer].fields if f.name == name]
    assert found, f"{d.layers[layer].name} has no field {name}: {[f.name for f in d.layers[layer].fields]}"
    return found[0]


def assert_well_formed(d: Dissection, frame: bytes) -> None:
    """Layers tile the frame in order; every field lies inside its layer; values are plain strings."""
    pos = 0
    for layer in d.layers:
        assert layer.offset == pos, (layer, pos)
        assert layer.length >= 0 and isinstance(layer.name, str)
        pos += layer.length
        for f in layer.fields:
            assert isinstance(f.value, str) and isinstance(f.name, str)
            assert layer.offset <= f.offset and f.offset + f.length <= layer.offset + layer.length, (layer.name, f)
    assert pos == len(frame)
    assert d.layers or not frame


@pytest.mark.parametrize("name", list(STACKS))
def test_overlay_stack_layers_levels_and_spans(name):
    """Each layer in order with its encapsulation level; each field's span holds exactly its serialised bytes."""
    pkt, layers, spans = STACKS[name]
    frame = bytes(pkt)
    d = dissect(frame, 1)
    assert [(lay.name, lay.level) for lay in d.layers] == layers
    for pos, fname, want in spans:
        f = field(d, pos, fname)
        assert frame[f.offset : f.offset + f.length] == want, (name, pos, fname, f)
    assert_well_formed(d, frame)
    assert not d.malformed and d.levels == 1 + max(level for _, level in layers)


def test_values_are_the_numbers_people_compare():
    """Ports and VNIs in decimal; enumerated fields keep their number next to scapy's name."""
    d = dissect(bytes(STACKS["flannel-vxlan-8472-vni1"][0]), 1)
    assert field(d, 6, "dport").value == "8080" and field(d, 2, "dport").value == "8472"
    assert field(d, 3, "vni").value == "1"
    assert field(d, 1, "proto").value == "udp (17)" and field(d, 0, "type").value == "IPv4 (0x0800)"
    assert field(d, 1, "src").value == "192.168.0.10" and field(d, 6, "flags").value == "S"


def test_option_lists_get_one_node_per_option():
    """Geneve options (a list of packets in scapy) become options[k] nodes spanning each option's own bytes."""
    from scapy.contrib.geneve import GeneveOptions

    opts = [GeneveOptions(classid=0x0100, type=1, data=b"12345678"), GeneveOptions(classid=0x0102, type=2, data=b"abcd")]
    pkt = (Ether(**MAC) / IP() / UDP(sport=1, dport=6081) / GENEVE(vni=7, proto=0x6558, options=opts)
           / Ether(**POD_MAC) / POD_TCP)
    frame = bytes(pkt)
    d = dissect(frame, 1)
    geneve = d.layers[3]
    start = geneve.offset + 8
    for k, opt in enumerate(opts):
        node = field(d, 3, f"options[{k}]")
        raw = bytes(opt)
        assert (node.offset, frame[node.offset : node.offset + node.length]) == (start, raw)
        start += len(raw)
    assert geneve.offset + geneve.length == start and d.layers[4].level == 1


def test_bit_fields_span_their_containing_bytes():
    """A bit field (IP ihl, TCP flags) spans the byte(s) holding its bits and shows its value."""
    frame = bytes(STACKS["flannel-vxlan-8472-vni1"][0])
    d = dissect(frame, 1)
    ihl = field(d, 5, "ihl")
    assert (ihl.offset, ihl.length, ihl.value) == (d.layers[5].offset, 1, "5")
    flags = field(d, 6, "flags")
    tcp = d.layers[6].offset
    assert flags.offset in (tcp + 12, tcp + 13) and flags.offset + flags.length == tcp + 14
    assert frame[tcp + 13] & 0x02 and "S" in flags.value
    frag = field(d, 5, "frag")
    assert (frag.offset, frag.length) == (d.layers[5].offset + 6, 2)


@pytest.mark.parametrize(
    "linktype, pkt, names",
    [
        (113, CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\1\0\0", proto=0x0800)
         / POD_TCP, ["cooked linux", "IP", "TCP"]),
        (276, CookedLinuxV2(proto=0x86DD, ifindex=26, pkttype=4) / IPv6(src="fd00::1", dst="fd00::2")
         / ICMP(), ["cooked linux v2", "IPv6", "Raw"]),
        (101, POD_TCP, ["IP", "TCP"]),
        (101, IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2), ["IPv6", "UDP"]),
        (228, POD_TCP, ["IP", "TCP"]),
        (229, IPv6() / TCP(), ["IPv6", "TCP"]),
        (0, Loopback(type=2) / POD_TCP, ["Loopback", "IP", "TCP"]),
        (147, POD_TCP, ["Raw"]),  # a link type tracer does not dissect: the bytes, untouched
    ],
)
def test_link_types(linktype, pkt, names):
    """Ethernet, SLL, SLL2, raw IPv4/IPv6, NULL decode from their link type; an unknown one is one Raw layer."""
    frame = bytes(pkt)
    d = dissect(frame, linktype)
    assert [lay.name for lay in d.layers] == names
    assert_well_formed(d, frame)


def test_udp_on_vxlan_port_needs_the_vxlan_header_and_extra_ports_bind():
    """UDP to 8472 without the I flag is not VXLAN; --vxlan-port N makes N VXLAN only where it was given."""
    plain = bytes(Ether(**MAC) / IP() / UDP(sport=9, dport=8472) / Raw(b"hello world, no vxlan here"))
    assert [lay.name for lay in dissect(plain, 1).layers] == ["Ethernet", "IP", "UDP", "Raw"]
    custom = bytes(Ether(**MAC) / IP() / UDP(sport=9, dport=9999) / VXLAN(vni=77) / Ether(**POD_MAC) / POD_TCP)
    with_port = dissect(custom, 1, vxlan_ports=(4789, 8472, 9999))
    assert [lay.name for lay in with_port.layers][3:5] == ["VXLAN", "Ethernet"]
    assert with_port.layers[4].level == 1
    vni = field(with_port, 3, "vni")
    assert custom[vni.offset : vni.offset + vni.length] == (77).to_bytes(3, "big")
    # the binding is process-wide in scapy; a dissection without the port must still not call it VXLAN
    assert [lay.name for lay in dissect(custom, 1).layers] == ["Ethernet", "IP", "UDP", "Raw"]
    # scapy also binds VXLAN to UDP *source* port 4789; the index looks at the destination port only
    reply = bytes(Ether(**MAC) / IP() / UDP(sport=4789, dport=40000) / VXLAN(vni=5) / Ether(**POD_MAC) / POD_TCP)
    assert "VXLAN" not in [lay.name for lay in dissect(reply, 1).layers]
    # VXLAN-GBP / OpenStack set reserved bits: still VXLAN
    for flags in (b"\x88\x01\xd1\xf2", b"\xff\x01\xd1\xf2", b"\x0c\x00\x00\x03"):  # GBP, all bits, GPE-like
        frame = bytearray(bytes(STACKS["flannel-vxlan-8472-vni1"][0]))
        frame[42:46] = flags
        d = dissect(bytes(frame), 1)
        assert [(lay.name, lay.level) for lay in d.layers] == STACKS["flannel-vxlan-8472-vni1"][1], flags
        assert (d.layers[3].offset, d.layers[3].length, _fv(d.layers[3], "vni")) == (42, 8, "1")


def test_big_tcp_and_port_extender_tags():
    """IPv6 payload length 0 (Linux BIG TCP) runs to the end of the capture; VN-Tag and E-Tag are skipped to the
    EtherType they carry, as the index does."""
    inner = IPv6(src="fd00::1", dst="fd00::2", plen=0) / TCP(sport=1, dport=2, flags="A") / Raw(b"n" * 3000)
    pkt = (Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0) / UDP(sport=5, dport=4789, len=0)
           / VXLAN(vni=5001) / Ether(**POD_MAC) / inner)
    frame = bytes(pkt)
    d = dissect(frame, 1)
    assert [(lay.name, lay.level) for lay in d.layers] == [
        ("Ethernet", 0), ("IPv6", 0), ("UDP", 0), ("VXLAN", 0), ("Ethernet", 1), ("IPv6", 1), ("TCP", 1), ("Raw", 1)]
    assert d.layers[-1].length == 3000
    for tpid, size in ((0x8926, 4), (0x893F, 6)):
        tagged = bytes(Ether(**MAC, type=tpid)) + b"\x00" * size + b"\x08\x00" + bytes(POD_TCP)
        d = dissect(tagged, 1)
        assert [lay.name for lay in d.layers] == ["Ethernet", ("VN-Tag", "E-Tag")[tpid == 0x893F], "IP", "TCP"]
        assert field(d, 2, "src").offset == 14 + size + 2 + 12
    erspan = bytes(Ether(**MAC) / IP(src="9.9.9.9", dst="8.8.8.8")
                   / GRE(proto=0x88BE, seqnum_present=1, sequence_number=1)
                   / b"\x10\x00\x00\x01\x00\x00\x00\x00" / Ether(**POD_MAC) / POD_TCP)
    d = dissect(erspan, 1)
    assert [lay.level for lay in d.layers if lay.name == "IP"] == [0, 1]


@pytest.mark.parametrize("name", list(STACKS))
def test_every_truncation_dissects_and_tiles_the_frame(name):
    """Cut at every byte: never an exception, layers still tile what was captured, cut headers are marked."""
    frame = bytes(STACKS[name][0])
    for cut in range(len(frame) + 1):
        part = frame[:cut]
        d = dissect(part, 1)
        assert_well_formed(d, part)
    d = dissect(frame[:29], 1)  # inside the outer IPv4 source address
    assert d.malformed and d.layers[1].name == "IP (truncated)"
    assert field(d, 1, "ttl").offset == 22 and (d.layers[-1].name, d.layers[-1].offset) == ("Malformed", 26)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(STACKS)), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
       st.sampled_from([0, 1, 101, 113, 276]))
def test_mutated_frames_never_raise(name, edits, linktype):
    """Hostile bytes (lengths, IHL, VXLAN/Geneve/GRE fields rewritten at random) never make dissection raise."""
    frame = bytearray(bytes(STACKS[name][0]))
    for pos, value in edits:
        if pos < len(frame):
            frame[pos] = value
    d = dissect(bytes(frame), linktype)
    assert_well_formed(d, bytes(frame))


def test_dissector_caches_by_source_and_row():
    """The LRU returns the cached tree for (source key, row), calls the loader only on a miss, evicts the oldest."""
    loads = []
    frames = {k: bytes(STACKS[n][0]) for k, n in enumerate(STACKS)}

    def loader(row):
        def load():
            loads.append(row)
            return frames[row]
        return load

    cache = Dissector(maxsize=2)
    a = cache.get("file-a", 0, loader(0), 1)
    assert cache.get("file-a", 0, loader(0), 1) is a and loads == [0]
    cache.get("file-b", 0, loader(1), 1)  # another source, same row: a different entry
    assert loads == [0, 1] and len(cache) == 2
    cache.get("file-a", 2, loader(2), 1)  # evicts the least recently used (file-a, 0)
    cache.get("file-a", 0, loader(0), 1)
    assert loads == [0, 1, 2, 0] and len(cache) == 2
    assert (cache.hits, cache.misses) == (1, 4)


def test_hexdump_ascii_column_is_inert():
    """Every byte outside printable ASCII is '.', so escape sequences and DEL never reach a terminal."""
    hostile = bytes(range(256)) + b"\x1b]0;pwned\x07\x1b[31m[bold red]x[/]\x9b\x7f"
    rows = hexdump_rows(hostile)
    assert len(rows) == (len(hostile) + 15) // 16
    assert rows[1][0] == "0010" and rows[0][1].split() == [f"{b:02x}" for b in range(16)]
    text = "".join(r[2] for r in rows)
    assert len(text) == len(hostile)
    for byte, shown in zip(hostile, text):
        assert shown == (chr(byte) if 0x20 <= byte <= 0x7E else ".")
    assert all(0x20 <= ord(c) <= 0x7E for row in rows for part in row for c in part)
    assert bytes.fromhex("".join(r[1] for r in rows)) == hostile
    big = hexdump_rows(b"\0" * 70000, width=8)
    assert big[-1][0] == f"{69992:05x}" and len(big) == 8750


def test_import_is_quiet_and_never_scapy_all():
    """Importing and dissecting prints nothing and does not load scapy.all."""
    code = ("import sys; from tracer.decode.dissect import dissect; "
            "from scapy.layers.l2 import Ether; from scapy.layers.inet import IP, UDP; "
            "d = dissect(bytes(Ether()/IP(dst='10.9.9.9')/UDP(dport=8472)), 1); "
            "assert 'scapy.all' not in sys.modules, 'scapy.all imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and "WARNING" not in out.stderr


def _fv(layer, name: str) -> str | None:
    return next((f.value for f in layer.fields if f.name == name), None)


def _agrees_with_index(index, row: int, d: Dissection) -> str | None:
    """Where the packet list (index) and the layers pane (dissection) disagree about one packet, or None."""
    ips = [lay for lay in d.layers if lay.name in ("IP", "IPv6")]
    encap = int(index["encap"][row])
    if encap in (1, 2):
        tunnels = [lay for lay in d.layers if lay.name in ("VXLAN", "GENEVE") or lay.name.startswith("GRE")]
        if not tunnels or tunnels[0].name != ("VXLAN", "GENEVE")[encap - 1] \
                or int(_fv(tunnels[0], "vni"), 0) != int(index["vni"][row]):
            return f"tunnel: index {encap}/{int(index['vni'][row])}, layers {[lay.name for lay in tunnels]}"
    for ver, col, level in (("o_ver", "o_src", 0), ("i_ver", "i_src", int(index["depth"][row]))):
        v = int(index[ver][row])
        if not v:
            continue
        want = index.addr(v, int(index[col][row]))
        at = [lay for lay in ips if lay.level == level]
        # scapy annotates 6to4/Teredo addresses ("2002:… [6to4 GW: …]"): the address comes first
        if not at or not (_fv(at[0], "src") or "").startswith(want):
            return f"{col}: index {want}, layers {[(lay.level, _fv(lay, 'src')) for lay in ips]}"
    return None


def test_every_public_capture_dissects_and_agrees_with_the_index(public_captures):
    """Every packet tracer indexes in ../shared/captures/public dissects (tiling its frame), and the layers agree
    with the index on tunnel kind, VNI, outer source and the source at the index's innermost level."""
    from tracer.capture.index import load_index
    from tracer.errors import TracerError

    files = sorted(p for p in public_captures.rglob("*") if p.is_file() and p.name != "MANIFEST.md")
    dissected = vxlan = 0
    disagree = []
    for path in files:
        try:
            index = load_index([str(path)])
        except TracerError:  # unreadable from the first byte: the reader's business (test_robust_corpus)
            continue
        cache = Dissector(maxsize=8)
        for row in range(len(index)):
            d = cache.row(index, row)
            assert_well_formed(d, index.frame(row))
            dissected += 1
            vxlan += any(lay.name == "VXLAN" for lay in d.layers)
            problem = _agrees_with_index(index, row, d)
            if problem:
                disagree.append(f"{path.name} #{row + 1}: {problem}")
    assert not disagree, "\n".join(disagree[:20])
    assert dissected > 3000 and vxlan > 300


def test_public_vxlan_vni_spans_hold_the_vni(public_captures):
    """On a real flannel-port capture the VXLAN vni span holds the VNI tshark reports (100), inner at level 1."""
    from tracer.capture.index import load_index

    index = load_index([str(public_captures / "vxlan-8472-icmp-arp-vni100-tcpdump.pcap")])
    for row in range(len(index)):
        frame = index.frame(row)
        d = dissect(frame, index.sources[int(index["source"][row])].linktype)
        k = [lay.name for lay in d.layers].index("VXLAN")
        vni = field(d, k, "vni")
        assert int.from_bytes(frame[vni.offset : vni.offset + vni.length], "big") == 100 and vni.value == "100"
        assert d.layers[k + 1].level == 1


# ---------------------------------------------------------------- tracer dissect (the panes' non-interactive twin)
def test_dissect_command_json_and_text(tmp_path, capsys):
    """`tracer dissect` prints the same tree as dissect(), hex rows that rebuild the frame, and inert text."""
    from scapy.utils import wrpcap

    from tracer.cli import main

    hostile = Raw(b"\x1b]0;pwned\x07\x1b[31m[bold red]boom[/]\x9b\x00\r\n")
    pkts = [STACKS["flannel-vxlan-8472-vni1"][0], Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2")
            / UDP(sport=1, dport=53) / hostile]
    path = tmp_path / "two.pcap"
    wrpcap(str(path), pkts)
    assert main(["dissect", str(path), "-n", "1", "--format", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    frame = bytes(pkts[0])
    want = dissect(frame, 1)
    assert [(lay["name"], lay["level"], lay["offset"], lay["length"]) for lay in obj["layers"]] == \
        [(lay.name, lay.level, lay.offset, lay.length) for lay in want.layers]
    assert bytes.fromhex("".join(r[1] for r in obj["hex"])) == frame and obj["no"] == 1
    assert main(["dissect", str(path), "--filter", "udp.dstport == 53"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("#2 ") and "-- outer --" not in text  # one level: no level headers
    assert not [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    assert main(["dissect", str(path), "-n", "3"]) == 2
    assert capsys.readouterr().err.strip() == "tracer: no packet 3: the capture has 2 packets"


def test_a_failure_inside_scapy_keeps_the_layers_already_done(monkeypatch):
    """Even if scapy misbehaves mid-walk (here: the UDP layer's field walk raises), dissect returns the layers it
    had and the rest of the frame as one Malformed layer."""
    import tracer.decode.dissect as dissect_module

    real = dissect_module._fields

    def flaky(layer, head, base, **kw):
        if type(layer).__name__ == "UDP":
            raise RuntimeError("boom")
        return real(layer, head, base, **kw)

    monkeypatch.setattr(dissect_module, "_fields", flaky)
    frame = bytes(STACKS["flannel-vxlan-8472-vni1"][0])
    d = dissect(frame, 1)
    assert [lay.name for lay in d.layers] == ["Ethernet", "IP", "Malformed"] and d.malformed
    assert_well_formed(d, frame)
