"""flannel's ``/run/flannel/subnet.env``: the cluster network, this node's subnet, MTU and masquerade setting.

flanneld writes it as shell assignments (``FLANNEL_NETWORK=10.244.0.0/16``, ``FLANNEL_SUBNET=10.244.1.1/24``,
``FLANNEL_MTU=1450``, ``FLANNEL_IPMASQ=true``); the CNI flannel plugin reads it. We read only ``KEY=VALUE`` lines,
never execute anything, and cap the size (it is a few hundred bytes).
"""

from __future__ import annotations

MAX_BYTES = 64 * 1024


def parse_subnet_env(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[7:].strip()
        out[key] = value.strip().strip("'\"")
    return out


def read_subnet_env(path: str) -> dict[str, str] | None:
    """The file's assignments, or None when it is absent or unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_subnet_env(f.read(MAX_BYTES))
    except OSError:
        return None
