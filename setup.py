"""Build hook: the wheel carries the bundled demo (``captures/demo``) as ``tracer/demo``.

Everything else about the package is declared in ``pyproject.toml``. The demo captures live once in git, under
``captures/`` with the other bundled captures, but package data cannot reach outside the package directory; so
``build_py`` copies the demo into the built package, where ``tracer.commands.open.demo_dir()`` looks when there
is no checkout around the installed package (``pip install .``, a wheel). An editable install reads
``captures/demo`` from the checkout and needs no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DEMO = Path(__file__).resolve().parent / "captures" / "demo"
TARGET = ("tracer", "demo")  # inside the built package: tracer/demo


class BuildPyWithDemo(build_py):
    """``build_py`` that also copies ``captures/demo`` (cluster.yaml, merged.pcapng, points/…) into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        if not (DEMO / "merged.pcapng").is_file():
            # A wheel without its demo would install a `tracer open` that fails at once: refuse to build one.
            raise RuntimeError(f"{DEMO}: bundled demo missing (merged.pcapng); the wheel would not carry it")
        target = Path(self.build_lib).joinpath(*TARGET)
        shutil.rmtree(target, ignore_errors=True)  # a stale copy from an earlier build must not linger
        shutil.copytree(DEMO, target, ignore=shutil.ignore_patterns(".*", "__pycache__"))


setup(cmdclass={"build_py": BuildPyWithDemo})
