"""The local event source on a real Azurite Blob service: new and overwritten blobs become Event Grid
BlobCreated events shaped as Azure sends them, which the scheduler's own parser reads back."""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from devstack.azurite import ACCOUNT, AzuriteBlob, blob_connection_string, free_port
from devstack.blob_events import BlobEventSource, Event, ListingFailed
from devstack.host import event_grid_event
from functions.events import event_dict
from shared.services.events import parse_blob_event

pytestmark = pytest.mark.azurite

_names = itertools.count(1)
EVENT_FIELDS = ("id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion")
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    f"/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}"
)


@pytest.fixture
def service(azurite_blob: AzuriteBlob) -> Iterator[BlobServiceClient]:
    with BlobServiceClient.from_connection_string(azurite_blob.connection_string) as client:
        yield client


@pytest.fixture
def container(service: BlobServiceClient) -> ContainerClient:
    """A new container of this test's own (the account is shared by the session)."""
    return service.create_container(f"landing{next(_names)}")


@pytest.fixture
def source(azurite_blob: AzuriteBlob) -> Iterator[tuple[BlobEventSource, list[Event]]]:
    """A source whose events go to a list; not started: the test calls poll() (the first is the baseline)."""
    published: list[Event] = []
    events = BlobEventSource(azurite_blob.connection_string, published.append, poll_seconds=60)
    yield events, published
    events.service.close()


def test_a_new_blob_is_one_event_shaped_as_event_grid_sends_it(
    source: tuple[BlobEventSource, list[Event]], container: ContainerClient, azurite_blob: AzuriteBlob
) -> None:
    events, published = source
    assert events.poll() == []
    csv = ContentSettings("text/csv")
    blob = container.upload_blob("sales/day1.csv", b"id,amount\n1,10\n", content_settings=csv)
    props = blob.get_blob_properties()

    (event,) = events.poll()

    assert published == [event]
    assert set(event) == set(EVENT_FIELDS)
    assert uuid.UUID(event["id"])
    assert event["topic"] == TOPIC
    name = container.container_name
    assert event["subject"] == f"/blobServices/default/containers/{name}/blobs/sales/day1.csv"
    assert event["eventType"] == "Microsoft.Storage.BlobCreated"
    assert (event["dataVersion"], event["metadataVersion"]) == ("", "1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", event["eventTime"])
    assert datetime.fromisoformat(event["eventTime"][:26]).replace(tzinfo=UTC) == props.last_modified
    data = event["data"]
    assert data["api"] == "PutBlob"
    assert uuid.UUID(data["clientRequestId"]) and uuid.UUID(data["requestId"])
    assert data["eTag"] == props.etag and data["eTag"].startswith('"')  # quoted, as the ETag header
    assert (data["contentType"], data["contentLength"], data["blobType"]) == ("text/csv", 15, "BlockBlob")
    assert data["url"] == blob.url == f"{azurite_blob.endpoint}/{name}/sales/day1.csv"
    assert re.fullmatch(r"[0-9A-F]{32}", data["sequencer"])
    assert uuid.UUID(data["storageDiagnostics"]["batchId"])
    assert events.poll() == []  # nothing changed since


def test_the_function_side_reads_the_event_as_it_would_in_azure(
    source: tuple[BlobEventSource, list[Event]], container: ContainerClient
) -> None:
    events, _ = source
    events.poll()
    blob = container.upload_blob("sales/day 2.csv", b"x")

    (event,) = events.poll()
    # Through the Python worker's own Event Grid converter, then the function's view of it.
    delivered = event_grid_event(event)
    assert delivered.event_time is not None and delivered.event_time.tzinfo is not None
    parsed = parse_blob_event(event_dict(delivered))

    assert parsed is not None
    assert (parsed.account, parsed.container) == (ACCOUNT, container.container_name)
    assert parsed.blob == "sales/day 2.csv"
    assert parsed.url == blob.url and parsed.version == event["data"]["eTag"]
    assert parsed.event_id == event["id"]


def test_overwriting_a_blob_is_a_new_event_with_the_new_etag(
    source: tuple[BlobEventSource, list[Event]], container: ContainerClient
) -> None:
    events, _ = source
    events.poll()
    first_etag = container.upload_blob("sales/day1.csv", b"1").get_blob_properties().etag
    (first,) = events.poll()
    second_etag = container.upload_blob("sales/day1.csv", b"22", overwrite=True).get_blob_properties().etag

    (second,) = events.poll()

    assert first_etag != second_etag
    assert (first["data"]["eTag"], second["data"]["eTag"]) == (first_etag, second_etag)
    assert second["subject"] == first["subject"] and second["id"] != first["id"]
    assert second["data"]["contentLength"] == 2
    assert second["data"]["sequencer"] > first["data"]["sequencer"]


def test_blobs_there_before_the_source_starts_produce_no_events(
    azurite_blob: AzuriteBlob, container: ContainerClient
) -> None:
    container.upload_blob("sales/old.csv", b"old")
    published: list[Event] = []
    with BlobEventSource(azurite_blob.connection_string, published.append, poll_seconds=0.05):
        time.sleep(0.5)  # several polls
        container.upload_blob("sales/new.csv", b"new")
        _wait(lambda: len(published) >= 1)
        time.sleep(0.3)
    assert [e["subject"].rpartition("/blobs/")[2] for e in published] == ["sales/new.csv"]


def test_a_container_created_after_the_start_is_watched(
    source: tuple[BlobEventSource, list[Event]], service: BlobServiceClient
) -> None:
    events, _ = source
    events.poll()
    later = service.create_container(f"later{next(_names)}")
    assert events.poll() == []  # an empty container is not an event
    later.upload_blob("a.parquet", b"p")

    (event,) = events.poll()

    assert event["subject"] == f"/blobServices/default/containers/{later.container_name}/blobs/a.parquet"


def test_deleting_is_not_an_event_and_creating_again_is(
    source: tuple[BlobEventSource, list[Event]], container: ContainerClient
) -> None:
    events, _ = source
    events.poll()
    container.upload_blob("sales/x.csv", b"1")
    assert len(events.poll()) == 1
    container.delete_blob("sales/x.csv")
    assert events.poll() == []
    container.upload_blob("sales/x.csv", b"1")
    assert len(events.poll()) == 1


def test_an_append_blob_is_an_event_when_created_not_when_appended_to(
    source: tuple[BlobEventSource, list[Event]], container: ContainerClient
) -> None:
    events, _ = source
    events.poll()
    blob = container.get_blob_client("logs/app.log")
    blob.create_append_blob()
    (created,) = events.poll()
    blob.append_block(b"line\n")

    assert events.poll() == []
    assert (created["data"]["blobType"], created["data"]["api"]) == ("AppendBlob", "PutBlob")


def test_several_blobs_in_one_poll_are_one_event_each_oldest_first(
    source: tuple[BlobEventSource, list[Event]], container: ContainerClient
) -> None:
    events, _ = source
    events.poll()
    for name in ("b.csv", "a.csv", "c.csv"):
        container.upload_blob(name, b"x")

    found = events.poll()

    assert sorted(e["subject"].rpartition("/")[2] for e in found) == ["a.csv", "b.csv", "c.csv"]
    assert len({e["id"] for e in found}) == 3
    assert [e["data"]["sequencer"] for e in found] == sorted(e["data"]["sequencer"] for e in found)
    assert [e["eventTime"] for e in found] == sorted(e["eventTime"] for e in found)


def test_the_running_source_publishes_within_a_poll_and_stops(
    azurite_blob: AzuriteBlob, container: ContainerClient
) -> None:
    published: list[Event] = []
    arrived = threading.Event()

    def publish(event: Event) -> None:
        published.append(event)
        arrived.set()

    source = BlobEventSource(azurite_blob.connection_string, publish, poll_seconds=0.1).start()
    try:
        started = time.monotonic()
        container.upload_blob("sales/now.csv", b"now")
        assert arrived.wait(5), "no event within 5 s"
        assert time.monotonic() - started < 2
    finally:
        source.stop()
    assert not source._thread.is_alive()
    container.upload_blob("sales/after.csv", b"late")
    time.sleep(0.3)
    assert len(published) == 1


def _wait(condition: Callable[[], Any], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_account_that_does_not_answer_is_a_listing_failure_the_loop_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = BlobEventSource(blob_connection_string(free_port()), lambda _: None, poll_seconds=0.02)
    with pytest.raises(ListingFailed):
        source.poll()
    source._thread.start()  # as start() does after its first listing
    time.sleep(0.2)  # about ten failed polls
    source.stop()
    assert caplog.text.count("listing blobs failed") == 1  # said once, not every poll
