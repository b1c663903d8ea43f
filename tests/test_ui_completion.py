"""Tab completion in the display-filter prompt: the pure rules (``tracer.ui.completion``) and the prompt's keys.

The field names and values expected here come from where the filter takes them (the capture core's field table,
the hop fields' resolver table, ``ROLES``, ``VERDICTS``, the scenario's cluster.yaml), never from a list in this
file, except where a test spells out the example an engineer would type.
"""

from __future__ import annotations

import pytest

from tracer.capture.filter import compile_filter, field_names
from tracer.hops.fields import VERDICTS, FieldContext, make_resolvers
from tracer.hops.roles import ROLES
from tracer.ui.app import create_app
from tracer.ui.completion import Vocabulary, complete, filter_vocabulary, suggestion
from ui_scenario import NODES, PODS, inner_ip, run_async, scenario_packets, screen_text, settle, write_scenario

SIZE = (120, 36)
VOCAB = filter_vocabulary()


def at_end(text: str) -> tuple[str, ...]:
    return complete(text, len(text), VOCAB).candidates


# ----- the vocabulary --------------------------------------------------------------------------------------------
def test_vocabulary_is_the_filters_own_fields() -> None:
    """Every field the filter compiles is offered, and nothing else: the core's and the hop fields' names."""
    hop_fields = set(make_resolvers(FieldContext()))
    assert set(VOCAB.fields) == set(field_names()) | hop_fields
    assert {"k8s.ns", "k8s.pod", "k8s.node", "hop.role", "verdict"} <= hop_fields
    assert list(VOCAB.fields) == sorted(VOCAB.fields)
    resolvers = make_resolvers(FieldContext())
    for name in VOCAB.fields:  # each one is a field the filter knows (a presence test compiles or says why not)
        try:
            compile_filter(name, resolvers)
        except Exception as exc:  # noqa: BLE001 - only "unknown field" would mean a wrong candidate
            assert "unknown" not in str(exc).lower(), (name, exc)


def test_vocabulary_values_without_and_with_a_cluster(tmp_path) -> None:
    """hop.role and verdict always complete their fixed sets; k8s.ns/pod/node only with a loaded cluster."""
    assert VOCAB.values["hop.role"] == tuple(ROLES) and VOCAB.values["verdict"] == tuple(VERDICTS)
    assert "k8s.ns" not in VOCAB.values
    from tracer.k8s import load_cluster

    _, cluster_file = write_scenario(tmp_path)
    vocab = filter_vocabulary(load_cluster([str(cluster_file)]))
    assert set(vocab.values["k8s.ns"]) >= {ns for ns, *_ in PODS.values()}
    assert set(vocab.values["k8s.pod"]) == {f"{ns}/{name}" for name, (ns, *_) in PODS.items()}
    assert set(vocab.values["k8s.node"]) == set(NODES)


def test_cluster_names_a_filter_cannot_hold_are_left_out() -> None:
    """A name from a cluster dump with a control character, a space or a quote is never offered (it would be
    typed into the prompt raw); ordinary names are, sorted and once each."""
    from types import SimpleNamespace as NS

    pods = [NS(namespace="python", name="tomcat"), NS(namespace="python", name="tomcat"),
            NS(namespace="evil", name="x\x1b[31mred"), NS(namespace="evil", name='a"b'), NS(namespace="e", name="a b")]
    cluster = NS(namespaces={"python": 1, "ev\x07il": 1, "linux": 1}, pods=pods, nodes=[NS(name="node-1")])
    vocab = filter_vocabulary(cluster)
    assert vocab.values["k8s.ns"] == ("linux", "python")
    assert vocab.values["k8s.pod"] == ("python/tomcat",)
    assert vocab.values["k8s.node"] == ("node-1",)


# ----- which candidates where ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "want"), [
    ("hop.r", ("hop.role",)),
    ("HOP.R", ("hop.role",)),                               # case is ignored, the candidate keeps its own
    ("tcp.flags.sy", ("tcp.flags.syn",)),
    ("k8s.", ("k8s.node", "k8s.ns", "k8s.pod")),
    ("outer.ip.s", ("outer.ip.src",)),                      # a pinned built-in field
    ("tcp && ver", ("verdict",)),                           # after a logical operator: a field again
    ("!(hop.ro", ("hop.role",)),
    ("zzz", ()),
])
def test_field_names_where_a_field_goes(text, want) -> None:
    """Outside a value, the word at the cursor completes to the field names it starts."""
    assert at_end(text) == want


def test_every_udp_field_is_offered() -> None:
    """A prefix shared by several fields offers each of them, in the vocabulary's order."""
    assert at_end("udp.") == tuple(f for f in field_names() if f.startswith("udp."))


@pytest.mark.parametrize(("text", "field", "typed"), [
    ("hop.role == br", "hop.role", "br"),
    ("hop.role==v", "hop.role", "v"),
    ("hop.role != ", "hop.role", ""),
    ("verdict eq d", "verdict", "d"),
    ('verdict == "d', "verdict", "d"),
    ("verdict in {allow d", "verdict", "d"),
    ("verdict not in {a", "verdict", "a"),
    ("tcp && hop.role contains ve", "hop.role", "ve"),
])
def test_values_after_an_operator(text, field, typed) -> None:
    """After ``FIELD ==`` (and its kin, and inside ``in {…}``) the candidates are the field's known values."""
    done = complete(text, len(text), VOCAB)
    assert done.field == field
    assert done.candidates == tuple(v for v in VOCAB.values[field] if v.startswith(typed))
    assert done.candidates


def test_values_of_a_field_without_known_values_are_none() -> None:
    """``ip.src == 1`` has no value list: nothing is offered (not field names)."""
    assert at_end("ip.src == 1") == ()
    assert at_end("k8s.ns == py") == ()  # no cluster in this vocabulary


def test_pod_by_name_without_namespace() -> None:
    """``k8s.pod`` values are ``ns/name``; typing the pod's name finds it too."""
    vocab = Vocabulary(fields=("k8s.pod",), values={"k8s.pod": ("linux/nginx", "python/curl", "python/tomcat")})
    assert complete("k8s.pod == tom", 14, vocab).candidates == ("python/tomcat",)
    assert complete("k8s.pod == py", 13, vocab).candidates == ("python/curl", "python/tomcat")
    assert complete("k8s.pod == py", 13, vocab).apply() == ("k8s.pod == python/", 18)


# ----- applying a completion -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "cursor", "want"), [
    ("hop.r", 5, ("hop.role", 8)),                                       # one: taken
    ("hop.r && tcp", 5, ("hop.role && tcp", 8)),                         # text after the word stays
    ("hop.rXle", 5, ("hop.role", 8)),                                    # the word under the cursor is replaced
    ("frame.t", 7, ("frame.time_", 11)),                                 # several: their common prefix
    ("udp.p", 5, ("udp.port", 8)),
    ("udp", 3, ("udp", 3)),                                              # several, nothing shared beyond the word
    ('verdict == "de', 14, ('verdict == "deny"', 17)),                   # an opened quote is closed
    ('verdict == "de"', 14, ('verdict == "deny"', 17)),                  # ... or stepped over when already there
    ("zzz", 3, ("zzz", 3)),                                              # none: nothing changes
    ("", 0, ("", 0)),
])
def test_apply(text, cursor, want) -> None:
    """One candidate replaces the word; several extend it by their common prefix; none leaves the text."""
    assert complete(text, cursor, VOCAB).apply() == want


def test_every_completed_filter_compiles() -> None:
    """What a unique completion produces is a filter the core parses (fields and fixed values alike)."""
    resolvers = make_resolvers(FieldContext())
    for text in ("hop.role == br", "verdict == de", "tcp.flags.sy", 'verdict == "al'):
        new, _ = complete(text, len(text), VOCAB).apply()
        compile_filter(new, resolvers)  # parsing happens here; evaluation needs an index


@pytest.mark.parametrize(("text", "want"), [
    ("hop.r", "hop.role"),
    ("verdict == d", "verdict == deny"),
    ("frame.t", "frame.time_"),
    ("udp", None),           # nothing certain to add
    ("verdict == ", None),   # empty last word: no ghost after every space
    ("zzz", None),
])
def test_suggestion(text, want) -> None:
    """The grey suggestion is the text with its last word completed as far as it is certain."""
    assert suggestion(text, VOCAB) == want


# ----- the prompt ----------------------------------------------------------------------------------------------
@pytest.fixture()
def scenario(tmp_path):
    return write_scenario(tmp_path)


def cni0_rows() -> list[int]:
    """The scenario's packets captured on a bridge (cni0): what ``hop.role == bridge`` must keep."""
    return [i for i, (_, point, _) in enumerate(scenario_packets()) if point.endswith("/cni0")]


@run_async
async def test_tab_completes_a_field_and_a_value_then_filters(scenario) -> None:
    """``/``, ``hop.r``, Tab → ``hop.role``; `` == br``, Tab → ``bridge``; Enter filters the list to cni0."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        field = app.query_one("#prompt-input")
        await pilot.press("slash", *"hop.r", "tab")
        assert field.value == "hop.role" and field.cursor_position == len("hop.role")
        assert app.focused is field
        await pilot.press(*" == br", "tab")
        assert field.value == "hop.role == bridge"
        await pilot.press("enter")
        await settle(app, pilot)
        assert not app.query_one("#prompt").display
        assert app.session.filter_expr == "hop.role == bridge"
        assert list(app.session.view) == cni0_rows()


@run_async
async def test_tab_lists_several_candidates_and_cluster_names(scenario) -> None:
    """Several candidates: the common part is completed and all are listed under the input (not as an error);
    with a cluster loaded, ``k8s.pod ==`` completes its pods."""
    capture, cluster = scenario
    app = create_app([str(capture)], cluster=[str(cluster)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session.cluster is not None, app.session.missing
        prompt, field = app.query_one("#prompt"), app.query_one("#prompt-input")
        await pilot.press("slash", *"k8s.pod == py", "tab")
        pods = sorted(f"{ns}/{name}" for name, (ns, *_) in PODS.items() if ns == "python")
        assert field.value == "k8s.pod == python/"
        assert prompt.error == "" and all(p in prompt.hint for p in pods)
        await pilot.pause()
        assert all(p in screen_text(app) for p in pods)
        await pilot.press("t")  # the list was for "python/": typing clears it
        await pilot.pause()
        assert prompt.hint == ""
        await pilot.press("tab")
        assert field.value == "k8s.pod == python/tomcat"
        await pilot.press("enter")
        await settle(app, pilot)
        tomcat = PODS["tomcat"][1]
        want = [i for i, (_, _, frame) in enumerate(scenario_packets())
                if tomcat in (inner_ip(frame).src, inner_ip(frame).dst)]
        assert want and list(app.session.view) == want
        await pilot.press("slash", "ctrl+u", "t", "tab")  # many candidates: still one line, cut with "…"
        await pilot.pause()
        many = [f for f in VOCAB.fields if f.startswith("t")]
        assert field.value == "tcp" and len(many) > 10
        assert prompt.hint.startswith(f"{len(many)} fields: ") and "\n" not in prompt.hint
        assert prompt.hint.endswith("…") and len(prompt.hint) <= SIZE[0]


@run_async
async def test_suggestion_shows_and_right_arrow_takes_it(scenario) -> None:
    """While typing a filter the certain completion shows as Textual's suggestion; → at the end accepts it.
    The go-to prompt has none, and Tab there leaves the number as typed."""
    capture, _ = scenario
    app = create_app([str(capture)])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        field = app.query_one("#prompt-input")
        await pilot.press("slash", *"verdict == d")
        await pilot.pause()
        assert field._suggestion == "verdict == deny"  # noqa: SLF001 - what Input draws in grey
        await pilot.press("right")
        assert field.value == "verdict == deny"
        await pilot.press("escape", "colon", "1", "tab")
        await pilot.pause()
        assert field.value == "1" and field.suggester is None and app.focused is field


@run_async
async def test_help_lists_tab_completion_and_keymap_remaps_it(scenario) -> None:
    """``?`` lists Tab under the prompt with its id; a keymap can move completion to another key."""
    capture, _ = scenario
    app = create_app([str(capture)], keymap={"prompt.complete": "ctrl+t"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        rows = {binding_id: (pane, keys, text) for pane, binding_id, keys, text in app.binding_table()}
        assert rows["prompt.complete"][0] == "prompt" and "omplete" in rows["prompt.complete"][2]
        assert rows["prompt.stay"][0] == "prompt"
        assert rows["prompt.complete"][1] == "ctrl+t"
        field = app.query_one("#prompt-input")
        await pilot.press("slash", *"hop.r", "ctrl+t")
        assert field.value == "hop.role"
