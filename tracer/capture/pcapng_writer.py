"""A pcapng writer for live capture: SHB, one IDB per interface (``if_name`` = capture point), EPBs, ISBs.

Blocks are built in memory and handed to ``os.write`` whole, a batch at a time, so a reader of the growing file
(and anyone reading it after a crash or SIGKILL) sees only complete blocks, except at most the last one, which
the readers treat as the end of the file. Timestamps are nanoseconds (``if_tsresol`` = 9). Interface statistics
(``isb_ifrecv``, ``isb_ifdrop``: the kernel's own counters) are written when a section is closed, so drops are in
the file for every later reader. Format: draft-ietf-opsawg-pcapng (block types 0x0A0D0D0A, 1, 6, 5).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from tracer.errors import CaptureError

SHB, IDB, EPB, ISB = 0x0A0D0D0A, 0x00000001, 0x00000006, 0x00000005
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT = 0, 1
SHB_HARDWARE, SHB_OS, SHB_USERAPPL = 2, 3, 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9
EPB_FLAGS = 2
ISB_STARTTIME, ISB_ENDTIME, ISB_IFRECV, ISB_IFDROP = 2, 3, 4, 5
# epb_flags bits 0-1: direction (01 inbound, 10 outbound), from the packet's sll_pkttype.
DIR_INBOUND, DIR_OUTBOUND = 1, 2

_EPB_HEAD = struct.Struct("<IIIIIII")   # type, total length, interface id, ts high, ts low, caplen, origlen
_OPT_FLAGS = struct.Struct("<HHI")      # epb_flags option: code, length 4, value


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * _pad(len(value))


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _text(value: str) -> bytes:
    return value.encode("utf-8", "replace")


@dataclass(frozen=True)
class Interface:
    """One capture interface as written in its IDB."""

    name: str              # if_name: the capture point, NODE/IFACE
    linktype: int
    snaplen: int = 262144
    description: str | None = None


def section_header(application: str = "tracer", os_name: str | None = None) -> bytes:
    opts = _option(SHB_USERAPPL, _text(application))
    if os_name:
        opts += _option(SHB_OS, _text(os_name))
    opts += _option(OPT_END, b"")
    # Section length -1: unknown (the file grows as we capture).
    return _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def interface_block(itf: Interface) -> bytes:
    opts = _option(IF_NAME, _text(itf.name))
    if itf.description:
        opts += _option(IF_DESCRIPTION, _text(itf.description))
    opts += _option(IF_TSRESOL, b"\x09")     # 10^-9 s: the kernel's nanosecond timestamps, unrounded
    opts += _option(OPT_END, b"")
    return _block(IDB, struct.pack("<HHI", itf.linktype, 0, itf.snaplen) + opts)


def packet_block(iface_id: int, ts_ns: int, data: bytes, origlen: int, direction: int = 0) -> bytes:
    """An Enhanced Packet Block; ``direction`` (DIR_INBOUND/DIR_OUTBOUND) goes into epb_flags when known."""
    caplen = len(data)
    pad = _pad(caplen)
    opts = _OPT_FLAGS.pack(EPB_FLAGS, 4, direction) + b"\0\0\0\0" if direction else b""
    total = 32 + caplen + pad + len(opts)
    return b"".join((_EPB_HEAD.pack(EPB, total, iface_id, ts_ns >> 32, ts_ns & 0xFFFFFFFF, caplen, origlen),
                     data, b"\0" * pad, opts, struct.pack("<I", total)))


def statistics_block(iface_id: int, ts_ns: int, received: int, dropped: int, start_ns: int | None = None,
                     comment: str | None = None) -> bytes:
    opts = b""
    if comment:
        opts += _option(OPT_COMMENT, _text(comment))
    if start_ns is not None:
        opts += _option(ISB_STARTTIME, struct.pack("<II", start_ns >> 32, start_ns & 0xFFFFFFFF))
    opts += _option(ISB_ENDTIME, struct.pack("<II", ts_ns >> 32, ts_ns & 0xFFFFFFFF))
    opts += _option(ISB_IFRECV, struct.pack("<Q", received))
    opts += _option(ISB_IFDROP, struct.pack("<Q", dropped))
    opts += _option(OPT_END, b"")
    return _block(ISB, struct.pack("<III", iface_id, ts_ns >> 32, ts_ns & 0xFFFFFFFF) + opts)


def create_fresh(path: str) -> int:
    """A write descriptor on a new file at ``path``, never on whatever another user left there.

    tracer writes as root into directories users name (``--write DIR/x.pcapng``); if DIR belongs to someone else,
    they can plant a symlink (or hard link) at the spool's name pointing at /etc/shadow. Remove the entry first,
    then create with O_EXCL|O_NOFOLLOW, which refuses a link re-planted in between (CWE-59).
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


class PcapngFile:
    """One pcapng section in one file: header and IDBs at open, whole blocks appended, ISBs at close."""

    def __init__(self, path: str, interfaces: list[Interface], *, os_name: str | None = None) -> None:
        self.path = path
        self.interfaces = list(interfaces)
        try:
            self.fd = create_fresh(path)
        except OSError as exc:  # a directory or a re-planted link at the name, a read-only directory…
            raise CaptureError(f"{path}: cannot create the capture file: {exc.strerror or exc}") from None
        self.size = 0
        self.packets = 0
        self._write(section_header(os_name=os_name) + b"".join(interface_block(i) for i in self.interfaces))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)

    def write_blocks(self, blocks: list[bytes], packets: int) -> None:
        """Append complete blocks in one write (a reader never sees half a batch's first block)."""
        if blocks:
            self._write(b"".join(blocks))
            self.packets += packets

    def write_raw(self, data: bytes, packets: int) -> None:
        """Append already-encoded complete blocks (the capture ring's fast path)."""
        if data:
            self._write(data)
            self.packets += packets

    def close(self, stats: list[tuple[int, int, int, int | None]] | None = None, *, sync: bool = True) -> None:
        """Write one ISB per interface from ``stats`` ((iface_id, received, dropped, start_ns)), then close."""
        if self.fd < 0:
            return
        if stats:
            import time

            now = time.time_ns()
            self._write(b"".join(statistics_block(i, now, recv, drop, start) for i, recv, drop, start in stats))
        if sync:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
        os.close(self.fd)
        self.fd = -1
