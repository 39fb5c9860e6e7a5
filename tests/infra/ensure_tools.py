"""Install the infrastructure check tools into `.venv-infra`, once.

checkov pins many packages of its own, so it lives in a virtualenv of its own rather than in
`.venv` (requirements-dev.txt). The infra tests call `ensure()` from a session fixture: it
creates `.venv-infra` from `requirements-infra.txt` when missing or when that file changed,
and returns at once otherwise. Lines of the file marked `# isolated: <requirement>` are
installed into their own `--target` directory instead (upstream python-hcl2, whose `hcl2`
module would clash with checkov's fork).

Run it by hand to prepare the tools ahead of a test run:

    .venv/bin/python tests/infra/ensure_tools.py
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-infra.txt"
VENV = Path(os.environ.get("INFRA_VENV", ROOT / ".venv-infra"))
ISOLATED_MARK = "# isolated:"
PIP_FLAGS = ["--disable-pip-version-check", "--no-input", "--quiet"]


@dataclass(frozen=True, slots=True)
class Tools:
    """Where the installed tools are."""

    python: Path
    checkov: Path
    hcl2_path: Path  # put first on PYTHONPATH to import upstream python-hcl2


def _tools() -> Tools:
    return Tools(
        python=VENV / "bin" / "python",
        checkov=VENV / "bin" / "checkov",
        hcl2_path=VENV / "python-hcl2",
    )


def _isolated_requirements(text: str) -> list[str]:
    return [
        line.split(ISOLATED_MARK, 1)[1].strip()
        for line in text.splitlines()
        if line.strip().startswith(ISOLATED_MARK)
    ]


def _fingerprint(text: str) -> str:
    return hashlib.sha256(f"{sys.version}\n{text}".encode()).hexdigest()


def _run(args: list[str | Path]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise RuntimeError(
            f"installing the infra tools failed ({' '.join(map(str, args[:4]))} ...):\n{output}\n"
            "They come from PyPI; run `.venv/bin/python tests/infra/ensure_tools.py` to retry."
        )


def ensure() -> Tools:
    """Install the tools if `.venv-infra` is missing or stale; return their paths."""
    text = REQUIREMENTS.read_text()
    fingerprint = _fingerprint(text)
    tools = _tools()
    stamp = VENV / ".installed"
    VENV.mkdir(parents=True, exist_ok=True)
    # A lock, so that two test sessions starting together do not install over each other.
    with open(VENV / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == fingerprint and tools.checkov.exists():
            return tools
        stamp.unlink(missing_ok=True)
        if not tools.python.exists():
            _run([sys.executable, "-m", "venv", VENV])
        # Keep the virtualenv out of git without touching the project's .gitignore.
        (VENV / ".gitignore").write_text("*\n")
        _run([tools.python, "-m", "pip", "install", *PIP_FLAGS, "-r", REQUIREMENTS])
        shutil.rmtree(tools.hcl2_path, ignore_errors=True)
        isolated = _isolated_requirements(text)
        if isolated:
            _run([tools.python, "-m", "pip", "install", *PIP_FLAGS, "--target", tools.hcl2_path, *isolated])
        stamp.write_text(fingerprint)
    return tools


if __name__ == "__main__":
    installed = ensure()
    print(f"checkov: {installed.checkov}")
    print(f"python:  {installed.python}")
    print(f"python-hcl2 (isolated): {installed.hcl2_path}")
