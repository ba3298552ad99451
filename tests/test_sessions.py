"""``fbundle sessions create`` and ``sessions show`` against the fake service (the spec's
``createSession`` and ``getSession``), and what a created session means to ``invoke`` and
``logs``. The real CLI and httpx stack, under both api-versions where it matters.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests import deploykit
from tests.deploykit import AGENT, RunCli, make_bundle
from tests.fakeservice import PREVIEW, TOKEN, V1, FakeService, Recorded
from tests.test_invoke import deployed, invokes

fake = deploykit.fake
API_VERSIONS = pytest.mark.parametrize("api_version", [PREVIEW, V1])


def creates(fake: FakeService) -> list[Recorded]:
    return [c for c in fake.calls("POST") if c.path == f"/agents/{AGENT}/endpoint/sessions"]


@API_VERSIONS
def test_sessions_create_sends_the_specs_body_and_the_next_invoke_and_logs_use_it(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, api_version: str) -> None:
    deployed(fake, run_cli, tmp_path, api_version)
    result = run_cli("sessions", "create", "--agent", AGENT, "--api-version", api_version)
    assert result.exit_code == 0, result.output
    (sid,) = fake.agents[AGENT].sessions
    assert result.stdout == f"{AGENT}: created session {sid} (version 1, creating)\n"
    call = creates(fake)[-1]
    assert (call.status, call.query) == (201, {"api-version": "v1"})
    assert call.headers["content-type"] == "application/json"
    assert json.loads(call.body) == {"version_indicator": {"type": "version_ref",
                                                           "agent_version": "1"}}
    again = run_cli("invoke", "--agent", AGENT, "--input", "hi", "--api-version", api_version)
    assert again.exit_code == 0, again.output
    assert f"{AGENT}: reusing session {sid} (--new-session for a fresh one)" in again.stderr
    assert json.loads(invokes(fake)[-1].body)["agent_session_id"] == sid
    assert list(fake.agents[AGENT].sessions) == [sid]  # routed to it, no second sandbox
    fake.config.log_events = [{"message": "in the created session"}]
    logs = run_cli("logs", "--agent", AGENT, "--api-version", api_version)
    assert logs.exit_code == 0, logs.output
    assert fake.calls("GET")[-1].path == f"/agents/{AGENT}/sessions/{sid}:logstream"


def test_sessions_create_with_a_version_and_an_id_of_ones_own(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    assert run_cli("deploy", make_bundle(tmp_path / "two", "x = 2\n"), "--agent",
                   AGENT).exit_code == 0
    result = run_cli("sessions", "create", "--agent", AGENT, "--version", "1",
                     "--session-id", "my-session", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["agent_session_id"] == "my-session"
    assert created["version_indicator"] == {"type": "version_ref", "agent_version": "1"}
    assert set(created) >= {"status", "created_at", "last_accessed_at", "expires_at"}
    assert json.loads(creates(fake)[-1].body) == {
        "version_indicator": {"type": "version_ref", "agent_version": "1"},
        "agent_session_id": "my-session"}
    # the session keeps version 1 although version 2 is the latest
    said = run_cli("invoke", "--agent", AGENT, "--input", "hi", "--session", "my-session")
    assert said.stdout == "v1 says: hi\n"
    twice = run_cli("sessions", "create", "--agent", AGENT, "--session-id", "my-session")
    assert twice.exit_code == 1
    assert twice.stderr.splitlines()[-1].endswith(
        "— session my-session exists already; pick another --session-id, or invoke it with "
        "--session")
    assert "HTTP 409" in twice.stderr


def test_sessions_create_defaults_to_the_latest_version(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    assert run_cli("deploy", make_bundle(tmp_path / "two", "x = 2\n"), "--agent",
                   AGENT).exit_code == 0
    result = run_cli("sessions", "create", "--agent", AGENT)
    assert result.exit_code == 0, result.output
    assert "(version 2, creating)" in result.stdout
    assert json.loads(creates(fake)[-1].body)["version_indicator"]["agent_version"] == "2"


def test_sessions_create_refuses_bad_input_and_reports_the_services_refusals(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    for args, message in ((["--session-id", "../x"], "--session-id '../x' is not a session id "
                                                     "— use letters, digits and _.~-"),
                          (["--version", "one"], "--version 'one' is not a version number")):
        refused = run_cli("sessions", "create", "--agent", AGENT, *args)
        assert refused.exit_code == 2, refused.output
        assert message in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert fake.requests == []
    nobody = run_cli("sessions", "create", "--agent", "nobody")
    assert nobody.exit_code == 1 and "agent nobody not found" in nobody.stderr
    assert creates(fake) == []
    deployed(fake, run_cli, tmp_path)
    missing = run_cli("sessions", "create", "--agent", AGENT, "--version", "9")
    assert missing.exit_code == 1
    assert "HTTP 400" in missing.stderr and "has no version 9" in missing.stderr
    assert fake.agents[AGENT].sessions == {}


@API_VERSIONS
def test_sessions_show(fake: FakeService, run_cli: RunCli, tmp_path: Path,
                       api_version: str) -> None:
    deployed(fake, run_cli, tmp_path, api_version)
    sid = fake.add_session(AGENT, "1", "s-show")
    shown = run_cli("sessions", "show", "--agent", AGENT, sid, "--api-version", api_version)
    assert shown.exit_code == 0, shown.output
    header, row = shown.stdout.splitlines()
    assert header.split() == ["SESSION", "STATUS", "VERSION", "LAST", "USED", "CREATED",
                              "EXPIRES"]
    assert row.split()[:3] == [sid, "active", "1"]
    got = fake.calls("GET")[-1]
    assert (got.path, got.query) == (f"/agents/{AGENT}/endpoint/sessions/{sid}",
                                     {"api-version": "v1"})
    as_json = run_cli("sessions", "show", "--agent", AGENT, sid, "--json")
    assert json.loads(as_json.stdout)["agent_session_id"] == sid
    gone = run_cli("sessions", "show", "--agent", AGENT, "nope")
    assert gone.exit_code == 1
    assert gone.stderr.splitlines()[-1] == (
        f"error: {AGENT}: session nope not found (deleted, expired, or never created) — "
        "`fbundle sessions list` shows the agent's sessions")
    bad = run_cli("sessions", "show", "--agent", AGENT, "../x")
    assert bad.exit_code == 2 and "SESSION '../x' is not a session id" in bad.stderr


# -- the fake itself, spoken to with plain httpx (no fbundle code) -----------------------------

def _create(fake: FakeService, body: object, content_type: str = "application/json"
            ) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{fake.endpoint}/agents/{AGENT}/endpoint/sessions?api-version={V1}",
                      content=data, headers={"Authorization": f"Bearer {TOKEN}",
                                             "Content-Type": content_type})


def test_the_fake_checks_create_session_bodies_as_the_spec_defines_them(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    ref = {"type": "version_ref", "agent_version": "1"}
    for body, status, words in (
            ({}, 400, "version_indicator is required"),
            ({"version_indicator": {"type": "latest"}}, 400, "is not version_ref"),
            ({"version_indicator": {"type": "version_ref"}}, 400, "agent_version is required"),
            ({"version_indicator": {**ref, "agent_version": "7"}}, 400, "has no version 7"),
            ({"version_indicator": ref, "agent_session_id": 5}, 400, "must be a string"),
            (b"{nope", 400, "not JSON"),
            ([ref], 400, "must be a JSON object")):
        answer = _create(fake, body)
        assert (answer.status_code, words in answer.json()["error"]["message"]) == (status, True)
    assert _create(fake, {"version_indicator": ref}, "text/plain").status_code == 415
    made = _create(fake, {"version_indicator": ref, "agent_session_id": "mine"})
    assert made.status_code == 201
    assert made.json() == {"agent_session_id": "mine", "version_indicator": ref,
                           "status": "creating", "created_at": made.json()["created_at"],
                           "last_accessed_at": made.json()["created_at"],
                           "expires_at": made.json()["created_at"] + 30 * 86400}
    assert _create(fake, {"version_indicator": ref, "agent_session_id": "mine"}
                   ).status_code == 409
    assert fake.agents[AGENT].sessions["mine"].status == "active"


def test_the_fake_routes_a_responses_call_by_the_bodys_agent_session_id_only(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.add_session(AGENT, "1", "known")
    url = f"{fake.endpoint}/agents/{AGENT}/endpoint/protocols/openai/responses?api-version={V1}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    spec = httpx.post(url, json={"input": "a", "agent_session_id": "known"}, headers=auth)
    assert spec.headers["x-agent-session-id"] == "known"
    azd = httpx.post(url, json={"input": "a", "session_id": "known"}, headers=auth)
    assert azd.headers["x-agent-session-id"] != "known"  # not the spec's field: a new sandbox


# -- files in a session's sandbox --------------------------------------------------------------

def test_files_upload_list_download_delete_in_the_last_invokes_session(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deployed(fake, run_cli, tmp_path)
    assert run_cli("invoke", "--agent", AGENT, "--input", "hi").exit_code == 0
    (sid,) = fake.agents[AGENT].sessions
    local = tmp_path / "report.csv"
    local.write_bytes(b"a,b\n1,2\n")
    up = run_cli("files", "upload", "--agent", AGENT, local, "--target-path", "data/in.csv")
    assert up.exit_code == 0, up.output
    assert up.stdout == f"{AGENT}: uploaded {local} to data/in.csv in session {sid} (8 bytes)\n"
    put = fake.calls("PUT")[-1]
    assert (put.path, put.query, put.status) == (
        f"/agents/{AGENT}/endpoint/sessions/{sid}/files/content",
        {"api-version": "v1", "path": "data/in.csv"}, 201)
    assert put.headers["content-type"] == "application/octet-stream"
    assert fake.agents[AGENT].sessions[sid].files["data/in.csv"][0] == b"a,b\n1,2\n"
    assert run_cli("files", "upload", "--agent", AGENT, local).exit_code == 0  # to its name
    listed = run_cli("files", "list", "--agent", AGENT)
    assert listed.exit_code == 0, listed.output
    assert [line.split()[:2] for line in listed.stdout.splitlines()] == [
        ["NAME", "SIZE"], ["data/", "-"], ["report.csv", "8"]]
    inside = run_cli("files", "list", "--agent", AGENT, "data", "--json")
    assert [e["name"] for e in json.loads(inside.stdout)] == ["in.csv"]
    assert fake.calls("GET")[-1].query == {"api-version": "v1", "path": "data"}
    monkeypatch.chdir(tmp_path)
    down = run_cli("files", "download", "--agent", AGENT, "data/in.csv")
    assert down.exit_code == 0, down.output
    assert (tmp_path / "in.csv").read_bytes() == b"a,b\n1,2\n"
    assert down.stdout == f"{AGENT}: downloaded data/in.csv from session {sid} to in.csv " \
        "(8 bytes)\n"
    folder = run_cli("files", "delete", "--agent", AGENT, "data", "--yes")
    assert folder.exit_code == 1
    assert folder.stderr.splitlines()[-1].endswith(
        "— data is a folder that is not empty; pass --recursive to delete what is in it")
    gone = run_cli("files", "delete", "--agent", AGENT, "data", "--recursive", "--yes")
    assert gone.exit_code == 0, gone.output
    assert fake.calls("DELETE")[-1].query == {"api-version": "v1", "path": "data",
                                              "recursive": "true"}
    assert list(fake.agents[AGENT].sessions[sid].files) == ["report.csv"]
    missing = run_cli("files", "download", "--agent", AGENT, "data/in.csv", "-o",
                      tmp_path / "again.csv")
    assert missing.exit_code == 1 and not (tmp_path / "again.csv").exists()
    assert f"{AGENT}: data/in.csv not found in session {sid}" in missing.stderr


def test_files_need_a_session_and_refuse_a_file_over_50_mb_before_sending(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    nothing = run_cli("files", "list", "--agent", AGENT)
    assert nothing.exit_code == 2
    assert nothing.stderr.strip() == (f"error: {AGENT}: no session to use — pass --session ID, "
                                      "or invoke the agent (or `fbundle sessions create`) first")
    big = tmp_path / "big.bin"
    with open(big, "wb") as out:
        out.truncate(50 * 1024 * 1024 + 1)  # sparse: no real bytes written
    refused = run_cli("files", "upload", "--agent", AGENT, big, "--session", "s-1")
    assert refused.exit_code == 2
    assert "over the service's 50 MB limit for a session file" in refused.stderr
    assert fake.requests == []
    deployed(fake, run_cli, tmp_path)
    fake.add_session(AGENT, "1", "s-1")
    small = tmp_path / "small.txt"
    small.write_text("x")
    escape = run_cli("files", "upload", "--agent", AGENT, small, "--session", "s-1",
                     "--target-path", "../outside.txt")
    assert escape.exit_code == 1 and "leaves the session home" in escape.stderr
    assert fake.agents[AGENT].sessions["s-1"].files == {}


def test_the_fake_checks_session_file_requests_as_the_spec_defines_them(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    deployed(fake, run_cli, tmp_path)
    fake.add_session(AGENT, "1", "s-f")
    base = f"{fake.endpoint}/agents/{AGENT}/endpoint/sessions/s-f/files"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    params = {"api-version": V1, "path": "a.txt"}
    plain = httpx.put(f"{base}/content", params=params, content=b"x",
                      headers={**auth, "Content-Type": "text/plain"})
    assert plain.status_code == 415
    nowhere = httpx.put(f"{base}/content", params={"api-version": V1}, content=b"x",
                        headers={**auth, "Content-Type": "application/octet-stream"})
    assert nowhere.status_code == 400
    made = httpx.put(f"{base}/content", params=params, content=b"xyz",
                     headers={**auth, "Content-Type": "application/octet-stream"})
    assert (made.status_code, made.json()) == (201, {"path": "a.txt", "bytes_written": 3})
    listing = httpx.get(base, params={"api-version": V1}, headers=auth).json()
    assert listing["path"] == "." and listing["has_more"] is False
    assert [(e["name"], e["size"], e["is_directory"]) for e in listing["entries"]] == [
        ("a.txt", 3, False)]
    assert httpx.get(f"{base}/content", params=params, headers=auth).content == b"xyz"
    assert httpx.delete(base, params=params, headers=auth).status_code == 204
    assert httpx.delete(base, params=params, headers=auth).status_code == 404
    other = httpx.get(f"{fake.endpoint}/agents/{AGENT}/endpoint/sessions/nope/files",
                      params={"api-version": V1}, headers=auth)
    assert other.status_code == 404
