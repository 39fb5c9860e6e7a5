"""Every template parses: Bicep with pycep (checkov's parser), Terraform with python-hcl2.

checkov skips a file it cannot parse and reports only a count, so a file that stopped parsing
would silently drop out of the security checks: these tests name it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from conftest import BICEP_DIR, BICEP_FILES, TERRAFORM_DIR, TERRAFORM_FILES
from iac_model import hcl_text, terraform_blocks

pytestmark = pytest.mark.timeout(900)  # the first test of a session may install .venv-infra


def test_the_templates_exist() -> None:
    assert (BICEP_DIR / "main.bicep").is_file()
    assert (BICEP_DIR / "main.bicepparam").is_file()
    assert {p.name for p in TERRAFORM_FILES} >= {"providers.tf", "main.tf", "variables.tf", "outputs.tf"}
    assert (TERRAFORM_DIR / "terraform.tfvars.example").is_file()


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(BICEP_DIR)))
def test_bicep_file_parses(bicep_dump: dict[str, Any], path: Any) -> None:
    assert str(path) not in bicep_dump["errors"], bicep_dump["errors"].get(str(path))
    assert str(path) in bicep_dump["parsed"]


@pytest.mark.parametrize("path", TERRAFORM_FILES, ids=lambda p: p.name)
def test_terraform_file_parses(terraform_dump: dict[str, Any], path: Any) -> None:
    assert str(path) not in terraform_dump["errors"], terraform_dump["errors"].get(str(path))
    assert str(path) in terraform_dump["parsed"]


def test_bicepparam_sets_only_known_parameters_and_every_required_one(
    bicep: Callable[[str], dict[str, Any]],
) -> None:
    parameters = bicep("main.bicep")["parameters"]
    text = (BICEP_DIR / "main.bicepparam").read_text()
    assert re.search(r"^using '\./main\.bicep'$", text, re.MULTILINE)
    assigned = set(re.findall(r"^param (\w+) =", text, re.MULTILINE))
    required = {name for name, p in parameters.items() if p.get("default") is None}
    assert assigned <= set(parameters), f"unknown parameters: {sorted(assigned - set(parameters))}"
    assert required <= assigned, f"required parameters not set: {sorted(required - assigned)}"


def test_tfvars_example_sets_only_known_variables_and_every_required_one(
    terraform: dict[str, Any], infra_tools: Any
) -> None:
    variables = terraform_blocks(terraform, "variable")
    text = (TERRAFORM_DIR / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^(\w+)\s*=", text, re.MULTILINE))
    required = {name for name, body in variables.items() if "default" not in body}
    assert assigned <= set(variables), f"unknown variables: {sorted(assigned - set(variables))}"
    assert required <= assigned, f"required variables not set: {sorted(required - assigned)}"


def test_every_terraform_variable_has_a_description(terraform: dict[str, Any]) -> None:
    variables = terraform_blocks(terraform, "variable")
    undocumented = [name for name, body in variables.items() if not hcl_text(body.get("description", ""))]
    assert not undocumented


def test_every_bicep_parameter_has_a_description(bicep: Callable[[str], dict[str, Any]]) -> None:
    parameters = bicep("main.bicep")["parameters"]
    undocumented = [
        name
        for name, p in parameters.items()
        if not any(d["type"] == "description" for d in p.get("decorators", []))
    ]
    assert not undocumented
