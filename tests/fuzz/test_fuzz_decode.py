"""Fuzz the header decoders: hostile, nested, lying frames never raise, never hang, keep every column whole.

``decode_frames`` (the vectorised index decode) and ``dissect`` (scapy, one packet) both see every packet of an
attacker-controlled capture. Cases are bounded for CI; ``TRACER_FUZZ_EXAMPLES=N`` runs N per test locally.
"""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robustness.runner import time_bound
from tracer.fuzz import targets

from .conftest import count_case
from .strategies import DEADLINE, DERANDOMIZE, LINKTYPES, examples, frames_batch, link_frame

CASE_SECONDS = 10  # a case that takes longer is a hang (a typical case takes milliseconds)
SETTINGS = dict(deadline=DEADLINE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                derandomize=DERANDOMIZE, print_blob=True)


def _need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not written yet")


@settings(max_examples=examples(200), **SETTINGS)
@given(frames_batch())
def test_decode_frames_survives_hostile_frames(batch) -> None:
    """decode_frames on any batch: no exception, no hang, one value per frame in every column, depth <= 3."""
    _need("tracer.decode.fields")
    frames, linktypes = batch
    count_case()
    with time_bound(CASE_SECONDS):
        targets.check_decode(frames, linktypes)


@settings(max_examples=examples(150), **SETTINGS)
@given(st.binary(max_size=300), st.sampled_from(LINKTYPES))
def test_decode_frames_survives_random_bytes(data, linktype) -> None:
    """decode_frames on unstructured bytes under every link type it knows."""
    _need("tracer.decode.fields")
    count_case()
    with time_bound(CASE_SECONDS):
        targets.check_decode([data, data[: len(data) // 2]], [linktype, linktype])


@settings(max_examples=examples(100), **SETTINGS)
@given(st.sampled_from([1, 101, 113, 276, 0]).flatmap(lambda lt: st.tuples(st.just(lt), link_frame(lt))))
def test_dissect_survives_hostile_frames(case) -> None:
    """dissect on any frame: no exception, no hang, plain-string fields with spans inside the frame."""
    _need("tracer.decode.dissect")
    linktype, frame = case
    count_case()
    with time_bound(CASE_SECONDS):
        targets.check_dissect(frame, linktype)
