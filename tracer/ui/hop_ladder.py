"""``HopLadder``: the CNI path of the selected packet, one line per hop, seen or not, with time and Δt.

It renders ``analysis.path(row)`` from ``tracer.hops`` and nothing else: the path, which hops saw the packet,
the skew-corrected Δt and where it was last seen are all computed by the core. The observation under the
list cursor is marked ``▶``; the hop after the last one seen is where to look.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tracer.ui.columns import format_time
from tracer.ui.safe import clean
from tracer.ui.text_pane import TextPane


def attr(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name`` or ``obj[name]``: the hop model is a dataclass, its JSON twin a dict."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _ts_ns(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float):  # seconds since the epoch (the JSON form)
        return int(round(value * 1e9))
    return int(value)


class HopLadder(TextPane):
    """The hop ladder pane (title in the border)."""

    BORDER_TITLE = "Hop path"

    def show_path(self, path: Any, *, current_row: int | None, time_format: str = "absolute") -> None:
        hops = list(attr(path, "hops", ()) or ())
        text = Text(no_wrap=True, overflow="ellipsis")
        pid = attr(path, "packet_id")
        cni = attr(path, "cni") or attr(path, "mode")
        head = f"packet {pid}" if pid is not None else "packet"
        if cni:
            head += f"  ·  {clean(cni)}"
        text.append(head + "\n", style="bold")
        if not hops:
            text.append("no hop model for this packet (not pod traffic, or CNI unknown)\n", style="italic")
        first_seen = next((_ts_ns(attr(h, "ts")) for h in hops if attr(h, "seen")), None)
        last_seen = attr(path, "last_seen")
        for hop in hops:
            seen = bool(attr(hop, "seen"))
            row = attr(hop, "row")
            if row is None and attr(hop, "no") is not None:
                row = int(attr(hop, "no")) - 1
            here = current_row is not None and row == current_row
            point = clean(attr(hop, "point") or attr(hop, "role") or "?")
            role = clean(attr(hop, "role") or "")
            encap = clean(attr(hop, "encap") or "")
            mark = "▶" if here else " "
            text.append(f"{mark} ", style="bold reverse" if here else "")
            text.append("●" if seen else "○", style="green" if seen else "red")
            text.append(f" {point}", style="bold" if here else ("" if seen else "dim"))
            if role and role not in point:
                text.append(f"  {role}", style="dim")
            if encap and encap not in ("-", "–", "none"):
                text.append(f"  {encap}", style="cyan")
            ts = _ts_ns(attr(hop, "ts"))
            if seen and ts is not None:
                text.append("  " + format_time(ts, time_format if time_format != "delta" else "relative",
                                               first_ns=first_seen or ts, prev_ns=None))
                delta = attr(hop, "delta_us")
                if delta is not None:
                    text.append(f"  Δ{float(delta):+.0f} µs", style="dim")
            elif not seen:
                text.append("  not seen", style="red")
            if last_seen and clean(last_seen) == point and seen:
                text.append("  ◀ last seen", style="bold yellow")
            text.append("\n")
        dropped = attr(path, "dropped_after")
        if dropped:
            text.append(f"\nlast seen at {clean(dropped)}", style="bold red")
            nxt = attr(path, "expected_next")
            if nxt:
                text.append(f"; expected next {clean(nxt)}", style="red")
            text.append("\n")
        offsets = attr(path, "clock_offsets")
        if offsets:
            parts = ", ".join(f"{clean(k)} {float(v) * 1e6:+.0f} µs" for k, v in dict(offsets).items())
            text.append(f"clock offsets: {parts}\n", style="dim")
        self.show(text)
