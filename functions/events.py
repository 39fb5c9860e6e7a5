"""Event Grid trigger: blobs created in a watched storage account start the jobs that wait for them.

The handler records the cause and sends the run's launch message; it never waits on Databricks.
A malformed event is logged and dropped (retrying cannot mend it); a storage failure raises, so
Event Grid delivers the event again (and dead-letters it after its retry policy).
"""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func

from shared.bootstrap import services
from shared.domain.errors import InvalidInput
from shared.telemetry import metrics

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


def event_dict(event: func.EventGridEvent) -> dict[str, Any]:
    """The event in Event Grid's schema, as the handler reads it."""
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


@bp.function_name("blob_created")
@bp.event_grid_trigger(arg_name="event")
def blob_created(event: func.EventGridEvent) -> None:
    """A blob was created: start (or fold it into) the runs of the jobs whose file arrival trigger matches."""
    try:
        outcomes = services().events.blob_event(event_dict(event))
    except InvalidInput as err:
        metrics.events.add(1, {"outcome": "rejected"})
        log.warning("event %s rejected: %s", event.id, err)
        return
    log.info("event %s: %s", event.id, ", ".join(outcomes) or "nothing to do")
