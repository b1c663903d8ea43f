"""The core never imports Textual or Rich; k8s and hops never import scapy (the seams in the guide)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import tracer

CORE = ("capture", "decode", "k8s", "hops", "node", "lab")


def _modules(package: str) -> list[str]:
    pkg = __import__(f"tracer.{package}", fromlist=["_"])
    names = [f"tracer.{package}"]
    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=f"tracer.{package}.")]
    return names


def _imports_of(module: str) -> set[str]:
    code = (
        "import sys, importlib; importlib.import_module(%r); "
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual','rich','scapy'))))"
    ) % module
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in out.strip().split(",") if m}


@pytest.mark.parametrize("module", [m for p in CORE for m in _modules(p)])
def test_core_module_has_no_ui_import(module: str) -> None:
    """A core module imported alone pulls in neither textual nor rich."""
    assert not _imports_of(module) & {"textual", "rich"}, module


@pytest.mark.parametrize("module", [m for p in ("k8s", "hops") for m in _modules(p)])
def test_k8s_and_hops_never_import_scapy(module: str) -> None:
    """k8s and hops are pure: no scapy (decode is the only scapy binding)."""
    assert "scapy" not in _imports_of(module), module


def test_version() -> None:
    assert tracer.__version__
