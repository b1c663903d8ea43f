"""Tab completion for the display-filter prompt: which words fit where the cursor is (no Textual here).

``filter_vocabulary(cluster)`` gathers what can be completed: the capture core's built-in field names
(``tracer.capture.filter.field_names``), the fields the hop analysis adds (the keys of
``tracer.hops.fields.make_resolvers``), the values of the fields that have a fixed set (``hop.role``: the hop
engine's ``ROLES``; ``verdict``: ``VERDICTS``) and, when a cluster is loaded, its namespaces, pods (``ns/name``,
as ``k8s.pod`` compares them) and nodes.

``complete(text, cursor, vocabulary)`` finds the word that ends at the cursor and returns a ``Completion``: after
``FIELD ==`` (or ``!=``, ``eq``, ``contains``…, or inside ``FIELD in {…}``) the candidates are that field's values,
elsewhere field names (``outer.``/``inner.`` pin a built-in field). ``Completion.apply`` gives the new text and
cursor: one candidate replaces the word, several extend it by their common prefix (the caller lists them).
"""

from __future__ import annotations

import os.path
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracer.capture.filter import field_names
from tracer.hops.fields import VERDICTS, FieldContext, make_resolvers
from tracer.hops.roles import ROLES

# The filter tokenizer's word characters (tracer.capture.filter._TOKEN ``word``): what one field name or bare
# value can hold (``k8s.pod``, ``python/tomcat``, ``10.244.1.5``, ``fe80::1``).
_WORD_CHARS = re.compile(r"[A-Za-z0-9_.:/\-]*$")
_BARE = re.compile(r"[A-Za-z0-9_.:/\-]+")
# ``FIELD OP`` just before the value being typed (an opening quote is allowed). Orderings (< > …) are left out:
# the fields with named values are text.
_VALUE_CONTEXT = re.compile(
    r"(?P<field>[A-Za-z_][A-Za-z0-9_.\-]*)\s*"
    r"(?P<op>===|!==|==|!=|=|~|\b(?:eq|ne|any_eq|all_ne|all_eq|any_ne|contains|matches)\b)\s*$")
# ``FIELD in {V1 V2 `` (or ``not in``): every member of the set is a value of FIELD.
_SET_CONTEXT = re.compile(r"(?P<field>[A-Za-z_][A-Za-z0-9_.\-]*)\s+(?:not\s+)?in\s*\{[^{}]*$")
PINS = ("outer.", "inner.")


@dataclass(frozen=True)
class Vocabulary:
    """What the filter prompt can complete."""

    fields: tuple[str, ...]
    """Every field name, sorted."""
    builtin: tuple[str, ...] = ()
    """The capture core's own fields: the ones ``outer.``/``inner.`` can pin."""
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """field → its known values (fixed sets, or the loaded cluster's names)."""


@dataclass(frozen=True)
class Completion:
    """The candidates for the word ``text[start:cursor]``; ``field`` is set when they are values of it."""

    text: str
    start: int
    cursor: int
    end: int
    """End of the word under the cursor (a unique candidate replaces the whole word, cursor to ``end`` too)."""
    candidates: tuple[str, ...]
    field: str | None = None
    quote: str = ""
    """The quote the value was opened with (a unique candidate closes it)."""

    @property
    def word(self) -> str:
        return self.text[self.start:self.cursor]

    @property
    def common(self) -> str:
        """What every candidate starts with, when it extends the typed word; else the word itself."""
        prefix = os.path.commonprefix(list(self.candidates)) if self.candidates else ""
        return prefix if prefix.casefold().startswith(self.word.casefold()) and len(prefix) >= len(self.word) \
            else self.word

    def apply(self) -> tuple[str, int]:
        """(new text, new cursor). One candidate replaces the word under the cursor (closing an opened quote);
        several insert their common prefix at the cursor (text after the cursor is kept: the word may go on
        differently); none changes nothing."""
        if len(self.candidates) == 1:
            new = self.candidates[0]
            rest = self.text[self.end:]
            if self.quote and not rest.startswith(self.quote):
                new += self.quote
            elif self.quote:
                rest = rest[1:]
                new += self.quote
            return self.text[:self.start] + new + rest, self.start + len(new)
        new = self.common
        return self.text[:self.start] + new + self.text[self.cursor:], self.start + len(new)


def filter_vocabulary(cluster: Any = None) -> Vocabulary:
    """Field names and known values for the filter prompt; ``cluster`` is a ``tracer.k8s`` Cluster or None.

    Field names come from the capture core and from the hop fields' resolver table (made over an empty
    context, which reads nothing), so a field added there is completed without a second list here."""
    builtin = tuple(field_names())
    extra = tuple(make_resolvers(FieldContext()))
    values: dict[str, tuple[str, ...]] = {"hop.role": tuple(ROLES), "verdict": tuple(VERDICTS)}
    if cluster is not None:
        values["k8s.ns"] = _names(getattr(cluster, "namespaces", None) or ())
        values["k8s.pod"] = _names(f"{p.namespace}/{p.name}" for p in getattr(cluster, "pods", ()) or ())
        values["k8s.node"] = _names(n.name for n in getattr(cluster, "nodes", ()) or ())
    return Vocabulary(fields=tuple(sorted({*builtin, *extra})), builtin=builtin, values=values)


def _names(names: Any) -> tuple[str, ...]:
    """Sorted distinct names a filter can hold as a bare word. A cluster dump is input like any other: a name
    with a space, a quote or a control character would be inserted into the prompt as-is, so it is left out."""
    return tuple(sorted({n for n in names if isinstance(n, str) and n and _BARE.fullmatch(n)}))


def _value_matches(value: str, word: str) -> bool:
    """A value fits the typed word by its start, or (``ns/name``) by the name's start: ``tom`` finds
    ``python/tomcat``, since people remember the pod rather than its namespace."""
    v, w = value.casefold(), word.casefold()
    return v.startswith(w) or ("/" in v and v.split("/", 1)[1].startswith(w))


def complete(text: str, cursor: int, vocabulary: Vocabulary) -> Completion:
    """The candidates for the word that ends at ``cursor`` in the filter ``text`` (see the module docstring).

    Matching ignores case; candidates keep their own spelling, in the vocabulary's order."""
    cursor = max(0, min(int(cursor), len(text)))
    before = text[:cursor]
    start = cursor - len(_WORD_CHARS.search(before).group())  # type: ignore[union-attr]  # (always matches)
    after = re.match(r"[A-Za-z0-9_.:/\-]*", text[cursor:])
    end = cursor + len(after.group()) if after else cursor
    word = text[start:cursor]
    quote = ""
    head = text[:start]
    if head[-1:] in ("'", '"'):
        quote, head = head[-1], head[:-1]
    context = _VALUE_CONTEXT.search(head) or _SET_CONTEXT.search(head)
    if context is not None:
        name = context.group("field")
        for pin in PINS:
            if name.startswith(pin):
                name = name[len(pin):]
        known = vocabulary.values.get(name, ())
        found = tuple(v for v in known if _value_matches(v, word))
        return Completion(text, start, cursor, end, found, field=name, quote=quote)
    if quote:  # a quoted word that is not a value: nothing to complete
        return Completion(text, start, cursor, end, ())
    pin = next((p for p in PINS if word.casefold().startswith(p)), "")
    if pin:
        rest = word[len(pin):].casefold()
        found = tuple(pin + f for f in vocabulary.builtin if f.casefold().startswith(rest))
    else:
        found = tuple(f for f in vocabulary.fields if f.casefold().startswith(word.casefold()))
    return Completion(text, start, cursor, end, found)


def suggestion(text: str, vocabulary: Vocabulary) -> str | None:
    """The whole text with its last word completed as far as it is certain (the unique candidate, else the
    candidates' common prefix), for an input's ghost text; None when that adds nothing. An empty last word
    suggests nothing (a ghost after every space would be noise)."""
    done = complete(text, len(text), vocabulary)
    if not done.word or not done.candidates:
        return None
    new, _ = done.apply()
    if len(new) <= len(text) or not new.startswith(text):
        return None
    return new
