"""``HopLadder``: the CNI path of the selected packet, one line per hop, seen or not, with time and Δt.

It renders ``analysis.path(row)`` from ``tracer.hops`` and nothing else: the path, which hops saw the packet,
the skew-corrected Δt and where it was last seen are all computed by the core. The observation under the
list cursor is marked ``▶``; the hop after the last one seen is where to look.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text

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


def _hop_ts(hop: Any) -> int | None:
    """The hop's timestamp in ns: ``ts_ns`` when the model has it, else the JSON form's seconds."""
    ns = attr(hop, "ts_ns")
    return int(ns) if ns is not None else _ts_ns(attr(hop, "ts"))


class HopLadder(TextPane):
    """The hop ladder pane (title in the border)."""

    BORDER_TITLE = "Hop path"
    _last: tuple[Any, int | None] | None = None
    DEFAULT_CSS = """
    HopLadder .text-pane--body { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def on_resize(self) -> None:
        if self._last is not None:
            self.show_path(*self._last)

    def show_message(self, message: str) -> None:
        self._last = None
        self.border_title = self.BORDER_TITLE
        super().show_message(message)

    def show_path(self, path: Any, current_row: int | None = None) -> None:
        """One line per hop: seen (●) / not seen (○) / no capture there (·), µs since the first hop seen and
        Δ from the previous seen hop (skew-corrected by the core), ``▶`` on the observation selected."""
        self._last = (path, current_row)
        hops = list(attr(path, "hops", ()) or ())
        text = Text(no_wrap=True, overflow="ellipsis")
        pid = attr(path, "packet_id")
        cni = attr(path, "cni") or attr(path, "mode")
        # Packet id and CNI mode go in the border: every line inside is a hop.
        title = "Hop path" + (f" · packet {pid}" if pid is not None else "") + (f" · {clean(cni)}" if cni else "")
        self.border_title = escape(title)  # border titles are markup; the mode name is data
        if not hops:
            text.append("no hop model for this packet (not pod traffic, or CNI unknown)\n", style="italic")
        first_seen = next((_hop_ts(h) for h in hops if attr(h, "seen")), None)
        last_seen = attr(path, "last_seen")
        # The point column gets what the rest leaves (marker 2 + encap 6 + time 9 + Δ 6 = 23 cells).
        room = self.scrollable_content_region.width or 60
        width = max(min(max((len(clean(attr(h, "point") or "?")) for h in hops), default=8), room - 23), 10)
        for hop in hops:
            seen = bool(attr(hop, "seen"))
            uncaptured = not seen and attr(hop, "captured", True) is False
            row = attr(hop, "row")
            if row is None and attr(hop, "no") is not None:
                row = int(attr(hop, "no")) - 1
            here = current_row is not None and row == current_row
            point = clean(attr(hop, "point") or attr(hop, "role") or "?")
            encap = clean(attr(hop, "encap") or "")
            text.append("▶" if here else " ", style="bold reverse" if here else "")
            text.append("●" if seen else ("·" if uncaptured else "○"),
                        style="green" if seen else ("dim" if uncaptured else "red"))
            label = point if len(point) <= width else point[: width - 1] + "…"
            text.append(f" {label:<{width}}", style="bold" if here else ("" if seen else "dim"))
            text.append(f" {encap.upper() if encap not in ('-', '–', 'none') else '':<5}", style="cyan")
            ts = _hop_ts(hop)
            if seen and ts is not None and first_seen is not None:
                text.append(f" {(ts - first_seen) / 1000:+6.0f}µs")
                delta = attr(hop, "delta_us")
                if delta is not None:
                    text.append(f" Δ{float(delta):.0f}", style="dim")
            elif uncaptured:
                text.append("  no capture here", style="dim")
            else:
                text.append("  not seen", style="bold red")
            if last_seen and clean(last_seen) == point and seen and attr(path, "dropped_after"):
                text.append(" ◀ last", style="bold yellow")
            text.append("\n")
        dropped = attr(path, "dropped_after")
        if dropped:
            text.append(f"\nlast seen at {clean(dropped)}", style="bold red")
            nxt = attr(path, "expected_next")
            if nxt:
                text.append(f"; expected next {clean(nxt)}", style="red")
            text.append("\n")
        offsets = {k: v for k, v in dict(attr(path, "clock_offsets") or {}).items() if abs(float(v)) >= 1e-6}
        if offsets:
            parts = ", ".join(f"{clean(k)} {float(v) * 1e6:+.0f} µs" for k, v in dict(offsets).items())
            text.append(f"clock offsets: {parts}\n", style="dim")
        if hops:
            text.append("● seen ○ not seen · no capture; µs since the first hop, Δ since the previous\n", style="dim")
        self.show(text)
