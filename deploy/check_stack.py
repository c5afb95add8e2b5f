#!/usr/bin/env python3
"""Static checks of the production topology (docker-compose.yml and deploy/), run by scripts/check-stack.

No Docker engine runs in CI, so nothing here starts a container: each check reads files. Usage:

    check_stack.py [CHECK...]   CHECK: files, compose, collector, grafana, envoy, alerts, references (default: all)

Each check prints one line, `ok   NAME: what was checked` or `FAIL NAME: ...` followed by one indented line
per problem, and the exit status is 1 when any failed. Needs PyYAML and jsonschema (pinned in
deploy/check_stack.requirements.txt).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"
METRICS = DEPLOY / "metrics.txt"
COLLECTOR = DEPLOY / "otel-collector" / "config.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ENVOY = DEPLOY / "envoy" / "envoy.yaml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"
DASHBOARD_PROVIDERS = DEPLOY / "grafana" / "provisioning" / "dashboards"
OPERATIONS = ROOT / "docs" / "operations.md"


class Problems(list):
    def add(self, where: str, what: str) -> None:
        self.append(f"{where}: {what}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


# --- the metric catalogue (deploy/metrics.txt) and a small PromQL reader ---------------------------------

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


# --- compose -------------------------------------------------------------------------------------------------

def compose_mount_sources(service: dict):
    """(source, target) of each bind mount of a service, short or long syntax."""
    for volume in service.get("volumes", []) or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) >= 2 and (parts[0].startswith((".", "/", "~"))):
                yield parts[0], parts[1], True
            elif len(parts) >= 2:
                yield parts[0], parts[1], False  # a named volume
        elif isinstance(volume, dict):
            kind = volume.get("type")
            yield volume.get("source", ""), volume.get("target", ""), kind == "bind"


def check_compose() -> tuple[str, Problems]:
    from jsonschema import Draft7Validator, Draft202012Validator

    problems = Problems()
    compose = load_yaml(COMPOSE)
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    # The draft the schema's $schema names (compose-spec's: draft-07; compose-go's newer copy: 2020-12).
    validator = (Draft202012Validator if "2020-12" in schema.get("$schema", "") else Draft7Validator)(schema)
    for error in sorted(validator.iter_errors(compose), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in error.absolute_path) or "(top)"
        problems.add(f"{rel(COMPOSE)} {path}", error.message)

    services = compose.get("services", {}) or {}
    volumes = set((compose.get("volumes") or {}).keys())
    networks = set((compose.get("networks") or {}).keys()) | {"default"}
    mounts = 0
    for name, service in services.items():
        where = f"{rel(COMPOSE)} services.{name}"
        image, build = service.get("image"), service.get("build")
        if image:
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if not re.search(r"\d+\.\d+", tag):
                problems.add(where, f"image {image!r} is not pinned to a version")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not (ROOT / context / dockerfile).is_file():
                problems.add(where, f"build context {context!r} has no {dockerfile}")
        for source, target, bind in compose_mount_sources(service):
            if not bind:
                if source and source not in volumes:
                    problems.add(where, f"named volume {source!r} is not declared under volumes")
                continue
            mounts += 1
            if source.startswith(("/", "~")):
                problems.add(where, f"mounts the host path {source!r}: only repository files may be mounted")
            elif not (ROOT / source).exists():
                problems.add(where, f"mounts {source!r}, which does not exist in the repository")
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file.get("path", "")
            if not (ROOT / path).is_file():
                problems.add(where, f"env_file {path!r} does not exist")
        depends = service.get("depends_on") or []
        for dependency in depends if isinstance(depends, list) else depends.keys():
            if dependency not in services:
                problems.add(where, f"depends on {dependency!r}, which is no service")
        service_networks = service.get("networks") or []
        for network in service_networks if isinstance(service_networks, list) else service_networks.keys():
            if network not in networks:
                problems.add(where, f"network {network!r} is not declared")
        # Files named in the command must be inside a mount (a config file passed by path).
        command = service.get("command") or []
        targets = [t for _, t, _ in compose_mount_sources(service)]
        for argument in command if isinstance(command, list) else command.split():
            for path in re.findall(r"(/etc/\S+|/var/lib/\S+)", str(argument)):
                if not any(path == t or path.startswith(t.rstrip("/") + "/") for t in targets):
                    problems.add(where, f"the command names {path}, which no volume mounts")
    summary = (f"{rel(COMPOSE)} valid against the compose-spec schema; {len(services)} services, "
               f"{mounts} mounted files present")
    return summary, problems


# --- the collector -------------------------------------------------------------------------------------------

# Signals of the component types used here (from each component's README in the contrib distribution);
# a type not listed is not checked for signals.
COMPONENT_SIGNALS = {
    ("receivers", "otlp"): {"traces", "metrics", "logs"},
    ("receivers", "fluentforward"): {"logs"},
    ("receivers", "filelog"): {"logs"},
    ("receivers", "prometheus"): {"metrics"},
    ("exporters", "otlp"): {"traces", "metrics", "logs"},
    ("exporters", "otlphttp"): {"traces", "metrics", "logs"},
    ("exporters", "prometheus"): {"metrics"},
    ("exporters", "prometheusremotewrite"): {"metrics"},
    ("exporters", "loki"): {"logs"},
    ("exporters", "debug"): {"traces", "metrics", "logs"},
}
SIGNAL_SECTIONS = {  # processors configured per signal: the pipeline's signal must be configured
    "filter": {"traces": "traces", "metrics": "metrics", "logs": "logs"},
    "transform": {"traces": "trace_statements", "metrics": "metric_statements", "logs": "log_statements"},
}
COMPONENT_ID = re.compile(r"^[a-z0-9_]+(/[A-Za-z0-9_.-]+)?$")


def check_collector() -> tuple[str, Problems]:
    problems = Problems()
    config = load_yaml(COLLECTOR)
    where = rel(COLLECTOR)
    kinds = ("receivers", "processors", "exporters", "connectors", "extensions")
    defined = {kind: set((config.get(kind) or {}).keys()) for kind in kinds}
    for kind in kinds:
        for component in defined[kind]:
            if not COMPONENT_ID.match(component):
                problems.add(where, f"{kind}.{component}: not a component id (type[/name])")
    service = config.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.add(where, "service.pipelines is empty")
    used = {kind: set() for kind in kinds}
    signals_seen = set()
    for pipeline, spec in pipelines.items():
        signal = pipeline.split("/", 1)[0]
        here = f"{where} service.pipelines.{pipeline}"
        if signal not in {"traces", "metrics", "logs"}:
            problems.add(here, f"unknown signal {signal!r}")
        signals_seen.add(signal)
        spec = spec or {}
        for role, may in (("receivers", ("receivers", "connectors")), ("processors", ("processors",)),
                          ("exporters", ("exporters", "connectors"))):
            names = spec.get(role) or []
            if role != "processors" and not names:
                problems.add(here, f"has no {role}")
            if len(names) != len(set(names)):
                problems.add(here, f"lists a {role[:-1]} twice")
            for name in names:
                kind = next((k for k in may if name in defined[k]), None)
                if kind is None:
                    problems.add(here, f"{role[:-1]} {name!r} is not defined")
                    continue
                used[kind].add(name)
                component_type = name.split("/", 1)[0]
                supported = COMPONENT_SIGNALS.get((kind, component_type))
                if supported is not None and signal not in supported:
                    problems.add(here, f"{name} does not handle {signal}")
                sections = SIGNAL_SECTIONS.get(component_type) if kind == "processors" else None
                if sections is not None:
                    settings = (config.get("processors") or {}).get(name) or {}
                    if sections[signal] not in settings:
                        problems.add(here, f"{name} has no {sections[signal]} settings, so it does nothing here")
    for kind in ("receivers", "processors", "exporters", "connectors"):
        for name in sorted(defined[kind] - used[kind]):
            problems.add(where, f"{kind}.{name} is defined but no pipeline uses it")
    listed = set(service.get("extensions") or [])
    for name in sorted(listed - defined["extensions"]):
        problems.add(where, f"service.extensions names {name!r}, which is not defined")
    for name in sorted(defined["extensions"] - listed):
        problems.add(where, f"extensions.{name} is defined but not enabled in service.extensions")
    summary = (f"{where}: {len(pipelines)} pipelines ({', '.join(sorted(signals_seen))}), every component defined "
               f"and used (structural: the collector publishes no JSON schema of its config)")
    return summary, problems


# --- Grafana -------------------------------------------------------------------------------------------------

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


# --- Envoy ---------------------------------------------------------------------------------------------------

def walk(node, key):
    """Every value stored under `key` anywhere in node."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item, key)


def check_envoy() -> tuple[str, Problems]:
    problems = Problems()
    where = rel(ENVOY)
    config = load_yaml(ENVOY)
    resources = config.get("static_resources") or {}
    clusters = {c.get("name"): c for c in resources.get("clusters") or []}
    listeners = resources.get("listeners") or []
    if not listeners:
        problems.add(where, "no listener")
    for typed in walk(config, "typed_config"):
        if isinstance(typed, dict) and "@type" not in typed:
            problems.add(where, "a typed_config without @type")
    referenced = set()
    for route in walk(listeners, "route"):
        if not isinstance(route, dict):
            continue
        names = [route["cluster"]] if "cluster" in route else []
        names += [c.get("name") for c in (route.get("weighted_clusters") or {}).get("clusters", [])]
        if not names and "cluster_header" not in route:
            problems.add(where, f"a route names no cluster: {route}")
        for name in names:
            referenced.add(name)
            if name not in clusters:
                problems.add(where, f"a route names cluster {name!r}, which is not defined")
    for name, cluster in clusters.items():
        endpoints = list(walk(cluster.get("load_assignment") or {}, "socket_address"))
        if not endpoints:
            problems.add(where, f"cluster {name!r} has no endpoints")
        if name in referenced and not cluster.get("health_checks"):
            problems.add(where, f"cluster {name!r} is routed to but not health-checked")
        if name not in referenced:
            problems.add(where, f"cluster {name!r} is defined but no route uses it")
    ports = [l.get("address", {}).get("socket_address", {}).get("port_value") for l in listeners]
    summary = (f"{where}: listeners on {', '.join(map(str, ports))}, routes to {', '.join(sorted(referenced))} "
               f"(defined, with endpoints and health checks)")
    return summary, problems


# --- alert rules (beyond promtool) -------------------------------------------------------------------------

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


# --- references between the files ----------------------------------------------------------------------------

def host_port(address: str) -> tuple[str, int | None]:
    if "://" in address:
        parts = urlsplit(address)
        return parts.hostname or "", parts.port
    host, _, port = address.rpartition(":")
    return (host, int(port)) if port.isdigit() else (address, None)


def check_references() -> tuple[str, Problems]:
    """Host names and ports one file uses for another service must be that service's."""
    problems = Problems()
    compose = load_yaml(COMPOSE)
    services = compose.get("services") or {}
    local = {"localhost", "127.0.0.1", "0.0.0.0", ""}
    checked = 0

    def expect(host: str, where: str, port: int | None = None, listens: dict[str, int] | None = None) -> None:
        nonlocal checked
        checked += 1
        if host in local:
            return
        if host not in services:
            problems.add(where, f"names host {host!r}, which is no service of {rel(COMPOSE)}")
        elif listens and host in listens and port is not None and listens[host] != port:
            problems.add(where, f"uses {host}:{port}, but {host} listens on {listens[host]}")

    def env(service: dict) -> dict:
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        return environment

    aerobooks = {name: env(s) for name, s in services.items() if "AEROBOOK_LISTEN_ADDR" in env(s)}
    metrics_ports = {n: host_port(e.get("AEROBOOK_METRICS_ADDR", ""))[1] for n, e in aerobooks.items()}
    public_ports = {n: host_port(e["AEROBOOK_LISTEN_ADDR"])[1] for n, e in aerobooks.items()}

    prometheus = load_yaml(PROMETHEUS)
    for job in prometheus.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                host, port = host_port(target)
                expect(host, f"{rel(PROMETHEUS)} job {job.get('job_name')}", port,
                       metrics_ports if job.get("job_name") == "aerobook" else None)
    aerobook_targets = {host_port(t)[0] for job in prometheus.get("scrape_configs") or []
                        if job.get("job_name") == "aerobook"
                        for s in job.get("static_configs") or [] for t in s.get("targets") or []}
    for name in sorted(set(aerobooks) - aerobook_targets):
        problems.add(rel(PROMETHEUS), f"job aerobook does not scrape {name}")

    envoy = load_yaml(ENVOY)
    envoy_hosts = set()
    for cluster in (envoy.get("static_resources") or {}).get("clusters") or []:
        for address in walk(cluster.get("load_assignment") or {}, "socket_address"):
            envoy_hosts.add(address.get("address"))
            expect(address.get("address"), f"{rel(ENVOY)} cluster {cluster.get('name')}",
                   address.get("port_value"), public_ports)
    for name in sorted(set(aerobooks) - envoy_hosts):
        problems.add(rel(ENVOY), f"no cluster balances over {name}")

    for path in sorted(DATASOURCES.glob("*.y*ml")):
        for source in (load_yaml(path) or {}).get("datasources") or []:
            expect(host_port(source.get("url", ""))[0], f"{rel(path)} {source.get('name')}")

    collector = load_yaml(COLLECTOR)
    for name, exporter in (collector.get("exporters") or {}).items():
        endpoint = (exporter or {}).get("endpoint")
        if endpoint:
            expect(host_port(endpoint)[0], f"{rel(COLLECTOR)} exporters.{name}")

    for name, environment in aerobooks.items():
        for key in ("DATABASE_URL", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "AEROBOOK_SMTP_URL"):
            if environment.get(key):
                expect(host_port(environment[key])[0], f"{rel(COMPOSE)} {name} {key}")

    providers = [p for f in sorted(DASHBOARD_PROVIDERS.glob("*.y*ml"))
                 for p in (load_yaml(f) or {}).get("providers") or []]
    grafana_targets = [t for s in services.values() for src, t, _ in compose_mount_sources(s)
                       if src.rstrip("/").endswith("deploy/grafana/dashboards")]
    for provider in providers:
        path = (provider.get("options") or {}).get("path")
        if path not in grafana_targets:
            problems.add(rel(DASHBOARD_PROVIDERS),
                         f"provider path {path!r} is not where {rel(COMPOSE)} mounts the dashboards")
    summary = (f"{checked} host names in the deploy/ configs are services of {rel(COMPOSE)}, "
               f"on the ports they listen on")
    return summary, problems


# --- every config file parses ----------------------------------------------------------------------------

def check_files() -> tuple[str, Problems]:
    """Every YAML and JSON file under deploy/ parses (Tempo's and Loki's configs get no other check)."""
    problems = Problems()
    paths = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml", ".json"})
    for path in paths:
        try:
            if path.suffix == ".json":
                json.loads(path.read_text(encoding="utf-8"))
            elif load_yaml(path) is None:
                problems.add(rel(path), "is empty")
        except (yaml.YAMLError, json.JSONDecodeError) as error:
            problems.add(rel(path), f"does not parse: {error}")
    return f"{len(paths)} YAML and JSON files under deploy/ parse", problems


CHECKS = {
    "files": check_files,
    "compose": check_compose,
    "collector": check_collector,
    "grafana": check_grafana,
    "envoy": check_envoy,
    "alerts": check_alerts,
    "references": check_references,
}


def main(names: list[str]) -> int:
    failed = False
    for name in names or list(CHECKS):
        if name not in CHECKS:
            print(f"unknown check {name!r}; known: {', '.join(CHECKS)}", file=sys.stderr)
            return 2
        try:
            summary, problems = CHECKS[name]()
        except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError) as error:
            summary, problems = "could not be read", Problems([f"{type(error).__name__}: {error}"])
        if problems:
            failed = True
            print(f"FAIL {name}: {len(problems)} problem(s)")
            for problem in problems:
                print(f"       {problem}")
        else:
            print(f"ok   {name}: {summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
