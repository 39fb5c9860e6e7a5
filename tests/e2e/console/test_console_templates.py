"""Templates in the console: a template made through the API is listed, opened, and a job made from
it through the form generated from its parameters' types.

The form sends what the browser cannot judge (a required choice left empty, 2.5 for an integer) and
the server's 422 names each parameter: the errors show at their fields; once fixed, the job is made
and its page says which template and version it came from, with its values and its task filled in.
A template's JSON is changed in place as a new version, and a stale change (someone saved another
version meanwhile) is refused and explained.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.console.conftest import Stack, axe_violations, horizontal_overflow, unique
from tests.e2e.console.helpers import create_template, described_by, expect, fact

pytestmark = [pytest.mark.e2e, pytest.mark.azurite, pytest.mark.timeout(120)]


def make_template(stack: Stack, name: str) -> dict[str, Any]:
    task = {
        "kind": "databricks_job",
        "job_id": 123,
        "parameters": {
            "market": "{{params.market}}",
            "lr": "{{params.learning_rate}}",
            "epochs": "{{params.epochs}}",
            "full": "{{params.full_refresh}}",
        },
    }
    parameters = [
        {"name": "market", "type": "enum", "options": ["de", "fr", "uk"], "required": True},
        {"name": "learning_rate", "type": "float", "default": 0.001},
        {"name": "epochs", "type": "int", "default": 10, "description": "Passes over the data"},
        {"name": "full_refresh", "type": "bool", "default": False},
    ]
    return create_template(
        stack,
        name,
        "Train a churn model for one market",
        task,
        parameters,
        retry={"max_attempts": 3, "initial_delay": "PT5M"},
        tags=["churn"],
    )


def test_a_job_is_made_from_a_template_through_its_generated_form(page: Any, console_stack: Stack) -> None:
    template = make_template(console_stack, unique("train"))
    name = template["name"]
    job_name = unique("churn-fr")

    page.goto("/console/")
    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page.get_by_role("heading", name="Templates", exact=True)).to_be_visible()
    table = page.get_by_role("table", name="Templates")
    row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))
    expect(row).to_have_count(1)
    cells = row.get_by_role("cell")
    expect(cells.nth(0)).to_have_text("Train a churn model for one market")
    expect(cells.nth(1)).to_have_text("Model training")
    expect(cells.nth(2)).to_have_text("4")  # parameters
    expect(cells.nth(3)).to_have_text("v1")
    assert axe_violations(page) == []

    row.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/console/templates/{re.escape(name)}$"))
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    params = page.get_by_role("table", name="Parameters")
    market_row = params.get_by_role("row").filter(has=page.get_by_role("rowheader", name="market"))
    expect(market_row.get_by_role("cell")).to_have_text(["enum", "required", "de, fr, uk", "—"])
    epochs_row = params.get_by_role("row").filter(has=page.get_by_role("rowheader", name="epochs"))
    expect(epochs_row.get_by_role("cell")).to_have_text(["int", "default 10", "—", "Passes over the data"])
    expect(fact(page, "Task")).to_contain_text("Databricks job 123 with market={{params.market}}")

    form = page.get_by_role("form", name="Create job from template")
    # The inputs follow the types, the defaults are filled in.
    market = form.get_by_label("market", exact=True)
    expect(market).to_have_attribute("required", "")
    expect(market).to_have_value("")
    epochs = form.get_by_label("epochs", exact=True)
    expect(epochs).to_have_attribute("type", "number")
    expect(epochs).to_have_attribute("step", "1")
    expect(epochs).to_have_value("10")
    rate = form.get_by_label("learning_rate", exact=True)
    expect(rate).to_have_attribute("step", "any")
    expect(rate).to_have_value("0.001")
    full = form.get_by_label("full_refresh", exact=True)
    expect(full).not_to_be_checked()

    form.get_by_label("Name", exact=True).fill(job_name)
    form.get_by_label("Cron expression").fill("0 2 * * *")
    form.get_by_label("Time zone").fill("Europe/Berlin")
    expect(form.get_by_role("region", name="Next fire times")).to_contain_text("2:00")
    # What the server refuses: the required choice left empty, a fraction for an integer.
    epochs.fill("2.5")
    with page.expect_response(lambda r: r.url.endswith("/api/jobs/schedule")) as answer:
        form.get_by_role("button", name="Create job").click()
    assert answer.value.status == 422
    refused = answer.value.json()["errors"]
    assert refused == {"parameters.market": "is required", "parameters.epochs": "must be an integer"}
    expect(market).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, market)).to_have_text("is required")
    expect(epochs).to_have_attribute("aria-invalid", "true")
    expect(described_by(page, epochs)).to_have_text("must be an integer")
    expect(market).to_be_focused()
    expect(form.get_by_label("Name", exact=True)).to_have_value(job_name)  # what was typed stays
    expect(form.get_by_role("alert")).to_have_count(0)  # every error has its field
    assert axe_violations(page) == []

    market.select_option("fr")
    epochs.fill("20")
    full.check()
    form.get_by_role("button", name="Create job").click()

    expect(page).to_have_url(re.compile(r"/console/jobs/[^/]+$"))
    expect(page.get_by_role("heading", name=job_name, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Created job {job_name} from template {name} v1")
    made = page.get_by_role("region", name="Template")
    expect(made).to_contain_text(f"Made from template {name} v1")
    values = made.get_by_role("definition")
    expect(fact(made, "market")).to_have_text("fr")
    expect(fact(made, "learning_rate")).to_have_text("0.001")
    expect(fact(made, "epochs")).to_have_text("20")
    expect(fact(made, "full_refresh")).to_have_text("true")
    expect(values).to_have_count(4)
    expect(fact(page, "Task")).to_have_text(
        "Databricks job 123 with market=fr, lr=0.001, epochs=20, full=true"
    )
    expect(fact(page, "Schedule")).to_contain_text("02:00")

    job_id = page.url.rsplit("/", 1)[-1]
    job = console_stack.job(job_id)
    assert job["template"] == {
        "name": name,
        "version": 1,
        "parameters": {"market": "fr", "learning_rate": 0.001, "epochs": 20, "full_refresh": True},
    }
    assert job["schedule"]["timezone"] == "Europe/Berlin" and job["retry"]["max_attempts"] == 3
    assert axe_violations(page) == []

    made.get_by_role("link", name=f"{name} v1").click()
    expect(page).to_have_url(re.compile(rf"/console/templates/{re.escape(name)}\?version=1$"))
    expect(page.get_by_text("This is version 1 as it was asked for")).to_be_visible()
    console_stack.http.delete(f"/api/jobs/{job_id}")


def test_a_template_is_changed_as_json_and_a_stale_change_is_refused(page: Any, console_stack: Stack) -> None:
    template = make_template(console_stack, unique("edit"))
    name = template["name"]
    page.goto(f"/console/templates/{name}")
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()

    page.get_by_role("button", name="Edit as JSON").click()
    editor = page.get_by_label("Template (JSON)")
    spec = json.loads(editor.input_value())
    assert "version" not in spec and spec["name"] == name
    spec["description"] = "Train one market's churn model"
    editor.fill(json.dumps(spec, indent=2))
    page.get_by_role("button", name="Save new version").click()
    expect(page.get_by_role("status")).to_contain_text(f"Saved template {name} as version 2")
    expect(page.get_by_text("Model training · version 2")).to_be_visible()
    expect(page.get_by_text("Train one market's churn model", exact=True)).to_be_visible()

    # Someone saves version 3 while this page still shows version 2: the save is refused.
    page.get_by_role("button", name="Edit as JSON").click()
    theirs = {**spec, "description": "their change"}
    r = console_stack.http.put(f"/api/templates/{name}", json=theirs, headers={"If-Match": '"v2"'})
    assert r.status_code == 200, r.text
    editor.fill(json.dumps({**spec, "description": "my change"}))
    page.get_by_role("button", name="Save new version").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone saved another version of this template")
    expect(page.get_by_text("Model training · version 3")).to_be_visible()
    expect(page.get_by_text("their change", exact=True)).to_be_visible()
    assert console_stack.http.get(f"/api/templates/{name}").json()["description"] == "their change"


def test_the_templates_pages_fit_a_phone(page: Any, console_stack: Stack) -> None:
    template = make_template(console_stack, unique("phone"))
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/console/templates")
    expect(page.get_by_role("table", name="Templates")).to_be_visible()
    assert horizontal_overflow(page) == 0
    page.goto(f"/console/templates/{template['name']}")
    expect(page.get_by_role("form", name="Create job from template")).to_be_visible()
    expect(page.get_by_role("region", name="Next fire times")).to_be_visible()
    assert horizontal_overflow(page) == 0
