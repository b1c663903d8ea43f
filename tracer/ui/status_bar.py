"""``StatusBar``: files, packets shown / total, active filter, CNI mode, cluster, and load progress."""

from __future__ import annotations

import os

from rich.text import Text
from textual.widgets import Static

from tracer.ui.safe import clean
from tracer.ui.session import Session


class StatusBar(Static):
    """One line at the bottom; the app calls ``refresh_from`` whenever the session changes."""

    def refresh_from(self, session: Session, *, progress: str = "") -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        files = ", ".join(os.path.basename(p) for p in session.paths) or "no file"
        text.append(clean(files), style="bold")
        text.append(f" │ {session.shown:,}/{session.total:,} pkts")
        if session.marks:
            text.append(f" │ {len(session.marks):,} marked")
        if session.filter_expr:
            text.append(" │ filter: ")
            text.append(clean(session.filter_expr), style="bold")
        detected = _detected_cni(session)
        if session.cni:
            text.append(f" │ CNI: {clean(detected or session.cni)} (--cni)")
        elif detected:
            text.append(f" │ CNI: {clean(detected)} (detected)")
        else:
            text.append(" │ CNI: ?")
        if session.cluster is not None:
            text.append(" │ cluster: " + clean(", ".join(os.path.basename(p) for p in session.cluster_paths)))
        else:
            text.append(" │ no cluster", style="dim")
        if progress:
            text.append(" │ " + progress, style="bold")
        elif session.cancelled:
            text.append(" │ load cancelled: partial", style="bold yellow")
        self.update(text)


def _detected_cni(session: Session) -> str | None:
    analysis = session.analysis
    if analysis is None:
        return None
    for name in ("cni", "mode", "cni_mode"):
        value = getattr(analysis, name, None)
        if value:
            return str(getattr(value, "name", value))
    return None
