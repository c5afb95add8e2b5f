#!/usr/bin/env python3
"""Static checks of the production topology (docker-compose.yml and deploy/), run by scripts/check-stack.

No Docker engine runs in CI, so nothing here starts a container: each check reads files. Usage:

    check_stack.py [CHECK...]   CHECK: files, compose, collector, grafana, envoy, alerts, references (default: all)

Each check prints one line, `ok   NAME: what was checked` or `FAIL NAME: ...` followed by one indented line
per problem, and the exit status is 1 when any failed. Needs PyYAML and jsonschema (pinned in
deploy/check_stack.requirements.txt). The checks are the modules of deploy/stack_checks/, one per group;
this file runs them.
"""

from __future__ import annotations

import sys

# Running the checks leaves no __pycache__ in the repository.
sys.dont_write_bytecode = True

import yaml

from stack_checks.alerts import check_alerts
from stack_checks.collector import check_collector
from stack_checks.common import Problems
from stack_checks.compose import check_compose
from stack_checks.envoy import check_envoy
from stack_checks.files import check_files
from stack_checks.grafana import check_grafana
from stack_checks.references import check_references

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
