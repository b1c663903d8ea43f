"""Reading Kubernetes objects out of the files an engineer copies off a cluster.

``read_objects(paths)`` yields ``RawObject``s from:
- ``kubectl get … -o yaml`` / ``-o json`` output: a ``v1 List`` (``kind: List`` or any ``*List``) with ``items``;
- multi-document YAML streams (``---``) and single objects, as manifests are written by hand;
- directories: every ``.yaml``/``.yml``/``.json`` file in them, sorted, recursively.

Only ``yaml.safe_load`` semantics are used (the libyaml ``CSafeLoader`` when present: same rules, C speed).
Hostile input is refused with a ``ClusterError`` naming the file: files over ``MAX_FILE_BYTES``, and alias
bombs ("billion laughs"), detected as a document whose alias-expanded size exceeds both
``MAX_EXPANDED_NODES`` and ``ALIAS_EXPANSION_RATIO`` times its number of distinct nodes.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
from collections.abc import Iterator
from itertools import accumulate
from dataclasses import dataclass
from typing import Any

import yaml

from tracer.errors import ClusterError
from tracer.k8s import yamlsafe

MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
ALIAS_EXPANSION_RATIO = 10
SUFFIXES = (".yaml", ".yml", ".json")

C_LOADER_MAX_DEPTH = 2000
MAX_DEPTH = 200   # Kubernetes objects nest a few dozen levels; deeper input is refused before anything walks it

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_INDENT = re.compile(r"^[ \t]*(?:-[ \t]+)*", re.MULTILINE)
# An anchor (&name) can only appear after a separator; without one there can be no alias expansion to check.
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s,\[\]{}]", re.MULTILINE)


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 60, 60, 2, 4, 4


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if c != 0x0A}
# Bidi marks, embeddings, overrides, isolates and the BOM reorder what the reader sees ("Trojan Source",
# CVE-2021-42574): shown as \uNNNN like tracer.errors.one_line does.
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF)})


def printable(text: str) -> str:
    """Text from a dump made safe for a terminal: control characters (but newlines) shown as \\xNN."""
    return text.translate(_CONTROL)


def show(value: Any) -> str:
    """A value from a dump for an error message: repr'd (control characters escaped), short, depth-limited."""
    return _REPR.repr(value)


@dataclass(frozen=True)
class RawObject:
    """One Kubernetes object as parsed, with where it came from (for error messages)."""

    file: str
    doc: int          # 0-based document number in the file
    item: int | None  # index inside a List, or None
    body: dict

    @property
    def kind(self) -> str:
        kind = self.body.get("kind")
        return kind if isinstance(kind, str) else "?"

    @property
    def metadata(self) -> dict:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        name = self.metadata.get("name")
        return name if isinstance(name, str) else "?"

    @property
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return ns if isinstance(ns, str) else None

    def where(self) -> str:
        """``file: Kind ns/name`` (with the document or List item when the name is missing)."""
        ident = f"{self.namespace}/{self.name}" if self.namespace else self.name
        pos = f" (document {self.doc + 1}" + (f", item {self.item}" if self.item is not None else "") + ")"
        # Names are not validated yet when an error names the object: escape what a hostile dump could put there.
        return printable(f"{self.file}: {self.kind[:80]} {ident[:160]}" + (pos if self.name == "?" else ""))

    def error(self, field: str, problem: str) -> ClusterError:
        return ClusterError(f"{self.where()}: {field}: {problem}")


def _files(paths: list[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, n) for n in names if n.lower().endswith(SUFFIXES)]
            if not found:
                raise ClusterError(f"{path}: no .yaml, .yml or .json files in this directory")
            out += sorted(found)
        elif os.path.exists(path):
            out.append(path)
        else:
            raise ClusterError(f"{path}: no such file or directory")
    return out


def _expanded_size(root: Any) -> tuple[int, int]:
    """(alias-expanded node count, distinct node count) of a parsed document, memoised by identity."""
    memo: dict[int, int] = {}
    # Iterative post-order walk: a deep document must not hit Python's recursion limit.
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        obj, done = stack.pop()
        if not isinstance(obj, (dict, list)) or (not done and id(obj) in memo):
            continue
        children = list(obj.keys()) + list(obj.values()) if isinstance(obj, dict) else obj
        if not done:
            memo[id(obj)] = -1  # in progress: a cycle (recursive alias) counts once
            stack.append((obj, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list)) and id(c) not in memo)
            continue
        size = 1
        for c in children:
            if isinstance(c, (dict, list)):
                size += max(memo.get(id(c), 1), 1)
            else:
                size += 1
            if size > 1 << 62:
                break
        memo[id(obj)] = size
    return max(memo.get(id(root), 1), 1), len(memo)


def nesting_bound(text: str) -> int:
    """An upper bound on a YAML document's nesting depth, computed without parsing.

    Flow collections nest by brackets; block collections need one more column of indentation per level, or a
    compact ``- - -`` sequence on one line. Brackets inside quoted strings only make the bound looser.
    """
    brackets = _NOT_BRACKETS.sub("", text)
    flow = max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0) if brackets else 0
    block = max((len(m.group(0)) for m in _INDENT.finditer(text)), default=0)
    return flow + block


# Below this many characters a document cannot nest deep enough to overflow libyaml's C stack (every level
# costs at least one character; the crash needs over 20,000 levels with an 8 MiB stack).
C_LOADER_SHORT_TEXT = 8192
_OPEN_EVENTS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE_EVENTS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def event_depth_within(text: str, limit: int) -> bool:
    """Whether ``text`` nests at most ``limit`` levels, from libyaml's event stream (its parser is iterative).

    ``nesting_bound`` is a guess that quoted or commented closing brackets and ``? `` keys can fool; this is
    exact, and stops at the first event past the limit. YAML errors propagate as from ``load_all``.
    """
    if len(text) < C_LOADER_SHORT_TEXT:
        return True
    parser = _LOADER(text)
    depth = 0
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, _OPEN_EVENTS):
                depth += 1
                if depth > limit:
                    return False
            elif isinstance(event, _CLOSE_EVENTS):
                depth -= 1
    finally:
        parser.dispose()
    return True


def _parse(path: str, text: str) -> list[Any]:
    stripped = text.lstrip()
    if path.lower().endswith(".json") or stripped[:1] in ("{", "["):
        try:
            return [json.loads(text)]
        except RecursionError:
            raise ClusterError(f"{path}: nested too deeply to be a Kubernetes object") from None
        except json.JSONDecodeError as exc:
            if path.lower().endswith(".json"):
                raise ClusterError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
                    from None
            # flow-style YAML that is not JSON: fall through to YAML
    # libyaml's composer recurses in C once per nesting level and crashes the process on a deep enough document;
    # such documents go to the pure-Python SafeLoader, whose recursion ends in a RecursionError instead.
    try:
        try:
            # The fast path: safe_load semantics built from libyaml's events, iteratively (no C recursion).
            return yamlsafe.load_all(text, max_expanded=MAX_EXPANDED_NODES, ratio=ALIAS_EXPANSION_RATIO,
                                     max_depth=MAX_DEPTH)
        except yamlsafe.Fallback:
            pass
        deep = nesting_bound(text) > C_LOADER_MAX_DEPTH or not event_depth_within(text, C_LOADER_MAX_DEPTH)
        loader = yaml.SafeLoader if deep else _LOADER
        docs = list(yaml.load_all(text, Loader=loader))  # noqa: S506 - CSafeLoader/SafeLoader: safe_load rules
    except yamlsafe.AliasBomb as exc:
        n, expanded, distinct = exc.args
        raise ClusterError(f"{path}: document {n}: YAML aliases expand to over {MAX_EXPANDED_NODES:,} nodes from "
                           f"{distinct:,} (an alias bomb?); refusing to read it") from None
    except yamlsafe.TooDeep:
        raise ClusterError(f"{path}: YAML nested deeper than {MAX_DEPTH} levels; no Kubernetes object does") \
            from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ClusterError(f"{path}: not valid YAML: {what}{at}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else "?"
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise ClusterError(f"{path}: not valid YAML: {exc.reason} (character 0x{char:02x} on line {line})") from None
    except yaml.YAMLError as exc:
        raise ClusterError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ClusterError(f"{path}: YAML nested too deeply") from None
    if _ANCHOR.search(text):
        for n, doc in enumerate(docs):
            expanded, distinct = _expanded_size(doc)
            if expanded > MAX_EXPANDED_NODES and expanded > ALIAS_EXPANSION_RATIO * distinct:
                raise ClusterError(f"{path}: document {n + 1}: YAML aliases expand to over {MAX_EXPANDED_NODES:,} "
                                   f"nodes from {distinct:,} (an alias bomb?); refusing to read it")
    return docs


def read_yaml_file(path: str) -> list[Any]:
    """The parsed documents of a YAML/JSON file, with the size and alias-bomb limits applied."""
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise ClusterError(f"{path}: {size:,} bytes is more than the {MAX_FILE_BYTES // (1024 * 1024)} MiB "
                               "a cluster dump may have; split it or filter it (kubectl get -n NS)")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ClusterError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClusterError(f"{path}: not YAML or JSON text (invalid UTF-8 at byte {exc.start})") from None
    if "\x00" in text:
        raise ClusterError(f"{path}: not YAML or JSON text (binary data)")
    return _parse(path, text)


def read_file(path: str) -> Iterator[RawObject]:
    """The objects of one file, Lists flattened; empty documents skipped."""
    for n, doc in enumerate(read_yaml_file(path)):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ClusterError(f"{path}: document {n + 1}: expected a Kubernetes object (a mapping with kind), "
                               f"got a {type(doc).__name__}")
        kind = doc.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise ClusterError(f"{path}: document {n + 1}: {kind}.items: must be a list")
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ClusterError(f"{path}: document {n + 1}: items[{i}]: expected an object, "
                                       f"got a {type(item).__name__}")
                yield RawObject(path, n, i, item)
        else:
            yield RawObject(path, n, None, doc)


def read_objects(paths: list[str]) -> Iterator[RawObject]:
    """Every object in ``paths`` (files or directories), in order."""
    if not paths:
        raise ClusterError("no cluster state given (--cluster PATH)")
    for path in _files(paths):
        yield from read_file(path)
