"""Fixtures of the infrastructure checks: the tools in `.venv-infra`, the parsed templates
and the checkov reports. Everything is computed once per session."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ensure_tools
import pytest

ROOT = ensure_tools.ROOT
BICEP_DIR = ROOT / "infra" / "bicep"
TERRAFORM_DIR = ROOT / "infra" / "terraform"
SAMPLE_SETTINGS = ROOT / "local.settings.sample.json"
MONITORING_DOC = ROOT / "docs" / "monitoring.md"

BICEP_FILES = sorted(BICEP_DIR.rglob("*.bicep"))
TERRAFORM_FILES = sorted(TERRAFORM_DIR.rglob("*.tf"))


@pytest.fixture(scope="session")
def infra_tools() -> ensure_tools.Tools:
    return ensure_tools.ensure()


def _dump(tools: ensure_tools.Tools, kind: str, files: list[Path]) -> dict[str, Any]:
    env = dict(os.environ)
    if kind == "terraform":
        env["PYTHONPATH"] = str(tools.hcl2_path)
    done = subprocess.run(
        [tools.python, Path(__file__).with_name("iac_dump.py"), kind, *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="session")
def bicep_dump(infra_tools: ensure_tools.Tools) -> dict[str, Any]:
    """{"parsed": {path: pycep tree}, "errors": {path: message}} for every .bicep file."""
    return _dump(infra_tools, "bicep", BICEP_FILES)


@pytest.fixture(scope="session")
def terraform_dump(infra_tools: ensure_tools.Tools) -> dict[str, Any]:
    """{"parsed": {path: python-hcl2 tree}, "errors": {path: message}} for every .tf file."""
    return _dump(infra_tools, "terraform", TERRAFORM_FILES)


@pytest.fixture(scope="session")
def bicep(bicep_dump: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    """The parsed tree of a Bicep file, by path relative to infra/bicep."""

    def parsed(relative: str) -> dict[str, Any]:
        tree: dict[str, Any] = bicep_dump["parsed"][str(BICEP_DIR / relative)]
        return tree

    return parsed


@pytest.fixture(scope="session")
def terraform(terraform_dump: dict[str, Any]) -> dict[str, Any]:
    """All .tf files of infra/terraform merged into one tree (blocks of a kind concatenated)."""
    merged: dict[str, list[Any]] = {}
    for tree in terraform_dump["parsed"].values():
        for kind, blocks in tree.items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def run_checkov(tools: ensure_tools.Tools, *args: str) -> dict[str, Any]:
    """Run checkov offline and return its JSON report (one framework)."""
    done = subprocess.run(
        [tools.checkov, *args, "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "ERROR"},
        check=False,
        timeout=600,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (exit {done.returncode}):\n{done.stderr[-4000:]}")
    if isinstance(report, list):  # several frameworks: one report each
        pytest.fail(f"expected one framework per checkov run, got {[r['check_type'] for r in report]}")
    if "results" not in report:  # nothing to check: checkov prints the bare summary
        report = {"summary": report, "results": {}}
    return dict(report)


@pytest.fixture(scope="session")
def checkov_bicep(infra_tools: ensure_tools.Tools) -> dict[str, Any]:
    return run_checkov(infra_tools, "--directory", str(BICEP_DIR), "--framework", "bicep")


@pytest.fixture(scope="session")
def checkov_terraform(infra_tools: ensure_tools.Tools) -> dict[str, Any]:
    return run_checkov(infra_tools, "--directory", str(TERRAFORM_DIR), "--framework", "terraform")
