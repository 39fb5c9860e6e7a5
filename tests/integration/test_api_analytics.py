"""`GET /api/analytics` (issue 14): a window of days grouped by job type, job or tenant, only over
the caller's tenants; bad windows and groupings are 422s. The runs come from the whole host loop."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from functions.http_api import create_api
from tests.conftest import TableFactory
from tests.fakes.databricks import FakeOutcome
from tests.integration.test_api import ADMIN, PROBLEM, A, B, principal
from tests.world import T0, World


def test_a_caller_sees_its_tenants_runs_by_job_type_job_or_tenant(table_factory: TableFactory) -> None:
    w = World(table_factory, settings={"AUTH_MODE": "development"})
    mine = w.job(name="mine", schedule={"cron": "*/10 * * * *"})
    w.job("team-b", name="theirs", job_type="data_processing", schedule={"cron": "*/10 * * * *"})
    w.fake.outcomes.extend([FakeOutcome.SUCCESS] * 40)
    w.run_until(T0 + timedelta(hours=1))
    with TestClient(create_api(lambda: w.s)) as client:
        r = client.get("/api/analytics", params={"window": "P7D", "group_by": "job"}, headers=A)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["window"] == "P7D" and out["tenants"] == ["team-a"] and out["group_by"] == "job"
        [group] = out["groups"]
        ended = [run for run in w.runs(mine) if run.state.is_terminal]
        assert group["key"] == mine.id and group["name"] == "mine" and group["tenant"] == "team-a"
        assert group["runs"] == len(ended) == group["succeeded"] > 3 and group["success_rate"] == 1.0
        assert group["duration_p50_s"] > 0 and group["days"][0]["day"] == "2026-06-01"
        assert out["total"]["runs"] == group["runs"]
        both = principal(["team-a", "team-b"], oid="carol", name="Carol")
        r = client.get("/api/analytics", params={"group_by": "tenant"}, headers=both)
        assert [g["key"] for g in r.json()["groups"]] == ["team-a", "team-b"]
        r = client.get("/api/analytics", params={"group_by": "job_type"}, headers=ADMIN)
        assert {g["key"] for g in r.json()["groups"]} == {"model_training", "data_processing"}
        assert client.get("/api/analytics", headers=B).json()["groups"][0]["key"] == "data_processing"
        for params, field in (
            ({"window": "PT12H"}, "window"),
            ({"window": "P91D"}, "window"),
            ({"window": "soon"}, "window"),
            ({"group_by": "pool"}, "group_by"),
        ):
            r = client.get("/api/analytics", params=params, headers=A)
            assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (params, r.text)
            assert field in r.json()["errors"], r.text
