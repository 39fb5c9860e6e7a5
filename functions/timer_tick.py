"""Timer triggers: the tick (every minute) and the reconcile (every five minutes)."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import services

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)

TICK_SCHEDULE = "0 * * * * *"
RECONCILE_SCHEDULE = "30 */5 * * * *"  # offset from the tick so the two do not start together


@bp.timer_trigger(arg_name="timer", schedule=TICK_SCHEDULE, run_on_startup=False, use_monitor=True)
def tick(timer: func.TimerRequest) -> None:
    """Record what is due before now + lookahead and send its launch messages."""
    if timer.past_due:
        log.warning("tick is running late; the misfire policies apply to what was missed")
    report = services().ticker.tick()
    if report.fired:
        services().warm_databricks()


@bp.timer_trigger(arg_name="timer", schedule=RECONCILE_SCHEDULE, run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    """Re-send lost launches and restore missing due rows, a bounded amount per pass."""
    services().reconciler.run_once()
