"""``fbundle deploy/status/download/logs/delete`` against the loopback service (tests/fakeservice).

The CLI runs its real httpx stack; only the far end is a stand-in that implements the article's
contract. Poll and backoff intervals come from the environment, so every wait is milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from bundler.deploy.auth import Secret, get_credential
from bundler.model import BytesData, Entry
from bundler.project import example_metadata
from bundler.write import write_zip
from tests.fakeservice import PREVIEW, TOKEN, FakeService

AGENT = "hello-agent"
RunCli = Callable[..., Result]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    with FakeService() as service:
        monkeypatch.setenv("FBUNDLE_ENDPOINT", service.endpoint)
        monkeypatch.setenv("FBUNDLE_TOKEN", TOKEN)
        monkeypatch.setenv("FBUNDLE_POLL_INTERVAL", "0.005")
        monkeypatch.setenv("FBUNDLE_POLL_MAX_INTERVAL", "0.02")
        monkeypatch.setenv("FBUNDLE_BACKOFF", "0.005")
        monkeypatch.setenv("FBUNDLE_BACKOFF_MAX", "2")
        monkeypatch.setenv("FBUNDLE_LOGS_IDLE", "0.3")
        yield service


def make_bundle(folder: Path, text: str = "print('hello')\n", *,
                metadata: dict[str, object] | None = None, size: int = 0) -> Path:
    """A flat remote_build zip (main.py, requirements.txt, optional filler) + metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"main.py": text.encode(), "requirements.txt": b"agent-framework\n"}
    if size:
        files["data.bin"] = os.urandom(size)  # incompressible, so the zip is really this big
    entries = [Entry(name, len(data), BytesData(data)) for name, data in files.items()]
    zip_path = folder / "agent-code.zip"
    write_zip(entries, zip_path)
    meta = metadata or example_metadata(mode="remote_build")
    (folder / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    return zip_path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- deploy: create, update, dedup, poll ---------------------------------------------------------

def test_first_deploy_creates_the_agent_with_the_articles_multipart_shape(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    result = run_cli("deploy", zip_path, "--agent", AGENT)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{AGENT}: created version 1 (creating)",
                                          f"{AGENT}: version 1 is active"]
    create = fake.calls("POST")[0]
    assert create.path == "/agents"
    assert create.query["api-version"] == PREVIEW
    assert create.headers["x-ms-agent-name"] == AGENT
    assert create.headers["x-ms-code-zip-sha256"] == sha(zip_path)
    assert create.headers["foundry-features"] == "CodeAgents=V1Preview,HostedAgents=V1Preview"
    assert create.headers["accept"] == "application/json"
    assert int(create.headers["content-length"]) > zip_path.stat().st_size
    metadata, code = create.parts
    assert (metadata.name, metadata.content_type, metadata.filename) == (
        "metadata", "application/json", None)
    assert (code.name, code.content_type, code.filename) == ("code", "application/zip",
                                                             f"{AGENT}.zip")
    assert code.sha256 == sha(zip_path) and code.size == zip_path.stat().st_size
    assert fake.agents[AGENT].latest is not None
    assert fake.agents[AGENT].latest.status == "active"
    assert "uploading" not in result.stderr  # no progress bar when stderr is not a terminal


def test_redeploying_the_same_zip_and_definition_says_unchanged(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    assert run_cli("deploy", zip_path, "--agent", AGENT).exit_code == 0
    again = run_cli("deploy", zip_path, "--agent", AGENT, "--json")
    assert again.exit_code == 0, again.output
    assert f"{AGENT}: unchanged, version 1 (active)" in again.stderr
    assert json.loads(again.stdout) == {"agent": AGENT, "version": "1", "status": "active",
                                        "unchanged": True, "created": False,
                                        "sha256": sha(zip_path)}
    update = fake.calls("POST")[-1]
    assert update.path == f"/agents/{AGENT}" and "x-ms-agent-name" not in update.headers
    assert len(fake.calls("POST")) == 2  # one create, one update: never a second create


def test_a_changed_zip_or_definition_mints_a_new_version(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    first = make_bundle(tmp_path / "a")
    assert run_cli("deploy", first, "--agent", AGENT).exit_code == 0
    changed = make_bundle(tmp_path / "b", "print('changed')\n")
    result = run_cli("deploy", changed, "--agent", AGENT, "--no-wait")
    assert result.stdout.splitlines() == [f"{AGENT}: uploaded version 2 (creating)"]
    meta = example_metadata(mode="remote_build")
    meta["description"] = "same code, new definition"
    meta["definition"]["cpu"] = "2"  # type: ignore[index]
    (tmp_path / "b" / "metadata.json").write_text(json.dumps(meta))
    result = run_cli("deploy", changed, "--agent", AGENT, "--no-wait")
    assert result.stdout.splitlines() == [f"{AGENT}: uploaded version 3 (creating)"]
    assert not any(c.path.startswith(f"/agents/{AGENT}/versions/")
                   for c in fake.calls("GET")[-2:])  # --no-wait does not poll


def test_a_failed_version_prints_error_code_and_message_and_exits_1(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.polls_until_active = 3
    fake.config.fail_with = {"code": "ProvisioningError",
                             "message": "pip install failed: No matching distribution for "
                                        "nope==1 (exit code 1) https://aka.ms/x"}
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: {AGENT} version 1 failed: ProvisioningError: pip install failed: No matching "
        "distribution for nope==1 (exit code 1) https://aka.ms/x — fix the cause in "
        "error.message and deploy again")
    assert "version 1: creating" in result.stderr and "version 1: failed" in result.stderr
    polls = [c for c in fake.calls("GET") if c.path == f"/agents/{AGENT}/versions/1"]
    assert len(polls) == 3


def test_json_output_of_a_failed_version_carries_the_error_object(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.fail_with = {"code": "ProvisioningError", "message": "boom"}
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--json")
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["status"] == "failed"
    assert body["error"] == {"code": "ProvisioningError", "message": "boom"}


def test_poll_gives_up_at_the_timeout_with_a_hint(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.polls_until_active = 10_000
    started = time.monotonic()
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--timeout", "0.2")
    assert result.exit_code == 1
    assert time.monotonic() - started < 5
    assert "error: version 1 is still creating after 0.2s" in result.stderr


def test_create_that_meets_409_falls_back_to_update(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    assert run_cli("deploy", zip_path, "--agent", AGENT).exit_code == 0
    # A second client that looked the agent up before it existed: create meets 409.
    from bundler.deploy.auth import Credential
    from bundler.deploy.client import FoundryClient, Upload

    client = FoundryClient(fake.endpoint, lambda: Credential(Secret(TOKEN), "test", "fix"))
    with client:
        meta = json.loads((tmp_path / "metadata.json").read_text())
        response = client.upload(Upload(AGENT, meta, zip_path, sha(zip_path)), create=True)
    assert response.status_code == 409
    assert response.json()["error"]["message"] == f"Agent '{AGENT}' already exists"


def test_ga_api_version_sends_no_preview_header(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--api-version", "v1")
    assert result.exit_code == 0, result.output
    assert fake.requests and all(r.query["api-version"] == "v1" for r in fake.requests)
    assert all("foundry-features" not in r.headers for r in fake.requests)


def test_the_service_rejects_an_upload_without_the_preview_header(
        fake: FakeService, tmp_path: Path) -> None:
    import httpx

    zip_path = make_bundle(tmp_path)
    with open(zip_path, "rb") as code:
        response = httpx.post(
            f"{fake.endpoint}/agents?api-version={PREVIEW}",
            headers={"Authorization": f"Bearer {TOKEN}", "x-ms-agent-name": AGENT,
                     "x-ms-code-zip-sha256": sha(zip_path)},
            files={"metadata": (None, b"{}", "application/json"),
                   "code": (f"{AGENT}.zip", code, "application/zip")})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "preview_feature_required"


@pytest.mark.parametrize("drop", ["x-ms-agent-name", "x-ms-code-zip-sha256"])
def test_the_service_answers_400_without_a_required_header(
        fake: FakeService, tmp_path: Path, drop: str) -> None:
    import httpx

    zip_path = make_bundle(tmp_path)
    headers = {"Authorization": f"Bearer {TOKEN}", "x-ms-agent-name": AGENT,
               "x-ms-code-zip-sha256": sha(zip_path),
               "Foundry-Features": "CodeAgents=V1Preview,HostedAgents=V1Preview"}
    del headers[drop]
    with open(zip_path, "rb") as code:
        response = httpx.post(f"{fake.endpoint}/agents?api-version={PREVIEW}", headers=headers,
                              files={"metadata": (None, b"{}", "application/json"),
                                     "code": (f"{AGENT}.zip", code, "application/zip")})
    assert response.status_code == 400
    assert drop in response.json()["error"]["message"]


def test_an_invalid_agent_name_is_refused_before_any_request(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", "-bad-name-")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: agent name '-bad-name-' must start and end")
    assert fake.requests == []


def test_missing_endpoint_and_agent_are_usage_errors(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = make_bundle(tmp_path)
    result = run_cli("deploy", zip_path)
    assert (result.exit_code, result.stderr.strip()) == (
        2, "error: no agent name — pass --agent NAME or set FBUNDLE_AGENT")
    monkeypatch.delenv("FBUNDLE_ENDPOINT")
    monkeypatch.setenv("FBUNDLE_AGENT", AGENT)
    result = run_cli("deploy", zip_path)
    assert (result.exit_code, result.stderr.strip()) == (
        2, "error: no endpoint — pass --endpoint URL or set FBUNDLE_ENDPOINT")


def test_plain_http_to_a_remote_host_is_refused(run_cli: RunCli, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBUNDLE_TOKEN", TOKEN)
    result = run_cli("status", "--agent", AGENT, "--endpoint", "http://example.com/api/p")
    assert result.exit_code == 2
    assert "uses plain http" in result.stderr


def test_bad_metadata_beside_the_zip_is_a_usage_error(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    (tmp_path / "metadata.json").write_text('{"definition": {"kind": "prompt"}}')
    result = run_cli("deploy", zip_path, "--agent", AGENT)
    assert result.exit_code == 2
    assert "definition.kind is 'prompt'; must be 'hosted'" in result.stderr
    assert fake.requests == []


# -- dry run and secrets -----------------------------------------------------------------------

def test_dry_run_prints_the_requests_with_the_token_redacted_and_sends_nothing(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    result = run_cli("deploy", zip_path, "--agent", AGENT, "--dry-run")
    assert result.exit_code == 0, result.output
    digest = sha(zip_path)
    lines = result.stdout.splitlines()
    assert lines[0] == (f"POST {fake.endpoint}/agents?api-version={PREVIEW}    (create; on 409 "
                        "(exists) the same body goes to update)")
    assert "  Authorization: Bearer <redacted>" in lines
    assert f"  x-ms-code-zip-sha256: {digest}" in lines
    assert f"  x-ms-agent-name: {AGENT}" in lines
    assert (f"  part code (application/zip; filename={AGENT}.zip): {zip_path.stat().st_size} "
            f"bytes; sha256 {digest}") in lines
    assert fake.requests == []
    assert TOKEN not in result.output


def test_the_token_never_reaches_output_logs_errors_or_files(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    zip_path = make_bundle(tmp_path)
    outputs = []
    for args in (["deploy", zip_path, "--json"], ["deploy", zip_path, "--dry-run", "--json"],
                 ["status", "--json"], ["download", "-o", tmp_path / "out.zip"],
                 ["logs", "--session", "s1"], ["-v", "deploy", zip_path]):
        outputs.append(run_cli(*args[:1], "--agent", AGENT, *args[1:])
                       if args[0] != "-v" else run_cli(*args, "--agent", AGENT))
    # A service that echoes the Authorization header back in its 401 body:
    fake.config.echo_authorization = True
    fake.config.token = "another-token"
    rejected = run_cli("status", "--agent", AGENT)
    outputs.append(rejected)
    assert rejected.exit_code == 1 and "<redacted>" in rejected.stderr
    for result in outputs:
        assert TOKEN not in result.output
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert TOKEN not in caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    secret = Secret(TOKEN)
    assert TOKEN not in f"{secret} {secret!r} {secret!s} {[secret]}"


# -- auth --------------------------------------------------------------------------------------

def test_a_rejected_token_names_its_source_and_the_fix(
        fake: FakeService, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBUNDLE_TOKEN", "expired")
    result = run_cli("status", "--agent", AGENT)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith(f"error: GET {fake.endpoint}/agents/{AGENT}: HTTP 401 Unauthorized: "
                           "PermissionDenied: Access denied due to invalid token (x-request-id ")
    assert "the token from FBUNDLE_TOKEN was rejected" in line
    assert "set FBUNDLE_TOKEN to a fresh token for https://ai.azure.com" in line
    assert len(result.stderr.splitlines()) == 1


def stand_in_az(folder: Path, script: str) -> Path:
    folder.mkdir(exist_ok=True)
    az = folder / "az"
    az.write_text("#!/bin/sh\n" + script)
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    return folder


def test_the_azure_cli_is_used_when_fbundle_token_is_unset(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FBUNDLE_TOKEN")
    log = tmp_path / "az-args"
    bin_dir = stand_in_az(tmp_path / "bin", f'echo "$@" > {log}\necho {TOKEN}\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    zip_path = make_bundle(tmp_path / "b")
    result = run_cli("deploy", zip_path, "--agent", AGENT)
    assert result.exit_code == 0, result.output
    assert log.read_text().split() == ["account", "get-access-token", "--resource",
                                       "https://ai.azure.com", "--query", "accessToken", "-o",
                                       "tsv"]


def test_a_rejected_azure_cli_token_says_to_run_az_login(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FBUNDLE_TOKEN")
    bin_dir = stand_in_az(tmp_path / "bin", "echo stale-token\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = run_cli("status", "--agent", AGENT)
    assert result.exit_code == 1
    assert "the token from the Azure CLI (az account get-access-token) was rejected" in \
        result.stderr
    assert "run `az login`" in result.stderr


def test_no_credential_at_all_lists_what_was_tried(
        run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = stand_in_az(tmp_path / "bin", "echo 'ERROR: Please run az login' >&2\nexit 1\n")
    env = {"PATH": str(bin_dir)}
    with pytest.raises(Exception) as caught:
        get_credential(env)
    message = str(caught.value)
    assert "FBUNDLE_TOKEN is not set" in message
    assert "`az account get-access-token` failed: ERROR: Please run az login" in message


def test_the_runner_is_injectable_and_its_token_is_wrapped(tmp_path: Path) -> None:
    bin_dir = stand_in_az(tmp_path / "bin", "exit 3\n")
    calls: list[list[str]] = []

    def runner(argv: object) -> object:
        import subprocess

        calls.append(list(argv))  # type: ignore[call-overload]
        return subprocess.CompletedProcess(argv, 0, stdout="tok-from-runner\n", stderr="")

    credential = get_credential({"PATH": str(bin_dir)}, runner)  # type: ignore[arg-type]
    assert calls and calls[0][0] == str(bin_dir / "az")
    assert calls[0][1:3] == ["account", "get-access-token"]
    assert credential.token.reveal() == "tok-from-runner"
    assert "tok-from-runner" not in repr(credential)


# -- faults ------------------------------------------------------------------------------------

def test_429_is_retried_honouring_retry_after(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.throttle = 2
    fake.config.retry_after = "1"
    started = time.monotonic()
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed >= 1.9  # two Retry-After: 1 waits, not the 5 ms backoff
    assert [r.status for r in fake.requests[:3]] == [429, 429, 404]


def test_5xx_is_retried_then_reported_with_status_code_and_request_id(
        fake: FakeService, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBUNDLE_RETRIES", "2")
    fake.config.server_errors = 10
    result = run_cli("status", "--agent", AGENT)
    assert result.exit_code == 1
    assert len(fake.requests) == 3
    line = result.stderr.strip()
    assert "HTTP 503 Service Unavailable: service_unavailable: try again (x-request-id " in line
    assert len(result.stderr.splitlines()) == 1


def test_a_connection_dropped_mid_upload_is_one_line_and_exit_1(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path, size=4 << 20)
    fake.config.drop_upload_after = 256 << 10
    result = run_cli("deploy", zip_path, "--agent", AGENT)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"error: POST {fake.endpoint}/agents: connection lost while "
                                    "uploading agent-code.zip (")
    assert "the service deduplicates an identical upload" in result.stderr
    assert len(fake.calls("POST")) == 1  # an upload is not retried after a reset
    assert AGENT not in fake.agents


def test_a_slow_service_times_out_with_a_hint(
        fake: FakeService, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FBUNDLE_RETRIES", "0")
    fake.config.slow = 3
    started = time.monotonic()
    result = run_cli("status", "--agent", AGENT, "--read-timeout", "0.2")
    assert time.monotonic() - started < 2
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: GET {fake.endpoint}/agents/{AGENT}: timed out after 0.2s waiting for the "
        "response — check the endpoint and network, or raise --read-timeout")


def test_connection_refused_on_a_get_is_retried_then_reported(
        run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("FBUNDLE_TOKEN", TOKEN)
    monkeypatch.setenv("FBUNDLE_BACKOFF", "0.001")
    result = run_cli("status", "--agent", AGENT, "--endpoint", f"http://127.0.0.1:{port}/p")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: GET http://127.0.0.1:{port}/p/agents/{AGENT}: "
                                    "connection failed (")


# -- status, download, logs, delete ------------------------------------------------------------

def test_status_shows_the_latest_or_a_given_version(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path / "a"), "--agent", AGENT).exit_code == 0
    assert run_cli("deploy", make_bundle(tmp_path / "b", "x = 2\n"), "--agent", AGENT,
                   "--no-wait").exit_code == 0
    latest = run_cli("status", "--agent", AGENT)
    assert latest.stdout == f"{AGENT}: version 2: creating\n"
    first = run_cli("status", "--agent", AGENT, "--version", "1", "--json")
    assert json.loads(first.stdout) == {"agent": AGENT, "version": "1", "status": "active"}
    missing = run_cli("status", "--agent", "nobody")
    assert missing.exit_code == 1 and "agent nobody not found" in missing.stderr


def test_download_writes_the_deployed_zip_verified_by_its_sha(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    first = make_bundle(tmp_path / "a")
    second = make_bundle(tmp_path / "b", "x = 2\n")
    for zip_path in (first, second):
        assert run_cli("deploy", zip_path, "--agent", AGENT, "--no-wait").exit_code == 0
    out = tmp_path / "got" / "latest.zip"
    result = run_cli("download", "--agent", AGENT, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{AGENT}: version 2 -> {out} (sha256 {sha(second)})\n"
    assert out.read_bytes() == second.read_bytes()
    old = tmp_path / "v1.zip"
    assert run_cli("download", "--agent", AGENT, "--version", "1", "-o", old).exit_code == 0
    assert old.read_bytes() == first.read_bytes()
    assert fake.calls("GET")[-1].query["agent_version"] == "1"
    assert zipfile.ZipFile(old).namelist() == ["main.py", "requirements.txt"]


def test_download_refuses_a_body_that_does_not_match_its_sha_header(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.wrong_download_sha = True
    out = tmp_path / "out" / "x.zip"
    out.parent.mkdir()
    out.write_bytes(b"previous")
    result = run_cli("download", "--agent", AGENT, "-o", out)
    assert result.exit_code == 1
    assert "does not match x-ms-code-zip-sha256 " + "0" * 64 in result.stderr
    assert out.read_bytes() == b"previous"  # written atomically, so untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.zip"]


def test_logs_prints_one_line_per_event_with_kind_and_tail(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.log_events = [
        ("console", "starting"),
        ("console", json.dumps({"timestamp": "2025-11-20T10:00:00Z", "message": "listening"})),
        ("system", "container started"),
        ("console", "line one\nline two"),
    ]
    result = run_cli("logs", "--agent", AGENT, "--session", "sess-1")
    assert result.stdout.splitlines() == ["starting", "[2025-11-20T10:00:00Z] listening",
                                          "line one\\nline two"]
    request = fake.calls("GET")[-1]
    assert request.path == f"/agents/{AGENT}/sessions/sess-1:logstream"
    assert request.headers["accept"] == "text/event-stream"
    assert "foundry-features" not in request.headers
    tail = run_cli("logs", "--agent", AGENT, "--session", "s", "--kind", "system", "--tail", "1")
    assert tail.stdout == "container started\n"
    assert fake.calls("GET")[-1].query == {"api-version": PREVIEW, "kind": "system", "tail": "1"}


def test_logs_without_follow_stops_once_the_stream_goes_quiet(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.log_events = [("console", "ready")]
    fake.config.log_hold = 5
    started = time.monotonic()
    result = run_cli("logs", "--agent", AGENT, "--session", "s")
    assert time.monotonic() - started < 2
    assert (result.exit_code, result.stdout) == (0, "ready\n")


def test_delete_asks_then_needs_force_while_sessions_are_active(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    declined = run_cli("delete", "--agent", AGENT, input="n\n")
    assert declined.exit_code == 1 and fake.calls("DELETE") == []
    fake.config.active_sessions.add(AGENT)
    blocked = run_cli("delete", "--agent", AGENT, "--yes")
    assert blocked.exit_code == 1
    assert "HTTP 409 Conflict: conflict: Agent has active sessions" in blocked.stderr
    assert "pass --force to end them" in blocked.stderr
    forced = run_cli("delete", "--agent", AGENT, "--force", input="y\n")
    assert forced.exit_code == 0, forced.output
    assert forced.stdout.endswith(f"deleted agent {AGENT} and all versions\n")
    assert fake.calls("DELETE")[-1].query["force"] == "true"
    assert AGENT not in fake.agents


def test_delete_one_version(fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path / "a"), "--agent", AGENT,
                   "--no-wait").exit_code == 0
    assert run_cli("deploy", make_bundle(tmp_path / "b", "y=1\n"), "--agent", AGENT,
                   "--no-wait").exit_code == 0
    result = run_cli("delete", "--agent", AGENT, "--version", "1", "--yes")
    assert result.exit_code == 0
    assert list(fake.agents[AGENT].versions) == ["2"]
    assert fake.calls("DELETE")[-1].path == f"/agents/{AGENT}/versions/1"


def test_deploying_a_project_folder_builds_it_first(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    project = tmp_path / "my-agent"
    project.mkdir()
    (project / "main.py").write_text("print('hi')\n")
    (project / "requirements.txt").write_text("agent-framework\n")
    (project / "metadata.json").write_text(json.dumps(example_metadata(mode="remote_build")))
    result = run_cli("deploy", project)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "my-agent: version 1 is active"
    code = fake.calls("POST")[0].parts[1]
    assert code.filename == "my-agent.zip"
    built = list(project.rglob("*.zip")) or list(tmp_path.rglob("my-agent*.zip"))
    assert built and code.sha256 == sha(built[0])
    assert fake.calls("POST")[0].headers["x-ms-code-zip-sha256"] == code.sha256


def test_the_upload_progress_bar_is_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from bundler.commands.deploy import _progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with _progress(1000, "uploading x.zip") as update:
        assert update is not None
        update(600)
        update(600)  # a retried upload cannot push the bar past 100%
    assert "uploading x.zip" in terminal.getvalue() and "100%" in terminal.getvalue()
