"""NetworkPolicy verdicts per flow: one engine call per distinct (source, destination, port, protocol), on the
initiator's post-DNAT tuple, so every packet of a connection — replies included — carries its verdict."""

from __future__ import annotations

from typing import Any

import numpy as np

PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}


def flow_verdicts(a: Any, c: dict[str, np.ndarray], pk: dict[str, np.ndarray], init_pk: np.ndarray,
                  n_fl: int) -> list[tuple[str | None, str, Any]]:
    """(verdict, explanation, Verdict object) per flow, evaluated once per distinct (src, dst, port, proto)."""
    if not a.facts.present or a.facts.engine is None:
        return [(None, "", None)] * n_fl
    engine = a.facts.engine
    cache: dict[tuple, tuple[str | None, str, Any]] = {}
    out = []
    for f in range(n_fl):
        p = int(init_pk[f])
        rep = int(pk["rep"][p])
        fwd = bool(pk["forward"][p])
        ver = int(c["i_ver"][rep])
        s = (c["i_src"] if fwd else c["i_dst"])[rep]
        d = (c["i_dst"] if fwd else c["i_src"])[rep]
        dport = int((c["i_dport"] if fwd else c["i_sport"])[rep])
        proto = PROTO_NAMES.get(int(c["i_proto"][rep]), str(int(c["i_proto"][rep])))
        key = (ver, int(s), int(d), dport, proto)
        if key not in cache:
            src_ip, dst_ip = a._addr(ver, int(s)), a._addr(ver, int(d))
            port = dport if proto in ("TCP", "UDP", "SCTP") else None
            try:
                # A destination still addressed to a Service (no capture after the DNAT): the engine judges
                # every backend on its target port, as Kubernetes does.
                v = engine.check(src_ip, dst_ip, port, protocol=proto)
            except Exception as exc:  # noqa: BLE001 - an endpoint the engine cannot judge: say so, do not crash
                cache[key] = ("unknown", f"cannot evaluate policy: {exc}", None)
            else:
                cache[key] = (v.verdict, v.explanation, v)
        out.append(cache[key])
    return out
