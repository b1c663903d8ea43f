"""Shared fixtures: the ../shared corpus (skipped with a reason when absent), the repo's captures dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRACER_SHARED", REPO.parent / "shared"))
PUBLIC = SHARED / "captures" / "public"
CAPTURES = REPO / "captures"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared corpus next to the checkout; tests using it skip in a user's clone that has none."""
    if not PUBLIC.is_dir():
        pytest.skip(f"../shared/captures/public not found at {PUBLIC} (only CI and developers have it)")
    return SHARED


@pytest.fixture(scope="session")
def public_captures(shared_dir: Path) -> Path:
    return shared_dir / "captures" / "public"


def needs_root() -> pytest.MarkDecorator:
    """Skip unless root (network namespaces, raw sockets)."""
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces / capture")
