"""Telemetry: Application Insights through azure-monitor-opentelemetry, and the scheduler's metrics.

The metric names are a contract with the alerts and the workbook (docs/monitoring.md).
Without APPLICATIONINSIGHTS_CONNECTION_STRING nothing is exported, and the
instruments are OpenTelemetry's no-op ones. Trace context travels in each
message's `traceparent` application property; it is derived from the run, so
every message about one occurrence belongs to the same trace.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.config import Settings

log = logging.getLogger(__name__)


def traceparent(job_id: str, run_key: str, attempt: int) -> str:
    """A W3C traceparent: one trace id per occurrence (a pipeline step's run shares its pipeline
    run's), one parent span id per run and attempt."""
    root = run_key.split(".", 1)[0]
    trace_id = hashlib.sha256(f"{job_id}/{root}".encode()).hexdigest()[:32]
    span_id = hashlib.sha256(f"{job_id}/{run_key}/a{attempt}".encode()).hexdigest()[:16]
    return f"00-{trace_id}-{span_id}-01"


@contextmanager
def span(name: str, parent: str | None, **attributes: str | int | None) -> Iterator[None]:
    """A span named `name` in the trace of the W3C traceparent `parent` (a message's), with the
    scheduler's attributes (`job_id`, `run_id`, ...) under `scheduler.`. Without a configured
    tracer provider (no Application Insights) OpenTelemetry's no-op tracer makes it free."""
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        yield  # no tracer provider was configured: nothing would be recorded
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": parent}) if parent else None
    tracer = trace.get_tracer("ml-scheduler")
    values = {f"scheduler.{k}": v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, context=context, attributes=values):
        yield


def run_attributes(job_id: str, run_key: str, tenant: str, attempt: int) -> dict[str, str | int | None]:
    """What a run's spans carry: its job, its id, its tenant, the attempt (and a step's key)."""
    _, dot, step = run_key.partition(".")
    return {
        "job_id": job_id,
        "run_id": f"{job_id}_{run_key}",
        "tenant": tenant,
        "attempt": attempt,
        "step": step.split(".", 1)[0] if dot else None,
    }


class Metrics:
    """The scheduler's instruments, created on first use."""

    @cached_property
    def _meter(self) -> Any:
        from opentelemetry import metrics

        return metrics.get_meter("ml-scheduler")

    @cached_property
    def ticks(self) -> Any:
        return self._meter.create_counter("scheduler.ticks", unit="ticks", description="timer ticks")

    @cached_property
    def occurrences_fired(self) -> Any:
        return self._meter.create_counter(
            "scheduler.occurrences_fired", unit="occurrences", description="occurrences recorded and sent"
        )

    @cached_property
    def fire_lag_ms(self) -> Any:
        return self._meter.create_histogram(
            "scheduler.fire_lag_ms", unit="ms", description="scheduled time to start of launch"
        )

    @cached_property
    def runs_finished(self) -> Any:
        return self._meter.create_counter("scheduler.runs_finished", unit="runs", description="runs ended")

    @cached_property
    def attempts(self) -> Any:
        return self._meter.create_counter(
            "scheduler.attempts", unit="attempts", description="attempts started"
        )

    @cached_property
    def polls(self) -> Any:
        return self._meter.create_counter(
            "scheduler.polls", unit="polls", description="polls of Databricks runs"
        )

    @cached_property
    def repairs(self) -> Any:
        return self._meter.create_counter(
            "scheduler.repairs",
            unit="runs",
            description="runs the watchdog repaired (a lost message re-sent) or gave up on",
        )

    @cached_property
    def deferrals(self) -> Any:
        return self._meter.create_counter(
            "scheduler.deferrals", unit="messages", description="messages put off after a passing error"
        )

    @cached_property
    def dead_letters(self) -> Any:
        return self._meter.create_counter(
            "scheduler.dead_letters", unit="messages", description="messages found dead-lettered"
        )

    @cached_property
    def deadline_missed(self) -> Any:
        return self._meter.create_counter(
            "scheduler.deadline_missed", unit="runs", description="runs unfinished at their deadline"
        )

    @cached_property
    def queue_wait_ms(self) -> Any:
        return self._meter.create_histogram(
            "scheduler.queue_wait_ms", unit="ms", description="time a run waited for a slot in its pool"
        )

    @cached_property
    def slot_releases(self) -> Any:
        return self._meter.create_counter(
            "scheduler.slot_releases", unit="slots", description="leases freed (by run ends, or the watchdog)"
        )

    @cached_property
    def events(self) -> Any:
        return self._meter.create_counter(
            "scheduler.events",
            unit="events",
            description="events handled, by outcome (started, joined, duplicate, unwatched, rejected, ...)",
        )

    @cached_property
    def notifications(self) -> Any:
        return self._meter.create_counter(
            "scheduler.notifications",
            unit="notifications",
            description="notification delivery tries, by outcome (delivered, retried, failed, not_needed)",
        )


metrics = Metrics()


def configure(settings: Settings) -> bool:
    """Send logs, traces and metrics to Application Insights, authenticated as the app's identity."""
    if not settings.applicationinsights_connection_string:
        return False
    from azure.identity import ManagedIdentityCredential
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(
        connection_string=settings.applicationinsights_connection_string,
        credential=ManagedIdentityCredential(client_id=settings.azure_client_id),
        logger_name="shared",
    )
    log.info("telemetry to Application Insights configured")
    return True
