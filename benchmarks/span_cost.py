"""What a span costs a handler where no tracer provider is configured (no Application Insights:
the local stack, the tests), and with the OpenTelemetry SDK recording to nowhere.

    .venv/bin/python -m benchmarks.span_cost
"""

from __future__ import annotations

import sys
import timeit

from shared.telemetry import run_attributes, span, traceparent

N = 20_000


def _one() -> None:
    with span(
        "poll", traceparent("j", "s-1780315500000", 1), **run_attributes("j", "s-1780315500000", "t", 1)
    ):
        pass


def main() -> int:
    noop = timeit.timeit(_one, number=N) / N * 1e6
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())  # an SDK provider with no exporter
    sdk = timeit.timeit(_one, number=N) / N * 1e6
    print(f"one span, {N} times: no tracer configured {noop:.1f} us;", end=" ")
    print(f"OpenTelemetry SDK, no exporter {sdk:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
