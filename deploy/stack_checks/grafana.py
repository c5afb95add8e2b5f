"""grafana: the provisioning files, and the dashboards' panels, data sources and expressions."""

from __future__ import annotations

import json
import re

from .common import DASHBOARD_PROVIDERS, DASHBOARDS, DATASOURCES, METRICS, Problems, load_yaml, rel
from .promql import check_promql, read_catalogue, read_promql, resolve_metric


def datasource_uids(problems: Problems) -> dict[str, str]:
    """uid -> type of the provisioned data sources."""
    uids: dict[str, str] = {}
    files = sorted(DATASOURCES.glob("*.y*ml"))
    if not files:
        problems.add(rel(DATASOURCES), "no provisioning file")
    for path in files:
        config = load_yaml(path) or {}
        if config.get("apiVersion") != 1:
            problems.add(rel(path), "apiVersion must be 1")
        for source in config.get("datasources") or []:
            for key in ("name", "type", "uid", "url"):
                if not source.get(key):
                    problems.add(rel(path), f"data source {source.get('name', '?')} has no {key}")
            if source.get("uid") in uids:
                problems.add(rel(path), f"uid {source['uid']!r} used twice")
            uids[source.get("uid")] = source.get("type")
    for path in files:
        for source in (load_yaml(path) or {}).get("datasources") or []:
            data = source.get("jsonData") or {}
            links = [f.get("datasourceUid") for f in data.get("derivedFields") or []]
            links += [(data.get(k) or {}).get("datasourceUid")
                      for k in ("tracesToLogsV2", "lokiSearch", "tracesToMetrics")]
            for uid in filter(None, links):
                if uid not in uids:
                    problems.add(rel(path), f"{source.get('name')} links to data source {uid!r}, not provisioned")
            for field in data.get("derivedFields") or []:
                if field.get("matcherType", "regex") == "regex":
                    try:
                        re.compile(field.get("matcherRegex", ""))
                    except re.error as error:
                        problems.add(rel(path), f"derived field {field.get('name')}: bad regex: {error}")
    return uids


def check_grafana() -> tuple[str, Problems]:
    problems = Problems()
    catalogue = read_catalogue()
    uids = datasource_uids(problems)
    providers = sorted(DASHBOARD_PROVIDERS.glob("*.y*ml"))
    if not providers:
        problems.add(rel(DASHBOARD_PROVIDERS), "no provisioning file")
    for path in providers:
        config = load_yaml(path) or {}
        if config.get("apiVersion") != 1 or not config.get("providers"):
            problems.add(rel(path), "needs apiVersion 1 and providers")
        for provider in config.get("providers") or []:
            if not (provider.get("options") or {}).get("path"):
                problems.add(rel(path), f"provider {provider.get('name')} has no options.path")

    dashboards = sorted(DASHBOARDS.glob("*.json"))
    if not dashboards:
        problems.add(rel(DASHBOARDS), "no dashboard")
    used: set[str] = set()
    panel_count = 0
    for path in dashboards:
        where = rel(path)
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            problems.add(where, f"not JSON: {error}")
            continue
        for key in ("uid", "title"):
            if not dashboard.get(key):
                problems.add(where, f"has no {key}")
        panels = list(dashboard.get("panels") or [])
        for panel in list(panels):
            panels.extend(panel.get("panels") or [])  # panels inside collapsed rows
        ids = [p.get("id") for p in panels]
        if len(ids) != len(set(ids)):
            problems.add(where, "panel ids are not unique")
        for panel in panels:
            if panel.get("type") == "row":
                continue
            panel_count += 1
            here = f"{where} panel {panel.get('title')!r}"
            if "gridPos" not in panel:
                problems.add(here, "has no gridPos")
            source = panel.get("datasource")
            if not isinstance(source, dict) or source.get("uid") not in uids:
                problems.add(here, f"data source {source!r} is not a provisioned uid ({', '.join(sorted(uids))})")
                continue
            targets = panel.get("targets") or []
            if not targets:
                problems.add(here, "has no targets")
            refs = [t.get("refId") for t in targets]
            if len(refs) != len(set(refs)) or None in refs:
                problems.add(here, "target refIds missing or repeated")
            for target in targets:
                target_source = target.get("datasource") or source
                kind = uids.get(target_source.get("uid"))
                expr = target.get("expr")
                if not expr:
                    problems.add(here, f"target {target.get('refId')} has no expr")
                elif kind == "prometheus":
                    check_promql(expr, here, catalogue, problems, used)
                elif kind == "loki" and not re.match(r"^\s*\{[^}]+\}", expr):
                    problems.add(here, f"LogQL {expr!r} does not start with a stream selector")
        for variable in (dashboard.get("templating") or {}).get("list") or []:
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            match = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", query or "")
            if variable.get("type") == "query" and match:
                here = f"{where} variable {variable.get('name')!r}"
                check_promql(match.group(1), here, catalogue, problems)
                selectors, _ = read_promql(match.group(1))
                for name, _labels in selectors:
                    _, allowed = resolve_metric(name or "", catalogue)
                    if allowed is not None and match.group(2) not in allowed:
                        problems.add(here, f"{name} has no label {match.group(2)!r}")
    for name in sorted(set(catalogue) - used):
        problems.add(rel(DASHBOARDS), f"no panel shows {name}")
    summary = (f"{len(dashboards)} dashboard(s), {panel_count} panels, every metric of {rel(METRICS)} shown and "
               f"every expression's metrics and labels in it; {len(uids)} data sources provisioned")
    return summary, problems
