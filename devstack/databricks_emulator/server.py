"""The HTTP side: a loopback ``ThreadingHTTPServer`` and the :class:`Emulator` facade tests use.

``/api/2.2/jobs/...`` (and the ``/api/2.1/`` alias) go to the emulated workspace after the bearer-token
check and any injected faults; ``/emulator/...`` is the unauthenticated control API; and
``/.well-known/databricks-config`` answers the discovery probe every databricks-sdk ``Config()`` sends.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.databricks_emulator.errors import ApiError, invalid_parameter
from devstack.databricks_emulator.faults import FaultBook, HttpFault, RunFault, SlowFault
from devstack.databricks_emulator.runner import RunnerConfig
from devstack.databricks_emulator.workspace import RunInfo, Workspace

logger = logging.getLogger(__name__)

WORKSPACE_ID = "1234567890123456"
_API_PATH = re.compile(r"^/api/2\.[12]/(.+?)/?$")
_PROBE = ".well-known/databricks-config"
_LOOPBACK = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(error: ApiError) -> Response:
    return Response(error.status, error.body(), error.headers)


class Emulator:
    """A local stand-in for the Databricks Jobs API 2.2 (development and tests only; never deployed).

    It executes the ``python_file`` of ``spark_python_task`` runs with local Python, so it only listens on
    127.0.0.1. Use as a context manager, or ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        setup_delay: float = 0.2,
        simulated_task_seconds: float = 0.2,
        workspace_root: str | Path | None = None,
        max_log_bytes: int = 5 * 1024 * 1024,
        python: str = sys.executable,
        user_name: str = "dev@emulator.local",
    ) -> None:
        if host not in _LOOPBACK:
            raise ValueError(
                f"the emulator runs code on request, so it only listens on loopback, not {host!r}"
            )
        self._address = (_LOOPBACK[host], port)
        self._scratch = Path(tempfile.gettempdir()) / f"databricks-emulator-{uuid.uuid4().hex[:12]}"
        config = RunnerConfig(
            python=python,
            scratch_dir=self._scratch,
            workspace_root=Path(workspace_root).resolve() if workspace_root is not None else None,
            setup_delay=setup_delay,
            simulated_task_seconds=simulated_task_seconds,
            max_log_bytes=max_log_bytes,
        )
        self.faults = FaultBook()
        self.workspace = Workspace(config, self.faults, user_name)
        self._operations = self.workspace.operations()
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._server = _Server(self._address, self)
        self.workspace.base_url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="databricks-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("Databricks emulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Kill every run's processes, close the socket and open connections, delete the scratch files."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # no new requests (so no new runs) from here on
        self.workspace.shutdown()
        if server is not None:
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- fault injection --------------------------------------------------------------------------------

    def fail_requests(
        self,
        endpoint: str = "*",
        *,
        status: int = 429,
        times: int = 1,
        retry_after: int | None = None,
        message: str | None = None,
        error_code: str | None = None,
    ) -> HttpFault:
        """The next ``times`` requests to ``endpoint`` answer ``status`` (429/503 carry ``Retry-After``)."""
        return self.faults.add_http(
            endpoint,
            status=status,
            times=times,
            retry_after=retry_after,
            message=message,
            error_code=error_code,
        )

    def slow_requests(self, endpoint: str = "*", *, delay: float, times: int | None = None) -> SlowFault:
        """Delay the next ``times`` requests to ``endpoint`` (None: all of them) by ``delay`` seconds."""
        return self.faults.add_slow(endpoint, delay=delay, times=times)

    def fail_runs(
        self,
        *,
        code: str = "CLUSTER_ERROR",
        type: str = "CLOUD_FAILURE",
        message: str | None = None,
        life_cycle_state: str = "TERMINATED",
        result_state: str = "FAILED",
        times: int = 1,
    ) -> RunFault:
        """The next ``times`` new runs end after setup with this termination, executing nothing."""
        fault = RunFault(
            "fail", times, code=code, type=type, life_cycle_state=life_cycle_state, result_state=result_state
        )
        if message is not None:
            fault.message = message
        return self.faults.add_run(fault)

    def hang_runs(self, *, times: int = 1) -> RunFault:
        """The next ``times`` new runs stay RUNNING (executing nothing) until cancelled."""
        return self.faults.add_run(RunFault("hang", times))

    def hold_runs(self, *, state: str = "QUEUED", seconds: float | None = None, times: int = 1) -> RunFault:
        """The next ``times`` new runs show ``state`` (QUEUED, BLOCKED or WAITING_FOR_RETRY) for ``seconds``
        (None: until cancelled), then run normally."""
        return self.faults.add_run(RunFault("hold", times, hold_state=state, hold_seconds=seconds))

    def reset(self) -> None:
        """Forget jobs, runs, tokens, call counts and faults (killing any running process)."""
        self.workspace.shutdown()
        self.faults.clear()
        with self._calls_lock:
            self._calls.clear()

    # --- inspection -------------------------------------------------------------------------------------

    def runs(self) -> list[RunInfo]:
        return self.workspace.snapshot()

    def starts_for_token(self, token: str) -> int:
        """How many runs this idempotency token started (Databricks semantics: at most one)."""
        return self.workspace.starts_for_token(token)

    def requests_for_token(self, token: str) -> int:
        """How many run-now/submit requests carried this idempotency token."""
        return self.workspace.requests_for_token(token)

    @property
    def calls(self) -> dict[str, int]:
        """Requests per endpoint (``jobs/runs/get``...), rejected and faulted ones included, plus
        ``.well-known/databricks-config`` (the probe each new SDK client sends)."""
        with self._calls_lock:
            return dict(self._calls)

    def state(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "faults": self.faults.describe(),
            "runs": [asdict(info) for info in self.runs()],
            "tokens": self.workspace.tokens(),
        }

    # --- request handling (transport-independent) -------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes) -> Response:
        split = urlsplit(target)
        if split.path.startswith("/emulator/"):
            return self._control(method, split.path, raw_body)
        if split.path == "/.well-known/databricks-config":
            # The unauthenticated discovery probe every SDK Config() sends: counted, because it is a real
            # round trip per client in production too; answered, so the SDK logs no warning per client.
            self._count(_PROBE)
            return Response(200, {"workspace_id": WORKSPACE_ID})
        match = _API_PATH.match(split.path)
        if match is None:
            return _error(ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} {split.path}'"))
        endpoint = match.group(1)
        self._count(endpoint)
        try:
            return Response(200, self._call(method, endpoint, split.query, headers, raw_body))
        except ApiError as e:
            return _error(e)
        except Exception:
            logger.exception("emulator error on %s %s", method, target)
            return _error(ApiError(500, "INTERNAL_ERROR", "The Databricks emulator failed; see its log."))

    def _count(self, endpoint: str) -> None:
        with self._calls_lock:
            self._calls[endpoint] += 1

    def _call(
        self, method: str, endpoint: str, query: str, headers: Mapping[str, str], raw_body: bytes
    ) -> dict[str, Any]:
        _authenticate(headers)
        delay = self.faults.take_delay(endpoint)
        if delay:
            time.sleep(delay)
        fault = self.faults.take_http(endpoint)
        if fault is not None:
            logger.info("injecting HTTP %s on %s", fault.status, endpoint)
            raise fault.to_error()
        operation = self._operations.get((method, endpoint))
        if operation is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /api/2.2/{endpoint}'")
        return operation(_parse_params(method, query, raw_body))

    def _control(self, method: str, path: str, raw_body: bytes) -> Response:
        try:
            if (method, path) == ("GET", "/emulator/state"):
                return Response(200, self.state())
            if (method, path) == ("POST", "/emulator/reset"):
                self.reset()
                return Response(200, {})
            if (method, path) == ("POST", "/emulator/faults"):
                self._add_fault(_parse_params("POST", "", raw_body))
                return Response(200, self.faults.describe())
        except ApiError as e:
            return _error(e)
        return _error(ApiError(404, "ENDPOINT_NOT_FOUND", f"No emulator API for '{method} {path}'"))

    def _add_fault(self, spec: Mapping[str, Any]) -> None:
        adders: dict[str, Callable[..., object]] = {
            "http_error": self.fail_requests,
            "slow": self.slow_requests,
            "run_failure": self.fail_runs,
            "run_hang": self.hang_runs,
            "run_hold": self.hold_runs,
        }
        options = dict(spec)
        adder = adders.get(str(options.pop("kind", "")))
        if adder is None:
            raise invalid_parameter(f"kind must be one of {sorted(adders)}")
        try:
            adder(**options)
        except (TypeError, ValueError) as e:
            raise invalid_parameter(str(e)) from None


def _authenticate(headers: Mapping[str, str]) -> None:
    # Any bearer token is fine; a missing one is what a misconfigured client looks like.
    auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
        raise ApiError(
            401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API."
        )


def _parse_params(method: str, query: str, raw_body: bytes) -> dict[str, Any]:
    if method == "GET":
        return {k: v[-1] for k, v in parse_qs(query).items()}
    if not raw_body.strip():
        return {}
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise ApiError(400, "MALFORMED_REQUEST", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "Request body must be a JSON object.")
    return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive connections would otherwise keep their handler threads waiting after stop().
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like the SDK's pooled requests session expects

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        response = self.server.emulator.handle(self.command, self.path, dict(self.headers.items()), raw_body)
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
