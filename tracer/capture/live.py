"""Live capture on one or many interfaces (in one or many network namespaces) into a pcapng spool.

``LiveCapture(points, spool=...)`` opens one ``PacketRing`` (AF_PACKET, TPACKET_V3, kernel BPF) per capture point,
each inside its network namespace when it has one (a socket stays bound to the namespace it was made in), then
``run(stop)`` moves whole kernel blocks into the spool until ``stop`` is set. Each round's packets from all rings
are put in timestamp order, so one packet crossing veth → cni0 → flannel.1 → eth0 appears in that order.

The spool is a pcapng file with one IDB per point (``if_name`` = ``NODE/IFACE``), read by the same index as
``tracer open`` (a growing file). With ``ring_bytes`` the spool rotates through ``SEGMENTS`` files of
``ring_bytes / SEGMENTS`` each, deleting the oldest, so disk use stays bounded under a flood; memory is bounded
by the kernel rings (``block_size * block_count`` per point) because nothing is kept in Python between rounds.
``close()`` writes the kernel's counters into each section (ISB ``isb_ifrecv``/``isb_ifdrop``) and, for
``write_path``, publishes the capture by rename (several segments are concatenated into a multi-section pcapng
first), so the target is either the old file or a complete new one.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tracer.capture.live_ring import PacketRing, wait_any
from tracer.capture.pcapng_writer import (DIR_INBOUND, DIR_OUTBOUND, Interface, PcapngFile, create_fresh,
                                          packet_block)
from tracer.errors import CaptureError

SEGMENTS = 4
MIN_SEGMENT = 256 * 1024
STATS_EVERY = 0.5          # seconds between PACKET_STATISTICS reads
RETIRE_MS = 20             # the kernel hands over a partly filled block after this long
# Rings hand over blocks independently, so a packet seen on veth can arrive after the same packet seen on cni0.
# Packets are held this long and written in timestamp order (several points only).
REORDER_NS = (3 * RETIRE_MS + 20) * 1_000_000
PACKET_OUTGOING = 4
WRITE_CHUNK = 512          # packets per write in the multi-point path (rotation is checked between writes)


@dataclass(frozen=True)
class CapturePoint:
    """Where to capture: an interface, the node it belongs to, and its network namespace (None: ours)."""

    iface: str
    node: str
    netns: str | None = None
    label: str | None = None       # a point name other than NODE/IFACE (a pod's own eth0: "pod:NS/NAME")
    ts_offset_ns: int = 0          # added to every timestamp (the lab simulates a node's clock skew with it)

    @property
    def name(self) -> str:
        return self.label or f"{self.node}/{self.iface}"


@dataclass
class PointStats:
    point: str
    received: int = 0      # packets the kernel passed through the filter (captured + dropped)
    dropped: int = 0       # dropped by the kernel because the ring was full
    captured: int = 0      # written to the spool


def _in_netns(netns: str | None, fn: Callable):
    if netns is None:
        return fn()
    from pyroute2 import netns as pnetns   # only when a namespace is named

    if not os.path.exists(os.path.join("/run/netns", netns)):
        raise CaptureError(f"no network namespace {netns!r} (see `ip netns list`)")
    pnetns.pushns(netns)
    try:
        return fn()
    finally:
        pnetns.popns()


class LiveCapture:
    """Capture ``points`` into the spool at ``spool`` (a path; segments get ``.NNNN`` appended when rotating)."""

    def __init__(self, points: Sequence[CapturePoint], *, spool: str, bpf: str | None = None,
                 ring_bytes: int | None = None, snaplen: int = 262144, buffer_bytes: int = 8 << 20,
                 write_path: str | None = None, split_dir: str | None = None) -> None:
        if not points:
            raise CaptureError("no interface to capture on")
        names = [p.name for p in points]
        if len(set(names)) != len(names):
            raise CaptureError("the same capture point is given twice")
        self.points = list(points)
        self.spool = spool
        self.bpf = bpf
        self.snaplen = snaplen
        self.buffer_bytes = max(buffer_bytes, 1 << 20)
        self.write_path = write_path
        self.split_dir = split_dir            # also write one file per point there: NODE__IFACE.pcapng
        self._split: list[PcapngFile] = []
        self.segment_bytes = max(ring_bytes // SEGMENTS, MIN_SEGMENT) if ring_bytes else None
        # A kernel block is written whole, so a segment can overshoot by one block: keep blocks a quarter of a
        # segment at most (64 KB .. 1 MB, a power of two, as the ring requires page multiples).
        self.block_size = 1 << 20
        while self.segment_bytes and self.block_size > 64 * 1024 and self.block_size * 4 > self.segment_bytes:
            self.block_size >>= 1
        self.rings: list[PacketRing] = []
        self.stats = [PointStats(p.name) for p in self.points]
        self.segments: list[str] = []          # spool files present, oldest first
        self.segment_serial = 0
        self.deleted_segments = 0
        self.started_ns: int | None = None
        self.error: BaseException | None = None
        self._file: PcapngFile | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._held: list[tuple] = []

    # ----- opening ----------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Open every ring (raising PermissionDenied / UnknownInterface / FilterError) and the first segment."""
        from tracer.capture.live_bpf import compile_bpf

        programs: dict[int, list] = {}

        def program(linktype: int) -> list:
            if linktype not in programs:
                programs[linktype] = compile_bpf(self.bpf, linktype, self.snaplen)
            return programs[linktype]

        try:
            for p in self.points:
                def make(p=p) -> PacketRing:
                    return PacketRing(p.iface, bpf=program if self.bpf else None, block_size=self.block_size,
                                      block_count=max(self.buffer_bytes // self.block_size, 2), snaplen=self.snaplen)
                self.rings.append(_in_netns(p.netns, make))
        except BaseException:
            for r in self.rings:
                r.close()
            self.rings = []
            raise
        self.started_ns = time.time_ns()
        self._interfaces = [Interface(p.name, r.linktype, self.snaplen,
                                      f"{p.iface} on {p.node}" + (f" (netns {p.netns})" if p.netns else "")
                                      + (f", clock shifted {p.ts_offset_ns / 1e6:+g} ms" if p.ts_offset_ns else ""))
                            for p, r in zip(self.points, self.rings)]
        self._open_segment()
        if self.split_dir:
            os.makedirs(self.split_dir, exist_ok=True)
            self._split = [PcapngFile(os.path.join(self.split_dir, split_name(p)), [itf])
                           for p, itf in zip(self.points, self._interfaces)]

    def _segment_path(self) -> str:
        return self.spool if self.segment_bytes is None else f"{self.spool}.{self.segment_serial:04d}"

    def _open_segment(self) -> None:
        path = self._segment_path()
        self._file = PcapngFile(path, self._interfaces, os_name=os.uname().sysname + " " + os.uname().release)
        self.segments.append(path)

    def _rotate(self) -> None:
        self._close_segment()
        self.segment_serial += 1
        self._open_segment()
        while len(self.segments) > SEGMENTS:
            old = self.segments.pop(0)
            self.deleted_segments += 1
            try:
                os.unlink(old)
            except OSError:
                pass

    def _close_segment(self) -> None:
        if self._file is not None:
            self._poll_stats()
            self._file.close([(i, s.received, s.dropped, self.started_ns) for i, s in enumerate(self.stats)],
                             sync=False)
            self._file = None

    # ----- the capture loop -------------------------------------------------------------------------------------
    def _poll_stats(self) -> None:
        for ring, st in zip(self.rings, self.stats):
            st.received, st.dropped = ring.stats()

    def run(self, stop: threading.Event, *, duration: float | None = None, max_packets: int | None = None) -> None:
        """Capture until ``stop`` is set (or ``duration`` seconds / ``max_packets`` packets); then drain the rings."""
        if not self.rings:
            self.open()
        deadline = time.monotonic() + duration if duration else None
        next_stats = time.monotonic() + STATS_EVERY
        total = 0
        try:
            while not stop.is_set():
                if deadline and time.monotonic() >= deadline:
                    break
                if max_packets and total >= max_packets:
                    break
                total += self._round(wait_any(self.rings, 0.1))
                now = time.monotonic()
                if now >= next_stats:
                    with self._lock:
                        self._poll_stats()
                    next_stats = now + STATS_EVERY
            # The kernel retires a partly filled block after its timeout: wait for it so the last packets count.
            end = time.monotonic() + 3 * RETIRE_MS / 1000
            while time.monotonic() < end:
                self._round([r for r in self.rings if r.ready()])
                time.sleep(0.01)
            self._round([], flush=True)
        except BaseException as exc:
            self.error = exc
            raise

    def _round(self, ready: list[PacketRing], flush: bool = False) -> int:
        if len(self.rings) == 1 and not self._split:
            return self._round_single(ready)
        items = []
        for ring in ready:
            rid = self.rings.index(ring)
            for _ in range(ring.block_count):    # at most one lap of the ring per round: others get their turn
                if not ring.ready():
                    break
                skew = self.points[rid].ts_offset_ns
                for ts, data, length, pkttype in ring.read_block():
                    items.append((ts + skew, rid, data, length,
                                  DIR_OUTBOUND if pkttype == PACKET_OUTGOING else DIR_INBOUND))
        if len(self.rings) > 1:
            if items or flush:
                items = self._reorder(items, flush)
        if not items:
            return 0
        blocks = [packet_block(rid, ts, data, length, d) for ts, rid, data, length, d in items]
        with self._lock:
            for start in range(0, len(blocks), WRITE_CHUNK):
                chunk = blocks[start:start + WRITE_CHUNK]
                self._file.write_blocks(chunk, len(chunk))
                self._maybe_rotate()
        if self._split:
            per: list[list[bytes]] = [[] for _ in self._split]
            for ts, rid, data, length, d in items:
                per[rid].append(packet_block(0, ts, data, length, d))
            for f, b in zip(self._split, per):
                f.write_blocks(b, len(b))
        counts = [0] * len(self.rings)
        for _, rid, _, _, _ in items:
            counts[rid] += 1
        with self._lock:
            for rid, n in enumerate(counts):
                self.stats[rid].captured += n
        return len(items)

    def _round_single(self, ready: list[PacketRing]) -> int:
        """One ring: write each kernel block as it comes (no reordering needed), one write per block."""
        if not ready:
            return 0
        ring = ready[0]
        total = 0
        for _ in range(ring.block_count):
            if not ring.ready():
                break
            parts: list = []
            n = ring.read_block_epbs(parts, 0, self.points[0].ts_offset_ns)
            data = b"".join(parts)
            del parts
            ring.release_block()
            with self._lock:
                self._file.write_raw(data, n)
                self.stats[0].captured += n
                self._maybe_rotate()
            total += n
        return total

    def _maybe_rotate(self) -> None:
        if self.segment_bytes and self._file.size >= self.segment_bytes:
            self._rotate()

    def _reorder(self, items: list[tuple], flush: bool) -> list[tuple]:
        """Add ``items`` to the held packets; return (in timestamp order) those older than the reorder window."""
        held = self._held + items
        held.sort(key=lambda t: (t[0], t[1]))
        if flush:
            self._held = []
            return held
        # A point whose clock is shifted back can still deliver packets that far in the past.
        cutoff = time.time_ns() - REORDER_NS + min(0, min(p.ts_offset_ns for p in self.points))
        k = bisect.bisect_left(held, cutoff, key=lambda t: t[0])
        self._held = held[k:]
        return held[:k]

    # ----- results ----------------------------------------------------------------------------------------------
    def snapshot(self) -> list[PointStats]:
        """A copy of the per-point counters (safe to call from another thread)."""
        with self._lock:
            return [PointStats(s.point, s.received, s.dropped, s.captured) for s in self.stats]

    def totals(self) -> tuple[int, int, int]:
        """(captured, kernel-received, kernel-dropped) over all points."""
        snap = self.snapshot()
        return (sum(s.captured for s in snap), sum(s.received for s in snap), sum(s.dropped for s in snap))

    def close(self) -> str | None:
        """Finish the spool (ISBs with the kernel counters), close the rings, publish ``write_path``.

        Returns the path of the finished capture (``write_path`` or the spool)."""
        if self._closed:
            return self.write_path or (self.segments[-1] if self.segments else None)
        self._closed = True
        with self._lock:
            self._close_segment()
            for i, f in enumerate(self._split):
                s = self.stats[i]
                f.close([(0, s.received, s.dropped, self.started_ns)])
        for r in self.rings:
            r.close()
        if not self.write_path:
            return self.segments[-1] if self.segments else None
        return publish(self.segments, self.write_path)

    def abort(self) -> None:
        """Close without publishing (the capture never started): the spool is removed, ``write_path`` untouched."""
        if self._closed:
            return
        self._closed = True
        for f in [self._file, *self._split]:
            if f is not None:
                f.close(sync=False)
        self._file = None
        for r in self.rings:
            r.close()
        for path in self.segments:
            _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def split_name(point: CapturePoint) -> str:
    """The per-point file name the capture core reads as a point: ``NODE__IFACE.pcapng`` (a labelled point such as
    ``pod:NS/NAME`` is named by its IDB, the file gets a safe spelling of the label)."""
    if point.label:
        return point.label.replace(":", "_").replace("/", "_") + ".pcapng"
    return f"{point.node}__{point.iface}.pcapng"


def publish(segments: Sequence[str], target: str) -> str:
    """Move the finished spool to ``target`` atomically (temp file + rename); segments are concatenated."""
    if len(segments) == 1 and os.path.dirname(os.path.abspath(segments[0])) == os.path.dirname(
            os.path.abspath(target)):
        _fsync_path(segments[0])
        os.replace(segments[0], target)
        return target
    tmp = target + ".tmp"
    with os.fdopen(create_fresh(tmp), "wb") as out:  # not open(): a planted symlink must not be followed
        for seg in segments:
            with open(seg, "rb") as f:
                while chunk := f.read(1 << 20):
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    for seg in segments:
        try:
            os.unlink(seg)
        except OSError:
            pass
    return target


def _fsync_path(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass

