"""Reading the parsed templates: app settings, parameters, role assignments, alert rules.

pycep (Bicep) gives literals as plain values and expressions as nested {"operator": ...} or
{"function": ...} objects; an identifier is a plain string too, so callers tell a parameter
reference from a literal by looking the name up. python-hcl2 (Terraform) keeps source text:
string literals keep their quotes and expressions are "${...}".
"""

from __future__ import annotations

import json
import re
from typing import Any


def hcl_text(value: Any) -> Any:
    """A python-hcl2 value as written: quotes of a string literal removed, escapes undone."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value[1:-1]
    return value


def hcl_keys(block: dict[str, Any]) -> set[str]:
    return {hcl_text(key) for key in block if not key.startswith("__")}


def terraform_locals(tree: dict[str, list[Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in tree.get("locals", []):
        merged.update({hcl_text(k): v for k, v in block.items() if not k.startswith("__")})
    return merged


def terraform_blocks(tree: dict[str, list[Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Top-level blocks of a kind (variable, output) by name."""
    found: dict[str, dict[str, Any]] = {}
    for block in tree.get(kind, []):
        for name, body in block.items():
            if not name.startswith("__"):
                found[hcl_text(name)] = body
    return found


def terraform_resources(tree: dict[str, list[Any]], resource_type: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in tree.get("resource", []):
        for rtype, named in block.items():
            if hcl_text(rtype) == resource_type:
                for name, body in named.items():
                    if not name.startswith("__"):
                        found[hcl_text(name)] = body
    return found


def terraform_var_refs(expression: Any) -> list[str]:
    return re.findall(r"\bvar\.(\w+)", str(expression))


def bicep_param_refs(expression: Any, parameters: dict[str, Any]) -> list[str]:
    """Names of the parameters an expression reads, in order of appearance."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            for name in [node, *re.findall(r"\$\{(\w+)\}", node)]:
                if name in parameters and name not in found:
                    found.append(name)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(expression)
    return found


def snake_case(camel: str) -> str:
    """environmentName -> environment_name, instanceMemoryMB -> instance_memory_mb."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower()


def name_pattern(template: str, placeholders: dict[str, str]) -> str:
    """A resource-name template with its interpolations replaced by {placeholders}."""
    for expression, placeholder in placeholders.items():
        template = template.replace("${" + expression + "}", "{" + placeholder + "}")
    return template


def kql(query: str) -> str:
    """A query with quoting and spacing normalised, to compare Bicep and Terraform."""
    return re.sub(r"\s+", " ", query.replace("'", '"')).strip()
