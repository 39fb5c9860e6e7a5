"""The Table client's lighter requests session sends exactly what azure-core built."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from shared.adapters.lean_http import LeanSession

Seen = list[tuple[str, str, dict[str, str], bytes]]


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    seen: Seen = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
            self.send_response(302 if self.path == "/moved" else 200)
            if self.path == "/moved":
                self.send_header("Location", "/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST = do_DELETE = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_sends_method_url_headers_and_body_as_given(server: tuple[str, Seen]) -> None:
    base, seen = server
    session = LeanSession()
    response = session.request(
        "post",
        f"{base}/Tables(PartitionKey='a%27b')?$select=x",
        headers={"x-ms-version": "2019-02-02", "Authorization": "SharedKey k"},
        data='{"a": 1}',
        timeout=(5, 5),
        allow_redirects=False,
    )
    assert response.status_code == 200 and response.content == b"ok"
    method, path, headers, body = seen[-1]
    assert (method, path, body) == ("POST", "/Tables(PartitionKey='a%27b')?$select=x", b'{"a": 1}')
    assert headers["x-ms-version"] == "2019-02-02" and headers["Authorization"] == "SharedKey k"
    assert headers["Content-Length"] == "8"


def test_a_bodyless_write_says_its_length_is_zero(server: tuple[str, Seen]) -> None:
    base, seen = server
    LeanSession().request("DELETE", f"{base}/x", headers={}, timeout=5, allow_redirects=False)
    assert seen[-1][2]["Content-Length"] == "0"
    LeanSession().request("GET", f"{base}/x", headers={}, timeout=5, allow_redirects=False)
    assert "Content-Length" not in seen[-1][2]


def test_ignores_proxy_settings_from_the_environment(
    server: tuple[str, Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, seen = server
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    response = LeanSession().request("GET", f"{base}/x", timeout=5, allow_redirects=False)
    assert response.status_code == 200 and seen[-1][1] == "/x"


def test_does_not_follow_redirects_itself(server: tuple[str, Seen]) -> None:
    base, seen = server
    response = LeanSession().request("GET", f"{base}/moved", timeout=5, allow_redirects=False)
    assert response.status_code == 302 and len(seen) == 1


def test_anything_unusual_takes_the_ordinary_path(server: tuple[str, Seen]) -> None:
    base, seen = server
    session = LeanSession()
    response = session.request("GET", f"{base}/moved", timeout=5)  # redirects followed by requests
    assert response.status_code == 200 and [s[1] for s in seen] == ["/moved", "/"]
    session.request("POST", f"{base}/f", files={"f": ("a.txt", b"abc")}, timeout=5, allow_redirects=False)
    assert b"abc" in seen[-1][3]


def test_a_refused_connection_is_a_service_request_error_for_azure_core() -> None:
    # As with azure-core's own session (urllib3 retries off), azure-core maps it to a passing error.
    transport = RequestsTransport(session=LeanSession(), session_owner=True)
    with pytest.raises(ServiceRequestError):
        transport.send(HttpRequest("GET", "http://127.0.0.1:9/x"), connection_timeout=2)
