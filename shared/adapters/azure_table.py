"""Table Storage through azure-data-tables (Azure with a managed identity, or Azurite locally).

Every filter is built from fixed property names and `@parameters`; values never
enter the filter text, so user input cannot change a query (no OData injection).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

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
    """A service client; `counter`, if given, counts every HTTP request the SDK sends (retries too)."""
    hook: dict[str, Any] = {}
    if counter is not None:
        hook["raw_request_hook"] = lambda _request: counter.add()
    if connection_string:
        return TableServiceClient.from_connection_string(connection_string, **hook)
    if endpoint and credential is not None:
        return TableServiceClient(endpoint=endpoint, credential=credential, **hook)
    raise ValueError("set TABLES_ENDPOINT (with a managed identity) or TABLES_CONNECTION_STRING")


class AzureTable:
    def __init__(self, service: TableServiceClient, name: str) -> None:
        self.name = name
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
        if len(writes) == 1 and writes[0].kind != "delete":
            # One plain request; deletes go as a transaction because delete_entity
            # reports a missing row as success and the port says otherwise.
            return [self._write_one(pk, writes[0])]
        operations = [_operation(pk, w) for w in writes]
        try:
            results = self._client.submit_transaction(operations)
            return [
                "" if w.kind == "delete" else str((r or {}).get("etag") or "")
                for w, r in zip(writes, results, strict=False)
            ]
        except TableTransactionError as err:
            failed = writes[err.index] if 0 <= err.index < len(writes) else writes[0]
            raise _translate(err, str(getattr(err, "error_code", "") or ""), failed) from err
        except AzureError as err:
            raise _external(err) from err

    def discard(self, pk: str, rk: str) -> None:
        check_key(pk)
        check_key(rk)
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


def _operation(pk: str, w: Write) -> tuple[Any, ...]:
    entity = {"PartitionKey": pk, "RowKey": w.rk, **w.data}
    if w.kind == "insert":
        return ("create", entity)
    if w.kind == "upsert":
        return ("upsert", entity, {"mode": UpdateMode.REPLACE})
    kwargs: dict[str, Any] = {}
    if w.etag is not None:
        kwargs = {"etag": w.etag, "match_condition": MatchConditions.IfNotModified}
    if w.kind == "replace":
        return ("update", entity, {"mode": UpdateMode.REPLACE, **kwargs})
    return ("delete", entity, kwargs)


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
