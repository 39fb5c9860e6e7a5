"""What notifications add to a run in storage and queue sends (issue 14).

    .venv/bin/python -m benchmarks.notify_cost

The same occurrence (a one-time schedule, a run that succeeds after a few polls), from its tick to
well after its end, with the whole host loop (tests/world.py: the tick each minute, the watchdog,
every message delivered at its time) on in-memory tables that count one request per call (as the
Azure adapter's pipeline counter does) and the entities each write touches; the Service Bus
twin; the fake Databricks; a recording destination. Each case is measured against the same run
with no `notifications`, so what is printed is what notifying adds.
"""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from typing import Any

from shared.adapters.table import OperationCounter
from tests.fakes.memory_table import InMemoryTable
from tests.fakes.poster import FakePoster
from tests.world import T0, World

HOOK = {"kind": "webhook", "url": "https://hooks.example.com/x"}
CASES: dict[str, dict[str, Any] | None] = {
    "no notifications": None,
    "on_success, 1 destination": {"on_success": [HOOK]},
    "on_start + on_success, 1 each": {"on_start": [HOOK], "on_success": [HOOK]},
    "on_success, 3 destinations": {"on_success": [HOOK] * 3},
    "on_failure only (the run succeeds)": {"on_failure": [HOOK]},
    "on_success, destination down (5 tries)": {"on_success": [HOOK]},
    "duration warning not needed": {"on_duration_warning": [HOOK], "duration_warning_after": "PT1H"},
}


def measure(notifications: dict[str, Any] | None, down: bool = False) -> tuple[int, int, int]:
    counter = OperationCounter()
    poster = FakePoster(answer=(lambda url: (503, None)) if down else (lambda url: (200, None)))
    w = World(lambda name: InMemoryTable(name, counter), poster=poster)
    extra = {"notifications": notifications} if notifications else {}
    w.job(schedule={"at": "2026-06-01T12:05:00Z"}, **extra)
    counter.take()
    sent = len(w.broker.sent)
    w.run_until(T0 + timedelta(hours=2))
    requests, entities = counter.take()
    return requests, entities, len(w.broker.sent) - sent


def main() -> int:
    logging.disable(logging.ERROR)  # the failing destination's warnings are expected
    base = measure(None)
    print("what notifications add to one run (tick to two hours later), vs the same run without:")
    print(f"{'case':42} {'requests':>9} {'entities':>9} {'sends':>6}")
    for name, notifications in CASES.items():
        got = measure(notifications, down="down" in name) if notifications else base
        r, e, s = (got[i] - base[i] for i in range(3))
        print(f"{name:42} {r:>+9} {e:>+9} {s:>+6}")
    print(f"(the run without notifications: {base[0]} requests, {base[1]} entities, {base[2]} sends)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
