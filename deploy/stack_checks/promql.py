"""The metric catalogue (deploy/metrics.txt) and a small PromQL reader, for the alert rules and the dashboards."""

from __future__ import annotations

import re

from .common import METRICS, Problems, rel


ALWAYS_LABELS = {"job", "instance"}
# Series Prometheus makes itself, usable in panels and rules next to the catalogue.
BUILTIN_METRICS = {"up": set()}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def read_catalogue() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, labels) from deploy/metrics.txt."""
    catalogue: dict[str, tuple[str, set[str]]] = {}
    for number, line in enumerate(METRICS.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or fields[1] not in {"counter", "gauge", "histogram"}:
            raise SystemExit(f"{rel(METRICS)} line {number}: expected `name type labels otel-name`, got {line!r}")
        name, kind, labels, _ = fields
        catalogue[name] = (kind, set() if labels == "-" else set(labels.split(",")))
    return catalogue


def resolve_metric(name: str, catalogue) -> tuple[str | None, set[str] | None]:
    """The catalogue entry a series name belongs to, and the labels it may carry (None: unknown)."""
    if name in BUILTIN_METRICS:
        return name, BUILTIN_METRICS[name] | ALWAYS_LABELS
    entry = catalogue.get(name)
    if entry and entry[0] != "histogram":
        return name, entry[1] | ALWAYS_LABELS
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in catalogue and catalogue[base][0] == "histogram":
            extra = {"le"} if suffix == "_bucket" else set()
            return base, catalogue[base][1] | ALWAYS_LABELS | extra
    return None, None


TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>(?:\d+(?:ms|[smhdwy]))+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
    """,
    re.X,
)
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregations may be followed by `by (...)` rather than `(`: never metric names.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = GROUPING | AGGREGATIONS | {"bool", "and", "or", "unless", "offset", "inf", "nan", "start", "end"}


def tokenize(expr: str):
    pos, tokens = 0, []
    while pos < len(expr):
        match = TOKEN.match(expr, pos)
        if not match:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = match.end()
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def read_promql(expr: str):
    """([(metric name or None, {label used in a matcher}), ...], {label used in a grouping})."""
    tokens = tokenize(expr)
    selectors, grouping = [], set()
    i = 0

    def matchers(start: int) -> tuple[set[str], int]:
        labels, j = set(), start + 1
        while j < len(tokens) and tokens[j][1] != "}":
            kind, text = tokens[j]
            if kind == "ident":
                labels.add(text)
                j += 3  # label, operator, value
            else:
                j += 1  # the comma
        return labels, j + 1

    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "ident" and text.lower() in GROUPING and following == "(":
            j = i + 2
            while j < len(tokens) and tokens[j][1] != ")":
                if tokens[j][0] == "ident":
                    grouping.add(tokens[j][1])
                j += 1
            i = j + 1
        elif kind == "ident" and text.lower() in KEYWORDS:
            i += 1
        elif kind == "ident" and following == "(":
            i += 1  # a function or an aggregation
        elif kind == "ident":
            labels = set()
            i += 1
            if following == "{":
                labels, i = matchers(i)
            selectors.append((text, labels))
        elif text == "{":
            labels, i = matchers(i)
            selectors.append((None, labels))
        else:
            i += 1
    return selectors, grouping


def check_promql(expr: str, where: str, catalogue, problems: Problems, used: set[str] | None = None) -> None:
    try:
        selectors, grouping = read_promql(expr)
    except ValueError as error:
        problems.add(where, f"unreadable PromQL: {error}")
        return
    if not selectors:
        problems.add(where, f"no metric in {expr!r}")
    allowed_grouping = set(ALWAYS_LABELS)
    for name, labels in selectors:
        if name is None:
            problems.add(where, "a selector without a metric name")
            continue
        base, allowed = resolve_metric(name, catalogue)
        if base is None:
            problems.add(where, f"{name} is not in {rel(METRICS)}")
            continue
        if used is not None:
            used.add(base)
        allowed_grouping |= allowed
        for label in sorted(labels - allowed):
            problems.add(where, f"{name} has no label {label!r} (labels: {', '.join(sorted(allowed))})")
    for label in sorted(grouping - allowed_grouping):
        problems.add(where, f"groups by {label!r}, a label none of its metrics has")
