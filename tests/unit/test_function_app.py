"""What the Functions host would see when it indexes function_app.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_host_json_uses_extension_bundle_v4_and_the_api_prefix() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"].startswith("[4.")
    assert host["extensions"]["http"]["routePrefix"] == "api"


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
