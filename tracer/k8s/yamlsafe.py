"""``yaml.safe_load_all`` semantics, faster, with alias-bomb accounting: documents built from libyaml's event stream.

PyYAML's safe loader spends most of its time resolving the type of every plain scalar with regular expressions and
walking generator-based constructors. A cluster dump repeats the same few thousand scalars ("TCP", "Running",
label values), so this module builds the documents straight from the parser's events with the *same* resolver
(memoised per distinct scalar) and the same scalar constructors (``SafeConstructor``), and counts the
alias-expanded size of each document as it goes, so an alias bomb is refused without ever being walked.

Anything outside the plain JSON-like subset — explicit tags other than the core ones, merge keys (``<<``),
complex keys, duplicate or undefined anchors — is handed to PyYAML's own safe loader (``fallback``), which gives
the canonical result or error. The result equals ``list(yaml.safe_load_all(text))`` (tests check it).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (AliasEvent, DocumentEndEvent, MappingEndEvent, MappingStartEvent, ScalarEvent,
                         SequenceEndEvent, SequenceStartEvent)
from yaml.nodes import ScalarNode

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _NULL, _BOOL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SIMPLE = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp",
           "tag:yaml.org,2002:binary", _NULL, _BOOL}


class Fallback(Exception):
    """The document uses YAML the fast path does not reproduce; PyYAML's loader must read it."""


class TooDeep(Exception):
    """A document nesting deeper than ``max_depth``."""


class AliasBomb(Exception):
    """A document whose aliases expand past the limits; ``args`` = (document number, expanded, distinct)."""


class _Scalars:
    """Resolve and construct plain scalars exactly as SafeLoader does, memoised per (value, implicit, tag)."""

    def __init__(self) -> None:
        self._resolver = yaml.resolver.Resolver()
        self._constructor = yaml.constructor.SafeConstructor()
        self._memo: dict[tuple, Any] = {}

    def value(self, ev: ScalarEvent) -> Any:
        key = (ev.value, ev.implicit, ev.tag)
        try:
            return self._memo[key]
        except KeyError:
            pass
        tag = ev.tag
        if tag is None or tag == "!":
            tag = self._resolver.resolve(ScalarNode, ev.value, ev.implicit)
        if tag == _STR:
            out = ev.value
        elif tag in _SIMPLE:
            out = self._constructor.construct_object(ScalarNode(tag, ev.value), deep=True)
        else:
            raise Fallback(tag)
        if len(self._memo) < 200_000:
            self._memo[key] = out
        return out


def load_all(text: str, *, max_expanded: int, ratio: int, max_depth: int = 1000) -> list[Any]:
    """The documents of ``text`` as ``yaml.safe_load_all`` builds them.

    Raises ``Fallback`` for constructs left to PyYAML, ``AliasBomb`` when a document's alias-expanded node count
    exceeds both ``max_expanded`` and ``ratio`` times its distinct nodes, ``TooDeep`` past ``max_depth`` levels,
    and yaml.YAMLError for bad YAML.
    """
    scalars = _Scalars()
    docs: list[Any] = []
    # Stack frames: [container, pending key (or _NO_KEY), expanded size, anchor]
    stack: list[list] = []
    anchors: dict[str, tuple[Any, int]] = {}
    root: Any = None
    distinct = expanded = 0
    no_key = _NO_KEY

    def add(obj: Any, size: int) -> None:
        nonlocal root
        if not stack:
            root = obj
            return
        frame = stack[-1]
        frame[2] += size
        container = frame[0]
        if container.__class__ is list:
            container.append(obj)
        elif frame[1] is no_key:
            if obj.__class__ in (list, dict):
                raise Fallback("complex key")
            frame[1] = obj
        else:
            container[frame[1]] = obj
            frame[1] = no_key

    for ev in yaml.parse(text, Loader=_LOADER):
        cls = ev.__class__
        if cls is ScalarEvent:
            obj = scalars.value(ev)
            if ev.anchor is not None:
                if ev.anchor in anchors:
                    raise Fallback("duplicate anchor")
                anchors[ev.anchor] = (obj, 1)
            distinct += 1
            expanded += 1
            add(obj, 1)
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if ev.tag not in (None, "!", _MAP if cls is MappingStartEvent else _SEQ):
                raise Fallback(ev.tag)
            obj = {} if cls is MappingStartEvent else []
            if ev.anchor is not None:
                if ev.anchor in anchors:
                    raise Fallback("duplicate anchor")
                anchors[ev.anchor] = (obj, 1)     # size known at its end; a cyclic alias counts once
            distinct += 1
            stack.append([obj, no_key, 1, ev.anchor])
            if len(stack) > max_depth:
                raise TooDeep(max_depth)
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            obj, _, size, anchor = stack.pop()
            if anchor is not None:
                anchors[anchor] = (obj, size)
            expanded += 1
            add(obj, size)
        elif cls is AliasEvent:
            found = anchors.get(ev.anchor)
            if found is None:
                raise Fallback("undefined alias")
            obj, size = found
            expanded += size
            if expanded > max_expanded and expanded > ratio * max(distinct, 1):
                raise AliasBomb(len(docs) + 1, expanded, distinct)
            add(obj, size)
        elif cls is DocumentEndEvent:
            docs.append(root)
            root, anchors, distinct, expanded = None, {}, 0, 0
    return docs


class _NoKey:
    __slots__ = ()


_NO_KEY = _NoKey()
