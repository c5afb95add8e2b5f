"""collector: every pipeline's components of the OpenTelemetry Collector's config defined, every one used."""

from __future__ import annotations

import re

from .common import COLLECTOR, Problems, load_yaml, rel


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
