"""A local stand-in for the Azure Functions host: serves the functions registered in `function_app.py`.

Core Tools cannot be installed here, so this host does the part of its job the
scheduler relies on, and nothing more:

* HTTP: every request under the route prefix of host.json (`/api`) becomes a
  `func.HttpRequest` handed to the registered HTTP function (for this app, the
  `AsgiFunctionApp` wrapper around the FastAPI app), and its `func.HttpResponse`
  is sent back. The request goes through the same `AsgiMiddleware` as in Azure.
* Settings: `local.settings.json` (or the sample) `Values` become environment
  variables, as Core Tools does; variables already set win.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import azure.functions as func

ROOT = Path(__file__).resolve().parent.parent


def load_local_settings(root: Path = ROOT) -> dict[str, str]:
    """Apply local.settings.json (else the sample) to os.environ without overriding; return what applied."""
    for name in ("local.settings.json", "local.settings.sample.json"):
        path = root / name
        if path.exists():
            values: Mapping[str, Any] = json.loads(path.read_text()).get("Values", {})
            applied = {}
            for key, value in values.items():
                if key not in os.environ and value not in (None, ""):
                    os.environ[key] = str(value)
                    applied[key] = str(value)
            return applied
    return {}


def route_prefix(root: Path = ROOT) -> str:
    host = json.loads((root / "host.json").read_text())
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return "/" + str(prefix).strip("/") if prefix else ""


class LocalContext(func.Context):
    """What the Functions worker passes as `context`: ids and names, no tracing."""

    def __init__(self, function_name: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(ROOT)

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def functions_by_trigger(app: func.FunctionApp) -> dict[str, list[Any]]:
    """The registered functions grouped by trigger type (httpTrigger, timerTrigger, serviceBusTrigger)."""
    groups: dict[str, list[Any]] = {}
    for fn in app.get_functions():
        trigger = fn.get_trigger()
        groups.setdefault(trigger.get_binding_name() if trigger else "none", []).append(fn)
    return groups


class HttpHost:
    """An ASGI app that forwards each request to the registered HTTP function, as the host does."""

    def __init__(self, app: func.FunctionApp, http_function: Any, prefix: str) -> None:
        self.app = app
        self.name = http_function.get_function_name()
        self.handler = http_function.get_user_function()
        self.prefix = prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        if not (path == self.prefix or path.startswith(self.prefix + "/")):
            await _send(
                send, 404, [(b"content-type", b"text/plain")], b"Not found (outside the route prefix)"
            )
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers: dict[str, str] = {}
        for raw_key, raw_value in scope["headers"]:
            key, value = raw_key.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        host = headers.get("host", "127.0.0.1")
        query = scope.get("query_string", b"").decode("latin-1")
        request = func.HttpRequest(
            method=scope["method"],
            url=f"http://{host}{path}" + (f"?{query}" if query else ""),
            headers=headers,
            params=dict(parse_qsl(query, keep_blank_values=True)),
            route_params={"route": path[len(self.prefix) + 1 :]},
            body=body,
        )
        response: func.HttpResponse = await self.handler(request, LocalContext(self.name))
        out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        if response.mimetype and not any(k == b"content-type" for k, _ in out):
            out.append((b"content-type", response.mimetype.encode("latin-1")))
        await _send(send, response.status_code, out, response.get_body())

    async def _lifespan(self, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        if getattr(self.app, "startup_task_done", False):
            # AsgiFunctionApp started its ASGI app's lifespan on the first request, on this
            # event loop; end it here (its own __del__ would try at interpreter teardown).
            await self.app.middleware.notify_shutdown()  # type: ignore[attr-defined]
            self.app.startup_task_done = False  # type: ignore[attr-defined]
        await send({"type": "lifespan.shutdown.complete"})


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
