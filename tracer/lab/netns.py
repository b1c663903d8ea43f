"""Network namespaces for the lab: create, remove, run a program inside, set a sysctl inside, find processes.

Only names starting with ``tracer.lab.plan.PREFIX`` are ever removed, so nothing the lab did not make is touched.
Programs run inside a namespace through ``nsenter --net`` (util-linux); everything about links, addresses, routes,
neighbours and FDB entries goes through pyroute2 (``tracer.lab.build``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence

from pyroute2 import netns as _netns

from tracer.lab.plan import PREFIX

NETNS_DIR = "/run/netns"


def path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def create(name: str) -> None:
    """Create the named network namespace (bind-mounted under /run/netns, as ``ip netns add`` does)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"lab namespaces start with {PREFIX!r}: {name}")
    if not exists(name):
        _netns.create(name)


def remove(name: str) -> None:
    """Remove one of the lab's namespaces (never one without the prefix)."""
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to remove {name!r}: not a lab namespace")
    if exists(name):
        _netns.remove(name)


def ours() -> list[str]:
    """The lab's namespaces present now."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(PREFIX))
    except FileNotFoundError:
        return []


def sysctl(name: str | None, key: str, value: str | int) -> None:
    """Set ``key`` (dotted, e.g. ``net.ipv4.ip_forward``) inside namespace ``name``.

    Net sysctls are looked up in the namespace of the task that opens the file, so we enter the namespace
    for the write and come back.
    """
    target = "/proc/sys/" + key.replace(".", "/")
    if name is None:
        with open(target, "w") as f:
            f.write(str(value))
        return
    _netns.pushns(name)
    try:
        with open(target, "w") as f:
            f.write(str(value))
    finally:
        _netns.popns()


def sysctl_path(name: str, key_path: str, value: str | int) -> None:
    """Like ``sysctl`` with a path below /proc/sys (interface names may contain dots: ``flannel.1``)."""
    _netns.pushns(name)
    try:
        with open("/proc/sys/" + key_path, "w") as f:
            f.write(str(value))
    finally:
        _netns.popns()


def command(name: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``name``."""
    return ["nsenter", f"--net={path(name)}", "--", *argv]


def run(name: str, argv: Sequence[str], *, input: str | None = None, timeout: float = 30.0,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a program inside the namespace and wait for it; output captured as text."""
    return subprocess.run(command(name, argv), input=input, capture_output=True, text=True, timeout=timeout,
                          check=check)


def spawn(name: str, argv: Sequence[str], *, log: str | None = None) -> int:
    """Start a long-running program inside the namespace, detached (own session); returns its pid."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(command(name, argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    finally:
        if log:
            out.close()
    return proc.pid


def _inode(p: str) -> int | None:
    try:
        return os.stat(p).st_ino
    except OSError:
        return None


def pids_inside(names: Sequence[str]) -> list[int]:
    """Processes whose network namespace is one of ``names`` (found through /proc/PID/ns/net)."""
    inodes = {i for i in (_inode(path(n)) for n in names) if i is not None}
    if not inodes:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        if _inode(f"/proc/{entry}/ns/net") in inodes:
            found.append(int(entry))
    return found


def kill(pids: Sequence[int], *, grace: float = 1.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, each pid that is still there."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _running(p)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _running(pid: int) -> bool:
    try:
        # Reap our own children so they do not linger as zombies (which kill(0) reports as alive).
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
