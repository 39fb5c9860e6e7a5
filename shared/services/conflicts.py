"""The one ETag retry loop: re-read and decide again when storage says the row changed under us."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shared.domain.errors import ConcurrencyConflict, Conflict

T = TypeVar("T")
TRIES = 5


def until_saved(attempt: Callable[[], T], what: str, tries: int = TRIES) -> T:
    """Call `attempt` (read, decide, write) until its conditional write lands.

    Every call must read afresh: a ConcurrencyConflict means the row changed since it was read.
    After `tries` conflicts the caller gets Conflict (an HTTP 409: "try again").
    """
    for _ in range(tries):
        try:
            return attempt()
        except ConcurrencyConflict:
            continue
    raise Conflict(f"{what} kept changing while this request tried to save it; try again")
