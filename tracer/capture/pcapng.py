"""pcapng reader: several sections (each with its own byte order), several interfaces, EPB/SPB/PB, NRB.

Runs of Enhanced Packet Blocks in a little-endian section are found by a minimal loop over a ``uint32`` view of
the mmap (pcapng blocks are 32-bit aligned) and then gathered and validated with numpy; every other block
(section and interface headers, Simple Packet Blocks, name resolution, big-endian sections, anything damaged)
goes through the per-block path below, which names the problem precisely. Unknown block types are skipped, as
the spec asks (draft-ietf-opsawg-pcapng, section 3.1).
A large complete file is walked, after its first batch, by a child interpreter (``_WALKER``, through
``tracer.capture.walker``) that follows every block's length, in each section's byte order, and streams block
offsets through a pipe; the EPB runs are then taken from that stream instead of the loop in ``_fast`` (same
runs, same validation), and every other block still goes through the per-block path here.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from array import array

import numpy as np

from tracer.capture.records import Interface, ReaderState, Records
from tracer.capture.source import CaptureFile
from tracer.capture.walker import Walker, worth_walking

SHB, IDB, PB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
# Option codes of the Interface Description Block.
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL, _IF_TSOFFSET = 2, 3, 9, 14
#: The block walk as a walker program (``tracer.capture.walker``): the section's byte order in argv[4]; the
#: 32-bit word index of every block from start (native int64) on stdout, in chunks. Like ``_fast``'s loop it
#: trusts the total length (advancing by ``length >> 2`` words) and takes a section header's byte order from its
#: byte-order magic; it stops after a block whose length is below 12 (or at a bad magic) and at the end of the
#: file. What it trusts, the parent checks: only runs of EPBs are taken from it, and validated as in ``_fast``.
_WALKER = """
import mmap, struct, sys
from array import array


def walk(fd, i, size, order):
    # A function, not module level: its names are fast locals, not dictionary lookups (~30% less time).
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    nwords = min(size, len(mm)) >> 2
    native = "<" if sys.byteorder == "little" else ">"
    w = memoryview(mm)[:nwords << 2].cast("I")
    boms = {b"\\x4d\\x3c\\x2b\\x1a": "<", b"\\x1a\\x2b\\x3c\\x4d": ">"}
    shb = 0x0A0D0D0A
    out = sys.stdout.buffer
    end = False
    while not end:
        offs = array("q")
        ap = offs.append
        try:
            if order == native:
                for _ in range(8192):
                    ap(i); n = w[i + 1]
                    if n < 12 or w[i] == shb:
                        break
                    i += n >> 2
                else:
                    n = None
            else:
                head = struct.Struct(order + "II").unpack_from
                for _ in range(8192):
                    ap(i); t, n = head(mm, i << 2)
                    if n < 12 or t == shb:
                        break
                    i += n >> 2
                else:
                    n = None
            if n is not None:
                # A section header (it may change the byte order) or a length that does not advance (the end).
                order = boms.get(mm[(i << 2) + 8:(i << 2) + 12]) if w[i] == shb else None
                if order is None:
                    end = True
                else:
                    (n,) = struct.unpack_from(order + "I", mm, (i << 2) + 4)
                    end = n < 12
                    i += n >> 2
        except (IndexError, struct.error):
            offs.pop()
            end = True
        try:
            out.write(offs.tobytes())
            out.flush()
        except (BrokenPipeError, OSError):
            return


walk(int(sys.argv[1]), int(sys.argv[2]) >> 2, int(sys.argv[3]), sys.argv[4])
"""


class _Damaged(Exception):
    """A block that cannot be trusted; reading stops before it."""


def _tsresol_valid(code: int) -> bool:
    # Decimal 10^-v beyond 10^-19 or binary 2^-v beyond 2^-63 cannot be held by a 64-bit timestamp.
    return (code & 0x7F) <= (63 if code & 0x80 else 19)


# if_tsoffset is whole seconds added to every timestamp; beyond this it cannot be expressed in int64 ns.
_TSOFFSET_MAX = (1 << 63) // 1_000_000_000


def ticks_to_ns(raw: np.ndarray, tsresol: int, tsoffset: int) -> np.ndarray:
    """Timestamps in ``if_tsresol`` units (uint64) -> int64 ns since the epoch, plus ``if_tsoffset`` seconds."""
    v = tsresol & 0x7F
    if tsresol & 0x80:
        whole = (raw >> np.uint64(v)).astype(np.int64) * 1_000_000_000
        frac = (raw & np.uint64((1 << v) - 1)).astype(np.float64) * (1e9 / float(1 << v))
        ns = whole + frac.astype(np.int64)
    elif v <= 9:
        ns = raw.astype(np.int64) * (10 ** (9 - v))
    else:
        ns = (raw // np.uint64(10 ** (v - 9))).astype(np.int64)
    if tsoffset:
        ns = ns + tsoffset * 1_000_000_000
    return ns


class PcapngReader:
    """Incremental reader of one pcapng file (see ``tracer.capture.records`` for the protocol)."""

    def __init__(self, cf: CaptureFile) -> None:
        self.cf = cf
        self.interfaces: list[Interface] = []
        self.names: list[tuple[str, list[str]]] = []     # Name Resolution Block entries: (address, names)
        self.state = ReaderState()
        self.order = "<"
        self.section = -1
        self._section_ifaces: list[int] = []             # section-local interface id -> index in interfaces
        self._last_ts = 0
        self._snap_noted = False
        self._walker: Walker | None = None
        self._walker_tried = False
        self._walked = np.empty(0, np.int64)             # block word indices from the walker, not yet passed

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def problem(self) -> str | None:
        return self.state.problem

    def _fail(self, message: str) -> None:
        self.state.problem = message
        self.state.done = True

    # ----- main loop ------------------------------------------------------------------------------------
    def read(self, max_records: int) -> Records:
        """The next up to ``max_records`` complete packet records (empty when none is available yet)."""
        st = self.state
        if st.done:
            return Records.empty()
        complete = self.cf.complete()
        mm = self.cf.mapping()
        size = min(self.cf.size(), len(mm)) if mm is not None else 0
        if not self._walker_tried and complete and st.count > 0 and worth_walking(size - st.pos):
            self._walker_tried = True
            fd = self.cf._fileno()  # noqa: SLF001 - the mapped descriptor: the child walks the same file
            self._walker = Walker.start(_WALKER, fd, st.pos, size, self.order)
        parts: list[Records] = []
        slow: list[tuple[int, int, int, int, int]] = []
        got = 0
        while got < max_records and not st.done:
            pos = st.pos
            if pos + 12 > size:
                if complete:
                    if pos < size:
                        self._fail(f"truncated block header at offset {pos} (file ends at {size})")
                    elif self.section < 0:
                        self._fail("truncated pcapng file: no section header")
                    else:
                        st.done = True
                break
            if self.section >= 0 and mm[pos:pos + 4] == (b"\x06\x00\x00\x00" if self.order == "<" else
                                                           b"\x00\x00\x00\x06"):
                recs = self._fast(mm, size, max_records - got)
                if len(recs):
                    if slow:
                        parts.append(self._slow_records(slow))
                        slow = []
                    parts.append(recs)
                    got += len(recs)
                    continue
            try:
                rec = self._block(mm, size, complete)
            except _Damaged as exc:
                self._fail(str(exc))
                break
            if rec is None:
                if st.pos == pos:       # incomplete block in a growing file: wait for more
                    break
                continue
            slow.append(rec)
            got += 1
        if slow:
            parts.append(self._slow_records(slow))
        if st.done:
            self._stop_walker()
        out = Records.concat(parts)
        st.count += len(out)
        return out

    def _stop_walker(self) -> None:
        if self._walker is not None:
            self._walker.stop()
            self._walker = None
        self._walked = np.empty(0, np.int64)

    def _slow_records(self, rows: list[tuple[int, int, int, int, int]]) -> Records:
        a = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return Records(a[:, 0], a[:, 1], a[:, 2].astype(np.uint32), a[:, 3].astype(np.uint32),
                       a[:, 4].astype(np.uint16))

    # ----- fast path: a run of little-endian EPBs ---------------------------------------------------------
    def _fast(self, mm, size: int, budget: int) -> Records:
        st = self.state
        nwords = size >> 2
        W = np.frombuffer(mm, dtype=self.order + "u4", count=nwords)
        I = self._walked_run(W, budget) if self._walker is not None or len(self._walked) else None
        if I is None:
            I = np.frombuffer(self._walk(mm, nwords, budget), dtype=np.int64)
        if not len(I):
            return Records.empty()
        # One 28-byte gather per block (a "header at every word" view of the map; every run starts 32 bytes
        # before the end), then its fields: type, total length, interface, timestamp high/low, caplen, origlen.
        H = np.ndarray((nwords - 6,), dtype="V28", buffer=mm, strides=(4,))[I]
        H = H.view(self.order + "u4").reshape(-1, 7)
        blen = H[:, 1].astype(np.int64)
        end = I + (blen >> 2)
        # The last block may run past the bytes available; it is left to the per-block path.
        inside = end <= nwords
        trail_ok = np.zeros(len(I), bool)
        trail_ok[inside] = W[end[inside] - 1] == blen[inside]
        iface = H[:, 2]
        caplen = H[:, 5]
        ok = inside & trail_ok & ((blen & 3) == 0) & (caplen.astype(np.int64) <= blen - 32) & \
            (iface < len(self._section_ifaces))
        keep = len(I) if ok.all() else int(np.argmin(ok))
        if keep == 0:
            return Records.empty()
        I, iface, caplen = I[:keep], iface[:keep].astype(np.uint32), caplen[:keep].astype(np.uint32)
        st.pos = int(end[keep - 1]) << 2
        H = H[:keep]
        raw = (H[:, 3].astype(np.uint64) << np.uint64(32)) | H[:, 4].astype(np.uint64)
        gid = np.asarray(self._section_ifaces, dtype=np.uint16)[iface]
        first = self.interfaces[int(gid[0])]
        if (gid == gid[0]).all() or all(self.interfaces[g].tsresol == first.tsresol and
                                        self.interfaces[g].tsoffset == first.tsoffset for g in self._section_ifaces):
            ts = ticks_to_ns(raw, first.tsresol, first.tsoffset)
        else:
            ts = np.empty(keep, np.int64)
            for g in np.unique(gid):
                m = gid == g
                itf = self.interfaces[int(g)]
                ts[m] = ticks_to_ns(raw[m], itf.tsresol, itf.tsoffset)
        self._last_ts = int(ts[-1])
        origlen = H[:, 6].astype(np.uint32)
        self._note_snaplen(gid, caplen)
        return Records(ts, (I << 2) + 28, caplen, origlen, gid)

    def _walk(self, mm, nwords: int, budget: int) -> array:
        """Word indices of the run of EPBs at ``pos`` (at most ``budget``), following their total lengths."""
        st = self.state
        idx = array("q")
        ap = idx.append
        i = st.pos >> 2
        lim = nwords - 8
        if self.order == "<" and sys.byteorder == "little":
            mv = memoryview(mm)[:nwords << 2]
            w = mv.cast("I")          # native = little-endian words: blocks are 4-aligned
            try:
                for _ in range(budget):
                    if i > lim or w[i] != 6:
                        break
                    n = w[i + 1]
                    if n < 32:
                        break
                    ap(i)
                    i += n >> 2
            finally:
                w.release()
                mv.release()
        else:
            head = struct.Struct(self.order + "II").unpack_from
            for _ in range(budget):
                if i > lim:
                    break
                btype, n = head(mm, i << 2)
                if btype != 6 or n < 32:
                    break
                ap(i)
                i += n >> 2
        return idx

    def _walked_run(self, W: np.ndarray, budget: int) -> np.ndarray | None:
        """The run ``_walk`` would find, taken from the walker's stream; None when the stream has nothing for
        ``pos`` (the walker ended or failed: ``_walk`` goes on from here, so the result is the same either way).

        The stream holds every block's word index in file order; the run is its blocks from ``pos`` while each
        starts where the previous one's length (in words) leads, starts 32 bytes before the end, is an EPB in
        this section's byte order and is at least 32 bytes long: ``_walk``'s steps and tests, checked here.
        """
        at = self.state.pos >> 2
        lim = len(W) - 8
        pairs = np.lib.stride_tricks.as_strided(W, shape=(len(W) - 1, 2), strides=(W.strides[0],) * 2)
        runs: list[np.ndarray] = []
        need = budget
        while need:
            buf = self._walked
            k = int(np.searchsorted(buf, at))           # blocks before pos went through the per-block path
            if k == len(buf):
                if not self._refill(need):
                    break
                continue
            if int(buf[k]) != at:                       # not the chain this process follows: stop using it
                self._stop_walker()
                break
            take = buf[k:k + need]
            head = pairs[np.minimum(take, len(W) - 2)]          # (type, total length) of each block
            step = head[:, 1]
            good = (take <= lim) & (head[:, 0] == EPB) & (step >= 32)
            # Each block is where its predecessor's length leads, in this process's byte order: the chain is
            # checked here, not trusted from the child.
            good[1:] &= take[1:] == take[:-1] + (step[:-1] >> 2)
            m = len(take) if good.all() else int(np.argmin(good))
            runs.append(take[:m])
            need -= m
            self._walked = buf[k + m:]
            if m < len(take) or not need:
                break
            at = int(take[-1]) + (int(step[-1]) >> 2)
        if not runs:
            return None
        return np.concatenate(runs) if len(runs) > 1 else runs[0]

    def _refill(self, need: int) -> bool:
        """Read the next offsets from the walker (at least one batch's worth); False when there are none."""
        if self._walker is None:
            return False
        got = self._walker.read(max(need, 8192))
        if got is None or len(got) < max(need, 8192):
            self._walker = None                         # the walk ended (the process is gone)
        if not got:
            return False
        # Only called once every buffered block lies before ``pos``: nothing of the old buffer is needed.
        self._walked = np.frombuffer(got, dtype=np.int64)
        return True

    def _note_snaplen(self, gid: np.ndarray, caplen: np.ndarray) -> None:
        if self._snap_noted:
            return
        limits = [itf.snaplen for itf in self.interfaces if itf.snaplen]
        if not limits or int(caplen.max()) <= min(limits):
            return                      # no caplen above any snaplen (the usual case): no per-packet gather
        snap = np.asarray([itf.snaplen for itf in self.interfaces], dtype=np.int64)[gid]
        over = (snap > 0) & (caplen > snap)
        if over.any():
            k = int(np.argmax(over))
            self._snap_noted = True
            self.state.notes.append(f"caplen {int(caplen[k])} exceeds the interface's snaplen {int(snap[k])}")

    # ----- per-block path ----------------------------------------------------------------------------------
    def _block(self, mm, size: int, complete: bool) -> tuple[int, int, int, int, int] | None:
        """Handle the block at ``pos``; return a packet record or None. Raise ``_Damaged`` on bad structure."""
        st = self.state
        pos = st.pos
        btype = struct.unpack_from("<I", mm, pos)[0]
        if btype == SHB:
            bom = mm[pos + 8:pos + 12]
            if bom == _BOM_LE:
                order = "<"
            elif bom == _BOM_BE:
                order = ">"
            else:
                raise _Damaged(f"section header at offset {pos}: bad byte-order magic {bom.hex()}")
        else:
            if self.section < 0:
                raise _Damaged(f"offset {pos}: block type 0x{btype:08x} before any section header")
            order = self.order
            btype = struct.unpack_from(order + "I", mm, pos)[0]
        blen = struct.unpack_from(order + "I", mm, pos + 4)[0]
        if blen < 12 or blen % 4:
            raise _Damaged(f"block at offset {pos}: total length {blen} is invalid "
                           "(must be a multiple of 4 and at least 12)")
        if pos + blen > size:
            if complete:
                raise _Damaged(f"block at offset {pos} is cut short ({blen} bytes announced, {size - pos} present)")
            return None
        if struct.unpack_from(order + "I", mm, pos + blen - 4)[0] != blen:
            raise _Damaged(f"block at offset {pos}: trailing length does not match {blen}")
        body_end = pos + blen - 4
        record = None
        if btype == SHB:
            self._section_header(mm, pos, blen, order)
        elif btype == IDB:
            self._interface(mm, pos, blen)
        elif btype in (EPB, PB):
            if blen < 32:
                raise _Damaged(f"packet block at offset {pos}: length {blen} is too small")
            if btype == EPB:
                iface, hi, lo, caplen, origlen = struct.unpack_from(order + "IIIII", mm, pos + 8)
            else:
                iface, _drops, hi, lo, caplen, origlen = struct.unpack_from(order + "HHIIII", mm, pos + 8)
            if iface >= len(self._section_ifaces):
                raise _Damaged(f"packet block at offset {pos} names interface {iface}, but the section "
                               f"declares {len(self._section_ifaces)}")
            if pos + 28 + caplen > body_end:
                raise _Damaged(f"packet block at offset {pos}: caplen {caplen} exceeds the block")
            g = self._section_ifaces[iface]
            itf = self.interfaces[g]
            ts = int(ticks_to_ns(np.array([(hi << 32) | lo], np.uint64), itf.tsresol, itf.tsoffset)[0])
            self._last_ts = ts
            self._note_snaplen(np.array([g]), np.array([caplen]))
            record = (ts, pos + 28, caplen, origlen, g)
        elif btype == SPB:
            if not self._section_ifaces:
                raise _Damaged(f"simple packet block at offset {pos} before any interface description")
            if blen < 16:
                raise _Damaged(f"simple packet block at offset {pos}: length {blen} is too small")
            origlen = struct.unpack_from(order + "I", mm, pos + 8)[0]
            g = self._section_ifaces[0]
            snap = self.interfaces[g].snaplen
            caplen = min(origlen, blen - 16, snap if snap else origlen)
            # An SPB has no timestamp: it inherits the previous packet's, so a merge keeps it in place.
            record = (self._last_ts, pos + 12, caplen, origlen, g)
        elif btype == NRB:
            self._names(mm, pos + 8, body_end, order)
        # ISB, DSB, custom and unknown blocks: skipped.
        st.pos = pos + blen
        return record

    def _options(self, mm, start: int, end: int, order: str, where: str):
        p = start
        while p + 4 <= end:
            code, length = struct.unpack_from(order + "HH", mm, p)
            if code == 0:
                return
            if p + 4 + length > end:
                raise _Damaged(f"{where}: option {code} length {length} exceeds its block")
            yield code, bytes(mm[p + 4:p + 4 + length])
            p += 4 + ((length + 3) & ~3)

    def _section_header(self, mm, pos: int, blen: int, order: str) -> None:
        if blen < 28:
            raise _Damaged(f"section header at offset {pos}: length {blen} is too small")
        major, minor = struct.unpack_from(order + "HH", mm, pos + 12)
        if major != 1:
            raise _Damaged(f"unsupported pcapng version {major}.{minor} in the section header at offset {pos}")
        for _ in self._options(mm, pos + 24, pos + blen - 4, order, f"section header at offset {pos}"):
            pass
        self.order = order
        self.section += 1
        self._section_ifaces = []

    def _interface(self, mm, pos: int, blen: int) -> None:
        if blen < 20:
            raise _Damaged(f"interface description at offset {pos}: length {blen} is too small")
        if len(self.interfaces) >= 4096:
            # The index's source column is uint16; no real capture has thousands of interfaces.
            raise _Damaged(f"interface description at offset {pos}: more than 4096 interfaces")
        order = self.order
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", mm, pos + 8)
        itf = Interface(linktype=linktype, snaplen=snaplen, section=self.section)
        where = f"interface description at offset {pos}"
        for code, value in self._options(mm, pos + 16, pos + blen - 4, order, where):
            if code == _IF_NAME:
                itf.name = value.rstrip(b"\0").decode("utf-8", "replace")
            elif code == _IF_DESCRIPTION:
                itf.description = value.rstrip(b"\0").decode("utf-8", "replace")
            elif code == _IF_TSRESOL and value:
                if not _tsresol_valid(value[0]):
                    raise _Damaged(f"{where}: if_tsresol 0x{value[0]:02x} is finer than a 64-bit timestamp holds")
                itf.tsresol = value[0]
            elif code == _IF_TSOFFSET and len(value) >= 8:
                itf.tsoffset = struct.unpack_from(order + "q", value)[0]
                if abs(itf.tsoffset) > _TSOFFSET_MAX:
                    raise _Damaged(f"{where}: if_tsoffset {itf.tsoffset} s is beyond what a 64-bit ns timestamp holds")
        self._section_ifaces.append(len(self.interfaces))
        self.interfaces.append(itf)

    def _names(self, mm, start: int, end: int, order: str) -> None:
        p = start
        while p + 4 <= end:
            rtype, length = struct.unpack_from(order + "HH", mm, p)
            if rtype == 0 or p + 4 + length > end:
                return
            value = bytes(mm[p + 4:p + 4 + length])
            alen = {1: 4, 2: 16}.get(rtype)
            if alen and length > alen:
                addr = str(ipaddress.ip_address(value[:alen]))
                names = [n.decode("utf-8", "replace") for n in value[alen:].split(b"\0") if n]
                self.names.append((addr, names))
            p += 4 + ((length + 3) & ~3)
