"""``StatusBar``: files, packets shown / total, active filter, CNI mode, cluster, and load progress.

The line must keep every one of those in an 80-column terminal too: when the full wording does not fit, the
parts are shortened one step at a time (``CNI: flannel-vxlan (detected)`` → ``flannel-vxlan``, ``cluster:
cluster.yaml`` → ``cluster ✓``, several files → ``3 files``…) and a long filter expression is cut in the
middle, rather than letting the right end — the CNI mode and whether a cluster is loaded — fall off the screen.
"""

from __future__ import annotations

import os

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import Static

from tracer.ui.safe import clean
from tracer.ui.session import Session

SEP = " │ "

# (part, variant) steps tried in order until the line fits: the least useful words go first.
SHORTEN = (("cni", 1), ("cluster", 1), ("count", 1), ("cni", 2), ("files", 1), ("marks", 1), ("files", 2))


class StatusBar(Static):
    """One line at the bottom; the app calls ``refresh_from`` whenever the session changes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last: tuple[Session, str] | None = None

    def refresh_from(self, session: Session, *, progress: str = "") -> None:
        self._last = (session, progress)
        self.update(status_text(session, progress=progress, width=self.content_size.width or None))

    def on_resize(self, event: events.Resize) -> None:
        if self._last is not None:  # the shortening depends on the width
            session, progress = self._last
            self.refresh_from(session, progress=progress)


def status_text(session: Session, *, progress: str = "", width: int | None = None) -> Text:
    """The status line for ``session``, shortened step by step to fit ``width`` cells (None: no limit)."""
    parts = _parts(session, progress)
    level = {name: 0 for name, _ in parts}

    def line() -> str:
        return SEP.join(w for w in (_pick(variants, level[name])[0] for name, variants in parts) if w)

    filter_room: int | None = None
    if width:
        for name, step in SHORTEN:
            if cell_len(line()) <= width:
                break
            if name in level:
                level[name] = max(level[name], step)
        excess = cell_len(line()) - width
        if excess > 0 and "filter" in level:
            # What is left for the expression once everything else is as short as it gets.
            expr = clean(session.filter_expr)
            filter_room = max(cell_len(expr) - excess, 8)
    text = Text(no_wrap=True, overflow="ellipsis")
    for name, variants in parts:
        words, style = _pick(variants, level[name])
        if not words:
            continue
        if text:
            text.append(SEP)
        if name == "filter":  # the label plain, the expression bold
            expr = words[len("filter: "):]
            text.append("filter: ")
            text.append(expr if filter_room is None else _cut_middle(expr, filter_room), style="bold")
        else:
            text.append(words, style=style)
    return text


def _pick(variants: list[tuple[str, str]], level: int) -> tuple[str, str]:
    return variants[min(level, len(variants) - 1)]


def _parts(session: Session, progress: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each part of the line as its variants, longest first: (words, style). Every word is cleaned here."""
    names = [clean(os.path.basename(p)) for p in session.paths]
    files = ", ".join(names) or "no file"
    parts: list[tuple[str, list[tuple[str, str]]]] = [
        ("files", [(files, "bold"), (files if len(names) < 2 else f"{len(names)} files", "bold"),
                   (_cut_middle(files, 24) if len(names) < 2 else f"{len(names)} files", "bold")]),
        ("count", [(f"{session.shown:,}/{session.total:,} pkts", ""), (f"{session.shown:,}/{session.total:,}", "")]),
    ]
    if session.marks:
        parts.append(("marks", [(f"{len(session.marks):,} marked", ""), (f"{len(session.marks):,}●", "")]))
    if session.filter_expr:
        parts.append(("filter", [("filter: " + clean(session.filter_expr), "")]))
    detected = _detected_cni(session)
    if session.cni:
        mode = clean(detected or session.cni)
        parts.append(("cni", [(f"CNI: {mode} (--cni)", ""), (f"CNI: {mode}", ""), (mode, "")]))
    elif detected:
        mode = clean(detected)
        parts.append(("cni", [(f"CNI: {mode} (detected)", ""), (f"CNI: {mode}", ""), (mode, "")]))
    else:
        parts.append(("cni", [("CNI: ?", "")]))
    if session.cluster is not None:
        names = clean(", ".join(os.path.basename(p) for p in session.cluster_paths))
        parts.append(("cluster", [(f"cluster: {names}", ""), ("cluster ✓", "")]))
    else:
        parts.append(("cluster", [("no cluster", "dim")]))
    if progress:
        parts.append(("progress", [(clean(progress), "bold")]))
    elif session.cancelled:
        parts.append(("progress", [("load cancelled: partial", "bold yellow")]))
    return parts


def _cut_middle(words: str, room: int) -> str:
    """``words`` in at most ``room`` cells, the middle replaced by an ellipsis (both ends say the most)."""
    if len(words) <= room:
        return words
    if room <= 1:
        return "…"[:room]
    head = (room - 1) // 2
    tail = room - 1 - head
    return words[:head] + "…" + (words[-tail:] if tail else "")


def _detected_cni(session: Session) -> str | None:
    analysis = session.analysis
    if analysis is None:
        return None
    for name in ("cni", "mode", "cni_mode"):
        value = getattr(analysis, name, None)
        if value:
            return str(getattr(value, "name", value))
    return None
