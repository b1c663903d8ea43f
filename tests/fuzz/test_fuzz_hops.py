"""Fuzz the hop analysis: multi-point captures (pcapng interfaces named NODE/IFACE, pod:NS/NAME) carrying honest
and hostile frames at random times, under every CNI model: analyze, path and flows never raise."""

from __future__ import annotations

import importlib.util
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustness.runner import time_bound
from tracer.fuzz import build as B

from .conftest import count_case
from .strategies import DEADLINE, DERANDOMIZE, SAMPLE_FRAMES, examples, link_frame

POINTS = ["node1/eth0", "node1/cni0", "node1/flannel.1", "node2/eth0", "node2/cni0", "pod:default/web",
          "node2/veth1234", "node1/tunl0", "node2/vxlan.calico"]
CNIS = [None, "flannel-vxlan", "flannel-host-gw", "calico-ipip", "calico-vxlan", "calico-bgp"]


@settings(max_examples=examples(150), deadline=DEADLINE, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.integers(0, 4), st.one_of(st.sampled_from(SAMPLE_FRAMES), link_frame(1)),
                          st.integers(0, 10**6)), min_size=1, max_size=30),
       st.lists(st.sampled_from(POINTS), min_size=5, max_size=5, unique=True), st.sampled_from(CNIS))
def test_hop_analysis_survives_hostile_captures(records, points, cni) -> None:
    """analyze(index, cni) then path(row) and flows(): no exception but TracerError, no hang."""
    if importlib.util.find_spec("tracer.hops.analysis") is None:
        pytest.skip("tracer.hops.analysis is not written yet")
    from tracer.capture.index import load_index
    from tracer.errors import TracerError
    from tracer.hops.analysis import analyze

    count_case()
    blocks = [B.shb(), *(B.idb(1, name=p) for p in points)]
    blocks += [B.epb(B.Record(frame, ts_sec=1_700_000_000, ts_frac=ts, interface=itf)) for itf, frame, ts in records]
    fd, path = tempfile.mkstemp(prefix="tracer-fuzz-", suffix=".pcapng")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"".join(blocks))
        with time_bound(20):
            try:
                index = load_index([path])
                analysis = analyze(index, cni=cni)
                for row in range(min(len(index), 10)):
                    analysis.path(row)
                analysis.flows()
            except TracerError:
                pass
    finally:
        os.unlink(path)
