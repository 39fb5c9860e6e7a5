"""Service Bus triggers: parse the message and hand it to the inbox (`shared/services/inbox.py`).

Each handler re-reads the run and decides from its state: safe to run twice. A passing failure
of a dependency puts the message off; anything else raises, and Service Bus redelivers.
"""

from __future__ import annotations

import json

import azure.functions as func

from shared.bootstrap import services
from shared.services.inbox import Incoming

bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _incoming(msg: func.ServiceBusMessage) -> Incoming:
    return Incoming(
        message_id=msg.message_id or "",
        body=json.loads(msg.get_body()),
        delivery_count=msg.delivery_count or 1,
        properties={k: str(v) for k, v in (msg.application_properties or {}).items()},
    )


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%LaunchQueueName%", connection="ServiceBusConnection"
)
def launch(msg: func.ServiceBusMessage) -> None:
    """Launch one attempt of a run on Databricks (or skip, buffer or re-attach, as its state says)."""
    services().inbox.launch(_incoming(msg))


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%PollQueueName%", connection="ServiceBusConnection")
def poll(msg: func.ServiceBusMessage) -> None:
    """Follow a Databricks run: schedule the next poll, time it out, or finish or retry it."""
    services().inbox.poll(_incoming(msg))


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name="%NotifyQueueName%", connection="ServiceBusConnection"
)
def notify(msg: func.ServiceBusMessage) -> None:
    """Deliver one notification of a run (webhook, Teams, Slack) and record the try on the run."""
    services().inbox.notify(_incoming(msg))
