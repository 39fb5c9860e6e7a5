"""Jobs, their list indexes and their audit trail, in one Table Storage partition per tenant.

Table Storage sorts by row key only and cannot search, so each job keeps, beside
its own row, one *index row* per sort order the API offers (name, next fire
time, created, updated; each ascending and descending). An index row's key
encodes the sort value and carries the job's *cold* summary (what changes only
when someone edits, pauses or cancels the job), so a page of any sort is one
range query, and a filter on type, status or tag is a server-side `eq` on it.

Hot fields (`next_fire_at`, `last_run_*`), which change at every fire and run
end, live on the job row only: a page reads them from the job rows of the jobs
it shows (one range query when they are close in creation order, else point
reads in parallel). Only the next-fire index rows move when a job fires,
because their key is the next fire time.

The job row, its index rows and the audit row of a change are written in one
entity-group transaction (same partition), conditioned on the job row's ETag:
the indexes and the audit trail can never disagree with the job.

Row keys in a tenant partition:

    {job id}                                   the job (ULIDs sort before "~")
    ~i{sort code}~{sort key}{job id}           index rows, e.g. ~in+~6e69676874...!01J...
    ~a~{job id}~{999999999 - revision}         audit rows, newest first
    ~d~{upstream job id}~{job id}              the job waits for the upstream job (an `after` trigger)
    ~k~{hash of an Idempotency-Key}            a batch request answered: its job, its body's hash

and, in partition `~watch`, one row per file arrival trigger, `{container}~{tenant}~{job id}~{index}`:
the event handler's index (an event for a container nobody watches costs one range query);

and, in partition `~tenants`, one row per tenant that ever had a job.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from shared.adapters.row_schema import JOB_VERSION, known, upgraded
from shared.adapters.table import MAX_BATCH, Row, Table, Value, Write
from shared.domain.audit import masked
from shared.domain.errors import AlreadyExists, ConcurrencyConflict, InvalidInput, NotFound
from shared.domain.job import AuditEntry, Job, JobDefinition, JobStatus, JobSummary
from shared.services.ports import JobQuery, Page, Watch

log = logging.getLogger(__name__)

_NAME_KEY_BYTES = 64  # names sharing a longer prefix sort by id after it
_MAX_MS = 10**13 - 1
_SCAN_BUDGET = 2000  # rows read per request when searching text (client-side)
_MAX_PAGE = 1000  # entities Table Storage returns per query request


def _name_asc(name: str) -> str:
    # Hex of the case-folded UTF-8 bytes, then "!" (below every hex digit) so "ab" < "abc".
    return name.casefold().encode()[:_NAME_KEY_BYTES].hex() + "!"


def _name_desc(name: str) -> str:
    # Each byte complemented, then "~" (above every hex digit): the order reverses exactly.
    raw = name.casefold().encode()[:_NAME_KEY_BYTES]
    return bytes(0xFF - b for b in raw).hex() + "~"


def _time_asc(at: datetime | None) -> str:
    return "z!" if at is None else f"{int(at.timestamp() * 1000):013d}!"


def _time_desc(at: datetime | None) -> str:
    return "z!" if at is None else f"{_MAX_MS - int(at.timestamp() * 1000):013d}!"


@dataclass(frozen=True, slots=True)
class Sort:
    code: str
    key: Callable[[JobSummary], str]


SORTS: dict[str, Sort] = {
    "name": Sort("n+", lambda s: _name_asc(s.name)),
    "-name": Sort("n-", lambda s: _name_desc(s.name)),
    "next_fire_at": Sort("f+", lambda s: _time_asc(s.next_fire_at)),
    "-next_fire_at": Sort("f-", lambda s: _time_desc(s.next_fire_at)),
    "created_at": Sort("c+", lambda s: _time_asc(s.created_at)),
    "-created_at": Sort("c-", lambda s: _time_desc(s.created_at)),
    "updated_at": Sort("u+", lambda s: _time_asc(s.updated_at)),
    "-updated_at": Sort("u-", lambda s: _time_desc(s.updated_at)),
}


T = TypeVar("T")


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Point reads for a page's hot fields go in parallel: a spread-out page costs two round trips, not 50."""
    return ThreadPoolExecutor(8, thread_name_prefix="job-page")


def encode_token(scope: str, rk: str) -> str:
    raw = json.dumps({"s": scope, "k": rk}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(scope: str, token: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("k"), str):
            raise ValueError(token)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise InvalidInput(
            "invalid continuation token: pass back the value from the previous page, with the same sort",
            errors={"continuation": "not a token issued for this listing"},
        ) from err
    return str(data["k"])


def tag_property(tag: str) -> str:
    """The property that marks a tag on index rows, so a tag filter runs in the service.

    Its name is the tag's hex: only [0-9a-f] from user input ever reaches a property name.
    """
    return "t_" + tag.encode().hex()


def page_of(rows: Iterable[Row], limit: int, scope: str, convert: Callable[[Row], T]) -> Page[T]:
    """Up to `limit` items, and a continuation token when another row follows them."""
    items: list[T] = []
    last = ""
    for row in rows:
        if len(items) == limit:
            return Page(items, encode_token(scope, last))
        items.append(convert(row))
        last = row.rk
    return Page(items, None)


_HOT = ("next_fire_at", "last_run_state", "last_run_at")  # on the job row only
_TENANTS = "~tenants"
_HOT_COLUMNS = [*_HOT, "next_fire_dst"]


def _summary_props(s: JobSummary) -> dict[str, Value]:
    data = s.model_dump(mode="json", exclude_none=True, exclude=set(_HOT))
    if "schedule" in data:
        data["schedule"] = json.dumps(data["schedule"], separators=(",", ":"))
    data["tags"] = json.dumps(data["tags"], separators=(",", ":"))
    data["triggers"] = json.dumps(data["triggers"], separators=(",", ":"))
    data.update({tag_property(tag): True for tag in s.tags})
    return data


def _summary(row: Row, hot: Mapping[str, Value] | None = None) -> JobSummary:
    data: dict[str, Any] = {k: v for k, v in row.data.items() if not k.startswith("t_")}
    if data.get("schedule"):
        data["schedule"] = json.loads(str(data["schedule"]))
    data["tags"] = json.loads(str(data["tags"]))
    data["triggers"] = json.loads(str(data.get("triggers") or "[]"))  # (rows from before: none)
    data.update({k: v for k, v in (hot or {}).items() if k in _HOT})
    return JobSummary.model_validate(known(JobSummary, data))


def job_props(job: Job) -> dict[str, Value]:
    """The job row's properties (the inverse of `job_from_row`)."""
    props = _summary_props(JobSummary.of(job))
    props.update({k: v for k, v in job.model_dump(mode="json", include=set(_HOT)).items() if v is not None})
    props.update(
        schema_version=JOB_VERSION,
        definition=job.definition.model_dump_json(),
        revision=job.revision,
        created_by=job.created_by.model_dump_json(),
        updated_by=job.updated_by.model_dump_json(),
    )
    if job.next_fire_dst is not None:
        props["next_fire_dst"] = job.next_fire_dst
    if job.shard:
        props["shard"] = job.shard
    if job.paused_at is not None:
        props["paused_at"] = job.paused_at.isoformat()
    if job.template is not None:
        props["template"] = job.template.model_dump_json()
    if job.batch is not None:
        props["batch"] = job.batch.model_dump_json()
    return props


def job_from_row(row: Row) -> Job:
    """A job row as this release reads it: upgraded, and lenient about fields it does not know."""
    d = upgraded("job", row.data)
    definition = known(JobDefinition, json.loads(str(d["definition"])))
    return Job.model_validate(
        {
            "id": row.rk,
            "tenant": row.pk,
            "shard": d.get("shard") or "",
            "definition": definition,
            "status": d["status"],
            "next_fire_at": d.get("next_fire_at"),
            "next_fire_dst": d.get("next_fire_dst"),
            "version": d["version"],
            "revision": d["revision"],
            "created_at": d["created_at"],
            "created_by": json.loads(str(d["created_by"])),
            "updated_at": d["updated_at"],
            "updated_by": json.loads(str(d["updated_by"])),
            "last_run_state": d.get("last_run_state"),
            "last_run_at": d.get("last_run_at"),
            "paused_at": d.get("paused_at"),
            "template": json.loads(str(d["template"])) if d.get("template") else None,
            "batch": json.loads(str(d["batch"])) if d.get("batch") else None,
        }
    )


def _index_rows(job: Job) -> dict[str, dict[str, Value]]:
    summary = JobSummary.of(job)
    props = _summary_props(summary)
    rows = {f"~i{sort.code}~{sort.key(summary)}{job.id}": props for sort in SORTS.values()}
    if job.status is not JobStatus.CANCELLED:  # a cancelled job waits for nothing
        rows.update(
            {f"{_DEPENDS}{up}~{job.id}": {"dependent": job.id} for up in job.definition.upstream_jobs}
        )
    return rows


_DEPENDS = "~d~"
_MARKERS = "~k~"  # ~k~{name}: a request already answered (a batch's Idempotency-Key), and its job
_WATCH = "~watch"  # partition: `{container}~{tenant}~{job id}~{trigger index}`


def _watch_rows(job: Job | None) -> dict[str, dict[str, Value]]:
    if job is None or job.status is JobStatus.CANCELLED:
        return {}
    return {
        Watch(job.tenant, job.id, str(i), t.container).row_key: {
            "account": t.account or "",
            "prefix": t.prefix,
            "suffix": t.suffix,
        }
        for i, t in job.definition.file_triggers
    }


def _save_writes(before: Job, etag: str, after: Job, audit: AuditEntry | None) -> list[Write]:
    old_rows, new_rows = _index_rows(before), _index_rows(after)
    writes = [Write("replace", after.id, job_props(after), etag=etag)]
    writes += [Write("upsert", rk, props) for rk, props in new_rows.items() if old_rows.get(rk) != props]
    writes += [Write("delete", rk) for rk in old_rows if rk not in new_rows]
    if audit is not None:
        writes.append(_audit_write(audit))
    return writes


def _audit_rk(job_id: str, revision: int) -> str:
    return f"~a~{job_id}~{999_999_999 - revision:09d}"


def _audit_write(entry: AuditEntry) -> Write:
    data = entry.model_dump(mode="json")
    props: dict[str, Value] = {
        "job_id": entry.job_id,
        "revision": entry.revision,
        "at": data["at"],
        "action": entry.action,
        "version": entry.version,
        "actor": json.dumps(data["actor"], separators=(",", ":")),
        "changes": json.dumps(data["changes"], separators=(",", ":"), ensure_ascii=False),
    }
    return Write("insert", _audit_rk(entry.job_id, entry.revision), props)


def _audit(row: Row) -> AuditEntry:
    d: dict[str, Any] = dict(row.data)
    d["actor"] = json.loads(str(d["actor"]))
    d["changes"] = [
        {**c, "before": masked(c["field"], c.get("before")), "after": masked(c["field"], c.get("after"))}
        for c in json.loads(str(d["changes"]))
    ]  # (rows written before the audit trail masked notification URLs)
    return AuditEntry.model_validate(known(AuditEntry, d))


class JobsTable:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, tenant: str, job_id: str) -> tuple[Job, str]:
        """The job and the ETag to write it back with."""
        if job_id.startswith("~"):
            raise NotFound(f"job {job_id} not found")
        try:
            row = self.table.get(tenant, job_id)
        except NotFound:
            raise NotFound(f"job {job_id} not found") from None
        return job_from_row(row), row.etag

    def locate(self, job_id: str) -> str | None:
        """The tenant that owns `job_id` (a cross-partition query: for admins only)."""
        for row in self.table.query(None, rk_eq=job_id, select=["status"], page_size=1):
            return row.pk
        return None

    def add(self, job: Job, audit: AuditEntry, marker: tuple[str, Mapping[str, str]] | None = None) -> None:
        """Insert a new job with its index rows and its first audit row (and `marker`), atomically."""
        self.table.write(_TENANTS, [Write("upsert", job.tenant)])  # first: so no tenant goes unlisted
        self._watch(None, job)
        writes = [Write("insert", job.id, job_props(job))]
        writes += [Write("upsert", rk, props) for rk, props in _index_rows(job).items()]
        writes.append(_audit_write(audit))
        if marker is not None:
            writes.append(Write("insert", f"{_MARKERS}{marker[0]}", {**marker[1], "job_id": job.id}))
        try:
            self.table.write(job.tenant, writes)
        except AlreadyExists:
            if marker is not None and (self.marker(job.tenant, marker[0]) or {}).get("job_id") != job.id:
                raise AlreadyExists(f"marker {marker[0]} names another job") from None
            # A new id is never taken: this is our own write, retried after its answer was lost,
            # and the transaction wrote all of it.
            log.info("a job insert had landed before its retry", extra={"job_id": job.id})

    def marker(self, tenant: str, name: str) -> dict[str, str] | None:
        try:
            return {k: str(v) for k, v in self.table.get(tenant, f"{_MARKERS}{name}").data.items()}
        except NotFound:
            return None

    def dependents(self, tenant: str, job_id: str) -> list[str]:
        """The jobs whose `after` triggers name `job_id` (one range query)."""
        prefix = f"{_DEPENDS}{job_id}~"
        return [
            row.rk[len(prefix) :]
            for row in self.table.query(tenant, rk_ge=prefix, rk_lt=prefix + "~", select=[])
        ]

    def dependencies(self, tenant: str) -> list[tuple[str, str]]:
        """Every (upstream, dependent) pair of the tenant's `after` triggers (one range query)."""
        rows = self.table.query(tenant, rk_ge=_DEPENDS, rk_lt=_DEPENDS + "~", select=[])
        return [tuple(row.rk[len(_DEPENDS) :].split("~", 1)) for row in rows]  # type: ignore[misc]

    def tenants(self) -> list[str]:
        return [row.rk for row in self.table.query(_TENANTS, select=[])]

    def overdue(self, tenant: str, before: datetime) -> list[Job]:
        code = SORTS["next_fire_at"].code
        rows = self.table.query(tenant, rk_ge=f"~i{code}~", rk_lt=f"~i{code}~{_time_asc(before)}", select=[])
        ids = [row.rk[-26:] for row in rows]
        jobs = []
        for job_id in ids:
            try:
                jobs.append(self.get(tenant, job_id)[0])
            except NotFound:
                continue  # deleted meanwhile
        return jobs

    def save(self, before: Job, etag: str, after: Job, audit: AuditEntry | None) -> None:
        """Replace `before` (read with `etag`) by `after`, moving index rows as their keys change.

        Raises ConcurrencyConflict if the job changed since it was read; then nothing is written.
        """
        self._watch(before, after)
        self.table.write(after.tenant, _save_writes(before, etag, after, audit))
        self._unwatch(before, after)

    # -- the containers watched by file arrival triggers (partition `~watch`) -----------------------------

    def _watch(self, before: Job | None, after: Job) -> None:
        """Before the job is written: its new watch rows (so no file it waits for goes unseen)."""
        old, new = _watch_rows(before), _watch_rows(after)
        for rk, props in new.items():
            if old.get(rk) != props:
                self.table.write(_WATCH, [Write("upsert", rk, props)])

    def _unwatch(self, before: Job, after: Job) -> None:
        """After the job is written: the rows it no longer needs (a crash in between leaves a stale
        row, which the event handler drops when it meets it)."""
        new = _watch_rows(after)
        for rk in _watch_rows(before):
            if rk not in new:
                self.table.write(_WATCH, [Write("delete", rk)])

    def watchers(self, container: str) -> list[Watch]:
        """The file arrival triggers that watch `container`, of every tenant (one range query)."""
        prefix = f"{container}~"
        found = []
        for row in self.table.query(_WATCH, rk_ge=prefix, rk_lt=prefix + "~"):
            tenant, job_id, index = row.rk[len(prefix) :].split("~")
            props = {k: str(row.data.get(k) or "") for k in ("account", "prefix", "suffix")}
            found.append(Watch(tenant, job_id, index, container, **props))
        return found

    def unwatch(self, watch: Watch) -> None:
        """Drop a watch row its job no longer has (stale after a crash)."""
        with contextlib.suppress(NotFound):
            self.table.write(_WATCH, [Write("delete", watch.row_key)])

    def save_all(self, items: Sequence[tuple[Job, str, Job]]) -> list[str]:
        saved: list[str] = []
        chunk: list[Job] = []
        rows: list[Write] = []
        for before, etag, after in items:
            writes = _save_writes(before, etag, after, None)
            if len(rows) + len(writes) > MAX_BATCH and chunk:
                saved += self._save_chunk(chunk, rows)
                chunk, rows = [], []
            chunk.append(after)
            rows += writes
        if chunk:
            saved += self._save_chunk(chunk, rows)
        return saved

    def _save_chunk(self, jobs: list[Job], rows: list[Write]) -> list[str]:
        try:
            self.table.write(jobs[0].tenant, rows)
        except ConcurrencyConflict:
            return []  # one of them changed since it was read: each is saved alone
        return [job.id for job in jobs]

    def find(self, tenant: str, query: JobQuery) -> Page[JobSummary]:
        sort = SORTS[query.sort]
        prefix, end = f"~i{sort.code}~", f"~i{sort.code}~~"
        after = decode_token(query.sort, query.continuation) if query.continuation else None
        if after is not None and not prefix <= after < end:
            raise InvalidInput("invalid continuation token", errors={"continuation": "out of range"})
        equals: dict[str, str | bool] = {
            k: v for k, v in (("job_type", query.job_type), ("status", query.status)) if v
        }
        if query.tag:
            equals[tag_property(query.tag)] = True
        filtered = bool(query.text)  # text search is the one filter the service cannot run
        rows = self.table.query(
            tenant,
            rk_gt=after,
            rk_ge=None if after else prefix,
            rk_lt=end,
            equals=equals,
            page_size=1000 if filtered else query.limit + 1,
        )
        return self._page(query, rows, filtered)

    def _page(self, query: JobQuery, rows: Iterator[Row], filtered: bool) -> Page[JobSummary]:
        """Up to `limit` matching index rows and where to go on; then their hot fields, joined."""
        found: list[Row] = []
        last = ""
        token: str | None = None
        for scanned, row in enumerate(rows, start=1):
            if not query.text or _summary(row).matches(query.text):
                if len(found) == query.limit:
                    token = encode_token(query.sort, last)
                    break
                found.append(row)
            last = row.rk
            if filtered and scanned >= _SCAN_BUDGET:
                # Bounded work per request: hand back what matched so far and where to go on.
                token = encode_token(query.sort, last)
                break
        tenant = found[0].pk if found else ""
        hot = self._hot_fields(tenant, [row.rk[-26:] for row in found])
        return Page([_summary(row, hot.get(row.rk[-26:], {})) for row in found], token)

    def _hot_fields(self, tenant: str, ids: list[str]) -> dict[str, Mapping[str, Value]]:
        """The fields a list shows that change too often to copy into index rows, per job id.

        Job rows are keyed by ULID, so a page in creation order (the default sort) is one short
        run of job rows: a single range query, reading at most 20 rows per job asked for,
        usually finds them all. Whatever it leaves out (a page spread over many jobs) is read
        point by point, in parallel.
        """
        if not ids:
            return {}
        wanted = set(ids)
        hot: dict[str, Mapping[str, Value]] = {}
        first, last = min(wanted), max(wanted)
        span = min(_MAX_PAGE, 20 * len(wanted))  # rows one range request may read for them
        # "!" sorts before every ULID character: the range ends just after the last id.
        rows = self.table.query(tenant, rk_ge=first, rk_lt=last + "!", select=_HOT_COLUMNS, page_size=span)
        covered = True
        for scanned, row in enumerate(rows, start=1):
            if row.rk in wanted:
                hot[row.rk] = row.data
            if len(hot) == len(wanted):
                break
            if scanned >= span:
                covered = False
                break
        missing = [job_id for job_id in ids if job_id not in hot]
        if missing and not covered:
            read = _pool().map(lambda job_id: self._hot(tenant, job_id), missing)
            hot.update(zip(missing, read, strict=True))
        return hot

    def _hot(self, tenant: str, job_id: str) -> Mapping[str, Value]:
        try:
            return self.table.get(tenant, job_id, select=_HOT_COLUMNS).data
        except NotFound:
            return {}

    def audit_trail(self, tenant: str, job_id: str, limit: int, continuation: str | None) -> Page[AuditEntry]:
        prefix, end = f"~a~{job_id}~", f"~a~{job_id}~~"
        scope = f"audit:{job_id}"
        after = decode_token(scope, continuation) if continuation else None
        rows = self.table.query(
            tenant, rk_gt=after, rk_ge=None if after else prefix, rk_lt=end, page_size=limit + 1
        )
        return page_of(rows, limit, scope, _audit)
