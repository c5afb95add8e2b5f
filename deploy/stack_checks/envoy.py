"""envoy: Envoy's config parses, its routes name defined clusters, and those are health-checked."""

from __future__ import annotations

from .common import ENVOY, Problems, load_yaml, rel, walk


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
