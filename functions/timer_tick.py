"""Timer triggers: the tick and the watchdog (each every minute, half a minute apart)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

TICK_SCHEDULE = "0 * * * * *"
WATCHDOG_SCHEDULE = "30 * * * * *"  # offset from the tick so the two do not start together


@bp.timer_trigger(arg_name="timer", schedule=TICK_SCHEDULE, run_on_startup=False, use_monitor=True)
def tick(timer: func.TimerRequest) -> None:
    """Record what is due before now + lookahead and send its launch messages."""
    if timer.past_due:
        log.warning("tick is running late; the misfire policies apply to what was missed")
    report = services().ticker.tick()
    if report.fired:
        services().warm_databricks()


@bp.timer_trigger(arg_name="timer", schedule=WATCHDOG_SCHEDULE, run_on_startup=False, use_monitor=True)
def watchdog(timer: func.TimerRequest) -> None:
    """Repair runs whose message is overdue or dead-lettered, and check long runs with Databricks."""
    services().watchdog.run_once()
