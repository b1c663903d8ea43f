"""The lab as Kubernetes objects: a ``v1`` List of Namespaces, Nodes, Pods, Services, EndpointSlices and the
NetworkPolicy behind the lab's deny — what ``kubectl get ... -o yaml`` would have given on the real cluster.

Node annotations are the ones the CNIs write: flannel's ``flannel.alpha.coreos.com/*`` (backend type and data with
the VTEP MAC, public IP), Calico's ``projectcalico.org/IPv4Address`` and ``IPv4VXLANTunnelAddr`` /
``IPv4IPIPTunnelAddr``.
"""

from __future__ import annotations

import json

from tracer.lab.plan import CALICO_IPIP, CALICO_VXLAN, FLANNEL_VNI, FLANNEL_VXLAN, HOST_GW, LabPlan, backends

IMAGES = {"nginx": "nginx:1.25", "tomcat": "tomcat:9.0", "coredns": "registry.k8s.io/coredns/coredns:v1.11.1",
          "test": "busybox:1.36"}


def _meta(name: str, namespace: str | None = None, **extra) -> dict:
    m = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m.update({k: v for k, v in extra.items() if v})
    return m


def _node(plan: LabPlan, n) -> dict:
    ann = {}
    if plan.mode in (FLANNEL_VXLAN, HOST_GW):
        ann["flannel.alpha.coreos.com/backend-type"] = "vxlan" if plan.mode == FLANNEL_VXLAN else "host-gw"
        ann["flannel.alpha.coreos.com/backend-data"] = (json.dumps({"VNI": FLANNEL_VNI, "VtepMAC": n.tunnel_mac})
                                                         if plan.mode == FLANNEL_VXLAN else "null")
        ann["flannel.alpha.coreos.com/kube-subnet-manager"] = "true"
        ann["flannel.alpha.coreos.com/public-ip"] = n.ip
    else:
        ann["projectcalico.org/IPv4Address"] = f"{n.ip}/24"
        if plan.mode == CALICO_VXLAN:
            ann["projectcalico.org/IPv4VXLANTunnelAddr"] = n.tunnel_ip
        elif plan.mode == CALICO_IPIP:
            ann["projectcalico.org/IPv4IPIPTunnelAddr"] = n.tunnel_ip
    labels = {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux"}
    if n.index == 0:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {"apiVersion": "v1", "kind": "Node", "metadata": _meta(n.name, labels=labels, annotations=ann),
            "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def _pod(plan: LabPlan, p) -> dict:
    node = plan.node(p.node)
    container = {"name": p.app, "image": IMAGES.get(p.app, "busybox:1.36")}
    if p.ports:
        container["ports"] = [dict(x) for x in p.ports]
    labels = {"app": p.app} if p.app != "coredns" else {"k8s-app": "kube-dns", "app": "coredns"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(p.name, p.namespace, labels=labels),
            "spec": {"nodeName": p.node, "containers": [container]},
            "status": {"phase": "Running", "hostIP": node.ip, "podIP": p.ip, "podIPs": [{"ip": p.ip}]}}


def _service(plan: LabPlan, s) -> dict:
    port = {"name": s.port_name, "port": s.port, "targetPort": s.target_port, "protocol": s.protocol}
    if s.node_port:
        port["nodePort"] = s.node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(s.name, s.namespace),
            "spec": {"type": "NodePort" if s.node_port else "ClusterIP", "clusterIP": s.cluster_ip,
                     "clusterIPs": [s.cluster_ip], "selector": dict(s.selector), "ports": [port]}}


def _slice(plan: LabPlan, s) -> dict:
    eps = [{"addresses": [p.ip], "conditions": {"ready": True}, "nodeName": p.node,
            "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name}} for p in backends(plan, s)]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": _meta(f"{s.name}-{s.cluster_ip.split('.')[-1]}x7k", s.namespace,
                              labels={"kubernetes.io/service-name": s.name}),
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": s.port_name, "port": s.target_port, "protocol": s.protocol}]}


def _policy(deny: dict) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(deny["name"], deny["namespace"]),
            "spec": {"podSelector": {"matchLabels": {"app": "tomcat"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                         "kubernetes.io/metadata.name": deny["allow_namespace"]}}}],
                         "ports": [{"protocol": deny["protocol"], "port": deny["port"]}]}]}}


def cluster_list(plan: LabPlan) -> dict:
    """The lab's objects as one ``kind: List``."""
    namespaces = sorted({p.namespace for p in plan.pods} | {"default"})
    items = [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": _meta(ns, labels={"kubernetes.io/metadata.name": ns})} for ns in namespaces]
    items += [_node(plan, n) for n in plan.nodes]
    items += [_pod(plan, p) for p in plan.pods]
    items += [_service(plan, s) for s in plan.services]
    items += [_slice(plan, s) for s in plan.services]
    if plan.policy:
        items.append(_policy(plan.policy))
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def write_cluster_yaml(plan: LabPlan, path: str) -> None:
    """Write the lab's ``cluster.yaml`` (temporary file + rename: a link planted at ``path`` is replaced)."""
    import yaml

    from tracer.safe_write import write_replacing

    write_replacing(path, f"# tracer lab {plan.mode}: the lab's cluster state as `kubectl get ... -o yaml` would "
                          f"list it\n" + yaml.safe_dump(cluster_list(plan), sort_keys=False, default_flow_style=False))
