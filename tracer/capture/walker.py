"""Record walks in a child interpreter: a program streams int64 offsets through a pipe while this process decodes.

Finding record boundaries (pcap record headers, pcapng blocks) is a sequential pure-Python loop that holds the GIL;
in a thread it would fight the decoding thread for it. So, for a large complete file, a reader starts a child
interpreter (``Walker.start``) running a small program of its own (the same loop as its in-process walk) over the
same open file, and reads offsets from it (``Walker.read``). The child trusts the lengths it follows exactly as the
in-process loop does; the reader validates what it gets exactly like its own offsets, and falls back to walking
in-process from where the stream stopped if the child dies. Growing files, stdin and gzip spools never use one.

Program protocol: ``argv[1]`` is the file descriptor to map, ``argv[2]`` the byte offset to start at, ``argv[3]``
the file size, then the reader's own arguments; stdout carries native int64 values in chunks until the walk ends.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import weakref
from array import array

#: A complete file with more than this many bytes left after the first batch is walked by a child process.
WALKER_MIN_BYTES = 16 << 20


def worth_walking(remaining: int) -> bool:
    """Whether ``remaining`` bytes of a complete file justify a walker process (~30 ms to start one)."""
    return remaining > WALKER_MIN_BYTES


class Walker:
    """A running walker process and the read end of its pipe."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self._proc = proc
        # A reader done early, or dropped, leaves no process behind.
        self._end = weakref.finalize(self, _end_walker, proc)

    @classmethod
    def start(cls, program: str, fd: int, start: int, size: int, *args: str) -> Walker | None:
        """Run ``program`` over descriptor ``fd`` (inherited) from byte ``start``; None when it cannot start."""
        if not sys.executable:
            return None
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", program, str(fd), str(start), str(size), *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, pass_fds=(fd,))
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
        try:
            # A deep pipe lets the walker run a batch or more ahead while this process decodes (Linux).
            fcntl.fcntl(proc.stdout.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass
        return cls(proc)

    def read(self, count: int) -> array | None:
        """The next up to ``count`` offsets (blocking). Fewer means the walk ended and the process is stopped;
        None means it died mid-value (its last chunk cannot be trusted: the caller walks on by itself)."""
        want = count * 8
        buf = bytearray(want)
        view = memoryview(buf)
        got = 0
        pipe = self._proc.stdout
        while got < want:
            n = pipe.readinto(view[got:])
            if not n:
                break
            got += n
        offs = array("q")
        offs.frombytes(bytes(view[:got - got % 8]))
        if got < want:
            self.stop()
            if got % 8:
                return None
        return offs

    def stop(self) -> None:
        """Stop the process and reap it (idempotent)."""
        self._end()


def _end_walker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.stdout.close()
    proc.wait()
