"""Hostile bytes stay inert: markup, ANSI/OSC escapes and control characters in payloads and pcapng
interface names are shown as text in every pane, never interpreted."""

from __future__ import annotations

import re

import pytest

from tracer.ui.app import create_app
from tracer.ui.hex_view import HexView
from tracer.ui.safe import ascii_byte
from ui_scenario import run_async, screen_text, settle, write_hostile

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@run_async
async def test_hostile_names_and_payloads_are_inert(tmp_path) -> None:
    """The interface name's ``[bold red]`` is shown literally; no escape or control byte reaches the screen."""
    capture = write_hostile(tmp_path)
    app = create_app([str(capture)])
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "[bold red]eth0" in text  # literal, not a style
        assert not CONTROL.search(text), repr(CONTROL.search(text))
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\x07" not in svg
        hexview = app.query_one(HexView)
        lines = [hexview.render_line(y).text.rstrip() for y in range(hexview.virtual_size.height)]
        assert not any(CONTROL.search(line) for line in lines)
        # The ASCII column is exactly the bytes with everything outside printable ASCII as a dot.
        per = hexview.per_line
        data = hexview.data
        for k, line in enumerate(lines):
            chunk = "".join(ascii_byte(b) for b in data[k * per:(k + 1) * per])
            assert line.endswith(chunk.rstrip()), (line, chunk)
        assert b"\x1b" in data and "[bold red]PWNED" in "".join(ascii_byte(b) for b in data)
        # Walk every node of the layers tree: each label is plain text without control characters.
        tree = app.query_one("#layers")
        labels = []
        stack = list(tree.root.children)
        while stack:
            node = stack.pop()
            labels.append(str(node.label))
            stack.extend(node.children)
        assert labels and not any(CONTROL.search(label) for label in labels)
        await pilot.press("question_mark")
        await pilot.pause()
        assert not CONTROL.search(screen_text(app))
