"""Errors as RFC 9457 problem+json: the one place that maps scheduler errors to HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.domain import errors

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:ml-scheduler:problem:"

_STATUS: list[tuple[type[errors.SchedulerError], int, str]] = [
    (errors.PreconditionFailed, 412, "Precondition failed"),
    (errors.InvalidInput, 422, "Invalid input"),
    (errors.NotFound, 404, "Not found"),
    (errors.Conflict, 409, "Conflict"),
    (errors.ConcurrencyConflict, 409, "Conflict"),
    (errors.AlreadyExists, 409, "Conflict"),
    (errors.Unauthenticated, 401, "Unauthenticated"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.ExternalError, 503, "Dependency unavailable"),
]


def problem(
    status: int,
    title: str,
    detail: str,
    code: str,
    field_errors: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if field_errors:
        body["errors"] = dict(field_errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


# What a caller is told when storage itself refused a write or a dependency failed: the
# exception's own detail names tables, keys or hosts, which are nobody's business outside.
_PUBLIC_DETAIL: dict[type[errors.SchedulerError], str] = {
    errors.ExternalError: "a service the scheduler depends on is unavailable; try again shortly",
    errors.ConcurrencyConflict: "the resource changed while this request saved it; try again",
    errors.AlreadyExists: "the resource already exists",
}


def _scheduler_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.SchedulerError)
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            headers = {}
            detail = next((d for k, d in _PUBLIC_DETAIL.items() if isinstance(exc, k)), exc.detail)
            if isinstance(exc, errors.ExternalError):
                log.warning("dependency failed: %s", exc.detail)
                headers["Retry-After"] = str(max(1, int(exc.retry_after or 5)))
            return problem(status, title, detail, exc.code, exc.errors, headers)
    log.error("unmapped scheduler error", exc_info=exc)
    return problem(500, "Internal error", "an unexpected error occurred", "internal")


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
        if where != "body" and not parts:
            return where
    if parts and parts[0] in _BODY_TAGS:  # which body POST /api/jobs/schedule was sent
        parts = parts[1:]
    # pydantic adds a discriminated union member's tag to the path (`task.databricks_job.job_id`,
    # `triggers.1.file_arrival.container`): drop it, so the path names the field as sent.
    parts = [p for i, p in enumerate(parts) if not (p in _UNION_TAGS and i and _tagged(parts[i - 1]))]
    return ".".join(parts) or "body"


_BODY_TAGS = frozenset({"definition", "from_template"})
_UNION_TAGS = frozenset(
    {"databricks_job", "databricks_run", "pipeline", "after", "file_arrival", "webhook", "teams", "slack"}
)


def _tagged(previous: str) -> bool:
    """Whether a union member's tag can follow this part of a path: a task, or an item of a list."""
    return previous == "task" or previous.isdigit()


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    body_errors = [e for e in problems if _field(tuple(e.get("loc", ()))) == "body"]
    content_type = request.headers.get("content-type", "")
    # FastAPI hands over the body it read (None: there was none, which is 422 "body: required").
    if body_errors and exc.body is not None and "json" not in content_type:
        return problem(
            415,
            "Unsupported media type",
            "send the body as JSON with 'Content-Type: application/json'",
            "unsupported_media_type",
        )
    if any(e.get("type") == "json_invalid" for e in problems):
        ctx = next(e for e in problems if e.get("type") == "json_invalid").get("ctx", {})
        return problem(
            400,
            "Malformed JSON",
            f"the request body is not valid JSON: {ctx.get('error', 'parse error')}",
            "malformed_json",
        )
    field_errors: dict[str, str] = {}
    for e in problems:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        field_errors.setdefault(_field(tuple(e.get("loc", ()))), msg)
    summary = "; ".join(f"{k}: {v}" for k, v in list(field_errors.items())[:5])
    return problem(
        422, "Invalid input", f"the request is not valid: {summary}", "invalid_input", field_errors
    )


_HTTP: dict[int, tuple[str, str]] = {
    400: ("malformed_json", "Malformed JSON"),  # FastAPI could not read the body at all
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Payload too large"),
}


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    code, title = _HTTP.get(exc.status_code, ("http_error", detail.partition(":")[0].capitalize()))
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such endpoint: see /api/docs"
    elif exc.status_code == 400 and detail == "There was an error parsing the body":
        detail = "the request body is not valid JSON: it could not be decoded (send UTF-8)"
    return problem(exc.status_code, title, detail, code, headers=exc.headers)


def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged", "internal")


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.SchedulerError, _scheduler_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimit:
    """Refuses bodies over `limit` bytes with 413, whether or not Content-Length is sent.

    The body is read up front (it is small by definition) and replayed to the app,
    so an oversized body never reaches a handler.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: Callable[[], int],
        larger: Callable[[], int] | None = None,
        larger_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.limits = (limit, larger or limit)
        self.larger_paths = larger_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits[scope.get("path", "") in self.larger_paths]()
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(limit, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(limit, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "Payload too large",
            f"the request body is larger than {limit} bytes",
            "payload_too_large",
        )
        await response(scope, receive, send)
