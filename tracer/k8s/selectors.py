"""Compiled Kubernetes label selectors (metav1.LabelSelector): ``matchLabels`` AND ``matchExpressions``.

A ``Selector`` is built once from a manifest (``compile_selector``) and answers ``matches(labels)`` with a
per-selector cache keyed by the interned label set (``LabelSet``), because a cluster has many pods but few
distinct label sets: the policy engine asks the same question thousands of times.

Rules (k8s.io/apimachinery/pkg/labels, LabelSelectorAsSelector):
- an empty selector ``{}`` matches everything; the engine represents an absent selector as ``None``;
- ``In``: the key exists and its value is one of ``values`` (``values`` must be non-empty);
- ``NotIn``: the key is absent or its value is not one of ``values`` (``values`` must be non-empty);
- ``Exists`` / ``DoesNotExist``: the key is present / absent (``values`` must be empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracer.k8s.objects import show

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector that the API server would reject; ``field`` is the path below the selector."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class LabelSet:
    """An immutable label map with a stable hash, interned so equal label sets share one cache slot."""

    __slots__ = ("labels", "key", "_hash")

    _interned: dict[frozenset, LabelSet] = {}

    def __init__(self, labels: Mapping[str, str], key: frozenset) -> None:
        self.labels = dict(labels)
        self.key = key
        self._hash = hash(key)

    @classmethod
    def of(cls, labels: Mapping[str, str] | None) -> LabelSet:
        key = frozenset((labels or {}).items())
        found = cls._interned.get(key)
        if found is None:
            found = cls._interned[key] = cls(labels or {}, key)
        return found

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and other.key == self.key

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.labels.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.labels

    def describe(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())) or "no labels"


class Selector:
    """A compiled label selector; ``matches(labelset)`` is cached per distinct label set."""

    __slots__ = ("match_labels", "expressions", "_cache")

    def __init__(self, match_labels: tuple[tuple[str, str], ...],
                 expressions: tuple[tuple[str, str, frozenset[str]], ...]) -> None:
        self.match_labels = match_labels
        self.expressions = expressions
        self._cache: dict[LabelSet, bool] = {}

    @property
    def empty(self) -> bool:
        """True for ``{}``: selects everything."""
        return not self.match_labels and not self.expressions

    def matches(self, labels: LabelSet) -> bool:
        found = self._cache.get(labels)
        if found is None:
            found = self._cache[labels] = self._evaluate(labels.labels)
        return found

    def _evaluate(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for key, op, values in self.expressions:
            present = key in labels
            if op == "In":
                if not present or labels[key] not in values:
                    return False
            elif op == "NotIn":
                if present and labels[key] in values:
                    return False
            elif op == "Exists":
                if not present:
                    return False
            elif present:  # DoesNotExist
                return False
        return True

    def describe(self) -> str:
        """The selector in kubectl's label-selector syntax (``app=web,tier in (a,b),!debug``); ``{}`` for empty."""
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for key, op, values in self.expressions:
            listed = ",".join(sorted(values))
            parts.append({"In": f"{key} in ({listed})", "NotIn": f"{key} notin ({listed})",
                          "Exists": key, "DoesNotExist": f"!{key}"}[op])
        return ",".join(parts) if parts else "{}"


def _labels_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SelectorError(field, f"must be a mapping of label to value, not {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise SelectorError(f"{field}.{k}", f"label keys and values must be strings, got {show(v)}"
                                " (quote it in YAML)")
        out[k] = v
    return out


def compile_selector(spec: Any, field: str) -> Selector:
    """Compile a LabelSelector mapping; raise ``SelectorError`` naming the field for what the API rejects."""
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise SelectorError(field, f"must be a label selector mapping, not {type(spec).__name__}")
    for key in spec:
        if key not in ("matchLabels", "matchExpressions"):
            raise SelectorError(f"{field}.{key}", "unknown selector field (expected matchLabels or matchExpressions)")
    match_labels = tuple(sorted(_labels_map(spec.get("matchLabels"), f"{field}.matchLabels").items()))
    exprs_spec = spec.get("matchExpressions") or []
    if not isinstance(exprs_spec, list):
        raise SelectorError(f"{field}.matchExpressions", "must be a list")
    expressions = []
    for i, expr in enumerate(exprs_spec):
        where = f"{field}.matchExpressions[{i}]"
        if not isinstance(expr, Mapping):
            raise SelectorError(where, "must be a mapping with key, operator, values")
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values")
        if not isinstance(key, str) or not key:
            raise SelectorError(f"{where}.key", "missing or not a string")
        if op not in OPERATORS:
            raise SelectorError(f"{where}.operator", f"unknown operator {show(op)} (expected {', '.join(OPERATORS)})")
        if values is None:
            values = []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SelectorError(f"{where}.values", "must be a list of strings")
        if op in ("In", "NotIn") and not values:
            raise SelectorError(f"{where}.values", f"must be non-empty for {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise SelectorError(f"{where}.values", f"must be empty for {op}")
        expressions.append((key, op, frozenset(values)))
    return Selector(match_labels, tuple(expressions))
