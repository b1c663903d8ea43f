"""Layout keys: Tab cycles panes, z zooms the focused pane, 1–4 hide panes, narrow terminals show one pane,
and ``?`` lists every binding (with the user's keymap applied)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from tracer.ui.app import TracerApp, create_app
from tracer.ui.help_screen import HelpScreen
from tracer.ui.packet_list import PacketList
from ui_scenario import run_async, settle, write_scenario

pytest.importorskip("tracer.capture.index", reason="the capture index is not written yet")


@pytest.fixture()
def scenario(tmp_path):
    return write_scenario(tmp_path)


@run_async
async def test_tab_cycles_through_the_panes(scenario) -> None:
    """Tab moves focus list → layers → bytes → hop path → verdict → list; Shift+Tab goes back."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        order = []
        for _ in range(5):
            await pilot.press("tab")
            focused = app.focused
            pane = next(a.id for a in [focused, *focused.ancestors] if a.id in
                        ("packets", "layers", "hex", "hops", "verdict"))
            order.append(pane)
        assert order == ["layers", "hex", "hops", "verdict", "packets"]
        await pilot.press("shift+tab")
        assert app.focused in app.query_one("#verdict").walk_children() or app.focused.id == "verdict"


@run_async
async def test_narrow_terminal_shows_one_detail_pane(scenario) -> None:
    """At 80 columns only the current detail pane is displayed; Tab brings the next one in."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        shown = [p for p in ("layers", "hex", "hops", "verdict") if app.query_one(f"#{p}").region.area]
        assert shown == ["hops"]
        await pilot.press("tab")
        await pilot.pause()
        shown = [p for p in ("layers", "hex", "hops", "verdict") if app.query_one(f"#{p}").region.area]
        assert shown == ["layers"]


@run_async
async def test_zoom_and_hide(scenario) -> None:
    """z maximises the focused pane and z restores it; 2 hides the bytes pane and 2 shows it again."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        packets = app.query_one(PacketList)
        height = packets.region.height
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is packets and packets.region.height > height
        await pilot.press("z")
        await pilot.pause()
        assert app.screen.maximized is None
        await pilot.press("2")
        await pilot.pause()
        assert app.query_one("#hex").region.area == 0
        await pilot.press("2")
        await pilot.pause()
        assert app.query_one("#hex").region.area > 0


@run_async
async def test_help_lists_every_binding(scenario) -> None:
    """Every binding id of the app and its panes is in the help table, with remapped keys shown."""
    app = create_app([str(scenario[0])], keymap={"app.mark": "M"})
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one(DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        ids = {row[3] for row in rows}
        expected = {b.id for b in TracerApp.BINDINGS} | {b.id for b in PacketList.BINDINGS}
        assert expected <= ids
        assert ["global", "M"] == [r[:2] for r in rows if r[3] == "app.mark"][0]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@run_async
async def test_mouse_click_selects_a_row(scenario) -> None:
    """Clicking a row of the list selects that packet (the header line is row 0 of the widget)."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await pilot.click(PacketList, offset=(10, 4))
        await pilot.pause()
        assert app.query_one(PacketList).selected_row == 3


def test_unknown_cni_mode_is_one_line_error(scenario, capsys) -> None:
    """``tracer open --cni bogus`` fails before the TUI starts, with one line naming the option."""
    from tracer.cli import main

    assert main(["open", "--cni", "bogus", str(scenario[0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--cni bogus" in err


@run_async
async def test_resize_under_a_modal_screen_adapts_the_main_view(scenario) -> None:
    """Shrinking the terminal while help is open still switches the main view to its narrow layout."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.has_class("-narrow")
        shown = [p for p in ("layers", "hex", "hops", "verdict") if app.query_one(f"#{p}").region.area]
        assert shown == ["hops"]


@pytest.mark.parametrize(("key", "mode", "typed"), [("slash", "filter", "udp"), ("colon", "goto", "12")])
@run_async
async def test_tab_stays_in_an_open_prompt(scenario, key, mode, typed) -> None:
    """While the filter (/) or go-to (:) prompt is open, Tab and Shift+Tab neither cycle the panes nor take
    focus out of the prompt: what was typed stays, and Enter still submits it."""
    app = create_app([str(scenario[0])])
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(app, pilot)
        prompt_input = app.query_one("#prompt-input")
        await pilot.press(key, *typed)
        assert app.focused is prompt_input and app.query_one("#prompt").mode == mode
        current = app._current_detail  # noqa: SLF001
        await pilot.press("tab", "tab", "shift+tab")
        await pilot.pause()
        assert app.focused is prompt_input, app.focused
        assert app.query_one("#prompt").display and prompt_input.value == typed
        assert app._current_detail == current  # noqa: SLF001 - no pane was cycled in
        await pilot.press("enter")
        await settle(app, pilot)
        assert not app.query_one("#prompt").display
        if mode == "filter":
            assert app.session.filter_expr == "udp"
        else:
            assert app.query_one(PacketList).selected_row == 11
        await pilot.press("tab")  # prompt closed: Tab cycles the panes again
        assert app.focused is not prompt_input and app.query_one("#layers") in [app.focused, *app.focused.ancestors]
