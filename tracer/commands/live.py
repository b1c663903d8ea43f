"""``tracer live [--iface IFACE]... [--filter BPF] [--write FILE.pcapng] [--ring-mb N] [--cluster PATH] [--no-ui]``.

Captures on the node's interfaces into a pcapng spool (``tracer.capture.live``) and shows the packets through the
same index and row formatting as ``tracer open`` / ``tracer show``. Ctrl-C or SIGTERM stops cleanly: the spool (or
``--write`` file) is a complete pcapng with the kernel's drop counters in it.
"""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("live", help="capture live on the node's CNI interfaces (root / CAP_NET_RAW)",
                              description="Capture on one or several interfaces at once (each a capture point "
                              "NODE/IFACE) into a pcapng spool and show the packets as they arrive. Without --iface, "
                              "the CNI interfaces found on the node are used.")
    p.add_argument("--iface", "-i", action="append", metavar="IFACE",
                   help="interface to capture on; repeatable; NETNS:IFACE captures in a named network namespace")
    p.add_argument("--filter", "-f", metavar="BPF", help="kernel capture filter, tcpdump syntax (e.g. 'udp port 8472')")
    p.add_argument("--write", "-w", metavar="FILE.pcapng", help="keep the capture in FILE (written to FILE.part, "
                   "renamed when the capture ends)")
    p.add_argument("--ring-mb", type=_positive, metavar="N", help="bound the spool to about N MB by rotating "
                   f"through {4} files, dropping the oldest")
    p.add_argument("--cluster", action="append", metavar="PATH", help="cluster state (kubectl get -o yaml dumps)")
    p.add_argument("--no-ui", action="store_true", help="print rows like `tracer show` instead of the TUI")
    p.add_argument("--quiet", "-q", action="store_true", help="no rows and no TUI: only capture (with --write)")
    p.add_argument("--format", choices=("table", "jsonl", "csv"), default="table", help="row format with --no-ui")
    p.add_argument("--node", metavar="NAME", help="node name for capture points NODE/IFACE (default: host name)")
    p.add_argument("--netns", metavar="NAME", help="capture inside this named network namespace (e.g. a lab node)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--count", "-c", type=_positive, metavar="N", help="stop after about N packets")
    p.add_argument("--buffer-mb", type=_positive, default=8, metavar="N",
                   help="kernel ring per interface in MB (default 8); bigger absorbs longer bursts")
    p.add_argument("--user", metavar="NAME", help="drop root privileges to this user once the capture is open")
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {v}")
    return v


def node_name(args: argparse.Namespace) -> str:
    if args.node:
        return args.node
    if args.netns:
        # A lab node's namespace is trl-<node>; anything else keeps its namespace name.
        return args.netns[4:] if args.netns.startswith("trl-") else args.netns
    import socket

    return socket.gethostname()


def choose_points(args: argparse.Namespace) -> tuple[list, str | None]:
    """The capture points, and a note saying which were picked when the user named none."""
    from tracer.capture.live import CapturePoint

    node = node_name(args)
    if args.iface:
        points = []
        for spec in dict.fromkeys(args.iface):
            ns, sep, iface = spec.partition(":")
            if sep and os.path.exists(os.path.join("/run/netns", ns)):
                # NETNS:IFACE captures in another named namespace (a lab node: trl-node2:eth0 is node2/eth0).
                points.append(CapturePoint(iface, ns[4:] if ns.startswith("trl-") else ns, ns))
            else:
                points.append(CapturePoint(spec, node, args.netns))
        return points, None
    from tracer.node.discover import discover

    info = discover(args.netns)
    links = info.cni_interfaces()
    if not links:
        links = [l for l in info.links if l.role == "host-eth0"]
    if not links:
        from tracer.errors import TracerError

        avail = ", ".join(l.name for l in info.links) or "none"
        raise TracerError(f"no CNI interface found on this node; name one with --iface (available: {avail})")
    mode = info.mode or "no CNI recognised"
    note = (f"capturing on {', '.join(l.name for l in links)} ({mode}; "
            f"roles: {', '.join(sorted({l.role for l in links}))}); choose with --iface")
    return [CapturePoint(l.name, node, args.netns) for l in links], note


def _drop_privileges(user: str, cap, publish_dir: str | None) -> None:
    """Become ``user`` once the capture sockets are open (they keep working: capabilities are checked at open).

    The spool files we created are handed to the user so rotation and the final rename still work; the --write
    directory must already be writable by the user (we never change the permissions of a directory we did not
    make)."""
    import pwd

    from tracer.errors import TracerError

    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise TracerError(f"no such user {user!r} for --user") from None
    if publish_dir is not None and not _can_write_as(pw, publish_dir):
        raise TracerError(f"--user {user}: {publish_dir} is not writable by {user}, so the capture could not be "
                          "saved there; choose a directory it can write")
    for path in cap.segments:
        os.chown(path, pw.pw_uid, pw.pw_gid)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)


def _can_write_as(pw, directory: str) -> bool:
    """Whether ``pw``'s user can create and rename files in ``directory`` (asked in a child that becomes it)."""
    pid = os.fork()
    if pid == 0:   # the child: become the user and ask the kernel
        try:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os._exit(0 if os.access(directory, os.W_OK | os.X_OK) else 1)
        except BaseException:   # noqa: BLE001 - a child must never return into the parent's code
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def run(args: argparse.Namespace) -> int:
    import shutil
    import signal
    import tempfile
    import threading

    from tracer.capture.live import LiveCapture
    from tracer.errors import one_line

    if args.write:
        from tracer.errors import TracerError

        target_dir = os.path.dirname(os.path.abspath(args.write))
        if os.path.isdir(args.write):
            raise TracerError(f"--write {args.write}: is a directory")
        if not os.path.isdir(target_dir):
            raise TracerError(f"--write {args.write}: no such directory {target_dir}")
        if not os.access(target_dir, os.W_OK):
            raise TracerError(f"--write {args.write}: cannot write in {target_dir}")
    points, note = choose_points(args)
    tmpdir = None
    if args.write:
        spool = os.path.abspath(args.write) + ".part"
        spool_dir = os.path.dirname(spool)
    else:
        tmpdir = tempfile.mkdtemp(prefix="tracer-live-")
        spool_dir = tmpdir
        spool = os.path.join(tmpdir, "live.pcapng")
    cap = LiveCapture(points, spool=spool, bpf=args.filter, write_path=args.write,
                      ring_bytes=args.ring_mb * 1_000_000 if args.ring_mb else None,
                      buffer_bytes=args.buffer_mb << 20)
    started = False
    try:
        cap.open()
        if args.user:
            if tmpdir:
                import pwd

                pw = pwd.getpwnam(args.user) if args.user in {p.pw_name for p in pwd.getpwall()} else None
                if pw:
                    os.chown(tmpdir, pw.pw_uid, pw.pw_gid)   # our own temporary directory
            _drop_privileges(args.user, cap, None if tmpdir else spool_dir)
        if note:
            print(f"tracer: {one_line(note)}", file=sys.stderr)
        print(f"tracer: spooling to {one_line(cap.segments[0])}"
              + (f" (rotating, about {args.ring_mb} MB kept)" if args.ring_mb else ""), file=sys.stderr)
        stop = threading.Event()

        def on_signal(signum, frame) -> None:
            stop.set()

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        worker = threading.Thread(target=_capture, args=(cap, stop, args), name="tracer-live", daemon=True)
        worker.start()
        started = True
        try:
            if args.quiet:
                drops = DropReporter(cap)
                while worker.is_alive():
                    worker.join(0.2)
                    drops.check()
            elif not args.no_ui and _ui_available() and sys.stdout.isatty():
                _run_ui(cap, stop, args)
            else:
                if not args.no_ui:
                    print("tracer: the TUI cannot follow a live capture here; printing rows (--no-ui)",
                          file=sys.stderr)
                _print_rows(cap, stop, worker, args)
        finally:
            stop.set()
            worker.join()
            for s, h in old.items():
                signal.signal(s, h)
        path = cap.close()
        captured, received, dropped = cap.totals()
        where = f"; wrote {one_line(str(path))}" if args.write else ""
        lost = f", kernel dropped {dropped}" if dropped else ", no kernel drops"
        deleted = (f"; {cap.deleted_segments} oldest spool segment(s) rotated away" if cap.deleted_segments else "")
        print(f"tracer: captured {captured} packets on {len(points)} interface(s){lost}{deleted}{where}",
              file=sys.stderr)
        if len(points) > 1:
            per = ", ".join(f"{s.point} {s.captured}" + (f" ({s.dropped} dropped)" if s.dropped else "")
                            for s in cap.snapshot())
            # Point names carry interface names: any byte but '/', ':' and blanks, so escape sequences too.
            print(f"tracer: per point: {one_line(per)}", file=sys.stderr)
        if cap.error is not None:
            raise cap.error
        return 0
    finally:
        if started:
            cap.close()
        else:
            cap.abort()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


class DropReporter:
    """Says on stderr, at most every ``every`` seconds, when the kernel has dropped packets since the last report,
    so a flood never loses packets silently while rows scroll by."""

    def __init__(self, cap, every: float = 5.0) -> None:
        self.cap, self.every = cap, every
        self.reported = 0
        self.last = -every

    def check(self) -> None:
        import time

        now = time.monotonic()
        if now - self.last < self.every:
            return
        snap = self.cap.snapshot()
        dropped = sum(s.dropped for s in snap)
        if dropped > self.reported:
            worst = max(snap, key=lambda s: s.dropped)
            print(f"tracer: warning: the kernel dropped {dropped - self.reported} more packets ({dropped} in all, "
                  f"most on {worst.point}): the capture is not keeping up; narrow it with --filter or raise "
                  "--buffer-mb", file=sys.stderr)
            self.reported = dropped
            self.last = now     # throttle only after saying something: the first drop is reported at once


def _capture(cap, stop, args) -> None:
    try:
        cap.run(stop, duration=args.duration, max_packets=args.count)
    except BaseException:   # noqa: BLE001 - kept in cap.error and re-raised by the main thread
        pass
    finally:
        stop.set()


def _ui_available() -> bool:
    try:
        import inspect

        from tracer.ui import app
    except ImportError:
        return False
    fn = getattr(app, "create_app", None)
    return fn is not None and "live" in inspect.signature(fn).parameters


def _run_ui(cap, stop, args) -> None:
    """The TUI following the spool. Without --cluster it gets what the node itself knows (tracer.node.facts):
    its CNI mode and the remote pod subnets' nodes, so hops line up without cluster access."""
    from tracer.ui.app import run_app

    cluster, cni = args.cluster, None
    if not cluster:
        from tracer.node.discover import discover
        from tracer.node.facts import write_cluster_yaml

        info = discover(args.netns, hostname=node_name(args))
        cni = info.mode
        facts = os.path.join(os.path.dirname(cap.segments[0]), ".tracer-node-facts.yaml")
        write_cluster_yaml(info, facts)
        cluster = [facts]
    try:
        run_app([cap.segments[0]], cluster=cluster, cni=cni, live=cap)
    finally:
        stop.set()
        if not args.cluster:
            try:
                os.unlink(cluster[0])
            except OSError:
                pass


def _print_rows(cap, stop, worker, args) -> None:
    """Follow the spool with the index and print new rows as they are indexed; a rotated spool is followed into
    its next segment."""
    import numpy as np

    from tracer.capture.index import IndexBuilder
    from tracer.capture.rows import RowWriter

    writer = RowWriter(sys.stdout, args.format)
    drops = DropReporter(cap)
    seg = 0
    while True:
        with cap._lock:   # noqa: SLF001 - the segment list changes under this lock
            serial_now = cap.segment_serial
            first_serial = serial_now - len(cap.segments) + 1
            path = cap.segments[max(seg - first_serial, 0)] if cap.segments else None
            if seg < first_serial:
                print(f"tracer: warning: printing fell behind; {first_serial - seg} spool segment(s) rotated away "
                      "unprinted", file=sys.stderr)
                seg = first_serial
        if path is None:
            return
        builder = IndexBuilder([path], follow=True)
        printed = 0
        for _ in builder.run():
            index = builder.index
            if len(index) > printed:
                writer.write(index, np.arange(printed, len(index), dtype=np.int64))
                printed = len(index)
                sys.stdout.flush()
            drops.check()
            if not worker.is_alive() or cap.segment_serial > seg:
                builder.stop()
        index = builder.index
        if len(index) > printed:
            writer.write(index, np.arange(printed, len(index), dtype=np.int64))
            sys.stdout.flush()
        builder.index.close()
        if cap.segment_serial > seg:
            seg += 1
            continue
        if not worker.is_alive():
            return
