"""Parse IaC files and print them as JSON; run with the `.venv-infra` interpreter.

    iac_dump.py bicep FILE...      pycep (the parser checkov uses for Bicep)
    iac_dump.py terraform FILE...  python-hcl2 (PYTHONPATH must put upstream python-hcl2 first)

Prints {"parsed": {file: tree}, "errors": {file: message}}. A separate process because the
parsers live in `.venv-infra`, not in the project's `.venv`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _parse_bicep(path: Path) -> Any:
    from pycep import BicepParser

    return BicepParser().parse(text=path.read_text())


def _parse_terraform(path: Path) -> Any:
    import hcl2

    with path.open() as handle:
        return hcl2.load(handle)


def main(argv: list[str]) -> int:
    kind, files = argv[0], argv[1:]
    parse = {"bicep": _parse_bicep, "terraform": _parse_terraform}[kind]
    parsed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in files:
        try:
            parsed[name] = parse(Path(name))
        except Exception as err:  # report every file, not just the first failure
            errors[name] = f"{type(err).__name__}: {err}"
    json.dump({"parsed": parsed, "errors": errors}, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
