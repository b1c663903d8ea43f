"""Capture point names: which node and interface (or pod) a packet was captured on.

The rule (issue 2), first match wins:
1. a ``FILE@POINT`` suffix on the command line;
2. a pcapng ``if_name`` of the form ``NODE/IFACE`` or ``pod:NAMESPACE/NAME``;
3. a file named ``NODE__IFACE.pcap`` or ``NODE__IFACE.pcapng`` (optionally ``.gz``);
4. otherwise the interface name alone, or None.
"""

from __future__ import annotations

import os
import re

_FILE_POINT = re.compile(r"^(?P<node>[^_/][^/]*?)__(?P<iface>[^/]+?)\.pcap(?:ng)?(?:\.gz)?$", re.IGNORECASE)


def split_point(arg: str) -> tuple[str, str | None]:
    """``"a.pcap@node1/eth0"`` -> ``("a.pcap", "node1/eth0")``; a path that exists as given is never split."""
    if "@" not in arg or arg == "-" or os.path.exists(arg):
        return arg, None
    path, _, point = arg.rpartition("@")
    if not path or not point:
        return arg, None
    return path, point


def is_point_name(name: str | None) -> bool:
    """True for ``NODE/IFACE`` and ``pod:NAMESPACE/NAME`` (one slash, both sides non-empty)."""
    if not name or name.count("/") != 1:
        return False
    left, right = name.split("/")
    return bool(left.strip()) and bool(right.strip()) and left != "pod:"


def node_of(point: str | None) -> str | None:
    """The node part of ``NODE/IFACE``; None for a pod point or a bare interface name."""
    if not is_point_name(point) or point.startswith("pod:"):
        return None
    return point.split("/")[0]


def point_for(file: str, iface: str | None, explicit: str | None = None) -> str | None:
    """The capture point of packets from interface ``iface`` of ``file`` (see the module rule)."""
    if explicit:
        return explicit
    if is_point_name(iface):
        return iface
    match = _FILE_POINT.match(os.path.basename(file)) if file != "-" else None
    if match:
        return f"{match['node']}/{match['iface']}"
    return iface or None
