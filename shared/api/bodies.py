"""JSON request bodies hold the types their schema says: no coercion.

FastAPI validates a body in pydantic's lax mode, so `"record_skipped_while_paused": 0` or
`"job_id": "123"` pass although the OpenAPI document says boolean and integer. The document is the
contract a generated client relies on, so the API reads bodies again in strict JSON mode (strings
still carry date-times, durations and enum values, as JSON has no other way to) and answers 422,
like any other invalid field, for a value of the wrong JSON type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError


def strict_json(model: Any) -> Callable[[Request], Awaitable[None]]:
    """A dependency that refuses (422) a JSON body whose values `model` would only accept by coercion.

    Declare it after the caller's identity, so that an anonymous request is a 401 whatever its body.
    A body that is not JSON, or none at all, is left to FastAPI (415, 400, or 422 "required").
    """

    adapter: TypeAdapter[Any] = TypeAdapter(model)

    async def check(request: Request) -> None:
        if "json" not in request.headers.get("content-type", ""):
            return
        raw = await request.body()
        if not raw:
            return
        try:
            adapter.validate_json(raw, strict=True)
        except ValidationError as err:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
            raise RequestValidationError(errors) from None

    return check
