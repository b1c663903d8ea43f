"""NetworkPolicy (networking.k8s.io/v1) compiled from its manifest: selectors, peers, ipBlocks, ports.

``compile_policy(raw)`` validates what the API server validates and raises ``ClusterError`` naming the file,
the policy and the field (``spec.ingress[0].from[1].ipBlock.cidr``). Rules of the v1 API, as compiled here:
- ``policyTypes`` defaults to ``[Ingress]``, plus ``Egress`` when the ``egress`` list is non-empty;
- a rule with no (or an empty) ``from``/``to`` matches every peer; with no (or empty) ``ports``, every port and
  protocol (ICMP included);
- a peer is exactly one of ``ipBlock`` or (``namespaceSelector`` and/or ``podSelector``); both selectors in one
  peer are AND'ed; ``podSelector`` alone means pods of the policy's namespace; ``namespaceSelector: {}`` all
  namespaces;
- ``ipBlock.cidr`` is masked to its prefix (``10.244.1.11/4`` means ``0.0.0.0/4``), not rejected; ``except``
  entries are masked too and must be of the same IP family;
- a port is a number (1-65535) or a named container port (IANA_SVC_NAME); ``endPort`` needs a numeric
  ``port`` and ``endPort >= port``; protocol is TCP (default), UDP or SCTP.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from tracer.errors import ClusterError
from tracer.k8s.objects import RawObject, show
from tracer.k8s.selectors import Selector, SelectorError, compile_selector

PROTOCOLS = ("TCP", "UDP", "SCTP")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class IPBlock:
    """A CIDR minus its exceptions, as integer ranges per IP family for fast matching."""

    cidr: str                          # as masked: "10.0.0.0/16"
    excepts: tuple[str, ...]
    version: int
    lo: int
    hi: int
    except_ranges: tuple[tuple[int, int], ...]

    def contains(self, version: int, value: int) -> bool:
        if version != self.version or not self.lo <= value <= self.hi:
            return False
        return not any(lo <= value <= hi for lo, hi in self.except_ranges)

    def excepted(self, version: int, value: int) -> str | None:
        """The ``except`` CIDR that holds the address, if any (for explanations)."""
        if version != self.version:
            return None
        for cidr, (lo, hi) in zip(self.excepts, self.except_ranges, strict=True):
            if lo <= value <= hi:
                return cidr
        return None

    def describe(self) -> str:
        return self.cidr + (f" except {', '.join(self.excepts)}" if self.excepts else "")


@dataclass(frozen=True, slots=True)
class Peer:
    """One ``from``/``to`` entry: either ``ip_block`` or pod/namespace selectors (None = absent)."""

    index: int
    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    def describe(self, policy_namespace: str) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block.describe()}"
        if self.namespace_selector is None:
            ns = f"namespace {policy_namespace}"
        elif self.namespace_selector.empty:
            ns = "all namespaces"
        else:
            ns = f"namespaces {self.namespace_selector.describe()}"
        pods = "all pods" if self.pod_selector is None or self.pod_selector.empty else \
            f"pods {self.pod_selector.describe()}"
        return f"{pods} in {ns}"


@dataclass(frozen=True, slots=True)
class PortRule:
    """One ``ports`` entry: protocol, and a number, a range (``end_port``), a container-port name, or any port."""

    protocol: str
    port: int | str | None = None
    end_port: int | None = None

    def describe(self) -> str:
        if self.port is None:
            return f"{self.protocol}/any"
        if self.end_port is not None:
            return f"{self.protocol}/{self.port}-{self.end_port}"
        return f"{self.protocol}/{self.port}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One ingress or egress rule; ``peers``/``ports`` None means everyone / every port and protocol."""

    index: int
    peers: tuple[Peer, ...] | None
    ports: tuple[PortRule, ...] | None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """A compiled NetworkPolicy."""

    namespace: str
    name: str
    pod_selector: Selector
    ingress_isolates: bool    # policyTypes contains Ingress
    egress_isolates: bool     # policyTypes contains Egress
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    source: str               # file it came from

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def policy_types(self) -> list[str]:
        return [t for t, on in (("Ingress", self.ingress_isolates), ("Egress", self.egress_isolates)) if on]


def parse_cidr(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR masked to its prefix; ValueError for anything that is not ``ADDRESS/PREFIX``."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{show(text)} is not a CIDR (ADDRESS/PREFIX)")
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{show(text)} is not a valid CIDR") from None


def _ip_block(spec: Any, where: str, raw: RawObject) -> IPBlock:
    if not isinstance(spec, dict):
        raise raw.error(where, "must be a mapping with cidr and optional except")
    try:
        net = parse_cidr(spec.get("cidr"))
    except ValueError as exc:
        raise raw.error(f"{where}.cidr", str(exc)) from None
    excepts_spec = spec.get("except") or []
    if not isinstance(excepts_spec, list):
        raise raw.error(f"{where}.except", "must be a list of CIDRs")
    excepts, ranges = [], []
    for i, text in enumerate(excepts_spec):
        try:
            ex = parse_cidr(text)
        except ValueError as exc:
            raise raw.error(f"{where}.except[{i}]", str(exc)) from None
        if ex.version != net.version:
            raise raw.error(f"{where}.except[{i}]", f"{text} is IPv{ex.version} but cidr {net} is IPv{net.version}")
        excepts.append(str(ex))
        ranges.append((int(ex.network_address), int(ex.broadcast_address)))
    return IPBlock(str(net), tuple(excepts), net.version, int(net.network_address), int(net.broadcast_address),
                   tuple(ranges))


def _selector(spec: Any, where: str, raw: RawObject) -> Selector:
    try:
        return compile_selector(spec, where)
    except SelectorError as exc:
        raise raw.error(exc.field, exc.problem) from None


def _peer(spec: Any, index: int, where: str, raw: RawObject) -> Peer:
    if not isinstance(spec, dict):
        raise raw.error(where, "a peer must be a mapping (podSelector, namespaceSelector or ipBlock)")
    unknown = set(spec) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        raise raw.error(f"{where}.{sorted(unknown)[0]}", "unknown peer field "
                        "(expected podSelector, namespaceSelector or ipBlock)")
    has = {k for k in ("podSelector", "namespaceSelector", "ipBlock") if k in spec}
    if not has:
        raise raw.error(where, "a peer needs podSelector, namespaceSelector or ipBlock")
    if "ipBlock" in has:
        if len(has) > 1:
            raise raw.error(where, "ipBlock cannot be combined with podSelector or namespaceSelector in one peer")
        return Peer(index, ip_block=_ip_block(spec["ipBlock"], f"{where}.ipBlock", raw))
    pods = _selector(spec["podSelector"], f"{where}.podSelector", raw) if "podSelector" in spec else None
    nss = _selector(spec["namespaceSelector"], f"{where}.namespaceSelector", raw) \
        if "namespaceSelector" in spec else None
    return Peer(index, pod_selector=pods, namespace_selector=nss)


def _port(spec: Any, where: str, raw: RawObject) -> PortRule:
    if not isinstance(spec, dict):
        raise raw.error(where, "must be a mapping with protocol, port and optional endPort")
    protocol = spec.get("protocol", "TCP")
    if protocol is None:
        protocol = "TCP"
    if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
        raise raw.error(f"{where}.protocol", f"unknown protocol {show(protocol)} (expected TCP, UDP or SCTP)")
    protocol = protocol.upper()
    port = spec.get("port")
    if isinstance(port, bool):
        raise raw.error(f"{where}.port", f"must be a number or a port name, not {show(port)}")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            raise raw.error(f"{where}.port", f"{port} is not a port number (1-65535)")
    elif isinstance(port, str):
        if len(port) > 15 or not _PORT_NAME.match(port) or not re.search("[a-z]", port):
            raise raw.error(f"{where}.port", f"{show(port)} is not a valid port name (IANA_SVC_NAME: up to 15 lower-case "
                            "letters, digits and '-')")
    elif port is not None:
        raise raw.error(f"{where}.port", f"must be a number or a port name, not {type(port).__name__}")
    end = spec.get("endPort")
    if end is not None:
        if isinstance(end, bool) or not isinstance(end, int):
            raise raw.error(f"{where}.endPort", f"must be a number, not {show(end)}")
        if not isinstance(port, int):
            raise raw.error(f"{where}.endPort", "needs a numeric port (a range cannot start at a named port)")
        if not port <= end <= 65535:
            raise raw.error(f"{where}.endPort", f"{end} must be between port {port} and 65535")
    return PortRule(protocol, port, end)


def _rules(spec: Any, direction: str, raw: RawObject) -> tuple[Rule, ...]:
    peers_key = "from" if direction == "ingress" else "to"
    if spec is None:
        return ()
    if not isinstance(spec, list):
        raise raw.error(f"spec.{direction}", "must be a list of rules")
    rules = []
    for r, rule in enumerate(spec):
        where = f"spec.{direction}[{r}]"
        if rule is None:
            rule = {}
        if not isinstance(rule, dict):
            raise raw.error(where, f"a rule must be a mapping with {peers_key} and ports")
        unknown = set(rule) - {peers_key, "ports"}
        if unknown:
            raise raw.error(f"{where}.{sorted(unknown)[0]}", f"unknown field in an {direction} rule "
                            f"(expected {peers_key}, ports)")
        peers_spec, ports_spec = rule.get(peers_key), rule.get("ports")
        if peers_spec is not None and not isinstance(peers_spec, list):
            raise raw.error(f"{where}.{peers_key}", "must be a list of peers")
        if ports_spec is not None and not isinstance(ports_spec, list):
            raise raw.error(f"{where}.ports", "must be a list of ports")
        peers = tuple(_peer(p, i, f"{where}.{peers_key}[{i}]", raw) for i, p in enumerate(peers_spec)) \
            if peers_spec else None
        ports = tuple(_port(p, f"{where}.ports[{i}]", raw) for i, p in enumerate(ports_spec)) if ports_spec else None
        rules.append(Rule(r, peers, ports))
    return tuple(rules)


def compile_policy(raw: RawObject) -> NetworkPolicy:
    """Validate and compile one NetworkPolicy object."""
    from tracer.k8s.cluster import need_name, need_namespace  # noqa: PLC0415 - cluster imports this module

    need_name(raw)
    namespace = need_namespace(raw)
    spec = raw.body.get("spec")
    if spec is None:
        raise raw.error("spec", "missing (a NetworkPolicy needs spec.podSelector)")
    if not isinstance(spec, dict):
        raise raw.error("spec", f"must be a mapping, not {type(spec).__name__}")
    if "podSelector" not in spec:
        raise raw.error("spec.podSelector", "missing (use podSelector: {} to select every pod in the namespace)")
    selector = _selector(spec["podSelector"], "spec.podSelector", raw)
    ingress = _rules(spec.get("ingress"), "ingress", raw)
    egress = _rules(spec.get("egress"), "egress", raw)
    types = spec.get("policyTypes")
    if types is None or types == []:
        types = ["Ingress"] + (["Egress"] if egress else [])
    if not isinstance(types, list):
        raise raw.error("spec.policyTypes", "must be a list of Ingress and/or Egress")
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            raise raw.error(f"spec.policyTypes[{i}]", f"unknown policy type {show(t)} (expected Ingress or Egress)")
    return NetworkPolicy(namespace, raw.name, selector, "Ingress" in types, "Egress" in types, ingress, egress,
                         raw.file)
