"""Service Bus triggers. Each handler re-reads the run and decides from its state: safe to run twice."""

from __future__ import annotations

import json

import azure.functions as func

from shared.bootstrap import services
from shared.services.launch import RunRef

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%LaunchQueueName%", connection="ServiceBusConnection"
)
def launch(msg: func.ServiceBusMessage) -> None:
    """A run's launch is due (launching on Databricks arrives with issue 4: shared/services/launch.py)."""
    services().launch.handle(RunRef.parse(json.loads(msg.get_body())))
