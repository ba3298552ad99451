"""No secret printed, no input steering a request elsewhere (issue 15's client half).

The token is checked before any request; text the service sends enters through one door
(``bundler.deploy.http.Reply``) and is redacted there; every value that reaches a URL path is
validated and percent-encoded, flags and the service's own answers alike.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import pytest

from bundler.deploy.http import Scrub, check_endpoint, path
from bundler.errors import UsageError
from tests import deploykit
from tests.deploykit import AGENT, RunCli, make_bundle
from tests.fakeservice import TOKEN, FakeService

fake = deploykit.fake


@pytest.mark.parametrize(("token", "problem"), [
    ('{\n  "accessToken": "eyJ0eXAi",\n  "expiresOn": "2026"\n}', "holds a line break"),
    ("eyJ0eXAi\u00e9abc", "holds non-ASCII characters"),
    ("eyJ0 eXAi", "holds spaces or control characters"),
    ("eyJ0\x07eXAi", "holds spaces or control characters"),
])
def test_a_malformed_token_is_refused_before_any_request_showing_none_of_it(
        fake: FakeService, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, token: str,
        problem: str) -> None:
    monkeypatch.setenv("FBUNDLE_TOKEN", token)
    result = run_cli("status", "--agent", AGENT)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: the token from FBUNDLE_TOKEN {problem}")
    assert len(result.stderr.splitlines()) == 1
    assert "eyJ0" not in result.output and "expiresOn" not in result.output
    assert fake.requests == []


def test_a_token_from_az_printed_as_json_is_refused_the_same_way(
        fake: FakeService, run_cli: RunCli, bin_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FBUNDLE_TOKEN")
    az = bin_dir / "az"
    az.write_text('#!/bin/sh\nprintf \'{\\n  "accessToken": "eyJ0secret"\\n}\\n\'\n')
    az.chmod(0o755)
    result = run_cli("status", "--agent", AGENT)
    assert result.exit_code == 2
    assert "the token from the Azure CLI (az account get-access-token) holds a line break" in \
        result.stderr
    assert "eyJ0secret" not in result.output
    assert fake.requests == []


def test_the_token_never_reaches_any_output_log_record_or_file_of_a_failing_run(
        fake: FakeService, run_cli: RunCli, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A service that echoes the caller's token in every text field it has.

    It lands in error.code, error.message, x-request-id, the reason phrase, a failed version's
    error, log events and invoke answers; every stdout/stderr, log record and written file of
    deploy (failing), status, download, logs, invoke (failing and not), sessions (create, show,
    list), session files and lists is then searched for it.
    """
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    zip_path = make_bundle(tmp_path / "b")
    outputs = [run_cli("-v", "deploy", zip_path, "--agent", AGENT, "--json")]
    fake.config.echo_token = True
    fake.config.log_events = [{"message": "starting"}]
    fake.config.fail_with = {"code": "ProvisioningError", "message": "pip failed"}
    second = make_bundle(tmp_path / "c", "x = 2\n")
    runs: list[list[str | Path]] = [
        ["-v", "deploy", second, "--agent", AGENT, "--json"],  # fails, error echoes the token
        ["-v", "deploy", second, "--agent", AGENT],
        ["status", "--agent", AGENT, "--json"],
        ["status", "--agent", AGENT, "--version", "9"],  # 404: error.code and message echo it
        ["download", "--agent", AGENT, "--version", "1", "-o", tmp_path / "out.zip"],
        ["-v", "invoke", "--agent", AGENT, "--input", "hello", "--new-session"],
        ["sessions", "list", "--agent", AGENT, "--json"],
        ["sessions", "create", "--agent", AGENT, "--session-id", "s-echo", "--json"],
        ["sessions", "create", "--agent", AGENT, "--session-id", "s-echo"],  # 409 echoes it
        ["sessions", "show", "--agent", AGENT, "nope"],  # 404 echoes it
        ["files", "list", "--agent", AGENT, "--session", "s-echo"],
        ["files", "download", "--agent", AGENT, "--session", "s-echo", "gone.txt", "-o",
         tmp_path / "gone.txt"],  # 404 echoes it
        ["versions", "list", "--agent", AGENT, "--json"],
        ["agents", "list", "--json"],
        ["-v", "logs", "--agent", AGENT, "--session", "s-1"],
        ["logs", "--agent", AGENT, "--session", "s-1", "--json"],
        ["deploy", zip_path, "--agent", AGENT, "--dry-run", "--json"],
    ]
    for args in runs:
        outputs.append(run_cli(*args))
    assert "s-echo" in fake.agents[AGENT].sessions  # sessions create really ran
    fake.config.invoke_failure = (424, "session_not_ready", "ReadinessTimeout")
    outputs.append(run_cli("-v", "invoke", "--agent", AGENT, "--input", "hello"))
    fake.config.token = "another-token"  # now a 401 that echoes the token it was sent
    outputs.append(run_cli("-v", "status", "--agent", AGENT))
    assert outputs[-1].exit_code == 1 and "<redacted>" in outputs[-1].stderr
    assert sum("<redacted>" in r.output for r in outputs) >= 8  # the echoes really arrived
    failing = [r for r in outputs if r.exit_code != 0]
    assert len(failing) >= 4
    for result in outputs:
        assert TOKEN not in result.output, result.output
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert TOKEN not in caplog.text
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    state = Path(os.environ["FBUNDLE_STATE_DIR"])
    written += [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "sessions.json" for p in written)
    for file in written:
        assert TOKEN.encode() not in file.read_bytes(), file


def test_scrub_takes_the_token_and_url_credentials_out_of_nested_answers() -> None:
    from bundler.deploy.auth import Secret

    scrub = Scrub(lambda: Secret("tok-123"))
    answer = {"error": {"code": "tok-123",
                        "details": [{"message": "see https://u:pw@h/x tok-123"}]},
              "tok-123": 1}
    assert scrub.value(answer) == {"error": {"code": "<redacted>", "details": [
        {"message": "see https://<redacted>@h/x <redacted>"}]}, "<redacted>": 1}


# -- input that reaches URLs ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["delete", "--version", "1?force=true&x=", "--yes"],
    ["status", "--version", "../../../other"],
    ["download", "--version", "1/../2"],
    ["logs", "--session", "../../x"],
    ["logs", "--session", "s", "--version", "%2e%2e"],
    ["sessions", "stop", ".."],
    ["sessions", "delete", "a/b", "--yes"],
])
def test_versions_and_session_ids_are_validated_before_any_request(
        fake: FakeService, run_cli: RunCli, args: list[str]) -> None:
    result = run_cli(*args[:1], *(["stop"] if args[:2] == ["sessions", "stop"] else []),
                     "--agent", AGENT, *args[1:]) if args[0] != "sessions" else \
        run_cli("sessions", args[1], "--agent", AGENT, *args[2:])
    assert result.exit_code == 2, result.output
    assert "is not a version number" in result.stderr or "is not a session id" in \
        result.stderr
    assert fake.requests == []


def test_every_path_segment_is_percent_encoded_and_dot_segments_are_refused() -> None:
    assert path("agents", "a b", "sessions", "x?y#z") == "/agents/a%20b/sessions/x%3Fy%23z"
    assert path("agents", "a/b") == "/agents/a%2Fb"
    for bad in ("", ".", ".."):
        with pytest.raises(UsageError):
            path("agents", bad)


def test_a_version_from_the_services_own_answer_is_validated_too(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT).exit_code == 0
    fake.agents[AGENT].versions["1"].version = "../../evil"
    fake.config.digest_in = ("content_hash",)  # so download would look the version up
    before = len(fake.requests)
    download = run_cli("download", "--agent", AGENT, "-o", tmp_path / "x.zip")
    assert download.exit_code == 1
    assert ("the download's x-ms-agent-version gave version '../../evil', which is not a "
            "version number") in download.stderr
    fake.config.provisioning_invokes = 1  # invoke would poll the latest version
    invoke = run_cli("invoke", "--agent", AGENT, "--input", "hi")
    assert invoke.exit_code == 1
    assert "gave version '../../evil', which is not a version number" in invoke.stderr
    assert all("evil" not in r.path for r in fake.requests[before:])
    assert not (tmp_path / "x.zip").exists()


def test_a_session_id_from_the_services_headers_is_validated_before_it_is_remembered(
        fake: FakeService, run_cli: RunCli, tmp_path: Path) -> None:
    assert run_cli("deploy", make_bundle(tmp_path), "--agent", AGENT).exit_code == 0
    fake.add_session(AGENT, "1", "../steer")
    result = run_cli("invoke", "--agent", AGENT, "--input", "hi", "--session", "ok-session")
    assert result.exit_code == 0, result.output  # a fresh, valid one is remembered
    stored = json.loads((Path(os.environ["FBUNDLE_STATE_DIR"]) /
                         "sessions.json").read_text())
    assert [v["session"] for v in stored.values()] == ["ok-session"]


@pytest.mark.parametrize(("endpoint", "message"), [
    ("https://user:pw@acct.services.ai.azure.com/api/projects/p", "carries credentials"),
    ("https://acct.services.ai.azure.com/api/projects/p?api-version=x", "has a query string"),
    ("ftp://acct/api", "is not an http(s) URL"),
])
def test_endpoints_with_credentials_queries_or_odd_schemes_are_refused(
        endpoint: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        check_endpoint(endpoint)
    assert "pw@" not in str(caught.value)


def test_the_remembered_session_lives_in_the_state_dir_never_in_the_project(
        fake: FakeService, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bundler.deploy.state import last_session, remember_session, state_dir

    monkeypatch.chdir(tmp_path)
    assert run_cli("deploy", make_bundle(tmp_path / "p"), "--agent", AGENT).exit_code == 0
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert run_cli("invoke", "--agent", AGENT, "--input", "hi").exit_code == 0
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert last_session(fake.endpoint, AGENT) == next(iter(fake.agents[AGENT].sessions))
    monkeypatch.setenv("FBUNDLE_STATE_DIR", "relative/dir")
    with pytest.raises(UsageError, match="is not an absolute path"):
        state_dir()
    assert remember_session(fake.endpoint, AGENT, "s-1") is None  # a warning, not a failure
    monkeypatch.delenv("FBUNDLE_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    assert state_dir() == tmp_path / "xdg-state" / "fbundle"  # the platform's rule, as pip's
