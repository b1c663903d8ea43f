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
        # The DNS query name, with its markup and escape, in the layers pane of the second packet.
        await pilot.press("j")
        await settle(app, pilot)
        tree.root.expand_all()
        await pilot.pause()
        labels = []
        stack = list(tree.root.children)
        while stack:
            node = stack.pop()
            labels.append(str(node.label))
            stack.extend(node.children)
        dns_text = " ".join(labels)
        assert "[bold red]x" in dns_text and "[link=http://e]y" in dns_text, dns_text
        assert not CONTROL.search(dns_text) and not CONTROL.search(screen_text(app))
        await pilot.press("question_mark")
        await pilot.pause()
        assert not CONTROL.search(screen_text(app))


@run_async
async def test_hostile_file_name_in_a_warning_stays_literal(tmp_path) -> None:
    """A damaged file whose name carries markup is named literally in the warning toast and status line."""
    from ui_scenario import write_scenario

    capture, _ = write_scenario(tmp_path)
    hostile = tmp_path / "[bold red]cut[link=e]x.pcapng"
    hostile.write_bytes(capture.read_bytes()[:-30])
    app = create_app([str(hostile)])
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        assert app.session.index.warnings
        text = screen_text(app)
        assert "[bold red]cut[link=e]x.pcapng" in text
        assert not CONTROL.search(text)
        toasts = list(app._notifications)  # noqa: SLF001
        assert any("[bold red]cut[link=e]x.pcapng" in n.message for n in toasts)
        assert all(n.markup is False for n in toasts)  # shown as text, never parsed
