"""The index decode agrees with tshark, field by field, on every public capture tshark decodes.

Frames are read by a small record walker in this file (independent of tracer's readers), decoded by
``decode_frames``, and compared with ``tshark -T fields -E occurrence=a`` computed at test time: the outermost
IP layer against the ``o_*`` columns, the innermost one (as far as tracer claims to decode, ``depth``) against
``i_*``, plus ports, VNI, TCP flags/seq/ack and ICMP type. tshark runs with IP reassembly off so that fragments
show their own headers, and with ``udp.port==8472`` decoded as VXLAN (flannel's port).
"""

from __future__ import annotations

import gzip
import ipaddress
import os
import shutil
import struct
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tracer.decode.addr6 import Addr6Table
from tracer.decode.fields import DEFAULT_VXLAN_PORTS, ENCAP_NAMES, decode_frames

PUBLIC = Path(os.environ.get("TRACER_SHARED", Path(__file__).resolve().parent.parent.parent / "shared")) / (
    "captures/public"
)
TSHARK = shutil.which("tshark")

FIELDS = (
    "frame.protocols", "ip.src", "ip.dst", "ip.proto", "ip.ttl", "ip.id", "ipv6.src", "ipv6.dst", "ipv6.hlim",
    "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "vxlan.vni", "geneve.vni", "tcp.flags",
    "tcp.seq_raw", "tcp.ack_raw", "icmp.type", "icmp.code", "icmp.ident", "icmp.seq", "icmpv6.type", "icmpv6.code",
    "icmpv6.echo.identifier", "icmpv6.echo.sequence_number",
)
#: The protocol tshark names after an IPv6 header (and its extension headers) -> tracer's i_proto / o_proto.
UPPER = {"tcp": 6, "udp": 17, "icmpv6": 58, "ip": 4, "ipv6": 41, "gre": 47, "sctp": 132}
IPV6_EXT_LAYERS = {"ipv6.hopopts", "ipv6.routing", "ipv6.fraghdr", "ipv6.dstopts", "ah"}

#: Where tracer decodes less than tshark on purpose, or tshark is wrong. file -> (what to skip, why).
#: "deeper": tshark finds IP layers below the ones tracer decodes; "inner": do not compare innermost fields.
EXCLUDE = {
    "gre-various-keys-vlan-tcpdump.pcap": (
        "deeper", "GRE carrying Cisco MetaData (EtherType 0x8909) before IP: not decoded by tracer"),
    "vxlan-gpe-4790-nsh-tcpdump.pcap": (
        "deeper", "VXLAN-GPE with NSH on 4790 is not VXLAN (no default port; NSH not decoded)"),
    "vxlan-bigtcp-ipv4-in-ipv4-tcpdump.pcap": (
        "inner", "BIG TCP: outer total length 0; tshark 4.0 marks it malformed and stops at UDP, tracer "
        "decodes through to the inner TCP using caplen"),
    "vxlan-bigtcp-ipv6-in-ipv6-tcpdump.pcap": (
        "inner", "BIG TCP over IPv6: payload length 0 without a jumbo option; tshark 4.0 stops at UDP"),
}


def read_frames(path: Path) -> list[tuple[bytes, int] | None]:
    """Every frame tshark numbers, as (bytes, LINKTYPE); None for pcapng blocks tshark counts but that carry
    no packet (custom blocks). Stops quietly where the file is damaged."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        bo = "<" if raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        linktype = struct.unpack_from(bo + "I", raw, 20)[0] & 0xFFFF  # upper bits: FCS length, not the type
        frames: list[tuple[bytes, int] | None] = []
        pos = 24
        while pos + 16 <= len(raw):
            caplen = struct.unpack_from(bo + "I", raw, pos + 8)[0]
            if pos + 16 + caplen > len(raw):
                break
            frames.append((raw[pos + 16:pos + 16 + caplen], linktype))
            pos += 16 + caplen
        return frames
    frames, pos, bo, links = [], 0, "<", []
    while pos + 12 <= len(raw):
        if raw[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":  # Section Header Block: byte order, fresh interfaces
            bo = "<" if raw[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, length = struct.unpack_from(bo + "II", raw, pos)
        if length < 12 or pos + length > len(raw):
            break
        body = raw[pos + 8:pos + length - 4]
        if btype == 1 and len(body) >= 8:  # Interface Description Block
            links.append((struct.unpack_from(bo + "H", body, 0)[0], struct.unpack_from(bo + "I", body, 4)[0]))
        elif btype == 6 and len(body) >= 20:  # Enhanced Packet Block
            iface, _, _, caplen = struct.unpack_from(bo + "IIII", body, 0)
            frames.append((body[20:20 + caplen], links[iface][0]) if iface < len(links) else None)
        elif btype == 2 and len(body) >= 20:  # obsolete Packet Block
            iface = struct.unpack_from(bo + "H", body, 0)[0]
            caplen = struct.unpack_from(bo + "I", body, 12)[0]
            frames.append((body[20:20 + caplen], links[iface][0]) if iface < len(links) else None)
        elif btype == 3 and len(body) >= 4 and links:  # Simple Packet Block: caplen = min(len, snaplen)
            origlen = struct.unpack_from(bo + "I", body, 0)[0]
            frames.append((body[4:4 + min(origlen, links[0][1] or origlen, len(body) - 4)], links[0][0]))
        elif btype in (0x00000BAD, 0x40000BAD):  # custom blocks: tshark gives them a frame number
            frames.append(None)
        pos += length
    return frames


_POOL = ThreadPoolExecutor(max_workers=2)
_RUNS: dict[Path, Future] = {}
PREFETCH = 2  # tshark start-up dominates: run the next files' tshark while this one is compared


def tshark_rows(path: Path) -> list[dict[str, list[str]]]:
    """tshark's fields for every frame of ``path`` (the next files' runs start in the background)."""
    files = capture_files()
    at = files.index(path) if path in files else len(files)
    for p in [path, *files[at + 1:at + 1 + PREFETCH]]:
        if p not in _RUNS:
            _RUNS[p] = _POOL.submit(_tshark_rows, p)
    return _RUNS.pop(path).result()


def _tshark_rows(path: Path) -> list[dict[str, list[str]]]:
    cmd = [TSHARK, "-n", "-r", str(path), "-d", "udp.port==8472,vxlan",
           "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=/t"]
    for f in FIELDS:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    rows = []
    for line in res.stdout.splitlines():
        cells = line.split("\t")
        rows.append({f: (cells[i].split(",") if i < len(cells) and cells[i] else []) for i, f in enumerate(FIELDS)})
    return rows


@dataclass
class Layer:
    """One IP layer tshark decoded: its version, occurrence index among ip/ipv6 fields, and its transport."""

    ver: int
    occ: int
    transport: str | None  # "tcp" / "udp" / None
    t_occ: int
    upper: str | None  # the protocol tshark names after the header and its extension headers


def ip_layers(protocols: list[str]) -> list[Layer]:
    """IP layers in frame order, stopping at ICMP (an ICMP error quotes an IP header; it is no tunnel)."""
    layers: list[Layer] = []
    seen = {"ip": 0, "ipv6": 0, "tcp": 0, "udp": 0}
    for i, name in enumerate(protocols):
        if name in ("icmp", "icmpv6"):
            break
        if name in ("ip", "ipv6"):
            nxt = next((p for p in protocols[i + 1:] if p not in IPV6_EXT_LAYERS), None)
            transport = nxt if nxt in ("tcp", "udp") else None
            layers.append(Layer(4 if name == "ip" else 6, seen[name], transport,
                                seen[transport] if transport else 0, nxt))
        if name in seen:
            seen[name] += 1
    return layers


def first_tunnel(protocols: list[str]) -> str | None:
    """The outermost tunnel tshark saw, named as tracer's ``encap`` column names it."""
    ips = [i for i, p in enumerate(protocols) if p in ("ip", "ipv6")]
    if not ips:
        return None
    for i in range(ips[0] + 1, len(protocols)):
        name = protocols[i]
        if name in ("vxlan", "geneve", "gre"):
            return name
        if name in ("icmp", "icmpv6"):
            return None
        if name in ("ip", "ipv6"):
            outer = protocols[ips[0]]
            return {("ip", "ip"): "ipip", ("ip", "ipv6"): "ip6in4", ("ipv6", "ip"): "ip4in6",
                    ("ipv6", "ipv6"): "ip6in6"}[outer, name]
    return None


def num(text: str | None) -> int | None:
    """A tshark number field: decimal, or hexadecimal with 0x (flags, ids, Geneve VNI)."""
    if not text:
        return None
    return int(text, 16) if text.startswith("0x") else int(text)


def addr(ver: int, value: int, table: Addr6Table) -> str:
    return str(ipaddress.IPv4Address(int(value))) if ver == 4 else table.format(int(value))


def compare_frame(row: dict[str, list[str]], cols: dict[str, np.ndarray], k: int, table: Addr6Table,
                  exclude: str | None) -> list[str]:
    """Differences between tshark's view of frame k and tracer's columns (empty when they agree)."""
    def get(field: str, i: int) -> str | None:
        values = row[field]
        return values[i] if i < len(values) else None

    protocols = row["frame.protocols"][0].split(":") if row["frame.protocols"] else []
    layers = ip_layers(protocols)
    depth = int(cols["depth"][k])
    problems = []

    def check(name: str, ours: object, theirs: object) -> None:
        if theirs is not None and ours != theirs:
            problems.append(f"{name}: tracer {ours!r} tshark {theirs!r}")

    def check_layer(prefix: str, layer: Layer | None) -> None:
        ver = int(cols[f"{prefix}ver"][k])
        check(f"{prefix}ver", ver, layer.ver if layer else 0)
        if layer is None or ver != layer.ver:
            return
        fam = "ip" if ver == 4 else "ipv6"
        check(f"{prefix}src", addr(ver, cols[f"{prefix}src"][k], table), get(f"{fam}.src", layer.occ))
        check(f"{prefix}dst", addr(ver, cols[f"{prefix}dst"][k], table), get(f"{fam}.dst", layer.occ))
        ttl = get("ip.ttl", layer.occ) if ver == 4 else get("ipv6.hlim", layer.occ)
        check(f"{prefix}ttl", int(cols[f"{prefix}ttl"][k]), num(ttl))
        if ver == 6 and layer.upper in UPPER:
            check(f"{prefix}proto", int(cols[f"{prefix}proto"][k]), UPPER[layer.upper])
        if ver == 4:
            proto, ipid = get("ip.proto", layer.occ), get("ip.id", layer.occ)
            check(f"{prefix}proto", int(cols[f"{prefix}proto"][k]), num(proto))
            check(f"{prefix}ipid", int(cols[f"{prefix}ipid"][k]), num(ipid))
        if layer.transport:
            sport = get(f"{layer.transport}.srcport", layer.t_occ)
            dport = get(f"{layer.transport}.dstport", layer.t_occ)
            check(f"{prefix}sport", int(cols[f"{prefix}sport"][k]), num(sport))
            check(f"{prefix}dport", int(cols[f"{prefix}dport"][k]), num(dport))

    check_layer("o_", layers[0] if layers else None)
    if exclude != "deeper" and len(layers) > depth + 1:
        problems.append(f"tshark decodes {len(layers)} IP layers, tracer depth {depth}")
    if exclude == "inner":
        return problems
    inner = layers[depth] if depth < len(layers) else None
    check_layer("i_", inner)
    if depth:
        check("encap", ENCAP_NAMES[int(cols["encap"][k])], first_tunnel(protocols))
        tunnel = ENCAP_NAMES[int(cols["encap"][k])]
        if tunnel in ("vxlan", "geneve"):
            vni = get(f"{tunnel}.vni", 0)
            check("vni", int(cols["vni"][k]), num(vni))
    if inner is not None and inner.transport == "tcp" and int(cols["i_ver"][k]) == inner.ver:
        fl, seq, ack = (get(f, inner.t_occ) for f in ("tcp.flags", "tcp.seq_raw", "tcp.ack_raw"))
        check("tcp_flags", int(cols["tcp_flags"][k]), None if fl is None else num(fl) & 0xFF)
        check("tcp_seq", int(cols["tcp_seq"][k]), num(seq))
        check("tcp_ack", int(cols["tcp_ack"][k]), num(ack))
    if inner is not None and len(layers) == depth + 1:
        fam = "icmp" if inner.ver == 4 else "icmpv6"
        if fam in protocols and get(f"{fam}.type", 0) is not None:
            check("icmp_type", int(cols["icmp_type"][k]), num(get(f"{fam}.type", 0)))
            check("icmp_code", int(cols["icmp_code"][k]), num(get(f"{fam}.code", 0)))
            ident = get("icmp.ident" if inner.ver == 4 else "icmpv6.echo.identifier", 0)
            seq = get("icmp.seq" if inner.ver == 4 else "icmpv6.echo.sequence_number", 0)
            if ident is not None and seq is not None:  # echo request / reply only
                check("icmp_id", int(cols["icmp_id"][k]), num(ident))
                check("icmp_seq", int(cols["icmp_seq"][k]), num(seq))
    return problems


def capture_files() -> list[Path]:
    if not PUBLIC.is_dir():
        return []
    names = sorted(p for p in PUBLIC.rglob("*") if p.is_file() and ".pcap" in p.name)
    return [p for p in names if not p.name.startswith("corrupt-")]


@pytest.mark.shared
@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (CI installs it: apt-get install tshark)")
@pytest.mark.parametrize("path", capture_files(), ids=lambda p: p.name)
def test_fields_agree_with_tshark(path: Path, public_captures: Path) -> None:
    """Outer and innermost IP fields, ports, VNI, TCP and ICMP fields equal tshark's for every frame."""
    assert_agrees(path)


@pytest.mark.shared
@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (CI installs it: apt-get install tshark)")
@pytest.mark.parametrize("hops", [False, True], ids=["eth0-cni0", "every-hop"])
def test_generated_k8s_overlay_agrees_with_tshark(hops: bool, shared_dir: Path, tmp_path: Path) -> None:
    """The Kubernetes overlay mix (flannel VXLAN on 8472, Calico IPIP, raw-IP tunl0, veth/cni0 hops) written by
    ../shared/tools/gen_overlay_pcap.py decodes exactly as tshark decodes it."""
    out = tmp_path / ("hops.pcapng" if hops else "overlay.pcapng")
    args = ["--pcapng", "--hops"] if hops else ["--pcapng"]
    subprocess.run([sys.executable, str(shared_dir / "tools" / "gen_overlay_pcap.py"), "2000", str(out),
                    "--seed", "7", *args], check=True, capture_output=True, timeout=120)
    assert_agrees(out)


def assert_agrees(path: Path) -> None:
    frames = read_frames(path)
    rows = tshark_rows(path)
    assert len(rows) == len(frames), f"walker read {len(frames)} frames, tshark {len(rows)}"
    present = [k for k, f in enumerate(frames) if f is not None]
    if not present:
        pytest.skip("no packet records")
    data = [frames[k] for k in present]
    buf = np.frombuffer(b"".join(f for f, _ in data), np.uint8)
    caplens = np.array([len(f) for f, _ in data], np.uint32)
    offsets = np.concatenate([[0], np.cumsum(caplens[:-1], dtype=np.int64)]).astype(np.int64)
    table = Addr6Table()
    cols = decode_frames(buf, offsets, caplens, np.array([lt for _, lt in data], np.uint16),
                         vxlan_ports=frozenset(DEFAULT_VXLAN_PORTS), addr6=table)
    exclude = EXCLUDE.get(path.name, (None, ""))[0]
    problems = []
    for j, k in enumerate(present):
        for p in compare_frame(rows[k], cols, j, table, exclude):
            problems.append(f"frame {k + 1} ({':'.join(rows[k]['frame.protocols'])}): {p}")
    assert not problems, "\n".join(problems[:20])
