"""alerts: the alert rules beyond promtool: metrics and labels in the catalogue, annotations, runbooks."""

from __future__ import annotations

import re

from .common import ALERTS, METRICS, OPERATIONS, Problems, load_yaml, rel
from .promql import check_promql, read_catalogue


def github_anchors(markdown: str) -> set[str]:
    anchors, in_code = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            text = re.sub(r"[`*_]|<[^>]+>", "", match.group(1)).strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text)))
    return anchors


def check_alerts() -> tuple[str, Problems]:
    problems = Problems()
    catalogue = read_catalogue()
    rules = load_yaml(ALERTS)
    anchors = github_anchors(OPERATIONS.read_text(encoding="utf-8")) if OPERATIONS.is_file() else set()
    if not anchors:
        problems.add(rel(OPERATIONS), "missing, or has no headings")
    count = 0
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record")
            here = f"{rel(ALERTS)} {name}"
            check_promql(rule.get("expr", ""), here, catalogue, problems)
            if "alert" not in rule:
                continue
            count += 1
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook"):
                if not annotations.get(key):
                    problems.add(here, f"has no {key} annotation")
            runbook = annotations.get("runbook", "")
            document, _, anchor = runbook.partition("#")
            if runbook and (document != rel(OPERATIONS) or anchor not in anchors):
                problems.add(here, f"runbook {runbook!r} is not a heading of {rel(OPERATIONS)}")
            if not (rule.get("labels") or {}).get("severity"):
                problems.add(here, "has no severity label")
    summary = (f"{rel(ALERTS)}: {count} alerts, metrics and labels in {rel(METRICS)}, each with summary, "
               f"description, severity and a runbook heading in {rel(OPERATIONS)}")
    return summary, problems
