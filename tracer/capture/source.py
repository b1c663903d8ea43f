"""Opening a capture: format sniffing by magic, gzip and stdin spooled to a temporary file, growing files.

Every reader works on one on-disk file it can ``mmap``: a plain capture is read where it lies; a gzip file and
standard input (``-``) are copied by a background thread into a temporary *spool* file that the index reads
while it grows, so the first packets show before the input ends (``ssh node tcpdump -U -w - | tracer show -``).
A file that another process is still writing (a live capture's pcapng) is opened with ``follow=True``.

A gzip input may inflate to at most ``max(TRACER_GZIP_MAX_MB MiB, TRACER_GZIP_MAX_RATIO x its compressed size)``
(defaults 128 MiB and 200x; ``GzipLimit``): deflate reaches ~1000:1, so a 1 MB "gzip bomb" of zero-length records
would otherwise spool 1 GB and index 67 million packets. Beyond the limit the spool stops, and the packets
inflated before it are kept with a warning, as for a gzip stream cut short.
"""

from __future__ import annotations

import errno
import gzip
import mmap
import os
import sys
import tempfile
import threading
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from tracer.errors import CaptureError

#: Classic pcap magic numbers as they appear on disk -> (byte order, nanoseconds per timestamp fraction unit).
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),   # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1000),   # microseconds, big-endian
    b"\x4d\x3c\xb2\xa1": ("<", 1),      # nanoseconds (a1b23c4d), little-endian
    b"\xa1\xb2\x3c\x4d": (">", 1),      # nanoseconds, big-endian
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"      # Section Header Block type: the same bytes in either byte order
GZIP_MAGIC = b"\x1f\x8b"

_CHUNK = 1 << 20

GZIP_MAX_MB_ENV = "TRACER_GZIP_MAX_MB"
GZIP_MAX_RATIO_ENV = "TRACER_GZIP_MAX_RATIO"


@dataclass(frozen=True)
class GzipLimit:
    """How far a gzip stream may inflate: ``max(floor, ratio x compressed bytes)``.

    Honest captures compress 2-30x; zero-filled payloads (BIG TCP, jumbo ``dd`` traffic) reach 240-640x but have
    few, large packets. A bomb of 16-byte zero-length records reaches deflate's ~1000x and costs ~50 index bytes
    a packet, so the ratio bound is what keeps memory proportional to the file the user was given. ``floor``
    keeps small files out of the ratio's reach; ``ratio = inf`` lifts the limit.
    """

    floor: int = 128 << 20
    ratio: float = 200.0

    @classmethod
    def from_env(cls) -> GzipLimit:
        """The limit from ``TRACER_GZIP_MAX_MB`` / ``TRACER_GZIP_MAX_RATIO``; a bad value is a ``CaptureError``."""
        return cls(floor=int(_env_number(GZIP_MAX_MB_ENV, cls.floor / (1 << 20)) * (1 << 20)),
                   ratio=_env_number(GZIP_MAX_RATIO_ENV, cls.ratio))

    def allowed(self, compressed: int) -> float:
        """Inflated bytes allowed for ``compressed`` bytes of gzip input."""
        return max(self.floor, self.ratio * max(compressed, 1))

    def describe(self) -> str:
        return f"{GZIP_MAX_MB_ENV}={self.floor / (1 << 20):g} or {GZIP_MAX_RATIO_ENV}={self.ratio:g}"


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:          # negative or NaN
        raise CaptureError(f"{name}={text!r}: expected a number >= 0 (inf lifts the gzip limit)")
    return value


class Spool:
    """A temporary file filled by a background thread from a stream (stdin, a gzip decoder).

    ``size`` only counts bytes already written and flushed, so a reader never sees a half-written chunk.
    ``error`` holds a one-line problem when the stream broke (a truncated gzip member, a read error) or inflated
    beyond ``limit`` (``compressed()`` gives the gzip bytes behind it: the file's size, or stdin's bytes so far).
    """

    def __init__(self, stream: BinaryIO, label: str, source: BinaryIO | None = None, *,
                 limit: GzipLimit | None = None, compressed: Callable[[], int] | None = None) -> None:
        # ``source``: the compressed file under a gzip stream, whose position and size give load progress.
        self._source = source
        self._limit = limit
        self._compressed = compressed
        self.source_total = os.fstat(source.fileno()).st_size if source is not None else 0
        self.source_pos = 0
        fd, self.path = tempfile.mkstemp(prefix="tracer-spool-", suffix=".cap")
        self._out = os.fdopen(fd, "wb")
        # Read through our own descriptor and unlink the name at once: the spool disappears with the process,
        # however it ends (even killed), and no other process can find it.
        self.read_fd = os.open(self.path, os.O_RDONLY)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._stream = stream
        self._label = label
        self.size = 0
        self.done = False
        self.error: str | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._copy, name=f"spool {label}", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        try:
            while True:
                chunk = self._stream.read1(_CHUNK) if hasattr(self._stream, "read1") else self._stream.read(_CHUNK)
                if not chunk:
                    break
                over = self._over_limit(len(chunk))
                if over is not None:
                    chunk = chunk[:len(chunk) - over[0]]
                    self.error = over[1]
                self._out.write(chunk)
                self._out.flush()
                with self._cond:
                    self.size += len(chunk)
                    if self._source is not None:
                        self.source_pos = self._source.tell()
                    self._cond.notify_all()
                if self.error:
                    break
        except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as exc:
            # A gzip stream cut short ("Compressed file ended before the end-of-stream marker") keeps what decoded.
            self.error = str(exc) or type(exc).__name__
        finally:
            try:
                self._out.close()
            except OSError:
                pass
            if self._source is not None:
                self.source_pos = self.source_total
                try:
                    self._source.close()
                except OSError:
                    pass
            with self._cond:
                self.done = True
                self._cond.notify_all()

    def _over_limit(self, n: int) -> tuple[int, str] | None:
        """(bytes of the next ``n`` beyond the gzip limit, why) when writing them would cross it, else None."""
        if self._limit is None or self._compressed is None:
            return None
        compressed = self._compressed()
        allowed = self._limit.allowed(compressed)
        if self.size + n <= allowed:
            return None
        keep = max(0, int(allowed) - self.size)
        inflated = self.size + keep
        return n - keep, (f"stopped inflating at {inflated:,} bytes = {inflated / max(compressed, 1):.0f}x the "
                          f"{compressed:,} compressed bytes, the gzip limit; raise {self._limit.describe()} "
                          f"to read more")

    def wait(self, size: int, timeout: float | None = None) -> bool:
        """Block until more than ``size`` bytes are spooled or the stream ended; True if it grew."""
        with self._cond:
            if self.size <= size and not self.done:
                self._cond.wait(timeout)
            return self.size > size

    def wait_until(self, size: int, timeout: float) -> None:
        """Block until ``size`` bytes are spooled, the stream ended, or ``timeout`` s passed."""
        with self._cond:
            self._cond.wait_for(lambda: self.size >= size or self.done, timeout)

    def close(self) -> None:
        fd, self.read_fd = self.read_fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


class CaptureFile:
    """One capture as the readers see it: ``name`` as the user gave it, ``path`` on disk, ``kind`` by magic.

    ``kind`` is ``"pcap"`` or ``"pcapng"``; ``magic`` the first four bytes. ``complete()`` is False while a spool
    or a followed file may still grow; ``size()`` is the number of bytes that can be read now.
    """

    def __init__(self, name: str, path: str, *, spool: Spool | None = None, follow: bool = False) -> None:
        self.name = name
        self.path = path
        self.spool = spool
        self.follow = follow
        self.gzip = False
        self._mm: mmap.mmap | None = None
        self._mm_size = 0
        self._fd: int | None = None
        self.magic = b""
        self.kind = ""

    # ----- size and growth ------------------------------------------------------------------------------
    def size(self) -> int:
        if self.spool is not None:
            return self.spool.size
        try:
            return os.fstat(self._fileno()).st_size
        except OSError:
            return 0

    def complete(self) -> bool:
        if self.spool is not None:
            return self.spool.done
        return not self.follow

    def stop_following(self) -> None:
        """The writer is gone (live capture stopped): the file is complete as it is now."""
        self.follow = False

    def wait(self, size: int, timeout: float = 0.2) -> bool:
        """Wait up to ``timeout`` s for the capture to grow beyond ``size`` bytes; True if it did."""
        if self.spool is not None:
            return self.spool.wait(size, timeout)
        if not self.follow:
            return False
        threading.Event().wait(timeout)
        return self.size() > size

    def gather(self, extra: int, timeout: float = 0.05) -> None:
        """Let a growing input accumulate up to ``extra`` more bytes (at most ``timeout`` s), so a reader that
        keeps up with a slow writer reads batches, not a few records at a time."""
        if self.complete():
            return
        if self.spool is not None:
            self.spool.wait_until(self.spool.size + extra, timeout)
        else:
            threading.Event().wait(timeout)

    def progress(self, pos: int) -> tuple[int, int]:
        """(done, total) bytes for a reader at ``pos``: in compressed bytes for gzip (the spool's final size is
        unknown while it is written), else in file bytes."""
        spool = self.spool
        if spool is not None and spool.source_total:
            done = int(spool.source_pos * (pos / spool.size)) if spool.size else 0
            return done, spool.source_total
        return pos, max(self.size(), pos)

    @property
    def problem(self) -> str | None:
        """Why the spooled stream ended early (gzip cut short), or None."""
        return self.spool.error if self.spool is not None else None

    # ----- bytes ----------------------------------------------------------------------------------------
    def _fileno(self) -> int:
        if self.spool is not None:
            return self.spool.read_fd
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
            # Closed when this object goes away (its index dropped, or the file refused while sniffing): a
            # process that indexes file after file (a TUI session, a script) must not run out of descriptors.
            # The mmaps hold their own duplicate of the descriptor, so closing ours never invalidates them.
            self._fd_closer = weakref.finalize(self, _close_quietly, self._fd)
        return self._fd

    def mapping(self) -> mmap.mmap | None:
        """A read-only mmap covering at least the bytes available now (re-mapped when the file grew)."""
        size = self.size()
        if size == 0:
            return None
        if self._mm is None or size > self._mm_size:
            # Old maps are left to the garbage collector: numpy views of them may still be alive.
            self._mm = mmap.mmap(self._fileno(), size, access=mmap.ACCESS_READ)
            self._mm_size = size
        return self._mm

    def read_at(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (fewer at the end of the file); bounded by the file, never by trust."""
        mm = self.mapping()
        if mm is None or offset >= self._mm_size:
            if self.size() > self._mm_size:
                mm = self.mapping()
            if mm is None or offset >= self._mm_size:
                return b""
        return mm[offset:offset + max(0, length)]

    def release(self, lo: int, hi: int) -> None:
        """Tell the kernel bytes ``lo..hi`` of the map are not needed soon (read-only file pages: no data lost,
        they are read again from the page cache on the next touch). Keeps the process RSS to the index itself."""
        mm = self._mm
        if mm is None:
            return
        page = mmap.PAGESIZE
        start = (max(lo, 0) + page - 1) // page * page
        end = min(hi, self._mm_size) // page * page
        if end > start:
            try:
                mm.madvise(mmap.MADV_DONTNEED, start, end - start)
            except (AttributeError, OSError, ValueError):
                pass

    def close(self) -> None:
        if self._fd is not None:
            self._fd_closer()  # closes once, however often close() and the finalizer run
            self._fd = None
        if self.spool is not None:
            self.spool.close()


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _sniff(cf: CaptureFile, stopped=None) -> None:
    """Read the magic (waiting for a spool or a followed file to have 4 bytes) and set ``kind``; raise if not a
    capture. ``stopped()`` returning True ends the wait for a followed file (the writer went away)."""
    while cf.size() < 4 and not cf.complete():
        if stopped is not None and stopped():
            cf.stop_following()
            break
        cf.wait(cf.size(), 0.2)
    head = cf.read_at(0, 4)
    cf.magic = head
    if not head:
        raise CaptureError(f"{cf.name}: empty file, not a capture")
    if head in PCAP_MAGICS:
        cf.kind = "pcap"
    elif head == PCAPNG_MAGIC:
        cf.kind = "pcapng"
    elif len(head) < 4:
        raise CaptureError(f"{cf.name}: truncated file ({len(head)} bytes), not a capture")
    else:
        raise CaptureError(f"{cf.name}: not a pcap or pcapng file (magic {head.hex()})")


def open_capture(name: str, *, follow: bool = False, stopped=None) -> CaptureFile:
    """Open ``name`` (a path, or ``-`` for standard input) and identify its format by magic, not by extension.

    ``follow=True``: the file is still being written (a live spool); reading waits for it to grow until
    ``stop_following()`` (or ``stopped()`` returns True while waiting for its first bytes).
    gzip input (by magic) and stdin are spooled to a temporary file by a background thread. Raises
    ``CaptureError`` with a one-line reason when the file is missing, unreadable, empty or not a capture.
    """
    if name == "-":
        # Raw fd reads: a daemon thread blocked in a *buffered* stdin read aborts the interpreter at exit.
        raw = os.fdopen(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
        head = _read_exactly(raw, 2)
        prefixed = _Prefixed(head, raw)
        stream: BinaryIO = prefixed
        cf = CaptureFile(name, "", spool=None)
        limit = None
        if head == GZIP_MAGIC:
            limit = GzipLimit.from_env()
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
            cf.gzip = True
        cf.spool = Spool(stream, "stdin", limit=limit, compressed=lambda: prefixed.consumed)
        cf.path = cf.spool.path
        try:
            _sniff(cf)
        except CaptureError:
            if cf.problem and cf.spool.size == 0:
                raise CaptureError(f"-: broken gzip data ({cf.problem})") from None
            raise
        return cf
    try:
        with open(name, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.EISDIR:
            reason = "is a directory"
        raise CaptureError(f"{name}: {reason}") from None
    if head[:2] == GZIP_MAGIC:
        limit = GzipLimit.from_env()
        try:
            raw_file = open(name, "rb")  # noqa: SIM115 - owned by the spool thread's GzipFile
            stream = gzip.GzipFile(fileobj=raw_file, mode="rb")
        except OSError as exc:
            raise CaptureError(f"{name}: {exc}") from None
        cf = CaptureFile(name, "", spool=None)
        total = os.fstat(raw_file.fileno()).st_size
        cf.spool = Spool(stream, name, source=raw_file, limit=limit, compressed=lambda: total)
        cf.path = cf.spool.path
        cf.gzip = True
        try:
            _sniff(cf)
        except CaptureError as exc:
            problem = cf.problem
            cf.close()
            if problem and cf.spool.size == 0:
                raise CaptureError(f"{name}: broken gzip data ({problem})") from None
            raise exc from None
        return cf
    cf = CaptureFile(name, name, follow=follow)
    try:
        _sniff(cf, stopped)
    except CaptureError:
        cf.close()
        raise
    return cf


def _read_exactly(raw: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _Prefixed:
    """A stream that first returns ``head`` (bytes already read to sniff the magic), then the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw
        self.consumed = len(head)       # bytes taken from ``raw`` so far (the gzip limit's compressed size)

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        data = self._raw.read(n if n and n > 0 else _CHUNK) or b""
        self.consumed += len(data)
        return data

    read1 = read
