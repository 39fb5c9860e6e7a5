"""Service Bus triggers. Each handler re-reads the run and decides from its state: safe to run twice.

A handler that raises (Databricks throttled or down, storage unavailable) leaves the
message to Service Bus, which delivers it again; after the queue's max delivery
count it is dead-lettered and the reconcile marks the run FAILED.
"""

from __future__ import annotations

import json

import azure.functions as func

from shared.bootstrap import services
from shared.services.messages import PollRef, RunRef

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%LaunchQueueName%", connection="ServiceBusConnection"
)
def launch(msg: func.ServiceBusMessage) -> None:
    """Launch one attempt of a run on Databricks (or skip, buffer or re-attach, as its state says)."""
    services().runs.launch(RunRef.parse(json.loads(msg.get_body())))


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%PollQueueName%", connection="ServiceBusConnection")
def poll(msg: func.ServiceBusMessage) -> None:
    """Follow a Databricks run: schedule the next poll, time it out, or finish or retry it."""
    services().runs.poll(PollRef.parse(json.loads(msg.get_body())))
