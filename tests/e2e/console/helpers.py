"""What the console tests share: Playwright's `expect`, a field's error and a
`<dt>`'s value on the page, and a template made through the API."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.console.conftest import Stack


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def described_by(page: Any, field: Any) -> Any:
    """The first element a field's `aria-describedby` names (its error, when it has one)."""
    described = field.get_attribute("aria-describedby")
    assert described, "a field error must be tied to its field"
    return page.locator(f'[id="{described.split()[0]}"]')


def fact(scope: Any, term: str) -> Any:
    """The `<dd>` of a `<dt>` that says exactly `term`."""
    dt = scope.locator("dt").filter(has_text=re.compile(f"^{re.escape(term)}$"))
    return dt.locator("xpath=following-sibling::dd[1]")


def create_template(
    stack: Stack,
    name: str,
    description: str,
    task: dict[str, Any],
    parameters: list[dict[str, Any]],
    **fields: Any,
) -> dict[str, Any]:
    """A model-training template made through the API (201 asserted), as the API answers it."""
    body = {
        "name": name,
        "description": description,
        "job_type": "model_training",
        "task": task,
        "parameters": parameters,
        **fields,
    }
    r = stack.http.post("/api/templates", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())
