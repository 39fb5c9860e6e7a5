"""A local stand-in for the Azure Functions host: serves the functions registered in `function_app.py`.

Core Tools cannot be installed here, so this host does the part of its job the
scheduler relies on, and nothing more:

* HTTP: every request under the route prefix of host.json becomes a
  `func.HttpRequest` handed to the registered HTTP function (for this app, the
  `AsgiFunctionApp` wrapper around the FastAPI app), and its `func.HttpResponse`
  is sent back. The request goes through the same `AsgiMiddleware` as in Azure.
  This app's prefix is empty (the FastAPI routes carry `/api` themselves), so every
  path reaches FastAPI, which answers 404 problem+json for a path it does not know.
* Timers: the registered timer functions are called on a short local interval.
* Queues: with no Service Bus configured, messages go to `ServiceBusTwin`, an
  in-process twin of the deployed queues (duplicate detection, peek-lock, immediate
  redelivery, dead-lettering), and are delivered to the registered Service Bus
  functions as the host would: completed when the function returns, abandoned when
  it raises.
* Event Grid: events (locally: BlobCreated from devstack/blob_events.py, which watches
  Azurite's Blob service) are delivered to the registered Event Grid functions as
  `func.EventGridEvent`s, at least once: a function that raises gets the event again
  after a backoff, and after a few tries it is dead-lettered (logged and kept).
* Settings: `local.settings.json` (or the sample) `Values` become environment
  variables, as Core Tools does; variables already set win.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.meta import Datum
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from devstack.service_bus_twin import Delivery, ServiceBusTwin

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent


def load_local_settings(root: Path = ROOT) -> dict[str, str]:
    """Apply local.settings.json (else the sample) to os.environ without overriding; return what applied."""
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = root / name
        if path.exists():
            values: Mapping[str, Any] = json.loads(path.read_text()).get("Values", {})
            applied = {}
            for key, value in values.items():
                if key not in os.environ and value not in (None, ""):
                    os.environ[key] = str(value)
                    applied[key] = str(value)
            return applied
    return {}


def route_prefix(root: Path = ROOT) -> str:
    """host.json's `extensions.http.routePrefix` as a path prefix: `"api"` -> `"/api"`, `""` -> `""`.

    The host's default, when the setting is absent, is `api`.
    """
    host = json.loads((root / "host.json").read_text())
    prefix = str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api")).strip("/")
    return "/" + prefix if prefix else ""


class LocalContext(func.Context):
    """What the Functions worker passes as `context`: ids and names, no tracing."""

    def __init__(self, function_name: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(ROOT)

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def functions_by_trigger(app: func.FunctionRegister) -> dict[str, list[Any]]:
    """The registered functions grouped by trigger type (httpTrigger, timerTrigger, serviceBusTrigger,
    eventGridTrigger)."""
    groups: dict[str, list[Any]] = {}
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        groups.setdefault(trigger.get_binding_name() if trigger else "none", []).append(fn)
    return groups


class HttpHost:
    """An ASGI app that forwards each request to the registered HTTP function, as the host does.

    `prefix` is what `route_prefix()` returns: with `""` every path goes to the function;
    otherwise only paths under the prefix do, and the others get a plain 404.
    """

    def __init__(self, app: func.FunctionRegister, http_function: Any, prefix: str) -> None:
        self.app = app
        self.name = http_function.get_function_name()
        self.handler = http_function.get_user_function()
        self.prefix = prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        if not self.routes(path):
            await _send(
                send, 404, [(b"content-type", b"text/plain")], b"Not found (outside the route prefix)"
            )
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for raw_key, raw_value in scope["headers"]:
            key, value = raw_key.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        host = headers.get("host", "127.0.0.1")
        query = scope.get("query_string", b"").decode("latin-1")
        request = func.HttpRequest(
            method=scope["method"],
            url=f"http://{host}{path}" + (f"?{query}" if query else ""),
            headers=headers,
            params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params={"route": path[len(self.prefix) :].lstrip("/")},
            body=body,
        )
        response: func.HttpResponse = await self.handler(request, LocalContext(self.name))
        out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        if response.mimetype and not any(k == b"content-type" for k, _ in out):
            out.append((b"content-type", response.mimetype.encode("latin-1")))
        await _send(send, response.status_code, out, response.get_body())

    def routes(self, path: str) -> bool:
        """Whether the host hands `path` to the function: all paths with an empty prefix."""
        return not self.prefix or path == self.prefix or path.startswith(self.prefix + "/")

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        if getattr(self.app, "startup_task_done", False):
            # AsgiFunctionApp started its ASGI app's lifespan on the first request, on this
            # event loop; end it here (its own __del__ would try at interpreter teardown).
            await self.app.middleware.notify_shutdown()  # type: ignore[attr-defined]
            self.app.startup_task_done = False  # type: ignore[attr-defined]
        await send({"type": "lifespan.shutdown.complete"})


class TimerRunner:
    """Fires the registered timer functions: the tick every `tick_seconds`, the others on their own period.

    In Azure the tick runs every minute and schedules launches ahead (lookahead); locally
    a short interval makes a one-minute lookahead unnecessary, so runs appear quickly.
    """

    def __init__(self, timer_functions: list[Any], tick_seconds: float, other_seconds: float) -> None:
        self.functions = [
            (fn, tick_seconds if fn.get_function_name() == "tick" else other_seconds)
            for fn in timer_functions
        ]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        next_at = {fn.get_function_name(): time.monotonic() for fn, _ in self.functions}
        while not self._stop.is_set():
            now = time.monotonic()
            for fn, period in self.functions:
                name = fn.get_function_name()
                if now >= next_at[name]:
                    next_at[name] = now + period
                    try:
                        fn.get_user_function()(TimerRequest(past_due=False))
                    except Exception:
                        log.exception("timer function %s failed", name)
            self._stop.wait(0.2)


class QueueDispatcher:
    """Delivers the twin's messages to the registered Service Bus functions, as the Functions host does.

    Like the host (host.json: prefetchCount 0, maxConcurrentCalls 16) it locks no more
    messages than it has idle workers, so none waits in a local backlog while its lock
    runs out. A function that returns completes its message (autoCompleteMessages); one
    that raises abandons it, and the twin delivers it again at once with a higher
    delivery count, dead-lettering it past the max delivery count, as deployed. Messages
    on a queue no function listens on stay in the twin.
    """

    IDLE_WAIT_SECONDS = 0.5  # also how soon a FixedClock moved by a test is noticed

    def __init__(self, broker: ServiceBusTwin, queue_functions: list[Any], workers: int = 16) -> None:
        self.broker = broker
        self.handlers = {self._queue_name(fn): fn for fn in queue_functions}
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="queue")
        self._idle = threading.Condition()
        self._busy = 0  # deliveries handed to the pool and not yet settled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)

    @staticmethod
    def _queue_name(fn: Any) -> str:
        name = str(fn.get_trigger().queue_name)
        if name.startswith("%") and name.endswith("%"):  # an app-setting reference, as the host resolves it
            name = os.environ.get(name.strip("%"), name.strip("%"))
        return name

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.broker.wake()
        with self._idle:
            self._idle.notify_all()
        self._thread.join(timeout=30)
        # Nothing waits in the pool (see _free_workers); what runs finishes and is settled.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        queues = list(self.handlers)
        turn = 0
        while not self._stop.is_set():
            free = self._free_workers()
            if free == 0:
                continue
            received = 0
            # Start with a different queue each round, so a busy queue cannot starve the others.
            for queue in queues[turn:] + queues[:turn]:
                for delivery in self.broker.receive(limit=free - received, queue=queue):
                    self._submit(delivery)
                    received += 1
            turn = (turn + 1) % max(len(queues), 1)
            if received == 0:
                delay = self._seconds_until_visible()
                if delay > 0:
                    self.broker.wait(delay)

    def _free_workers(self) -> int:
        with self._idle:
            self._idle.wait_for(lambda: self._busy < self.workers or self._stop.is_set())
            return 0 if self._stop.is_set() else self.workers - self._busy

    def _seconds_until_visible(self) -> float:
        """Seconds until a message on a queue with a function is visible (0: now), at most the idle wait."""
        times = [t for q in self.handlers if (t := self.broker.next_visible_at(q)) is not None]
        if not times:
            return self.IDLE_WAIT_SECONDS
        delay = (min(times) - self.broker.clock.now()).total_seconds()
        return min(self.IDLE_WAIT_SECONDS, max(0.0, delay))

    def _submit(self, delivery: Delivery) -> None:
        with self._idle:
            self._busy += 1
        self._pool.submit(self._deliver, delivery)

    def _deliver(self, delivery: Delivery) -> None:
        try:
            self._invoke(delivery)
        except Exception:  # not the function's failure (that abandons): the lock will expire
            log.exception("delivering message %s on %s failed", delivery.message_id, delivery.queue)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _invoke(self, delivery: Delivery) -> None:
        fn = self.handlers[delivery.queue]
        message = ServiceBusMessage(
            body=json.dumps(delivery.body).encode(),
            message_id=delivery.message_id,
            delivery_count=delivery.delivery_count,
            sequence_number=delivery.sequence_number,
            lock_token=delivery.lock_token,
            application_properties=dict(delivery.properties),
            user_properties=dict(delivery.properties),
            scheduled_enqueue_time_utc=delivery.enqueued_for,
            content_type="application/json",
        )
        try:
            fn.get_user_function()(message)
        except Exception:
            log.exception("function %s failed (delivery %d)", fn.get_function_name(), delivery.delivery_count)
            settled = self.broker.abandon(delivery)
        else:
            settled = self.broker.complete(delivery)
        if not settled:
            # The host logs Service Bus's MessageLockLostError: the message was (or will be) redelivered.
            log.warning(
                "function %s outlived the lock on message %s (delivery %d); it will be delivered again",
                fn.get_function_name(),
                delivery.message_id,
                delivery.delivery_count,
            )


def event_grid_event(event: Mapping[str, Any]) -> func.EventGridEvent:
    """An event in Event Grid's schema as the Python worker hands it to a function: decoded by the
    worker's own converter (so `eventTime` is parsed as in Azure, seven fractional digits and all)."""
    decoded = EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={})
    assert isinstance(decoded, func.EventGridEvent), "not an Event Grid schema event"
    return decoded


@dataclass(frozen=True)
class DeadLetter:
    """An event a function failed on every try (Event Grid writes it to the dead-letter container)."""

    event: Mapping[str, Any]
    function: str
    attempts: int
    error: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class _Delivery:
    event: Mapping[str, Any]
    function: Any
    attempt: int = 1


class EventGridDispatcher:
    """Delivers events to the registered Event Grid functions, as Event Grid and the Functions host do.

    `publish(event)` hands the event (Event Grid's schema) to every eventGridTrigger function (as
    if each had its own subscription) on a pool of `workers` threads. At least once: a function
    that raises gets the same event again after a backoff; after `len(retry_delays) + 1` tries the
    event is dead-lettered: logged and kept in `dead_letters`. Event Grid retries for up to 24 h
    (10 s, 30 s, 1 min, 5 min, ...); locally the default is 1, 2, 4 and 8 s: five tries within
    about 15 s, so a failure shows while you watch. A retry waits on a timer, not on a worker.
    Events still waiting for a retry when the dispatcher stops are dropped (and logged).
    """

    RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)

    def __init__(
        self, functions: Iterable[Any], workers: int = 8, retry_delays: Sequence[float] = RETRY_DELAYS
    ) -> None:
        self.functions = list(functions)
        self.retry_delays = tuple(retry_delays)
        self.dead_letters: list[DeadLetter] = []
        self.delivered = 0  # calls that returned
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="eventgrid")
        self._cond = threading.Condition()
        self._retries: list[tuple[float, int, _Delivery]] = []  # (due, order, delivery): a heap
        self._order = itertools.count()
        self._unsettled = 0  # deliveries not yet returned or dead-lettered
        self._stopping = False
        self._thread = threading.Thread(target=self._run_retries, name="eventgrid-retries", daemon=True)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    def start(self) -> EventGridDispatcher:
        self._thread.start()
        return self

    def publish(self, event: Mapping[str, Any]) -> None:
        """Deliver `event` to every Event Grid function (returns at once)."""
        for fn in self.functions:
            with self._cond:
                if self._stopping:
                    log.warning("event %s arrived while stopping: not delivered", event.get("id"))
                    return
                self._unsettled += 1
            try:
                self._pool.submit(self._deliver, _Delivery(event, fn))
            except RuntimeError:  # the pool shut down in between: stopping
                log.warning("event %s arrived while stopping: not delivered", event.get("id"))
                with self._cond:
                    self._settle()

    def wait_until_settled(self, timeout: float) -> bool:
        """Whether every delivery so far returned or was dead-lettered within `timeout` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._unsettled == 0, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            dropped = len(self._retries)
            self._retries.clear()
            self._unsettled -= dropped
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        if dropped:
            log.warning("stopped with %d event deliveries waiting for a retry: dropped", dropped)

    def _run_retries(self) -> None:
        while True:
            with self._cond:
                due = None
                while due is None:
                    if self._stopping:
                        return
                    wait = self._retries[0][0] - time.monotonic() if self._retries else None
                    if wait is not None and wait <= 0:
                        due = heapq.heappop(self._retries)[2]
                    else:
                        self._cond.wait(wait)
            self._pool.submit(self._deliver, due)

    def _deliver(self, delivery: _Delivery) -> None:
        fn, event = delivery.function, delivery.event
        name = fn.get_function_name()
        log.info(
            "delivering %s %s to %s (event %s, attempt %d)",
            str(event.get("eventType", "")).rpartition(".")[2],
            event.get("subject"),
            name,
            event.get("id"),
            delivery.attempt,
        )
        try:
            fn.get_user_function()(event_grid_event(event))
        except Exception as err:
            self._failed(delivery, name, err)
            return
        with self._cond:
            self.delivered += 1
            self._settle()

    def _failed(self, delivery: _Delivery, name: str, err: Exception) -> None:
        event_id = delivery.event.get("id")
        with self._cond:
            if delivery.attempt <= len(self.retry_delays) and not self._stopping:
                delay = self.retry_delays[delivery.attempt - 1]
                again = _Delivery(delivery.event, delivery.function, delivery.attempt + 1)
                heapq.heappush(self._retries, (time.monotonic() + delay, next(self._order), again))
                self._cond.notify_all()
                log.warning(
                    "function %s failed on event %s (attempt %d): %s; delivering it again in %gs",
                    name,
                    event_id,
                    delivery.attempt,
                    err,
                    delay,
                    exc_info=err if delivery.attempt == 1 else None,  # the traceback once
                )
                return
            if self._stopping:
                log.warning("function %s failed on event %s while stopping: dropped", name, event_id)
            else:
                self.dead_letters.append(DeadLetter(delivery.event, name, delivery.attempt, repr(err)))
                log.error(
                    "function %s failed on event %s %d times: dead-lettered (%s)",
                    name,
                    event_id,
                    delivery.attempt,
                    err,
                )
            self._settle()

    def _settle(self) -> None:  # with self._cond held
        self._unsettled -= 1
        self._cond.notify_all()


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
