"""files: every YAML and JSON file under deploy/ parses."""

from __future__ import annotations

import json

import yaml

from .common import DEPLOY, Problems, load_yaml, rel


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
