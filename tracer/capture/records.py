"""What a capture reader hands to the index: interfaces (one per pcap file, one per pcapng IDB) and record batches.

A reader (``PcapReader``, ``PcapngReader``) is incremental: ``read(max_records)`` returns the next ``Records``
(possibly empty while a growing file has no complete record yet); ``done`` says no more will come; ``problem``
says why reading stopped early on damaged input (the records before it are kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Largest caplen accepted in a classic pcap record when the header's snaplen is smaller (libpcap's
#: MAXIMUM_SNAPLEN); a bigger one means a garbage record header, not a packet.
MAX_SNAPLEN = 262144
#: Never trust a snaplen beyond this for the caplen sanity bound (64 MiB; Linux BIG TCP frames are < 512 KiB).
HARD_MAX_CAPLEN = 64 << 20


@dataclass
class Interface:
    """One capture interface of a file: the pcap file itself, or one pcapng Interface Description Block."""

    linktype: int
    snaplen: int
    name: str | None = None          # pcapng if_name
    description: str | None = None   # pcapng if_description
    section: int = 0                 # pcapng section number (0-based)
    tsresol: int = 6                 # pcapng if_tsresol byte as read (default 10^-6)
    tsoffset: int = 0                # pcapng if_tsoffset, seconds


@dataclass
class Records:
    """A batch of records in file order: numpy columns of equal length."""

    ts_ns: np.ndarray
    offset: np.ndarray
    caplen: np.ndarray
    origlen: np.ndarray
    iface: np.ndarray                 # index into the reader's ``interfaces``

    def __len__(self) -> int:
        return len(self.offset)

    @staticmethod
    def empty() -> Records:
        return Records(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint32),
                       np.empty(0, np.uint32), np.empty(0, np.uint16))

    @staticmethod
    def concat(parts: list[Records]) -> Records:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Records.empty()
        if len(parts) == 1:
            return parts[0]
        return Records(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("ts_ns", "offset", "caplen", "origlen", "iface")))


@dataclass
class ReaderState:
    """Progress shared by both readers."""

    pos: int = 0                      # next byte to read
    count: int = 0                    # records returned so far
    done: bool = False
    problem: str | None = None        # damage that stopped reading
    notes: list[str] = field(default_factory=list)   # oddities that did not stop reading (caplen > snaplen)
