"""Cluster facts a node knows without cluster access, as a Kubernetes ``v1`` List of Nodes.

From discovery: this node (its underlay IP and its own pod subnet: flannel's ``FLANNEL_SUBNET``, the ``cni0``
network, or Calico's blackhole route for its block) and every remote node the routes/neighbours/FDB point at, with
the remote pod subnet it owns as ``spec.podCIDR``. Remote nodes have no names on the node, so they are named by
their IP. The hop-path engine reads this like any cluster dump (``--cluster``), so captures taken on one node line
up with its CNI's path during an incident when ``kubectl`` is out of reach.
"""

from __future__ import annotations

import ipaddress

from tracer.node.model import NodeInfo


def _local_subnet(info: NodeInfo) -> str | None:
    env = info.flannel_env or {}
    if env.get("FLANNEL_SUBNET"):
        try:
            return str(ipaddress.ip_interface(env["FLANNEL_SUBNET"]).network)
        except ValueError:
            pass
    for name in ("cni0", "cbr0"):
        link = info.link(name)
        if link and link.addresses:
            return str(ipaddress.ip_interface(link.addresses[0]).network)
    for r in info.routes:
        if r.type == "blackhole" and r.dst != "default":
            return r.dst                  # Calico's own IPAM block
    return None


def _node(name: str, ip: str | None, subnet: str | None, mode: str | None) -> dict:
    node: dict = {"apiVersion": "v1", "kind": "Node",
                  "metadata": {"name": name, "annotations": {"tracer/source": "node discovery"}}, "spec": {}}
    if subnet:
        node["spec"] = {"podCIDR": subnet, "podCIDRs": [subnet]}
    if ip:
        node["status"] = {"addresses": [{"type": "InternalIP", "address": ip}]}
    if mode and mode.startswith("flannel"):
        node["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-type"] = (
            "vxlan" if mode == "flannel-vxlan" else "host-gw" if mode == "flannel-host-gw" else "udp")
        if ip:
            node["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] = ip
    return node


def cluster_from_node(info: NodeInfo) -> dict:
    """A ``kind: List`` with this node and the remote nodes its routes reach, each with its pod subnet."""
    ips = info.node_ips()
    items = [_node(info.hostname, ips[0] if ips else None, _local_subnet(info), info.mode)]
    for subnet, ip in sorted(info.subnet_map.items(), key=lambda kv: kv[1]):
        items.append(_node(ip, ip, subnet, info.mode))
    return {"apiVersion": "v1", "kind": "List", "items": items}


def write_cluster_yaml(info: NodeInfo, path: str) -> None:
    """Write ``cluster_from_node`` as YAML (temporary file + rename: a link planted at ``path`` is replaced)."""
    import yaml

    from tracer.safe_write import write_replacing

    write_replacing(path, f"# derived by tracer from node {info.hostname}'s routes, neighbours and VXLAN FDB "
                          f"(CNI mode {info.mode or 'unknown'})\n" + yaml.safe_dump(cluster_from_node(info),
                                                                                   sort_keys=False))
