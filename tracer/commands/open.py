"""``tracer open [FILE...]``: the TUI. With no file it opens the bundled demo and its cluster state.

The demo is the NetworkPolicy tutorial's scenario (nginx → tomcat across nodes, one flow denied), captured in
the lab: ``captures/demo/*.pcap[ng]`` with ``captures/demo/cluster.yaml``, found next to the package (an
editable install or a checkout) or inside it (``tracer/demo``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tracer.errors import TracerError

DEFAULT_VXLAN_PORTS = (4789, 8472)
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "open", help="the TUI: packets, layers, hop path and NetworkPolicy verdict",
        description="Open captures in the interactive explorer (no FILE: the bundled demo with its cluster).",
        epilog="In the app: ? lists every key and its binding id; remap keys in ~/.config/tracer/keymap.yaml "
               "(or $TRACER_KEYMAP), e.g.  list.down: \"j,down,ctrl+n\".")
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="pcap/pcapng files (FILE@NODE/IFACE names the capture point)")
    parser.add_argument("--cluster", action="append", metavar="PATH", default=None,
                        help="cluster state: kubectl get … -o yaml dumps (file or directory; repeatable)")
    parser.add_argument("--cni", metavar="MODE", default=None,
                        help="CNI mode (flannel-vxlan, flannel-host-gw, calico-ipip, calico-vxlan, calico-bgp…); "
                             "detected from the traffic by default")
    parser.add_argument("--vxlan-port", action="append", type=int, metavar="N", default=None,
                        help="also decode UDP port N as VXLAN (4789 and 8472 always are)")
    parser.add_argument("--no-hops", action="store_true",
                        help="skip the hop analysis (huge captures: the list, layers and bytes only)")
    parser.set_defaults(func=run)


def demo_dir() -> Path | None:
    """The bundled demo directory: ``<checkout>/captures/demo`` or ``tracer/demo`` inside the package."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package.parent / "captures" / "demo", package / "demo"):
        if candidate.is_dir():
            return candidate
    return None


def demo_files() -> tuple[list[str], list[str]]:
    """(capture files, cluster files) of the bundled demo; TracerError when it is not installed."""
    directory = demo_dir()
    if directory is None:
        raise TracerError("no capture given and the bundled demo (captures/demo) is not installed")
    captures = sorted(str(p) for p in directory.iterdir() if p.name.endswith(CAPTURE_SUFFIXES))
    if not captures:
        raise TracerError(f"no capture given and the demo directory {directory} holds no captures yet")
    cluster = [str(p) for p in (directory / "cluster.yaml", directory / "cluster.yml") if p.is_file()]
    return captures, cluster


def _check_readable(path: str) -> None:
    if path == "-" or path.startswith("-@"):
        # The TUI reads keys from the terminal on stdin; a capture cannot come that way too.
        raise TracerError("tracer open cannot read a capture from stdin (it is the keyboard); "
                          "save it to a file first, or use tracer show -")
    name = path.split("@", 1)[0] if not os.path.exists(path) else path
    if not os.path.exists(name):
        raise TracerError(f"{name}: no such file")
    if os.path.isdir(name):
        raise TracerError(f"{name}: is a directory, not a capture file")
    if not os.access(name, os.R_OK):
        raise TracerError(f"{name}: permission denied")


def resolve(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The capture files and cluster paths this invocation opens."""
    files = list(args.files or [])
    cluster = list(args.cluster or [])
    if not files:
        files, demo_cluster = demo_files()
        cluster = cluster or demo_cluster
    for path in files:
        _check_readable(path)
    for path in cluster:
        if not os.path.exists(path):
            raise TracerError(f"{path}: no such cluster file or directory")
    return files, cluster


def check_cni(mode: str | None) -> str | None:
    """The canonical ``--cni`` mode; an unknown one is a one-line error before the TUI starts."""
    if mode is None:
        return None
    try:
        from tracer.hops.models import normalise_mode
    except ImportError:  # the hop models are not there: the mode is passed through as given
        return mode
    try:
        return normalise_mode(mode)
    except ValueError as exc:
        raise TracerError(f"--cni {mode}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    files, cluster = resolve(args)
    cni = check_cni(args.cni)
    ports = tuple(dict.fromkeys([*DEFAULT_VXLAN_PORTS, *(args.vxlan_port or [])]))
    for port in ports:
        if not 0 < port < 65536:
            raise TracerError(f"--vxlan-port {port}: not a UDP port")
    from tracer.ui.app import run_app  # Textual is imported only when the TUI really starts

    return run_app(files, cluster=cluster, cni=cni, vxlan_ports=ports, analyse=not args.no_hops)
