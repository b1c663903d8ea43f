"""The columnar packet index: one numpy array per field, built incrementally from capture files.

``IndexBuilder(paths).run()`` reads every file in batches (a small first batch so the first rows show at once,
then bigger ones), decodes each batch with ``tracer.decode.fields.decode_frames`` and appends it to
``builder.index`` (a ``PacketIndex``), yielding a ``Progress`` after each batch. ``load_index`` does the whole
thing. One file keeps file order; several files are merged by timestamp, ties in file order (a watermark merge:
rows are released once every unfinished file has read past their timestamp). Frames stay on disk: ``frame(row)``
reads one from the mmap on demand.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from tracer.capture.memory import release_freed_memory
from tracer.capture.pcap import PcapReader
from tracer.capture.pcapng import PcapngReader
from tracer.capture.points import node_of, point_for, split_point
from tracer.capture.records import Records
from tracer.capture.source import CaptureFile, open_capture
from tracer.capture.store import ColumnStore
from tracer.decode.addr6 import Addr6Table
from tracer.decode.fields import COLUMNS, decode_frames
from tracer.errors import CaptureError, one_line

DEFAULT_VXLAN_PORTS = (4789, 8472)
FIRST_BATCH = 1000
LINKTYPE_SLL2 = 276
#: The ``source`` column is uint16; SLL2 interface indexes stop getting their own Source well before that.
MAX_SOURCES = 8192
SOURCE_ID_MAX = 0xFFFF  # the ``source`` column is uint16
#: Every index column and its dtype (docs/CONTRACTS.md): the reader's five, then the decoded ones.
SCHEMA: dict[str, np.dtype] = {"ts_ns": np.dtype(np.int64), "offset": np.dtype(np.int64),
                               "caplen": np.dtype(np.uint32), "origlen": np.dtype(np.uint32),
                               "source": np.dtype(np.uint16), **COLUMNS}


@dataclass(frozen=True)
class Source:
    """Where a packet came from: one interface of one file (``index.sources[index["source"][row]]``)."""

    id: int
    file: str                   # the path as the user gave it ("-" for stdin)
    file_id: int                # position of the file on the command line
    iface: str | None           # pcapng if_name
    description: str | None     # pcapng if_description
    linktype: int
    snaplen: int
    point: str | None           # capture point name (tracer.capture.points)
    node: str | None
    ifindex: int | None = None  # Linux cooked v2 (SLL2) interface index: one Source per index seen


@dataclass
class Progress:
    """One step of an incremental build."""

    rows: int                   # packets indexed so far (len(index))
    bytes_read: int
    bytes_total: int            # bytes known so far (grows for stdin and followed files)
    elapsed: float
    done: bool
    index: PacketIndex

    @property
    def fraction(self) -> float:
        if self.done:
            return 1.0
        return min(self.bytes_read / self.bytes_total, 1.0) if self.bytes_total else 0.0


class PacketIndex:
    """Columns of every packet indexed so far; see docs/CONTRACTS.md ("The packet index")."""

    def __init__(self, vxlan_ports: Sequence[int] = DEFAULT_VXLAN_PORTS) -> None:
        self.vxlan_ports = tuple(vxlan_ports)
        self.sources: list[Source] = []
        self.addr6 = Addr6Table()
        self.warnings: list[str] = []
        self.files: list[CaptureFile | None] = []      # by file_id; None for a file that could not be opened
        self.names: dict[str, list[str]] = {}         # pcapng Name Resolution Block: address -> names
        self.index_seconds = 0.0
        #: CPU seconds of a single-file build per thread ("main": reading records and appending batches,
        #: "decode": decoding them, on the worker), for the benchmark: the two overlap, so the larger is what
        #: an idle 2-core machine waits for.
        self.thread_seconds = {"main": 0.0, "decode": 0.0}
        self._store = ColumnStore(SCHEMA)

    def __len__(self) -> int:
        return len(self._store)

    def __getitem__(self, name: str) -> np.ndarray:
        """The column ``name`` for rows ``0..len-1`` (read-only)."""
        return self._store.column(name)

    def take(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Column ``name`` at ``rows`` only (no whole rebuilt column is built or cached for a few rows)."""
        store = self._store
        if hasattr(store, "take"):
            return store.take(name, rows)
        return np.asarray(store.column(name))[np.asarray(rows, dtype=np.int64)]

    @property
    def columns(self) -> tuple[str, ...]:
        return self._store.names

    def frame(self, row: int) -> bytes:
        """The captured bytes of packet ``row`` (caplen bytes), read from the file on disk."""
        row = int(row)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} out of range (index has {len(self)} rows)")
        one = {name: int(self._store.column(name, row, row + 1)[0]) for name in ("source", "offset", "caplen")} \
            if isinstance(self._store, ColumnStore) else \
            {name: int(self._store.column(name)[row]) for name in ("source", "offset", "caplen")}
        cf = self.files[self.sources[one["source"]].file_id]
        if cf is None:
            return b""
        return cf.read_at(one["offset"], one["caplen"])

    def addr(self, ver: int, value: int) -> str | None:
        """An address column value as text: ``"10.244.1.3"`` for ver 4, ``"fd00::1"`` for ver 6, else None."""
        ver = int(ver)
        if ver == 4:
            v = int(value)
            return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
        if ver == 6:
            try:
                return self.addr6.format(int(value))
            except IndexError:
                return None
        return None

    def slice(self, start: int, stop: int | None = None) -> PacketIndex:
        """A read-only index of rows ``start..stop`` sharing sources, addresses and files (for streaming)."""
        view = PacketIndex.__new__(PacketIndex)
        view.__dict__.update(self.__dict__)
        view._store = self._store.slice(start, stop)
        return view

    def drop_cache(self) -> None:
        """Forget whole columns rebuilt from the compact store (a reader that scanned every column once, such
        as the hop analysis, leaves ~40 bytes a packet of them behind); they are rebuilt when asked for again."""
        cache = getattr(self._store, "_cache", None)
        if cache is not None:
            cache.clear()

    def bytes_used(self) -> int:
        """Bytes held by the index columns (what ``bench_index`` reports per packet)."""
        return self._store.nbytes()

    def close(self) -> None:
        for cf in self.files:
            if cf is not None:
                cf.close()


@dataclass
class _File:
    cf: CaptureFile
    reader: PcapReader | PcapngReader
    file_id: int
    point: str | None
    src_ids: list[int]          # reader interface -> Source id
    packets: int = 0
    max_ts: int = -(1 << 63)
    finished: bool = False


class IndexBuilder:
    """Builds ``self.index`` from capture files in batches: ``for progress in builder.run(): ...``."""

    def __init__(self, paths: Sequence[str], *, vxlan_ports: Sequence[int] = DEFAULT_VXLAN_PORTS,
                 points: dict[str, str] | None = None, follow: bool = False, pipeline: bool = True) -> None:
        if not paths:
            raise CaptureError("no capture file given")
        self.paths = list(paths)
        self.index = PacketIndex(vxlan_ports)
        self._ports = frozenset(int(p) for p in vxlan_ports)
        self._points = dict(points or {})
        self._follow = follow
        self._pipeline = pipeline
        self._files: list[_File] = []
        self._pending: list[tuple[Records, np.ndarray, dict[str, np.ndarray]]] = []
        self._errors: list[str] = []
        self._done = False
        self._merged_disorder = False
        self._last_ts = -(1 << 63)
        self._opened = False
        self._stop = False
        self._sll2: dict[tuple[int, int], int] = {}

    # ----- setup ------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._opened = True
        for file_id, arg in enumerate(self.paths):
            path, explicit = split_point(arg)
            explicit = self._points.get(arg) or self._points.get(path) or explicit
            try:
                cf = open_capture(path, follow=self._follow, stopped=lambda: self._stop)
            except CaptureError as exc:
                self._errors.append(str(exc))
                self.index.files.append(None)
                continue
            if cf.spool is not None:
                # The spool's descriptor goes with the index (or at exit): a registered cf.close would keep every
                # spooled file open, and its unlinked temporary data on disk, for the life of the process.
                weakref.finalize(cf, cf.spool.close)
            if self._stop:
                cf.stop_following()
            reader = PcapngReader(cf) if cf.kind == "pcapng" else PcapReader(cf)
            self.index.files.append(cf)
            self._files.append(_File(cf, reader, file_id, explicit, []))
        if not self._files:
            raise CaptureError(self._errors[0] if len(self._errors) == 1 else "; ".join(self._errors))

    def _sources_of(self, f: _File) -> np.ndarray:
        """Source ids for the reader's interfaces, registering interfaces seen for the first time."""
        interfaces = f.reader.interfaces
        while len(f.src_ids) < len(interfaces):
            if len(self.index.sources) > SOURCE_ID_MAX:
                break  # the uint16 source column is full (hostile input: many files × many IDBs); see _scan
            itf = interfaces[len(f.src_ids)]
            point = point_for(f.cf.name, itf.name, f.point)
            src = Source(id=len(self.index.sources), file=f.cf.name, file_id=f.file_id, iface=itf.name,
                         description=itf.description, linktype=itf.linktype, snaplen=itf.snaplen,
                         point=point, node=node_of(point))
            self.index.sources.append(src)
            f.src_ids.append(src.id)
        return np.asarray(f.src_ids, dtype=np.uint16)

    # ----- the build loop ---------------------------------------------------------------------------------
    def run(self, batch: int = 65536, max_batch: int | None = None) -> Iterator[Progress]:
        """Index everything, yielding after each batch; the first batch is small (``FIRST_BATCH`` rows).

        One file is pipelined: while a worker thread decodes batch k (numpy, which releases the GIL in its
        loops), this thread walks the records of batch k+1, then appends batch k — so the index is only ever
        written from this thread, and is one batch behind the walk.
        """
        started = time.perf_counter()
        spent = self.index.index_seconds
        if not self._opened:
            self._open()
        limit = max(batch, max_batch or batch)
        size = min(batch, FIRST_BATCH)
        single = len(self._files) == 1
        pool = ThreadPoolExecutor(1, thread_name_prefix="tracer-decode") if single and self._pipeline else None
        inflight: tuple[tuple, Future] | None = None
        try:
            while not self._done:
                got = 0
                if single:
                    f = self._files[0]
                    cpu = time.thread_time()
                    job = self._scan(f, size)
                    got = job[1] is not None and len(job[1])
                    if inflight is not None:                # batch k-1 decoded meanwhile: append it here
                        self._append_decoded(*inflight)
                        inflight = None
                    self.index.thread_seconds["main"] += time.thread_time() - cpu
                    if got:
                        if f.packets > 0 and pool is not None:
                            inflight = (job, pool.submit(self._decode_timed, *job))
                        else:
                            self._append_decoded(job, None)  # the first rows, now
                        f.packets += len(job[1])
                    if f.finished and inflight is not None:
                        self._append_decoded(*inflight)
                        inflight = None
                    if got and got < size and not f.finished:
                        # Caught up with a growing input (stdin, gzip being inflated, live spool): let it
                        # accumulate a batch's worth (at most 50 ms) instead of decoding a few records a time.
                        f.cf.gather(min(size * 600, 4 << 20))
                else:
                    # Read the file holding the merge watermark back (smallest last timestamp), so rows of the
                    # others do not pile up unreleased; if it has nothing new yet (growing), read the others.
                    open_files = [f for f in self._files if not f.finished]
                    lagging = min(open_files, key=lambda f: f.max_ts)
                    before = lagging.packets
                    self._read_one(lagging, size)
                    if lagging.packets == before and not lagging.finished:
                        for f in open_files:
                            if f is not lagging:
                                self._read_one(f, max(size // len(open_files), 256))
                    self._release()
                    got = any(len(r) for r, _, _ in self._pending)
                self._done = all(f.finished for f in self._files)
                if self._done:
                    self._complete()
                self.index.index_seconds = spent + time.perf_counter() - started
                yield self._progress(started)
                size = min(size * 4, limit)
                if not self._done and not got and inflight is None and self._all_waiting():
                    self._wait()
        finally:
            if inflight is not None:
                inflight[1].cancel()
            if pool is not None:
                pool.shutdown(wait=True)

    def _scan(self, f: _File, n: int) -> tuple[_File, Records | None, np.ndarray | None]:
        """Read the next records of ``f`` (this thread) and map their interfaces to sources."""
        recs = f.reader.read(n)
        if f.reader.done:
            f.finished = True
        if not len(recs):
            return f, None, None
        ids = self._sources_of(f)
        if len(ids) < len(f.reader.interfaces) and not bool((recs.iface < len(ids)).all()):
            # Source ids exhausted: keep the records before the first one on an interface without an id and stop
            # reading this file (later files stop at their first new interface too), with a warning.
            keep = int(np.argmin(recs.iface < len(ids)))
            recs = Records(*(getattr(recs, c)[:keep] for c in ("ts_ns", "offset", "caplen", "origlen", "iface")))
            f.finished = True
            f.reader.state.problem = f.reader.state.problem or \
                f"more than {SOURCE_ID_MAX + 1} interfaces across the files; stopped reading here"
            if not len(recs):
                return f, None, None
        src = ids[recs.iface]
        src = self._split_sll2(f, recs, src)
        if f.packets == 0 and len(self._files) == 1 and f.cf.complete():
            # Size the columns once from the first batch's bytes per record: no regrowing copies.
            per_record = max(1, (int(recs.offset[-1]) - int(recs.offset[0])) // max(len(recs) - 1, 1))
            self._store.reserve(int(f.cf.size() / per_record * 1.05) + len(recs))
        return f, recs, src

    def _split_sll2(self, f: _File, recs: Records, src: np.ndarray) -> np.ndarray:
        """SLL2 frames (``tcpdump -i any``) carry the interface index: give each (interface, index) a Source."""
        sll2 = np.asarray([s.linktype == LINKTYPE_SLL2 for s in self.index.sources], dtype=bool)[src]
        rows = np.flatnonzero(sll2 & (recs.caplen >= 8))
        if not len(rows):
            return src
        b = np.frombuffer(f.cf.mapping(), dtype=np.uint8)
        at = recs.offset[rows] + 4            # SLL2: protocol (2), reserved (2), interface index (4, BE)
        ifindex = (b[at].astype(np.uint32) << 24) | (b[at + 1].astype(np.uint32) << 16) \
            | (b[at + 2].astype(np.uint32) << 8) | b[at + 3]
        keys = (src[rows].astype(np.uint64) << np.uint64(32)) | ifindex.astype(np.uint64)
        uniq, inv = np.unique(keys, return_inverse=True)
        ids = np.empty(len(uniq), np.uint16)
        for k, key in enumerate(uniq.tolist()):
            base, index = key >> 32, key & 0xFFFFFFFF
            found = self._sll2.get((base, index))
            if found is None and len(self.index.sources) >= MAX_SOURCES:
                found = base                      # hostile input: stop splitting, keep the file's source
            elif found is None:
                parent = self.index.sources[base]
                found = len(self.index.sources)
                self.index.sources.append(replace(parent, id=found, ifindex=index,
                                                  description=parent.description or f"SLL2 ifindex {index}"))
                self._sll2[(base, index)] = found
            ids[k] = found
        src = src.copy()
        src[rows] = ids[inv.reshape(-1)]
        return src

    def _decode_timed(self, f: _File, recs: Records, src: np.ndarray) -> dict[str, np.ndarray]:
        """Decode one batch (on the worker thread when pipelined), counting its CPU time."""
        cpu = time.thread_time()
        cols = self._decode(f, recs, src)
        self.index.thread_seconds["decode"] += time.thread_time() - cpu
        return cols

    def _append_decoded(self, job: tuple[_File, Records, np.ndarray], future: Future | None) -> None:
        """Append a decoded batch of a single-file build (decoding it here when there is no future)."""
        f, recs, src = job
        # (Waiting on the future costs no thread CPU time; the first batch's decode counts in both threads.)
        cols = future.result() if future is not None else self._decode_timed(f, recs, src)
        self._append(recs, src, cols, None)
        self._drop_pages(f, recs)

    @staticmethod
    def _drop_pages(f: _File, recs: Records) -> None:
        """The batch's frames are indexed: let the kernel unmap their pages (they stay in the page cache)."""
        f.cf.release(int(recs.offset[0]) - 32, int(recs.offset[-1]) + int(recs.caplen[-1]))

    def _decode(self, f: _File, recs: Records, src: np.ndarray) -> dict[str, np.ndarray]:
        linktypes = np.asarray([s.linktype for s in self.index.sources], dtype=np.uint16)[src]
        buf = np.frombuffer(f.cf.mapping(), dtype=np.uint8)
        return decode_frames(buf, recs.offset, recs.caplen, linktypes, vxlan_ports=self._ports,
                             addr6=self.index.addr6)

    def _all_waiting(self) -> bool:
        return all(f.finished or not f.cf.complete() for f in self._files)

    def _wait(self) -> None:
        for f in self._files:
            if not f.finished:
                f.cf.wait(f.reader.state.pos, 0.2)
                return

    def stop(self) -> None:
        """Stop following growing inputs: what is written so far is read, then the build ends (live capture
        stopped, user quit). Safe to call from another thread."""
        self._stop = True
        for f in self._files:
            f.cf.stop_following()

    def finish(self) -> PacketIndex:
        """Run to the end (if not already) and return the index."""
        for _ in self.run():
            pass
        return self.index

    def _progress(self, started: float) -> Progress:
        parts = [f.cf.progress(f.reader.state.pos) for f in self._files]
        read, total = sum(p[0] for p in parts), sum(p[1] for p in parts)
        return Progress(len(self.index), read, total, time.perf_counter() - started, self._done, self.index)

    def _read_one(self, f: _File, n: int) -> None:
        """Read and decode the next batch of one of several files into the merge's pending rows."""
        f, recs, src = self._scan(f, n)
        if recs is None:
            return
        cols = self._decode(f, recs, src)
        self._drop_pages(f, recs)
        f.packets += len(recs)
        f.max_ts = max(f.max_ts, int(recs.ts_ns.max()))
        self._pending.append((recs, src, cols))

    def _release(self) -> None:
        """Append pending rows to the index: all of them for one file, else those below the merge watermark."""
        if not self._pending:
            return
        parts = self._pending
        self._pending = []
        if len(self._files) == 1:
            for recs, src, cols in parts:
                self._append(recs, src, cols, None)
            return
        recs = Records.concat([p[0] for p in parts])
        src = np.concatenate([p[1] for p in parts])
        cols = {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]}
        open_ts = [f.max_ts for f in self._files if not f.finished]
        if open_ts:
            watermark = min(open_ts)
            ready = recs.ts_ns <= watermark
        else:
            ready = np.ones(len(recs), bool)
        file_ids = np.asarray([s.file_id for s in self.index.sources], dtype=np.int64)[src]
        order = np.lexsort((recs.offset, file_ids, recs.ts_ns))
        take = order[ready[order]]
        rest = order[~ready[order]]
        if len(take):
            if int(recs.ts_ns[take[0]]) < self._last_ts:
                self._merged_disorder = True
            self._append(recs, src, cols, take)
        if len(rest):
            rest = np.sort(rest)
            self._pending.append((Records(recs.ts_ns[rest], recs.offset[rest], recs.caplen[rest],
                                          recs.origlen[rest], recs.iface[rest]), src[rest],
                                  {k: v[rest] for k, v in cols.items()}))

    def _append(self, recs: Records, src: np.ndarray, cols: dict[str, np.ndarray], take: np.ndarray | None) -> None:
        base = {"ts_ns": recs.ts_ns, "offset": recs.offset, "caplen": recs.caplen, "origlen": recs.origlen,
                "source": src}
        base.update(cols)
        if take is not None:
            base = {k: v[take] for k, v in base.items()}
        self._last_ts = max(self._last_ts, int(base["ts_ns"].max()))
        self._store.append(base)

    @property
    def _store(self) -> ColumnStore:
        return self.index._store  # noqa: SLF001 - the builder owns the index it fills

    def _complete(self) -> None:
        """End of input: final merge order, warnings, and an error when nothing at all was readable."""
        if self._merged_disorder:
            # Some file was not in time order: re-sort everything once, stably (ts, file, position in file).
            file_ids = np.asarray([s.file_id for s in self.index.sources], dtype=np.int64)[self.index["source"]]
            order = np.lexsort((self.index["offset"], file_ids, self.index["ts_ns"]))
            self.index._store = self._store.reordered(order)  # noqa: SLF001 - one atomic switch for readers
        self._store.trim()
        release_freed_memory()      # the decode batches' freed heap (~18 bytes a packet) goes back to the OS
        for f in self._files:
            for address, names in f.reader.names:
                self.index.names.setdefault(address, []).extend(names)
        problems = []
        for f in self._files:
            why = [p for p in (f.reader.problem, f.cf.problem and f"gzip data cut short ({f.cf.problem})")
                   if p] + f.reader.state.notes
            if not why:
                continue
            line = "; ".join(why)
            if f.packets == 0 and (f.reader.problem or f.cf.problem):
                problems.append(f"{f.cf.name}: {line}")
            else:
                self.index.warnings.append(one_line(f"{f.cf.name}: {line} (kept {f.packets} packets)"))
        if len(self.index) == 0 and (problems or self._errors):
            raise CaptureError((self._errors + problems)[0] if len(self._errors + problems) == 1
                               else "; ".join(self._errors + problems))
        for err in self._errors:
            self.index.warnings.append(one_line(f"{err} (kept 0 packets)"))
        for p in problems:
            self.index.warnings.append(one_line(f"{p} (kept 0 packets)"))


def load_index(paths: Sequence[str], *, vxlan_ports: Sequence[int] = DEFAULT_VXLAN_PORTS,
               points: dict[str, str] | None = None) -> PacketIndex:
    """Index ``paths`` completely (see ``IndexBuilder``); raises ``CaptureError`` when nothing is readable."""
    builder = IndexBuilder(paths, vxlan_ports=vxlan_ports, points=points)
    for _ in builder.run(batch=65536):
        pass
    return builder.index
