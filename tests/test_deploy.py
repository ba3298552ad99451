"""``fbundle deploy/status/download/logs/delete`` against the loopback service (tests/fakeservice).

The CLI runs its real httpx stack; only the far end is a stand-in that implements the article's
contract. Poll and backoff intervals come from the environment, so every wait is milliseconds.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from bundler.deploy.auth import get_credential
from bundler.errors import UsageError
from bundler.project import example_metadata
from tests import deploykit
from tests.deploykit import AGENT, RunCli, client, make_bundle, sha
from tests.fakeservice import PREVIEW, TOKEN, FakeService

fake = deploykit.fake

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
    latest = fake.agents[AGENT].latest
    assert latest is not None and latest.status == "active"
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
    meta["definition"]["cpu"] = "2"
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
    assert len(polls) == 4  # three to fail, one more to confirm it


def test_a_status_that_flickers_is_confirmed_before_it_is_believed(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.polls_until_active = 3
    fake.config.flicker = True  # the first poll reads `failed` while the version is creating
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"{AGENT}: version 1 is active"
    assert "version 1: failed" in result.stderr  # seen, shown, not believed


def test_a_deleted_version_ends_the_wait_at_once(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT).exit_code == 0
    assert run_cli("delete", "--agent", AGENT, "--version", "1", "--yes").exit_code == 0
    result = run_cli("status", "--agent", AGENT, "--version", "1")
    assert result.exit_code == 1
    assert result.stdout == f"{AGENT}: version 1: deleting\n"
    assert "version 1 is deleting — deploy again" in result.stderr
    from bundler.deploy.poll import PollPolicy, wait_until_settled

    with client(fake) as library:  # a timeout of 0: only a settled status can return
        body = wait_until_settled(lambda: library.get_version(AGENT, "1"), timeout=0,
                                  policy=PollPolicy(0.001, 0.001))
    assert body["status"] == "deleted"


def test_a_version_body_without_status_is_an_error_at_once(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.omit_status = True
    fake.config.polls_until_active = 10_000
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--timeout", "600")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"error: {AGENT} version: the service's answer has no status — check --endpoint and "
        "--api-version point at Foundry Agent Service")
    assert len([c for c in fake.calls("GET") if "/versions/" in c.path]) == 1


def test_an_upload_answer_without_a_version_is_an_error_at_once(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.omit_version = True
    for api_version in (PREVIEW, "v1"):
        result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT,
                         "--api-version", api_version)
        assert result.exit_code == 1
        assert "but the answer names no version" in result.stderr
    assert not [c for c in fake.calls("GET") if "/versions/" in c.path]


def test_a_content_hash_that_is_not_the_uploaded_sha_fails_the_deploy(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.wrong_content_hash = True
    zip_path = make_bundle(tmp_path)
    result = run_cli("deploy", zip_path, "--agent", AGENT)
    assert result.exit_code == 1
    assert (f"{AGENT} version 1: the service stored sha256 {'0' * 64} but the zip sent has "
            f"{sha(zip_path)}") in result.stderr


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
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--timeout", "0.2")
    assert result.exit_code == 1
    assert f"error: {AGENT} version 1 is still creating after 0.2s" in result.stderr


def test_a_create_that_meets_409_falls_back_to_update(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    first = make_bundle(tmp_path / "a")
    assert run_cli("deploy", first, "--agent", AGENT).exit_code == 0
    # Another client created the agent between our look-up and our create: the look-up says
    # 404, the create meets 409, and the same body must go to update.
    fake.config.hide_agent_once = True
    result = run_cli("deploy", make_bundle(tmp_path / "b", "x = 2\n"), "--agent", AGENT)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{AGENT}: uploaded version 2 (creating)",
                                          f"{AGENT}: version 2 is active"]
    posts = [(c.path, c.status) for c in fake.calls("POST")]
    assert posts[1:] == [("/agents", 409), (f"/agents/{AGENT}", 200)]


def test_ga_api_version_uploads_to_the_versions_route_with_the_preview_header(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    result = run_cli("deploy", zip_path, "--agent", AGENT, "--api-version", "v1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{AGENT}: created version 1 (creating)",
                                          f"{AGENT}: version 1 is active"]
    assert fake.requests and all(r.query["api-version"] == "v1" for r in fake.requests)
    assert all(r.headers["foundry-features"] == "CodeAgents=V1Preview,HostedAgents=V1Preview"
               for r in fake.requests)
    upload = fake.calls("POST")[0]
    assert upload.path == f"/agents/{AGENT}/versions"
    assert "x-ms-agent-name" not in upload.headers
    assert upload.headers["x-ms-code-zip-sha256"] == sha(zip_path)
    again = run_cli("deploy", zip_path, "--agent", AGENT, "--api-version", "v1")
    assert again.stdout.splitlines()[0] == f"{AGENT}: unchanged, version 1 (active)"


def test_the_preview_header_can_be_turned_off_and_a_403_for_it_says_so(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    zip_path = make_bundle(tmp_path)
    result = run_cli("deploy", zip_path, "--agent", AGENT, "--api-version", "v1",
                     "--no-preview-header")
    assert result.exit_code == 0, result.output
    assert all("foundry-features" not in r.headers for r in fake.requests)
    fake.config.require_features_on_v1 = True  # the service during preview (azd met it)
    monkeypatch.setenv("FBUNDLE_PREVIEW_HEADER", "0")
    refused = run_cli("deploy", make_bundle(tmp_path / "b", "x=1\n"), "--agent", AGENT,
                      "--api-version", "v1")
    assert refused.exit_code == 1
    assert "HTTP 403 Forbidden: preview_feature_required: " in refused.stderr
    assert "the service wants the preview opt-in header Foundry-Features" in refused.stderr
    assert "Foundry Project Manager" not in refused.stderr
    plain = run_cli("status", "--agent", AGENT, "--api-version", "v1")
    assert plain.exit_code == 0  # reads do not need it


def test_an_explicit_upload_route_wins_over_the_api_versions_default(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--api-version", "v1",
                     "--upload-route", "agent")
    assert result.exit_code == 0, result.output
    assert [c.path for c in fake.calls("POST")] == ["/agents"]
    preview = run_cli("deploy", make_bundle(tmp_path / "b", "x=1\n"), "--agent", AGENT,
                      "--upload-route", "versions")
    assert preview.exit_code == 0, preview.output
    assert fake.calls("POST")[-1].path == f"/agents/{AGENT}/versions"


def test_a_versions_route_that_does_not_create_the_agent_falls_back_to_create(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    fake.config.versions_creates_agent = False
    result = run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--api-version", "v1")
    assert result.exit_code == 0, result.output
    assert [(c.path, c.status) for c in fake.calls("POST")] == [
        (f"/agents/{AGENT}/versions", 404), ("/agents", 200)]
    assert result.stdout.splitlines()[0] == f"{AGENT}: created version 1 (creating)"


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
    assert f"POST {fake.endpoint}/agents/{AGENT}?api-version={PREVIEW}    (update)" in lines
    assert "  User-Agent: fbundle/0.1.0" in lines
    assert "  Authorization: Bearer <redacted>" in lines
    assert f"  x-ms-code-zip-sha256: {digest}" in lines
    assert f"  x-ms-agent-name: {AGENT}" in lines
    assert (f"  part code (application/zip; filename={AGENT}.zip): {zip_path.stat().st_size} "
            f"bytes; sha256 {digest}") in lines
    assert fake.requests == []
    assert TOKEN not in result.output


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
    with pytest.raises(UsageError) as caught:
        get_credential(env)
    message = str(caught.value)
    assert "FBUNDLE_TOKEN is not set" in message
    assert "`az account get-access-token` failed: ERROR: Please run az login" in message


def test_the_runner_is_injectable_and_its_token_is_wrapped(tmp_path: Path) -> None:
    bin_dir = stand_in_az(tmp_path / "bin", "exit 3\n")
    calls: list[list[str]] = []

    def runner(argv: Sequence[str], *, cwd: Path | None = None,
               env: Mapping[str, str] | None = None,
               timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, stdout="tok-from-runner\n", stderr="")

    credential = get_credential({"PATH": str(bin_dir)}, runner)
    assert calls and calls[0][0] == str(bin_dir / "az")
    assert calls[0][1:3] == ["account", "get-access-token"]
    assert credential.token.reveal() == "tok-from-runner"
    assert "tok-from-runner" not in repr(credential)


# -- faults ------------------------------------------------------------------------------------

def test_429_is_retried_honouring_retry_after(fake: FakeService) -> None:
    fake.config.throttle = 2
    fake.config.retry_after = "1"
    slept: list[float] = []
    with client(fake, sleep=slept.append) as library:
        assert library.get_agent(AGENT) is None
    assert slept == [1.0, 1.0]  # Retry-After, not the 1 ms backoff
    assert [r.status for r in fake.requests] == [429, 429, 404]
    fake.config.throttle, fake.config.retry_after = 1, None
    with client(fake, sleep=slept.append) as library:
        library.get_agent(AGENT)
    assert slept[-1] == 0.001  # no Retry-After: the first backoff step


def test_a_retry_after_date_and_a_huge_retry_after_are_capped(fake: FakeService) -> None:
    fake.config.throttle = 2
    fake.config.retry_after = "86400"
    slept: list[float] = []
    with client(fake, sleep=slept.append) as library:
        library.get_agent(AGENT)
    assert slept == [30.0, 30.0]


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
    result = run_cli("status", "--agent", AGENT, "--read-timeout", "0.2")
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
    assert result.stdout == (f"{AGENT}: version 2 -> {out} (sha256 {sha(second)}, verified "
                             "against x-ms-code-zip-sha256)\n")
    assert fake.calls("GET")[-1].headers["foundry-features"]  # the spec requires it here
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


def test_download_verifies_against_content_hash_when_the_header_is_absent(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    assert run_cli("deploy", zip_path, "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.digest_in = ("content_hash",)  # the spec's DownloadAgentCodeResponse
    out = tmp_path / "got.zip"
    result = run_cli("download", "--agent", AGENT, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(f"(sha256 {sha(zip_path)}, verified against "
                                  "code_configuration.content_hash)\n")
    assert fake.calls("GET")[-1].path == f"/agents/{AGENT}/versions/1"
    fake.config.wrong_content_hash = True
    bad = run_cli("download", "--agent", AGENT, "-o", tmp_path / "bad.zip")
    assert bad.exit_code == 1
    assert "does not match code_configuration.content_hash " + "0" * 64 in bad.stderr
    assert not (tmp_path / "bad.zip").exists()


def test_download_without_any_digest_is_written_and_says_it_was_not_verified(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    zip_path = make_bundle(tmp_path)
    assert run_cli("deploy", zip_path, "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.digest_in = ()
    out = tmp_path / "got.zip"
    result = run_cli("download", "--agent", AGENT, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("not verified: the service gave no digest)\n")
    assert out.read_bytes() == zip_path.read_bytes()


def log(message: str, *, stream: str = "stdout", kind: str = "console",
        at: str = "2026-03-10T09:33:17.121Z") -> dict[str, str]:
    return {"kind": kind, "stream": stream, "message": message, "timestamp": at}


def test_logs_prints_the_specs_log_frames_with_stream_kind_and_tail(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.log_events = [
        log("Starting server on port 8088"),
        log("INFO: Application startup complete.", stream="stderr"),
        log("container started", kind="system", stream="status"),
        log("line one\nline two"),
    ]
    result = run_cli("logs", "--agent", AGENT, "--session", "sess-1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "[2026-03-10T09:33:17.121Z] stdout: Starting server on port 8088",
        "[2026-03-10T09:33:17.121Z] stderr: INFO: Application startup complete.",
        "[2026-03-10T09:33:17.121Z] stdout: line one\\nline two"]
    request = fake.calls("GET")[-1]
    assert request.path == f"/agents/{AGENT}/sessions/sess-1:logstream"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["foundry-features"]  # sent by default, logstream included
    assert request.query == {"api-version": PREVIEW, "kind": "console", "follow": "false"}
    tail = run_cli("logs", "--agent", AGENT, "--session", "s", "--kind", "system", "--tail", "1")
    assert tail.stdout == "[2026-03-10T09:33:17.121Z] status: container started\n"
    assert fake.calls("GET")[-1].query == {"api-version": PREVIEW, "kind": "system",
                                           "tail": "1", "follow": "false"}
    clamped = run_cli("logs", "--agent", AGENT, "--session", "s", "--tail", "5000")
    assert clamped.exit_code == 0, clamped.output
    assert fake.calls("GET")[-1].query["tail"] == "300"
    as_json = run_cli("logs", "--agent", AGENT, "--session", "s", "--json", "--tail", "1")
    assert json.loads(as_json.stdout) == {"timestamp": "2026-03-10T09:33:17.121Z",
                                          "stream": "stdout", "message": "line one\nline two"}


def test_logs_of_a_version_read_the_versioned_logstream(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.log_events = [log("hello")]
    result = run_cli("logs", "--agent", AGENT, "--session", "s-1", "--version", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "[2026-03-10T09:33:17.121Z] stdout: hello\n"
    assert fake.calls("GET")[-1].path == f"/agents/{AGENT}/versions/1/sessions/s-1:logstream"
    refused = run_cli("logs", "--agent", AGENT, "--session", "s-1", "--version", "1",
                      "--no-preview-header")
    assert refused.exit_code == 1 and "preview_feature_required" in refused.stderr


def test_logs_without_follow_stops_once_the_stream_goes_quiet(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.log_events = [log("ready")]
    fake.config.hold_without_follow = True  # a server that keeps the stream open anyway
    fake.config.log_hold = 60
    result = run_cli("logs", "--agent", AGENT, "--session", "s")
    assert (result.exit_code, result.stdout) == (0, "[2026-03-10T09:33:17.121Z] stdout: ready\n")
    for _ in range(200):  # the fake notices the hang-up within a poll or two
        if fake.logstream_closed_by_client:
            break
        fake.stopping.wait(0.05)
    assert fake.logstream_closed_by_client == 1  # the client left; the server did not end it


def test_follow_reopens_a_stream_the_server_closed_without_repeating_lines(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    fake.config.log_events = [log("one", at="t1"), log("two", at="t2")]

    def more(connection: int) -> None:
        if connection == 2:  # the second connection has a new line after the old ones
            fake.config.log_events.append(log("three", at="t3"))

    fake.config.on_logstream = more
    monkeypatch.setenv("FBUNDLE_LOGS_RECONNECTS", "1")
    result = run_cli("logs", "--agent", AGENT, "--session", "s", "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["[t1] stdout: one", "[t2] stdout: two",
                                          "[t3] stdout: three"]
    streams = [c for c in fake.calls("GET") if c.path.endswith(":logstream")]
    assert len(streams) == 4  # first, one with news, two quiet ones (the limit is one)
    assert streams[0].query["follow"] == "true" and "tail" not in streams[0].query
    assert streams[1].query["tail"] == "20"


def test_logs_default_to_the_session_the_last_invoke_got(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT).exit_code == 0
    none_yet = run_cli("logs", "--agent", AGENT)
    assert none_yet.exit_code == 2
    assert none_yet.stderr.strip() == (f"error: no session remembered for {AGENT} — pass "
                                       "--session <x-agent-session-id>, or run `fbundle invoke` "
                                       "first")
    invoked = run_cli("invoke", "--agent", AGENT, "--input", "hi")
    assert invoked.exit_code == 0, invoked.output
    session = next(iter(fake.agents[AGENT].sessions))
    fake.config.log_events = [log("hi")]
    result = run_cli("logs", "--agent", AGENT)
    assert result.exit_code == 0, result.output
    assert f"{AGENT}: session {session} (the last invoke's)" in result.stderr
    assert fake.calls("GET")[-1].path == f"/agents/{AGENT}/sessions/{session}:logstream"


def test_delete_asks_then_needs_force_while_sessions_are_active(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT, "--no-wait").exit_code == 0
    declined = run_cli("delete", "--agent", AGENT, input="n\n")
    assert declined.exit_code == 1 and fake.calls("DELETE") == []
    fake.add_session(AGENT)
    blocked = run_cli("delete", "--agent", AGENT, "--yes")
    assert blocked.exit_code == 1
    assert "HTTP 409 Conflict: conflict: Agent has active sessions" in blocked.stderr
    assert "the agent has active sessions" in blocked.stderr
    assert "pass --force to delete them too" in blocked.stderr
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


def test_deleting_a_version_with_active_sessions_needs_force(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path / "a"), "--agent", AGENT).exit_code == 0
    assert run_cli("deploy", make_bundle(tmp_path / "b", "y=1\n"), "--agent", AGENT).exit_code == 0
    fake.add_session(AGENT, "1")
    other = fake.add_session(AGENT, "2")
    blocked = run_cli("delete", "--agent", AGENT, "--version", "1", "--yes")
    assert blocked.exit_code == 1
    assert "HTTP 409 Conflict: conflict: Agent version 1 has active sessions" in blocked.stderr
    assert "the version has active sessions" in blocked.stderr
    assert "force" not in fake.calls("DELETE")[-1].query
    forced = run_cli("delete", "--agent", AGENT, "--version", "1", "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert fake.calls("DELETE")[-1].query["force"] == "true"
    assert list(fake.agents[AGENT].sessions) == [other]  # only version 1's sessions went


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


def test_an_upload_answered_with_503_is_sent_again_whole(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    from bundler.deploy.client import Upload

    zip_path = make_bundle(tmp_path, size=200_000)
    assert run_cli("deploy", zip_path, "--agent", AGENT, "--no-wait").exit_code == 0
    second = make_bundle(tmp_path / "b", "x=1\n", size=200_000)
    meta = json.loads((second.parent / "metadata.json").read_text())
    fake.config.server_errors = 1
    slept: list[float] = []
    with client(fake, sleep=slept.append) as library:
        reply = library.upload(Upload(AGENT, meta, second, sha(second)), "update")
    assert reply.status == 200 and len(slept) == 1
    first, retried = fake.calls("POST")[-2:]
    assert (first.status, retried.status) == (503, 200)
    assert retried.parts[1].sha256 == sha(second)  # the whole zip again, from the start
