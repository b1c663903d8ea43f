"""The TUI's loading path on the shared corpus's deliberately corrupt captures: no traceback, ever; either the
packets before the damage are listed (with a warning) or the app exits with the core's one-line error."""

from __future__ import annotations

import pytest

from tracer.ui.app import create_app
from ui_scenario import run_async, settle

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")


@run_async
async def test_corrupt_captures_load_or_exit_cleanly(public_captures) -> None:
    corrupt = sorted(p for p in public_captures.iterdir() if p.name.startswith("corrupt-"))
    assert corrupt, "the corpus has no corrupt-* files"
    outcomes = {}
    for path in corrupt:
        app = create_app([str(path)], analyse=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot, timeout=20)
            listed = app.session.total
            hops_text = app.query_one("#hops").text if app.is_running else ""
        assert app._exception is None, (path.name, app._exception)  # noqa: SLF001
        if app.fatal_error:
            assert app.return_code == 2 and "\n" not in app.fatal_error, path.name
            outcomes[path.name] = "error"
        elif listed == 0:  # a well-formed file that simply holds no packet
            assert "no packets in this capture" in hops_text, path.name
            outcomes[path.name] = "empty"
        else:
            outcomes[path.name] = listed
    # Both outcomes occur in the corpus: files with nothing readable, and files damaged after some packets.
    assert "error" in outcomes.values() and any(isinstance(v, int) for v in outcomes.values()), outcomes
