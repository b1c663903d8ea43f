"""Counts the fuzz cases each run executes, for the figures in SECURITY.md."""

from __future__ import annotations

import pytest

from robustness.runner import record_figure

CASES = {"n": 0}


def count_case() -> None:
    """Called once per executed fuzz case."""
    CASES["n"] += 1


@pytest.fixture(scope="session", autouse=True)
def _report_fuzz_cases():
    yield
    record_figure("fuzz_cases", CASES["n"])
