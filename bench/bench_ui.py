#!/usr/bin/env python3
"""TUI benchmark: time to the first painted rows, CPU per page-down / jump-to-end, memory per packet.

Usage: python3 bench/bench_ui.py [--packets 1000000] [--file PATH]

Builds (once, cached in /tmp) a capture with ``../shared/tools/gen_overlay_pcap.py`` unless ``--file`` is
given, runs the app headless at 120x36 the way ``tracer open`` does, and prints the figures next to the
targets of issue 5 and next to a reference in the same run: ``tshark -r FILE -c 40`` (time for tshark to
print a first screen of rows). Figures are wall/CPU times on this machine; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from machine import describe  # noqa: E402 - bench/ is the script's directory, on sys.path

REPO = Path(__file__).resolve().parent.parent
GEN = REPO.parent / "shared" / "tools" / "gen_overlay_pcap.py"
TARGET_FIRST_PAINT_S = 0.3
TARGET_PAGE_CPU_MS = 20.0


def rss_anon_bytes() -> int:
    """Anonymous resident memory (heap, numpy arrays) — excludes file-backed pages such as a mapped capture."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def ensure_capture(packets: int) -> Path:
    path = Path(f"/tmp/tracer-bench-{packets}.pcap")
    if not path.exists():
        if not GEN.exists():
            sys.exit(f"need {GEN} to build the benchmark capture (or pass --file)")
        print(f"building {path} with {packets:,} packets …", flush=True)
        subprocess.run([sys.executable, str(GEN), str(packets), str(path)], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def tshark_first_screen(path: Path) -> float | None:
    if not shutil.which("tshark"):
        return None
    started = time.perf_counter()
    subprocess.run(["tshark", "-r", str(path), "-c", "40"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - started


async def measure(path: Path) -> dict[str, float]:
    baseline = rss_anon_bytes()
    imported = time.monotonic()
    from tracer.ui.app import create_app
    from tracer.ui.packet_list import PacketList

    started = time.monotonic()  # "after start": from creating the app, imports excluded (reported apart)
    app = create_app([str(path)], analyse=False)  # the list alone first; the hop analysis is phase 2
    figures: dict[str, float] = {"import_s": started - imported}
    async with app.run_test(size=(120, 36)) as pilot:
        packets = app.query_one(PacketList)
        while packets.first_row_painted_at is None and time.monotonic() - started < 30:
            await asyncio.sleep(0.002)
        if packets.first_row_painted_at is not None:
            figures["first_paint_s"] = packets.first_row_painted_at - started
        while app.session.loading and time.monotonic() - started < 600:
            await asyncio.sleep(0.05)
        figures["index_s"] = time.monotonic() - started
        figures["packets"] = app.session.total
        await pilot.pause()
        figures["rss_anon_mb"] = rss_anon_bytes() / 2**20  # the whole process, interpreter included
        figures["rss_anon_growth_mb"] = (rss_anon_bytes() - baseline) / 2**20

        def paint() -> None:
            for y in range(packets.scrollable_content_region.height):
                packets.render_line(y)

        costs = []
        for _ in range(50):
            cpu = time.thread_time()  # this (UI) thread only
            packets.action_page(1)
            packets.session.invalidate()  # measure the uncached cost: a page of rows never painted before
            paint()
            costs.append((time.thread_time() - cpu) * 1000)
        figures["page_down_cpu_ms_median"] = statistics.median(costs)
        figures["page_down_cpu_ms_max"] = max(costs)
        cpu = time.thread_time()  # this (UI) thread only
        packets.action_last()
        paint()
        figures["jump_end_cpu_ms"] = (time.thread_time() - cpu) * 1000
        # Phase 2: the hop analysis (its own benchmark times it) adds per-row columns; report the total.
        app.session.analyse = True
        app.session.missing.pop("analysis", None)   # analyse=False marked it "switched off with --no-hops"
        waited = time.monotonic()
        app.start_analysis()
        while (app.session.analysis is None and "analysis" not in app.session.missing
               and time.monotonic() - waited < 300):
            await asyncio.sleep(0.1)
        figures["analysis_s"] = time.monotonic() - waited
        figures["analysed"] = app.session.analysis is not None
        if not figures["analysed"]:
            print(f"hop analysis did not run: {app.session.missing.get('analysis', 'timed out')}")
        figures["rss_anon_with_hops_mb"] = rss_anon_bytes() / 2**20
        cpu = time.thread_time()
        packets.action_page(1)
        packets.session.invalidate()
        paint()
        figures["page_down_with_hops_cpu_ms"] = (time.thread_time() - cpu) * 1000
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path)
    args = parser.parse_args()
    path = args.file or ensure_capture(args.packets)
    reference = tshark_first_screen(path)
    figures = asyncio.run(measure(path))
    n = figures.get("packets", 0)
    budget_mb = 100 + 64 * n / 2**20
    print(f"machine: {describe()}")
    print(f"file: {path} ({path.stat().st_size / 2**20:.0f} MiB, {int(n):,} packets)")
    first = figures.get("first_paint_s", float("nan"))
    print(f"first rows painted   {first * 1000:8.1f} ms   (target <= {TARGET_FIRST_PAINT_S * 1000:.0f} ms;"
          f" tshark -c 40: {reference * 1000:.0f} ms)" if reference is not None else
          f"first rows painted   {first * 1000:8.1f} ms   (target <= {TARGET_FIRST_PAINT_S * 1000:.0f} ms)")
    print(f"imports before start {figures['import_s'] * 1000:8.1f} ms   (python -c 'import tracer.ui.app')")
    print(f"whole file indexed   {figures['index_s']:8.2f} s")
    print(f"page down CPU        {figures['page_down_cpu_ms_median']:8.2f} ms median,"
          f" {figures['page_down_cpu_ms_max']:.2f} ms max   (target <= {TARGET_PAGE_CPU_MS:.0f} ms)")
    print(f"jump to end CPU      {figures['jump_end_cpu_ms']:8.2f} ms   (target <= {TARGET_PAGE_CPU_MS:.0f} ms)")
    print(f"anon memory, list    {figures['rss_anon_mb']:8.1f} MB   (budget 100 MB + 64 B/packet = {budget_mb:.0f} MB;"
          f" {figures['rss_anon_growth_mb']:.1f} MB of it after the interpreter started)")
    if "rss_anon_with_hops_mb" in figures:
        print(f"anon memory + hops   {figures['rss_anon_with_hops_mb']:8.1f} MB   (same budget; after the hop analysis,"
              f" {figures['analysis_s']:.1f} s more; page down then {figures['page_down_with_hops_cpu_ms']:.2f} ms)")
    print(f"peak resident        {figures['peak_rss_mb']:8.1f} MB   (ru_maxrss, the analysis' temporaries included)")
    ok = (first <= TARGET_FIRST_PAINT_S and figures["page_down_cpu_ms_max"] <= TARGET_PAGE_CPU_MS
          and figures["jump_end_cpu_ms"] <= TARGET_PAGE_CPU_MS and figures["rss_anon_mb"] <= budget_mb
          and figures["analysed"] and figures.get("rss_anon_with_hops_mb", 0) <= budget_mb)
    print("all targets met" if ok else "TARGETS MISSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
