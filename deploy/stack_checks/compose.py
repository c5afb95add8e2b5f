"""compose: docker-compose.yml against the compose-spec schema, its mounts, images, dependencies and volumes."""

from __future__ import annotations

import json
import re

from .common import COMPOSE, COMPOSE_SCHEMA, ROOT, Problems, load_yaml, rel


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
