"""Run ``tracer.cli.main`` in-process under a time bound and classify the outcome, for the robustness tests.

In-process runs are ~100x cheaper than a subprocess, which is what lets the corpus tests try every
truncation of every public capture. ``TRACER_DEBUG=1`` is set so that an internal error escapes ``main``
as the exception itself (with its traceback) instead of the CLI's last-resort one-liner: the harness wants
to see crashes, not hide them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest


class Hang(Exception):
    """Raised by the alarm when a call overruns its time bound."""


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` in the main thread if the body runs longer than ``seconds`` (SIGALRM-based)."""

    def _fire(signum, frame):  # noqa: ARG001
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    """What one CLI run did."""

    argv: list[str]
    code: int | None
    out: str
    err: str
    crash: str | None  # the traceback text when an exception escaped (or the run hung)

    def problem(self) -> str | None:
        """Why this run breaks the rules (traceback, hang, multi-line error, bad exit status), or None."""
        if self.crash:
            return f"crash: {self.crash.strip().splitlines()[-1]}"
        if "Traceback (most recent call last)" in self.err or "internal error" in self.err:
            return f"traceback on stderr: {self.err.strip()[-300:]!r}"
        lines = [line for line in self.err.splitlines() if line.strip()]
        if self.code not in (0, 2):
            return f"exit status {self.code} (expected 0 or 2); stderr {self.err.strip()[-300:]!r}"
        if self.code != 0 and (len(lines) != 1 or not lines[0].startswith("tracer: ")):
            return f"error is not exactly one 'tracer: ' line: {lines!r}"
        if self.code == 0 and any(not line.startswith("tracer: ") for line in lines):
            return f"stderr on success holds more than tracer's own lines (warnings, notes): {lines!r}"
        return None


@cache
def commands() -> frozenset[str]:
    """Subcommands the CLI has registered so far (others' modules land during the project)."""
    from tracer.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse has no public accessor
        return frozenset(action.choices)
    return frozenset()


def need_command(name: str) -> None:
    """Skip the calling test while ``tracer NAME`` does not exist yet."""
    if name not in commands():
        pytest.skip(f"`tracer {name}` is not implemented yet (no tracer/commands/{name}.py)")


_PARSER: list = []


def _cached_parser(original):
    """One parser for every in-process run (built by the real ``build_parser`` the first time)."""
    if not _PARSER:
        _PARSER.append(original())
    return _PARSER[0]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], *, timeout: float = 20.0) -> Outcome:
    """``tracer.cli.main(argv)`` in-process with output captured, exceptions and hangs recorded, never raised."""
    import tracer.cli

    capsys.readouterr()  # drop anything left over
    # Building the parser imports every command module and costs half of a small run; main() is otherwise
    # exercised as is. argparse parsers are reusable: defaults are re-applied on every parse_args.
    build_parser = tracer.cli.build_parser
    tracer.cli.build_parser = lambda: _cached_parser(build_parser)
    old = os.environ.get("TRACER_DEBUG")
    os.environ["TRACER_DEBUG"] = "1"
    code: int | None = None
    crash: str | None = None
    try:
        with time_bound(timeout):
            code = tracer.cli.main(argv)
    except SystemExit as exc:  # argparse usage errors exit 2 with a usage message: one kind of clear error
        code = exc.code if isinstance(exc.code, int) else 2
    except (Exception, Hang):  # noqa: BLE001 - the point is to record it
        crash = traceback.format_exc()
    finally:
        tracer.cli.build_parser = build_parser
        if old is None:
            os.environ.pop("TRACER_DEBUG", None)
        else:
            os.environ["TRACER_DEBUG"] = old
    captured = capsys.readouterr()
    return Outcome(list(argv), code, captured.out, captured.err, crash)


def record_figure(key: str, value: int) -> None:
    """Append a figure of this run to ``$TRACER_ROBUST_FIGURES`` (JSON lines) for SECURITY.md, if set."""
    import json

    out = os.environ.get("TRACER_ROBUST_FIGURES")
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({key: value}) + "\n")
