"""The TUI's own loading path (create_app → worker → index → panes) on corrupt and truncated captures.

Each app is driven headless with Pilot: it must either show exactly the complete packets (walked
independently) with one-line warnings, or leave with a one-line fatal error when nothing is readable, and
never report an internal error from its workers (the app catches them so the UI survives; the harness
treats them as crashes). Every packet's detail panes are painted on the way.
"""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import pytest

from .capwalk import walk

CRASH_WORDS = ("internal error", "Traceback", "Error:")


def _inputs(public: Path, tmp: Path) -> list[tuple[str, Path, int | None]]:
    """(label, path, expected packets or None when undefined) for the corrupt files and a few truncations."""
    out = []
    for path in sorted(public.glob("corrupt-*")):
        w = walk(path.read_bytes())
        expected = w.packets_before(w.valid_until) if w.kind == "pcap" else None
        out.append((path.name, path, expected))
    for name, frac in (("vxlan-4789-http-vni1-zeek.pcap", 0.61), ("pcapng-ens33-docker0-tls-gopacket.pcapng", 0.47),
                       ("pcapng-suite-test202-multi-section-mixed-endian-be.pcapng", 0.5)):
        raw = (public / name).read_bytes()
        cut = int(len(raw) * frac)
        piece = tmp / f"cut-{name}"
        piece.write_bytes(raw[:cut])
        out.append((f"{name} cut at {cut}", piece, walk(raw[:cut]).packets_before(cut)))
    raw = gzip.decompress((public / "pcap-gzip-compressed-tls-scapy.pcap.gz").read_bytes())
    piece = tmp / "cut.pcap.gz"
    piece.write_bytes(gzip.compress(raw[: len(raw) * 2 // 3], mtime=0))
    out.append(("gzip, cut inside", piece, walk(raw[: len(raw) * 2 // 3]).packets_before(len(raw))))
    return out


def test_tui_loads_corrupt_and_truncated_captures(public_captures: Path, tmp_path: Path) -> None:
    """Corrupt files and mid-record truncations through the app: rows or a one-line exit, never a crash."""
    pytest.importorskip("tracer.ui.app", reason="the TUI is not written yet")
    from tracer.ui.app import create_app

    problems: list[str] = []

    async def one(label: str, path: Path, expected: int | None) -> None:
        app = create_app([str(path)], analyse=False)
        async with app.run_test(size=(120, 36)) as pilot:
            for _ in range(60):
                await pilot.pause()
                await app.workers.wait_for_complete()
                if app.fatal_error or (not app.session.loading and not any(w.is_running for w in app.workers)):
                    break
            if app.fatal_error is None:
                for _ in range(min(app.session.total, 8)):  # paint each packet's panes
                    await pilot.press("down")
                await pilot.pause()
        missing = " ".join(app.session.missing.values())
        if any(word in missing for word in CRASH_WORDS) or any(word in (app.fatal_error or "") for word in CRASH_WORDS):
            problems.append(f"{label}: {app.fatal_error or missing}")
        elif app.fatal_error is not None:
            if "\n" in app.fatal_error.strip():
                problems.append(f"{label}: fatal error is not one line: {app.fatal_error!r}")
            if expected:
                problems.append(f"{label}: refused, but {expected} complete packets precede the damage")
        elif expected is not None and app.session.total != expected:
            problems.append(f"{label}: the app shows {app.session.total} packets, expected {expected}")
        for warning in getattr(app.session.index, "warnings", None) or []:
            if "\n" in warning.strip():
                problems.append(f"{label}: warning is not one line: {warning!r}")

    async def all_inputs() -> None:
        for label, path, expected in _inputs(public_captures, tmp_path):
            await one(label, path, expected)

    asyncio.run(all_inputs())
    assert not problems, "\n".join(problems)
