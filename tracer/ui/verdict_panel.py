"""``VerdictPanel``: allow / deny / unknown for the selected packet's flow, with the explanation chain.

The verdict and its explanation come from the core (the hop analysis or ``PolicyEngine``); this pane only
lays them out, as inert text.
"""

from __future__ import annotations

from rich.text import Text

from tracer.ui.safe import clean
from tracer.ui.text_pane import TextPane

VERDICT_STYLES = {"allow": ("✓ ALLOW", "bold green"), "deny": ("✗ DENY", "bold red"),
                  "unknown": ("? UNKNOWN", "bold yellow")}


class VerdictPanel(TextPane):
    """The NetworkPolicy verdict pane (title in the border)."""

    BORDER_TITLE = "Verdict"

    def show_verdict(self, verdict: str | None, explanation: str, *, subject: str = "",
                     policy: str | None = None) -> None:
        """The verdict, then the policy engine's chain (overall, egress, ingress), then what the captures show."""
        label, style = VERDICT_STYLES.get(verdict or "unknown", VERDICT_STYLES["unknown"])
        text = Text(no_wrap=False)
        text.append(label, style=style)
        if subject:
            text.append("  " + clean(subject), style="bold")
        text.append("\n")
        for line in str(policy or "").splitlines():
            stripped = line.strip()
            head, sep, rest = stripped.partition(":")
            if sep and head in ("egress", "ingress", "allowed", "denied"):
                text.append(f"{'  ' if line.startswith(' ') else ''}{clean(head)}:", style="bold")
                text.append(clean(rest) + "\n")
            else:
                text.append(clean(line) + "\n")
        if policy and explanation:
            text.append("captures: ", style="bold")
        for line in str(explanation or "").splitlines():
            text.append(clean(line) + "\n")
        self.show(text)
