"""A tiny capture walker, independent of tracer's readers, for the robustness tests.

``walk(data)`` finds the record/block boundaries of a classic pcap or pcapng byte string (gzip is
decompressed first) and says where each packet record ends, so a test can cut a file at any offset and
know, without asking tracer, how many complete packets lie before the cut. It stops at the first structural
anomaly (a header that does not fit, a block length that lies, an unknown magic) and records where, so
expectations are only drawn from the part of a file whose structure is unambiguous.

Formats: pcap (tcpdump.org "pcap savefile", magic a1b2c3d4 / a1b23c4d, either byte order);
pcapng (IETF draft-ietf-opsawg-pcapng: SHB 0x0A0D0D0A with byte-order magic 0x1A2B3C4D, packet blocks
EPB 6, SPB 3 and the obsolete PB 2; every block is ``type, total_length, body, total_length``).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",  # microsecond, little-endian on disk
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanosecond
    b"\xa1\xb2\x3c\x4d": ">",
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_PACKET_BLOCKS = {2, 3, 6}  # obsolete Packet Block, Simple Packet Block, Enhanced Packet Block
PCAPNG_CUSTOM_BLOCKS = {0x00000BAD, 0x40000BAD}  # tshark lists these as frames; they carry no packet
# libpcap refuses records above this (pcap-int.h MAXIMUM_SNAPLEN); a larger caplen is garbage, not a packet.
MAX_CAPLEN = 262144


@dataclass
class Walk:
    """What the walker found: the format, boundaries and packet ends, and where structure stopped making sense."""

    kind: str  # "pcap", "pcapng", "gzip+pcap", "gzip+pcapng", "empty", "unknown"
    data: bytes  # the (decompressed) capture bytes the offsets refer to
    boundaries: list[int] = field(default_factory=list)  # offsets where a header/record/block ends
    packet_ends: list[int] = field(default_factory=list)  # end offset of every complete packet record
    custom_blocks: int = 0  # pcapng Custom Blocks seen (tshark counts them as frames, tracer must not)
    valid_until: int = 0  # bytes up to here are structurally sound
    anomaly: str | None = None  # why the walk stopped before len(data), if it did

    def packets_before(self, cut: int) -> int:
        """Complete packet records wholly inside ``data[:cut]`` (only meaningful for cut <= valid_until)."""
        return sum(1 for end in self.packet_ends if end <= cut)


def gunzip_prefix(raw: bytes) -> bytes:
    """Decompress as much of a (possibly truncated) gzip stream as is available."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return d.decompress(raw)
    except zlib.error:
        return b""


def walk(raw: bytes) -> Walk:
    """Walk ``raw`` and report its structure; never raises."""
    if raw[:2] == b"\x1f\x8b":
        inner = walk(gunzip_prefix(raw))
        inner.kind = "gzip+" + inner.kind
        return inner
    if not raw:
        return Walk("empty", raw, anomaly="empty")
    if raw[:4] in PCAP_MAGICS:
        return _walk_pcap(raw)
    if len(raw) >= 4 and struct.unpack("<I", raw[:4])[0] == PCAPNG_SHB:
        return _walk_pcapng(raw)
    return Walk("unknown", raw, anomaly="unknown magic")


def _walk_pcap(raw: bytes) -> Walk:
    w = Walk("pcap", raw)
    bo = PCAP_MAGICS[raw[:4]]
    if len(raw) < 24:
        w.anomaly = "file header cut"
        return w
    major, _minor = struct.unpack(bo + "HH", raw[4:8])
    if major != 2:
        w.anomaly = f"version {major}"
        return w
    pos = 24
    w.boundaries.append(pos)
    w.valid_until = pos
    while pos < len(raw):
        if pos + 16 > len(raw):
            w.anomaly = "record header cut"
            return w
        caplen = struct.unpack(bo + "I", raw[pos + 8 : pos + 12])[0]
        if caplen > MAX_CAPLEN:
            w.anomaly = f"caplen {caplen}"
            return w
        end = pos + 16 + caplen
        if end > len(raw):
            w.anomaly = "record data cut"
            return w
        w.boundaries.append(end)
        w.packet_ends.append(end)
        w.valid_until = pos = end
    return w


def _walk_pcapng(raw: bytes) -> Walk:
    w = Walk("pcapng", raw)
    bo = "<"
    pos = 0
    while pos < len(raw):
        if pos + 12 > len(raw):
            w.anomaly = "block header cut"
            return w
        btype = struct.unpack("<I", raw[pos : pos + 4])[0]
        if btype == PCAPNG_SHB:
            if pos + 12 > len(raw):
                w.anomaly = "SHB cut"
                return w
            magic = raw[pos + 8 : pos + 12]
            if magic == b"\x4d\x3c\x2b\x1a":
                bo = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                bo = ">"
            else:
                w.anomaly = "bad byte-order magic"
                return w
        else:
            btype = struct.unpack(bo + "I", raw[pos : pos + 4])[0]
        length = struct.unpack(bo + "I", raw[pos + 4 : pos + 8])[0]
        if length < 12 or length % 4:
            w.anomaly = f"block length {length}"
            return w
        end = pos + length
        if end > len(raw):
            w.anomaly = "block cut"
            return w
        if struct.unpack(bo + "I", raw[end - 4 : end])[0] != length:
            w.anomaly = "trailing length differs"
            return w
        w.boundaries.append(end)
        if btype in PCAPNG_PACKET_BLOCKS:
            w.packet_ends.append(end)
        elif btype in PCAPNG_CUSTOM_BLOCKS:
            w.custom_blocks += 1
        w.valid_until = pos = end
    return w
