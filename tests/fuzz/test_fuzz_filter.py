"""Fuzz the display filter: any expression compiles or raises FilterError (with a position), in bounded time,
and a compiled filter's mask over a real index has one boolean per packet."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustness.runner import time_bound
from tracer.fuzz import build as B

from .conftest import count_case
from .strategies import DEADLINE, DERANDOMIZE, examples

TOKENS = ["ip.src", "ip.dst", "ip.addr", "outer.ip.src", "inner.ip.dst", "tcp.port", "udp.dstport", "vxlan",
          "vxlan.vni", "ipip", "icmp", "tcp.flags.syn", "frame.len", "ipv6.addr", "geneve", "gre", "==", "!=", ">",
          "<=", "in", "and", "or", "not", "&&", "||", "!", "(", ")", "{", "}", "10.244.0.0/16", "fd00::1", "8472",
          "0x1f", "-1", "99999999999999999999", '"x', '"10.0.0.1"', "1e9", "[bold]", "\x1b[31m", "::", "/", "."]


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    if importlib.util.find_spec("tracer.capture.filter") is None:
        pytest.skip("tracer.capture.filter is not written yet")
    from tracer.capture.index import load_index

    inner = B.ethernet(B.ipv4(B.tcp(b"x", 40000, 80), B.IP_TCP), B.ETH_IPV4)
    frames = [inner, B.ethernet(B.ipv4(B.udp(B.vxlan(inner, 1), 5, B.PORT_FLANNEL), B.IP_UDP), B.ETH_IPV4),
              B.ethernet(B.ipv6(B.icmp(type_=128), B.IP_ICMP6), B.ETH_IPV6)]
    path = Path(tmp_path_factory.mktemp("filter")) / "f.pcap"
    path.write_bytes(B.pcap_file([B.Record(f) for f in frames]))
    return load_index([str(path)])


@settings(max_examples=examples(200), deadline=DEADLINE, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join), st.text(max_size=60)))
def test_filter_compiles_or_says_where(index, expr: str) -> None:
    """compile_filter(expr) → a filter whose mask has len(index) booleans, or FilterError; nothing else, quickly."""
    from tracer.capture.filter import compile_filter
    from tracer.errors import FilterError

    count_case()
    with time_bound(10):
        try:
            flt = compile_filter(expr)
        except FilterError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip()
            return
        mask = flt.mask(index)
    assert mask.dtype == bool and len(mask) == len(index)
