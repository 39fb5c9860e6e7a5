"""`python -m devstack` (what `make run` runs): Azurite + the function app on http://127.0.0.1:7071.

Azurite's Table service holds the scheduler's tables; its Blob service (`--blob-port` or
DEVSTACK_BLOB_PORT, else 10000 when free, else any free port) is where files land: blobs created
there become Event Grid BlobCreated events for the `blob_created` function, as an Event Grid
subscription on the storage account delivers them in Azure. Ctrl-C stops everything this
started; nothing is left listening.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from devstack.azurite import BLOB_PORT, ROOT, Azurite, AzuriteBlob, free_port, port_is_free
from devstack.blob_events import POLL_SETTING, BlobEventSource, poll_seconds_setting
from devstack.host import (
    EventGridDispatcher,
    HttpHost,
    QueueDispatcher,
    TimerRunner,
    functions_by_trigger,
    load_local_settings,
    route_prefix,
)
from devstack.service_bus_twin import ServiceBusTwin

log = logging.getLogger("devstack")


@contextlib.contextmanager
def databricks() -> Iterator[str]:
    """The Databricks emulator, unless DATABRICKS_HOST names a workspace to use."""
    if os.environ.get("DATABRICKS_HOST"):
        yield f"the workspace at {os.environ['DATABRICKS_HOST']}"
        return
    from devstack.databricks_emulator import Emulator

    root = ROOT / ".devstack" / "workspace"
    root.mkdir(parents=True, exist_ok=True)
    with Emulator(workspace_root=root) as emulator:
        os.environ.update(
            DATABRICKS_HOST=emulator.url,
            DATABRICKS_AUTH="token",
            DATABRICKS_TOKEN="dev-token",  # the emulator accepts any token
            DATABRICKS_CONFIG_FILE=str(root / "no-databrickscfg"),  # never read ~/.databrickscfg
        )
        yield f"the Databricks emulator on {emulator.url} (python files under {root})"


@contextlib.contextmanager
def table_storage() -> Iterator[str]:
    """Azurite, unless TABLES_CONNECTION_STRING already names a storage account to use."""
    if os.environ.get("TABLES_CONNECTION_STRING") or os.environ.get("TABLES_ENDPOINT"):
        yield "the storage account in TABLES_CONNECTION_STRING / TABLES_ENDPOINT"
        return
    with Azurite() as azurite:
        os.environ["TABLES_CONNECTION_STRING"] = azurite.connection_string
        yield f"Azurite on 127.0.0.1:{azurite.port} (in memory)"


@contextlib.contextmanager
def blob_storage(port: int | None) -> Iterator[AzuriteBlob]:
    """Azurite's Blob service on `port`; by default on 10000 (Azurite's usual port) if it is free."""
    if port is None:
        port = BLOB_PORT if port_is_free(BLOB_PORT) else free_port()
    with AzuriteBlob(port) as azurite:
        yield azurite


@contextlib.contextmanager
def file_events(
    functions: list[Any], blobs: AzuriteBlob, poll_seconds: float
) -> Iterator[EventGridDispatcher]:
    """Blobs created in `blobs` delivered as Event Grid BlobCreated events to the Event Grid `functions`,
    until the block ends (then no new events; deliveries under way finish)."""
    events = EventGridDispatcher(functions)
    source = BlobEventSource(blobs.connection_string, events.publish, poll_seconds)
    log.info(
        "blob storage: Azurite on %s (in memory); blobs created there are delivered as Event Grid "
        "BlobCreated events to %s (looked for every %gs)",
        blobs.endpoint,
        ", ".join(fn.get_function_name() for fn in functions) or "no function",
        source.poll_seconds,
    )
    log.info("blob connection string: %s", blobs.connection_string)
    log.info("upload a file: %s", upload_example(blobs.connection_string))
    events.start()
    try:
        with source:
            yield events
    finally:
        events.stop()


def upload_example(connection_string: str) -> str:
    """A shell line that uploads a small CSV to landing/sales/day1.csv (creating the container)."""
    return (
        '.venv/bin/python -c "from azure.storage.blob import BlobServiceClient as S; '
        f"c = S.from_connection_string('{connection_string}').get_container_client('landing'); "
        "c.exists() or c.create_container(); "
        "c.upload_blob('sales/day1.csv', b'id,amount\\n1,10\\n', overwrite=True)\""
    )


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVSTACK_PORT", "7071")))
    parser.add_argument(
        "--tick-seconds",
        type=float,
        default=float(os.environ.get("DEVSTACK_TICK_SECONDS", "5")),
        help="how often the tick runs locally (Azure: every minute)",
    )
    parser.add_argument(
        "--watchdog-seconds",
        type=float,
        default=float(os.environ.get("DEVSTACK_WATCHDOG_SECONDS", "60")),
        help="how often the watchdog runs locally (Azure: every minute)",
    )
    parser.add_argument(
        "--blob-port",
        type=int,
        default=int(os.environ["DEVSTACK_BLOB_PORT"]) if os.environ.get("DEVSTACK_BLOB_PORT") else None,
        help=f"Azurite's Blob service port (default: {BLOB_PORT} if free, else any free port)",
    )
    parser.add_argument(
        "--blob-poll-seconds",
        type=float,
        default=poll_seconds_setting(),
        help=f"how often new blobs are looked for ({POLL_SETTING}; Azure: Event Grid pushes them)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_local_settings()
    os.environ.setdefault("AUTH_MODE", "development")  # the local stack is not behind App Service auth
    os.environ.setdefault("CONSOLE_URL", f"http://127.0.0.1:{args.port}/console")  # links in notifications

    import uvicorn

    with table_storage() as storage, blob_storage(args.blob_port) as blobs, databricks() as workspace:
        from shared import bootstrap

        broker = ServiceBusTwin()
        bootstrap.use_local_broker(broker)  # used only when no Service Bus setting is present
        bootstrap.services().ensure_tables()
        import function_app

        triggers = functions_by_trigger(function_app.app)
        http = HttpHost(function_app.app, triggers["httpTrigger"][0], route_prefix())
        timers = TimerRunner(triggers.get("timerTrigger", []), args.tick_seconds, args.watchdog_seconds)
        dispatcher = None
        if bootstrap.services().sender is broker:
            dispatcher = QueueDispatcher(broker, triggers.get("serviceBusTrigger", []))
            queues = "the in-process Service Bus twin (duplicate detection, locks, dead letters)"
        else:
            queues = "Service Bus (its triggers need the Functions host: only sending works here)"
        log.info("table storage: %s; queues: %s", storage, queues)
        log.info("databricks: %s", workspace)
        log.info("functions: %s", ", ".join(f"{t}:{len(fs)}" for t, fs in sorted(triggers.items())))
        log.info(
            "tick every %.0fs; console on http://%s:%d/console/, API on /api (docs: /api/docs); Ctrl-C stops",
            args.tick_seconds,
            args.host,
            args.port,
        )
        config = uvicorn.Config(http, host=args.host, port=args.port, log_level="warning", lifespan="on")
        timers.start()
        if dispatcher:
            dispatcher.start()
        try:
            with (
                file_events(triggers.get("eventGridTrigger", []), blobs, args.blob_poll_seconds),
                contextlib.suppress(KeyboardInterrupt),  # uvicorn re-raises Ctrl-C after a clean shutdown
            ):
                uvicorn.Server(config).run()
        finally:
            timers.stop()
            if dispatcher:
                dispatcher.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
