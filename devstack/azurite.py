"""Start and stop Azurite's Table or Blob service (from node_modules) on a loopback port.

Used by the local stack and by the test session. In-memory persistence, no
telemetry, 127.0.0.1 only; the process is killed with its group on stop.
`Azurite` is the Table service (the scheduler's storage); `AzuriteBlob` the Blob
service (where files land locally: devstack/blob_events.py turns new blobs into
Event Grid events).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Self

ROOT = Path(__file__).resolve().parent.parent
# Azurite's documented, public development account: not a secret.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BLOB_PORT = 10000  # Azurite's usual Blob port (what `UseDevelopmentStorage=true` means)


def _die_with_parent() -> None:
    """Linux: Azurite gets SIGTERM when the thread that started it ends (even if its process is SIGKILLed)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:`port` can be listened on now (another Azurite may hold it)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def connection_string(port: int) -> str:
    """The Table service's connection string."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def blob_connection_string(port: int) -> str:
    """The Blob service's connection string (for `BlobServiceClient.from_connection_string`)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


class _AzuriteService:
    """One Azurite service process (`azurite-<service>`); use as a context manager."""

    SERVICE: ClassVar[str]

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> Self:
        binary = ROOT / "node_modules" / ".bin" / f"azurite-{self.SERVICE}"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `make test` or `npm ci` first")
        self.process = subprocess.Popen(
            [
                str(binary),
                f"--{self.SERVICE}Host",
                "127.0.0.1",
                f"--{self.SERVICE}Port",
                str(self.port),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches us, not Azurite: we stop it in order
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, no locks taken
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"azurite-{self.SERVICE} exited with {self.process.returncode}: {err}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"azurite-{self.SERVICE} did not listen on 127.0.0.1:{self.port} in {timeout}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[Self]:
        with cls() as azurite:
            yield azurite


class Azurite(_AzuriteService):
    """A running Azurite Table service; use as a context manager."""

    SERVICE = "table"

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)


class AzuriteBlob(_AzuriteService):
    """A running Azurite Blob service; use as a context manager."""

    SERVICE = "blob"

    @property
    def connection_string(self) -> str:
        return blob_connection_string(self.port)

    @property
    def endpoint(self) -> str:
        """The account's Blob endpoint: a blob's URL is `{endpoint}/{container}/{name}`."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"
