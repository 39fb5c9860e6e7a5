"""Run `python -m devstack` as a child process: for end-to-end tests and benchmarks.

Starts it on a free loopback port with the given environment, waits for /api/health,
and stops it as Ctrl-C would (SIGINT to its process group), so it stops what it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping

import httpx2 as httpx

from devstack.azurite import ROOT, free_port

# Settings that would point the child at something other than what it starts itself.
_INHERITED_NOT = ("TABLES_", "AUTH_MODE", "DATABRICKS_", "ServiceBusConnection")


def emulator_env(databricks_url: str, scratch: str | os.PathLike[str]) -> dict[str, str]:
    """Settings that point a local stack at a Databricks emulator (token auth, no config file
    read from `scratch`) and poll runs every second or two: for tests and benchmarks."""
    return {
        "DATABRICKS_HOST": databricks_url,
        "DATABRICKS_AUTH": "token",
        "DATABRICKS_TOKEN": "local-token",
        "DATABRICKS_CONFIG_FILE": os.path.join(scratch, "no-config"),
        "POLL_INITIAL_SECONDS": "1",
        "POLL_MAX_SECONDS": "2",
    }


@contextlib.contextmanager
def local_stack(
    env: Mapping[str, str] | None = None,
    *,
    tick_seconds: float = 5.0,
    log_path: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The running stack and its base URL (http://127.0.0.1:<port>); its output goes to `log_path`
    (else to the file DEVSTACK_LOG names, else to a temporary file)."""
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_NOT)}
    child_env.update(env or {})
    # Azurite's Blob service on a port of its own (not 10000: stacks may run side by side).
    child_env["DEVSTACK_BLOB_PORT"] = (env or {}).get("DEVSTACK_BLOB_PORT") or str(free_port())
    keep = log_path or os.environ.get("DEVSTACK_LOG")  # a path: keep the stack's output there
    with open(keep, "w+b") if keep else tempfile.TemporaryFile() as log:  # a file: a full pipe blocks
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "--port", str(port), "--tick-seconds", str(tick_seconds)],
            cwd=ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            if not _healthy(process, base):
                log.seek(0)
                raise RuntimeError(
                    f"the local stack did not come up on {base}: {log.read().decode()[-3000:]}"
                )
            yield process, base
        finally:
            stop(process)


def _healthy(process: subprocess.Popen[bytes], base: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.2)
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the stack's process group; SIGKILL if it has not stopped in 30 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
