"""Runs in Table Storage: PartitionKey `{tenant}~{job id}`, RowKey `{inverted time}~{run key}`.

The row key is derived from the run key alone (its time inverted, so a partition
lists newest first), which keeps "insert if absent" on the deterministic run key.
"""

from __future__ import annotations

import json
from typing import Any

from shared.adapters.job_store import Page, decode_token, page_of
from shared.adapters.table import Row, Table, Value, Write
from shared.domain.errors import AlreadyExists
from shared.domain.run import Run, epoch_ms, run_key_time

_MAX_MS = 10**13 - 1


def partition(tenant: str, job_id: str) -> str:
    return f"{tenant}~{job_id}"


def row_key(run_key: str) -> str:
    return f"{_MAX_MS - epoch_ms(run_key_time(run_key)):013d}~{run_key}"


_JSON_FIELDS = ("transitions", "attempts")


def _props(run: Run) -> dict[str, Value]:
    full = run.model_dump(mode="json", exclude_none=True)
    data: dict[str, Value] = {k: v for k, v in full.items() if k not in ("tenant", "job_id", *_JSON_FIELDS)}
    for name in _JSON_FIELDS:
        data[name] = json.dumps(full.get(name) or ([] if name == "attempts" else {}), separators=(",", ":"))
    if run.databricks_run_id is not None:
        data["databricks_run_id"] = str(run.databricks_run_id)  # Databricks ids exceed Int32
    return data


def _run(row: Row) -> Run:
    tenant, job_id = row.pk.split("~", 1)
    data: dict[str, Any] = {**row.data, "tenant": tenant, "job_id": job_id}
    for name in _JSON_FIELDS:
        data[name] = json.loads(str(data.get(name) or ("[]" if name == "attempts" else "{}")))
    return Run.model_validate(data)


class RunStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def add_if_absent(self, run: Run) -> tuple[Run, bool]:
        """Record `run` unless a run with its key exists; returns the stored run and whether it is new."""
        try:
            self.table.write(
                partition(run.tenant, run.job_id), [Write("insert", row_key(run.run_key), _props(run))]
            )
            return run, True
        except AlreadyExists:
            return self.get(run.tenant, run.job_id, run.run_key)[0], False

    def get(self, tenant: str, job_id: str, run_key: str) -> tuple[Run, str]:
        row = self.table.get(partition(tenant, job_id), row_key(run_key))
        return _run(row), row.etag

    def save(self, run: Run, etag: str) -> None:
        """Replace the run if it is unchanged since read (else ConcurrencyConflict)."""
        self.table.write(
            partition(run.tenant, run.job_id),
            [Write("replace", row_key(run.run_key), _props(run), etag=etag)],
        )

    def list(
        self,
        tenant: str,
        job_id: str,
        *,
        state: str | None = None,
        limit: int = 50,
        continuation: str | None = None,
    ) -> Page[Run]:
        """The job's runs, newest first."""
        scope = f"runs:{job_id}"
        after = decode_token(scope, continuation) if continuation else None
        rows = self.table.query(
            partition(tenant, job_id),
            rk_gt=after,
            equals={"state": state} if state else None,
            page_size=limit + 1,
        )
        return page_of(rows, limit, scope, _run)

    def latest(self, tenant: str, job_id: str) -> Run | None:
        for row in self.table.query(partition(tenant, job_id), page_size=1):
            return _run(row)
        return None
