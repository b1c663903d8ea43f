"""Loading captures and cluster state for the hop commands (``tracer path``, ``flows``, ``reach``).

``analyze_files`` is the one entry point the commands share: index the files, read the cluster dumps, check the
``--cni`` value, run ``analyze``; every user mistake becomes a ``TracerError`` (one line, no traceback) and
warnings about partly readable files are printed once each, as the capture core words them.
"""

from __future__ import annotations

import sys
from typing import Any

from tracer.errors import TracerError
from tracer.hops import models as M


def add_hop_options(parser: Any, *, cluster_required: bool = False) -> None:
    """The options every hop command takes: ``--cluster PATH`` (repeatable), ``--cni MODE``, ``--json``."""
    parser.add_argument("--cluster", action="append", default=[], metavar="PATH", required=cluster_required,
                        help="cluster state: kubectl get … -o yaml/json dumps, files or directories (repeatable)")
    parser.add_argument("--cni", metavar="MODE", default=None,
                        help="CNI mode instead of detecting it: " + ", ".join(M.MODES))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--vxlan-port", dest="vxlan_ports", type=int, action="append", metavar="N",
                        help="also decode UDP port N as VXLAN (besides 4789 and 8472); repeatable")


def check_cni(cni: str | None) -> str | None:
    """The canonical mode for ``--cni`` or a one-line error naming the valid ones."""
    try:
        return M.normalise_mode(cni)
    except ValueError as exc:
        raise TracerError(str(exc)) from None


def load_cluster_paths(paths: list[str]) -> Any:
    """The cluster model from ``--cluster`` paths, or None when none were given."""
    if not paths:
        return None
    from tracer.k8s import load_cluster  # noqa: PLC0415 - only when asked for

    return load_cluster(list(paths))


def load_files(files: list[str], clusters: list[str], cni: str | None,
               vxlan_ports: list[int] | None = None) -> tuple[Any, Any, str | None]:
    """(index, cluster, mode) for the command line; errors in the cluster or ``--cni`` come before any file read."""
    mode = check_cni(cni)
    for port in vxlan_ports or ():
        if not 0 < port < 65536:
            raise TracerError(f"port out of range 1-65535: {port}")
    cluster = load_cluster_paths(clusters)
    from tracer.capture.index import DEFAULT_VXLAN_PORTS, load_index  # noqa: PLC0415 - heavy imports stay out

    ports = tuple(dict.fromkeys([*DEFAULT_VXLAN_PORTS, *(vxlan_ports or ())]))
    return load_index(list(files), vxlan_ports=ports), cluster, mode


def analyze_files(files: list[str], clusters: list[str], cni: str | None,
                  vxlan_ports: list[int] | None = None) -> tuple[Any, Any]:
    """(index, analysis) for the command line's files, cluster dumps, ``--cni`` and ``--vxlan-port``."""
    from tracer.hops.analysis import analyze  # noqa: PLC0415

    index, cluster, mode = load_files(files, clusters, cni, vxlan_ports)
    return index, analyze(index, cluster=cluster, cni=mode)


def print_warnings(index: Any) -> None:
    """The capture core's warnings about partly readable files, once each; only after a successful run (an
    error is one line and nothing else)."""
    for warning in getattr(index, "warnings", ()):
        print(f"tracer: warning: {warning}", file=sys.stderr)
