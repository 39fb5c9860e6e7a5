"""``python -m devstack.databricks_emulator --port 8089``: run the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from devstack.databricks_emulator.server import Emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Databricks Jobs API 2.2 emulator (development only).")
    parser.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    parser.add_argument("--workspace-root", help="local directory standing in for dbfs:/ and workspace paths")
    parser.add_argument("--setup-delay", type=float, default=0.2, help="seconds a run stays PENDING")
    parser.add_argument(
        "--simulated-task-seconds", type=float, default=0.2, help="notebook/wheel task duration"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    with Emulator(
        port=args.port,
        workspace_root=args.workspace_root,
        setup_delay=args.setup_delay,
        simulated_task_seconds=args.simulated_task_seconds,
    ) as emulator:
        # Flushed at once so a parent process can read the URL before anything else.
        print(f"Databricks emulator (development only) on {emulator.url}", flush=True)
        # A timed wait: a signal delivered to another thread would not wake an untimed one promptly.
        while not stopping.wait(0.2):
            pass


if __name__ == "__main__":
    main()
