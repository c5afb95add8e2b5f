"""references: the host names and ports the configs use for each other are the compose services' own."""

from __future__ import annotations

from urllib.parse import urlsplit

from .common import (COLLECTOR, COMPOSE, DASHBOARD_PROVIDERS, DATASOURCES, ENVOY, PROMETHEUS, Problems, load_yaml,
                     rel, walk)
from .compose import compose_mount_sources


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
