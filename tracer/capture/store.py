"""Compact column storage behind ``PacketIndex``: append batches, read the contract's columns back.

The contract's 33 columns take 84 bytes per packet when every one is stored densely. Several are redundant for
most packets, so they are stored in a smaller form and rebuilt exactly on read (``column(name)`` always returns
the contract's dtype and values):

- *narrow*: ``offset`` as uint32 (files < 4 GiB), ``caplen``/``origlen`` as uint16, ``source`` as uint8 — each
  widened for good (the stored values converted once) the first time a batch does not fit;
- *outer only where encapsulated*: ``o_*`` equal ``i_*`` and ``vni`` is -1 for a packet without a tunnel
  (contract), so ``o_*`` and ``vni`` are stored only for rows with ``encap != 0``;
- *TCP/ICMP union*: a packet is TCP or ICMP, never both, so ``tcp_seq`` shares a uint32 with ``icmp_id:icmp_seq``
  and ``tcp_ack`` one with ``icmp_type:icmp_code``, told apart by ``i_proto``;
- *whole frames*: ``origlen`` equals ``caplen`` unless the capture had a snap length, so it is not stored until a
  batch holds a cut frame;
- *time blocks*: ``ts_ns`` is an int64 base per block of ``TS_BLOCK`` rows (``ts_base``) plus a uint32 offset per
  row from its block's base (``ts_lo``), 4 bytes a packet instead of 8 while a block spans less than 2^32 ns
  (4.29 s). A block that does not fit (an idle gap, a row below the base, a garbage time) is an *exception*: it
  keeps its base and offsets (the low 32 bits of ``value - base``) and adds the high 32 bits of each row's
  ``value - base`` (int32, zero for the rows that fit) in a side table, so only that block costs 8 bytes a row
  and the rest of the column stays compact. The arithmetic is modulo 2^64, exact for any int64.

Each of the other rules is checked on every batch; a batch that breaks it switches that group to dense storage
(the rows stored so far are converted), so the round trip is exact whatever the decoder produces. ``ts_ns`` is
never made dense: its exceptions are per block. Rebuilt whole columns are cached until the next append, so a
reader that looks at single rows does not pay a rebuild per row; windows (``column(name, lo, hi)``) are rebuilt
from their own rows only.

Readers on other threads: rows below ``len(store)`` are never rewritten (a block that becomes an exception later
gets high parts only for its new rows, its stored rows already fit), the physical column dict and the exception
table are replaced, never mutated in their visible part, and ``len`` grows last.
"""

from __future__ import annotations

import numpy as np

NARROW = {"offset": np.uint32, "caplen": np.uint16, "origlen": np.uint16, "source": np.uint8}
OUTER = ("o_ver", "o_src", "o_dst", "o_proto", "o_ttl", "o_ipid", "o_sport", "o_dport")
SPARSE = OUTER + ("vni",)
UNION = ("tcp_seq", "tcp_ack", "icmp_id", "icmp_seq", "icmp_type", "icmp_code")
ICMP_PROTOS = (1, 58)
SAME_LEN = ("origlen",)     # equal to caplen until a frame was cut by a snap length
# Rows per ts_ns block. A block fits while its rows span < 4.29 s, so the smaller the block, the lower the packet
# rate that stays compact; the base costs 8 bytes a block. Measured on Poisson traffic (bytes a packet for ts_ns):
# 64 rows: 4.12 from ~20 packets/s up; 256: 4.03 above ~250/s, 5.8 at 60/s, 8.1 at 20/s; 1024: 8.0 below ~250/s.
# Whole-column and 64-row-window rebuilds cost the same for all three (1 ms a million rows, 4 µs a window).
TS_SHIFT = 6
TS_BLOCK = 1 << TS_SHIFT
# A block not yet full gets its base this far below its lowest time, so the rows of the next batch may step back
# that much (multi-queue capture, a merge watermark) without making the block an exception.
TS_SLACK = 1 << 28          # ns (0.27 s); the block still reaches 2^32 - 2^28 ns (4.0 s) forward


class _Grow:
    """A 1-D array with spare capacity: ``append`` copies a batch in, ``data`` is the filled part."""

    def __init__(self, dtype, capacity: int = 0) -> None:
        self.arr = np.empty(capacity, dtype)
        self.n = 0

    @property
    def data(self) -> np.ndarray:
        return self.arr[:self.n]

    def reserve(self, total: int) -> None:
        if total > len(self.arr):
            new = np.empty(total, self.arr.dtype)
            new[:self.n] = self.arr[:self.n]
            self.arr = new

    def append(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.arr):
            self.reserve(max(need, int(len(self.arr) * 1.5), 4096))
        self.arr[self.n:need] = values
        self.n = need

    def replace(self, values: np.ndarray) -> None:
        self.arr = np.ascontiguousarray(values)
        self.n = len(values)

    def trim(self) -> None:
        # Spare capacity under 2% is not worth a copy of the column.
        if len(self.arr) > self.n * 1.02 + 64:
            self.arr = self.arr[:self.n].copy()


class ColumnStore:
    """The index's columns, ``len(store)`` rows each (see the module docstring for the storage rules)."""

    def __init__(self, schema: dict[str, np.dtype]) -> None:
        self.schema = dict(schema)
        self._n = 0
        self._phys: dict[str, _Grow] = {}
        self._narrow = {k: v for k, v in NARROW.items() if k in schema}
        self._sparse = all(k in schema for k in SPARSE + ("encap", "i_ver"))
        self._union = all(k in schema for k in UNION + ("i_proto",))
        self._same_len = "origlen" in schema and "caplen" in schema
        for name, dt in schema.items():
            self._phys[name] = _Grow(self._narrow.get(name, dt))
        for name in (SPARSE if self._sparse else ()) + (UNION if self._union else ()) + \
                (SAME_LEN if self._same_len else ()):
            del self._phys[name]
        if self._union:
            self._phys["l4a"] = _Grow(np.uint32)
            self._phys["l4b"] = _Grow(np.uint32)
        if self._sparse:
            for name in SPARSE:
                self._phys["x_" + name] = _Grow(schema[name])
        self._ts = schema.get("ts_ns") == np.dtype(np.int64)
        if self._ts:
            del self._phys["ts_ns"]
            self._phys["ts_base"] = _Grow(np.int64)
            self._phys["ts_lo"] = _Grow(np.uint32)
        # Exception blocks of ts_ns: (block numbers ascending, int32 high parts [k, TS_BLOCK]) as published views
        # of the backing arrays below, replaced as one tuple (see the module docstring on readers).
        self._tsx: tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty((0, TS_BLOCK), np.int32))
        self._tsx_blk = self._tsx[0]
        self._tsx_hi = self._tsx[1]
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.schema)

    # ----- writing ----------------------------------------------------------------------------------------
    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows in total (an estimate from the file size saves regrowing)."""
        for name, grow in self._phys.items():
            if name == "ts_base":
                grow.reserve((rows >> TS_SHIFT) + 1)
            elif not name.startswith("x_"):
                grow.reserve(rows)

    def append(self, cols: dict[str, np.ndarray]) -> None:
        m = len(cols["ts_ns"])
        if m == 0:
            return
        self._cache.clear()
        if self._same_len and not np.array_equal(cols["origlen"], cols["caplen"]):
            self._densify(SAME_LEN)
        for name, target in list(self._narrow.items()):
            if name not in self._phys:
                continue        # derived (origlen while it equals caplen): caplen's own check covers it
            values = cols[name]
            if values.size and (int(values.max()) > np.iinfo(target).max or int(values.min()) < 0):
                self._widen(name)
        enc = cols["encap"] != 0
        if self._sparse and not enc.all():
            # Elementwise differences over the whole batch (no fancy indexing): cheaper than comparing subsets.
            diff = (cols["o_src"] ^ cols["i_src"]) | (cols["o_dst"] ^ cols["i_dst"]) \
                | ((cols["o_ipid"] ^ cols["i_ipid"]) | (cols["o_sport"] ^ cols["i_sport"])
                   | (cols["o_dport"] ^ cols["i_dport"])) \
                | ((cols["o_ver"] ^ cols["i_ver"]) | (cols["o_proto"] ^ cols["i_proto"])
                   | (cols["o_ttl"] ^ cols["i_ttl"]))
            if ((diff != 0) & ~enc).any() or ((cols["vni"] != -1) & ~enc).any():
                self._densify(SPARSE)
        if self._union:
            icmp = np.isin(cols["i_proto"], ICMP_PROTOS)
            tcp_part = (cols["tcp_seq"] | cols["tcp_ack"]) != 0
            icmp_part = ((cols["icmp_id"] | cols["icmp_seq"]) | (cols["icmp_type"] | cols["icmp_code"])) != 0
            if (tcp_part & icmp).any() or (icmp_part & ~icmp).any():
                self._densify(UNION)
        if self._sparse:
            rows = np.flatnonzero(enc)
            for name in SPARSE:
                self._phys["x_" + name].append(cols[name][rows])
        if self._union:
            self._phys["l4a"].append(cols["tcp_seq"] | (cols["icmp_id"].astype(np.uint32) << 16)
                                     | cols["icmp_seq"])
            self._phys["l4b"].append(cols["tcp_ack"] | (cols["icmp_type"].astype(np.uint32) << 8)
                                     | cols["icmp_code"])
        if self._ts:
            self._append_ts(np.asarray(cols["ts_ns"], dtype=np.int64))
        for name, grow in self._phys.items():
            if name in cols:
                grow.append(cols[name])
        self._n += m           # last: a reader never sees a row before all its parts are stored

    def _append_ts(self, ts: np.ndarray) -> None:
        """Store ``ts`` (rows ``len..len+m``) as block bases, uint32 offsets and, for blocks that do not fit,
        high parts in the exception table; the rows already stored are not touched."""
        n0, m = self._n, len(ts)
        base_g, lo_g = self._phys["ts_base"], self._phys["ts_lo"]
        head = min((-n0) % TS_BLOCK, m)               # rows completing the partly filled last block
        starts = np.arange(head, m, TS_BLOCK)         # batch positions where a new block begins
        if len(starts):
            bases = np.minimum.reduceat(ts, starts)
            tail = ts[starts[-1]:]
            if len(tail) < TS_BLOCK:                  # partly filled: leave room for a slight step back
                low = int(bases[-1])
                if int(tail.max()) - low < (1 << 32) - 2 * TS_SLACK and low >= -(1 << 63) + TS_SLACK:
                    bases[-1] = low - TS_SLACK
            base_g.append(bases)
        first = n0 >> TS_SHIFT
        row_base = base_g.arr[first:((n0 + m - 1) >> TS_SHIFT) + 1]
        counts = np.diff(np.concatenate(([0], starts, [m]))) if head else np.diff(np.append(starts, m))
        d = ts - np.repeat(row_base, counts)          # modulo 2^64: exact whatever the values
        lo_g.append(d.astype(np.uint32))              # the low 32 bits
        hi = d >> 32
        bad = np.flatnonzero(hi)
        if len(bad):
            self._ts_exceptions(n0 + bad, hi[bad].astype(np.int32))

    def _ts_exceptions(self, rows: np.ndarray, hi: np.ndarray) -> None:
        """Record the high parts ``hi`` of ``rows`` (ascending, not yet visible), adding their blocks to the
        exception table; only the last block there can already hold rows (blocks are filled in order)."""
        blocks = rows >> TS_SHIFT
        known = self._tsx[0]
        new = np.unique(blocks)
        if len(known) and new[0] == known[-1]:
            new = new[1:]
        k = len(known)
        if len(new):
            need = k + len(new)
            if need > len(self._tsx_blk):             # grow the backing arrays; published views keep the old ones
                cap = max(need, 2 * len(self._tsx_blk), 16)
                blk = np.empty(cap, np.int64)
                blk[:k] = known
                hi_arr = np.zeros((cap, TS_BLOCK), np.int32)
                hi_arr[:k] = self._tsx[1]
                self._tsx_blk, self._tsx_hi = blk, hi_arr
            self._tsx_blk[k:need] = new
            self._tsx_hi[k:need] = 0
            k = need
        pos = np.searchsorted(self._tsx_blk[:k], blocks)
        self._tsx_hi[pos, rows & (TS_BLOCK - 1)] = hi
        self._tsx = (self._tsx_blk[:k], self._tsx_hi[:k])

    def _widen(self, name: str) -> None:
        grow = self._phys[name]
        grow.replace(grow.data.astype(self.schema[name]))
        del self._narrow[name]

    def _densify(self, group: tuple[str, ...]) -> None:
        """Store ``group`` densely from now on, converting the rows stored so far.

        The physical column dict is replaced, never mutated, so a reader on another thread that took the old
        dict still sees a consistent set of arrays.
        """
        values = {name: self._rebuild(name, 0, self._n) for name in group}
        phys = dict(self._phys)
        if group is SPARSE:
            for name in SPARSE:
                del phys["x_" + name]
        elif group is UNION:
            del phys["l4a"], phys["l4b"]
        for name, arr in values.items():
            grow = _Grow(self._narrow.get(name, self.schema[name]))
            grow.append(arr)
            phys[name] = grow
        self._phys = phys
        if group is SPARSE:
            self._sparse = False
        elif group is UNION:
            self._union = False
        else:
            self._same_len = False
        self._cache.clear()

    def reordered(self, order: np.ndarray) -> ColumnStore:
        """A new store with every row permuted (the final merge sort of several files); this one is unchanged,
        so readers on other threads keep a consistent view until the index switches to the new one."""
        new = ColumnStore(self.schema)
        new.append({name: self.column(name)[order] for name in self.schema})
        return new

    def trim(self) -> None:
        """Release spare capacity once the input is complete."""
        for grow in self._phys.values():
            grow.trim()
        blk, hi = self._tsx
        if len(self._tsx_blk) > len(blk):
            self._tsx_blk, self._tsx_hi = blk.copy(), hi.copy()
            self._tsx = (self._tsx_blk, self._tsx_hi)

    # ----- reading ----------------------------------------------------------------------------------------
    def column(self, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows ``lo..hi`` of column ``name`` in the contract's dtype (read-only)."""
        if name not in self.schema:
            raise KeyError(f"no index column {name!r}")
        hi = self._n if hi is None else min(hi, self._n)
        lo = min(max(lo, 0), hi)
        whole = lo == 0 and hi == self._n
        if whole:
            hit = self._cache.get(name)
            if hit is not None and len(hit) == self._n:
                return hit
        grow = self._phys.get(name)
        if grow is not None and name not in self._narrow:
            out = grow.arr[lo:hi]
            if len(out) < hi - lo:                    # widened on another thread meanwhile: read again
                out = self._rebuild(name, lo, hi)
        else:
            out = self._rebuild(name, lo, hi)
            if whole:
                self._cache[name] = out
        out.flags.writeable = False
        return out

    def take(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Column ``name`` at the given rows (any order), in the contract's dtype, without caching a rebuilt
        whole column: a few rows of a compact column are rebuilt one by one, many from one uncached rebuild."""
        if name not in self.schema:
            raise KeyError(f"no index column {name!r}")
        rows = np.asarray(rows, dtype=np.int64)
        grow = self._phys.get(name)
        if grow is not None and name not in self._narrow:
            return grow.arr[:self._n][rows]
        hit = self._cache.get(name)
        if hit is not None and len(hit) == self._n:
            return hit[rows]
        if name == "ts_ns" and self._ts:
            return self._ts_take(rows)
        if len(rows) > 256:
            return self._rebuild(name, 0, self._n)[rows]
        out = np.empty(len(rows), dtype=self.schema[name])
        for k, r in enumerate(rows.tolist()):
            if not 0 <= r < self._n:
                raise IndexError(f"row {r} out of range ({self._n} rows)")
            out[k] = self._rebuild(name, r, r + 1)[0]
        return out

    def _ts_take(self, rows: np.ndarray) -> np.ndarray:
        """``ts_ns`` at ``rows``: base of each row's block + its offset (+ high part in an exception block)."""
        n = self._n
        rows = np.where(rows < 0, rows + n, rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"rows out of range ({n} rows)")
        phys, (xblk, xhi) = self._phys, self._tsx
        blocks = rows >> TS_SHIFT
        out = phys["ts_base"].arr[blocks] + phys["ts_lo"].arr[rows]
        if len(xblk):
            pos = np.minimum(np.searchsorted(xblk, blocks), len(xblk) - 1)
            hit = xblk[pos] == blocks
            if hit.any():
                out[hit] += xhi[pos[hit], rows[hit] & (TS_BLOCK - 1)].astype(np.int64) << 32
        return out

    def _ts_rebuild(self, lo: int, hi: int) -> np.ndarray:
        """``ts_ns`` rows ``lo..hi``: offsets widened, each block's base added over its rows (a reshaped view, no
        per-row base array), then the high parts of the exception blocks in the window."""
        phys, (xblk, xhi) = self._phys, self._tsx
        out = phys["ts_lo"].arr[lo:hi].astype(np.int64)
        if hi <= lo:
            return out
        base = phys["ts_base"].arr
        b0 = lo >> TS_SHIFT
        cut = min(hi, (b0 + 1) << TS_SHIFT)           # end of the first (maybe partial) block
        out[:cut - lo] += base[b0]
        full = (hi - cut) >> TS_SHIFT
        if full:
            blocks = out[cut - lo:cut - lo + (full << TS_SHIFT)].reshape(full, TS_BLOCK)
            blocks += base[b0 + 1:b0 + 1 + full, None]
        rest = cut + (full << TS_SHIFT)
        if rest < hi:
            out[rest - lo:] += base[rest >> TS_SHIFT]
        if len(xblk):
            i0 = int(np.searchsorted(xblk, b0))
            i1 = int(np.searchsorted(xblk, (hi - 1) >> TS_SHIFT, side="right"))
            if i1 > i0:
                rows = (xblk[i0:i1, None] << TS_SHIFT) + np.arange(TS_BLOCK)
                keep = (rows >= lo) & (rows < hi)
                out[rows[keep] - lo] += xhi[i0:i1][keep].astype(np.int64) << 32
        return out

    def _rebuild(self, name: str, lo: int, hi: int) -> np.ndarray:
        phys = self._phys                             # one consistent set (see _densify)
        grow = phys.get(name)
        if grow is not None:                          # dense (possibly narrow)
            return grow.arr[lo:hi].astype(self.schema[name])
        if name == "ts_ns":
            return self._ts_rebuild(lo, hi)
        if name in SAME_LEN:
            return phys["caplen"].arr[lo:hi].astype(self.schema[name])
        if name in SPARSE:
            enc = phys["encap"].arr[lo:hi] != 0
            start = int(np.count_nonzero(phys["encap"].arr[:lo])) if lo else 0
            stored = phys["x_" + name].arr[start:start + int(np.count_nonzero(enc))]
            if name == "vni":
                out = np.full(hi - lo, -1, self.schema[name])
            else:
                out = phys["i" + name[1:]].arr[lo:hi].copy()
            out[enc] = stored
            return out
        icmp = np.isin(phys["i_proto"].arr[lo:hi], ICMP_PROTOS)
        a = phys["l4a"].arr[lo:hi]
        b = phys["l4b"].arr[lo:hi]
        if name == "tcp_seq":
            out = np.where(icmp, 0, a)
        elif name == "tcp_ack":
            out = np.where(icmp, 0, b)
        elif name == "icmp_id":
            out = np.where(icmp, a >> 16, 0)
        elif name == "icmp_seq":
            out = np.where(icmp, a & 0xFFFF, 0)
        elif name == "icmp_type":
            out = np.where(icmp, b >> 8, 0)
        else:
            out = np.where(icmp, b & 0xFF, 0)
        return out.astype(self.schema[name])

    def slice(self, start: int, stop: int | None) -> StoreSlice:
        return StoreSlice(self, start, len(self) if stop is None else stop)

    def nbytes(self) -> int:
        """Bytes of column data held (filled rows only; spare capacity and caches not counted)."""
        blk, hi = self._tsx
        return sum(g.data.nbytes for g in self._phys.values()) + blk.nbytes + hi.nbytes

    def cache_bytes(self) -> int:
        return sum(a.nbytes for a in self._cache.values())


class StoreSlice:
    """Rows ``start..stop`` of a store, read-only (what ``PacketIndex.slice`` stands on)."""

    def __init__(self, store: ColumnStore, start: int, stop: int) -> None:
        n = len(store)
        self._store = store
        self._lo = min(max(start, 0), n)
        self._hi = max(self._lo, min(stop, n))

    def __len__(self) -> int:
        return self._hi - self._lo

    @property
    def names(self) -> tuple[str, ...]:
        return self._store.names

    def column(self, name: str) -> np.ndarray:
        return self._store.column(name, self._lo, self._hi)

    def take(self, name: str, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range ({len(self)} rows)")
        return self._store.take(name, rows + self._lo)

    def slice(self, start: int, stop: int | None) -> StoreSlice:
        stop = len(self) if stop is None else stop
        return StoreSlice(self._store, self._lo + start, self._lo + min(stop, len(self)))

    def nbytes(self) -> int:
        return 0
