"""A destination for notifications in memory: records each post and answers as the test says.

Passes the same contract tests as `HttpPoster` against the loopback receiver
(tests/integration/test_notifications.py::test_posters_keep_the_same_contract).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int | None, str | None]


@dataclass
class Post:
    url: str
    body: Any
    headers: dict[str, str]
    data: bytes


@dataclass
class FakePoster:
    """`answer(url)` says what a post gets: (status, None) or (None, why); default 200."""

    answer: Callable[[str], Answer] = field(default=lambda url: (200, None))
    posts: list[Post] = field(default_factory=list)

    def post(self, url: str, data: bytes, headers: dict[str, str], timeout: float) -> Answer:
        self.posts.append(Post(url, json.loads(data), dict(headers), data))
        status, error = self.answer(url)
        if status is not None and not 200 <= status < 300 and error is None:
            error = f"HTTP {status}"
        return status, error

    def to(self, url: str) -> list[Post]:
        return [p for p in self.posts if p.url == url]
