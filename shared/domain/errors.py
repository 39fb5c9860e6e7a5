"""One small hierarchy of errors; `shared/api/problems.py` maps it to HTTP."""

from __future__ import annotations

from collections.abc import Mapping


class SchedulerError(Exception):
    """Base of every error the scheduler raises on purpose."""

    code = "scheduler_error"

    def __init__(self, detail: str, *, errors: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: dict[str, str] = dict(errors or {})


class InvalidInput(SchedulerError):
    """A request the caller can fix: a bad field, an impossible combination."""

    code = "invalid_input"


class InvalidSchedule(InvalidInput):
    code = "invalid_schedule"


class NotFound(SchedulerError):
    code = "not_found"


class Conflict(SchedulerError):
    """The request is valid but the job's current state does not allow it."""

    code = "conflict"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class PreconditionFailed(Conflict):
    """The caller's If-Match does not name the current version."""

    code = "precondition_failed"


class ConcurrencyConflict(SchedulerError):
    """Storage refused a write because the entity changed since it was read (ETag)."""

    code = "concurrency_conflict"


class AlreadyExists(SchedulerError):
    code = "already_exists"


class Unauthenticated(SchedulerError):
    code = "unauthenticated"


class Forbidden(SchedulerError):
    code = "forbidden"


class ExternalError(SchedulerError):
    """A dependency (storage, Service Bus, Databricks) failed; `retryable` says whether to try again."""

    code = "external_error"

    def __init__(self, detail: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retryable = retryable
        self.retry_after = retry_after
