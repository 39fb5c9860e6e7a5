"""A local stand-in for Event Grid's storage events: blobs created in Azurite become BlobCreated events.

In Azure an Event Grid system topic on the storage account delivers `Microsoft.Storage.BlobCreated`
to the `blob_created` function. Azurite emits no events, so locally `BlobEventSource` polls the
account every `poll_seconds` (setting `DEVSTACK_BLOB_POLL_SECONDS`, default 0.25 s) and compares
what it lists with the last listing, by container, name and ETag:

* a blob that was not there, or whose ETag changed (overwritten), is one event;
* blobs that exist when it starts produce none (an Event Grid subscription only sees what is
  written after it is created), nor do deletions;
* containers are listed on every poll, so a container created later is watched too;
* append and page blobs produce an event when they appear only (Azure: `PutBlob`; their later
  `AppendBlock` / `PutPage` writes are not BlobCreated).

Each event has Event Grid's schema, as Azure sends it for a Blob storage account
(https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage): `id`, `topic`
(`.../storageAccounts/devstoreaccount1`), `subject`, `eventType`, `eventTime` (the blob's
last-modified time), `dataVersion` "", `metadataVersion` "1", and `data` with `api` "PutBlob",
`clientRequestId`, `requestId`, `eTag`, `contentType`, `contentLength`, `blobType`, `url` (where
Azurite serves the blob), `sequencer` (32 hex digits, increasing) and `storageDiagnostics`.

What polling cannot show: writes between two polls fold into one event for the last version
(Azure sends one per write), and the operation is always reported as `PutBlob` (a staged upload
is `PutBlockList` in Azure, a copy `CopyBlob`). Both are handled alike by the scheduler.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import urllib3
from azure.storage.blob import AccountSasPermissions, BlobServiceClient, ResourceTypes, generate_account_sas

from devstack.azurite import ACCOUNT

log = logging.getLogger(__name__)

# Every poll lists the containers and then each container's blobs: about 7 ms a request on a
# loopback Azurite. Every 0.25 s that is a few percent of one core of Azurite for one or two
# containers, and it adds ~0.13 s on average (0.25 s at worst) to a file's way to its run:
# well under the usual delay of Event Grid itself (typically a second or so), so the local stack
# is not slower than Azure, and not so fast that it hides a wait the deployed scheduler has.
DEFAULT_POLL_SECONDS = 0.25
POLL_SETTING = "DEVSTACK_BLOB_POLL_SECONDS"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "local"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"

Event = dict[str, Any]


def poll_seconds_setting() -> float:
    """`DEVSTACK_BLOB_POLL_SECONDS`, else the default; at least 0.01 s."""
    return max(0.01, float(os.environ.get(POLL_SETTING) or DEFAULT_POLL_SECONDS))


def topic(account: str = ACCOUNT) -> str:
    """The storage account's resource id, as Event Grid puts it in `topic`."""
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )


def event_time(at: datetime) -> str:
    """Event Grid's format: UTC, seven fractional digits, `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True, slots=True)
class Listed:
    """A blob as the List Blobs operation shows it."""

    etag: str
    last_modified: str  # RFC 1123, as listed
    size: int
    content_type: str
    blob_type: str


class ListingFailed(Exception):
    """The account could not be listed (Azurite stopping or restarting): the next poll tries again."""


class BlobEventSource:
    """Polls a storage account and hands each created or overwritten blob to `publish` as an event.

    `start()` takes the first listing (the blobs already there: no events) before it returns, so
    a blob written after `start()` is always reported. `poll()` is one round, for tests.

    It lists through the Blob REST API (List Containers, List Blobs) with an account SAS made by
    azure-storage-blob, and reads the XML itself: the SDK's own listing spends about 1.4 ms of
    Python per blob, so polling a container of a few hundred files would take most of a poll
    interval; this takes a few milliseconds.
    """

    def __init__(
        self,
        connection_string: str,
        publish: Callable[[Event], None],
        poll_seconds: float | None = None,
    ) -> None:
        self.service = BlobServiceClient.from_connection_string(connection_string)
        self.publish = publish
        self.poll_seconds = poll_seconds if poll_seconds is not None else poll_seconds_setting()
        self.topic = topic(self.service.account_name or ACCOUNT)
        self._base = self.service.url.rstrip("/")
        # urllib3 (what requests, under the SDK, uses): keep-alive, and no log line per request.
        self._http = urllib3.PoolManager(maxsize=1, retries=False, timeout=urllib3.Timeout(10))
        self._seen: dict[tuple[str, str], Listed] | None = None
        self._sequence = time.time_ns()  # increasing across restarts too, like Azure's sequencer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blob-events", daemon=True)
        self._failing = False

    def start(self) -> BlobEventSource:
        self.poll()  # the baseline: what exists now produces no events
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._http.clear()
        self.service.close()

    def __enter__(self) -> BlobEventSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def poll(self) -> list[Event]:
        """List the account once and publish an event for each blob created or overwritten since the
        last listing; return them. The first call only records what is there."""
        listing = self._list()
        before, self._seen = self._seen, listing
        if before is None:
            return []
        changed = []
        for key, blob in listing.items():
            known = before.get(key)
            # Append and page blobs: only their creation (PutBlob) is a BlobCreated in Azure.
            if known is None or (known.etag != blob.etag and known.blob_type == "BlockBlob"):
                changed.append((parsedate_to_datetime(blob.last_modified), key, blob))
        events = [self._event(container, name, blob, at) for at, (container, name), blob in sorted(changed)]
        for event in events:
            self.publish(event)
        return events

    def _list(self) -> dict[tuple[str, str], Listed]:
        found: dict[tuple[str, str], Listed] = {}
        sas = generate_account_sas(
            self.service.account_name or ACCOUNT,
            self.service.credential.account_key,
            resource_types=ResourceTypes(service=True, container=True),
            permission=AccountSasPermissions(list=True),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        for containers in self._pages(f"{self._base}?comp=list&{sas}"):
            for container in containers.iterfind("Containers/Container"):
                name = container.findtext("Name", "")
                url = f"{self._base}/{quote(name)}?restype=container&comp=list&{sas}"
                for blobs in self._pages(url):
                    for blob in blobs.iterfind("Blobs/Blob"):
                        found[(name, blob.findtext("Name", ""))] = _listed(blob)
        return found

    def _pages(self, url: str) -> Iterator[ElementTree.Element]:
        """Each page of a listing (following NextMarker); none if the container went away meanwhile."""
        marker = ""
        while True:
            try:
                response = self._http.request("GET", url + (f"&marker={quote(marker)}" if marker else ""))
            except urllib3.exceptions.HTTPError as err:
                raise ListingFailed(f"{type(err).__name__}: {err}") from err
            if response.status == 404:  # a container deleted since the containers were listed
                return
            if response.status != 200:
                raise ListingFailed(f"{response.status} {response.data[:300]!r}")
            page = ElementTree.fromstring(response.data)
            yield page
            marker = page.findtext("NextMarker") or ""
            if not marker:
                return

    def _event(self, container: str, name: str, blob: Listed, at: datetime) -> Event:
        self._sequence += 1
        return {
            "topic": self.topic,
            "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
            "eventType": BLOB_CREATED,
            "eventTime": event_time(at),
            "id": str(uuid.uuid4()),
            "data": {
                "api": "PutBlob",
                "clientRequestId": str(uuid.uuid4()),
                "requestId": str(uuid.uuid4()),
                "eTag": f'"{blob.etag.strip(chr(34))}"',  # as the ETag header: quoted
                "contentType": blob.content_type,
                "contentLength": blob.size,
                "blobType": blob.blob_type,
                "url": self.service.get_blob_client(container, name).url,  # the SDK's quoting
                "sequencer": f"{self._sequence:032X}",
                "storageDiagnostics": {"batchId": str(uuid.uuid4())},
            },
            "dataVersion": "",
            "metadataVersion": "1",
        }

    def _run(self) -> None:
        """Poll every `poll_seconds`, from the start of one poll to the next (a listing's time does
        not add to the interval), but idle at least as long as the last poll took (a large account
        keeps Azurite busy half the time at most), until stopped."""
        due = time.monotonic() + self.poll_seconds
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            began = time.monotonic()
            self._poll_logged()
            ended = time.monotonic()
            due = max(began + self.poll_seconds, ended + (ended - began))

    def _poll_logged(self) -> None:
        try:
            self.poll()
        except ListingFailed as err:  # Azurite restarting or stopping: try again next round
            if not self._failing:
                log.warning("listing blobs failed (will keep trying): %s", err)
            self._failing = True
            return
        except Exception:
            log.exception("the blob event source failed a poll")
            return
        if self._failing:
            log.info("listing blobs works again")
            self._failing = False


def _listed(blob: ElementTree.Element) -> Listed:
    props = blob.find("Properties")
    if props is None:
        props = ElementTree.Element("Properties")
    return Listed(
        etag=props.findtext("Etag") or "",
        last_modified=props.findtext("Last-Modified") or "",
        size=int(props.findtext("Content-Length") or 0),
        content_type=props.findtext("Content-Type") or "application/octet-stream",
        blob_type=props.findtext("BlobType") or "BlockBlob",
    )
