"""What `func azure functionapp publish` uploads: the project minus what .funcignore excludes.

Core Tools (FileSystemHelpers.GetLocalFiles) walks the project directory, skips .git/ and
.vscode/ and a few files whatever .funcignore says, and drops each file .funcignore matches.
The list is built here the same way, with .funcignore read two ways: as gitignore (pathspec)
and as Core Tools really reads it (GitIgnoreParser, a port of codemix/gitignore-parser, whose
patterns are regular expressions anchored at the root). Both must give the same list, so
.funcignore means what it says to both readers.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pathspec

ROOT = Path(__file__).resolve().parents[2]
FUNCIGNORE = ROOT / ".funcignore"

# Left out by Core Tools whatever .funcignore says (compared without case).
ALWAYS_SKIPPED_DIRECTORIES = {".git", ".vscode"}
ALWAYS_SKIPPED_FILES = {".funcignore", ".gitignore", "local.settings.json", "project.lock.json"}

APP_FILES = {"function_app.py", "host.json", "requirements.txt"}
APP_DIRECTORIES = ("functions/", "shared/", "console/dist/")  # the console: its build only
NEVER_SHIPPED = ("devstack/", "tests/", "benchmarks/", "node_modules/", "infra/", "docs/", ".ci/", "scripts/")

Ignores = Callable[[str], bool]  # relative path ("a/b.py", or "a/" for a directory) -> excluded


def funcignore_lines() -> list[str]:
    return [line.strip() for line in FUNCIGNORE.read_text().split("\n")]


def gitignore_rule() -> Ignores:
    spec = pathspec.GitIgnoreSpec.from_lines(funcignore_lines())
    return spec.match_file


def core_tools_rule(word_boundary: bool = True) -> Ignores:
    """Core Tools' GitIgnoreParser.Denies, for a .funcignore without negations.

    Each pattern becomes a regular expression: `**` is `(.+)`, `*` is `([^/]+)`, a leading `/`
    is dropped, and the alternation is anchored at the start of the path with nothing at the
    end but, in current versions, a word boundary (`word_boundary=False`: older versions).
    """
    patterns = []
    for line in funcignore_lines():
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "negations are not modelled (and mean something else to Core Tools)"
        escaped = re.sub(r"[\-\[\]/{}()+?.\\^$|]", lambda m: "\\" + m.group(0), line.removeprefix("/"))
        patterns.append(escaped.replace("**", "(.+)").replace("*", "([^/]+)"))
    if not patterns:
        return lambda _: False
    regex = re.compile(
        "^((" + ")|(".join(sorted(patterns)) + "))" + (r"\b" if word_boundary else ""), re.ASCII
    )
    return lambda path: regex.match(path) is not None


def walk(rules: list[Ignores]) -> Iterator[tuple[str, list[bool]]]:
    """Each project file as Core Tools lists it ("a/b.py"), with whether each rule excludes it.

    A directory every rule excludes is not entered: without negations, nothing under it can
    be let through by either way of reading .funcignore (a gitignore-excluded directory
    excludes its contents; a Core Tools pattern matching "d/" matches every "d/..." too).
    """
    for directory, subdirectories, files in os.walk(ROOT, followlinks=True):
        base = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else base + "/"
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if d.lower() not in ALWAYS_SKIPPED_DIRECTORIES
            and not all(rule(f"{prefix}{d}/") for rule in rules)
        )
        for name in sorted(files):
            if name.lower() not in ALWAYS_SKIPPED_FILES:
                yield prefix + name, [rule(prefix + name) for rule in rules]


@functools.cache
def package_lists() -> dict[str, tuple[str, ...]]:
    """The package as each reader of .funcignore builds it: gitignore, Core Tools, older Core Tools."""
    readers = {
        "gitignore": gitignore_rule(),
        "core tools": core_tools_rule(),
        "core tools before the word boundary": core_tools_rule(word_boundary=False),
    }
    kept: dict[str, list[str]] = {name: [] for name in readers}
    for path, excluded in walk(list(readers.values())):
        for name, out in zip(readers, excluded, strict=True):
            if not out:
                kept[name].append(path)
    return {name: tuple(paths) for name, paths in kept.items()}


def package() -> set[str]:
    return set(package_lists()["gitignore"])


def project_files(directory: str, pattern: str) -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / directory).glob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_funcignore_has_no_negations() -> None:
    # Core Tools lets through any file a `!` pattern matches, whatever comes before or after;
    # git cannot re-include a file whose directory is excluded. Keep the two readers agreeing.
    assert not [line for line in funcignore_lines() if line.startswith("!")]


def test_core_tools_and_gitignore_read_funcignore_alike() -> None:
    lists = package_lists()
    assert lists["core tools"] == lists["gitignore"]
    assert lists["core tools before the word boundary"] == lists["gitignore"]


def test_the_package_leaves_out_the_local_stack_the_tests_and_the_tools() -> None:
    files = package()
    for directory in NEVER_SHIPPED:
        assert not [f for f in files if f.startswith(directory)], directory
    for name in (
        "Makefile",
        "README.md",
        "pyproject.toml",
        "requirements-dev.txt",
        "requirements-infra.txt",
        "package.json",
        "package-lock.json",
        "local.settings.json",
        "local.settings.sample.json",
    ):
        assert name not in files
    leftovers = [f for f in files if "__pycache__" in f.split("/") or f.endswith(".pyc")]
    assert not leftovers
    assert not [f for f in files if f.startswith((".venv", ".git"))]


def test_the_package_holds_the_app() -> None:
    files = package()
    assert files >= APP_FILES
    expected = project_files("functions", "*.py") | project_files("shared", "**/*.py")
    assert "functions/http_api.py" in expected and "shared/bootstrap.py" in expected
    assert expected - files == set()
    build = project_files("console/dist", "**/*")
    assert build - files == set(), "the console's build must ship (make console builds it)"


def test_the_package_holds_nothing_but_the_app() -> None:
    """Anything new in the project stays out of the package until .funcignore says otherwise."""
    extra = {f for f in package() if f not in APP_FILES and not f.startswith(APP_DIRECTORIES)}
    assert extra == set(), "exclude these in .funcignore, or add them here if the app needs them"


_LOADED = """
import json, sys
from pathlib import Path
import function_app
root = Path.cwd().resolve()
outside = [Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}]
local = []
for module in list(sys.modules.values()):
    file = getattr(module, "__file__", None)
    if not file:
        continue
    path = Path(file).resolve()
    if path.is_relative_to(root) and not any(path.is_relative_to(p) for p in outside):
        local.append(path.relative_to(root).as_posix())
print(json.dumps(sorted(local)))
"""


def test_every_project_module_the_app_loads_is_in_the_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert {"function_app.py", "functions/http_api.py", "shared/bootstrap.py"} <= loaded
    assert loaded - package() == set()


def packaged_python() -> list[str]:
    return sorted(f for f in package() if f.endswith(".py"))


def imported_modules(path: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of each import in a file, at any depth (in functions too).

    `from a import b` yields both `a` and `a.b` (b may be a module); relative imports are
    resolved against the file's package; `importlib.import_module("x")` counts too.
    """
    source = (ROOT / path).read_text()
    package_parts = path.removesuffix(".py").split("/")[:-1]
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package_parts[: len(package_parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if module:
                yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if module else alias.name
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def test_no_app_module_imports_devstack_or_tests() -> None:
    sources = [
        "function_app.py",
        *sorted(project_files("functions", "**/*.py") | project_files("shared", "**/*.py")),
    ]
    offending = [
        f"{path}:{line}: {module}"
        for path in sources
        for line, module in imported_modules(path)
        if module.split(".")[0] in ("devstack", "tests")
    ]
    assert offending == []


def module_file(module: str) -> str | None:
    """The project file of a module name, if there is one: `a.b` -> a/b.py or a/b/__init__.py."""
    relative = module.replace(".", "/")
    for candidate in (f"{relative}.py", f"{relative}/__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate
    return None


def test_every_project_module_any_packaged_module_imports_is_in_the_package() -> None:
    """Also the imports made only when needed (the Azure SDK adapters), which loading the app skips."""
    files = package()
    missing = [
        f"{path}:{line}: {module} ({found})"
        for path in packaged_python()
        for line, module in imported_modules(path)
        if (found := module_file(module)) is not None and found not in files
    ]
    assert missing == []
