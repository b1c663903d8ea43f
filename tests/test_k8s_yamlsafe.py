"""The fast event-built loader (tracer.k8s.yamlsafe) gives exactly what ``yaml.safe_load_all`` gives, or hands the
document to PyYAML; bombs and deep documents are refused without being walked."""

from __future__ import annotations

import datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracer.k8s import yamlsafe

EDGE_CASES = [
    "a: 1\nb: 0x1F\nc: 0o17\nd: 017\ne: 1_000\nf: -3\ng: +5\n",
    "a: 1.5\nb: .inf\nc: -.Inf\nd: 1e3\ne: 6.8523015e+5\nf: 1_0.5\n",
    "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: 'true'\ng: y\n",
    "a: ~\nb: null\nc:\nd: 'null'\ne: Null\n",
    "a: 2001-12-14t21:59:43.10-05:00\nb: 2002-12-14\nc: '2002-12-14'\n",
    "a: !!str 123\nb: !!int '7'\nc: !!float 3\nd: !!bool 'yes'\n",
    "a: &x {k: v}\nb: *x\nc: [*x, *x]\n",
    "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "a: !!set {x, y}\nb: !!omap [{x: 1}, {y: 2}]\n",
    "? [a, b]\n: c\n",
    "a: 1\n---\nb: 2\n---\n...\n",
    "",
    "---\n",
    "- - - x\n  - y\n- z\n",
    "a: \"tab\\there\"\nb: 'it''s'\nc: |\n  line1\n  line2\nd: >\n  folded\n  text\n",
    "a: !!binary aGVsbG8=\n",
    "a: 1\na: 2\n",
    "'<<': literal\nx: '='\n",
    "a: :colon\nb: -dash\nc: 10.244.1.0/24\nd: 1:20\ne: 0b101\n",
    "a: &r [1, *r]\n",
]


def _same(text: str) -> None:
    try:
        want = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        with pytest.raises((yaml.YAMLError, yamlsafe.Fallback)):
            yamlsafe.load_all(text, max_expanded=10**6, ratio=10)
        return
    try:
        got = yamlsafe.load_all(text, max_expanded=10**6, ratio=10)
    except yamlsafe.Fallback:
        return  # left to PyYAML: the caller then gets exactly ``want``
    assert repr(got) == repr(want)


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_match_safe_load(text: str) -> None:
    """Core-schema scalars, tags, anchors, merge keys, sets, complex keys, multi-doc: as safe_load, or fallback."""
    _same(text)


def test_merge_keys_and_tags_fall_back() -> None:
    """Merge keys, !!set and complex keys are not reproduced: they go to PyYAML."""
    for text in (EDGE_CASES[7], EDGE_CASES[8], EDGE_CASES[9]):
        with pytest.raises(yamlsafe.Fallback):
            yamlsafe.load_all(text, max_expanded=10**6, ratio=10)


def test_unsafe_tags_are_not_constructed() -> None:
    """A python/object tag is never constructed here; PyYAML's safe loader then rejects it."""
    with pytest.raises(yamlsafe.Fallback):
        yamlsafe.load_all("a: !!python/object/apply:os.system ['true']\n", max_expanded=10**6, ratio=10)


def test_values_are_typed_like_safe_load() -> None:
    docs = yamlsafe.load_all(EDGE_CASES[4], max_expanded=10**6, ratio=10)
    assert isinstance(docs[0]["a"], datetime.datetime) and docs[0]["b"] == datetime.date(2002, 12, 14)


def test_bomb_and_depth() -> None:
    """An alias bomb is refused as it is read; so is nesting past the limit."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [" + ", ".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdefg", "bcdefgh"))
    with pytest.raises(yamlsafe.AliasBomb):
        yamlsafe.load_all(bomb, max_expanded=10**6, ratio=10)
    with pytest.raises(yamlsafe.TooDeep):
        yamlsafe.load_all("a: " + "[" * 300 + "]" * 300, max_expanded=10**6, ratio=10, max_depth=200)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=12),
                    st.floats(allow_nan=False), st.sampled_from(["yes", "no", "~", "0x10", "1e3", "2001-01-01",
                                                                 "<<", "=", "on", "010", "1_0", ".5", "TCP"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.sampled_from([None, True, False]))
def test_random_documents_match_safe_load(value, flow: bool | None) -> None:
    """Random documents dumped by PyYAML (block and flow style) load to what safe_load gives."""
    _same(yaml.safe_dump(value, default_flow_style=flow))
    _same(yaml.safe_dump_all([value, {"k": value}], default_flow_style=flow))
