"""Writing a small output file at a path the user names, never through a link someone else planted there.

tracer runs as root and writes into directories users name (``tracer lab capture OUTDIR``, ``tracer ifaces
--cluster-yaml PATH``). A plain ``open(path, "w")`` follows a symlink that another user planted at that name in a
directory they control and truncates its target (``/etc/shadow``): CWE-59. ``write_replacing`` writes a fresh
temporary file beside the target instead (``mkstemp``: a random name opened with O_CREAT|O_EXCL, which never
follows a link) and renames it over the name, which replaces a link rather than writing through it; a reader sees
the old file or the whole new one, never half of it. (Growing files read while written, such as the live spool,
use ``tracer.capture.pcapng_writer.create_fresh`` instead.)
"""

from __future__ import annotations

import os
import tempfile

from tracer.errors import TracerError, one_line


def write_replacing(path: str, data: str | bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` by temporary file + rename; ``TracerError`` on failure.

    ``mode`` is the new file's permission (0o644: what ``open()`` gives under the usual umask 022); a link or file
    already at ``path`` is replaced, never written through; the directory must exist.
    """
    target = os.path.abspath(path)
    directory, name = os.path.split(target)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise TracerError(one_line(f"{path}: cannot write: {exc.strerror or exc}")) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, target)     # rename(2): replaces a symlink at ``target`` itself, never its target
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            # e.g. a directory at the name (EISDIR), a full disk
            raise TracerError(one_line(f"{path}: cannot write: {exc.strerror or exc}")) from None
        raise
