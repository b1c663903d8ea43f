"""One interface's AF_PACKET socket with a TPACKET_V3 memory-mapped receive ring.

The kernel fills fixed-size blocks with packets and hands us a whole block at a time (a block is retired when
full or after ``retire_ms``), so the per-packet cost in Python is a header unpack and a slice, with no system call.
A classic BPF program (``tracer.capture.live_bpf``) is attached before the socket is bound, so nothing unfiltered
is ever queued. ``stats()`` reads PACKET_STATISTICS: packets the kernel passed the filter and packets it dropped
because the ring was full (the counters reset on every read, so they are accumulated here).

Linux ABI used (include/uapi/linux/if_packet.h): ``tpacket_req3``, ``tpacket_block_desc`` with
``tpacket_hdr_v1``, ``tpacket3_hdr`` followed by ``sockaddr_ll``.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import select
import socket
import struct
from collections.abc import Callable, Iterator

from tracer.errors import CaptureError

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION = 5, 6, 10
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26
SIOCGIFHWADDR = 0x8927
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 0x10, 0x40
PACKET_OUTGOING = 4
TPACKET3_HDRLEN = 48            # TPACKET_ALIGN(sizeof(struct tpacket3_hdr)): where sockaddr_ll starts

# ARPHRD_* of the interface → pcap LINKTYPE: Ethernet-like links keep their header; tunnels have none.
ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_NONE, ARPHRD_TUNNEL, ARPHRD_IPGRE = 1, 772, 0xFFFE, 768, 778
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101
_LINKTYPES = {ARPHRD_ETHER: LINKTYPE_ETHERNET, ARPHRD_LOOPBACK: LINKTYPE_ETHERNET, ARPHRD_NONE: LINKTYPE_RAW,
              ARPHRD_TUNNEL: LINKTYPE_RAW, ARPHRD_IPGRE: LINKTYPE_RAW}

_BLOCK_HDR = struct.Struct("<III")           # block_status, num_pkts, offset_to_first_pkt (at offset 8)
_PKT_HDR = struct.Struct("<IIIIIIHH")        # next_offset, sec, nsec, snaplen, len, status, mac, net
_VLAN = struct.Struct("<IH")                 # tp_vlan_tci, tp_vlan_tpid (at offset 32)
_STATS = struct.Struct("<III")               # tpacket_stats_v3: tp_packets, tp_drops, tp_freeze_q_cnt
_EPB_HEAD = struct.Struct("<IIIIIII")        # pcapng EPB: type, total length, iface, ts high, ts low, caplen, len
_U32 = struct.Struct("<I")
# Padding to 4 bytes, then the epb_flags option (direction: 1 inbound, 2 outbound) and opt_endofopt.
_PAD_IN = [b"\0" * p + struct.pack("<HHI", 2, 4, 1) + b"\0\0\0\0" for p in range(4)]
_PAD_OUT = [b"\0" * p + struct.pack("<HHI", 2, 4, 2) + b"\0\0\0\0" for p in range(4)]


class PermissionDenied(CaptureError):
    """No CAP_NET_RAW: the one-line message says how to get it."""


class UnknownInterface(CaptureError):
    """The interface does not exist in this network namespace."""


def permission_message() -> str:
    return ("live capture needs CAP_NET_RAW: run as root (sudo tracer live ...) or grant the capability "
            "with `sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f $(command -v python3))`")


def available_interfaces() -> list[str]:
    """Interface names in the current network namespace (what an unknown-interface error lists)."""
    try:
        return [name for _, name in socket.if_nameindex()]
    except OSError:
        return []


class PacketRing:
    """Capture on one interface through a TPACKET_V3 ring; ``read_block()`` yields a ready block's packets.

    ``bpf`` maps the interface's link type to a classic BPF program (``tracer.capture.live_bpf.compile_bpf``); it
    is attached before the socket is bound, so no unfiltered packet is ever queued."""

    def __init__(self, iface: str, *, bpf: Callable[[int], list[tuple[int, int, int, int]]] | None = None,
                 block_size: int = 1 << 20, block_count: int = 8, snaplen: int = 262144,
                 retire_ms: int = 20) -> None:
        self.iface = iface
        self.snaplen = snaplen
        self.received = 0
        self.dropped = 0
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)   # protocol 0: nothing queued yet
        except PermissionError:
            raise PermissionDenied(permission_message()) from None
        try:
            self._setup(bpf, block_size, block_count, retire_ms)
        except BaseException:
            self.close()
            raise

    def _setup(self, bpf, block_size: int, block_count: int, retire_ms: int) -> None:
        s = self.sock
        try:
            self.ifindex = socket.if_nametoindex(self.iface)
        except OSError:
            avail = ", ".join(available_interfaces()) or "none"
            raise UnknownInterface(f"no interface {self.iface!r} here; available: {avail}") from None
        self.linktype = self._linktype()
        s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        if bpf:
            # The program depends on the link type (raw-IP tunnels have no Ethernet header), known only now.
            self._attach(bpf(self.linktype))
        frame_size = 2048   # only a hint in V3 (packets are packed); must divide the block size
        req = struct.pack("<IIIIIII", block_size, block_count, frame_size, block_size // frame_size * block_count,
                          retire_ms, 0, 0)
        try:
            s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        except OSError as exc:
            raise CaptureError(f"{self.iface}: cannot set up the capture ring: {exc.strerror}") from None
        self.block_size, self.block_count = block_size, block_count
        self.map = mmap.mmap(s.fileno(), block_size * block_count, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.map)
        self.next_block = 0
        try:
            s.bind((self.iface, ETH_P_ALL))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                avail = ", ".join(available_interfaces()) or "none"
                raise UnknownInterface(f"no interface {self.iface!r} here; available: {avail}") from None
            raise CaptureError(f"{self.iface}: cannot bind: {exc.strerror}") from None
        s.setblocking(False)

    def _linktype(self) -> int:
        ifreq = struct.pack("16sH14s", self.iface.encode()[:15], 0, b"")
        try:
            res = fcntl.ioctl(self.sock.fileno(), SIOCGIFHWADDR, ifreq)
            hatype = struct.unpack_from("16sH", res)[1]
        except OSError:
            hatype = ARPHRD_ETHER
        return _LINKTYPES.get(hatype, LINKTYPE_ETHERNET)

    def _attach(self, bpf: list[tuple[int, int, int, int]]) -> None:
        insns = (ctypes.c_uint64 * len(bpf))()
        raw = b"".join(struct.pack("<HBBI", *i) for i in bpf)
        ctypes.memmove(insns, raw, len(raw))
        prog = struct.pack("HxxxxxxQ", len(bpf), ctypes.addressof(insns))   # struct sock_fprog
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)

    def fileno(self) -> int:
        return self.sock.fileno()

    def ready(self) -> bool:
        """Whether the next block is ours to read."""
        return _BLOCK_HDR.unpack_from(self.view, self.next_block * self.block_size + 8)[0] & TP_STATUS_USER != 0

    def read_block(self) -> Iterator[tuple[int, bytes, int, int]]:
        """Packets of the next ready block as ``(ts_ns, data, origlen, pkttype)``, then the block goes back to the
        kernel. Yields nothing when the block is not ready. Consume the iterator fully."""
        base = self.next_block * self.block_size
        view = self.view
        status, num, off = _BLOCK_HDR.unpack_from(view, base + 8)
        if not status & TP_STATUS_USER:
            return
        pos = base + off
        unpack = _PKT_HDR.unpack_from
        for _ in range(num):
            nxt, sec, nsec, caplen, length, pstatus, mac, _net = unpack(view, pos)
            start = pos + mac
            data = bytes(view[start:start + caplen])
            if pstatus & (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID) and len(data) >= 12:
                # The kernel moved the 802.1Q tag into the header; put it back where it was on the wire.
                tci, tpid = _VLAN.unpack_from(view, pos + 32)
                data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci & 0xFFFF) + data[12:]
                length += 4
            yield sec * 1_000_000_000 + nsec, data, length, view[pos + TPACKET3_HDRLEN + 10]
            if not nxt:
                break
            pos += nxt
        struct.pack_into("<I", view, base + 8, TP_STATUS_KERNEL)
        self.next_block = (self.next_block + 1) % self.block_count

    def read_block_epbs(self, parts: list, iface_id: int, ts_offset_ns: int = 0) -> int:
        """The next ready block's packets appended to ``parts`` as pcapng Enhanced Packet Blocks (pieces for one
        ``b"".join``), then the block goes back to the kernel; returns the number of packets (0: not ready).

        The fast path for a single ring: no per-packet tuple, one copy of the packet bytes (in the join)."""
        base = self.next_block * self.block_size
        view = self.view
        status, num, off = _BLOCK_HDR.unpack_from(view, base + 8)
        if not status & TP_STATUS_USER:
            return 0
        pos = base + off
        unpack = _PKT_HDR.unpack_from
        head = _EPB_HEAD.pack
        trailer = _U32.pack
        append = parts.append
        n = 0
        for _ in range(num):
            nxt, sec, nsec, caplen, length, pstatus, mac, _net = unpack(view, pos)
            if pstatus & (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID):
                # Rare: rebuild the tag through the generic path's rules.
                start = pos + mac
                data = bytes(view[start:start + caplen])
                tci, tpid = _VLAN.unpack_from(view, pos + 32)
                data = data[:12] + struct.pack("!HH", tpid or 0x8100, tci & 0xFFFF) + data[12:]
                caplen, length = len(data), length + 4
            else:
                data = view[pos + mac:pos + mac + caplen]
            pad = -caplen & 3
            total = 44 + caplen + pad
            ts = sec * 1_000_000_000 + nsec + ts_offset_ns
            append(head(6, total, iface_id, ts >> 32, ts & 0xFFFFFFFF, caplen, length))
            append(data)
            append(_PAD_OUT[pad] if view[pos + TPACKET3_HDRLEN + 10] == PACKET_OUTGOING else _PAD_IN[pad])
            append(trailer(total))
            n += 1
            if not nxt:
                break
            pos += nxt
        # The data views point into the ring: the caller joins ``parts`` before ``release_block()``.
        return n

    def release_block(self) -> None:
        """Hand the block read by ``read_block_epbs`` back to the kernel (after its parts were joined)."""
        struct.pack_into("<I", self.view, self.next_block * self.block_size + 8, TP_STATUS_KERNEL)
        self.next_block = (self.next_block + 1) % self.block_count

    def stats(self) -> tuple[int, int]:
        """(received, dropped) since the ring was opened, from the kernel's PACKET_STATISTICS."""
        try:
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
            packets, drops, _ = _STATS.unpack(raw)
            # tp_packets counts drops too (kernel: po->stats.stats3.tp_packets += tp_drops on read).
            self.received += packets
            self.dropped += drops
        except OSError:
            pass
        return self.received, self.dropped

    def close(self) -> None:
        view = getattr(self, "view", None)
        if view is not None:
            view.release()
            self.view = None
        m = getattr(self, "map", None)
        if m is not None:
            try:
                m.close()
            except BufferError:
                pass
            self.map = None
        try:
            self.sock.close()
        except OSError:
            pass


def wait_any(rings: list[PacketRing], timeout: float) -> list[PacketRing]:
    """The rings with a ready block, waiting up to ``timeout`` seconds with poll()."""
    ready = [r for r in rings if r.ready()]
    if ready:
        return ready
    poller = select.poll()
    by_fd = {}
    for r in rings:
        poller.register(r.fileno(), select.POLLIN | select.POLLERR)
        by_fd[r.fileno()] = r
    try:
        poller.poll(int(timeout * 1000))
    except InterruptedError:
        pass
    return [r for r in rings if r.ready()]

