"""One trace per occurrence (issue 14, traces): the tick's `fire`, each `launch` and each `poll` are
spans in the trace id that the occurrence's messages carry (a pipeline's steps in their pipeline
run's), with the job id and run id as attributes. Proven with OpenTelemetry's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import traceparent
from tests.conftest import TableFactory
from tests.integration.test_pipelines import pipeline, step, world
from tests.world import T0, World

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the process's first: set it once (OpenTelemetry's rule)
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_scheduler_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._scheduler_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def trace_id_of(job_id: str, run_key: str) -> int:
    return int(traceparent(job_id, run_key, 1).split("-")[1], 16)


def by_trace(finished: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in finished if s.context is not None and s.context.trace_id == trace_id]


def test_an_occurrence_is_one_trace_from_the_tick_to_its_end(
    table_factory: TableFactory, spans: InMemorySpanExporter
) -> None:
    w = World(table_factory)
    w.s.ensure_tables()
    hook = {"kind": "webhook", "url": "https://hooks.example.com/x"}
    job = w.job(schedule={"at": "2026-06-01T12:05:00Z"}, notifications={"on_success": [hook]})
    w.run_until(T0 + timedelta(minutes=10))
    run = w.run(job)
    assert run.state.value == "SUCCEEDED"
    mine = by_trace(spans.get_finished_spans(), trace_id_of(job.id, run.run_key))
    names = [s.name for s in mine]
    assert names[0] == "fire" and names.count("launch") == 1 and names.count("poll") >= 1, names
    assert names.count("notify") == 1 and names.count("notify.post") == 1  # its success, delivered
    assert set(names) <= {"fire", "launch", "poll", "notify", "notify.post"}
    for s in mine:
        attributes = dict(s.attributes or {})
        assert attributes["scheduler.job_id"] == job.id
        assert attributes["scheduler.run_id"] == run.id
        assert attributes["scheduler.tenant"] == job.tenant
        assert s.parent is not None  # under the context the message carried (a post: its handler's)
        assert s.parent.is_remote or s.name == "notify.post"
    other = w.job(name="other", schedule={"at": "2026-06-01T12:15:00Z"})
    w.run_until(T0 + timedelta(minutes=20))
    assert by_trace(spans.get_finished_spans(), trace_id_of(other.id, w.run(other).run_key)) != []
    assert trace_id_of(other.id, w.run(other).run_key) != trace_id_of(job.id, run.run_key)


def test_a_pipelines_steps_are_spans_in_its_runs_trace(
    table_factory: TableFactory, spans: InMemorySpanExporter
) -> None:
    w = world(table_factory)
    job = pipeline(w, [step("a", 1), step("b", 2, "a")])
    w.run_until(T0 + timedelta(minutes=15))
    parent = w.run(job)
    assert parent.state.value == "SUCCEEDED"
    mine = by_trace(spans.get_finished_spans(), trace_id_of(job.id, parent.run_key))
    steps = {dict(s.attributes or {}).get("scheduler.step") for s in mine if s.name == "launch"}
    assert steps == {None, "a", "b"}  # the pipeline run's launch, then each step's
    assert {dict(s.attributes or {})["scheduler.run_id"] for s in mine} == {
        parent.id,
        f"{parent.id}.a",
        f"{parent.id}.b",
    }
