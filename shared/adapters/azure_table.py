"""Table Storage through azure-data-tables (Azure with a managed identity, or Azurite locally).

Every filter is built from fixed property names and `@parameters`; values never
enter the filter text, so user input cannot change a query (no OData injection).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from azure.data.tables._serialize import _add_entity_properties

from shared.adapters.lean_http import LeanSession
from shared.adapters.table import OperationCounter, Row, Value, Write, check_batch, check_key, check_property
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, ExternalError, NotFound

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_KEYS = ("PartitionKey", "RowKey")


def service_client(
    *,
    connection_string: str | None = None,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
    counter: OperationCounter | None = None,
) -> TableServiceClient:
    """A service client; `counter`, if given, counts every HTTP request the SDK sends (retries too).

    A request that fails for a passing reason (a dropped connection, 408, 429, 5xx) is retried up
    to three times with a short exponential backoff (0.2 s, 0.4 s, 0.8 s) inside the call, and a
    request that hangs gives up after 30 s: a caller waits seconds, not the SDK's default minutes,
    before it gets ExternalError (an HTTP 503 with Retry-After at the API). Retrying a write whose
    answer was lost is safe here: an insert that landed comes back as "exists" (every insert is of
    a new id or a deterministic key whose row is the same), and a conditional replace that landed
    comes back as a conflict, after which the caller reads again and decides again.
    """
    hook: dict[str, Any] = {
        "retry_total": 3,
        "retry_backoff_factor": 0.2,
        "retry_backoff_max": 2,
        "connection_timeout": 5,
        "read_timeout": 30,
    }
    hook["transport"] = RequestsTransport(session=LeanSession(), session_owner=True)
    if counter is not None:
        hook["raw_request_hook"] = lambda _request: counter.add()
    if connection_string:
        return TableServiceClient.from_connection_string(connection_string, **hook)
    if endpoint and credential is not None:
        return TableServiceClient(endpoint=endpoint, credential=credential, **hook)
    raise ValueError("set TABLES_ENDPOINT (with a managed identity) or TABLES_CONNECTION_STRING")


class AzureTable:
    def __init__(
        self, service: TableServiceClient, name: str, counter: OperationCounter | None = None
    ) -> None:
        self.name = name
        self._counter = counter  # counts the entities written; the client's hook counts requests
        self._service = service
        self._client: TableClient = service.get_table_client(name)

    def create(self) -> None:
        try:
            self._service.create_table_if_not_exists(self.name)
        except AzureError as err:
            raise _external(err) from err

    def get(self, pk: str, rk: str, select: Sequence[str] | None = None) -> Row:
        for name in select or []:
            check_property(name)
        try:
            if select is None:
                entity = self._client.get_entity(pk, rk)
            else:
                entity = self._client.get_entity(pk, rk, select=[*_KEYS, *select])
        except ResourceNotFoundError as err:
            raise NotFound("no such row") from err
        except AzureError as err:
            raise _external(err) from err
        return _row(entity)

    def query(
        self,
        pk: str | None,
        *,
        pk_gt: str | None = None,
        rk_gt: str | None = None,
        rk_ge: str | None = None,
        rk_lt: str | None = None,
        rk_eq: str | None = None,
        equals: Mapping[str, str | bool] | None = None,
        select: Sequence[str] | None = None,
        page_size: int = 1000,
    ) -> Iterator[Row]:
        clauses: list[str] = []
        params: dict[str, str | bool] = {}
        for clause, name, value in (
            ("PartitionKey eq @pk", "pk", pk),
            ("PartitionKey gt @pkgt", "pkgt", pk_gt),
            ("RowKey gt @rkgt", "rkgt", rk_gt),
            ("RowKey ge @rkge", "rkge", rk_ge),
            ("RowKey lt @rklt", "rklt", rk_lt),
            ("RowKey eq @rkeq", "rkeq", rk_eq),
        ):
            if value is not None:
                clauses.append(clause)
                params[name] = value
        for i, (prop, wanted) in enumerate((equals or {}).items()):
            check_property(prop)
            clauses.append(f"{prop} eq @v{i}")
            params[f"v{i}"] = wanted
        columns = None
        if select is not None:
            for prop in select:
                check_property(prop)
            columns = [*_KEYS, *select]
        size = max(1, min(page_size, 1000))
        try:
            if clauses:
                pages = self._client.query_entities(
                    " and ".join(clauses), parameters=params, select=columns, results_per_page=size
                )
            else:
                pages = self._client.list_entities(select=columns, results_per_page=size)
            for entity in pages:
                yield _row(entity)
        except AzureError as err:
            raise _external(err) from err

    def write(self, pk: str, writes: Sequence[Write]) -> list[str]:
        check_batch(pk, writes)
        if self._counter is not None:
            self._counter.add(0, entities=len(writes))
        if len(writes) == 1 and writes[0].kind != "delete":
            # One plain request; deletes go as a transaction because delete_entity
            # reports a missing row as success and the port says otherwise.
            return [self._write_one(pk, writes[0])]
        try:
            # stream=True: the pipeline would try to decode a multipart body, and fail.
            response = self._client._client.send_request(self._transaction(pk, writes), stream=True)
            text = response.read().decode("utf-8", "replace")
        except AzureError as err:
            raise _external(err) from err
        return _transaction_result(response.status_code, text, writes)

    def _transaction(self, pk: str, writes: Sequence[Write]) -> HttpRequest:
        """An entity-group transaction as one `$batch` request, built here rather than by the SDK.

        The SDK builds and parses the multipart body with the `email` package, which costs about
        8 ms of CPU per row: more than the request itself. The format is the documented one
        (and what the SDK sends, byte for byte in its structure); entities are serialised by the
        SDK's own function, so property types are the same.
        """
        base = f"{self._client.scheme}://{self._client._primary_hostname}"
        batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        parts = [_part(base, self.name, pk, w, i) for i, w in enumerate(writes)]
        body = (
            f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
            + "".join(f"--{changeset}\r\n{part}" for part in parts)
            + f"--{changeset}--\r\n\r\n--{batch}--\r\n"
        ).encode()
        headers = {
            "x-ms-version": _API_VERSION,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": "application/json",
        }
        return HttpRequest("POST", f"{base}/$batch", headers=headers, content=body)

    def discard(self, pk: str, rk: str) -> None:
        check_key(pk)
        check_key(rk)
        if self._counter is not None:
            self._counter.add(0, entities=1)
        try:
            self._client.delete_entity(pk, rk)  # the SDK treats 404 as success
        except AzureError as err:
            raise _external(err) from err

    def _write_one(self, pk: str, w: Write) -> str:
        entity = {"PartitionKey": pk, "RowKey": w.rk, **w.data}
        condition = MatchConditions.IfNotModified if w.etag else MatchConditions.Unconditionally
        try:
            if w.kind == "insert":
                result = self._client.create_entity(entity)
            elif w.kind == "upsert":
                result = self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)
            else:
                result = self._client.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=w.etag, match_condition=condition
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as err:
            raise _translate(err, str(getattr(err, "error_code", "") or ""), w) from err
        except AzureError as err:
            raise _external(err) from err
        return str(result.get("etag") or "")


_API_VERSION = "2019-02-02"
_STATUS = re.compile(r"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_ETAG = re.compile(r"^ETag: (.+?)\r?$", re.MULTILINE | re.IGNORECASE)
_FAILED_INDEX = re.compile(r'"value"\s*:\s*"(\d+):')
_ERROR_CODE = re.compile(r'"code"\s*:\s*"([^"]*)"')


def _key(value: str) -> str:
    """A key in an entity URL: single quotes doubled, then percent-encoded (as the SDK does)."""
    return quote(value.replace("'", "''"))


def _part(base: str, table: str, pk: str, w: Write, index: int) -> str:
    """One operation of a changeset: insert (POST), upsert or replace (PUT), delete (DELETE)."""
    keys = f"(PartitionKey='{_key(pk)}',RowKey='{_key(w.rk)}')"
    headers = ["x-ms-version: " + _API_VERSION, "DataServiceVersion: 3.0"]
    body = ""
    if w.kind == "delete":
        line = f"DELETE {base}/{table}{keys} HTTP/1.1"
        headers += ["Accept: application/json;odata=minimalmetadata", f"If-Match: {w.etag or '*'}"]
    else:
        body = json.dumps(_add_entity_properties({"PartitionKey": pk, "RowKey": w.rk, **w.data}))
        if w.kind == "insert":
            line = f"POST {base}/{table} HTTP/1.1"
            headers.append("Accept: application/json;odata=minimalmetadata")
        else:
            line = f"PUT {base}/{table}{keys} HTTP/1.1"
            headers.append("Accept: application/json")
            if w.kind == "replace" and w.etag:
                headers.append(f"If-Match: {w.etag}")
        headers += ["Content-Type: application/json", f"Content-Length: {len(body.encode())}"]
    return (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        f"Content-ID: {index}\r\n\r\n{line}\r\n" + "\r\n".join(headers) + f"\r\n\r\n{body}\r\n"
    )


def _transaction_result(status: int, text: str, writes: Sequence[Write]) -> list[str]:
    """The ETags of a transaction's rows, or the error of the operation that failed it."""
    if status == 413:
        raise ValueError("the transaction is too large for Table Storage (4 MiB)")
    if status != 202:
        code = _ERROR_CODE.search(text)
        raise ExternalError(
            f"table storage: {status} {code.group(1) if code else 'batch refused'}",
            retryable=status in (408, 429) or status >= 500,
        )
    parts = [p for p in re.split(r"--changesetresponse_[^\r\n]*", text) if _STATUS.search(p)]
    statuses = [int(_STATUS.search(p).group(1)) for p in parts]  # type: ignore[union-attr]
    failed = [(i, st) for i, st in enumerate(statuses) if st >= 300]
    if failed:
        part = parts[failed[0][0]]
        index_match = _FAILED_INDEX.search(part)
        index = int(index_match.group(1)) if index_match else 0
        code_match = _ERROR_CODE.search(part)
        raise _failed(
            failed[0][1], code_match.group(1) if code_match else "", writes[min(index, len(writes) - 1)]
        )
    etags = []
    for w, part in zip(writes, parts, strict=False):
        etag = _ETAG.search(part)
        etags.append("" if w.kind == "delete" or etag is None else etag.group(1).strip())
    return etags


def _failed(status: int, code: str, w: Write) -> Exception:
    if code == "EntityAlreadyExists" or status == 409:
        return AlreadyExists("the row exists")
    if code == "UpdateConditionNotSatisfied" or status == 412:
        return ConcurrencyConflict("the row changed")
    if code == "ResourceNotFound" or status == 404:
        return ConcurrencyConflict("the row is gone") if w.etag else NotFound("no such row")
    if status == 400:
        raise ValueError(f"table storage refused the transaction: {code}")
    return ExternalError(f"table storage: {status} {code}", retryable=status in (408, 429) or status >= 500)


def _row(entity: Any) -> Row:
    data: dict[str, Value] = {k: v for k, v in entity.items() if k not in _KEYS}
    return Row(entity["PartitionKey"], entity["RowKey"], data, str(entity.metadata.get("etag", "")))


def _translate(err: HttpResponseError, code: str, w: Write) -> Exception:
    # Messages carry no key: they may reach a caller (the keys are in the exception chain, for logs).
    if code == "EntityAlreadyExists" or isinstance(err, ResourceExistsError):
        return AlreadyExists("the row exists")
    if code == "UpdateConditionNotSatisfied" or isinstance(err, ResourceModifiedError):
        return ConcurrencyConflict("the row changed")
    if code == "ResourceNotFound" or isinstance(err, ResourceNotFoundError):
        return ConcurrencyConflict("the row is gone") if w.etag else NotFound("no such row")
    return _external(err)


def _external(err: AzureError) -> ExternalError:
    """A failed request: throttling, a server error or a broken connection may pass; the rest will not."""
    if not isinstance(err, HttpResponseError):  # no answer at all: a reset or timed-out connection
        return ExternalError(f"table storage: {type(err).__name__}", retryable=True)
    status = err.status_code or 0
    return ExternalError(
        f"table storage: {status} {getattr(err, 'error_code', None) or err.reason}",
        retryable=status == 429 or status >= 500,
    )
