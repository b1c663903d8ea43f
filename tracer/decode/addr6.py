"""The IPv6 address table: 16-byte addresses interned to small uint32 ids for the packet index.

IPv4 addresses fit in a uint32 column as they are; IPv6 addresses do not, so the index stores an id into one
``Addr6Table`` shared by every batch of a load. Interning is vectorised: a batch of addresses is deduplicated with
``np.unique`` (on a 64-bit key mixed from the two halves, checked exactly against the 16-byte values), and only
the distinct addresses (a handful per batch in real captures) touch the Python dict.
"""

from __future__ import annotations

import ipaddress

import numpy as np

ADDR6 = np.dtype("V16")


class Addr6Table:
    """Interns IPv6 addresses: ``intern(addrs) -> uint32 ids``, ``table[id] -> bytes``, ``format(id) -> str``.

    Ids are dense (0, 1, 2…) and never change, so an id column stays valid while the table grows.
    """

    def __init__(self) -> None:
        self._ids: dict[bytes, int] = {}
        self._addrs: list[bytes] = []

    def __len__(self) -> int:
        return len(self._addrs)

    def __getitem__(self, addr_id: int) -> bytes:
        """The 16 address bytes for ``addr_id`` (IndexError for an id this table never gave out)."""
        return self._addrs[int(addr_id)]

    def id_of(self, addr: bytes | str) -> int | None:
        """The id of an address already interned (bytes or text form), or None; for filters."""
        if isinstance(addr, str):
            addr = ipaddress.IPv6Address(addr).packed
        return self._ids.get(bytes(addr))

    def format(self, addr_id: int) -> str:
        """The address in RFC 5952 text form, e.g. ``fd00::1``."""
        return str(ipaddress.IPv6Address(self[addr_id]))

    def intern_one(self, addr: bytes) -> int:
        """The id of one 16-byte address, adding it when new."""
        addr = bytes(addr)
        if len(addr) != 16:
            raise ValueError(f"an IPv6 address has 16 bytes, not {len(addr)}")
        found = self._ids.get(addr)
        if found is None:
            found = self._ids[addr] = len(self._addrs)
            self._addrs.append(addr)
        return found

    def intern(self, addrs: np.ndarray) -> np.ndarray:
        """Ids (uint32) for a batch of addresses given as ``V16`` items or as an ``(m, 16)`` uint8 array."""
        addrs = np.asarray(addrs)
        if addrs.dtype != ADDR6:
            addrs = np.ascontiguousarray(addrs, dtype=np.uint8).reshape(-1, 16).view(ADDR6).reshape(-1)
        if addrs.size == 0:
            return np.zeros(0, np.uint32)
        addrs = np.ascontiguousarray(addrs)
        # Deduplicate on a 64-bit mix of the two halves (sorting uint64 is several times faster than sorting
        # 16-byte voids), then check that every address equals its group's representative: a hash collision
        # (never seen in practice) falls back to the exact, slower void sort.
        halves = addrs.view(np.uint64).reshape(-1, 2)
        key = halves[:, 0] ^ (halves[:, 1] * np.uint64(0x9E3779B97F4A7C15))
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        uniq = addrs[first]
        if not np.array_equal(uniq[inverse], addrs):
            uniq, inverse = np.unique(addrs, return_inverse=True)
            inverse = inverse.reshape(-1)
        ids = np.fromiter((self.intern_one(u.tobytes()) for u in uniq), np.uint32, len(uniq))
        return ids[inverse]
