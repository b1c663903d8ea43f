"""Classic pcap reader: microsecond and nanosecond magic, either byte order, incremental and vectorised.

Records are found by a minimal sequential loop (one caplen load and one append per record, through four
``memoryview`` casts so unaligned headers cost nothing extra); everything else about a batch of records is
gathered with numpy afterwards, then validated: the first record whose caplen no sane capture has
(> max(snaplen, 262144), libpcap's rule) ends the file as damaged and the records before it are kept.
Nothing is ever allocated by a length read from the file: frames stay in the mmap.
A large complete file is walked, after its first batch, by a child interpreter running the same loop
(``_WALKER``, through ``tracer.capture.walker``) and streaming offsets through a pipe, so the walk runs on another
core without holding this process's GIL; its offsets are validated here exactly like the in-process ones.
"""

from __future__ import annotations

import struct
from array import array

import numpy as np

from tracer.capture.records import HARD_MAX_CAPLEN, MAX_SNAPLEN, Interface, ReaderState, Records
from tracer.capture.source import PCAP_MAGICS, CaptureFile
from tracer.capture.walker import Walker, worth_walking

_RECORD_HEADER = 16
_FILE_HEADER = 24
# libpcap's LT_RESERVED1: bits 16-25 of the link-type field must be zero (bits 26-31 carry the FCS length).
_LT_RESERVED = 0x03FF0000
#: The record walk of ``PcapReader._scan`` as a walker program (``tracer.capture.walker``): byte order in
#: argv[4]; the offsets of every whole record header from start (native int64) on stdout, in chunks. It trusts
#: caplen exactly as ``_scan`` does; the parent validates what it gets.
_WALKER = """
import mmap, struct, sys
from array import array


def walk(fd, off, size, order):
    # A function, not module level: its names are fast locals, not dictionary lookups.
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    size = min(size, len(mm))
    u = struct.Struct(order + "I").unpack_from
    out = sys.stdout.buffer
    end = off + 16 > size
    while not end:
        offs = array("q")
        ap = offs.append
        try:
            for _ in range(2048):
                ap(off); (c,) = u(mm, off + 8); off += c + 16
                ap(off); (c,) = u(mm, off + 8); off += c + 16
                ap(off); (c,) = u(mm, off + 8); off += c + 16
                ap(off); (c,) = u(mm, off + 8); off += c + 16
        except struct.error:
            offs.pop()
            end = True
        while offs and offs[-1] + 16 > size:
            offs.pop()
            end = True
        try:
            out.write(offs.tobytes())
            out.flush()
        except (BrokenPipeError, OSError):
            return


walk(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
"""


class PcapReader:
    """Incremental reader of one classic pcap file (see ``tracer.capture.records`` for the protocol)."""

    def __init__(self, cf: CaptureFile) -> None:
        self.cf = cf
        self.order, self.frac_ns = PCAP_MAGICS[cf.magic]
        self.interfaces: list[Interface] = []
        self.names: list[tuple[str, list[str]]] = []   # pcap has no name resolution block
        self.state = ReaderState()
        self.max_caplen = MAX_SNAPLEN
        self._snap_noted = False
        self._u32 = struct.Struct(self.order + "I").unpack_from
        self._walker: Walker | None = None
        self._walker_tried = False
        self._hdr = np.dtype([("sec", self.order + "u4"), ("frac", self.order + "u4"),
                              ("caplen", self.order + "u4"), ("origlen", self.order + "u4")])

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def problem(self) -> str | None:
        return self.state.problem

    def _header(self, mm, size: int, complete: bool) -> bool:
        # A bad file header is this file's problem (state.problem, reported as "nothing readable" when it is the
        # only file), not an exception that would abort every other file of a multi-file load.
        if size < _FILE_HEADER:
            if complete:
                return self._refuse(f"truncated pcap file header ({size} of 24 bytes)")
            return False
        major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(self.order + "HHiIII", mm, 4)
        if major != 2:
            return self._refuse(f"unsupported pcap version {major}.{minor} (expected 2.x)")
        if network & _LT_RESERVED:
            return self._refuse(f"reserved bits set in the link-type field (0x{network:08x})")
        self.interfaces.append(Interface(linktype=network & 0xFFFF, snaplen=snaplen))
        self.max_caplen = min(max(snaplen, MAX_SNAPLEN), HARD_MAX_CAPLEN)
        self.state.pos = _FILE_HEADER
        return True

    def _refuse(self, problem: str) -> bool:
        self.state.problem = problem
        self.state.done = True
        return False

    def read(self, max_records: int) -> Records:
        """The next up to ``max_records`` complete records (empty when none is available yet)."""
        st = self.state
        if st.done:
            return Records.empty()
        complete = self.cf.complete()     # before size: a spool that is complete has its final size
        mm = self.cf.mapping()
        size = self.cf.size() if mm is not None else 0
        size = min(size, len(mm)) if mm is not None else 0
        if not self.interfaces and not self._header(mm, size, complete):
            return Records.empty()
        offs = self._walk(mm, size, max_records, complete)
        n = len(offs)
        if n == 0:
            if complete:
                if st.pos < size:
                    st.problem = f"truncated record header at offset {st.pos}"
                st.done = True
            return Records.empty()
        o = np.frombuffer(offs, dtype=np.int64)
        # One 16-byte gather per record header (a "header at every byte" view of the map), then fields.
        raw = np.ndarray((size - _RECORD_HEADER + 1,), dtype="V16", buffer=mm, strides=(1,))[o]
        hdr = raw.view(self._hdr)
        caplen = hdr["caplen"]
        keep = n
        bad = caplen > self.max_caplen
        if bad.any():
            keep = int(np.argmax(bad))
            st.problem = (f"record {st.count + keep + 1} at offset {int(o[keep])}: caplen {int(caplen[keep])} "
                          f"exceeds the maximum {self.max_caplen} (garbage record header)")
            st.done = True
            st.pos = int(o[keep])
        elif int(o[-1]) + _RECORD_HEADER + int(caplen[-1]) > size:
            keep = n - 1
            st.pos = int(o[-1])
            if complete:
                st.problem = (f"record {st.count + n} at offset {st.pos} is cut short "
                              f"({int(caplen[-1])} bytes announced, {size - st.pos - _RECORD_HEADER} present)")
                st.done = True
        else:
            st.pos = int(o[-1]) + _RECORD_HEADER + int(caplen[-1])
            if complete and st.pos >= size:
                st.done = True
        o = o[:keep]
        hdr = hdr[:keep]
        caplen = hdr["caplen"].astype(np.uint32)
        sec = hdr["sec"].astype(np.int64)
        frac = hdr["frac"].astype(np.int64)
        origlen = hdr["origlen"].astype(np.uint32)
        st.count += keep
        if st.done:
            self._stop_walker()
        snaplen = self.interfaces[0].snaplen
        if not self._snap_noted and keep and snaplen and int(caplen.max()) > snaplen:
            self._snap_noted = True
            st.notes.append(f"caplen {int(caplen.max())} exceeds the file's snaplen {snaplen}")
        return Records(sec * 1_000_000_000 + frac * self.frac_ns, o + _RECORD_HEADER, caplen, origlen,
                       np.zeros(keep, np.uint16))

    def _walk(self, mm, size: int, max_records: int, complete: bool) -> array:
        """Offsets of the next up to ``max_records`` record headers: from the walker process when one runs.

        The walk is pure Python and holds the GIL; a thread doing it would fight the decoding thread for it. So
        a complete file of some size, after its first batch (read here, for a quick first screen), is walked by
        a child interpreter that streams offsets through a pipe while this process gathers, decodes and appends.
        """
        if self._walker is None and not self._walker_tried and complete and self.state.count > 0 \
                and worth_walking(size - self.state.pos):
            self._walker_tried = True
            fd = self.cf._fileno()  # noqa: SLF001 - the mapped descriptor: the child walks the same file
            self._walker = Walker.start(_WALKER, fd, self.state.pos, size, self.order)
        if self._walker is None:
            return self._scan(mm, size, max_records)
        offs = self._walker.read(max_records)
        if offs is None or len(offs) < max_records:
            self._walker = None                     # the walk ended (the process is gone)
        if not offs or offs[-1] + _RECORD_HEADER > size:
            # A walker that died (mid-write, or before the end): walk the rest here, from what it did give.
            return self._scan(mm, size, max_records)
        return offs

    def _stop_walker(self) -> None:
        if self._walker is not None:
            self._walker.stop()
            self._walker = None

    def _scan(self, mm, size: int, max_records: int) -> array:
        """Offsets of up to ``max_records`` whole record headers from ``pos``; the loop trusts caplen, numpy checks it.

        The loop body is unrolled and has no bounds test: reading past the end raises ``struct.error``, which
        ends the scan (the offset appended for that read is dropped).
        """
        offs = array("q")
        ap = offs.append
        off = self.state.pos
        if off + _RECORD_HEADER > size:
            return offs
        u = self._u32
        whole, rest = divmod(max_records, 8)
        try:
            for _ in range(whole):
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702 - unrolled on purpose
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
            for _ in range(rest):
                ap(off); (c,) = u(mm, off + 8); off += c + 16  # noqa: E702
        except struct.error:
            offs.pop()
        # A header that starts inside the file but ends past it is not a record (yet).
        while offs and offs[-1] + _RECORD_HEADER > size:
            offs.pop()
        return offs

