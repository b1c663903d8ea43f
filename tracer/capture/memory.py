"""Handing freed memory back to the operating system after a big build (the index, the hop analysis).

glibc raises its mmap threshold after the first large ``free``, so later multi-megabyte temporaries (decode
batches, analysis stages) come from the heap and stay in the process after they are freed — ~18 bytes a packet
after indexing, ~190 after the hop analysis, counted in the resident set until something reuses them.
``malloc_trim(0)`` returns them. A no-op where there is no glibc.
"""

from __future__ import annotations

import ctypes


def release_freed_memory() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``); harmless elsewhere."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
