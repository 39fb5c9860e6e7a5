"""What the Functions host would see when it indexes function_app.py."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import azure.functions as func
import pytest
from starlette.testclient import TestClient

from devstack.host import HttpHost, functions_by_trigger, route_prefix
from functions.http_api import create_api

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
import function_app
functions = function_app.app.get_functions()
out = []
for fn in functions:
    trigger = fn.get_trigger()
    out.append({
        "name": fn.get_function_name(),
        "trigger": trigger.get_binding_name(),
        "route": getattr(trigger, "route", None),
        "auth": str(getattr(trigger, "auth_level", "")),
        "methods": sorted(str(m) for m in (getattr(trigger, "methods", None) or [])),
    })
heavy = ["azure.data.tables", "azure.servicebus", "databricks.sdk", "azure.identity",
         "azure.monitor.opentelemetry"]
print(json.dumps({"functions": out, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def probe(env: dict[str, str] | None = None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_function_app_registers_the_http_api_on_every_path_under_the_prefix() -> None:
    (http,) = [f for f in probe()["functions"] if f["trigger"] == "httpTrigger"]
    assert http["route"] == "/{*route}"
    assert {"GET", "POST", "PUT", "DELETE"} <= {m.split(".")[-1] for m in http["methods"]}


def test_auth_level_follows_the_auth_mode() -> None:
    def auth(mode: str) -> str:
        (http,) = [f for f in probe({"AUTH_MODE": mode})["functions"] if f["trigger"] == "httpTrigger"]
        return http["auth"].split(".")[-1].upper()

    assert auth("function_key") == "FUNCTION"
    assert auth("app_service") == "ANONYMOUS"  # App Service Authentication guards the API instead


def test_importing_the_app_loads_no_heavy_sdk() -> None:
    assert probe()["loaded"] == []


def test_host_json_uses_extension_bundle_v4_and_an_empty_route_prefix() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"].startswith("[4.")
    # Empty, not the default "api": AsgiFunctionApp's route is "/{*route}", and "api" + "/" + that
    # is "api//{*route}", which the host refuses at start (azure-functions-python-worker#1310).
    # The FastAPI routes carry "/api" themselves.
    assert host["extensions"]["http"]["routePrefix"] == ""


_BINDINGS = """
import json
import function_app
out = {}
for fn in function_app.app.get_functions():
    t = fn.get_trigger()
    out[fn.get_function_name()] = {k: getattr(t, k, None) for k in ("schedule", "queue_name", "connection")}
    out[fn.get_function_name()]["type"] = t.get_binding_name()
print(json.dumps(out))
"""


def test_timer_and_queue_functions_bind_to_what_host_json_and_the_infrastructure_expect() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _BINDINGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    functions = json.loads(result.stdout.strip().splitlines()[-1])
    assert functions["tick"] == {
        "type": "timerTrigger",
        "schedule": "0 * * * * *",
        "queue_name": None,
        "connection": None,
    }
    assert functions["watchdog"]["schedule"] == "30 * * * * *"  # every minute, between ticks
    assert functions["poll"] == {
        "type": "serviceBusTrigger",
        "schedule": None,
        "queue_name": "%PollQueueName%",
        "connection": "ServiceBusConnection",
    }
    assert functions["launch"] == {
        "type": "serviceBusTrigger",
        "schedule": None,
        "queue_name": "%LaunchQueueName%",
        "connection": "ServiceBusConnection",
    }


# --- Routing: what the Functions host registers for the HTTP function, and what reaches it ---------

_ROUTES = """
import json
import function_app
from functions.http_api import api
http = []
for fn in function_app.app.get_functions():
    trigger = fn.get_trigger()
    if trigger.get_binding_name() == "httpTrigger":
        http.append({"name": fn.get_function_name(), "route": trigger.route})
print(json.dumps({"http": http, "paths": sorted(api.openapi()["paths"])}))
"""

# Paths served by the same ASGI app that the OpenAPI document does not list.
_OTHER_PATHS = ["/api/docs", "/api/openapi.json", "/api/docs/static/swagger-ui.css", "/console/", "/"]


def host_route_template(route_prefix: str, route: str) -> str:
    """The template the host registers for an HTTP function (WebJobsRouteBuilder.BuildRouteTemplate)."""
    return route if not route_prefix else f"{route_prefix}/{route}"


def template_segments(template: str) -> list[str]:
    """The template's segments, parsed as ASP.NET Core routing does; ValueError where the host fails.

    One leading `/` (or `~/`) is dropped; after that `/` must separate non-empty segments
    ("The route template separator character '/' cannot appear consecutively"), and a
    catch-all parameter (`{*name}`) can only be the last segment.
    """
    body = template[2:] if template.startswith("~/") else template.removeprefix("/")
    if "//" in template or body.startswith("/"):
        raise ValueError(f"{template!r}: the separator '/' cannot appear consecutively")
    segments = [s for s in body.split("/") if s] if body else []
    for segment in segments[:-1]:
        if segment.startswith("{*"):
            raise ValueError(f"{template!r}: a catch-all parameter must be the last segment")
    return segments


def template_matches(segments: list[str], path: str) -> bool:
    """Whether a path matches: literals in any case, `{p}` one segment, `{*p}` the rest (even nothing)."""
    parts = [p for p in path.split("/") if p]
    for i, segment in enumerate(segments):
        if segment.startswith("{*"):
            return True  # a catch-all takes the rest of the path, even nothing
        if i >= len(parts):
            return False
        if not segment.startswith("{") and segment.lower() != parts[i].lower():
            return False
    return len(parts) == len(segments)


@functools.cache
def routes() -> dict:
    """The HTTP functions and the OpenAPI paths, from a fresh process (get_functions() runs once)."""
    result = subprocess.run(
        [sys.executable, "-c", _ROUTES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def host_route_prefix() -> str:
    """host.json's routePrefix as the host reads it (absent: "api")."""
    host = json.loads((ROOT / "host.json").read_text())
    return str(host.get("extensions", {}).get("http", {}).get("routePrefix", "api"))


def test_the_model_of_the_host_refuses_the_template_the_api_prefix_gave() -> None:
    """The failure this configuration avoids (azure-functions-python-worker#1310)."""
    assert host_route_template("api", "/{*route}") == "api//{*route}"
    with pytest.raises(ValueError, match="consecutively"):
        template_segments("api//{*route}")
    assert template_segments(host_route_template("api", "{*route}")) == ["api", "{*route}"]
    with pytest.raises(ValueError, match="last segment"):
        template_segments("{*route}/api")


def test_the_host_builds_a_valid_route_template_for_each_http_function() -> None:
    prefix = host_route_prefix()
    http = routes()["http"]
    assert http, "no HTTP function registered"
    for fn in http:
        template = host_route_template(prefix, fn["route"])
        assert "//" not in template, template
        assert not (prefix and fn["route"].startswith("/")), f"{prefix!r} + {fn['route']!r}: '//' at the join"
        segments = template_segments(template)  # raises where the host would refuse to start
        assert segments and segments[-1].startswith("{*"), f"{template!r} is not a catch-all"


def test_every_api_path_and_the_console_reach_the_asgi_function() -> None:
    found = routes()
    (http,) = found["http"]  # one HTTP function: the AsgiFunctionApp wrapper
    segments = template_segments(host_route_template(host_route_prefix(), http["route"]))
    paths = [re.sub(r"\{[^}]+\}", "x1", p) for p in found["paths"]]
    assert paths and all(p.startswith("/api/") for p in paths), paths
    # AsgiMiddleware hands FastAPI the request's full path (not the route parameter), so a
    # path that matches the template reaches the FastAPI route of the same name.
    for path in [*paths, *_OTHER_PATHS]:
        assert template_matches(segments, path), f"{path} would not reach the ASGI app"


def test_the_local_host_reads_the_route_prefix_from_host_json(tmp_path: Path) -> None:
    assert route_prefix() == ""
    for value, expected in (("api", "/api"), ("/api/", "/api"), ("", ""), ("/", ""), (None, "/api")):
        http = {} if value is None else {"http": {"routePrefix": value}}
        (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": http}))
        assert route_prefix(tmp_path) == expected, value


def _local_host(prefix: str) -> HttpHost:
    """The local host around the real FastAPI routes (services stubbed: these requests need none)."""
    settings = SimpleNamespace(settings=SimpleNamespace(max_body_bytes=1024))
    app = func.AsgiFunctionApp(app=create_api(lambda: settings), http_auth_level=func.AuthLevel.ANONYMOUS)
    (http,) = functions_by_trigger(app)["httpTrigger"]
    return HttpHost(app, http, prefix)


def test_with_an_empty_prefix_the_local_host_hands_every_path_to_the_app() -> None:
    with TestClient(_local_host(route_prefix())) as client:
        assert client.get("/api/openapi.json").json()["info"]["title"] == "ML job scheduler"
        assert client.get("/api/docs").status_code == 200
        for path in ("/api/nope", "/elsewhere"):
            response = client.get(path)
            # FastAPI's answer (problem+json), not the local host's "outside the route prefix"
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json", path
        root = client.get("/", follow_redirects=False)
        assert (root.status_code, root.headers["location"]) == (307, "/console/")
        console = client.get("/console/jobs/x1")  # the app's page, or (unbuilt) FastAPI's 404
        assert console.status_code == 200 or console.headers["content-type"] == "application/problem+json"


def test_with_a_prefix_the_local_host_refuses_paths_outside_it() -> None:
    with TestClient(_local_host("/api")) as client:
        assert client.get("/api/openapi.json").status_code == 200
        outside = client.get("/console/")
        assert outside.status_code == 404 and outside.text == "Not found (outside the route prefix)"
