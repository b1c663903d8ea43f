"""Full dissection of one packet with scapy, converted to tracer's own frozen tree with byte spans.

``dissect(frame, linktype)`` returns a ``Dissection``: the layers outermost first, each a ``LayerNode`` with its
byte span in the frame and its encapsulation ``level`` (0 = outer; +1 after each VXLAN/Geneve/GRE header or
IP-in-IP), each field a ``FieldNode`` with its value as plain text and the bytes that hold it (for a bit field,
the byte or bytes containing its bits) so a hex view can highlight it. ``Dissector`` caches results by
(source key, row); ``hexdump_rows`` formats bytes for a hex pane with an inert ASCII column.

Rules:
- packet bytes are hostile: dissection never raises. What scapy could not dissect becomes a layer named
  ``"<Layer> (truncated)"`` / ``"<Layer> (malformed)"`` with the fields that fit, then a ``"Malformed"`` layer with
  the bytes left; an unknown link type is one ``Raw`` layer.
- values are plain strings, never markup (the UI escapes them); long values are cut to ``MAX_VALUE`` characters.
- the tree agrees with the packet index: UDP to a configured VXLAN port is VXLAN only when the index would call
  it VXLAN (I flag set, plausible inner Ethernet frame) and is then read as RFC 7348 + Ethernet whatever its
  reserved bits say; an IPv6 payload length or UDP length of 0 (Linux BIG TCP) runs to the end of the capture.
- checksums are shown as captured, never judged (veth captures carry partial, offloaded checksums).
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from tracer.decode import bindings
from tracer.decode.bindings import GENEVE, GRE, IP, UDP, VXLAN, CookedLinux, CookedLinuxV2, Ether, IPv6
from tracer.decode.bindings import Loopback, LoopbackOpenBSD, VXLANPlain
from tracer.decode.fields import VXLAN_INNER_ETHERTYPES

from scapy.fields import ConditionalField, EnumField  # isort: skip  (after bindings: scapy is configured there)
from scapy.packet import NoPayload, Packet, Padding, Raw  # isort: skip

_ABSENT = {"[]", "b''", "''", "None", ""}  # how scapy shows a zero-length field that is not on the wire
MAX_VALUE = 240  # characters of one field value (a 64 KiB payload's repr would drown the tree)
MAX_LAYERS = 64  # a crafted frame can nest tunnels hundreds deep; past this the rest is one Raw layer

# LINKTYPE_ values (tcpdump.org/linktypes.html) → the scapy class of the first header; 101/12/14 (raw IP) pick
# IPv4 or IPv6 from the version nibble.
_LINK: dict[int, type[Packet]] = {1: Ether, 113: CookedLinux, 276: CookedLinuxV2, 0: Loopback, 108: LoopbackOpenBSD,
                                  228: IP, 229: IPv6}
_RAW_IP = (101, 12, 14)
# Headers whose payload is one encapsulation level deeper (the header itself belongs to the outer level).
_TUNNELS = (VXLAN, VXLANPlain, GENEVE, GRE)


@dataclass(frozen=True)
class FieldNode:
    """One field: ``value`` as plain text; ``frame[offset:offset + length]`` are the bytes that hold it."""

    name: str
    value: str
    offset: int
    length: int


@dataclass(frozen=True)
class LayerNode:
    """One header (or payload): its bytes ``frame[offset:offset + length]``, encapsulation ``level``, fields."""

    name: str
    offset: int
    length: int
    level: int
    fields: tuple[FieldNode, ...]


@dataclass(frozen=True)
class Dissection:
    """The layers of one frame, outermost first; ``malformed`` when part of it could not be dissected."""

    layers: tuple[LayerNode, ...]
    frame_len: int = 0
    malformed: bool = False

    @property
    def levels(self) -> int:
        """How many encapsulation levels the frame shows (1 when not encapsulated)."""
        return 1 + max((layer.level for layer in self.layers), default=0)


def dissect(frame: bytes, linktype: int, *, vxlan_ports: Iterable[int] = bindings.DEFAULT_VXLAN_PORTS) -> Dissection:
    """Dissect one frame of link type ``linktype`` (LINKTYPE_ value). Never raises on packet bytes."""
    frame = bytes(frame)
    ports = frozenset(int(p) for p in vxlan_ports)
    bindings.bind_vxlan_ports(ports)
    first = _first_class(frame, int(linktype))
    if first is None or not frame:
        return Dissection((_raw_node("Raw", frame, 0, len(frame), 0),), len(frame), False)
    try:
        pkt = first(frame)
    except Exception:  # noqa: BLE001 - scapy raising on hostile bytes: show what fits of the first header
        pkt = None
    walker = _Walker(frame, ports)
    try:
        if pkt is None:
            walker.partial(first, 0, 0)
        else:
            walker.walk(pkt)
    except Exception:  # noqa: BLE001 - a scapy surprise on hostile bytes: keep the layers done, show the rest
        walker.rest_as_malformed()
    return Dissection(tuple(walker.layers), len(frame), walker.malformed)


def _first_class(frame: bytes, linktype: int) -> type[Packet] | None:
    if linktype in _RAW_IP:
        nibble = frame[0] >> 4 if frame else 0
        return {4: IP, 6: IPv6}.get(nibble)
    return _LINK.get(linktype)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def _raw_node(name: str, frame: bytes, offset: int, length: int, level: int) -> LayerNode:
    data = frame[offset : offset + length]
    return LayerNode(name, offset, len(data), level, (FieldNode("load", _text(repr(data)), offset, len(data)),))


class _Walker:
    """Turns a dissected scapy chain into LayerNodes, finding each layer's and each field's bytes in the frame."""

    def __init__(self, frame: bytes, vxlan_ports: frozenset[int]) -> None:
        self.frame = frame
        self.vxlan_ports = vxlan_ports
        self.layers: list[LayerNode] = []
        self.malformed = False

    def walk(self, pkt: Packet) -> None:
        frame, pos, level = self.frame, 0, 0
        layer: Packet | None = pkt
        while layer is not None and not isinstance(layer, NoPayload) and pos < len(frame):
            if len(self.layers) >= MAX_LAYERS:
                self.layers.append(_raw_node("Raw (not dissected: too many layers)", frame, pos, len(frame) - pos,
                                             level))
                return
            under = layer.underlayer
            if isinstance(layer, Raw) and not isinstance(layer, Padding) and under is not None:
                expected = _expected_class(under, layer)
                if expected is not None:  # scapy gave up on this header: show what fits of it
                    self.partial(expected, pos, level)
                    return
            if isinstance(layer, VXLAN) and not self._plausible_vxlan(layer, pos):
                span = self._span(layer)  # ordinary UDP on a VXLAN port: its payload, then any padding
                self.layers.append(_raw_node("Raw", frame, pos, span, level))
                if pos + span < len(frame):
                    self.layers.append(_raw_node("Padding", frame, pos + span, len(frame) - pos - span, level))
                return
            if isinstance(layer, VXLAN) and self._reread_vxlan(layer):
                layer = VXLANPlain(frame[pos : pos + self._span(layer)], _underlayer=layer.underlayer)
            head = layer.raw_packet_cache
            if head is None:
                head = frame[pos : pos + self._header_len(layer)]
            if frame[pos : pos + len(head)] != head:
                # a layer whose dissection rewrote its bytes (pre_dissect): its spans would be guesses, so the
                # rest is shown as bytes rather than as fields pointing at the wrong place
                self.malformed = True
                self.layers.append(_raw_node(f"{layer.name} (undecoded)", frame, pos, len(frame) - pos, level))
                return
            fields, _ = _fields(layer, head, pos)
            name = "Padding" if isinstance(layer, Padding) else str(layer.name)
            self.layers.append(LayerNode(name, pos, len(head), level, tuple(fields)))
            nxt = self._redissect(layer, pos, len(head)) or layer.payload
            pos += len(head)
            if isinstance(layer, _TUNNELS) or (
                isinstance(layer, (IP, IPv6)) and isinstance(nxt, (IP, IPv6))
            ):
                level += 1
            layer = nxt
        if pos < len(frame):  # bytes scapy left unclaimed (e.g. after a payload it could not split)
            self.layers.append(_raw_node("Trailing bytes", frame, pos, len(frame) - pos, level))

    def rest_as_malformed(self) -> None:
        """After an unexpected failure: the bytes after the last complete layer become one Malformed layer."""
        self.malformed = True
        end = self.layers[-1].offset + self.layers[-1].length if self.layers else 0
        level = self.layers[-1].level if self.layers else 0
        if end < len(self.frame):
            self.layers.append(_raw_node("Malformed", self.frame, end, len(self.frame) - end, level))

    def _redissect(self, layer: Packet, start: int, head_len: int) -> Packet | None:
        """The payload as the index reads it, where scapy reads it otherwise; None to keep scapy's.

        IPv6 payload length 0 and UDP length 0 (Linux BIG TCP / GSO super-frames, RFC 2675 jumbograms): the
        packet runs to the end of the capture, where scapy would make all or the last 8 bytes of it padding.
        """
        if isinstance(layer, IPv6) and layer.plen == 0 and isinstance(layer.payload, (Padding, NoPayload)):
            cls = _expected_class(layer, Raw(self.frame[start + head_len :]))
        elif isinstance(layer, UDP) and layer.len == 0 and start + self._span(layer) > start + head_len:
            cls = _expected_class(layer, Raw(self.frame[start + head_len :])) or Raw
        else:
            return None
        data = self.frame[start + head_len : start + self._span(layer)]
        if cls is None or not data:
            return None
        try:
            return cls(data, _underlayer=layer)
        except Exception:  # noqa: BLE001 - the walk then shows what fits of it
            return Raw(data, _underlayer=layer)

    def partial(self, cls: type[Packet], pos: int, level: int) -> None:
        """Show the fields of ``cls`` that fit in ``frame[pos:]``, then the rest as a Malformed layer."""
        self.malformed = True
        data = self.frame[pos:]
        try:
            proto = cls()
            fields, used = _fields(proto, data, pos, stop_on_error=True)
            name = str(proto.name)
        except Exception:  # noqa: BLE001 - even an empty instance failed: nothing but the bytes
            fields, used, name = [], 0, getattr(cls, "__name__", "header")
        if fields:
            short = used >= len(data) or len(data) < _min_len(cls)
            self.layers.append(LayerNode(f"{name} ({'truncated' if short else 'malformed'})", pos, used, level,
                                         tuple(fields)))
        if used < len(data):
            self.layers.append(_raw_node("Malformed", self.frame, pos + used, len(data) - used, level))

    def _plausible_vxlan(self, layer: VXLAN, pos: int) -> bool:
        """VXLAN where the index says VXLAN: UDP destination port configured, I flag (0x08) set, and an
        IPv4/IPv6/ARP/VLAN inner frame. scapy also binds source ports and other destination ports; of those only
        its VXLAN-GPE/NSH/Cisco ACI ports keep scapy's view (the index calls them plain UDP, their headers differ).
        """
        udp = layer.underlayer
        if not isinstance(udp, UDP):
            return True
        if udp.dport not in self.vxlan_ports:
            return udp.dport in bindings.SCAPY_ONLY_VXLAN_PORTS
        head = self.frame[pos : pos + 22]
        if not head or not head[0] & 0x08:
            return False
        if len(head) < 22:  # cut by the snap length: a VXLAN header whose inner frame was not captured
            return True
        return struct.unpack("!H", head[20:22])[0] in VXLAN_INNER_ETHERTYPES

    def _reread_vxlan(self, layer: VXLAN) -> bool:
        """On a configured port, scapy's reading must be the RFC 7348 one: 8 bytes, then Ethernet."""
        udp = layer.underlayer
        if not isinstance(udp, UDP) or udp.dport not in self.vxlan_ports:
            return False
        head = layer.raw_packet_cache
        return head is None or len(head) != 8 or not isinstance(layer.payload, (Ether, NoPayload))

    def _span(self, layer: Packet) -> int:
        """Bytes scapy handed to ``layer`` (its header and payload, without the padding outer layers cut off)."""
        original = getattr(layer, "original", None)
        return len(original) if original is not None else len(self.frame)

    @staticmethod
    def _header_len(layer: Packet) -> int:
        try:
            return max(0, len(bytes(layer)) - len(bytes(layer.payload)))
        except Exception:  # noqa: BLE001
            return 0


def _expected_class(under: Packet, raw: Raw) -> type[Packet] | None:
    """The class ``under`` would have dissected its payload as, when that is a real header (scapy fell back)."""
    try:
        cls = under.guess_payload_class(bytes(raw.load))
    except Exception:  # noqa: BLE001
        return None
    if cls is None or not isinstance(cls, type) or issubclass(cls, (Raw, Padding)):
        return None
    return cls


def _min_len(cls: type[Packet]) -> int:
    try:
        return len(bytes(cls()))
    except Exception:  # noqa: BLE001
        return 0


def _fields(layer: Packet, head: bytes, base: int, *, stop_on_error: bool = False) -> tuple[list[FieldNode], int]:
    """Walk ``layer.fields_desc`` over ``head`` (the header bytes at frame offset ``base``) as scapy dissects it.

    Returns the fields with their byte spans and how many bytes they used. Each ``getfield`` consumes bytes, or
    bits for bit fields (scapy then passes ``(bytes, bits used in the first byte)``), so a field's span is the
    difference of what is left before and after it.
    """
    out: list[FieldNode] = []
    rest: Any = head
    total = len(head)
    for fld in layer.fields_desc:
        try:
            if isinstance(fld, ConditionalField) and not fld._evalcond(layer):
                continue
            before = rest
            rest, value = fld.getfield(layer, rest)
            if stop_on_error:  # a bare instance: later length/condition lambdas read the fields set so far
                layer.fields[fld.name] = value
        except Exception:  # noqa: BLE001 - bytes ran out or are nonsense for this field: stop here
            break
        start_bit = _bit_pos(total, before)
        end_bit = _bit_pos(total, rest)
        offset = start_bit // 8
        length = max(0, (end_bit + 7) // 8 - offset)
        elements = _elements(value, length)
        if elements is not None:  # Geneve/IP options: one node per option, each with its own bytes
            at = base + offset
            for k, (element, size) in enumerate(elements):
                out.append(FieldNode(f"{fld.name}[{k}]", _text(_summary(element)), at, size))
                at += size
            continue
        shown = _shown(fld, layer, value)
        if length == 0 and shown in _ABSENT:  # IP/TCP "options: []", ICMP "unused: b''": nothing on the wire
            continue
        out.append(FieldNode(str(fld.name), _text(shown), base + offset, length))
    used = (_bit_pos(total, rest) + 7) // 8
    return out, min(used, total)


# Fields people compare with numbers they know (tcpdump, tshark and kubectl print ports and VNIs in decimal);
# scapy would show service names (``http_alt``) and hex VNIs (``0x1``).
_DECIMAL_FIELDS = {"sport", "dport", "vni"}


def _elements(value: Any, length: int) -> list[tuple[Packet, int]] | None:
    """A list field of packets split into (element, byte length), when the elements' bytes add up to the field."""
    if not isinstance(value, list) or not value or not all(isinstance(v, Packet) for v in value):
        return None
    sizes = []
    for element in value:
        raw = element.raw_packet_cache  # the bytes it was dissected from (``original`` runs to the list's end)
        try:
            sizes.append(len(raw) if raw is not None and not element.payload else len(bytes(element)))
        except Exception:  # noqa: BLE001
            return None
    return list(zip(value, sizes)) if sum(sizes) == length else None


def _summary(element: Packet) -> str:
    """``classid=Linux type=0x1 length=4 data=…``: one option's fields on one line."""
    parts = []
    for fld in element.fields_desc:
        try:
            parts.append(f"{fld.name}={_shown(fld, element, element.getfieldval(fld.name))}")
        except Exception:  # noqa: BLE001
            continue
    return " ".join(parts) or str(element.name)


def _shown(fld: Any, layer: Packet, value: Any) -> str:
    """scapy's text for a field, with the number kept next to names (``udp (17)``, ``IPv4 (0x0800)``)."""
    if fld.name in _DECIMAL_FIELDS and isinstance(value, int):
        return str(int(value))
    try:
        shown = str(fld.i2repr(layer, value))
    except Exception:  # noqa: BLE001
        shown = repr(value)
    if not shown.strip():  # scapy prints "no flags set" as ""
        try:
            return f"0x{int(value):02x}"
        except (TypeError, ValueError):
            return shown
    if isinstance(value, int) and not isinstance(value, bool):
        number = f"0x{int(value):04x}" if type(fld).__name__.startswith("X") else str(int(value))
        if isinstance(fld, EnumField) and shown != number and shown != str(int(value)):
            return f"{shown} ({number})"
    return shown


def _bit_pos(total: int, rest: Any) -> int:
    if isinstance(rest, tuple):
        data, bits = rest
        return (total - len(data)) * 8 + int(bits)
    return (total - len(rest)) * 8


# ---------------------------------------------------------------- the cache
class Dissector:
    """Dissections cached by (source key, row), least recently used first out; safe to share between threads."""

    def __init__(self, *, vxlan_ports: Iterable[int] = bindings.DEFAULT_VXLAN_PORTS, maxsize: int = 256) -> None:
        self.vxlan_ports = tuple(vxlan_ports)
        self.maxsize = maxsize
        self._cache: OrderedDict[tuple[Hashable, int], Dissection] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, source_key: Hashable, row: int, frame: bytes | Callable[[], bytes], linktype: int) -> Dissection:
        """The dissection of ``row`` of ``source_key``; ``frame`` may be a loader called only on a cache miss."""
        key = (source_key, int(row))
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        data = frame() if callable(frame) else frame
        result = dissect(data, linktype, vxlan_ports=self.vxlan_ports)
        with self._lock:
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return result

    def row(self, index: Any, row: int, source_key: Hashable | None = None) -> Dissection:
        """Dissect ``row`` of a ``PacketIndex`` (frame read from disk, link type from its ``Source``)."""
        src = index.sources[int(index["source"][row])]
        key = source_key if source_key is not None else tuple(s.file for s in index.sources)
        return self.get(key, row, lambda: index.frame(row), int(src.linktype))

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


# ---------------------------------------------------------------- hex pane
def hexdump_rows(frame: bytes, width: int = 16) -> list[tuple[str, str, str]]:
    """(offset, hex, ascii) per ``width`` bytes, all plain text: offset in hex (at least 4 digits), bytes as
    two-digit hex separated by one space (byte k of the row at column 3k), and an ASCII column where every byte
    outside 0x20..0x7e (control characters, ESC, DEL, bytes >= 0x7f) is '.', so nothing reaches the terminal.
    """
    width = max(1, int(width))
    frame = bytes(frame)
    digits = max(4, len(f"{max(len(frame) - 1, 0):x}"))
    # one C pass each for the whole frame, then string slices per row (80 KB BIG TCP frames: 5,000 rows)
    text = frame.translate(_ASCII).decode("ascii")
    hexes = frame.hex(" ")
    return [(f"{start:0{digits}x}", hexes[3 * start : 3 * min(start + width, len(frame)) - 1],
             text[start : start + width]) for start in range(0, len(frame), width)]


# byte → itself when printable ASCII (0x20..0x7e), else "."
_ASCII = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))
