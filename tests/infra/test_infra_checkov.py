"""checkov passes on both tools with no failed check, offline (--skip-download). Every skip is
an inline `checkov:skip=<id>: <reason>` comment on the resource, and every such comment
suppresses a check that actually runs (a stale skip hides nothing and misleads)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import BICEP_DIR, ROOT, SAMPLE_SETTINGS, TERRAFORM_DIR, run_checkov

pytestmark = pytest.mark.timeout(900)  # the first test of a session may install .venv-infra

SKIP_COMMENT = re.compile(r"(?://|#)\s*checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?$", re.MULTILINE)
TOOLS = {"bicep": (BICEP_DIR, "*.bicep"), "terraform": (TERRAFORM_DIR, "*.tf")}


def _results(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = report["results"].get(kind, [])
    return results


def _inline_skips(tool: str) -> Counter[tuple[str, str]]:
    """(file relative to the tool folder, check id) of every inline skip comment."""
    folder, pattern = TOOLS[tool]
    skips: Counter[tuple[str, str]] = Counter()
    for path in sorted(folder.rglob(pattern)):
        for match in SKIP_COMMENT.finditer(path.read_text()):
            skips[(f"/{path.relative_to(folder)}", match.group(1))] += 1
    return skips


@pytest.mark.parametrize("tool", list(TOOLS))
def test_checkov_finds_no_failed_check(tool: str, request: pytest.FixtureRequest) -> None:
    report = request.getfixturevalue(f"checkov_{tool}")
    failed = [
        f"{r['check_id']} {r['resource']} ({r['file_path']}): {r['check_name']}"
        for r in _results(report, "failed_checks")
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0, "checkov checked nothing: did the templates parse?"


@pytest.mark.parametrize("tool", list(TOOLS))
def test_every_skip_is_inline_with_a_reason(tool: str, request: pytest.FixtureRequest) -> None:
    report = request.getfixturevalue(f"checkov_{tool}")
    folder, pattern = TOOLS[tool]
    for path in sorted(folder.rglob(pattern)):
        for match in SKIP_COMMENT.finditer(path.read_text()):
            reason = (match.group(2) or "").strip()
            assert len(reason) >= 20, f"{path.name}: skip of {match.group(1)} needs a reason"
    for result in _results(report, "skipped_checks"):
        comment = (result.get("check_result") or {}).get("suppress_comment") or ""
        assert comment.strip(), f"{result['check_id']} skipped with no reason"


@pytest.mark.parametrize("tool", list(TOOLS))
def test_every_inline_skip_suppresses_a_check_that_runs(tool: str, request: pytest.FixtureRequest) -> None:
    report = request.getfixturevalue(f"checkov_{tool}")
    skipped = {(r["file_path"], r["check_id"]) for r in _results(report, "skipped_checks")}
    stale = sorted(set(_inline_skips(tool)) - skipped)
    assert not stale, f"skip comments that suppress nothing (remove them): {stale}"


def test_checkov_secret_scan_finds_nothing(infra_tools: Any) -> None:
    for target in (["--directory", str(ROOT / "infra")], ["--file", str(SAMPLE_SETTINGS)]):
        report = run_checkov(infra_tools, *target, "--framework", "secrets")
        failed = [
            f"{r['check_id']} {r['file_path']}:{r['file_line_range']}"
            for r in _results(report, "failed_checks")
        ]
        assert not failed, failed
        assert report["summary"]["failed"] == 0


def test_checkov_secret_scan_would_catch_a_storage_key(infra_tools: Any, tmp_path: Path) -> None:
    """The secret scan above is not vacuous: it flags an account key in a settings file."""
    leaked = tmp_path / "local.settings.json"
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    leaked.write_text(
        '{"Values": {"TABLES_CONNECTION_STRING": '
        f'"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={key};"}}}}'
    )
    report = run_checkov(infra_tools, "--file", str(leaked), "--framework", "secrets")
    assert report["summary"]["failed"] >= 1
