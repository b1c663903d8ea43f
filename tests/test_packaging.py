"""The built wheel carries the bundled demo, so ``pip install .`` (not editable) gives a ``tracer open`` that works.

The wheel is built offline from a copy of the source tree (``pip wheel --no-build-isolation --no-index``: a few
seconds, no network), then run from the unpacked wheel with ``python -S`` so that neither the checkout nor an
editable install of it can supply the demo.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "captures" / "demo"


def _can_build_wheels() -> str | None:
    """Why a wheel cannot be built offline here, or None."""
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed (pip install '.[test]' brings it)"
    if importlib.util.find_spec("wheel") is None and importlib.util.find_spec("setuptools.command.bdist_wheel") is None:
        return "no bdist_wheel: neither the wheel package nor setuptools >= 70.1 is installed"
    return None


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    why = _can_build_wheels()
    if why:
        pytest.skip(why)
    if not (DEMO / "merged.pcapng").is_file():
        pytest.skip(f"{DEMO} is absent (not a full checkout)")
    src = tmp_path_factory.mktemp("src")
    # A private copy: building in the shared tree would race other builds over build/ and *.egg-info.
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "tracer", src / "tracer", ignore=junk)
    shutil.copytree(DEMO, src / "captures" / "demo", ignore=junk)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(out.glob("tracer-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_every_demo_file_unchanged(built_wheel):
    """Every file of captures/demo (cluster.yaml, merged.pcapng, points/…) is in the wheel as tracer/demo/…, byte
    for byte."""
    expected = {p.relative_to(DEMO).as_posix(): p for p in DEMO.rglob("*") if p.is_file()}
    assert "merged.pcapng" in expected and "cluster.yaml" in expected
    with zipfile.ZipFile(built_wheel) as whl:
        shipped = {n[len("tracer/demo/"):]: n for n in whl.namelist() if n.startswith("tracer/demo/")}
        assert set(shipped) == set(expected)
        for rel, path in expected.items():
            assert whl.read(shipped[rel]) == path.read_bytes(), rel
        assert not [n for n in whl.namelist() if n.startswith("captures/")], "the demo belongs inside the package"


def test_installed_wheel_opens_the_demo(built_wheel, tmp_path):
    """From the unpacked wheel alone, `tracer open`'s no-file default resolves to the shipped demo and its
    cluster, and `tracer show` reads it to the same rows (and denied rows) as the checkout's captures."""
    target = tmp_path / "site"
    with zipfile.ZipFile(built_wheel) as whl:
        whl.extractall(target)
    # -S: no site-packages .pth files, so no editable-install finder; the dependencies come from PYTHONPATH.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), *site.getsitepackages()]))
    probe = ("import argparse, json, tracer\n"
             "from tracer.commands.open import resolve\n"
             "files, cluster = resolve(argparse.Namespace(files=[], cluster=None))\n"
             "print(json.dumps({'package': tracer.__file__, 'files': files, 'cluster': cluster}))\n")
    proc = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert Path(found["package"]).is_relative_to(target)
    assert [Path(f).relative_to(target).as_posix() for f in found["files"]] == ["tracer/demo/merged.pcapng"]
    assert [Path(f).relative_to(target).as_posix() for f in found["cluster"]] == ["tracer/demo/cluster.yaml"]

    def show(python_args: list[str], capture: str, cluster: str, env_: dict | None) -> list[dict]:
        cmd = [sys.executable, *python_args, "-m", "tracer", "show", "--format", "jsonl", "--cluster", cluster,
               capture]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env_, cwd=tmp_path, timeout=120)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    from_wheel = show(["-S"], found["files"][0], found["cluster"][0], env)
    from_checkout = show([], str(DEMO / "merged.pcapng"), str(DEMO / "cluster.yaml"), None)
    assert len(from_wheel) == len(from_checkout) > 0
    denied = [r["no"] for r in from_wheel if r.get("verdict") == "deny"]
    assert denied, "the demo's denied flow is visible from the installed wheel"
    assert denied == [r["no"] for r in from_checkout if r.get("verdict") == "deny"]
