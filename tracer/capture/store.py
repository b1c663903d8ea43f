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
  batch holds a cut frame.

Each rule is checked on every batch; a batch that breaks it switches that group to dense storage (the rows
stored so far are converted), so the round trip is exact whatever the decoder produces. Rebuilt columns are
cached until the next append, so a reader that looks at single rows does not pay a rebuild per row.
"""

from __future__ import annotations

import numpy as np

NARROW = {"offset": np.uint32, "caplen": np.uint16, "origlen": np.uint16, "source": np.uint8}
OUTER = ("o_ver", "o_src", "o_dst", "o_proto", "o_ttl", "o_ipid", "o_sport", "o_dport")
SPARSE = OUTER + ("vni",)
UNION = ("tcp_seq", "tcp_ack", "icmp_id", "icmp_seq", "icmp_type", "icmp_code")
ICMP_PROTOS = (1, 58)
SAME_LEN = ("origlen",)     # equal to caplen until a frame was cut by a snap length


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
            if not name.startswith("x_"):
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
        for name, grow in self._phys.items():
            if name in cols:
                grow.append(cols[name])
        self._n += m

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
        if len(rows) > 256:
            return self._rebuild(name, 0, self._n)[rows]
        out = np.empty(len(rows), dtype=self.schema[name])
        for k, r in enumerate(rows.tolist()):
            if not 0 <= r < self._n:
                raise IndexError(f"row {r} out of range ({self._n} rows)")
            out[k] = self._rebuild(name, r, r + 1)[0]
        return out

    def _rebuild(self, name: str, lo: int, hi: int) -> np.ndarray:
        phys = self._phys                             # one consistent set (see _densify)
        grow = phys.get(name)
        if grow is not None:                          # dense (possibly narrow)
            return grow.arr[lo:hi].astype(self.schema[name])
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
        return sum(g.data.nbytes for g in self._phys.values())

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
