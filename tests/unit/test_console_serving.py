"""The console's files as the function app serves them (functions/console.py), on a small fake build."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from functions import console
from shared.api import problems

INDEX = '<!doctype html><html><head><script type="module" src="/console/assets/app-1a2b.js"></script></head>'
SCRIPT = "console.log('hello');\n" * 100


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(INDEX)
    (tmp_path / "assets" / "app-1a2b.js").write_text(SCRIPT)
    (tmp_path / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path.parent / "secret.txt").write_text("not for the browser")
    return tmp_path


def client_for(dist: Path) -> TestClient:
    app = FastAPI()
    problems.install(app)
    console.install(app, dist)
    return TestClient(app)


def test_root_and_bare_prefix_lead_to_the_console(build: Path) -> None:
    client = client_for(build)
    for path in ("/", "/console"):
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (307, "/console/")


def test_deep_links_get_the_app_page_with_its_security_headers(build: Path) -> None:
    client = client_for(build)
    for path in ("/console/", "/console/new", "/console/jobs/01KAB3X9M2Q8Z0C7D5E4F6G1H2"):
        r = client.get(path)
        assert r.status_code == 200 and r.text == INDEX, path
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"


def test_hashed_assets_are_cached_for_a_year_and_sent_compressed(build: Path) -> None:
    client = client_for(build)
    r = client.get("/console/assets/app-1a2b.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.text == SCRIPT  # the client undoes the gzip
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) == len(gzip.compress(SCRIPT.encode(), 6, mtime=0))
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in r.headers["content-type"]
    plain = client.get("/console/assets/app-1a2b.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == SCRIPT
    assert client.get("/console/favicon.svg").headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "path", ["/console/assets/gone-9z9z.js", "/console/missing.css", "/console/..%2Fsecret.txt"]
)
def test_missing_files_and_paths_outside_the_build_are_404(build: Path, path: str) -> None:
    r = client_for(build).get(path)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", path
    assert "not for the browser" not in r.text


def test_without_a_build_the_console_says_how_to_build_it(tmp_path: Path) -> None:
    r = client_for(tmp_path / "nothing").get("/console/")
    assert r.status_code == 404 and "make console" in r.json()["detail"]


def test_a_rebuild_is_served_without_a_restart(build: Path) -> None:
    client = client_for(build)
    assert client.get("/console/").text == INDEX
    rebuilt = INDEX.replace("app-1a2b.js", "app-3c4d.js")
    (build / "index.html").write_text(rebuilt)
    assert client.get("/console/jobs/x").text == rebuilt
