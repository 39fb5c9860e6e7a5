"""Drives one run through its life cycle on a background thread.

``spark_python_task`` runs as a local Python subprocess in its own process group (so cancelling kills its
children too); ``notebook_task`` and ``python_wheel_task`` are simulated: they succeed after a short delay.
Tasks run one after another in list order (``depends_on`` is ignored); the first failure skips the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from devstack.databricks_emulator.faults import RunFault
from devstack.databricks_emulator.records import (
    CANCELED_BY_USER,
    SUCCEEDED,
    TASK_FAILED,
    UPSTREAM_FAILED,
    Outcome,
    RunRecord,
    TaskRun,
)

logger = logging.getLogger(__name__)

_REFERENCE = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")
_TAIL_BYTES = 64 * 1024  # how much of stderr becomes error_trace


@dataclass(frozen=True)
class RunnerConfig:
    python: str  # the interpreter that runs spark_python_task files
    scratch_dir: Path  # per-emulator directory for logs and working directories
    workspace_root: Path | None  # local stand-in for dbfs:/ and workspace paths
    setup_delay: float  # seconds a run stays PENDING ("cluster start")
    simulated_task_seconds: float  # how long notebook and wheel tasks "run"
    max_log_bytes: int  # get-output returns at most this many bytes of logs (the tail)


def resolve_python_file(python_file: str, workspace_root: Path | None) -> Path:
    """Map a task's ``python_file`` to a local file.

    ``file:`` URLs and existing absolute paths are used as they are; ``dbfs:/x`` maps to
    ``<workspace_root>/dbfs/x`` (like the ``/dbfs`` mount on a cluster) and any other path
    (``/Workspace/...``, ``/Volumes/...``, relative Git paths) to ``<workspace_root>/<path>``.
    """
    if python_file.startswith("file:"):
        path = Path(unquote(urlsplit(python_file).path))
    elif python_file.startswith("dbfs:"):
        path = _under_root(workspace_root, "dbfs/" + python_file[len("dbfs:") :].lstrip("/"), python_file)
    elif Path(python_file).is_absolute() and Path(python_file).is_file():
        path = Path(python_file)
    else:
        path = _under_root(workspace_root, python_file.lstrip("/"), python_file)
    if not path.is_file():
        raise FileNotFoundError(f"{python_file} does not exist (looked for {path})")
    return path


def _under_root(root: Path | None, relative: str, original: str) -> Path:
    if root is None:
        raise FileNotFoundError(f"{original} is not a local file and the emulator has no workspace_root")
    return root / relative


def env_name(parameter: str) -> str:
    return "DATABRICKS_JOB_PARAM_" + re.sub(r"[^A-Z0-9_]", "_", parameter.upper())


def substitute_references(value: str, run: RunRecord, task: TaskRun) -> str:
    """Resolve the dynamic value references the emulator knows; leave any other ``{{...}}`` untouched."""
    known = {
        "job.id": str(run.job_id),
        "job.run_id": str(run.run_id),
        "task.run_id": str(task.run_id),
        "task.name": task.task_key,
    }
    known.update({f"job.parameters.{p['name']}": p["value"] for p in run.job_parameters})
    return _REFERENCE.sub(lambda m: known.get(m.group(1), m.group(0)), value)


def build_command(
    python: str, script: Path, run: RunRecord, task: TaskRun
) -> tuple[list[str], dict[str, str]]:
    """argv: the task's parameters, then one ``--name=value`` per job parameter; env: one variable each."""
    own = [
        substitute_references(str(p), run, task) for p in task.spec["spark_python_task"].get("parameters", [])
    ]
    from_job = [f"--{p['name']}={p['value']}" for p in run.job_parameters]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # unbuffered: a cancelled process loses no printed output
    env.update({env_name(p["name"]): p["value"] for p in run.job_parameters})
    return [python, str(script), *own, *from_job], env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # The process leads its own session (start_new_session), so its group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows has no process groups of this kind
            process.kill()


def _tail(path: Path | None, limit: int) -> tuple[str, bool]:
    if path is None or not path.exists():
        return "", False
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - limit))
        return f.read().decode("utf-8", errors="replace"), size > limit


def read_logs(task: TaskRun, limit: int) -> tuple[str, bool]:
    """stdout then stderr, as one text; truncated to the last ``limit`` bytes like Databricks' 5 MB cap."""
    out, out_cut = _tail(task.stdout_path, limit)
    err, err_cut = _tail(task.stderr_path, limit)
    text = out + err
    encoded = text.encode("utf-8")
    if len(encoded) > limit:
        return encoded[-limit:].decode("utf-8", errors="replace"), True
    return text, out_cut or err_cut


def read_error_trace(task: TaskRun) -> str:
    return _tail(task.stderr_path, _TAIL_BYTES)[0]


class RunDriver:
    """Owns one run's thread and, while a task executes, its process."""

    def __init__(
        self, run: RunRecord, fault: RunFault | None, config: RunnerConfig, lock: threading.RLock
    ) -> None:
        self.run = run
        self._fault = fault
        self._config = config
        self._lock = lock  # the workspace lock: every record mutation happens under it
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._main, name=f"emulated-run-{run.run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the run to stop; a running process group is killed at once, the thread records the outcome."""
        with self._lock:
            self.run.cancel_requested.set()
            if not self.run.life.terminal:
                self.run.life.enter("TERMINATING")
            if self._process is not None:
                _kill_group(self._process)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            self._drive()
        except Exception:  # a bug here must end the run, not leave it RUNNING forever
            logger.exception("emulated run %s crashed", self.run.run_id)
            self._finish_all(
                Outcome("FAILED", "INTERNAL_ERROR", "INTERNAL_ERROR", "Emulator error"), "INTERNAL_ERROR"
            )

    def _drive(self) -> None:
        fault = self._fault
        if fault is not None and fault.kind == "hold" and not self._wait(fault.hold_seconds):
            self._finish_all(CANCELED_BY_USER)
            return
        with self._lock:
            self._enter_all("PENDING")
        if not self._wait(self._config.setup_delay):
            self._finish_all(CANCELED_BY_USER)
        elif fault is not None and fault.kind == "fail":
            outcome = Outcome(fault.result_state, fault.code, fault.type, fault.message)
            self._finish_all(outcome, fault.life_cycle_state)
        elif fault is not None and fault.kind == "hang":
            with self._lock:
                self._enter_all("RUNNING")
            self._wait(None)
            self._finish_all(CANCELED_BY_USER)
        else:
            self._run_tasks()

    def _run_tasks(self) -> None:
        failed: TaskRun | None = None
        for task in self.run.tasks:
            outcome = UPSTREAM_FAILED if failed else self._run_task(task)
            if self.run.cancel_requested.is_set():
                outcome = CANCELED_BY_USER
            with self._lock:
                task.life.finish(outcome, "SKIPPED" if outcome is UPSTREAM_FAILED else "TERMINATED")
            if outcome.result_state != "SUCCESS" and failed is None:
                failed = task
        self._finish_all(self._run_outcome(failed))

    def _run_outcome(self, failed: TaskRun | None) -> Outcome:
        if self.run.cancel_requested.is_set():
            return CANCELED_BY_USER
        if failed is None:
            return SUCCEEDED
        assert failed.life.outcome is not None
        task_outcome = failed.life.outcome
        message = f"Task {failed.task_key} failed with message: {task_outcome.message}."
        if len(self.run.tasks) > 1:
            message += " This caused all downstream tasks to get skipped."
        return Outcome(
            task_outcome.result_state,
            task_outcome.code,
            task_outcome.type,
            message,
            task_outcome.user_cancelled_or_timedout,
        )

    def _run_task(self, task: TaskRun) -> Outcome:
        with self._lock:
            task.life.enter("PENDING")
        if task.kind == "spark_python_task":
            return self._execute_python(task)
        with self._lock:
            task.life.enter("RUNNING")
            self.run.life.enter("RUNNING")
        if not self._wait(self._config.simulated_task_seconds):
            return CANCELED_BY_USER
        return SUCCEEDED

    def _execute_python(self, task: TaskRun) -> Outcome:
        try:
            script = resolve_python_file(
                str(task.spec["spark_python_task"]["python_file"]), self._config.workspace_root
            )
        except FileNotFoundError as e:
            task.error = str(e)
            return Outcome("FAILED", "RESOURCE_NOT_FOUND", "CLIENT_ERROR", str(e))
        process = self._spawn(task, script)
        if process is None:
            return CANCELED_BY_USER
        timeout = task.spec.get("timeout_seconds") or None
        try:
            exit_code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            exit_code = process.wait()
            task.error = f"Task timed out after {timeout} seconds"
            return Outcome("TIMEDOUT", "CANCELED", "CLIENT_ERROR", task.error, True)
        finally:
            _kill_group(process)  # the "cluster" goes away: background children must not outlive the task
            with self._lock:
                self._process = None
        return self._process_outcome(task, exit_code)

    def _spawn(self, task: TaskRun, script: Path) -> subprocess.Popen[bytes] | None:
        workdir = self._config.scratch_dir / f"run-{task.run_id}"
        workdir.mkdir(parents=True, exist_ok=True)
        argv, env = build_command(self._config.python, script, self.run, task)
        task.stdout_path, task.stderr_path, task.argv = workdir / "stdout.txt", workdir / "stderr.txt", argv
        # Spawned under the lock so cancel() sees either the cancel flag first or the process to kill.
        with self._lock, task.stdout_path.open("wb") as out, task.stderr_path.open("wb") as err:
            if self.run.cancel_requested.is_set():
                return None
            process = subprocess.Popen(
                argv,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            self._process, task.pid = process, process.pid
            task.life.enter("RUNNING")
            self.run.life.enter("RUNNING")
        logger.info("run %s task %s started pid %s: %s", self.run.run_id, task.task_key, process.pid, argv)
        return process

    def _process_outcome(self, task: TaskRun, exit_code: int) -> Outcome:
        task.exit_code = exit_code
        logger.info("run %s task %s exited with %s", self.run.run_id, task.task_key, exit_code)
        if self.run.cancel_requested.is_set():
            return CANCELED_BY_USER
        if exit_code == 0:
            return SUCCEEDED
        lines = [line for line in read_error_trace(task).splitlines() if line.strip()]
        task.error = lines[-1] if lines else f"Process exited with code {exit_code}"
        return TASK_FAILED

    def _wait(self, seconds: float | None) -> bool:
        """Sleep unless cancelled (None: until cancelled); True if the run may go on."""
        return not self.run.cancel_requested.wait(seconds)

    def _enter_all(self, phase: str) -> None:
        self.run.life.enter(phase)
        for task in self.run.tasks:
            task.life.enter(phase)

    def _finish_all(self, outcome: Outcome, phase: str = "TERMINATED") -> None:
        with self._lock:
            for task in self.run.tasks:
                if task.error is None and outcome.result_state != "SUCCESS":
                    task.error = outcome.message
                task.life.finish(outcome, phase)
            self.run.life.finish(outcome, phase)
        logger.info("run %s ended %s (%s)", self.run.run_id, outcome.result_state, outcome.code)
