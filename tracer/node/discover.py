"""Read a node's CNI state from the kernel with pyroute2: links, addresses, routes, VXLAN FDB, neighbours.

``discover(netns=None)`` looks at the current network namespace, or at a named one (``/run/netns/NAME``, as
``ip netns`` makes them: a lab node). It only reads; it never creates a namespace (pyroute2 would, by default).
"""

from __future__ import annotations

import os
import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tracer.errors import TracerError
from tracer.node.flannel_env import read_subnet_env
from tracer.node.model import FdbEntry, Link, Neighbour, NodeInfo, Route, role_for

NUD_NAMES = {0x01: "incomplete", 0x02: "reachable", 0x04: "stale", 0x08: "delay", 0x10: "probe",
             0x20: "failed", 0x40: "noarp", 0x80: "permanent"}
RTN_TYPES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast", 6: "blackhole",
             7: "unreachable", 8: "prohibit"}
SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
RTNH_F_ONLINK = 4
NETNS_DIR = "/run/netns"


class DiscoveryError(TracerError):
    """The node's state could not be read (no such namespace, no permission)."""


def _open(netns: str | None) -> IPRoute:
    if netns is None:
        return IPRoute()
    if not os.path.exists(os.path.join(NETNS_DIR, netns)):
        raise DiscoveryError(f"no network namespace {netns!r} (see `ip netns list`)")
    try:
        return IPRoute(netns=netns, flags=0)
    except OSError as exc:
        raise DiscoveryError(f"cannot enter network namespace {netns!r}: {exc.strerror} (needs root)") from None


def _netns_ids(ipr: IPRoute) -> dict[int, str]:
    """Our namespace's ids for the named namespaces (what IFLA_LINK_NETNSID refers to)."""
    ids: dict[int, str] = {}
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return ids
    for name in names:
        try:
            fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        except OSError:
            continue
        try:
            got = ipr.get_netnsid(fd=fd)
            if got and got.get("nsid") is not None and got["nsid"] >= 0:
                ids[got["nsid"]] = name
        except (NetlinkError, OSError):
            pass
        finally:
            os.close(fd)
    return ids


def discover(netns: str | None = None, *, subnet_env: str | None = None, hostname: str | None = None) -> NodeInfo:
    """Everything about the node's interfaces that matters for tracing its CNI.

    ``subnet_env`` is flannel's ``/run/flannel/subnet.env`` (read by default only for the host's own namespace,
    since a named namespace shares the host's /run). ``hostname`` names the node (default: the host name, or the
    namespace name).
    """
    ipr = _open(netns)
    try:
        raw_links = list(ipr.get_links())
        raw_addrs = list(ipr.get_addr(family=socket.AF_INET))
        raw_routes = list(ipr.get_routes(family=socket.AF_INET, table=254))
        raw_neigh = list(ipr.get_neighbours(family=socket.AF_INET))
        raw_fdb = list(ipr.fdb("dump"))
        nsids = _netns_ids(ipr)
    except NetlinkError as exc:
        raise DiscoveryError(f"cannot read the node's links: {exc}") from None
    finally:
        ipr.close()

    names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in raw_links}
    addrs: dict[int, list[str]] = {}
    for a in raw_addrs:
        addrs.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")

    routes = []
    for r in raw_routes:
        dst = r.get_attr("RTA_DST")
        routes.append(Route(dst=f"{dst}/{r['dst_len']}" if dst else "default", gateway=r.get_attr("RTA_GATEWAY"),
                            dev=names.get(r.get_attr("RTA_OIF")), onlink=bool(r["flags"] & RTNH_F_ONLINK),
                            type=RTN_TYPES.get(r["type"], str(r["type"])), scope=SCOPES.get(r["scope"],
                                                                                             str(r["scope"]))))

    # The underlay: what carries the default route, what a tunnel is bound to or sources from, and where
    # host-gw routes send pod subnets.
    underlay: set[str] = set()
    local_ips: set[str] = set()
    for r in routes:
        if r.dst == "default" and r.dev:
            underlay.add(r.dev)
    links_info = {}
    for l in raw_links:
        info = l.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        data = info.get_attr("IFLA_INFO_DATA") if info else None
        links_info[l["index"]] = (kind, data)
        if kind == "vxlan" and data is not None:
            if data.get_attr("IFLA_VXLAN_LINK"):
                underlay.add(names.get(data.get_attr("IFLA_VXLAN_LINK")))
            if data.get_attr("IFLA_VXLAN_LOCAL"):
                local_ips.add(data.get_attr("IFLA_VXLAN_LOCAL"))
    for idx, lst in addrs.items():
        if any(a.split("/")[0] in local_ips for a in lst):
            underlay.add(names.get(idx))
    for r in routes:
        if r.gateway and r.dev and not r.onlink and r.type == "unicast":
            kind = next((links_info[i][0] for i, n in names.items() if n == r.dev), None)
            if kind not in ("vxlan", "ipip", "bridge"):
                underlay.add(r.dev)
    underlay.discard(None)

    links = []
    for l in raw_links:
        idx, name = l["index"], l.get_attr("IFLA_IFNAME")
        kind, data = links_info[idx]
        vx = None
        if kind == "vxlan" and data is not None:
            vx = {"vni": data.get_attr("IFLA_VXLAN_ID"), "port": data.get_attr("IFLA_VXLAN_PORT"),
                  "local": data.get_attr("IFLA_VXLAN_LOCAL"), "learning": bool(data.get_attr("IFLA_VXLAN_LEARNING")),
                  "link": names.get(data.get_attr("IFLA_VXLAN_LINK"))}
        peer_nsid = l.get_attr("IFLA_LINK_NETNSID")
        peer_index = l.get_attr("IFLA_LINK") if kind == "veth" else None
        if kind is None:
            kind = "loopback" if name == "lo" else "device"
        links.append(Link(
            index=idx, name=name, kind=kind,
            role=role_for(name, kind, vx, underlay, peer_netns=peer_nsid is not None),
            mac=l.get_attr("IFLA_ADDRESS"), mtu=l.get_attr("IFLA_MTU"),
            state=(l.get_attr("IFLA_OPERSTATE") or "").lower() or None,
            master=names.get(l.get_attr("IFLA_MASTER")), addresses=addrs.get(idx, []), vxlan=vx,
            peer_index=peer_index, peer_netns_id=peer_nsid if kind == "veth" else None,
            peer_netns=nsids.get(peer_nsid) if kind == "veth" and peer_nsid is not None else None,
        ))
    for b in links:
        if b.kind == "bridge":
            b.ports = [l.name for l in links if l.master == b.name]

    vxlan_devs = {l.index for l in links if l.kind == "vxlan"}
    fdb = []
    for f in raw_fdb:
        if f["ifindex"] not in vxlan_devs:
            continue
        fdb.append(FdbEntry(dev=names.get(f["ifindex"]), mac=f.get_attr("NDA_LLADDR"), dst=f.get_attr("NDA_DST"),
                            permanent=bool(f["state"] & 0x80)))
    neighbours = [Neighbour(dev=names.get(n["ifindex"]), ip=n.get_attr("NDA_DST"), mac=n.get_attr("NDA_LLADDR"),
                            state=NUD_NAMES.get(n["state"], str(n["state"]))) for n in raw_neigh]

    env_path = subnet_env if subnet_env is not None else (None if netns else "/run/flannel/subnet.env")
    env = read_subnet_env(env_path) if env_path else None
    return NodeInfo(hostname=hostname or (netns or socket.gethostname()), netns=netns, links=links, routes=routes,
                    fdb=fdb, neighbours=neighbours, flannel_env=env)
