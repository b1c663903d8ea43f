"""pcapng reader: several sections (each with its own byte order), several interfaces, EPB/SPB/PB, NRB.

Runs of Enhanced Packet Blocks in a little-endian section are found by a minimal loop over a ``uint32`` view of
the mmap (pcapng blocks are 32-bit aligned) and then gathered and validated with numpy; every other block
(section and interface headers, Simple Packet Blocks, name resolution, big-endian sections, anything damaged)
goes through the per-block path below, which names the problem precisely. Unknown block types are skipped, as
the spec asks (draft-ietf-opsawg-pcapng, section 3.1).
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from array import array

import numpy as np

from tracer.capture.records import Interface, ReaderState, Records
from tracer.capture.source import CaptureFile

SHB, IDB, PB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"
# Option codes of the Interface Description Block.
_IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL, _IF_TSOFFSET = 2, 3, 9, 14


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
        out = Records.concat(parts)
        st.count += len(out)
        return out

    def _slow_records(self, rows: list[tuple[int, int, int, int, int]]) -> Records:
        a = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return Records(a[:, 0], a[:, 1], a[:, 2].astype(np.uint32), a[:, 3].astype(np.uint32),
                       a[:, 4].astype(np.uint16))

    # ----- fast path: a run of little-endian EPBs ---------------------------------------------------------
    def _fast(self, mm, size: int, budget: int) -> Records:
        st = self.state
        nwords = size >> 2
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
        if not idx:
            return Records.empty()
        I = np.frombuffer(idx, dtype=np.int64)
        W = np.frombuffer(mm, dtype=self.order + "u4", count=nwords)
        blen = W[I + 1].astype(np.int64)
        end = I + (blen >> 2)
        # The last block may run past the bytes available; it is left to the per-block path.
        inside = end <= nwords
        trail_ok = np.zeros(len(I), bool)
        trail_ok[inside] = W[end[inside] - 1] == blen[inside]
        iface = W[I + 2].astype(np.uint32)
        caplen = W[I + 5].astype(np.uint32)
        ok = inside & trail_ok & ((blen & 3) == 0) & (caplen.astype(np.int64) <= blen - 32) & \
            (iface < len(self._section_ifaces))
        keep = len(I) if ok.all() else int(np.argmin(ok))
        if keep == 0:
            return Records.empty()
        I, iface, caplen = I[:keep], iface[:keep], caplen[:keep]
        st.pos = int(end[keep - 1]) << 2
        raw = (W[I + 3].astype(np.uint64) << np.uint64(32)) | W[I + 4].astype(np.uint64)
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
        origlen = W[I + 6].astype(np.uint32)
        self._note_snaplen(gid, caplen)
        return Records(ts, (I << 2) + 28, caplen, origlen, gid)

    def _note_snaplen(self, gid: np.ndarray, caplen: np.ndarray) -> None:
        if self._snap_noted:
            return
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
