"""The kit's own tests: tests/fakeservice.py answers what the spec says, sent by a plain client.

These speak raw httpx (no fbundle code), so they pin the stand-in the client tests rely on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploykit import AGENT, make_bundle, sha
from tests.fakeservice import PREVIEW, TOKEN, V1, FakeService

FEATURES = {"Foundry-Features": "CodeAgents=V1Preview,HostedAgents=V1Preview"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService() as fake:
        yield fake


def post_zip(fake: FakeService, route: str, zip_path: Path, headers: dict[str, str],
             api_version: str = PREVIEW) -> httpx.Response:
    with open(zip_path, "rb") as code:
        return httpx.post(f"{fake.endpoint}{route}?api-version={api_version}", headers=headers,
                          files={"metadata": (None, (zip_path.parent / "metadata.json")
                                              .read_bytes(), "application/json"),
                                 "code": (f"{AGENT}.zip", code, "application/zip")})


def test_the_fake_refuses_an_upload_without_the_preview_header(
        service: FakeService, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    response = post_zip(service, "/agents", zip_path,
                        {**AUTH, "x-ms-agent-name": AGENT, "x-ms-code-zip-sha256": sha(zip_path)})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "preview_feature_required"
    assert response.json()["error"]["additionalInfo"]["request_id"]


@pytest.mark.parametrize("drop", ["x-ms-agent-name", "x-ms-code-zip-sha256"])
def test_the_fake_answers_400_without_a_required_header(
        service: FakeService, tmp_path: Path, drop: str) -> None:
    zip_path = make_bundle(tmp_path)
    headers = {**AUTH, **FEATURES, "x-ms-agent-name": AGENT,
               "x-ms-code-zip-sha256": sha(zip_path)}
    del headers[drop]
    response = post_zip(service, "/agents", zip_path, headers)
    assert response.status_code == 400
    assert drop in response.json()["error"]["message"]


def test_the_versions_route_answers_a_bare_version_with_its_content_hash(
        service: FakeService, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    response = post_zip(service, f"/agents/{AGENT}/versions", zip_path,
                        {**AUTH, "x-ms-code-zip-sha256": sha(zip_path)}, api_version=V1)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "agent.version" and body["version"] == "1"
    assert body["definition"]["code_configuration"]["content_hash"] == sha(zip_path)


def test_the_fakes_lists_page_with_limit_order_after(
        service: FakeService, tmp_path: Path) -> None:
    for n in range(3):
        zip_path = make_bundle(tmp_path / str(n), f"x = {n}\n")
        assert post_zip(service, f"/agents/{AGENT}/versions", zip_path,
                        {**AUTH, "x-ms-code-zip-sha256": sha(zip_path)},
                        api_version=V1).status_code == 200
    url = f"{service.endpoint}/agents/{AGENT}/versions"
    page = httpx.get(url, params={"api-version": V1, "limit": 2}, headers=AUTH).json()
    assert [v["version"] for v in page["data"]] == ["3", "2"]
    assert (page["has_more"], page["last_id"]) == (True, "2")
    rest = httpx.get(url, params={"api-version": V1, "limit": 2, "after": "2"},
                     headers=AUTH).json()
    assert [v["version"] for v in rest["data"]] == ["1"] and rest["has_more"] is False
    bad = httpx.get(url, params={"api-version": V1, "limit": 0}, headers=AUTH)
    assert bad.status_code == 400


def test_the_fakes_logstream_sends_event_log_frames_after_a_metadata_frame(
        service: FakeService, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    post_zip(service, "/agents", zip_path, {**AUTH, **FEATURES, "x-ms-agent-name": AGENT,
                                            "x-ms-code-zip-sha256": sha(zip_path)})
    service.config.log_events = [{"message": "hello", "stream": "stderr"}]
    text = httpx.get(f"{service.endpoint}/agents/{AGENT}/sessions/s:logstream",
                     params={"api-version": PREVIEW}, headers=AUTH).text
    frames = [f for f in text.split("\n\n") if f]
    assert frames[0].startswith("event: session\ndata: ")
    assert frames[1] == ('event: log\ndata: {"timestamp": "2026-03-10T09:33:17.121Z", '
                         '"stream": "stderr", "message": "hello"}')
    too_many = httpx.get(f"{service.endpoint}/agents/{AGENT}/sessions/s:logstream",
                         params={"api-version": PREVIEW, "tail": 301}, headers=AUTH)
    assert too_many.status_code == 400


def test_the_fakes_download_tells_the_digest_where_configured(
        service: FakeService, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    post_zip(service, "/agents", zip_path, {**AUTH, **FEATURES, "x-ms-agent-name": AGENT,
                                            "x-ms-code-zip-sha256": sha(zip_path)})
    url = f"{service.endpoint}/agents/{AGENT}/code:download"
    got = httpx.get(url, params={"api-version": PREVIEW}, headers={**AUTH, **FEATURES})
    assert hashlib.sha256(got.content).hexdigest() == got.headers["x-ms-code-zip-sha256"]
    assert got.headers["x-ms-agent-version"] == "1"
    service.config.digest_in = ("content_hash",)
    got = httpx.get(url, params={"api-version": PREVIEW}, headers={**AUTH, **FEATURES})
    assert "x-ms-code-zip-sha256" not in got.headers
    assert httpx.get(url, params={"api-version": PREVIEW}, headers=AUTH).status_code == 403
