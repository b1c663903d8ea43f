#!/usr/bin/env python3
"""Regenerate ``screenshots/*.svg`` from the bundled demo (``captures/demo`` + its ``cluster.yaml``).

Usage: python3 scripts/screenshots.py [--size 140x40] [--out screenshots]

Writes: ``packet-list.svg`` (the list with an encapsulated packet's hop ladder), ``denied-flow.svg`` (a denied
packet with its NetworkPolicy explanation) and ``help.svg`` (every key binding). The app is driven headless
with ``run_test`` exactly as the Pilot tests drive it, then ``save_screenshot``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracer.ui.pilot import settle  # noqa: E402 - after the path is set


def pick_rows(app) -> tuple[int, int | None]:
    """(a row of an encapsulated packet seen at many hops, the first denied row or None)."""
    session = app.session
    index = session.index
    encap_rows = [row for row in range(session.total) if int(index["encap"][row])]
    best, best_hops = 0, -1
    for row in encap_rows[:500]:
        try:
            path = session.analysis.path(row) if session.analysis is not None else None
        except Exception:  # noqa: BLE001 - a screenshot picks another row
            continue
        hops = getattr(path, "hops", None) or (path.get("hops") if isinstance(path, dict) else None) or []
        seen = sum(1 for h in hops if (getattr(h, "seen", None) if not isinstance(h, dict) else h.get("seen")))
        seen += 100 if session.verdict(row) == "allow" else 0  # the first screenshot shows a healthy path
        if seen > best_hops:
            best, best_hops = row, seen
    if best_hops < 0 and encap_rows:
        best = encap_rows[0]
    # A denied packet that the captures show dying is the screenshot's story; any denied one otherwise.
    dropped = session.analysis_column("dropped")
    denied_rows = [row for row in range(session.total) if session.verdict(row) == "deny"]
    denied = next((row for row in denied_rows if dropped is not None and bool(dropped[row])),
                  denied_rows[0] if denied_rows else None)
    return best, denied


async def shoot(out: Path, size: tuple[int, int]) -> list[Path]:
    from tracer.commands.open import demo_files
    from tracer.ui.app import create_app
    from tracer.ui.packet_list import PacketList

    captures, cluster = demo_files()
    written = []
    app = create_app(captures, cluster=cluster)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        packet_row, denied_row = pick_rows(app)
        packets = app.query_one(PacketList)
        packets.select_row(packet_row)
        await settle(app, pilot)
        written.append(Path(app.save_screenshot("packet-list.svg", str(out))))
        if denied_row is not None:
            packets.select_row(denied_row)
            await settle(app, pilot)
            written.append(Path(app.save_screenshot("denied-flow.svg", str(out))))
        else:
            print("no denied packet in the demo (is the cluster loaded and the hop analysis available?)",
                  file=sys.stderr)
        await pilot.press("question_mark")
        await pilot.pause()
        written.append(Path(app.save_screenshot("help.svg", str(out))))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate the README's screenshots")
    parser.add_argument("--size", default="140x40", help="terminal size, COLSxROWS")
    parser.add_argument("--out", type=Path, default=REPO / "screenshots")
    args = parser.parse_args()
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(args.out, (cols, rows))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
